"""Docker JSON for /version, /info, events and the /auth body."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from typing import Any

from servin import __version__
from servin.api.wire import request_body, versions
from servin.api.wire.schemas import AUTH_CONFIG
from servin.core.events import Event
from servin.core.host import HostFacts
from servin.registry.service import RegistrySettings

API_VERSION = versions.text(versions.MAX_VERSION)
MIN_API_VERSION = versions.text(versions.MIN_VERSION)
ENGINE_VERSION = f"29.7.2+servin.{__version__}"  # the Docker Engine that serves API 1.55
GIT_COMMIT = "servin"


@request_body(AUTH_CONFIG, prefix="")
def parse_auth(body: Any) -> dict[str, Any]:
    """POST /auth (registry.AuthConfig; dockerd v28.2.2's postAuth decodes it with a bare
    json.Decoder, so its type errors carry no "invalid JSON: " prefix)."""
    return body or {}


def version(f: HostFacts) -> dict[str, Any]:
    build_time = "2026-11-22T00:00:00.000000000+00:00"
    api = versions.text(versions.MAX_VERSION)
    details = {"ApiVersion": api, "Arch": f.go_arch, "BuildTime": build_time,
               "Experimental": str(f.experimental).lower(), "GitCommit": GIT_COMMIT,
               "GoVersion": f"python{platform.python_version()}", "KernelVersion": f.kernel_version,
               "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}
    return {
        "Platform": {"Name": f"Servin Engine {__version__}"},
        "Components": [
            {"Name": "Engine", "Version": ENGINE_VERSION, "Details": details},
            {"Name": "servin-shim", "Version": __version__, "Details": {"GitCommit": GIT_COMMIT}},
        ],
        "Version": ENGINE_VERSION,
        "ApiVersion": api,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": GIT_COMMIT,
        "GoVersion": details["GoVersion"],
        "Os": "linux",
        "Arch": f.go_arch,
        "KernelVersion": f.kernel_version,
        "Experimental": f.experimental,
        "BuildTime": build_time,
    }


def _now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@versions.answer("Info")
def info(f: HostFacts, counts: dict[str, int], n_images: int,
         registry: RegistrySettings | None = None) -> dict[str, Any]:
    total = sum(counts.values())
    v2 = f.cgroup_version == 2
    return {
        "ID": f.id,
        "Containers": total,
        "ContainersRunning": counts["running"],
        "ContainersPaused": counts["paused"],
        "ContainersStopped": counts["stopped"],
        "Images": n_images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"],
                         ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": None,
                    "Log": ["json-file", "none"]},
        "MemoryLimit": True,
        "SwapLimit": f.swap_limit,
        "KernelMemory": not v2,
        "KernelMemoryTCP": not v2,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": True,
        "BridgeNfIptables": True,
        "BridgeNfIp6tables": True,
        "Debug": f.debug,
        "NFd": 0,
        "OomKillDisable": not v2,
        "NGoroutines": 0,
        "SystemTime": _now_rfc3339(),
        "LoggingDriver": "json-file",
        "CgroupDriver": f.cgroup_driver,
        "CgroupVersion": str(f.cgroup_version),
        "NEventsListener": 0,
        "KernelVersion": f.kernel_version,
        "OperatingSystem": f.operating_system,
        "OSVersion": f.os_version,
        "OSType": "linux",
        "Architecture": f.architecture,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": registry_config(registry),
        "NCPU": f.ncpu,
        "MemTotal": f.mem_total,
        "GenericResources": None,
        "DockerRootDir": f.data_root,
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": f.hostname,
        "Labels": list(f.labels),
        "ExperimentalBuild": f.experimental,
        "ServerVersion": ENGINE_VERSION,
        "Runtimes": {"runc": {"path": "servin-shim"}},
        "CDISpecDirs": [],  # no CDI devices
        "FirewallBackend": {"Driver": "iptables"},
        "DefaultRuntime": "runc",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        # dockerd 20.10's order and wording (daemon/info.go fillSecurityOptions); the warning is 28's
        "SecurityOptions": [f"name=seccomp,profile={f.seccomp_profile}"] + (["name=cgroupns"] if v2 else [])
                           + (["name=no-new-privileges"] if f.no_new_privileges else []),
        "Warnings": [] if f.seccomp_profile == "default" else
                    ["WARNING: daemon is not using the default seccomp profile"],
    }


@versions.answer("Event")
def event(ev: Event) -> dict[str, Any] | None:
    """Docker's events message (the legacy status, id and from of older versions: versions.py); None for an
    event the request's version does not know."""
    return {
        "Type": ev.type,
        "Action": ev.action,
        "Actor": {"ID": ev.actor_id, "Attributes": dict(ev.attributes)},
        "scope": "local",
        "time": ev.time_nano // 1_000_000_000,
        "timeNano": ev.time_nano,
    }


def registry_config(r: RegistrySettings | None) -> dict[str, Any]:
    """`docker info`'s RegistryConfig, as dockerd's registry.ServiceConfig: the insecure CIDRs, an
    index entry for docker.io (with the mirrors) and one for each insecure registry named."""
    mirrors = [m + "/" for m in r.mirrors] if r else []  # dockerd prints them with a trailing slash
    indexes = {"docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True, "Official": True}}
    for host in r.insecure_hosts if r else ():
        indexes[host] = {"Name": host, "Mirrors": [], "Secure": False, "Official": False}
    return {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": list(r.insecure_cidrs) if r else ["127.0.0.0/8"], "IndexConfigs": indexes,
            "Mirrors": mirrors}
