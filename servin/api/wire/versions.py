"""The API version window, and the rules of version_table.py applied to a request of a version.

A request's version (its /vX.Y prefix; unversioned requests are the newest) is set once by the API's
middleware (`use`) and read here (`current`). Wire functions build the newest shape, with the fields
of older versions too; the table's rules take away, per version, what that version did not have or no
longer has, and refuse or drop request fields a version did not know. Handlers and the engine never
compare versions themselves.

Rules name a field by its path in the JSON: `Config.MacAddress`, with `*` for every value of a map or
item of a list (`NetworkSettings.Networks.*.DNSNames`).
"""

from __future__ import annotations

import contextvars
import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from servin import errors
from servin.api.wire.version_rules import (
    Adapt as Adapt,
    Before as Before,
    Changed as Changed,
    EmptyOmitted as EmptyOmitted,
    FilterBefore as FilterBefore,
    Gone as Gone,
    Needs as Needs,
    OneEntry as OneEntry,
    Rule as Rule,
    Since as Since,
    Until as Until,
    Version as Version,
)
from servin.api.wire.version_table import (
    FILTERS as FILTERS,
    FIXED_QUERIES as FIXED_QUERIES,
    QUERIES as QUERIES,
    REQUESTS as REQUESTS,
    RESPONSES as RESPONSES,
    ROUTES as ROUTES,
    VALUES as VALUES,
)

MIN_VERSION: Version = (1, 24)
MAX_VERSION: Version = (1, 55)

_current: contextvars.ContextVar[Version] = contextvars.ContextVar("servin_api_version")
# what the rules said while shaping this request's body (dockerd's create Warnings)
_warned: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("servin_api_warnings", default=())


def parse(text: str) -> Version | None:
    """"1.41" as (1, 41); None for anything that is not MAJOR.MINOR."""
    major, dot, minor = text.partition(".")
    if not dot or not major.isdigit() or not minor.isdigit():
        return None
    return int(major), int(minor)


def text(v: Version) -> str:
    return f"{v[0]}.{v[1]}"


def use(v: Version) -> contextvars.Token[Version]:
    """The version of the request being served (the API middleware's call, once per request)."""
    _warned.set(())
    return _current.set(v)


def reset(token: contextvars.Token[Version]) -> None:
    _current.reset(token)


def current() -> Version:
    """The request's version; outside a request (a test calling the wire), the newest."""
    return _current.get(MAX_VERSION)


def warnings() -> list[str]:
    """The warnings the rules gave while shaping this request's body (an `Adapt`'s), in order."""
    return list(_warned.get())


def _warn(message: str) -> None:
    _warned.set((*_warned.get(), message))


def value(name: str) -> Any:
    changed = VALUES[name]
    return changed.new if current() >= changed.version else changed.old


# ---- applying them --------------------------------------------------------------------------------

T = TypeVar("T")


def shape(kind: str, obj: T) -> T:
    """`obj`, an answer of `kind` in the newest shape, as the current version shapes it (in place); None
    when that version has no such answer (an event it did not know)."""
    rules = RESPONSES.get(kind)
    if not rules:
        return obj
    v = current()
    for rule in rules:
        if isinstance(rule, Since) and v < rule.version or isinstance(rule, Until) and v >= rule.version:
            _remove(obj, rule.path.split("."))
        elif isinstance(rule, EmptyOmitted) and v >= rule.version:
            _remove(obj, rule.path.split("."), only_empty=True)
        elif isinstance(rule, Before) and v < rule.version:
            obj = _change(obj, rule.path.split(".") if rule.path else [], rule.change)
            if obj is None:  # not part of this version's answer at all
                return obj
    return obj


