"""The OCI runtime spec (config.json) for a container: one pure function.

Matches in substance what dockerd 20.10 generates for the same `docker run` flags
(daemon/oci_linux.go and oci/defaults.go): namespaces (joined ones by path), mounts, capabilities,
masked and read-only paths, devices, sysctls, resources and the cgroups path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from servin.core import caps, seccomp
from servin.core.model import Container, HostConfig, MountPoint, Ulimit
from servin.runtime.devices import HostDevice
from servin.runtime.plan import CAPABILITIES


MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/proc/interrupts", "/sys/devices/virtual/powercap",
)

READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

def with_default_ulimits(own: Sequence[Ulimit], defaults: Sequence[Ulimit]) -> tuple[Ulimit, ...]:
    """dockerd's mergeUlimits: the container's ulimits, then the daemon's defaults for the names it
    does not set (what the spec gets at each start and what inspect shows)."""
    named = {u.name for u in own}
    return (*own, *(u for u in defaults if u.name not in named))


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
    seccomp_default: str | Mapping[str, Any] = seccomp.BUILTIN,  # the daemon's --seccomp-profile
    seccomp_host: seccomp.Host | None = None,  # what profiles are evaluated against (None: this host)
    confinement: Confinement | None = None,  # what the engine resolved at start (None: the defaults)
    block_devices: Mapping[str, tuple[int, int]] | None = None,  # blkio device paths → (major, minor)
    default_ulimits: Sequence[Ulimit] = (),  # the daemon's default-ulimits
) -> dict[str, Any]:
    conf = confinement or Confinement()
    ulimits = with_default_ulimits(container.host_config.ulimits, default_ulimits)
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
    joins = {"network": netns_path,  # as runc's namespaces[].path
             "ipc": f"/proc/{conf.ipc_pid}/ns/ipc" if conf.ipc_pid else None,
             "pid": f"/proc/{conf.pid_pid}/ns/pid" if conf.pid_pid else None}
    namespaces = [{**n, "path": path} if (path := joins.get(n["type"])) else n for n in namespaces]
    if hc.cgroupns_mode == "private" or (hc.cgroupns_mode == "" and cgroup_version == 2):
        namespaces.append({"type": "cgroup"})
    if hc.init:
        annotations["io.servin.init"] = "1"
    annotations.update(_log_annotations(hc))
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": container.config.tty,
            **({"consoleSize": {"height": hc.console_size[0], "width": hc.console_size[1]}}
               if container.config.tty and all(hc.console_size) else {}),
            "user": {"uid": user.uid, "gid": user.gid,
                     **({"additionalGids": list(user.additional_gids)} if user.additional_gids else {})},
            "args": [container.path, *container.args],
            "env": list(container.resolved_env),
            "cwd": container.resolved_workdir or "/",
            **({"rlimits": [{"type": f"RLIMIT_{u.name.upper()}", "soft": u.soft, "hard": u.hard}
                            for u in ulimits]} if ulimits else {}),
            "capabilities": _capabilities(hc, user, conf.host_caps),
            **({"noNewPrivileges": True} if _no_new_privileges(hc, conf) else {}),
            "apparmorProfile": "",
            "oomScoreAdj": hc.oom_score_adj,
        },
        "root": {"path": f"{layout.bundle}/rootfs",
                 **({"readonly": True} if container.host_config.readonly_rootfs else {})},
        **({} if hc.uts_mode == "host" else {"hostname": container.resolved_hostname}),
        **({"domainname": container.config.domainname}
           if container.config.domainname and hc.uts_mode != "host" else {}),
        "mounts": _confine_mounts(_mounts(container, layout, cgroup_version, conf.recursive_ro), hc, conf),
        "annotations": {**hc.annotations, **annotations},
        "linux": {
            "resources": {**_resources(container, block_devices), "devices": _device_rules(hc, conf.devices)},
            "cgroupsPath": cgroups_path,
            "namespaces": namespaces,
            **_devices(conf.devices),
            **_sysctls(hc),
            **_system_paths(hc),
        },
    }
    # after the capabilities: the profile's rules depend on the bounding set (moby's WithSeccomp)
    profile = seccomp.profile_for(hc.seccomp_profile, daemon_profile=seccomp_default, privileged=hc.privileged)
    section = profile and seccomp.to_oci(profile, caps=spec["process"]["capabilities"]["bounding"],
                                         host=seccomp_host or seccomp.Host.this())
    if section:
        spec["linux"]["seccomp"] = section
    return spec


@dataclass(frozen=True, slots=True, kw_only=True)
class Confinement:
    """What the engine settles at start for the spec: the daemon's settings, the host's device
    nodes a container gets, the containers whose namespaces it joins."""

    host_caps: tuple[str, ...] = CAPABILITIES  # the daemon's bounding set: "all capabilities"
    no_new_privileges: bool = False  # the daemon's --no-new-privileges
    devices: tuple[HostDevice, ...] = ()  # --device nodes resolved, or every host node when privileged
    ipc_pid: int | None = None  # --ipc container:<id>: the init of the container whose IPC it joins
    pid_pid: int | None = None  # --pid container:<id>
    recursive_ro: bool = False  # the kernel makes read-only binds recursively read-only (mount_setattr, 5.12)


# set for a container with its own network namespace (dockerd's WithCommonOptions, Linux >= 4.11)
DEFAULT_NET_SYSCTLS = {"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"}


def _capabilities(hc: HostConfig, user: ProcessUser, host_caps: tuple[str, ...]) -> dict[str, list[str]]:
    """TweakCapabilities; oci.SetCapabilities gives a non-root user the bounding set only."""
    names = caps.tweak(hc.cap_add, hc.cap_drop, privileged=hc.privileged, available=host_caps)
    sets = ("bounding", "effective", "permitted") if user.uid == 0 else ("bounding",)
    return {k: list(names) for k in sets}


def _no_new_privileges(hc: HostConfig, conf: Confinement) -> bool:
    return conf.no_new_privileges if hc.no_new_privileges is None else hc.no_new_privileges


def _system_paths(hc: HostConfig) -> dict[str, list[str]]:
    """Masked and read-only paths: the container's own, else none when privileged, else Docker's."""
    masked = hc.masked_paths if hc.masked_paths is not None else () if hc.privileged else MASKED_PATHS
    readonly = hc.readonly_paths if hc.readonly_paths is not None else () if hc.privileged else READONLY_PATHS
    return {**({"maskedPaths": list(masked)} if masked else {}),
            **({"readonlyPaths": list(readonly)} if readonly else {})}


def _sysctls(hc: HostConfig) -> dict[str, dict[str, str]]:
    private_net = hc.network_mode != "host" and not hc.network_mode.startswith("container:")
    values = {**(DEFAULT_NET_SYSCTLS if private_net else {}), **hc.sysctls}
    return {"sysctl": values} if values else {}


def _devices(devices: tuple[HostDevice, ...]) -> dict[str, list[dict[str, Any]]]:
    if not devices:
        return {}
    return {"devices": [{"path": d.path, "type": d.type, "major": d.major, "minor": d.minor,
                         "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid} for d in devices]}


def _device_rules(hc: HostConfig, devices: tuple[HostDevice, ...]) -> list[dict[str, Any]]:
    """Docker's allow-list, then an allow rule per --device, then --device-cgroup-rule; a
    privileged container may use every device (moby's WithDevices)."""
    if hc.privileged:
        return [{"allow": True, "access": "rwm"}]
    return [*DEVICE_RULES, *(_dev(True, d.type, d.major, d.minor, d.permissions) for d in devices),
            *(_device_rule(r) for r in hc.device_cgroup_rules)]


def _confine_mounts(mounts: list[dict[str, Any]], hc: HostConfig, conf: Confinement) -> list[dict[str, Any]]:
    """Privileged: /sys and the cgroup filesystem writable (moby's WithMounts). /dev/shm by IPC mode:
    none has none; host binds the host's; container:<id> binds the other container's, reached
    through its init's root (dockerd binds the donor's shm directory)."""
    shm = {"none": None, "host": "/dev/shm"}.get(hc.ipc_mode, "")
    if conf.ipc_pid:
        shm = f"/proc/{conf.ipc_pid}/root/dev/shm"
    out = []
    for m in mounts:
        if hc.privileged and (m["destination"] == "/sys" or m["type"] in ("cgroup", "cgroup2")):
            m = {**m, "options": [o for o in m["options"] if o != "ro"]}
        if m["destination"] == "/dev/shm" and m["type"] == "tmpfs" and m["source"] == "shm" and shm != "":
            if shm is None:
                continue
            m = {"destination": "/dev/shm", "type": "bind", "source": shm, "options": ["rbind", "rprivate"]}
        out.append(m)
    return out


def _mounts(container: Container, layout: RootfsLayout, cgroup_version: int,
            recursive_ro: bool) -> list[dict[str, Any]]:
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
    own: list[dict[str, Any]] = [{"destination": f"/etc/{name}", "type": "bind", "source": f"{layout.bundle}/{name}",
            "options": ["rbind", "rprivate"]} for name in ("resolv.conf", "hostname", "hosts")]
    user = [_user_mount(mp, recursive_ro) for mp in container.mount_points]
    taken = {m["destination"] for m in user}
    own = [m for m in own if m["destination"] not in taken] + user
    own.sort(key=lambda m: m["destination"].rstrip("/").count("/"))
    return [m for m in mounts if m["destination"] not in taken] + own


def _read_only(mp: MountPoint, recursive_ro: bool) -> list[str]:
    """moby's WithMounts: a read-only bind is recursively read-only (rro) where the host can, unless
    asked not to be (ReadOnlyNonRecursive, API < 1.44); ReadOnlyForceRecursive asks for it anyway (the
    start fails where the kernel cannot)."""
    if mp.rw:
        return []
    if mp.read_only_force_recursive or (recursive_ro and not mp.read_only_non_recursive):
        return ["rro"]
    return ["ro"]


def _user_mount(mp: MountPoint, recursive_ro: bool = False) -> dict[str, Any]:
    """-v, --mount, --tmpfs and volumes, after Docker's defaults (which they may replace)."""
    if mp.type == "tmpfs":
        opts = [o for o in ("noexec", "nosuid", "nodev") if o[2:] not in mp.options]
        return {"destination": mp.destination, "type": "tmpfs", "source": "tmpfs", "options": opts + list(mp.options)}
    if mp.type == "image":  # moby's image mount: the image's rootfs, read-only
        subpath = [f"x-servin.subpath={mp.subpath}"] if mp.subpath else []
        if len(mp.layers) == 1:  # overlay wants two lower dirs without an upper one
            return {"destination": mp.destination, "type": "bind", "source": mp.layers[0],
                    "options": ["rbind", "ro", "nosuid", "nodev", "rprivate", *subpath]}
        return {"destination": mp.destination, "type": "overlay", "source": "overlay",
                "options": ["ro", "nosuid", "nodev", f"lowerdir={':'.join(mp.layers)}", *subpath]}
    opts = ["bind" if mp.non_recursive else "rbind", *_read_only(mp, recursive_ro), mp.propagation or "rprivate"]
    # a volume, also one that is a mount (type/device/o: mounted on its _data at start, core/volumemounts.py)
    if mp.subpath:  # resolved inside the volume by the runtime (runtime/mounts.py)
        opts.append(f"x-servin.subpath={mp.subpath}")
    return {"destination": mp.destination, "type": "bind", "source": mp.source, "options": opts}


def _resources(container: Container, block_devices: Mapping[str, tuple[int, int]] | None) -> dict[str, Any]:
    return resources_for(container.host_config, block_devices)


def resources_for(hc: HostConfig, block_devices: Mapping[str, tuple[int, int]] | None = None) -> dict[str, Any]:
    """OCI linux.resources for a HostConfig (also used by `docker update`); `block_devices` numbers
    the device paths of its blkio settings."""
    res: dict[str, Any] = {"devices": list(DEVICE_RULES) + [_device_rule(r) for r in hc.device_cgroup_rules]}
    memory: dict[str, Any] = {}
    if hc.memory:
        memory["limit"] = hc.memory
        if hc.memory_swap:
            memory["swap"] = hc.memory_swap
    if hc.oom_kill_disable:
        memory["disableOOMKiller"] = True
    if hc.memory_reservation:
        memory["reservation"] = hc.memory_reservation
    if hc.memory_swappiness is not None:
        memory["swappiness"] = hc.memory_swappiness
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
    if hc.cpu_rt_period:
        cpu["realtimePeriod"] = hc.cpu_rt_period
    if hc.cpu_rt_runtime:
        cpu["realtimeRuntime"] = hc.cpu_rt_runtime
    if cpu:
        res["cpu"] = cpu
    if hc.pids_limit is not None and hc.pids_limit != 0:
        res["pids"] = {"limit": hc.pids_limit}
    if block_io := _block_io(hc, block_devices or {}):
        res["blockIO"] = block_io
    return res


def _block_io(hc: HostConfig, numbers: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """OCI linux.resources.blockIO: the weight and the per-device weights and throttles."""
    out: dict[str, Any] = {"weight": hc.blkio_weight} if hc.blkio_weight else {}
    for key, entries, value in (
        ("weightDevice", hc.blkio_weight_device, "weight"),
        ("throttleReadBpsDevice", hc.blkio_device_read_bps, "rate"),
        ("throttleWriteBpsDevice", hc.blkio_device_write_bps, "rate"),
        ("throttleReadIOPSDevice", hc.blkio_device_read_iops, "rate"),
        ("throttleWriteIOPSDevice", hc.blkio_device_write_iops, "rate"),
    ):
        if entries:
            out[key] = [{"major": numbers[d.path][0], "minor": numbers[d.path][1], value: d.value} for d in entries]
    return out
