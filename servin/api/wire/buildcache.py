"""Docker JSON of the build cache: the records of `GET /system/df` (types.BuildCache) and the
options of `POST /build/prune` (dockerd 20.10's postPrune and toBuildkitPruneInfo)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from servin.api.wire.archive import rfc3339_nano
from servin.api.wire.filters import parse_filters
from servin.build.bflags import FlagError, go_duration
from servin.core.buildcache import FILTERS, CacheRecord, PruneOptions
from servin.errors import InvalidArgument

_ALLOWED = frozenset({*FILTERS, "until", "unused-for", "label", "label!"})


def record(r: CacheRecord) -> dict[str, Any]:
    return {
        "ID": r.id,
        "Parent": r.parent,
        "Parents": [r.parent] if r.parent else None,
        "Type": r.type,
        "Description": r.description,
        "InUse": r.in_use,
        "Shared": r.shared,
        "Size": r.size,
        "CreatedAt": rfc3339_nano(int(r.created_at * 1e9)),
        "LastUsedAt": rfc3339_nano(int(r.last_used_at * 1e9)) if r.last_used_at is not None else None,
        "UsageCount": r.usage_count,
    }


def _bool(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no")


def _bytes(query: Mapping[str, str], name: str) -> int:
    text = query.get(name) or "0"
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f'{name} is in bytes and expects an integer, got {text}: strconv.Atoi: '
                              f'parsing "{text}": invalid syntax') from None


def prune_options(query: Mapping[str, str]) -> PruneOptions:
    filters = parse_filters(query.get("filters"), _ALLOWED)
    # reserved-space, max-used-space and min-free-space come with 1.48 (versions.py drops them before)
    keep_storage = _bytes(query, "reserved-space") or _bytes(query, "keep-storage")
    if filters.get("until") and filters.get("unused-for"):
        raise InvalidArgument('conflicting filters: "until" and "unused-for"')
    key = "unused-for" if filters.get("unused-for") else "until"
    until = [*filters.pop("until", []), *filters.pop("unused-for", [])]
    labels, labels_not = tuple(filters.pop("label", [])), tuple(filters.pop("label!", []))
    if len(until) > 1 or any(len(v) > 1 for v in filters.values()):
        raise InvalidArgument("filters expect only one value")
    keep_duration = 0.0
    if until:
        try:
            keep_duration = go_duration(until[0]) / 1e9
        except FlagError as e:
            raise InvalidArgument(f"\"{key}\" filter expects a duration (e.g., '24h'): {e}") from None
    return PruneOptions(all=_bool(query.get("all")), keep_storage=keep_storage, keep_duration=keep_duration,
                        max_used_space=_bytes(query, "max-used-space"), min_free_space=_bytes(query, "min-free-space"),
                        filters={k: (v[0] if v else "") for k, v in filters.items()},
                        labels=labels, labels_not=labels_not)
