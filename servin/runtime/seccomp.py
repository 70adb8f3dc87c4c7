"""The OCI `linux.seccomp` section → a classic BPF program, through libseccomp (servin._native),
compiled once per distinct section: programs are kept under the exec root by the hash of the
section, so a container's start only reads a file.

Rules are added as runc adds them (libcontainer/seccomp/seccomp_linux.go): a rule whose action is
the default one is left out, a syscall libseccomp does not know is skipped, and conditions on the
same argument become one rule each (libseccomp refuses them in one rule). Unless the default
action allows (or is ENOSYS already), runc's ENOSYS stub goes first: syscalls newer than any the
profile names answer ENOSYS (libcontainer/seccomp/patchbpf; `enosys_stub` in the cffi extension).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from servin.errors import InvalidArgument

FORMAT = b"servin-seccomp-2\0"  # bump when the compilation changes: old programs are not reused

# the runtime-spec's filter flags Servin applies, as seccomp(2)'s SECCOMP_FILTER_FLAG_* (linux/seccomp.h):
# TSYNC is accepted and ignored, as runc does (the filter is installed by a single-threaded
# process); notify's WAIT_KILLABLE_RECV is not supported
FILTER_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 0, "SECCOMP_FILTER_FLAG_LOG": 2,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
DEFAULT_FLAGS = 4  # runc: SPEC_ALLOW when the profile names no flags (no forced SSB mitigation)
OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
             "SCMP_CMP_MASKED_EQ")  # libseccomp's comparisons, as the runtime-spec names them


def filter_flags(section: Mapping[str, Any]) -> int:
    """The flags argument of seccomp(SECCOMP_SET_MODE_FILTER) for a section."""
    if section.get("flags") is None:
        return DEFAULT_FLAGS
    mask = 0
    for name in section["flags"]:
        if name not in FILTER_FLAGS:
            raise InvalidArgument(f"seccomp flag {name} is not supported")
        mask |= FILTER_FLAGS[name]
    return mask


def section_hash(section: Mapping[str, Any]) -> str:
    text = json.dumps(section, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(FORMAT + text).hexdigest()


class ProgramCache:
    """Compiled programs in `root` (made 0700), one file per section hash, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.compiled = 0  # how many this cache compiled (tests)

    def program(self, section: Mapping[str, Any]) -> Path:
        path = self.root / f"{section_hash(section)}.bpf"
        if path.exists():
            return path
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            compile_to(section, fd)
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(tmp, path)
        finally:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self.compiled += 1
        return path


def compile_bpf(section: Mapping[str, Any]) -> bytes:
    """The program of a section as bytes (struct sock_filter[])."""
    with tempfile.TemporaryFile() as f:
        compile_to(section, f.fileno())
        f.seek(0)
        return f.read()


def compile_to(section: Mapping[str, Any], fd: int) -> None:
    from servin._native import ffi, lib

    default = _action(lib, section.get("defaultAction", ""), section.get("defaultErrnoRet"))
    rules: list[tuple[str, int, list[Mapping[str, Any]]]] = []
    for call in section.get("syscalls") or ():
        action = _action(lib, call.get("action", ""), call.get("errnoRet"))  # = default: not added, counted
        args = list(call.get("args") or ())
        indexes = [a.get("index", 0) for a in args]
        groups = [[a] for a in args] if len(set(indexes)) < len(indexes) else [args]
        for name in call.get("names") or ():
            rules.extend((name, action, g) for g in groups)
    keep: list[Any] = []
    crules = ffi.new("struct servin_seccomp_rule[]", max(len(rules), 1))
    for i, (name, action, conds) in enumerate(rules):
        cname = ffi.new("char[]", name.encode())
        keep.append(cname)
        crules[i].name = cname
        crules[i].action = action
        crules[i].ncmp = len(conds)
        for j, a in enumerate(conds):
            crules[i].cmp[j].arg = a.get("index", 0)
            if a.get("op") not in OPERATORS:
                raise InvalidArgument(f"string {a.get('op', '')} is not a valid operator for seccomp")
            crules[i].cmp[j].op = getattr(lib, a["op"])
            crules[i].cmp[j].datum_a = a.get("value", 0)
            crules[i].cmp[j].datum_b = a.get("valueTwo", 0)
    names = [ffi.new("char[]", a.removeprefix("SCMP_ARCH_").lower().encode())
             for a in section.get("architectures") or ()]
    arches = ffi.new("char *[]", names) if names else ffi.NULL
    enosys = section.get("defaultAction") not in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE") and not (
        section.get("defaultAction") == "SCMP_ACT_ERRNO" and section.get("defaultErrnoRet") == errno.ENOSYS)
    err = ffi.new("char[]", 256)
    rc = lib.servin_seccomp_export(default, arches, len(names), crules, len(rules), int(enosys), fd, err, 256)
    if rc < 0:
        raise InvalidArgument(f"seccomp: {ffi.string(err).decode()}: {os.strerror(-rc)}")


def _action(lib: Any, name: str, errno_ret: int | None) -> int:
    """runc's getAction: ERRNO and TRACE return EPERM unless the profile says otherwise."""
    if name == "SCMP_ACT_ERRNO":
        return lib.servin_scmp_act_errno(1 if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return lib.servin_scmp_act_trace(1 if errno_ret is None else errno_ret)
    simple = {"SCMP_ACT_KILL": lib.SCMP_ACT_KILL_THREAD, "SCMP_ACT_KILL_THREAD": lib.SCMP_ACT_KILL_THREAD,
              "SCMP_ACT_KILL_PROCESS": lib.SCMP_ACT_KILL_PROCESS, "SCMP_ACT_TRAP": lib.SCMP_ACT_TRAP,
              "SCMP_ACT_ALLOW": lib.SCMP_ACT_ALLOW, "SCMP_ACT_LOG": lib.SCMP_ACT_LOG}
    if name not in simple:
        raise InvalidArgument(f"string {name} is not a valid action for seccomp")
    return simple[name]
