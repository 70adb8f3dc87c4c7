"""`servin webhook add|list|remove`: the management API's /api/v1/webhooks (admin scope)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from servin.cli import render
from servin.client import APIClient, APIError
from servin.client.api import PAGE_MAX
from servin.client.models import MalformedAnswer

EVENTS_HELP = ("comma-separated: container.start, container.stop, container.die, container.create, "
               "container.destroy, image.pull, image.remove, volume.create, volume.remove, network.create, "
               "network.remove, system.error")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hook = sub.add_parser("webhook", help="webhooks: where the engine's events are posted (needs the admin scope)")
    hook_sub = hook.add_subparsers(dest="webhook_command", required=True, metavar="{add,list,remove}")

    add = hook_sub.add_parser("add", help="post these events to a URL, signed with a secret (printed this once)")
    add.add_argument("--url", required=True, help="http:// or https:// URL to post to")
    add.add_argument("--events", required=True, metavar="EVENT[,EVENT...]", help=EVENTS_HELP)
    add.add_argument("--secret", help="the HMAC key of X-Servin-Signature (default: one is generated)")
    add.add_argument("--format", choices=("text", "json"), default="text",
                     help="text: the ID, then the secret; json: the whole webhook, secret included")
    add.set_defaults(run=add_webhook)

    ls = hook_sub.add_parser("list", help="the webhooks and how their last delivery went (never their secrets)")
    ls.add_argument("--format", choices=("table", "json"), default="table",
                    help="table, or json: one JSON object per webhook and line, its delivery log included")
    ls.set_defaults(run=list_webhooks)

    rm = hook_sub.add_parser("remove", help="remove webhooks by ID; their pending deliveries are dropped")
    rm.add_argument("ids", nargs="+", metavar="ID")
    rm.set_defaults(run=remove_webhooks)


def add_webhook(client: APIClient, args: argparse.Namespace) -> int:
    events = [e.strip() for e in args.events.split(",") if e.strip()]
    body: dict[str, Any] = {"url": args.url, "events": events}
    if args.secret is not None:
        body["secret"] = args.secret
    hook = _call(client, "POST", "/webhooks", body=body)
    if args.format == "json":
        render.json_line(sys.stdout, hook)
        return 0
    sys.stdout.write(f"{hook['id']}\n{hook['secret']}\n")
    sys.stderr.write(f"Webhook {hook['id']} posts {', '.join(hook['events'])} to {hook['url']}.\n"
                     "The second line is its secret (X-Servin-Signature's key): it will not be shown again.\n")
    return 0


def list_webhooks(client: APIClient, args: argparse.Namespace) -> int:
    hooks = list(_all(client))
    if args.format == "json":
        for h in hooks:
            render.json_line(sys.stdout, h)
        return 0
    render.table(sys.stdout, ("ID", "URL", "EVENTS", "CREATED", "LAST DELIVERY"),
                 ((h["id"], h["url"], ",".join(h["events"]), render.ago(_time(h.get("created")), never=""),
                   last_delivery(h.get("deliveries") or [])) for h in hooks))
    return 0


def remove_webhooks(client: APIClient, args: argparse.Namespace) -> int:
    """As `docker rm`: each removed ID on stdout, each failure on stderr, 1 if any failed."""
    status = 0
    for hook_id in args.ids:
        try:
            _call(client, "DELETE", f"/webhooks/{hook_id}")
        except APIError as exc:
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            status = 1
            continue
        sys.stdout.write(hook_id + "\n")
    return status


def last_delivery(log: list[dict[str, Any]], now: datetime | None = None) -> str:
    """The newest delivery: "204 container.start, 3 seconds ago", "retrying (4 attempts): HTTP 503 ...",
    "failed (9 attempts): ...", or "none"."""
    if not log:
        return "none"
    d = log[0]
    if d.get("state") == "delivered":
        return f"{d.get('status_code')} {d.get('event')}, {render.ago(_time(d.get('delivered_at')), now=now)}"
    attempts = d.get("attempts") or 0
    return f"{d.get('state')} ({attempts} attempt{'s' if attempts != 1 else ''}): {d.get('error') or ''}".rstrip()


def _all(client: APIClient) -> Iterator[dict[str, Any]]:
    page = 1
    while True:
        data = _call(client, "GET", "/webhooks", query={"page": page, "limit": PAGE_MAX})
        items = data.get("items") or []
        yield from items
        if page >= int(data.get("pagination", {}).get("pages", 0)) or not items:
            return
        page += 1


def _call(client: APIClient, method: str, path: str, *, body: Any = None,
          query: dict[str, Any] | None = None) -> Any:
    # the client's generic management call (the typed webhook methods belong with the Python clients)
    return client._manage(method, path, _object, body=body, query=query)


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MalformedAnswer("not a JSON object")
    return data


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
