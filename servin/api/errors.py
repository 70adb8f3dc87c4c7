"""The one table from error category to HTTP status, and Docker's error body."""

from __future__ import annotations

import json

from aiohttp import web

from servin import errors

class PayloadTooLarge(errors.InvalidArgument):
    """A request body over its route's limit: 413 (a 400 to anything that knows only the category)."""


STATUS: tuple[tuple[type[errors.ServinError], int], ...] = (
    (PayloadTooLarge, 413),
    (errors.NotFound, 404),
    (errors.InvalidArgument, 400),
    (errors.Conflict, 409),
    (errors.NotModified, 304),
    (errors.Forbidden, 403),
    (errors.Unauthorized, 401),
    (errors.Unavailable, 503),
    (errors.NotImplementedYet, 501),
    (errors.SystemError_, 500),
)


def status_of(exc: errors.ServinError) -> int:
    for category, status in STATUS:
        if isinstance(exc, category):
            return status
    return 500


def error_response(status: int, message: str) -> web.Response:
    if status == 304:
        return web.Response(status=304)
    return json_response({"message": message}, status=status)


def json_response(obj: object, status: int = 200) -> web.Response:
    """Docker clients compare Content-Type to exactly "application/json" (no charset)."""
    return web.Response(body=json.dumps(obj).encode(), status=status, content_type="application/json")
