"""The OCI runtime spec (config.json) for a container: one pure function.

Matches in substance what dockerd 20.10 generates for the same `docker run` flags
(daemon/oci_linux.go and oci/defaults.go): namespaces, mounts, default capabilities,
masked and read-only paths, resources and the cgroups path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servin.core.model import Container, HostConfig, MountPoint

DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/proc/interrupts", "/sys/devices/virtual/powercap",
)

READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

def _device_rule(rule: str) -> dict[str, Any]:
    """--device-cgroup-rule "c 7:128 rwm" (already validated by the API layer)."""
    kind, numbers, access = rule.split()
    major, _, minor = numbers.partition(":")
    return _dev(True, kind, None if major == "*" else int(major), None if minor == "*" else int(minor), access)


def _log_annotations(hc: HostConfig) -> dict[str, str]:
    out = {"io.servin.log.driver": hc.log_type or "json-file"}
    if hc.log_config.get("max-size"):
        out["io.servin.log.max-size"] = hc.log_config["max-size"]
    if hc.log_config.get("max-file"):
        out["io.servin.log.max-file"] = hc.log_config["max-file"]
    return out


def _dev(allow: bool, kind: str, major: int | None, minor: int | None, access: str = "rwm") -> dict[str, Any]:
    return {"allow": allow, "type": kind, "major": major, "minor": minor, "access": access}


# Deny everything, then Docker's allow-list (oci/defaults.go) and what runc adds for every
# container (specconv AllowedDevices): mknod anything, the standard nodes, pts, ptmx, tun.
DEVICE_RULES = (
    {"allow": False, "access": "rwm"},
    _dev(True, "c", None, None, "m"), _dev(True, "b", None, None, "m"),
    _dev(True, "c", 1, 3), _dev(True, "c", 1, 5), _dev(True, "c", 1, 7), _dev(True, "c", 1, 8),
    _dev(True, "c", 1, 9), _dev(True, "c", 5, 0), _dev(True, "c", 5, 1), _dev(True, "c", 5, 2),
    _dev(True, "c", 136, None), _dev(True, "c", 10, 200),
    _dev(False, "c", 10, 229),
)

CPU_PERIOD_FOR_NANOCPUS = 100_000  # µs, as dockerd uses for --cpus


@dataclass(frozen=True, slots=True, kw_only=True)
class RootfsLayout:
    """Where the container's files live on the host."""

    bundle: str  # the bundle dir; holds config.json, rootfs/, hostname, hosts, resolv.conf
    lowerdirs: tuple[str, ...]  # image layers, top first
    upperdir: str
    workdir: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()


def build_spec(
    container: Container,
    *,
    layout: RootfsLayout,
    user: ProcessUser,
    cgroups_path: str,
    cgroup_version: int,
    netns_path: str | None = None,  # join this network namespace (the bridge's endpoint) instead of a new one
) -> dict[str, Any]:
    stdin_mode = ""
    if container.config.open_stdin:
        # dockerd closes a Tty container's stdin on no client's EOF: a detached terminal stays usable
        stdin_mode = "once" if container.config.stdin_once and not container.config.tty else "open"
    annotations = {
        "io.servin.overlay.lowerdir": ":".join(layout.lowerdirs),
        "io.servin.overlay.upperdir": layout.upperdir,
        "io.servin.overlay.workdir": layout.workdir,
    }
    if stdin_mode:
        annotations["io.servin.stdin"] = stdin_mode
    hc = container.host_config
    shared = {"network": hc.network_mode == "host", "uts": hc.uts_mode == "host",
              "pid": hc.pid_mode == "host", "ipc": hc.ipc_mode == "host"}
    namespaces: list[dict[str, str]] = [{"type": t} for t in ("mount", "network", "uts", "pid", "ipc")
                                        if not shared.get(t)]
    if netns_path and not shared["network"]:
        namespaces = [{"type": "network", "path": netns_path} if n["type"] == "network" else n for n in namespaces]
    if hc.cgroupns_mode == "private" or (hc.cgroupns_mode == "" and cgroup_version == 2):
        namespaces.append({"type": "cgroup"})
    if hc.init:
        annotations["io.servin.init"] = "1"
    annotations.update(_log_annotations(hc))
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": container.config.tty,
            "user": {"uid": user.uid, "gid": user.gid,
                     **({"additionalGids": list(user.additional_gids)} if user.additional_gids else {})},
            "args": [container.path, *container.args],
            "env": list(container.resolved_env),
            "cwd": container.resolved_workdir or "/",
            **({"rlimits": [{"type": f"RLIMIT_{u.name.upper()}", "soft": u.soft, "hard": u.hard}
                            for u in container.host_config.ulimits]} if container.host_config.ulimits else {}),
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
            "apparmorProfile": "",
            "oomScoreAdj": 0,
        },
        "root": {"path": f"{layout.bundle}/rootfs",
                 **({"readonly": True} if container.host_config.readonly_rootfs else {})},
        **({} if hc.uts_mode == "host" else {"hostname": container.resolved_hostname}),
        **({"domainname": container.config.domainname}
           if container.config.domainname and hc.uts_mode != "host" else {}),
        "mounts": _mounts(container, layout, cgroup_version),
        "annotations": annotations,
        "linux": {
            "resources": _resources(container),
            "cgroupsPath": cgroups_path,
            "namespaces": namespaces,
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def _mounts(container: Container, layout: RootfsLayout, cgroup_version: int) -> list[dict[str, Any]]:
    shm = container.host_config.shm_size or 64 * 1024 * 1024
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm}"]},
    ]
    # As dockerd: the base mounts keep their order; the container's own (its /etc files, then
    # volumes, binds, tmpfs) follow, sorted parents first so a volume on /etc cannot hide /etc/hosts.
    own = [{"destination": f"/etc/{name}", "type": "bind", "source": f"{layout.bundle}/{name}",
            "options": ["rbind", "rprivate"]} for name in ("resolv.conf", "hostname", "hosts")]
    user = [_user_mount(mp) for mp in container.mount_points]
    taken = {m["destination"] for m in user}
    own = [m for m in own if m["destination"] not in taken] + user
    own.sort(key=lambda m: m["destination"].rstrip("/").count("/"))
    return [m for m in mounts if m["destination"] not in taken] + own


