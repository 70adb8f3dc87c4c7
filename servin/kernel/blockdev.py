"""Block device numbers for blkio settings (--blkio-weight-device, --device-read-bps, ...)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from servin.errors import InvalidArgument


def numbers(paths: Iterable[str]) -> dict[str, tuple[int, int]]:
    """path → (major, minor) of each block device, as dockerd stats them at start."""
    out = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as e:  # Go's wording: "stat /dev/nope: no such file or directory"
            raise InvalidArgument(f"stat {path}: {os.strerror(e.errno or 0).lower()}") from None
        if not stat.S_ISBLK(st.st_mode):
            raise InvalidArgument(f"{path} is not a block device")
        out[path] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    return out
