"""The plan's wire format: what servin-shim (native/servin-shim.c) reads to run a container.

A plan file is

    a flat sequence of NUL-terminated strings: <tag> <count> <value_1> ... <value_count>,
    repeated until the end of the file. Values may hold any byte except NUL. Unknown tags are
    skipped by the shim (the count says how far).

Tags:
    version 1 "1"
    args N argv...            env N "K=V"...            cwd 1 path
    uid 1 n   gid 1 n         groups N n...             hostname 1 name (only with a uts ns)
    root 1 /abs/path          readonly_root 1 0|1
    overlay 1 "lowerdir=a:b,upperdir=u,workdir=w"   (absent: root is bind-mounted onto itself)
    mount 5|6 source target fstype flags data [attr]   (repeatable, applied in order; attr "rro": the
              mount and every mount below it made read-only by mount_setattr; a bind's data: the
              path inside source to bind, resolved inside it (a volume's subpath); flags is the
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

from collections.abc import Callable
from dataclasses import dataclass

from servin.errors import InvalidArgument


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    source: str
    target: str
    fstype: str
    flags: int
    data: str = ""  # a bind's: the path inside `source` to bind (a subpath, resolved inside it)
    attr: str = ""  # "rro": recursively read-only once mounted


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
            tag("mount", m.source, m.target, m.fstype, m.flags, m.data, *((m.attr,) if m.attr else ()))
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


def _tagger(out: list[bytes]) -> Callable[..., None]:
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
