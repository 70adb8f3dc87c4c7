"""The one table from error category to HTTP status and the reference's error `code`, and the bodies
they are rendered in: Docker's `{"message", "code", "details"}` (the docker CLI reads only `message`),
or another shape for a path prefix (the management API's envelope under /api/, plugged in by the
daemon: api does not import manage)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from servin import errors


class PayloadTooLarge(errors.InvalidArgument):
    """A request body over its route's limit: 413 (a 400 to anything that knows only the category)."""


# category, status, code; the first match wins, so subclasses come before their categories
TABLE: tuple[tuple[type[errors.ServinError], int, str], ...] = (
    (PayloadTooLarge, 413, "VALIDATION_ERROR"),
    (errors.AuthenticationFailed, 401, "AUTHENTICATION_FAILED"),
    (errors.ScopeRefused, 403, "AUTHORIZATION_FAILED"),
    (errors.RateLimited, 429, "RATE_LIMIT_EXCEEDED"),
    (errors.NotFound, 404, "RESOURCE_NOT_FOUND"),
    (errors.InvalidParameter, 400, "INVALID_PARAMETER"),
    (errors.InvalidArgument, 400, "VALIDATION_ERROR"),
    (errors.Conflict, 409, "OPERATION_IN_PROGRESS"),
    (errors.NotModified, 304, "OPERATION_FAILED"),
    (errors.Forbidden, 403, "OPERATION_FAILED"),  # Docker's "not allowed" (one host network...), no scope
    (errors.Unauthorized, 401, "OPERATION_FAILED"),  # a registry refused the daemon's credentials
    (errors.Unavailable, 503, "OPERATION_FAILED"),
    (errors.NotImplementedYet, 501, "OPERATION_FAILED"),
    (errors.UpstreamFailed, 502, "DOCKER_ERROR"),
    (errors.OperationFailed, 500, "OPERATION_FAILED"),
    (errors.SystemError_, 500, "INTERNAL_ERROR"),
)
# the code of an answer aiohttp makes itself (no route, wrong method, a malformed request)
STATUS_CODES = {404: "RESOURCE_NOT_FOUND", 405: "INVALID_PARAMETER", 413: "VALIDATION_ERROR",
                500: "INTERNAL_ERROR"}

# the challenge a 401 from the access layer carries
WWW_AUTHENTICATE = 'Bearer realm="servin"'

# (code, message, details) -> the JSON body of an error
ErrorBody = Callable[[str, str, Mapping[str, Any] | None], dict[str, Any]]
ERROR_BODIES = web.AppKey("error_bodies", dict)  # path prefix -> ErrorBody (the daemon adds /api/)

# told (method, path, what went wrong) of every answer 500: the daemon publishes it on its event bus
InternalErrorHook = Callable[[str, str, str], None]
INTERNAL_ERROR_HOOK: web.AppKey[InternalErrorHook] = web.AppKey("internal_error_hook")


def status_of(exc: errors.ServinError) -> int:
    return _entry(exc)[0]


def code_of(exc: errors.ServinError) -> str:
    return _entry(exc)[1]


def _entry(exc: errors.ServinError) -> tuple[int, str]:
    for category, status, code in TABLE:
        if isinstance(exc, category):
            return status, code
    return 500, "INTERNAL_ERROR"


def code_of_status(status: int) -> str:
    return STATUS_CODES.get(status, "VALIDATION_ERROR" if 400 <= status < 500 else "INTERNAL_ERROR")


def docker_body(code: str, message: str, details: Mapping[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "code": code}
    if details:
        body["details"] = dict(details)
    return body


def error_response(status: int, message: str, *, code: str | None = None,
                   details: Mapping[str, Any] | None = None, body: ErrorBody = docker_body) -> web.Response:
    if status == 304:
        return web.Response(status=304)
    return json_response(body(code or code_of_status(status), message, details), status=status)


def exception_response(exc: errors.ServinError, body: ErrorBody = docker_body) -> web.Response:
    """The answer to a typed error: its status, code and details, and the headers it calls for."""
    status, code = _entry(exc)
    resp = error_response(status, exc.message, code=code, details=getattr(exc, "details", None), body=body)
    if isinstance(exc, errors.AuthenticationFailed):
        resp.headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    if isinstance(exc, errors.RateLimited):
        resp.headers["Retry-After"] = str(exc.retry_after)
    return resp


def body_for(request: web.Request) -> ErrorBody:
    """The error body shape of the request's path: the longest matching registered prefix, else Docker's."""
    bodies: dict[str, ErrorBody] = request.app.get(ERROR_BODIES) or {}
    best = ""
    for prefix in bodies:
        if request.path.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return bodies[best] if best else docker_body


def json_response(obj: object, status: int = 200) -> web.Response:
    """Docker clients compare Content-Type to exactly "application/json" (no charset)."""
    return web.Response(body=json.dumps(obj).encode(), status=status, content_type="application/json")
