"""Docker JSON of the bodies that change an existing container: `POST /containers/{id}/update` and the
config a `POST /commit` brings."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from servin.api.wire import request_body
from servin.api.wire import resources as wire_resources
from servin.api.wire.containers import int_field
from servin.api.wire.schemas import CONFIG, CREATE_REQUEST, UPDATE_CONFIG
from servin.core.model import HostConfig, RestartPolicy


@request_body(CREATE_REQUEST, rules="container.commitRequest")  # dockerd 29 keeps its Config only
def parse_commit(body: Any) -> dict[str, Any] | None:
    """POST /commit's body: the container.Config it brings (runconfig decodes it as a create body and
    keeps its Config), or None when it sets none of the Config's fields (dockerd's stays nil)."""
    if not body:
        return None
    config = {f.json: body[f.json] for f in CONFIG.fields if f.json in body}
    return config or None


@request_body(UPDATE_CONFIG)
def parse_update(body: Any, current: HostConfig) -> HostConfig:
    """`docker update`: the resources and restart policy given, the rest kept."""
    body = body or {}
    changes: dict[str, Any] = {}
    for key, attr in (("Memory", "memory"), ("MemorySwap", "memory_swap"), ("CpuShares", "cpu_shares"),
                      ("CpuQuota", "cpu_quota"), ("CpuPeriod", "cpu_period"), ("NanoCpus", "nano_cpus")):
        if body.get(key):
            changes[attr] = int_field(body, key)
    for key, attr in (("CpusetCpus", "cpuset_cpus"), ("CpusetMems", "cpuset_mems")):
        if body.get(key):
            changes[attr] = str(body[key])
    if body.get("PidsLimit") is not None:
        changes["pids_limit"] = int_field(body, "PidsLimit") or None
    rp = body.get("RestartPolicy")
    if isinstance(rp, dict) and rp.get("Name"):  # the CLI sends Name "" when --restart is not given
        changes["restart_policy"] = RestartPolicy(name=rp.get("Name") or "no",
                                                  maximum_retry_count=int(rp.get("MaximumRetryCount") or 0))
    changes.update(wire_resources.update_fields(body))
    if changes.get("nano_cpus"):
        changes.setdefault("cpu_quota", 0)
        changes.setdefault("cpu_period", 0)
    return replace(current, **changes)