def answer(kind: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A wire function whose result is an answer of `kind`, shaped for the request's version."""
    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def shaped(*args: Any, **kwargs: Any) -> T:
            return shape(kind, fn(*args, **kwargs))
        return shaped
    return wrap


def shape_request(kind: str, body: Any) -> Any:
    """A decoded request body of Go struct `kind`: fields its version did not know dropped, or refused."""
    rules = REQUESTS.get(kind)
    if not rules or not isinstance(body, dict):
        return body
    v = current()
    for rule in rules:
        if isinstance(rule, Needs) and v < rule.version and _present(body, rule.path.split(".")):
            raise errors.InvalidArgument(f"{rule.name or rule.path} needs API v{text(rule.version)} or newer")
        if isinstance(rule, Gone) and v >= rule.version and _present(body, rule.path.split(".")):
            raise errors.InvalidArgument(rule.message)
        if isinstance(rule, OneEntry) and v < rule.version:
            for entries in _items_at(body, rule.path.split(".")):
                if isinstance(entries, dict) and len(entries) > 1:
                    raise errors.InvalidArgument(rule.message.format(", ".join(sorted(entries))))
        if isinstance(rule, Adapt) and rule.since <= v < rule.until:
            body = rule.change(body, _warn)
        if isinstance(rule, Since) and v < rule.version or isinstance(rule, Until) and v >= rule.version:
            _remove(body, rule.path.split("."))
        elif isinstance(rule, Before) and v < rule.version:
            body = _change(body, rule.path.split(".") if rule.path else [], rule.change)
    return body


def query_at_version(route: str, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The parameters of a request to `route` as its version reads them (unknown ones dropped, fixed ones set)."""
    since = QUERIES.get(route, {})
    v = current()
    kept = [(k, val) for k, val in params if since.get(k, MIN_VERSION) <= v]
    first, fixed = FIXED_QUERIES.get(route, ((0, 0), {}))
    if v < first:
        kept = [(k, val) for k, val in kept if k not in fixed] + list(fixed.items())
    return kept


def shapes_query(route: str) -> bool:
    """Whether `route` has query parameters that differ by version."""
    return route in QUERIES or route in FIXED_QUERIES


def check_route(method: str, route: str) -> None:
    """dockerd's 400 for a route newer than the request's version."""
    first = ROUTES.get(f"{method} {route}")
    if first is not None and current() < first:
        raise errors.InvalidArgument(f"{method} {route} requires minimum API version {text(first)}")


def filters_at_version(route: str, raw: str | None) -> str | None:
    """A request's `filters` parameter (JSON) as its version reads it: with the filters FILTERS implies."""
    implied = [f for f in FILTERS.get(route, ()) if current() < f.version]
    if not implied:
        return raw
    try:
        filters = json.loads(raw or "{}")
    except ValueError:
        return raw  # the parser's 400
    if not isinstance(filters, dict):
        return raw
    for f in implied:
        given = filters.get(f.key)
        if isinstance(given, list):
            filters[f.key] = given if f.value in given else [*given, f.value]
        elif isinstance(given, dict):
            filters[f.key] = {**given, f.value: True}
        else:
            filters[f.key] = {f.value: True} if given is None else [given, f.value]
    return json.dumps(filters)


def _items(node: Any, key: str) -> list[Any]:
    if key == "*":
        return list(node.values()) if isinstance(node, dict) else list(node) if isinstance(node, list) else []
    if isinstance(node, dict) and key in node:
        return [node[key]]
    return []


def _items_at(node: Any, path: list[str]) -> list[Any]:
    if not path:
        return [node]
    return [found for child in _items(node, path[0]) for found in _items_at(child, path[1:])]


EMPTY: tuple[Any, ...] = (None, "", 0, False, [], {})


def _remove(node: Any, path: list[str], only_empty: bool = False) -> None:
    if isinstance(node, list) and path[0] != "*":
        for item in node:  # a list answer: the rule is about each item
            _remove(item, path, only_empty)
        return
    if len(path) == 1:
        if isinstance(node, dict) and path[0] in node and (not only_empty or node[path[0]] in EMPTY):
            del node[path[0]]
        return
    for child in _items(node, path[0]):
        _remove(child, path[1:], only_empty)


def _present(node: Any, path: list[str]) -> bool:
    if not path:
        return node not in EMPTY
    return any(_present(child, path[1:]) for child in _items(node, path[0]))


def _change(node: Any, path: list[str], change: Callable[[Any], Any], top: bool = True) -> Any:
    if isinstance(node, list) and top and (not path or path[0] != "*"):
        return [_change(item, path, change, False) for item in node]  # a list answer: each item
    if not path:
        return change(node)
    if isinstance(node, list) and path[0] == "*":
        return [_change(item, path[1:], change, False) for item in node]
    if isinstance(node, dict):
        if path[0] == "*":
            for k in list(node):
                node[k] = _change(node[k], path[1:], change, False)
        elif path[0] in node:
            node[path[0]] = _change(node[path[0]], path[1:], change, False)
    return node
