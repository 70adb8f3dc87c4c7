"""Text the way the docker CLI prints it: aligned tables, "3 minutes ago", "7.772GiB"."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

from servin.units import bytes_size as bytes_size  # re-exported: the CLI renders through this module
from servin.units import human_duration

GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64"}


def go_arch() -> str:
    machine = platform.machine()
    return GO_ARCH.get(machine, machine)


def table(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Columns as the docker CLI's tabwriter sets them: at least 10 wide, 3 spaces between."""
    lines = [list(header)] + [list(r) for r in rows]
    widths = [max(10, max(len(line[i]) for line in lines) + 3) for i in range(len(header))]
    for line in lines:
        cells = [cell.ljust(w) for cell, w in zip(line[:-1], widths[:-1], strict=True)] + [line[-1]]
        out.write("".join(cells).rstrip() + "\n")


def fields(out: TextIO, pairs: Iterable[tuple[str, Any]], indent: int) -> None:
    """`docker version`'s aligned "Label:  value" lines."""
    for label, value in pairs:
        out.write(f"{' ' * indent}{label}:".ljust(20) + f"{value}\n")


def json_line(out: TextIO, value: Any) -> None:
    out.write(json.dumps(value, separators=(",", ":")) + "\n")


def ago(t: datetime | None, *, never: str = "never", now: datetime | None = None) -> str:
    if t is None:
        return never
    return human_duration(((now or _now()) - t).total_seconds()) + " ago"


def until(t: datetime | None, *, never: str = "never", now: datetime | None = None) -> str:
    if t is None:
        return never
    left = (t - (now or _now())).total_seconds()
    return f"in {human_duration(left)}" if left > 0 else "expired"


def _now() -> datetime:
    return datetime.now(timezone.utc)
