"""The management API's envelope: `{"success": true, "data": ..., "error": null}`, or on failure
`{"success": false, "data": null, "error": {"code": ..., "message": ...}}` with the reference's codes;
the request body and pagination helpers every /api/v1 route shares."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from servin import errors

PREFIX = "/api/"  # every management path (Docker's never start with /api)
DEFAULT_LIMIT, MAX_LIMIT = 20, 100


def ok(data: Any, status: int = 200) -> web.Response:
    return _json({"success": True, "data": data, "error": None}, status)


def failure_body(code: str, message: str, details: Mapping[str, Any] | None) -> dict[str, Any]:
    """The body of an error on a management path (the API's outer middleware renders every error)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = dict(details)
    return {"success": False, "data": None, "error": error}


async def json_object(request: web.Request, *, allowed: Sequence[str]) -> dict[str, Any]:
    """The request's JSON object; a field outside `allowed` is refused by name, never dropped. A body must
    say it is application/json, which a browser's form or text/plain post cannot without a CORS preflight."""
    raw = await request.read()
    media_type = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
    if raw and media_type != "application/json":
        raise errors.InvalidArgument(f"Content-Type specified ({request.headers.get('Content-Type', '')}) "
                                     "must be 'application/json'")
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise errors.InvalidArgument(f"invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise errors.InvalidArgument("the body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise errors.InvalidArgument(f"unknown field(s): {', '.join(unknown)} (known: {', '.join(allowed)})")
    return body


def optional_str(body: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    value = body.get(name, default)
    if value is not None and not isinstance(value, str):
        raise errors.InvalidArgument(f"{name} must be a string or null")
    return value


def paginate(request: web.Request, items: Sequence[Any]) -> dict[str, Any]:
    """`page` (from 1) and `limit` (default 20, at most 100) of the query, applied to `items`."""
    page = _positive(request, "page", 1)
    limit = _positive(request, "limit", DEFAULT_LIMIT)
    if limit > MAX_LIMIT:
        raise errors.InvalidParameter(f"limit must be at most {MAX_LIMIT}, not {limit}")
    start = (page - 1) * limit
    return {"items": list(items[start:start + limit]),
            "pagination": {"page": page, "limit": limit, "total": len(items),
                           "pages": math.ceil(len(items) / limit)}}


def _positive(request: web.Request, name: str, default: int) -> int:
    return integer(request, name, default, minimum=1)


def integer(request: web.Request, name: str, default: int, *, minimum: int = 0) -> int:
    """The query's integer `name` (at least `minimum`), else `default`; INVALID_PARAMETER names it."""
    text = request.query.get(name)
    if text is None:
        return default
    if not text.strip().lstrip("-").isdigit() or int(text) < minimum:
        raise errors.InvalidParameter(f"{name} must be an integer of at least {minimum}, not {text!r}")
    return int(text)


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """The query's boolean `name`: true/1/yes or false/0/no; anything else is INVALID_PARAMETER."""
    text = request.query.get(name)
    if text is None:
        return default
    value = text.strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no", ""):
        return False
    raise errors.InvalidParameter(f"{name} must be true or false, not {text!r}")


def _json(obj: object, status: int) -> web.Response:
    return web.Response(body=json.dumps(obj).encode(), status=status, content_type="application/json")
