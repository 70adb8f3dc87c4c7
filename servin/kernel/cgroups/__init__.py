"""cgroups: one manager interface, a v1 and a v2 implementation, chosen at start.

`detect(root)` only reads files, so both implementations run on fake trees in unit tests.
Every write goes through `write_file` (or the `writer` a manager is built with), which turns a
value the kernel refuses into `InvalidArgument`. A fake tree is plain directories: writes create
the files, and reads of files the kernel would have created fall back to defaults.

common.py holds the types, the interface and the helpers both share; v1.py and v2.py the managers.
"""

from __future__ import annotations

from pathlib import Path

from servin.kernel.cgroups.common import (
    USER_HZ_NS,
    V1_CONTROLLERS,
    V1_JOINED,
    V2_CONTROLLERS,
    CgroupManager,
    CgroupStats,
    Features,
    Resources,
    Writer,
    cpu_weight,
    io_weight,
    write_file,
)
from servin.kernel.cgroups.v1 import CgroupV1, v1_hierarchy_mounts
from servin.kernel.cgroups.v2 import CgroupV2, DeviceFilter

__all__ = [
    "USER_HZ_NS", "V1_CONTROLLERS", "V1_JOINED", "V2_CONTROLLERS", "CgroupManager", "CgroupStats", "CgroupV1",
    "CgroupV2", "DeviceFilter", "Features", "Resources", "Writer", "cpu_weight", "detect", "io_weight",
    "v1_hierarchy_mounts", "write_file",
]  # fmt: skip


def detect(root: Path = Path("/sys/fs/cgroup"), *, writer: Writer = write_file) -> CgroupManager:
    """v2 when `root` is a pure cgroup2 mount; v1 otherwise (a hybrid host counts as v1)."""
    if (root / "cgroup.controllers").exists():
        return CgroupV2(root, writer=writer)
    return CgroupV1(root, writer=writer)
