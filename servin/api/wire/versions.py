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
from servin.api.wire import compat, endpoint_compat

Version = tuple[int, int]

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


# ---- rules ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Since:
    """A field that exists from `version` on: left out of older answers, dropped from older requests
    (dockerd ignores what an older client could not have meant)."""
    path: str
    version: Version


@dataclass(frozen=True, slots=True)
class Until:
    """A field that exists below `version` only: left out of answers at `version` and newer, ignored in
    requests of those versions."""
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


@dataclass(frozen=True, slots=True)
class EmptyOmitted:
    """From `version` on the field is left out when empty (Go's omitempty came in then)."""
    path: str
    version: Version


@dataclass(frozen=True, slots=True)
class Changed:
    """A value that is `old` below `version` and `new` from it on (a media type, a default)."""
    version: Version
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class Gone:
    """A request field refused from `version` on: present (not empty) there, dockerd's 400 `message`."""
    path: str
    version: Version
    message: str


@dataclass(frozen=True, slots=True)
class OneEntry:
    """A request map that holds one entry at most below `version`: more is dockerd's 400 `message`
    with `{}` replaced by its keys joined by ", "."""
    path: str
    version: Version
    message: str


@dataclass(frozen=True, slots=True)
class Adapt:
    """Request bodies of a version in [since, until) are `change`d: `change(body, warn)` returns the
    body as the engine reads it (or raises dockerd's error), and may `warn(text)` for the answer's
    Warnings. For what an older version meant by a field that moved (Config.MacAddress, Sysctls)."""
    change: Callable[[Any, Callable[[str], None]], Any]
    since: Version = MIN_VERSION
    until: Version = (99, 0)


Rule = Since | Until | Before | Needs | EmptyOmitted | Gone | OneEntry | Adapt


def _no_placeholders(image: dict[str, Any]) -> dict[str, Any]:
    """Below 1.43 an image without tags or digests lists `<none>` placeholders."""
    if not image.get("RepoTags") and not image.get("RepoDigests"):
        image["RepoTags"], image["RepoDigests"] = ["<none>:<none>"], ["<none>@<none>"]
    return image


def _zero_created(image: dict[str, Any]) -> dict[str, Any]:
    """Below 1.44 an image config without `created` shows Go's zero time."""
    image.setdefault("Created", "0001-01-01T00:00:00Z")
    return image


def _legacy_event(event: dict[str, Any]) -> dict[str, Any]:
    """Below 1.52 container and image events repeat the action and actor as status, id (and from)."""
    if event.get("Type") in ("container", "image"):
        event["status"], event["id"] = event["Action"], event["Actor"]["ID"]
        if event["Type"] == "container":
            event["from"] = event["Actor"]["Attributes"].get("image", "")
    return event


def _no_image_create(event: dict[str, Any]) -> dict[str, Any] | None:
    """Image `create` events (a commit's) came with 1.46: none for older clients."""
    return None if event.get("Type") == "image" and event.get("Action") == "create" else event


def _count_unknown(_count: Any) -> int:
    return -1  # below 1.51 an image summary's Containers is not counted


# container.Config fields an image's config no longer shows from 1.50 (moby's legacyConfigFields)
_IMAGE_CONFIG_1_50 = ("Hostname", "Domainname", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
                      "StdinOnce", "Image", "NetworkDisabled", "MacAddress", "StopTimeout")
# and those omitted when empty from 1.52 (the OCI image config's omitempty)
_IMAGE_CONFIG_1_52 = ("Cmd", "Entrypoint", "Env", "Labels", "OnBuild", "User", "Volumes", "WorkingDir")
# the default bridge's endpoint repeated at the top of NetworkSettings, gone in 1.52
_BRIDGE_TOP_LEVEL = ("Bridge", "HairpinMode", "LinkLocalIPv6Address", "LinkLocalIPv6PrefixLen", "SecondaryIPAddresses",
                     "SecondaryIPv6Addresses", "EndpointID", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen",
                     "IPAddress", "IPPrefixLen", "IPv6Gateway", "MacAddress")

