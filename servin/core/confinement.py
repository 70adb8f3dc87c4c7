"""What the engine checks and settles of a container's confinement: namespace modes, sysctls,
OOM score and capabilities at create (dockerd's verifyPlatformContainerSettings and
adaptContainerSettings), and at start the containers whose IPC and PID namespaces it joins."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from servin import errors
from servin.core import caps
from servin.core.model import Container, HostConfig
from servin.runtime import devices
from servin.runtime.devices import HostDevice

# the sysctls of the IPC namespace (runc's validator; docker/cli opts.ValidateSysctl)
IPC_SYSCTLS = frozenset(("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                         "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"))


def is_ipc_sysctl(key: str) -> bool:
    return key in IPC_SYSCTLS or key.startswith("fs.mqueue.")


def joined(mode: str) -> str | None:
    """`container:<ref>` → ref."""
    return mode.split(":", 1)[1] if mode.startswith("container:") else None


def check(hc: HostConfig, *, available_caps: Sequence[str], hostname: str = "") -> None:
    """At create, with dockerd's wording (InvalidArgument)."""
    check_modes(hc)
    if hc.uts_mode == "host" and hostname:  # runconfig's ErrConflictUTSHostname
        raise errors.InvalidArgument("conflicting options: hostname and the UTS mode")
    if hc.oom_score_adj < -1000 or hc.oom_score_adj > 1000:
        raise errors.InvalidArgument(f"Invalid value {hc.oom_score_adj}, range for oom score adj is [-1000, 1000]")
    check_sysctls(hc, ipc_host=hc.ipc_mode == "host", net_host=hc.network_mode == "host")
    caps.check_available(hc.cap_add, available_caps)


def check_modes(hc: HostConfig) -> None:
    """The modes' Valid() (api/types/container), worded as verifyPlatformContainerSettings."""
    ipc, pid = hc.ipc_mode, hc.pid_mode
    if ipc not in ("", "private", "shareable", "host", "none") and not joined(ipc):
        raise errors.InvalidArgument(f"invalid IPC mode: {ipc}")
    if pid not in ("", "host") and not (joined(pid) and ":" not in pid[len("container:"):]):
        raise errors.InvalidArgument(f"invalid PID mode: {pid}")
    if hc.uts_mode not in ("", "host"):
        raise errors.InvalidArgument(f"invalid UTS mode: {hc.uts_mode}")
    if hc.userns_mode not in ("", "host"):
        raise errors.InvalidArgument(f'invalid USER mode: {hc.userns_mode} (Servin has no user namespace '
                                     'remapping: only "host" is supported)')
    if hc.cgroupns_mode not in ("", "private", "host"):
        raise errors.InvalidArgument(f"invalid cgroup namespace mode: {hc.cgroupns_mode}")


def check_sysctls(hc: HostConfig, *, ipc_host: bool, net_host: bool) -> None:
    """runc's validator: IPC sysctls need an IPC namespace, net.* a network namespace, other than the host's."""
    for key in hc.sysctls:
        if is_ipc_sysctl(key) and ipc_host:
            raise errors.InvalidArgument(f'sysctl "{key}" is not allowed in the hosts ipc namespace')
        if key.startswith("net.") and net_host:
            raise errors.InvalidArgument(f'sysctl "{key}" not allowed in host network namespace')


def adapt(hc: HostConfig, *, cgroup_version: int, lookup: Callable[[str], Container]) -> HostConfig:
    """dockerd's adaptContainerSettings: the default IPC and cgroup namespace modes made explicit,
    `container:<name>` made `container:<id>` (No such container: 404), and `label=disable` recorded for
    privileged containers and those sharing the host's IPC or PID namespace."""
    changes: dict[str, object] = {}
    if not hc.ipc_mode:
        changes["ipc_mode"] = "private"
    if not hc.cgroupns_mode:
        changes["cgroupns_mode"] = "private" if cgroup_version == 2 else "host"  # v1: host, privileged too
    for field in ("ipc_mode", "pid_mode"):
        if ref := joined(getattr(hc, field)):  # a missing one: 404 (dockerd's generateSecurityOpt looks it up)
            changes[field] = "container:" + lookup(ref).id
    if (hc.privileged or hc.ipc_mode == "host" or hc.pid_mode == "host") and not any(
            o.split("=", 1)[0] == "label" for o in hc.security_opt):
        changes["security_opt"] = (*hc.security_opt, "label=disable")
    return replace(hc, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Donors:
    """The running containers whose namespaces `container:<id>` modes join."""

    ipc: Container | None = None
    pid: Container | None = None


def donors(hc: HostConfig, get: Callable[[str], Container]) -> Donors:
    """At start, worded as dockerd 20.10's getIpcContainer and getPidContainer (500, as dockerd's
    start answers every spec error)."""
    ipc = pid = None
    if ref := joined(hc.ipc_mode):
        what = f"can't join IPC of container {ref}"
        ipc = _running(get, ref, what)
        mode = ipc.host_config.ipc_mode
        if mode not in ("shareable", "host") and not joined(mode):
            raise errors.SystemError_(f"{what}: non-shareable IPC (hint: use IpcMode:shareable for the donor "
                                      "container)")
    if ref := joined(hc.pid_mode):
        pid = _running(get, ref, f"cannot join PID of a non running container: {ref}")
    net_host = False
    if ref := joined(hc.network_mode):
        try:
            net_host = get(ref).host_config.network_mode == "host"
        except errors.NotFound:
            pass  # the network's own error, from networking
    check_sysctls(hc, ipc_host=ipc is not None and ipc.host_config.ipc_mode == "host", net_host=net_host)
    return Donors(ipc=ipc, pid=pid)


def _running(get: Callable[[str], Container], ref: str, what: str) -> Container:
    try:
        other = get(ref)
    except errors.NotFound as exc:
        raise errors.SystemError_(f"{what}: {exc.message}") from None
    if not other.state.alive:
        raise errors.SystemError_(f"{what}: container {other.id} is not running")
    return other


def resolve_devices(hc: HostConfig) -> tuple[HostDevice, ...]:
    """The device nodes a container gets (moby's WithDevices), read from the host at start
    (blocking): --device mappings, or every host device for a privileged container plus its
    --device mappings to other paths. A missing device is dockerd's start error (500)."""
    try:
        if hc.privileged:
            nodes = devices.host_devices()
            for d in hc.devices:
                if d.path_on_host != d.path_in_container:
                    nodes += devices.for_mapping(d.path_on_host, d.path_in_container, "rwm")
            return tuple(nodes)
        return tuple(n for d in hc.devices
                     for n in devices.for_mapping(d.path_on_host, d.path_in_container, d.cgroup_permissions))
    except LookupError as exc:
        raise errors.SystemError_(str(exc)) from None


# Docker pairs CAP_SYS_ADMIN with an AppArmor profile that denies mount and writes to /proc/sys;
# Servin applies no AppArmor profile (nor does dockerd on a host without AppArmor, as here).
SYS_ADMIN_WARNING = ("CAP_SYS_ADMIN is granted without an AppArmor or SELinux profile: the container can mount "
                     "filesystems and through them (a cgroup release_agent, /proc/sys) reach the host, as a "
                     "--privileged one can. Give it to trusted images only.")


def warnings(hc: HostConfig, *, available_caps: Sequence[str]) -> list[str]:
    """What a create answers in its Warnings about the confinement asked for."""
    if hc.privileged:
        return []
    held = caps.tweak(hc.cap_add, hc.cap_drop, privileged=False, available=available_caps)
    return [SYS_ADMIN_WARNING] if "CAP_SYS_ADMIN" in held else []