def _user_mount(mp: MountPoint) -> dict[str, Any]:
    """-v, --mount, --tmpfs and volumes, after Docker's defaults (which they may replace)."""
    if mp.type == "tmpfs":
        opts = [o for o in ("noexec", "nosuid", "nodev") if o[2:] not in mp.options]
        return {"destination": mp.destination, "type": "tmpfs", "source": "tmpfs", "options": opts + list(mp.options)}
    if mp.fstype:  # a local volume with type/device/o: mounted inside the container
        if "bind" in mp.options:
            return {"destination": mp.destination, "type": "bind", "source": mp.device,
                    "options": ["rbind", "rprivate"] + ([] if mp.rw else ["ro"])}
        return {"destination": mp.destination, "type": mp.fstype, "source": mp.device,
                "options": list(mp.options) + ([] if mp.rw else ["ro"])}
    opts = ["rbind", mp.propagation or "rprivate"] + ([] if mp.rw else ["ro"])
    return {"destination": mp.destination, "type": "bind", "source": mp.source, "options": opts}


def _resources(container: Container) -> dict[str, Any]:
    return resources_for(container.host_config)


def resources_for(hc: HostConfig) -> dict[str, Any]:
    """OCI linux.resources for a HostConfig (also used by `docker update`)."""
    res: dict[str, Any] = {"devices": list(DEVICE_RULES) + [_device_rule(r) for r in hc.device_cgroup_rules]}
    memory: dict[str, Any] = {}
    if hc.memory:
        memory["limit"] = hc.memory
        if hc.memory_swap:
            memory["swap"] = hc.memory_swap
    if hc.oom_kill_disable:
        memory["disableOOMKiller"] = True
    if memory:
        res["memory"] = memory
    cpu: dict[str, Any] = {}
    if hc.cpu_shares:
        cpu["shares"] = hc.cpu_shares
    if hc.nano_cpus:
        cpu["period"] = CPU_PERIOD_FOR_NANOCPUS
        cpu["quota"] = hc.nano_cpus * CPU_PERIOD_FOR_NANOCPUS // 1_000_000_000
    else:
        if hc.cpu_quota:
            cpu["quota"] = hc.cpu_quota
        if hc.cpu_period:
            cpu["period"] = hc.cpu_period
    if hc.cpuset_cpus:
        cpu["cpus"] = hc.cpuset_cpus
    if hc.cpuset_mems:
        cpu["mems"] = hc.cpuset_mems
    if cpu:
        res["cpu"] = cpu
    if hc.pids_limit is not None and hc.pids_limit != 0:
        res["pids"] = {"limit": hc.pids_limit}
    return res
