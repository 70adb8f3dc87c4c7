"""Text the way the docker CLI prints it: aligned tables, "3 minutes ago", "7.772GiB"."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

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


def human_duration(seconds: float) -> str:
    """go-units HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def ago(t: datetime | None, *, never: str = "never", now: datetime | None = None) -> str:
    if t is None:
        return never
    return human_duration(((now or _now()) - t).total_seconds()) + " ago"


def until(t: datetime | None, *, never: str = "never", now: datetime | None = None) -> str:
    if t is None:
        return never
    left = (t - (now or _now())).total_seconds()
    return f"in {human_duration(left)}" if left > 0 else "expired"


def bytes_size(n: float) -> str:
    """go-units BytesSize: 4 significant digits, binary units."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.4g}{units[i]}"


def _now() -> datetime:
    return datetime.now(timezone.utc)
