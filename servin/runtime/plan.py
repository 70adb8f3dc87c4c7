"""The plan: what servin-shim executes to turn an OCI bundle into a running container.

Python decides, C executes. `plan_from_oci` is a pure function from an OCI runtime-spec 1.0
config.json (as a dict) to a `Plan`; `Plan.encode()` writes the wire format that
`native/servin-shim.c` parses:

    a flat sequence of NUL-terminated strings: <tag> <count> <value_1> ... <value_count>,
    repeated until the end of the file. Values may hold any byte except NUL. Unknown tags are
    skipped by the shim (the count says how far).

Tags:
    version 1 "1"
    args N argv...            env N "K=V"...            cwd 1 path
    uid 1 n   gid 1 n         groups N n...             hostname 1 name (only with a uts ns)
    root 1 /abs/path          readonly_root 1 0|1
    overlay 1 "lowerdir=a:b,upperdir=u,workdir=w"   (absent: root is bind-mounted onto itself)
    mount 5 source target fstype flags data         (repeatable, applied in order; flags is the
              decimal MS_* mask; MS_BIND mounts are bound and then remounted with the other
              flags; propagation bits are applied by a second call; MS_REMOUNT without
              MS_BIND remounts an earlier mount; target "/dev" with fstype tmpfs gets the
              standard device nodes and symlinks; fstype "symlink" makes target a symlink
              to source, e.g. /sys/fs/cgroup/cpu -> cpu,cpuacct; fstype "nsbind" binds path
              `data` of the mount namespace `source` (/proc/<pid>/ns/mnt; from a bind of
              /proc/<pid>/root/<path>: another container's /dev/shm for --ipc container:))
    masked N path...          readonly_path N path...
    namespaces 1 CLONE_* mask (decimal; cgroup ns is unshared by the child after the cgroup join)
    ns_path 2 type path       (repeatable; type network|ipc|uts|pid) join this namespace (an nsfs
              file: <exec-root>/netns/<id>, /proc/<pid>/ns/ipc) instead of a new one; the shim
              opens it before the clone, the child setns()es before the mounts (pid: the shim
              around the clone); its CLONE_NEW* is then absent from the mask
    sysctl 2 key value        (repeatable) written to /proc/sys/<key with / for .> after pivot_root,
              before /proc/sys is made read-only
    oom_score_adj 1 n         written to /proc/self/oom_score_adj of the init and of every exec
    device 7 path type major minor mode uid gid   (repeatable) a node the child makes in the
              container (type c, b or p; mode the permission bits, decimal), after the mounts;
              one that exists is left; where mknod is refused, the host's node at path is bound
    cgroup_procs N file...    (repeatable) cgroup.procs files the parent writes the child pid to
    caps 1 mask               (decimal 64-bit capability mask: bounding, effective, permitted)
    rlimit 3 resource soft hard   (repeatable; RLIM_INFINITY = 18446744073709551615)
    no_new_privs 1 0|1   open_stdin 1 0|1   stdin_once 1 0|1
    seccomp 2 path flags      a classic BPF program (struct sock_filter[], runtime/seccomp.py's
              cache) installed with seccomp(SECCOMP_SET_MODE_FILTER, flags) last before execve, for
              the init and every exec; absent: no filter (unconfined)
    terminal 1 0|1            consolesize 2 rows cols   (the pty's initial size)
    init 1 1                  (--init: args start with /sbin/docker-init, bound read-only)
    log 1 path (json-file log; absent: driver none, nothing is written)    exit_file 1 path
    log_max_size 1 bytes      log_max_files 1 n          (json-file rotation, Docker's semantics)

An exec plan (`ExecPlan`, for `exec <path>` connections) uses the same format with the process
tags only: args env cwd uid gid groups caps no_new_privs terminal open_stdin consolesize; the
container's seccomp program applies to every exec (as runc's exec applies the container's).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servin.errors import InvalidArgument, NotImplementedYet
from servin.kernel.cgroups import Resources
from servin.runtime.seccomp import filter_flags

# --- constants (Linux uapi) -----------------------------------------------------------------

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_I_VERSION = 0x800000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

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

CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip
CAP_BITS = {name: bit for bit, name in enumerate(CAPABILITIES)}

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}  # fmt: skip
RLIM_INFINITY = 2**64 - 1

# mount option -> (clear, flag); like runc's parseMountOptions
_MOUNT_FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, MS_SYNCHRONOUS),
    "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND),
    "defaults": (False, 0),
    "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC),
    "iversion": (False, MS_I_VERSION),
    "noiversion": (True, MS_I_VERSION),
    "lazytime": (False, MS_LAZYTIME),
    "nolazytime": (True, MS_LAZYTIME),
    "loud": (True, MS_SILENT),
    "mand": (False, MS_MANDLOCK),
    "nomand": (True, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME),
    "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC),
    "nosuid": (False, MS_NOSUID),
    "nosymfollow": (False, MS_NOSYMFOLLOW),
    "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "silent": (False, MS_SILENT),
    "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID),
    "sync": (False, MS_SYNCHRONOUS),
}
_PROPAGATION = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}
# recursive mount_setattr options (rro, rnosuid, ...) are not supported yet: ignored for binds
_IGNORED = {"rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec", "tmpcopyup"}

ANNOTATION_LOWER = "io.servin.overlay.lowerdir"
ANNOTATION_UPPER = "io.servin.overlay.upperdir"
ANNOTATION_WORK = "io.servin.overlay.workdir"
ANNOTATION_STDIN = "io.servin.stdin"
ANNOTATION_INIT = "io.servin.init"
ANNOTATION_LOG_DRIVER = "io.servin.log.driver"
ANNOTATION_LOG_MAX_SIZE = "io.servin.log.max-size"
ANNOTATION_LOG_MAX_FILE = "io.servin.log.max-file"

INIT_PATH = "/sbin/docker-init"  # where Docker mounts its init in the container
ALL_CAPS = 2**64 - 1  # privileged exec: every capability the kernel has


def default_init_binary() -> Path:
    """$SERVIN_INIT, else servin/libexec/servin-init next to this package."""
    env = os.environ.get("SERVIN_INIT")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "libexec" / "servin-init"


# --- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    source: str
    target: str
    fstype: str
    flags: int
    data: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    path: str
    type: str  # c, b, p
    major: int
    minor: int
    mode: int  # permission bits
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Rlimit:
    resource: int
    soft: int
    hard: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    args: tuple[bytes, ...]
    env: tuple[bytes, ...] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    hostname: str | None = None
    domainname: str | None = None
    root: str
    readonly_root: bool = False
    overlay: str | None = None
    mounts: tuple[Mount, ...] = ()
    masked: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    namespaces: int = 0
    ns_paths: tuple[tuple[str, str], ...] = ()  # (type, nsfs path) of namespaces joined
    cgroup_procs: tuple[str, ...] = ()
    caps: int = 0
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privs: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    log: str | None = None
    exit_file: str | None = None
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (rows, cols)
    init: bool = False
    log_max_size: int | None = None  # bytes
    log_max_files: int | None = None
    seccomp: str | None = None  # the compiled program's path
    seccomp_flags: int = 0
    sysctls: tuple[tuple[str, str], ...] = ()
    oom_score_adj: int | None = None
    devices: tuple[Device, ...] = ()

    @property
    def netns_path(self) -> str | None:
        return dict(self.ns_paths).get("network")

    def encode(self) -> bytes:
        out: list[bytes] = []
        tag = _tagger(out)

        tag("version", 1)
        tag("args", *self.args)
        tag("env", *self.env)
        tag("cwd", self.cwd)
        tag("uid", self.uid)
        tag("gid", self.gid)
        tag("groups", *self.groups)
        if self.hostname is not None:
            tag("hostname", self.hostname)
        if self.domainname is not None:
            tag("domainname", self.domainname)
        tag("root", self.root)
        tag("readonly_root", int(self.readonly_root))
        if self.overlay:
            tag("overlay", self.overlay)
        for m in self.mounts:
            tag("mount", m.source, m.target, m.fstype, m.flags, m.data)
        tag("masked", *self.masked)
        tag("readonly_path", *self.readonly_paths)
        tag("namespaces", self.namespaces)
        for kind, path in self.ns_paths:
            tag("ns_path", kind, path)
        for key, value in self.sysctls:
            tag("sysctl", key, value)
        if self.oom_score_adj is not None:
            tag("oom_score_adj", self.oom_score_adj)
        for d in self.devices:
            tag("device", d.path, d.type, d.major, d.minor, d.mode, d.uid, d.gid)
        tag("cgroup_procs", *self.cgroup_procs)
        tag("caps", self.caps)
        for r in self.rlimits:
            tag("rlimit", r.resource, r.soft, r.hard)
        tag("no_new_privs", int(self.no_new_privs))
        if self.seccomp:
            tag("seccomp", self.seccomp, self.seccomp_flags)
        tag("open_stdin", int(self.open_stdin))
        tag("stdin_once", int(self.stdin_once))
        if self.terminal:
            tag("terminal", 1)
        if self.console_size:
            tag("consolesize", *self.console_size)
        if self.init:
            tag("init", 1)
        if self.log:
            tag("log", self.log)
            if self.log_max_size:
                tag("log_max_size", self.log_max_size)
            if self.log_max_files:
                tag("log_max_files", self.log_max_files)
        if self.exit_file:
            tag("exit_file", self.exit_file)
        return b"".join(s + b"\0" for s in out)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecPlan:
    """One `docker exec` process, run by the shim inside the container's namespaces and cgroup."""

    args: tuple[bytes, ...]
    env: tuple[bytes, ...] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    caps: int = 0
    no_new_privs: bool = False
    terminal: bool = False
    open_stdin: bool = False
    console_size: tuple[int, int] | None = None

    def encode(self) -> bytes:
        if not self.args:
            raise InvalidArgument("exec needs a command")
        out: list[bytes] = []
        tag = _tagger(out)
        tag("version", 1)
        tag("args", *self.args)
        tag("env", *self.env)
        tag("cwd", self.cwd or "/")
        tag("uid", self.uid)
        tag("gid", self.gid)
        tag("groups", *self.groups)
        tag("caps", self.caps)
        tag("no_new_privs", int(self.no_new_privs))
        tag("terminal", int(self.terminal))
        tag("open_stdin", int(self.open_stdin))
        if self.console_size:
            tag("consolesize", *self.console_size)
        return b"".join(s + b"\0" for s in out)


