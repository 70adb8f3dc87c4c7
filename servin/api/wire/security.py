"""HostConfig's confinement fields as dockerd reads them: SecurityOpt (parsed once here for every
key, seccomp's value included), CapAdd/CapDrop names, Devices and Sysctls. Modes, ranges and what
needs the host (capabilities it lacks, device nodes, other containers) are checked by the engine
(core/confinement.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servin import errors
from servin.api.wire import seccomp as wire_seccomp
from servin.core import caps
from servin.core.confinement import is_ipc_sysctl
from servin.core.model import DeviceMapping


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityOptions:
    no_new_privileges: bool | None = None
    seccomp_profile: str = ""
    apparmor_profile: str = ""
    unconfined_paths: bool = False  # systempaths=unconfined


def _parse_bool(value: str) -> bool | None:
    """Go's strconv.ParseBool."""
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    return None


def parse_security_opt(opts: tuple[str, ...]) -> SecurityOptions:
    """dockerd's parseSecurityOpt (daemon/daemon_unix.go), on a host without SELinux or AppArmor:
    label options are accepted and have no effect (go-selinux's InitLabels does nothing when
    SELinux is off), apparmor=unconfined is accepted and a named profile refused (dockerd would
    ignore it), systempaths=unconfined is what the docker CLI turns into empty MaskedPaths and
    ReadonlyPaths."""
    out: dict[str, Any] = {}
    for opt in opts:
        if opt == "no-new-privileges":
            out["no_new_privileges"] = True
            continue
        if opt == "disable":  # a bare label option
            continue
        if "=" in opt:
            key, _, value = opt.partition("=")
        elif ":" in opt:  # the deprecated separator
            key, _, value = opt.partition(":")
        else:
            raise errors.InvalidArgument(f"invalid --security-opt 1: {_quote(opt)}")
        if key == "label":
            continue
        if key == "seccomp":
            out["seccomp_profile"] = wire_seccomp.option(value)  # a profile is decoded and checked
        elif key == "apparmor":
            if value != "unconfined":  # runc's ErrApparmorNotEnabled
                raise errors.InvalidArgument(f"invalid --security-opt {_quote(opt)}: "
                                             "apparmor: config provided but apparmor not supported")
            out["apparmor_profile"] = value
        elif key == "no-new-privileges" and (flag := _parse_bool(value)) is not None:
            out["no_new_privileges"] = flag
        elif key == "systempaths" and value == "unconfined":
            out["unconfined_paths"] = True
        else:
            raise errors.InvalidArgument(f"invalid --security-opt 2: {_quote(opt)}")
    return SecurityOptions(**out)


def _quote(s: str) -> str:
    """Go's %q for the usual printable strings."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_caps(cap_add: tuple[str, ...], cap_drop: tuple[str, ...]) -> None:
    """validateCapabilities (daemon/container.go): unknown names refused."""
    caps.normalize(cap_add, "CapAdd")
    caps.normalize(cap_drop, "CapDrop")


def _device_mode(mode: str) -> bool:
    return bool(mode) and len(set(mode)) == len(mode) and set(mode) <= set("rwm")


def parse_devices(raw: Any) -> tuple[DeviceMapping, ...]:
    """HostConfig.Devices; the checks the docker CLI makes of --device (validateLinuxPath)."""
    out = []
    for d in raw or ():
        host = str(d.get("PathOnHost") or "")
        inside = str(d.get("PathInContainer") or "") or host
        mode = str(d.get("CgroupPermissions") or "") or "rwm"
        if not host:
            raise errors.InvalidArgument(f"bad format for path: {host}")
        if not _device_mode(mode):
            raise errors.InvalidArgument(f"bad mode specified: {mode}")
        if not inside.startswith("/"):
            raise errors.InvalidArgument(f"{inside} is not an absolute path")
        out.append(DeviceMapping(path_on_host=host, path_in_container=inside, cgroup_permissions=mode))
    return tuple(out)


def parse_sysctls(raw: Any) -> dict[str, str]:
    """HostConfig.Sysctls: only namespaced ones (opts.ValidateSysctl's wording)."""
    out = {}
    for key, value in (raw or {}).items():
        key, value = str(key), str(value)
        # a key is a path under /proc/sys: no slashes or empty components (they could leave it)
        if not (is_ipc_sysctl(key) or key.startswith("net.")) or "/" in key or "" in key.split("."):
            raise errors.InvalidArgument(f"sysctl '{key}={value}' is not allowed")
        out[key] = value
    return out


def host_config_fields(hc: dict[str, Any]) -> dict[str, Any]:
    """The confinement fields of a create body's HostConfig, as HostConfig keyword arguments."""
    security_opt = tuple(str(o) for o in hc.get("SecurityOpt") or ())
    sec = parse_security_opt(security_opt)
    cap_add = tuple(str(c) for c in hc.get("CapAdd") or ())
    cap_drop = tuple(str(c) for c in hc.get("CapDrop") or ())
    check_caps(cap_add, cap_drop)
    masked, readonly = hc.get("MaskedPaths"), hc.get("ReadonlyPaths")
    if sec.unconfined_paths:
        masked = readonly = []
    return {
        "privileged": bool(hc.get("Privileged")), "cap_add": cap_add, "cap_drop": cap_drop,
        "security_opt": security_opt, "no_new_privileges": sec.no_new_privileges,
        "seccomp_profile": sec.seccomp_profile, "apparmor_profile": sec.apparmor_profile,
        "masked_paths": None if masked is None else tuple(str(p) for p in masked),
        "readonly_paths": None if readonly is None else tuple(str(p) for p in readonly),
        "devices": parse_devices(hc.get("Devices")), "sysctls": parse_sysctls(hc.get("Sysctls")),
        "oom_score_adj": int(hc.get("OomScoreAdj") or 0), "userns_mode": str(hc.get("UsernsMode") or ""),
    }
