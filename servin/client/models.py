"""What the management API (`/api/v1/keys`, `/api/v1/tokens`) answers, read from its JSON once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


class MalformedAnswer(ValueError):
    """The daemon answered, but not in the shape the management API promises."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    id: str
    name: str
    scope: str
    created: datetime | None
    expires: datetime | None  # None: never
    last_used: datetime | None  # None: never used
    rate_limit: str | None  # "10/s"; None: the daemon's default

    @classmethod
    def from_wire(cls, d: Any) -> ApiKey:
        obj = _object(d, "key")
        return cls(id=_text(obj, "id"), name=_text(obj, "name"), scope=_text(obj, "scope"),
                   created=_time(obj, "created"), expires=_time(obj, "expires"),
                   last_used=_time(obj, "last_used"), rate_limit=_optional_text(obj, "rate_limit"))

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "scope": self.scope, "created": rfc3339(self.created),
                "expires": rfc3339(self.expires), "last_used": rfc3339(self.last_used),
                "rate_limit": self.rate_limit}


@dataclass(frozen=True, slots=True, kw_only=True)
class NewKey:
    key: ApiKey
    secret: str  # the whole key text (svk_<id>_<secret>): the daemon shows it this once

    @classmethod
    def from_wire(cls, d: Any) -> NewKey:
        return cls(key=ApiKey.from_wire(d), secret=_text(_object(d, "key"), "key"))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyPage:
    items: tuple[ApiKey, ...]
    page: int
    limit: int
    total: int
    pages: int

    @classmethod
    def from_wire(cls, d: Any) -> KeyPage:
        obj = _object(d, "key list")
        items = obj.get("items")
        if not isinstance(items, list):
            raise MalformedAnswer("the key list has no items")
        p = _object(obj.get("pagination"), "pagination")
        return cls(items=tuple(ApiKey.from_wire(i) for i in items), page=_int(p, "page"), limit=_int(p, "limit"),
                   total=_int(p, "total"), pages=_int(p, "pages"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    token: str
    scope: str
    subject: str
    expires: datetime | None

    @classmethod
    def from_wire(cls, d: Any) -> Token:
        obj = _object(d, "token")
        return cls(token=_text(obj, "token"), scope=_text(obj, "scope"), subject=_text(obj, "subject"),
                   expires=_time(obj, "expires"))


def rfc3339(t: datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _object(d: Any, what: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise MalformedAnswer(f"the {what} is not a JSON object")
    return d


def _text(d: dict[str, Any], name: str) -> str:
    v = d.get(name)
    if not isinstance(v, str):
        raise MalformedAnswer(f"{name!r} is missing or not a string")
    return v


def _optional_text(d: dict[str, Any], name: str) -> str | None:
    return None if d.get(name) is None else _text(d, name)


def _int(d: dict[str, Any], name: str) -> int:
    v = d.get(name)
    if not isinstance(v, int) or isinstance(v, bool):
        raise MalformedAnswer(f"{name!r} is missing or not an integer")
    return v


def _time(d: dict[str, Any], name: str) -> datetime | None:
    v = _optional_text(d, name)
    if v is None or v == "":
        return None
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        raise MalformedAnswer(f"{name!r} is not an RFC 3339 time: {v!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