# answers: by the kind a wire function declares with @answer
RESPONSES: dict[str, tuple[Rule, ...]] = {
    "ImageSummary": (
        Before((1, 43), _no_placeholders),
        Until("VirtualSize", (1, 44)),
        Before((1, 51), _count_unknown, "Containers"),
    ),
    "ImageInspect": (
        Until("VirtualSize", (1, 44)),
        Before((1, 44), _zero_created),
        Until("Container", (1, 45)),
        Until("ContainerConfig", (1, 45)),
        *(Until(f"Config.{name}", (1, 50)) for name in _IMAGE_CONFIG_1_50),
        *(EmptyOmitted(f"Config.{name}", (1, 52)) for name in _IMAGE_CONFIG_1_52),
        *(EmptyOmitted(name, (1, 52)) for name in ("Parent", "Comment", "DockerVersion", "Author")),
    ),
    "ContainerSummary": (
        Since("Health", (1, 52)),
        Since("NetworkSettings.Networks.*.GwPriority", (1, 48)),
    ),
    "ContainerInspect": (
        *(Until(f"NetworkSettings.{name}", (1, 52)) for name in _BRIDGE_TOP_LEVEL),
        Before((1, 45), endpoint_compat.aliases_with_names),
        Since("NetworkSettings.Networks.*.GwPriority", (1, 48)),
        Until("Config.MacAddress", (1, 52)),
        EmptyOmitted("Config.OnBuild", (1, 52)),
        EmptyOmitted("HostConfig.KernelMemory", (1, 42)),
        EmptyOmitted("HostConfig.KernelMemoryTCP", (1, 42)),
        Until("HostConfig.KernelMemoryTCP", (1, 52)),
    ),
    "DiskUsage": (
        Until("BuilderSize", (1, 42)),
        Until("BuildCache.*.Parent", (1, 42)),
        Before((1, 43), _no_placeholders, "Images.*"),
        Until("Images.*.VirtualSize", (1, 44)),
        *(Since(name, (1, 52)) for name in ("ImageUsage", "ContainerUsage", "VolumeUsage", "BuildCacheUsage")),
    ),
    "Event": (
        Before((1, 46), _no_image_create),
        Before((1, 52), _legacy_event),
    ),
    "Info": (
        Until("ClusterStore", (1, 42)),
        Until("KernelMemory", (1, 42)),
        Until("ClusterAdvertise", (1, 42)),
        Since("CDISpecDirs", (1, 44)),
        Until("RegistryConfig.AllowNondistributableArtifactsCIDRs", (1, 47)),
        Until("RegistryConfig.AllowNondistributableArtifactsHostnames", (1, 47)),
        Since("FirewallBackend", (1, 49)),
        *(Until(f"{name}.Expected", (1, 49)) for name in ("ContainerdCommit", "RuncCommit", "InitCommit")),
        Until("BridgeNfIptables", (1, 50)),
        Until("BridgeNfIp6tables", (1, 50)),
        Until("KernelMemoryTCP", (1, 52)),
    ),
    "ContainerStats": (
        Since("os_type", (1, 52)),
    ),
    "NetworkInspect": (Since("Status", (1, 52)),),
    # dockerd lists networks with their containers below 1.28 only (GetNetworkSummaries from then on)
    "NetworkSummary": (Until("Containers", (1, 28)),),
}
# request bodies: by the Go struct they are decoded into (gojson's GoType.name)
REQUESTS: dict[str, tuple[Rule, ...]] = {
    "container.CreateRequest": (
        OneEntry("NetworkingConfig.EndpointsConfig", (1, 44),
                 "Container cannot be created with multiple network endpoints: {}"),
        Since("NetworkingConfig.EndpointsConfig.*.GwPriority", (1, 48)),
        Gone("MacAddress", (1, 52), endpoint_compat.MAC_GONE),
        Adapt(endpoint_compat.mac_of_one_endpoint, until=(1, 44)),
        Adapt(endpoint_compat.mac_deprecated, since=(1, 44), until=(1, 52)),
        Adapt(endpoint_compat.sysctls_migrated(only_one=True), until=(1, 44)),
        Adapt(endpoint_compat.sysctls_migrated(only_one=False), since=(1, 44), until=(1, 48)),
        Adapt(endpoint_compat.sysctls_refused, since=(1, 48)),
        Until("HostConfig.KernelMemory", (1, 42)),  # ignored from 1.42 on
    ),
    "container.UpdateConfig": (
        Until("KernelMemory", (1, 42)),
        Until("KernelMemoryTCP", (1, 52)),
    ),
    "network.ConnectOptions": (Since("EndpointConfig.MacAddress", (1, 54)),),
}
# query parameters a version did not know (dropped, as dockerd reads them only from their version on):
# route (the path template without its version) -> parameter -> first version
QUERIES: dict[str, Mapping[str, Version]] = {
    "/images/json": {"shared-size": (1, 42), "manifests": (1, 47), "identity": (1, 54)},
    "/system/df": {"type": (1, 42), "verbose": (1, 52)},
    "/images/{name}/json": {"platform": (1, 49), "manifests": (1, 48)},
    "/images/{name}/history": {"platform": (1, 48)},
    "/images/{name}/get": {"platform": (1, 48)},
    "/images/get": {"platform": (1, 48)},
    "/images/load": {"platform": (1, 48)},
    "/images/{name}/push": {"platform": (1, 46)},
    "/images/{name}": {"platforms": (1, 50)},
    "/build/prune": {"reserved-space": (1, 48), "max-used-space": (1, 48), "min-free-space": (1, 48)},
}
# query parameters a version did not read, fixed to what it did: route -> (first version reading them, values)
FIXED_QUERIES: dict[str, tuple[Version, Mapping[str, str]]] = {
    # below 1.42 a websocket attach has all three streams, whatever it asks
    "/containers/{id}/attach/ws": ((1, 42), {"stdin": "1", "stdout": "1", "stderr": "1"}),
}
# routes that exist from a version on: "METHOD /path" -> first version
ROUTES: dict[str, Version] = {
    "GET /images/{name}/attestations": (1, 55),
}
# values that changed with a version
VALUES: dict[str, Changed] = {
    # GET /events without an Accept that picks one
    "events media type": Changed((1, 52), "application/json", "application/jsonl"),
    # logs without a TTY, and the 101 upgrades of attach and exec start without one
    # container create's warnings (create_warnings.py)
    "volume-driver warning": Changed((1, 48), False, True),
    "empty port-bindings warning": Changed((1, 52), False, True),
    # the image routes' `platform` parameter repeated
    "several platforms": Changed((1, 52), False, True),
    "multiplexed stream media type": Changed((1, 42), "application/vnd.docker.raw-stream",
                                             "application/vnd.docker.multiplexed-stream"),
}


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
