"""The `servin` command: `daemon` and `certs generate` work on this machine; `version`, `info`, `api key ...`,
`api token ...` and `webhook ...` are clients of a daemon's HTTP API. Exit status: 0 done, 1 the daemon refused
or could not be reached (the message on stderr as the docker CLI prints it), 2 a usage error."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from servin import __version__, errors
from servin.access.certs import CertsError, generate
from servin.cli import keys, system, webhooks
from servin.cli.connect import add_client_flags, build_client, client_flags_given, spell_bool_flags
from servin.client import APIError, DaemonUnreachable
from servin.daemon.config import ConfigError, add_daemon_flags, resolve

USAGE_ERROR = 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="servin", description="A container engine with Docker's API")
    p.add_argument("--version", action="version", version=f"servin {__version__}")
    add_client_flags(p)
    sub = p.add_subparsers(dest="command", required=True)
    add_daemon_flags(sub.add_parser("daemon", help="run the Servin daemon"))
    certs = sub.add_parser("certs", help="TLS certificates for the daemon and its clients")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True)
    gen = certs_sub.add_parser("generate", help="write a CA, a server and a client certificate into DIR")
    gen.add_argument("dir", metavar="DIR", type=Path)
    gen.add_argument("--host", dest="hosts", action="append", default=[], metavar="NAME|IP",
                     help="a name or address the server certificate is valid for (localhost and 127.0.0.1 "
                     "always are); repeat for more")
    gen.add_argument("--force", action="store_true", help="replace an existing CA in DIR")
    system.add_commands(sub)
    keys.add_commands(sub)
    webhooks.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(spell_bool_flags(sys.argv[1:] if argv is None else argv))
    if args.command in ("daemon", "certs"):
        if given := client_flags_given(args):
            p.error(f"{', '.join(_flag(n) for n in given)}: client options, not for `servin {args.command}` "
                    f"(its own options go after `{args.command}`)")
        return _certs_generate(args) if args.command == "certs" else _daemon(args)
    try:
        client = build_client(args)
    except errors.InvalidArgument as exc:
        print(f"servin: {exc}\nSee 'servin --help'.", file=sys.stderr)
        return USAGE_ERROR
    if client.sends_credentials and client.endpoint.in_clear_off_host:
        print(f"WARNING: sending the API key or token in clear to {client.base_url}: anyone on the way can read "
              "and reuse it; use --tlsverify", file=sys.stderr)
    try:
        status: int = args.run(client, args)
    except APIError as exc:
        print(f"Error response from daemon: {exc.message}", file=sys.stderr)
        return 1
    except DaemonUnreachable as exc:
        print(exc.message, file=sys.stderr)
        return 1
    return status


def _flag(dest: str) -> str:
    name = dest.removeprefix("client_")
    return {"hosts": "-H", "api_key": "--api-key"}.get(name, f"--{name}")


def _daemon(args: argparse.Namespace) -> int:
    try:
        config = resolve(args)
    except ConfigError as exc:
        print(f"servin: {exc}", file=sys.stderr)
        return 1
    # imported here, not at the top: the client commands must not pay for loading the engine (0.4 s)
    from servin.daemon.main import run

    return run(config, reread=lambda: resolve(args))


def _certs_generate(args: argparse.Namespace) -> int:
    try:
        written = generate(args.dir, args.hosts, force=args.force)
    except (CertsError, OSError) as exc:
        print(f"servin: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    d = args.dir.resolve()
    print(f"\ndaemon: servin daemon --tlsverify --tlscacert {d}/ca.pem --tlscert {d}/server-cert.pem "
          f"--tlskey {d}/server-key.pem -H tcp://0.0.0.0:2376\n"
          f"client: DOCKER_CERT_PATH={d} docker --tlsverify -H tcp://HOST:2376 version\n"
          f"        SERVIN_CERT_PATH={d} servin --tlsverify -H tcp://HOST:2376 version")
    return 0


if __name__ == "__main__":
    sys.exit(main())
