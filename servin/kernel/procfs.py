"""Host-wide readings from /proc that the engine reports (stats' system CPU time)."""

from __future__ import annotations

from pathlib import Path

USER_HZ_NS = 1_000_000_000 // 100


def system_cpu_ns(proc: Path = Path("/proc")) -> int:
    """Total CPU time of the host since boot, as Docker's system_cpu_usage (ns)."""
    for line in (proc / "stat").read_text().splitlines():
        if line.startswith("cpu "):
            return sum(int(v) for v in line.split()[1:8]) * USER_HZ_NS
    return 0
