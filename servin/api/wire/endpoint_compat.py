"""What older API versions meant by the container-wide network fields, moved onto the endpoints.

Pure functions over a decoded `POST /containers/create` body, used as `Adapt` rules in the version
table (versions.py picks the versions; nothing here compares them): the container-wide
`MacAddress` and the interface sysctls in `HostConfig.Sysctls` go to the endpoint of the network
mode's network, as dockerd's handleMACAddressBC and handleSysctlBC (daemon/server/router/container).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from servin import errors

SYSCTLS_OPTION = "com.docker.network.endpoint.sysctls"
MAC_DEPRECATED = ("The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig "
                  "instead.")
MAC_GONE = "container-wide MAC address no longer supported; use endpoint-specific MAC address instead"

Warn = Callable[[str], None]


def _mode(body: dict[str, Any]) -> str:
    hc = body.get("HostConfig") or {}
    mode = str(hc.get("NetworkMode") or "")
    return "bridge" if mode in ("", "default") else mode


def _bridge_or_user_defined(mode: str) -> bool:
    return mode not in ("host", "none") and not mode.startswith("container:")


def _endpoints(body: dict[str, Any]) -> dict[str, Any]:
    nc = body.get("NetworkingConfig") or {}
    body["NetworkingConfig"] = nc
    eps = nc.get("EndpointsConfig") or {}
    nc["EndpointsConfig"] = eps
    return eps


def _mode_endpoint(body: dict[str, Any], *, only_one: bool) -> dict[str, Any]:
    """The endpoint settings of the network mode's network (dockerd's epConfigForNetMode): made when
    there are none; with `only_one` (a version that allowed a single entry) that entry, whatever
    its key; otherwise the entry under the mode's name, or dockerd's 400."""
    eps = _endpoints(body)
    name = _mode(body)
    if not eps:
        eps[name] = {}
    elif only_one:
        name = next(iter(eps))
    elif name not in eps:
        raise errors.InvalidArgument("HostConfig.NetworkMode must match the identity of a network in "
                                     "NetworkSettings.Networks")
    if eps[name] is None:
        eps[name] = {}
    ep: dict[str, Any] = eps[name]
    return ep


def mac_of_one_endpoint(body: Any, warn: Warn) -> Any:
    """Below 1.44: endpoint MACs were not read, and the container-wide one is the main network's."""
    if not isinstance(body, dict):
        return body
    mac = body.pop("MacAddress", "")
    if not mac:
        for ep in _endpoints(body).values():
            if isinstance(ep, dict):
                ep.pop("MacAddress", None)
        return body
    if not _bridge_or_user_defined(_mode(body)):
        raise errors.InvalidArgument("conflicting options: mac-address and the network mode")
    _mode_endpoint(body, only_one=True)["MacAddress"] = mac
    return body


def mac_deprecated(body: Any, warn: Warn) -> Any:
    """1.44 to 1.51: the container-wide MAC still goes to the main network's endpoint, with a warning."""
    if not isinstance(body, dict):
        return body
    mac = body.pop("MacAddress", "")
    if not mac:
        return body
    if _bridge_or_user_defined(_mode(body)):
        try:
            ep = _mode_endpoint(body, only_one=False)
        except errors.InvalidArgument as exc:
            raise errors.InvalidArgument(f"unable to migrate container-wide MAC address to a specific network: "
                                         f"{exc}") from None
        if not ep.get("MacAddress"):
            ep["MacAddress"] = mac
        elif str(ep["MacAddress"]).lower() != str(mac).lower():
            raise errors.InvalidArgument("the container-wide MAC address must match the endpoint-specific MAC "
                                         "address for the main network, or be left empty")
    warn(MAC_DEPRECATED)
    return body


def _interface_sysctls(body: dict[str, Any]) -> list[tuple[str, str]]:
    """`net.X.Y.ethN.Z` entries of HostConfig.Sysctls, for a container with a network of its own."""
    hc = body.get("HostConfig") or {}
    mode = _mode(body)
    if mode == "host" or mode.startswith("container:"):
        return []
    out = []
    for key, value in sorted((hc.get("Sysctls") or {}).items()):
        parts = key.split(".", 4)
        if len(parts) == 5 and parts[0] == "net" and parts[3].startswith("eth"):
            out.append((key, value))
    return out


def sysctls_migrated(*, only_one: bool) -> Callable[[Any, Warn], Any]:
    """Up to 1.47: `net.X.Y.eth0.Z` sysctls become the main network's endpoint sysctls
    (`net.X.Y.IFNAME.Z`), with a warning; another interface than eth0 is dockerd's error."""

    def migrate(body: Any, warn: Warn) -> Any:
        if not isinstance(body, dict):
            return body
        found = _interface_sysctls(body)
        if not found:
            return body
        try:
            ep = _mode_endpoint(body, only_one=only_one)
        except errors.InvalidArgument as exc:
            raise errors.SystemError_(f"unable to find a network for sysctl {found[0][0]}: {exc}") from None
        moved = []
        for key, value in found:
            parts = key.split(".", 4)
            if parts[3] != "eth0":
                raise errors.SystemError_(f"unable to determine network endpoint for sysctl {key}, use driver "
                                          f"option '{SYSCTLS_OPTION}' to set per-interface sysctls")
            moved.append(f"net.{parts[1]}.{parts[2]}.IFNAME.{parts[4]}={value}")
        option = ",".join(moved)
        warn(f"Migrated sysctl {json.dumps(','.join(k for k, _ in found))} to "
             f"DriverOpts{{{json.dumps(SYSCTLS_OPTION)}:{json.dumps(option)}}}.")
        opts = ep.get("DriverOpts") or {}
        if opts.get(SYSCTLS_OPTION):
            option += "," + opts[SYSCTLS_OPTION]
        ep["DriverOpts"] = {**opts, SYSCTLS_OPTION: option}
        sysctls = body["HostConfig"]["Sysctls"]
        for key, _ in found:
            del sysctls[key]
        return body

    return migrate


def sysctls_refused(body: Any, warn: Warn) -> Any:
    """From 1.48: interface sysctls are the endpoints' driver option only."""
    if isinstance(body, dict):
        found = _interface_sysctls(body)
        if found:
            raise errors.SystemError_(f"interface specific sysctl setting {json.dumps(found[0][0])} must be supplied "
                                      f"using driver option '{SYSCTLS_OPTION}'")
    return body


def aliases_with_names(answer: Any) -> Any:
    """Container inspect below 1.45: on user-defined networks `Aliases` also holds the container's
    short ID and hostname (deduplicated), as dockerd's router adds them."""
    if not isinstance(answer, dict):
        return answer
    extra = [answer.get("Id", "")[:12], (answer.get("Config") or {}).get("Hostname", "")]
    for name, ep in ((answer.get("NetworkSettings") or {}).get("Networks") or {}).items():
        if name not in ("bridge", "host", "none", "default") and isinstance(ep, dict):
            ep["Aliases"] = list(dict.fromkeys(a for a in [*(ep.get("Aliases") or []), *extra] if a))
    return answer
