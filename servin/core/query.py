"""Docker's list and prune filters over domain objects: containers (id, name, label, status,
ancestor, exited), and the label/until rules every prune shares."""

from __future__ import annotations

import re
import time
from datetime import datetime
from collections.abc import Callable, Mapping, Sequence

from servin import errors
from servin.core.model import Container
from servin.images.query import label_matches  # Docker's label filter, one copy for every resource

STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")

# Docker's filters.Args once decoded: a key (label, until, ...) and its values.
Filters = Mapping[str, Sequence[str]]


def select(
    containers: Sequence[Container],
    filters: dict[str, list[str]],
    *,
    image_ids_of: Callable[[str], set[str]],
) -> list[Container]:
    """`image_ids_of(ref)` returns the image ids an ancestor filter value names."""
    for s in filters.get("status", []):
        if s not in STATUSES:
            raise errors.InvalidArgument(
                f"Invalid filter 'status={s}'")
    exited: list[int] = []
    for e in filters.get("exited", []):
        try:
            exited.append(int(e))
        except ValueError:
            raise errors.InvalidArgument(f"invalid filter 'exited={e}'") from None
    ancestors: set[str] | None = None
    if "ancestor" in filters:
        ancestors = set()
        for ref in filters["ancestor"]:
            ancestors |= image_ids_of(ref)
    out = []
    for c in containers:
        if "id" in filters and not any(c.id.startswith(v) for v in filters["id"]):
            continue
        if "name" in filters and not any(re.search(v, c.name) for v in filters["name"]):
            continue
        if "label" in filters and not label_matches(c.config.labels, filters["label"]):
            continue
        if "status" in filters and c.state.status.value not in filters["status"]:
            continue
        if exited and (c.state.running or c.state.status.value != "exited" or c.state.exit_code not in exited):
            continue
        if ancestors is not None and c.image_id not in ancestors:
            continue
        if "health" in filters:
            status = c.state.health.status if c.state.health is not None else "none"
            if status not in filters["health"]:
                continue
        out.append(c)
    return out


def parse_until(value: str) -> int:
    """`until` as a unix timestamp, RFC 3339 time, or a Go duration like 10m / 1h30m."""
    try:
        return int(float(value) * 1e9)
    except ValueError:
        pass
    m = re.fullmatch(r"((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)", value)
    if m:
        total = 0.0
        for num, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", value):
            total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
        return time.time_ns() - int(total * 1e9)
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
        raise errors.InvalidArgument(f"failed to parse value {value} as a time") from None


def prune_labels_allow(labels: Mapping[str, str], filters: Filters) -> bool:
    """A prune's `label` (all must match) and `label!` (none may match) filters."""
    if "label" in filters and not label_matches(labels, filters["label"]):
        return False
    return not ("label!" in filters and label_matches(labels, filters["label!"]))


def rfc3339_ns(created: str) -> int:
    """An RFC 3339 time in ns since the epoch; 0 when it does not parse."""
    try:
        return int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
        return 0
