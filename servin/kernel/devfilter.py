"""Device access on cgroup v2, which has no devices controller: an eBPF program of type
BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup, built (in C, servin._native) from
the same ordered rules the v1 controller takes ("c 1:3 rwm", allow or deny; the last match decides,
no match denies). It goes when the cgroup is removed."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from servin.errors import InvalidArgument

_ACCESS = {"m": 1, "r": 2, "w": 4}


def encode(rules: Sequence[tuple[bool, str]]) -> list[int]:
    """(allow, "type major:minor access") → 5 ints each: allow, type (0, 'b', 'c'), major, minor (-1 = any),
    access bits."""
    out: list[int] = []
    for allow, rule in rules:
        fields = rule.split()
        kind = fields[0] if fields else "a"
        numbers = fields[1] if len(fields) > 1 else "*:*"
        access = fields[2] if len(fields) > 2 else "rwm"
        major, _, minor = numbers.partition(":")
        if kind not in ("a", "b", "c") or any(ch not in _ACCESS for ch in access):
            raise InvalidArgument(f"invalid device rule {rule!r}")
        try:
            maj = -1 if major in ("*", "") else int(major)
            mnr = -1 if minor in ("*", "") else int(minor)
        except ValueError:
            raise InvalidArgument(f"invalid device rule {rule!r}") from None
        bits = 0
        for ch in access:
            bits |= _ACCESS[ch]
        out += [int(allow), 0 if kind == "a" else ord(kind), maj, mnr, bits]
    return out


def attach(cgroup_dir: Path, rules: Sequence[tuple[bool, str]]) -> None:
    # loaded at first use, as kernel/mounts.py's: pure code imports this module without the build
    from servin._native import ffi, lib

    flat = encode(rules)
    log = ffi.new("char[]", 1 << 16)
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        rc = lib.servin_device_filter(fd, ffi.new("int[]", flat or [0]), len(flat) // 5, log, 1 << 16)
    finally:
        os.close(fd)
    if rc < 0:
        detail = ffi.string(log).decode(errors="replace").strip().splitlines()[-3:]
        raise OSError(-rc, f"device filter for {cgroup_dir}: {os.strerror(-rc)}" + (f" ({' / '.join(detail)})"
                                                                                    if detail else ""))
