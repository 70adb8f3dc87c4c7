"""The API version window and every difference between versions, in one table.

A request's version (its /vX.Y prefix; unversioned requests are the newest) is set once by the API's
middleware (`use`) and read here (`current`). Wire functions build the newest shape, with the fields
of older versions too; the rules below take away, per version, what that version did not have or no
longer has, and refuse or drop request fields a version did not know. Handlers and the engine never
compare versions themselves.

Rules name a field by its path in the JSON: `Config.MacAddress`, with `*` for every value of a map or
item of a list (`NetworkSettings.Networks.*.DNSNames`). Facts from moby's api/docs/CHANGELOG.md and
daemon/server/router (docker-v29.7.2), summarised in docker-api-delta-1.41-to-1.55.md.
"""

from __future__ import annotations

import contextvars
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from servin import errors
from servin.api.wire import compat

Version = tuple[int, int]

MIN_VERSION: Version = (1, 24)
MAX_VERSION: Version = (1, 41)

_current: contextvars.ContextVar[Version] = contextvars.ContextVar("servin_api_version", default=MAX_VERSION)


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
    return _current.set(v)


def reset(token: contextvars.Token[Version]) -> None:
    _current.reset(token)


def current() -> Version:
    return _current.get()


# ---- rules ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Since:
    """A field that exists from `version` on: left out of older answers, dropped from older requests
    (dockerd ignores what an older client could not have meant)."""
    path: str
    version: Version


@dataclass(frozen=True, slots=True)
class Until:
    """A field that exists below `version` only: left out of answers at `version` and newer."""
    path: str
    version: Version


@dataclass(frozen=True, slots=True)
class Before:
    """Answers below `version` are `change`d (the object at `path`, "" for the whole), for a value that
    was shaped otherwise then."""
    version: Version
    change: Callable[[Any], Any]
    path: str = ""


@dataclass(frozen=True, slots=True)
class Needs:
    """A request field that needs `version`: present (not empty) below it, dockerd's 400."""
    path: str
    version: Version
    name: str = ""  # how dockerd's message names it, when not its path


Rule = Since | Until | Before | Needs

# answers: by the kind a wire function declares with @answer
RESPONSES: dict[str, tuple[Rule, ...]] = {}
# request bodies: by the Go struct they are decoded into (gojson's GoType.name)
REQUESTS: dict[str, tuple[Rule, ...]] = {}
# query parameters a version did not know (dropped, as dockerd reads them only from their version on):
# route (the path template without its version) -> parameter -> first version
QUERIES: dict[str, Mapping[str, Version]] = {}
# routes that exist from a version on: "METHOD /path" -> first version
ROUTES: dict[str, Version] = {}


# ---- applying them --------------------------------------------------------------------------------

T = TypeVar("T")


def shape(kind: str, obj: T) -> T:
    """`obj`, an answer of `kind` in the newest shape, as the current version shapes it (in place)."""
    rules = RESPONSES.get(kind)
    if not rules:
        return obj
    v = current()
    for rule in rules:
        if isinstance(rule, Since) and v < rule.version or isinstance(rule, Until) and v >= rule.version:
            _remove(obj, rule.path.split("."))
        elif isinstance(rule, Before) and v < rule.version:
            obj = _change(obj, rule.path.split(".") if rule.path else [], rule.change)
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
        if isinstance(rule, Since) and v < rule.version:
            _remove(body, rule.path.split("."))
        elif isinstance(rule, Before) and v < rule.version:
            body = _change(body, rule.path.split(".") if rule.path else [], rule.change)
    return body


def query_at_version(route: str, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The parameters of a request to `route` its version knows."""
    since = QUERIES.get(route, {})
    v = current()
    return [(k, val) for k, val in params if since.get(k, MIN_VERSION) <= v]


def check_route(method: str, route: str) -> None:
    """dockerd's 400 for a route newer than the request's version."""
    first = ROUTES.get(f"{method} {route}")
    if first is not None and current() < first:
        raise errors.InvalidArgument(f"{method} {route} requires minimum API version {text(first)}")


# ---- container config of API 1.42 to 1.48: mounts, console size, annotations, healthcheck, stop signal,
# volume prune (dockerd's postContainersCreate, exec routes, postContainersStop, postVolumesPrune) ----

@dataclass(frozen=True, slots=True)
class FilterBefore:
    """Requests below `version` filter as if they had `key=value` in their `filters` parameter (for a
    default a newer version changed: volume prune's all=true)."""
    key: str
    value: str
    version: Version


# filters a version implied: route -> rules
FILTERS: dict[str, tuple[FilterBefore, ...]] = {}


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


def _extend(table: dict[str, tuple[Any, ...]], key: str, *rules: Any) -> None:
    table[key] = (*table.get(key, ()), *rules)


_extend(REQUESTS, "container.CreateRequest",
        Before((1, 42), compat.mounts_before_1_42, "HostConfig.Mounts"),
        Before((1, 42), compat.no_console_size, "HostConfig.ConsoleSize"),
        Since("HostConfig.Annotations", (1, 43)),
        Since("Healthcheck.StartInterval", (1, 44)),
        Needs("HostConfig.Mounts.*.BindOptions.ReadOnlyForceRecursive", (1, 44), "BindOptions.ReadOnlyForceRecursive"),
        Before((1, 44), compat.read_only_non_recursive, "HostConfig"),
        Needs("HostConfig.Mounts.*.VolumeOptions.Subpath", (1, 45), "VolumeOptions.Subpath"),
        Since("HostConfig.Mounts.*.TmpfsOptions.Options", (1, 46)),
        Before((1, 48), compat.no_image_mounts, "HostConfig.Mounts"))
_extend(REQUESTS, "container.ExecOptions", Since("ConsoleSize", (1, 42)))
_extend(REQUESTS, "container.ExecStartOptions", Since("ConsoleSize", (1, 42)))
_extend(RESPONSES, "ContainerSummary", Since("HostConfig.Annotations", (1, 46)))
QUERIES["/containers/{id}/stop"] = {**QUERIES.get("/containers/{id}/stop", {}), "signal": (1, 42)}
QUERIES["/containers/{id}/restart"] = {**QUERIES.get("/containers/{id}/restart", {}), "signal": (1, 42)}
FILTERS["/volumes/prune"] = (FilterBefore("all", "true", (1, 42)),)


def _items(node: Any, key: str) -> list[Any]:
    if key == "*":
        return list(node.values()) if isinstance(node, dict) else list(node) if isinstance(node, list) else []
    if isinstance(node, dict) and key in node:
        return [node[key]]
    return []


def _remove(node: Any, path: list[str]) -> None:
    if isinstance(node, list) and path[0] != "*":
        for item in node:  # a list answer: the rule is about each item
            _remove(item, path)
        return
    if len(path) == 1:
        if isinstance(node, dict):
            node.pop(path[0], None)
        return
    for child in _items(node, path[0]):
        _remove(child, path[1:])


def _present(node: Any, path: list[str]) -> bool:
    if not path:
        return node not in (None, "", 0, False, [], {})
    return any(_present(child, path[1:]) for child in _items(node, path[0]))


def _change(node: Any, path: list[str], change: Callable[[Any], Any], top: bool = True) -> Any:
    if isinstance(node, list) and top and (not path or path[0] != "*"):
        return [_change(item, path, change, False) for item in node]  # a list answer: each item
    if not path:
        return change(node)
    if isinstance(node, dict):
        if path[0] == "*":
            for k in list(node):
                node[k] = _change(node[k], path[1:], change, False)
        elif path[0] in node:
            node[path[0]] = _change(node[path[0]], path[1:], change, False)
    return node
