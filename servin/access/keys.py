"""API keys: `svk_<id>_<secret>`, shown once at generation, stored only as the SHA-256 of the secret.

The store is one JSON file (`<data-root>/access/keys.json`, 0600, replaced atomically) read at start
and again on SIGHUP. Generating or revoking a key writes it at once, so a revoked key is refused by
the next request and a new key survives a restart. When a key was last used is kept in memory and
written with the next change or by `flush()` (the daemon calls it every minute and at shutdown): a
request never waits for a disk write, and a crash loses at most that minute of last-used times.

The secret is 32 random bytes, so an unsalted fast hash is enough (nothing to brute-force); it is
compared in constant time.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from servin import atomicfile, errors
from servin.access.durations import Rate
from servin.access.scopes import Scope

PREFIX = "svk_"
_KEY = re.compile(r"svk_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})")
_ID = re.compile(r"[0-9a-f]{12}")
MAX_NAME = 100
INVALID_KEY = "invalid API key"


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(t: datetime.datetime | None) -> str | None:
    return None if t is None else t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str | None) -> datetime.datetime | None:
    if text is None:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    id: str
    name: str
    scope: Scope
    created: datetime.datetime
    expires: datetime.datetime | None
    last_used: datetime.datetime | None
    rate_limit: Rate | None  # None: the daemon's api-rate-limit

    def expired(self, now: datetime.datetime) -> bool:
        return self.expires is not None and now >= self.expires


@dataclass(frozen=True, slots=True, kw_only=True)
class _Record:
    key: ApiKey
    digest: bytes  # SHA-256 of the secret


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class KeyStore:
    """Safe to use from the event loop and from worker threads at once."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime.datetime] = utcnow) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()  # the records and last-used times
        self._write_lock = threading.Lock()  # one writer at a time, each with the newest snapshot
        self._records: dict[str, _Record] = {}
        self._used: dict[str, datetime.datetime] = {}  # last use not yet written
        self.reload()

    def reload(self) -> None:
        """Read the file again (SIGHUP); a file that does not load raises ValueError and changes nothing."""
        records = _load(self.path)
        with self._lock:
            self._records = records

    def generate(self, *, name: str, scope: Scope = Scope.READ, expires: datetime.timedelta | None = None,
                 rate_limit: Rate | None = None) -> tuple[ApiKey, str]:
        """A new key and its text (`svk_...`), the only time the text exists."""
        if not name or len(name) > MAX_NAME or not name.isprintable():
            raise errors.InvalidArgument(f"invalid key name {name!r}: 1 to {MAX_NAME} printable characters")
        now = self._clock().replace(microsecond=0)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        with self._write_lock:
            with self._lock:
                key_id = secrets.token_hex(6)
                while key_id in self._records:
                    key_id = secrets.token_hex(6)
                key = ApiKey(id=key_id, name=name, scope=scope, created=now, last_used=None, rate_limit=rate_limit,
                             expires=None if expires is None else now + expires)
                self._records[key_id] = _Record(key=key, digest=_digest(secret))
            self._write()
        return key, f"{PREFIX}{key_id}_{secret}"

    def list(self) -> list[ApiKey]:
        """Every key, oldest first, with its last use (written or not)."""
        with self._lock:
            keys = [_noted(r, self._used).key for r in self._records.values()]
        return sorted(keys, key=lambda k: (k.created, k.id))

    def revoke(self, key_id: str) -> None:
        with self._write_lock:
            with self._lock:
                if not _ID.fullmatch(key_id) or self._records.pop(key_id, None) is None:
                    raise errors.NotFound(f"no such API key: {key_id}")
                self._used.pop(key_id, None)
            self._write()

    def verify(self, text: str) -> ApiKey:
        """The key whose text this is; AuthenticationFailed if none is, or it has expired. On every request:
        its use is only noted in memory."""
        m = _KEY.fullmatch(text)
        record = self._records.get(m["id"]) if m else None
        if m is None or record is None or not hmac.compare_digest(record.digest, _digest(m["secret"])):
            raise errors.AuthenticationFailed(INVALID_KEY)
        now = self._clock()
        if record.key.expired(now):
            raise errors.AuthenticationFailed(f"API key {record.key.id} expired at {rfc3339(record.key.expires)}")
        self._used[record.key.id] = now  # one dict store (atomic): no lock, no copy, no disk on the request path
        return record.key

    def flush(self) -> None:
        """Write last-used times that changed since the last write."""
        with self._write_lock:
            if self._used:
                self._write()

    def _write(self) -> None:
        """Under _write_lock: the file from a snapshot of the records, with their last uses."""
        with self._lock:
            used, self._used = self._used, {}
            self._records = {i: _noted(r, used) for i, r in self._records.items()}
            snapshot = [_to_json(r) for r in self._records.values()]
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomicfile.write_bytes(self.path, json.dumps({"keys": snapshot}, indent=1).encode(), mode=0o600)


def _noted(r: _Record, used: dict[str, datetime.datetime]) -> _Record:
    """The record with the last use noted since the last write, if any."""
    when = used.get(r.key.id)
    return r if when is None else replace(r, key=replace(r.key, last_used=when.replace(microsecond=0)))


def _to_json(r: _Record) -> dict[str, Any]:
    k = r.key
    return {"id": k.id, "name": k.name, "scope": str(k.scope), "sha256": r.digest.hex(),
            "created": rfc3339(k.created), "expires": rfc3339(k.expires), "last_used": rfc3339(k.last_used),
            "rate_limit": None if k.rate_limit is None else str(k.rate_limit)}


def _load(path: Path) -> dict[str, _Record]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the API keys in {path}: {exc}") from None
    records: dict[str, _Record] = {}
    try:
        for item in data["keys"]:
            created = _parse_time(item["created"])
            if created is None or not _ID.fullmatch(item["id"]):
                raise ValueError(f"id {item['id']!r}, created {item['created']!r}")
            key = ApiKey(id=item["id"], name=str(item["name"]), scope=Scope.parse(item["scope"]), created=created,
                         expires=_parse_time(item.get("expires")), last_used=_parse_time(item.get("last_used")),
                         rate_limit=Rate.parse(item["rate_limit"]) if item.get("rate_limit") else None)
            records[key.id] = _Record(key=key, digest=bytes.fromhex(item["sha256"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"cannot read the API keys in {path}: bad entry ({exc!r})") from None
    return records
