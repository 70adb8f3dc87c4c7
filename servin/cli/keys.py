"""`servin api key generate|list|revoke` and `servin api token create`: the management API's /api/v1/keys
and /api/v1/tokens (admin scope)."""

from __future__ import annotations

import argparse
import sys

from servin.cli import render
from servin.client import APIClient, APIError
from servin.client.models import rfc3339

SCOPES = ("read", "write", "admin")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = sub.add_parser("api", help="API keys and bearer tokens (needs the admin scope)")
    api_sub = api.add_subparsers(dest="api_command", required=True, metavar="{key,token}")
    key = api_sub.add_parser("key", help="manage API keys")
    key_sub = key.add_subparsers(dest="key_command", required=True, metavar="{generate,list,revoke}")

    gen = key_sub.add_parser("generate", help="create an API key and print it (this once)")
    gen.add_argument("--name", required=True, help="what the key is for")
    gen.add_argument("--scope", choices=SCOPES, default="read",
                     help="read: GET/HEAD and events; write: the whole Docker API; admin: keys and tokens too")
    gen.add_argument("--expires", metavar="DURATION", help="lifetime, e.g. 12h, 30d, 2w (default: never)")
    gen.add_argument("--rate-limit", dest="rate_limit", metavar="N/s|N/min",
                     help="requests allowed (default: the daemon's limit)")
    gen.set_defaults(run=generate)

    ls = key_sub.add_parser("list", help="the keys (never the keys' secrets)")
    ls.add_argument("--format", choices=("table", "json"), default="table",
                    help="table, or json: one JSON object per key and line")
    ls.set_defaults(run=list_keys)

    revoke = key_sub.add_parser("revoke", help="revoke keys by ID; they are refused at once")
    revoke.add_argument("ids", nargs="+", metavar="ID")
    revoke.set_defaults(run=revoke_keys)

    token = api_sub.add_parser("token", help="bearer tokens (JWT) signed by the daemon")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="{create}")
    create = token_sub.add_parser("create", help="issue a bearer token and print it")
    create.add_argument("--scope", choices=SCOPES, default="read", help="at most the caller's own scope")
    create.add_argument("--ttl", metavar="DURATION", help="lifetime, e.g. 15m, 1h (default: the daemon's, 1h)")
    create.add_argument("--subject", help="the token's sub claim (default: the caller)")
    create.set_defaults(run=create_token)


def generate(client: APIClient, args: argparse.Namespace) -> int:
    new = client.create_key(args.name, scope=args.scope, expires=args.expires, rate_limit=args.rate_limit)
    k = new.key
    sys.stdout.write(new.secret + "\n")
    expires = f"expires {rfc3339(k.expires)}" if k.expires else "never expires"
    sys.stderr.write(f"API key {k.id} ({k.name}, scope {k.scope}, {expires}, rate limit "
                     f"{k.rate_limit or 'the daemon default'}).\n"
                     "Store it now: it will not be shown again.\n")
    return 0


def list_keys(client: APIClient, args: argparse.Namespace) -> int:
    keys = list(client.all_keys())
    if args.format == "json":
        for k in keys:
            render.json_line(sys.stdout, k.to_wire())
        return 0
    render.table(sys.stdout, ("ID", "NAME", "SCOPE", "CREATED", "LAST USED", "EXPIRES", "RATE LIMIT"),
                 ((k.id, k.name, k.scope, render.ago(k.created, never=""), render.ago(k.last_used),
                   render.until(k.expires), k.rate_limit or "default") for k in keys))
    return 0


def revoke_keys(client: APIClient, args: argparse.Namespace) -> int:
    """As `docker rm`: each revoked ID on stdout, each failure on stderr, 1 if any failed."""
    status = 0
    for key_id in args.ids:
        try:
            client.revoke_key(key_id)
        except APIError as exc:
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            status = 1
            continue
        sys.stdout.write(key_id + "\n")
    return status


def create_token(client: APIClient, args: argparse.Namespace) -> int:
    t = client.create_token(scope=args.scope, ttl=args.ttl, subject=args.subject)
    sys.stdout.write(t.token + "\n")
    expires = f"expires {rfc3339(t.expires)} ({render.until(t.expires)})" if t.expires else "never expires"
    sys.stderr.write(f"Bearer token for {t.subject}, scope {t.scope}, {expires}.\n")
    return 0
