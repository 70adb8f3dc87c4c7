"""Docker's stats JSON (GET /containers/{id}/stats) from two readings of a container's cgroup."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from servin.api.wire import versions

from servin.core.model import Container

ZERO_TIME = "0001-01-01T00:00:00Z"  # preread before a first reading


def _blkio(entries: Sequence[tuple[int, int, str, int]]) -> list[dict[str, Any]] | None:
    return [{"major": ma, "minor": mi, "op": op, "value": v} for ma, mi, op, v in entries] or None


@versions.answer("ContainerStats")
def stats(c: Container, cur: Any, pre: Any, *, read: str, preread: str, system_ns: int,
          pre_system_ns: int, ncpu: int, mem_total: int,
          networks: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """Docker's stats JSON from two cgroup readings (None: not running → zeros); `networks` are
    the interface counters of a container with endpoints (the key is absent otherwise, as Docker)."""

    def cpu(sample: Any, system: int) -> dict[str, Any]:
        if sample is None:
            return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                    "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
        usage: dict[str, Any] = {"total_usage": sample.cpu_usage_ns,
                                 "usage_in_kernelmode": sample.cpu_system_ns,
                                 "usage_in_usermode": sample.cpu_user_ns}
        if sample.percpu_ns:
            usage["percpu_usage"] = list(sample.percpu_ns)
        t = sample.throttling
        return {"cpu_usage": usage, "system_cpu_usage": system, "online_cpus": ncpu,
                "throttling_data": {"periods": t.get("nr_periods", 0),
                                    "throttled_periods": t.get("nr_throttled", 0),
                                    "throttled_time": t.get("throttled_time", 0)}}

    memory: dict[str, Any] = {}
    if cur is not None:
        memory = {"usage": cur.memory_usage, "stats": dict(cur.memory_detail),
                  "limit": cur.memory_limit or mem_total}
        if cur.memory_max_usage:
            memory["max_usage"] = cur.memory_max_usage
        if cur.oom_kills:
            memory["failcnt"] = cur.oom_kills
    return {
        "read": read,
        "preread": preread,
        "pids_stats": {} if cur is None else {"current": cur.pids_current,
                                              **({"limit": cur.pids_limit} if cur.pids_limit else {})},
        "blkio_stats": {"io_service_bytes_recursive": _blkio(cur.io_service_bytes if cur is not None else ()),
                        "io_serviced_recursive": _blkio(cur.io_serviced if cur is not None else ()),
                        "io_queue_recursive": None, "io_service_time_recursive": None,
                        "io_wait_time_recursive": None, "io_merged_recursive": None,
                        "io_time_recursive": None, "sectors_recursive": None},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu(cur, system_ns),
        "precpu_stats": cpu(pre, pre_system_ns),
        "memory_stats": memory,
        "name": "/" + c.name,
        "id": c.id,
        "os_type": "linux",
        **({"networks": networks} if networks is not None else {}),
    }