def _tagger(out: list[bytes]):  # noqa: ANN202
    def tag(name: str, *values: str | bytes | int) -> None:
        out.append(name.encode())
        out.append(str(len(values)).encode())
        for v in values:
            b = v if isinstance(v, bytes) else str(v).encode()
            if b"\0" in b:
                raise InvalidArgument(f"plan value for {name} contains a NUL byte")
            out.append(b)

    return tag


def decode(data: bytes) -> list[tuple[str, list[bytes]]]:
    """The (tag, values) sequence of an encoded plan (for tests and debugging)."""
    parts = data.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    result: list[tuple[str, list[bytes]]] = []
    i = 0
    while i < len(parts):
        name, count = parts[i].decode(), int(parts[i + 1])
        result.append((name, parts[i + 2 : i + 2 + count]))
        i += 2 + count
    return result


# --- OCI -> plan ----------------------------------------------------------------------------


def parse_mount_options(options: Sequence[str]) -> tuple[int, str]:
    """runc's rules: known options become MS_* flags (or clear them), propagation options add
    their bits, everything else goes to the data string."""
    flags = 0
    data: list[str] = []
    for opt in options:
        if opt in _MOUNT_FLAGS:
            clear, bit = _MOUNT_FLAGS[opt]
            flags = flags & ~bit if clear else flags | bit
        elif opt in _PROPAGATION:
            flags |= _PROPAGATION[opt]
        elif opt in _IGNORED:
            continue
        else:
            data.append(opt)
    return flags, ",".join(data)


