"""The `servin` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from servin import __version__
from servin.access.certs import CertsError, generate
from servin.daemon.config import ConfigError, add_daemon_flags, resolve
from servin.daemon.main import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="servin", description="A container engine with Docker's API")
    parser.add_argument("--version", action="version", version=f"servin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_daemon_flags(sub.add_parser("daemon", help="run the Servin daemon"))
    certs = sub.add_parser("certs", help="TLS certificates for the daemon and its clients")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True)
    gen = certs_sub.add_parser("generate", help="write a CA, a server and a client certificate into DIR")
    gen.add_argument("dir", metavar="DIR", type=Path)
    gen.add_argument("--host", dest="hosts", action="append", default=[], metavar="NAME|IP",
                     help="a name or address the server certificate is valid for (localhost and 127.0.0.1 "
                     "always are); repeat for more")
    gen.add_argument("--force", action="store_true", help="replace an existing CA in DIR")
    args = parser.parse_args(argv)
    if args.command == "certs":
        return _certs_generate(args)
    if args.command == "daemon":
        try:
            config = resolve(args)
        except ConfigError as exc:
            print(f"servin: {exc}", file=sys.stderr)
            return 1
        return run(config, reread=lambda: resolve(args))
    return 2


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
          f"client: DOCKER_CERT_PATH={d} docker --tlsverify -H tcp://HOST:2376 version")
    return 0


if __name__ == "__main__":
    sys.exit(main())
