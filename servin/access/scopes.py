"""Scopes and which one a request needs.

`read` may look: GET and HEAD on the Docker API (inspection, lists, logs, `/events`), but not the
GETs that reach into a container (attach over a websocket, a container's archive or export, which
hand out its files and its streams; HEAD of an archive is only its stat). `write` is everything else
on the Docker API. `admin` adds the key and token management of /api/v1/keys and /api/v1/tokens, and the webhooks of
/api/v1/webhooks (their secrets, and where the engine's events go).
"""

from __future__ import annotations

import enum
import re


class Scope(enum.IntEnum):
    READ = 1
    WRITE = 2
    ADMIN = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Scope:
        for scope in cls:
            if text == str(scope):
                return scope
        raise ValueError(f"invalid scope {text!r}: one of read, write, admin")


_VERSION = re.compile(r"^/v[0-9]+(?:\.[0-9]+)*(?=/)")
_ADMIN = re.compile(r"^/api/v1/(?:keys|tokens|webhooks)(?:/|$)")
# GETs that are not inspection: a container's live streams and its files
_GET_EXCEPTIONS = re.compile(r"^/containers/[^/]+/(?:attach/ws|archive|export)/?$")


def required(method: str, path: str) -> Scope:
    """The least scope that may make this request (`path` without its query)."""
    if _ADMIN.match(path):
        return Scope.ADMIN
    path = _VERSION.sub("", path, count=1)
    method = method.upper()
    if method == "HEAD" or (method == "GET" and not _GET_EXCEPTIONS.match(path)):
        return Scope.READ
    return Scope.WRITE