def capability_mask(names: Sequence[str]) -> int:
    mask = 0
    for name in names:
        bit = CAP_BITS.get(name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper())
        if bit is not None:  # unknown capabilities are ignored, as runc does
            mask |= 1 << bit
    return mask


def resources_from_oci(linux: Mapping[str, Any]) -> Resources:
    res = linux.get("resources") or {}
    mem = res.get("memory") or {}
    cpu = res.get("cpu") or {}
    pids = res.get("pids") or {}
    blkio = res.get("blockIO") or {}

    def per_device(key: str, value: str) -> tuple[tuple[int, int, int], ...]:
        return tuple((int(d["major"]), int(d["minor"]), int(d[value])) for d in blkio.get(key) or ())

    return Resources(
        memory=mem.get("limit"),
        memory_swap=mem.get("swap"),
        cpu_shares=cpu.get("shares"),
        cpu_quota=cpu.get("quota"),
        cpu_period=cpu.get("period"),
        cpuset_cpus=cpu.get("cpus") or None,
        cpuset_mems=cpu.get("mems") or None,
        pids_limit=pids.get("limit"),
        device_rules=_device_rules(res.get("devices")),
        oom_kill_disable=bool(mem.get("disableOOMKiller")),
        memory_reservation=mem.get("reservation"),
        memory_swappiness=mem.get("swappiness"),
        cpu_rt_period=cpu.get("realtimePeriod"),
        cpu_rt_runtime=cpu.get("realtimeRuntime"),
        blkio_weight=blkio.get("weight"),
        blkio_weight_device=per_device("weightDevice", "weight"),
        blkio_read_bps=per_device("throttleReadBpsDevice", "rate"),
        blkio_write_bps=per_device("throttleWriteBpsDevice", "rate"),
        blkio_read_iops=per_device("throttleReadIOPSDevice", "rate"),
        blkio_write_iops=per_device("throttleWriteIOPSDevice", "rate"),
    )


