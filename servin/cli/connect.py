"""The client's global flags and environment, read as the docker CLI reads them, into an `APIClient`.

Host: -H, then SERVIN_HOST, then DOCKER_HOST, then the daemon's default socket. TLS: --tls or SERVIN_TLS /
DOCKER_TLS; --tlsverify (even =false) or a non-empty SERVIN_TLS_VERIFY / DOCKER_TLS_VERIFY turns TLS on;
the files default to ca.pem, cert.pem and key.pem in SERVIN_CERT_PATH, DOCKER_CERT_PATH or ~/.docker, each
used only if it exists. Credentials: --api-key or --token, else SERVIN_API_KEY or SERVIN_TOKEN."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from servin.client import DEFAULT_HOST, APIClient, TLSConfig
from servin.daemon.config import flag_bool  # Go's boolean flag words, as the daemon's --tls reads them
from servin.errors import InvalidArgument

# global flags that take a value (the word after them is not the command)
VALUE_FLAGS = frozenset({"-H", "--host", "--tlscacert", "--tlscert", "--tlskey", "--api-key", "--token"})
BOOL_FLAGS = frozenset({"--tls", "--tlsverify"})


def add_client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-H", "--host", dest="client_hosts", action="append", metavar="HOST",
                   help=f"daemon to connect to: unix:///path or tcp://host:port (default $SERVIN_HOST, "
                   f"$DOCKER_HOST, {DEFAULT_HOST})")
    p.add_argument("--tls", dest="client_tls", type=flag_bool, nargs="?", const=True, metavar="BOOL",
                   help="use TLS; implied by --tlsverify")
    p.add_argument("--tlsverify", dest="client_tlsverify", type=flag_bool, nargs="?", const=True, metavar="BOOL",
                   help="use TLS and verify the daemon's certificate and name")
    p.add_argument("--tlscacert", dest="client_tlscacert", type=Path, metavar="FILE",
                   help="trust certificates signed only by this CA (default $SERVIN_CERT_PATH/ca.pem)")
    p.add_argument("--tlscert", dest="client_tlscert", type=Path, metavar="FILE",
                   help="client certificate (default $SERVIN_CERT_PATH/cert.pem)")
    p.add_argument("--tlskey", dest="client_tlskey", type=Path, metavar="FILE",
                   help="client certificate's key (default $SERVIN_CERT_PATH/key.pem)")
    auth = p.add_mutually_exclusive_group()
    auth.add_argument("--api-key", dest="client_api_key", metavar="KEY",
                      help="send X-API-Key: KEY (default $SERVIN_API_KEY)")
    auth.add_argument("--token", dest="client_token", metavar="TOKEN",
                      help="send Authorization: Bearer TOKEN (default $SERVIN_TOKEN)")


def client_flags_given(args: argparse.Namespace) -> list[str]:
    return [name for name in vars(args) if name.startswith("client_") and getattr(args, name) is not None]


def spell_bool_flags(argv: Sequence[str]) -> list[str]:
    """`--tls` and `--tlsverify` before the command as `--tls=true`, so the command's name after a bare one
    is not read as its value (`servin --tlsverify version`), as Go's boolean flags behave."""
    out = list(argv)
    i = 0
    while i < len(out) and out[i].startswith("-"):
        if out[i] in BOOL_FLAGS:
            out[i] += "=true"
        elif out[i] in VALUE_FLAGS:
            i += 1
        i += 1
    return out


def build_client(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> APIClient:
    env = os.environ if env is None else env
    hosts = args.client_hosts or []
    if len(hosts) > 1:
        raise InvalidArgument("specify only one -H")
    host = hosts[0] if hosts else env.get("SERVIN_HOST") or env.get("DOCKER_HOST") or DEFAULT_HOST
    api_key, token = _credentials(args, env)
    return APIClient(host, tls=_tls(args, env) or False, api_key=api_key, token=token)


def _tls(args: argparse.Namespace, env: Mapping[str, str]) -> TLSConfig | None:
    verify = args.client_tlsverify
    if verify is None:
        verify = bool(_env(env, "TLS_VERIFY"))
    on = bool(args.client_tls) or bool(_env(env, "TLS")) or verify or args.client_tlsverify is not None
    files = {"--tlscacert": args.client_tlscacert, "--tlscert": args.client_tlscert, "--tlskey": args.client_tlskey}
    if not on:
        given = [flag for flag, value in files.items() if value is not None]
        if given:
            raise InvalidArgument(f"{', '.join(given)} given without --tls or --tlsverify")
        return None
    if not verify and args.client_tlscacert is not None:
        raise InvalidArgument("--tlscacert needs --tlsverify: with --tls alone the daemon's certificate is not "
                              "checked")
    cert_dir = Path(_env(env, "CERT_PATH") or env.get("DOCKER_CONFIG") or Path.home() / ".docker")
    ca = _file(args.client_tlscacert, cert_dir / "ca.pem")
    cert = _file(args.client_tlscert, cert_dir / "cert.pem")
    key = _file(args.client_tlskey, cert_dir / "key.pem")
    if (cert is None) != (key is None):
        raise InvalidArgument(f"a client certificate needs both files: certificate {cert or 'missing'}, "
                              f"key {key or 'missing'}")
    return TLSConfig(verify=verify, ca_cert=ca if verify else None,
                     client_cert=(cert, key) if cert is not None and key is not None else None)


def _file(flag: Path | None, default: Path) -> Path | None:
    """A file named by a flag is used (its absence is an error when loaded); a default one only if it exists."""
    if flag is not None:
        return flag
    return default if default.exists() else None


def _credentials(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(API key, token): a flag's, else the environment's."""
    if args.client_api_key is not None or args.client_token is not None:
        return args.client_api_key, args.client_token
    key, token = env.get("SERVIN_API_KEY") or None, env.get("SERVIN_TOKEN") or None
    if key and token:
        raise InvalidArgument("SERVIN_API_KEY and SERVIN_TOKEN are both set: unset one, or pick with --api-key "
                              "or --token")
    return key, token


def _env(env: Mapping[str, str], name: str) -> str:
    return env.get(f"SERVIN_{name}") or env.get(f"DOCKER_{name}") or ""
