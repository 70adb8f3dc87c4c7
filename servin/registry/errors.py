"""Registry errors as the distribution client words them (``manifest unknown: manifest unknown``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus

from servin import errors
from servin.registry.auth import parse_challenges


@dataclass
class RegistryError(Exception):
    """One error of a registry's ``{"errors": [...]}`` body (the first; dockerd ignores the rest)."""

    code: str  # MANIFEST_UNKNOWN, UNAUTHORIZED, DENIED, NAME_UNKNOWN, BLOB_UNKNOWN, ...
    text: str
    status: int = 0

    def __str__(self) -> str:
        return f"{self.code.lower().replace('_', ' ')}: {self.text}"


class TransportError(Exception):
    """The registry could not be reached or spoke no HTTP we understand (may fall back to http)."""


def from_response(status: int, body: bytes, www_authenticate: str = "") -> Exception:
    """The error a non-2xx registry answer stands for (distribution's HandleErrorResponse)."""
    if 400 <= status < 500:
        for scheme, params in parse_challenges(www_authenticate):
            if scheme == "bearer" and params.get("error") in ("invalid_token", "insufficient_scope"):
                code = "UNAUTHORIZED" if params["error"] == "invalid_token" else "DENIED"
                default = ("authentication required" if code == "UNAUTHORIZED"
                           else "requested access to the resource is denied")
                return RegistryError(code, params.get("error_description") or default, status)
        data: object = None
        try:
            data = json.loads(body)
            first = (data.get("errors") or [])[0] if isinstance(data, dict) else None
        except (ValueError, IndexError, AttributeError):
            first = None
        if isinstance(first, dict) and first.get("code"):
            return RegistryError(str(first["code"]), str(first.get("message") or ""), status)
        details = data.get("details") if first is None and isinstance(data, dict) else None
        if isinstance(details, str) and details:  # Docker Hub's token server: {"details": "incorrect ..."}
            code = {401: "UNAUTHORIZED", 429: "TOOMANYREQUESTS"}.get(status, "UNKNOWN")
            return RegistryError(code, details, status)
        if status == 401:
            return RegistryError("UNAUTHORIZED", "authentication required", status)
        if status == 404:
            return RegistryError("NOT_FOUND", "not found", status)
        return RegistryError("UNKNOWN", f"unexpected status code {status}: {body[:200].decode(errors='replace')}",
                             status)
    return errors.SystemError_(f"received unexpected HTTP status: {status} {_reason(status)}")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def translate_pull(exc: Exception, familiar: str, familiar_name: str) -> errors.ServinError:
    """dockerd's translatePullError: not-found kinds are 404 with the reference named."""
    if isinstance(exc, errors.ServinError):
        return exc
    if isinstance(exc, RegistryError):
        if exc.code == "DENIED":
            return errors.NotFound(f"pull access denied for {familiar_name}, repository does not exist or may "
                                   f"require 'docker login': {exc}")
        if exc.code == "MANIFEST_UNKNOWN":
            return errors.NotFound(f"manifest for {familiar} not found: {exc}")
        if exc.code == "NAME_UNKNOWN":
            return errors.NotFound(f"repository {familiar_name} not found: {exc}")
        if exc.code == "UNAUTHORIZED":
            return errors.Unauthorized(str(exc))
        return errors.SystemError_(str(exc))
    return errors.SystemError_(str(exc))
