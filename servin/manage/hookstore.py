"""The webhooks and their delivery logs, in `<data-root>/webhooks/hooks.json` (0600, replaced atomically):
each webhook's URL, events, secret (shown once, at creation), and its last deliveries."""

from __future__ import annotations

import builtins
import collections
import datetime
import json
import secrets
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from servin import atomicfile, errors
from servin.manage.hookevents import KNOWN_EVENTS

LOG_SIZE = 20  # deliveries kept per webhook
MAX_URL = 2048
SECRET_LENGTH = (8, 512)


@dataclass(frozen=True, slots=True, kw_only=True)
class Webhook:
    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    created: str  # RFC 3339
    active: bool = True

    def hears(self, event: str) -> bool:
        return self.active and event in self.events


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRecord:
    id: str  # X-Servin-Delivery
    event: str
    state: str  # delivered, retrying (the last attempt failed, another will come), failed (given up)
    status_code: int | None  # of the last attempt; None: no answer (refused, timed out...)
    attempts: int
    error: str | None  # of the last attempt
    delivered_at: str | None  # RFC 3339, once delivered
    last_attempt: str  # RFC 3339


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def now_rfc3339(t: float | None = None) -> str:
    at = datetime.datetime.now(datetime.timezone.utc) if t is None else \
        datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def checked_url(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise errors.InvalidArgument("url is required: an http:// or https:// URL")
    if len(value) > MAX_URL or not value.isprintable() or any(c.isspace() for c in value):
        raise errors.InvalidArgument(f"url: at most {MAX_URL} printable characters without spaces")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as exc:
        raise errors.InvalidArgument(f"url {value!r}: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise errors.InvalidArgument(f"url {value!r}: the scheme must be http or https")
    if not parts.hostname:
        raise errors.InvalidArgument(f"url {value!r}: no host")
    return value


def checked_events(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise errors.InvalidArgument(f"events is required: a list of event names ({', '.join(KNOWN_EVENTS)})")
    unknown = [v for v in value if v not in KNOWN_EVENTS]
    if unknown:
        raise errors.InvalidArgument(f"unknown event(s): {', '.join(unknown)} (known: {', '.join(KNOWN_EVENTS)})")
    return tuple(dict.fromkeys(value))


def checked_secret(value: Any) -> str | None:
    if value is None:
        return None
    low, high = SECRET_LENGTH
    if not isinstance(value, str) or not low <= len(value) <= high or not value.isprintable():
        raise errors.InvalidArgument(f"secret: {low} to {high} printable characters (or none: one is generated)")
    return value


class WebhookStore:
    """Thread-safe reads (`hearing` runs in the publisher's thread); changes come from the event loop."""

    def __init__(self, root: Path) -> None:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        root.chmod(0o700)
        self.root = root
        self.path = root / "hooks.json"
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()  # one writer at a time, so an older snapshot never lands last
        self._hooks: dict[str, Webhook] = {}
        self._logs: dict[str, collections.deque[DeliveryRecord]] = {}
        if self.path.exists():
            self._load()

    def add(self, *, url: str, events: Iterable[str], secret: str | None) -> Webhook:
        hook = Webhook(id=secrets.token_hex(8), url=url, events=tuple(events), secret=secret or new_secret(),
                       created=now_rfc3339())
        with self._lock:
            self._hooks[hook.id] = hook
            self._logs[hook.id] = collections.deque(maxlen=LOG_SIZE)
        self.save()
        return hook

    def get(self, hook_id: str) -> Webhook:
        with self._lock:
            hook = self._hooks.get(hook_id)
        if hook is None:
            raise errors.NotFound(f"No such webhook: {hook_id}")
        return hook

    def list(self) -> list[Webhook]:
        """In the order they were added."""
        with self._lock:
            return list(self._hooks.values())

    def hearing(self, event: str) -> builtins.list[Webhook]:
        with self._lock:
            return [h for h in self._hooks.values() if h.hears(event)]

    def remove(self, hook_id: str) -> Webhook:
        with self._lock:
            hook = self._hooks.pop(hook_id, None)
            self._logs.pop(hook_id, None)
        if hook is None:
            raise errors.NotFound(f"No such webhook: {hook_id}")
        self.save()
        return hook

    def deliveries(self, hook_id: str) -> builtins.list[DeliveryRecord]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._logs.get(hook_id, ())))

    def record(self, hook_id: str, rec: DeliveryRecord) -> None:
        """A delivery's latest state into the log (in memory: `save()` writes it)."""
        with self._lock:
            log = self._logs.get(hook_id)
            if log is None:
                return
            if log and log[-1].id == rec.id:
                log.pop()
            log.append(rec)

    def save(self) -> None:
        with self._save_lock:
            with self._lock:
                doc = {"webhooks": [{**_hook_json(h), "deliveries": [asdict(r) for r in self._logs.get(h.id, ())]}
                                    for h in self._hooks.values()]}
            atomicfile.write_bytes(self.path, json.dumps(doc, indent=1).encode(), 0o600)

    def _load(self) -> None:
        try:
            doc = atomicfile.read_json(self.path)
            for obj in doc["webhooks"]:
                hook = Webhook(id=str(obj["id"]), url=str(obj["url"]), events=tuple(obj["events"]),
                               secret=str(obj["secret"]), created=str(obj["created"]),
                               active=bool(obj.get("active", True)))
                self._hooks[hook.id] = hook
                self._logs[hook.id] = collections.deque((DeliveryRecord(**r) for r in obj.get("deliveries", ())),
                                                        maxlen=LOG_SIZE)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise errors.InvalidArgument(f"cannot load the webhooks from {self.path}: {exc}") from None


def _hook_json(h: Webhook) -> dict[str, Any]:
    return {"id": h.id, "url": h.url, "events": list(h.events), "secret": h.secret, "created": h.created,
            "active": h.active}