def _device_rules(devices: Any) -> tuple[tuple[bool, str], ...] | None:
    """OCI linux.resources.devices → ordered v1 rules like (False, "a *:* rwm")."""
    if not devices:
        return None
    rules = []
    for d in devices:
        kind = d.get("type") or "a"
        major = "*" if d.get("major") in (None, -1) else str(d["major"])
        minor = "*" if d.get("minor") in (None, -1) else str(d["minor"])
        rules.append((bool(d.get("allow")), f"{kind} {major}:{minor} {d.get('access') or 'rwm'}"))
    return tuple(rules)


V1_CGROUP_ROOT = "/sys/fs/cgroup"  # where host_cgroup_v1_hierarchies finds the hierarchies


def _cgroup_mounts(target: str, flags: int, v1_hierarchies: Sequence[tuple[str, str]] | None, *,
                   cgroups_path: str, cgroupns: bool) -> list[Mount]:
    """The container's cgroup filesystem, as runc makes it. On a v2 host: one cgroup2 mount (in
    the container's cgroup namespace its root is the container's cgroup). On a v1/hybrid host: a
    tmpfs at `target`; per hierarchy the container's own cgroup directory bound on
    <target>/<name>, or with a cgroup namespace the hierarchy mounted (the namespace roots it at
    the container's cgroup); symlinks for co-mounted controllers (cpu -> cpu,cpuacct); then the
    tmpfs remounted read-only. `v1_hierarchies` is (directory name, mount data) per hierarchy,
    e.g. ("cpu,cpuacct", "cpu,cpuacct"), ("systemd", "none,name=systemd")."""
    base = flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY | MS_RELATIME)
    if v1_hierarchies is None:
        return [Mount(source="cgroup", target=target, fstype="cgroup2", flags=base)]
    if not cgroupns and not cgroups_path.strip("/"):
        raise InvalidArgument("a cgroup mount without a cgroup namespace needs linux.cgroupsPath")
    tmpfs_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    root = target.rstrip("/")
    mounts = [Mount(source="tmpfs", target=target, fstype="tmpfs", flags=tmpfs_flags, data="mode=755")]
    for name, data in v1_hierarchies:
        if cgroupns:
            mounts.append(Mount(source="cgroup", target=f"{root}/{name}", fstype="cgroup", flags=base, data=data))
        else:
            own = os.path.normpath(f"{V1_CGROUP_ROOT}/{name}/{cgroups_path.strip('/')}")
            mounts.append(Mount(source=own, target=f"{root}/{name}", fstype="bind", flags=MS_BIND | MS_REC | base))
        if "," in name:
            mounts.extend(Mount(source=name, target=f"{root}/{sub}", fstype="symlink", flags=0)
                          for sub in name.split(","))
    if flags & MS_RDONLY:
        mounts.append(
            Mount(
                source="tmpfs",
                target=target,
                fstype="tmpfs",
                flags=MS_REMOUNT | MS_RDONLY | tmpfs_flags,
                data="mode=755",
            )
        )
    return mounts


def host_cgroup_v1_hierarchies(mountinfo: str | None = None) -> list[tuple[str, str]] | None:
    """The v1 hierarchies mounted under /sys/fs/cgroup (None when there are none: a v2 host)."""
    if mountinfo is None:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
    result: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields, pfields = pre.split(), post.split()
        if len(fields) < 5 or len(pfields) < 3 or pfields[0] != "cgroup":
            continue
        mountpoint = fields[4]
        if not mountpoint.startswith("/sys/fs/cgroup/"):
            continue
        name = mountpoint.rsplit("/", 1)[1]
        opts = [o for o in pfields[2].split(",") if o not in ("rw", "ro")]
        # the hierarchies the cgroup manager puts a container in (cgroups.V1_JOINED)
        controllers = [o for o in opts if o in _V1_CONTROLLERS or o == "name=systemd"]
        if not controllers or name in seen:
            continue
        seen.add(name)
        data = ",".join(controllers)
        if not any(c in _V1_CONTROLLERS for c in controllers):
            data = "none," + data
        result.append((name, data))
    return result or None


_V1_CONTROLLERS = {
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio",
    "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc",
}  # fmt: skip


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
            mounts.append(Mount(source=source, target=target, fstype="bind", flags=flags, data=""))
        elif fstype in ("cgroup", "cgroup2"):
            mounts.extend(_cgroup_mounts(target, flags, cgroup_v1_hierarchies,
                                         cgroups_path=linux.get("cgroupsPath") or "",
                                         cgroupns=bool(namespaces & CLONE_NEWCGROUP)))
        else:
            mounts.append(Mount(source=source, target=target, fstype=fstype, flags=flags, data=data))

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
