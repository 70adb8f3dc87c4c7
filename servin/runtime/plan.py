"""The plan: what servin-shim executes to turn an OCI bundle into a running container.

Python decides, C executes. `plan_from_oci` is a pure function from an OCI runtime-spec 1.0
config.json (as a dict) to a `Plan`; `Plan.encode()` writes the wire format that
`native/servin-shim.c` parses (plan_format.py describes it). The Linux numbers are in linux.py,
mount options and the cgroup filesystem in mounts.py, linux.resources in resources.py; this
module re-exports their names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from servin.errors import InvalidArgument, NotImplementedYet
from servin.runtime.linux import (
    ALL_CAPS,
    CAP_BITS,
    CAPABILITIES,
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUTS,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    MS_SLAVE,
    MS_STRICTATIME,
    RLIM_INFINITY,
    RLIMITS,
    capability_mask,
)
from servin.runtime.mounts import bind_extras, cgroup_mounts, parse_mount_options
from servin.runtime.plan_format import Device, ExecPlan, Mount, Plan, Rlimit, decode
from servin.runtime.seccomp import filter_flags

__all__ = [
    "ALL_CAPS", "CAPABILITIES", "CAP_BITS", "CLONE_NEWCGROUP", "CLONE_NEWIPC", "CLONE_NEWNET", "CLONE_NEWNS",
    "CLONE_NEWPID", "CLONE_NEWUTS", "MS_BIND", "MS_NODEV", "MS_NOEXEC", "MS_NOSUID",
    "MS_PRIVATE", "MS_RDONLY", "MS_REC", "MS_RELATIME", "MS_REMOUNT", "MS_SLAVE", "MS_STRICTATIME",
    "RLIMITS", "RLIM_INFINITY", "Device", "ExecPlan", "Mount", "Plan", "Rlimit", "capability_mask", "decode",
    "parse_mount_options", "parse_size", "plan_from_oci",
]  # fmt: skip

_OTHER_ROOT = re.compile(r"^/proc/([0-9]+)/root(/.+)$")
JOINABLE = ("network", "ipc", "uts", "pid")  # namespaces a plan can join by path
NAMESPACE_FLAGS = {
    "pid": CLONE_NEWPID,
    "mount": CLONE_NEWNS,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "network": CLONE_NEWNET,
    "cgroup": CLONE_NEWCGROUP,
}

ANNOTATION_LOWER = "io.servin.overlay.lowerdir"
ANNOTATION_UPPER = "io.servin.overlay.upperdir"
ANNOTATION_WORK = "io.servin.overlay.workdir"
ANNOTATION_STDIN = "io.servin.stdin"
ANNOTATION_INIT = "io.servin.init"
ANNOTATION_LOG_DRIVER = "io.servin.log.driver"
ANNOTATION_LOG_MAX_SIZE = "io.servin.log.max-size"
ANNOTATION_LOG_MAX_FILE = "io.servin.log.max-file"

INIT_PATH = "/sbin/docker-init"  # where Docker mounts its init in the container


def default_init_binary() -> Path:
    """$SERVIN_INIT, else servin/libexec/servin-init next to this package."""
    env = os.environ.get("SERVIN_INIT")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "libexec" / "servin-init"


def plan_from_oci(
    config: Mapping[str, Any],
    *,
    bundle: Path,
    log_path: Path | None,
    exit_path: Path | None,
    cgroup_procs: Sequence[Path | str] = (),
    cgroup_v1_hierarchies: Sequence[tuple[str, str]] | None = None,
    init_binary: Path | str | None = None,
    seccomp_program: Path | str | None = None,
) -> Plan:
    """Translate an OCI runtime-spec config into a plan. Pure: everything it needs from the
    host (the cgroup.procs files, the v1 hierarchies, the init binary, the compiled program of
    linux.seccomp) is passed in."""
    process = config.get("process") or {}
    args = process.get("args") or []
    if not args:
        raise InvalidArgument("process.args must not be empty")
    user = process.get("user") or {}
    linux = config.get("linux") or {}
    annotations = config.get("annotations") or {}

    root_cfg = config.get("root") or {}
    root_path = root_cfg.get("path") or "rootfs"
    root = os.path.normpath(root_path if os.path.isabs(root_path) else os.path.join(str(bundle), root_path))

    namespaces = 0
    ns_paths: list[tuple[str, str]] = []
    for ns in linux.get("namespaces") or []:
        kind = ns.get("type")
        if ns.get("path"):
            if kind not in JOINABLE:
                raise NotImplementedYet(
                    f"joining an existing {kind} namespace (path {ns['path']}) is not supported yet"
                )
            if not os.path.isabs(ns["path"]):
                raise InvalidArgument(f"{kind} namespace path {ns['path']!r} is not absolute")
            ns_paths.append((kind, os.path.normpath(ns["path"])))
            continue
        if kind == "user":
            raise NotImplementedYet("user namespaces are not supported yet")
        if kind not in NAMESPACE_FLAGS:
            raise InvalidArgument(f"unknown namespace type {kind!r}")
        namespaces |= NAMESPACE_FLAGS[kind]

    mounts: list[Mount] = []
    for m in config.get("mounts") or []:
        target = m["destination"]
        if not target.startswith("/"):
            raise InvalidArgument(f"mount destination {target!r} is not absolute")
        target = os.path.normpath(target)
        fstype = m.get("type") or ""
        flags, data = parse_mount_options(m.get("options") or [])
        source = m.get("source") or fstype
        if fstype == "bind":
            flags |= MS_BIND
        if flags & MS_BIND:
            if not os.path.isabs(source):
                source = os.path.normpath(os.path.join(str(bundle), source))
            if other := _OTHER_ROOT.match(source):  # inside another process's root: its mount namespace
                mounts.append(Mount(source=f"/proc/{other[1]}/ns/mnt", target=target, fstype="nsbind", flags=flags,
                                    data=os.path.normpath(other[2])))
                continue
            subpath, attr = bind_extras(m.get("options") or [])
            mounts.append(Mount(source=source, target=target, fstype="bind", flags=flags, data=subpath, attr=attr))
        elif fstype in ("cgroup", "cgroup2"):
            mounts.extend(cgroup_mounts(target, flags, cgroup_v1_hierarchies,
                                         cgroups_path=linux.get("cgroupsPath") or "",
                                         cgroupns=bool(namespaces & CLONE_NEWCGROUP)))
        else:  # a subpath: the mount narrowed to it (an image mount's)
            subpath, attr = bind_extras(m.get("options") or [])
            mounts.append(Mount(source=source, target=target, fstype=fstype, flags=flags, data=data,
                                attr=f"subpath={subpath}" if subpath else attr))

    caps = process.get("capabilities") or {}
    rlimits = tuple(
        Rlimit(resource=_rlimit_number(r["type"]), soft=_rlim(r.get("soft")), hard=_rlim(r.get("hard")))
        for r in process.get("rlimits") or []
    )

    overlay: str | None = None
    lower = annotations.get(ANNOTATION_LOWER)
    if lower:
        parts = [f"lowerdir={lower}"]
        if annotations.get(ANNOTATION_UPPER):
            parts.append(f"upperdir={annotations[ANNOTATION_UPPER]}")
            parts.append(f"workdir={annotations.get(ANNOTATION_WORK, '')}")
        overlay = ",".join(parts)
        if len(overlay) >= 4096:
            raise InvalidArgument("overlay mount options exceed one page; shorten the layer paths")

    init = _flag(annotations.get(ANNOTATION_INIT))
    if init:
        binary = str(init_binary if init_binary is not None else default_init_binary())
        mounts.append(
            Mount(source=binary, target=INIT_PATH, fstype="bind", flags=MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        )
        args = [INIT_PATH, "--", *args]

    driver = annotations.get(ANNOTATION_LOG_DRIVER) or "json-file"
    if driver not in ("json-file", "none"):
        raise InvalidArgument(f"log driver {driver!r} is not supported (json-file, none)")
    log = str(log_path) if log_path and driver == "json-file" else None
    max_size = parse_size(annotations.get(ANNOTATION_LOG_MAX_SIZE))
    max_files = _positive_int(annotations.get(ANNOTATION_LOG_MAX_FILE), "max-file")

    console = process.get("consoleSize") or {}
    console_size = None
    if console.get("height") and console.get("width"):
        console_size = (int(console["height"]), int(console["width"]))

    stdin = annotations.get(ANNOTATION_STDIN)
    hostname = config.get("hostname")
    if hostname and not namespaces & CLONE_NEWUTS:
        hostname = None  # with the host's uts namespace the hostname is the host's
    domainname = config.get("domainname") if namespaces & CLONE_NEWUTS else None
    if linux.get("seccomp") and not seccomp_program:
        raise InvalidArgument("linux.seccomp needs its compiled program")

    return Plan(
        args=tuple(_b(a) for a in args),
        env=tuple(_b(e) for e in process.get("env") or ()),
        cwd=process.get("cwd") or "/",
        uid=int(user.get("uid", 0)),
        gid=int(user.get("gid", 0)),
        groups=tuple(int(g) for g in user.get("additionalGids") or ()),
        hostname=hostname or None,
        domainname=domainname or None,
        root=root,
        readonly_root=bool(root_cfg.get("readonly")),
        overlay=overlay,
        mounts=tuple(mounts),
        masked=tuple(linux.get("maskedPaths") or ()),
        readonly_paths=tuple(linux.get("readonlyPaths") or ()),
        namespaces=namespaces,
        ns_paths=tuple(ns_paths),
        cgroup_procs=tuple(str(p) for p in cgroup_procs),
        caps=capability_mask(caps.get("bounding") or ()),
        rlimits=rlimits,
        no_new_privs=bool(process.get("noNewPrivileges")),
        open_stdin=stdin in ("open", "once"),
        stdin_once=stdin == "once",
        log=log,
        exit_file=str(exit_path) if exit_path else None,
        terminal=bool(process.get("terminal")),
        console_size=console_size,
        init=init,
        log_max_size=max_size if log else None,
        log_max_files=max_files if log and max_size else None,
        seccomp=str(seccomp_program) if linux.get("seccomp") else None,
        seccomp_flags=filter_flags(linux["seccomp"]) if linux.get("seccomp") else 0,
        sysctls=tuple((str(k), str(v)) for k, v in (linux.get("sysctl") or {}).items()),
        oom_score_adj=int(process["oomScoreAdj"]) if process.get("oomScoreAdj") is not None else None,
        devices=tuple(_device(d) for d in linux.get("devices") or ()),
    )


def _device(d: Mapping[str, Any]) -> Device:
    """One of linux.devices (runc's default mode 0666 when fileMode is absent)."""
    if d.get("type") not in ("c", "b", "p", "u") or not str(d.get("path", "")).startswith("/"):
        raise InvalidArgument(f"invalid device {d!r}")
    return Device(path=os.path.normpath(d["path"]), type="c" if d["type"] == "u" else d["type"],
                  major=int(d.get("major") or 0), minor=int(d.get("minor") or 0),
                  mode=int(d["fileMode"]) & 0o7777 if d.get("fileMode") is not None else 0o666,
                  uid=int(d.get("uid") or 0), gid=int(d.get("gid") or 0))


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(value: str | int | None) -> int | None:
    """A log max-size: plain bytes, or Docker's units.RAMInBytes forms ("10m", "1.5k", "2gb";
    binary multiples). None, "", "-1" or "0" mean no limit."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    text = value.strip().lower()
    number = text.rstrip("bkmgtpi")
    unit = text[len(number) :].removesuffix("ib").removesuffix("b") or ("b" if text.endswith("b") else "")
    try:
        n = float(number)
    except ValueError:
        raise InvalidArgument(f"invalid size: {value!r}") from None
    if unit not in _UNITS:
        raise InvalidArgument(f"invalid size: {value!r}")
    size = int(n * _UNITS[unit])
    return size if size > 0 else None


def _positive_int(value: str | int | None, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        n = int(value)
    except ValueError:
        raise InvalidArgument(f"invalid value for {what}: {value!r}") from None
    if n < 1:
        raise InvalidArgument(f"{what} cannot be less than 1")
    return n


def _flag(value: object) -> bool:
    return str(value).lower() in ("1", "true", "yes") if value is not None else False


def _b(s: str | bytes) -> bytes:
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")


def _rlimit_number(name: str) -> int:
    try:
        return RLIMITS[name.upper()]
    except KeyError:
        raise InvalidArgument(f"unknown rlimit type {name!r}") from None


def _rlim(v: int | None) -> int:
    if v is None or v < 0 or v >= RLIM_INFINITY:
        return RLIM_INFINITY
    return int(v)
