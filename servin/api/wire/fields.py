"""Every field of a container create body (the v1.41 swagger's ContainerConfig, HostConfig and
EndpointSettings) and what Servin does with it: honoured (parsed into the domain and applied), or
refused when it carries anything but its zero value, with a 400 that names it. The docker CLI sends
most fields with zero values on every call, so only a value a user chose is refused. Nothing is
accepted and dropped; tests/unit/test_fields.py walks the swagger and fails on a field in neither
table, and posts each refused field's sample to see the refusal.

The refusals of REFUSED_HERE are made by `refuse_unimplemented`; the others where their field is
parsed (resources.py, security.py, parse_endpoint), with dockerd's words where dockerd has some.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from servin import errors

HONOURED: dict[str, frozenset[str]] = {
    "ContainerConfig": frozenset({
        "AttachStderr", "AttachStdin", "AttachStdout", "Cmd", "Domainname", "Entrypoint", "Env", "ExposedPorts",
        "Healthcheck", "Hostname", "Image", "Labels", "MacAddress", "OpenStdin", "StdinOnce", "StopSignal",
        "StopTimeout", "Tty", "User", "Volumes", "WorkingDir",
    }),
    "HostConfig": frozenset({
        "AutoRemove", "Binds", "BlkioDeviceReadBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteBps",
        "BlkioDeviceWriteIOps", "BlkioWeight", "BlkioWeightDevice", "CapAdd", "CapDrop", "CgroupnsMode",
        "ConsoleSize", "ContainerIDFile", "CpuPercent", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod",
        "CpuRealtimeRuntime", "CpuShares", "CpusetCpus", "CpusetMems", "DeviceCgroupRules", "Devices", "Dns",
        "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "Init", "IpcMode", "KernelMemory", "Links",
        "LogConfig", "MaskedPaths", "Memory", "MemoryReservation", "MemorySwap", "MemorySwappiness", "Mounts",
        "NanoCpus", "NetworkMode", "OomKillDisable", "OomScoreAdj", "PidMode", "PidsLimit", "PortBindings",
        "Privileged", "PublishAllPorts", "ReadonlyPaths", "ReadonlyRootfs", "RestartPolicy", "SecurityOpt",
        "ShmSize", "Sysctls", "Tmpfs", "UTSMode", "Ulimits", "UsernsMode", "VolumesFrom",
        # Isolation: "" and "default" (the only Linux values, as dockerd checks); VolumeDriver: the driver
        # of the volumes the container makes (only "local" exists: another is refused when one is made)
        "Isolation", "VolumeDriver",
    }),
    "EndpointSettings": frozenset({"Aliases", "DriverOpts", "IPAMConfig", "Links", "MacAddress"}),
    "EndpointIPAMConfig": frozenset({"IPv4Address", "IPv6Address", "LinkLocalIPs"}),
}


@dataclass(frozen=True, slots=True)
class Refusal:
    sample: Any  # a value a client could send, which Servin refuses
    says: str  # part of the error it gets


# Operational data of an endpoint: the daemon fills them in, a request cannot choose them.
_ENDPOINT_STATE = {"EndpointID": "abc", "Gateway": "10.0.0.1", "IPAddress": "10.0.0.5", "IPPrefixLen": 24,
                   "IPv6Gateway": "fd00::1", "GlobalIPv6Address": "fd00::5", "GlobalIPv6PrefixLen": 64,
                   "NetworkID": "abc"}

REFUSED_HERE: dict[str, dict[str, Refusal]] = {
    "ContainerConfig": {
        "ArgsEscaped": Refusal(True, "ArgsEscaped is for Windows containers"),
        "NetworkDisabled": Refusal(True, 'NetworkDisabled is not supported by Servin: use NetworkMode "none"'),
        "OnBuild": Refusal(["RUN true"], "OnBuild is not supported by Servin"),
        "Shell": Refusal(["/bin/bash", "-c"], "Shell is not supported by Servin"),
    },
    "HostConfig": {
        "Cgroup": Refusal("container:other", "Cgroup is not supported by Servin"),
    },
    "EndpointSettings": {name: Refusal(value, f"{name} is set by the daemon")
                         for name, value in _ENDPOINT_STATE.items()},
}

REFUSED_ELSEWHERE: dict[str, dict[str, Refusal]] = {
    "HostConfig": {
        "CgroupParent": Refusal("/custom", "CgroupParent is not supported by Servin"),
        "CpuCount": Refusal(2, "CpuCount is not supported by Servin"),
        "KernelMemoryTCP": Refusal(1 << 20, "KernelMemoryTCP is not supported by Servin"),
        "DeviceRequests": Refusal([{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}],
                                  "could not select device driver"),
        "IOMaximumBandwidth": Refusal(1000, "maximum bandwidth"),
        "IOMaximumIOps": Refusal(10, "maximum IOPs"),
        "Runtime": Refusal("kata", "Unknown runtime specified kata"),
        "StorageOpt": Refusal({"size": "10G"}, "--storage-opt is supported only"),
    },
}


def refused(struct: str) -> dict[str, Refusal]:
    return {**REFUSED_HERE.get(struct, {}), **REFUSED_ELSEWHERE.get(struct, {})}


def refuse_unimplemented(body: dict[str, Any]) -> None:
    """A create body's fields of REFUSED_HERE that carry a value (and a wrong Isolation, as dockerd
    refuses it)."""
    hc = body.get("HostConfig") or {}
    for struct, fields in (("ContainerConfig", body), ("HostConfig", hc)):
        for name, refusal in REFUSED_HERE[struct].items():
            if fields.get(name):
                raise errors.InvalidArgument(refusal.says)
    networking = body.get("NetworkingConfig") or {}
    endpoints = (networking.get("EndpointsConfig") or {}) if isinstance(networking, dict) else {}
    for network, settings in endpoints.items():
        for name, refusal in REFUSED_HERE["EndpointSettings"].items():
            if isinstance(settings, dict) and settings.get(name):
                raise errors.InvalidArgument(f"{refusal.says}, not by a request (network {network})")
    isolation = hc.get("Isolation") or ""
    if isolation.lower() not in ("", "default"):  # daemon/daemon_unix.go verifyPlatformContainerSettings
        raise errors.InvalidArgument(f"invalid isolation: {json.dumps(isolation)} - linux only supports 'default'")
