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


NET_DEV_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors",
                  "tx_dropped")


def net_dev(pid: int, proc: Path = Path("/proc")) -> dict[str, dict[str, int]]:
    """Interface counters in the network namespace of `pid` (loopback left out), Docker's names."""
    out: dict[str, dict[str, int]] = {}
    for line in (proc / str(pid) / "net" / "dev").read_text().splitlines()[2:]:
        name, _, rest = line.partition(":")
        name = name.strip()
        if name == "lo" or not rest:
            continue
        v = [int(x) for x in rest.split()]
        # receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets errs drop ...
        out[name] = dict(zip(NET_DEV_FIELDS, (v[0], v[1], v[2], v[3], v[8], v[9], v[10], v[11]), strict=True))
    return out


def capability_bounding_set(proc: Path = Path("/proc")) -> int:
    """This process's capability bounding set (CapBnd), the most a container can be given."""
    for line in (proc / "self" / "status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise OSError("no CapBnd in /proc/self/status")
