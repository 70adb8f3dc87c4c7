"""``docker history``, as dockerd's ImageHistory: the config's history steps, newest first, the
local parents' ids and tags laid over them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from servin.errors import SystemError_
from servin.images.content import ImageRecord
from servin.images.model import GO_ZERO_TIME_UNIX, HistoryItem, parse_rfc3339


def history(rec: ImageRecord, *, layer_size: Callable[[str], int], tags: Callable[[str], tuple[str, ...] | None],
            record: Callable[[str], ImageRecord | None]) -> list[HistoryItem]:
    """The steps of ``rec`` (``layer_size`` of a diff_id, ``tags`` of an image id, the ``record``
    of a local image id or None)."""
    diff_ids = rec.diff_ids
    steps: list[dict[str, Any]] = [h for h in rec.config.get("history") or [] if isinstance(h, dict)]
    out: list[HistoryItem] = []
    n = 0
    for h in steps:
        size = 0
        if not h.get("empty_layer"):
            if n >= len(diff_ids):
                raise SystemError_("too many non-empty layers in History section")
            size = layer_size(diff_ids[n])
            n += 1
        created = parse_rfc3339(str(h.get("created") or ""))
        out.append(HistoryItem(
            id="<missing>",
            created=int(created.timestamp()) if created else GO_ZERO_TIME_UNIX,
            created_by=str(h.get("created_by") or ""),
            tags=None,
            size=size,
            comment=str(h.get("comment") or ""),
        ))
    out.reverse()
    current: str = rec.id
    for i, item in enumerate(out):
        out[i] = HistoryItem(id=current, created=item.created, created_by=item.created_by, tags=tags(current),
                             size=item.size, comment=item.comment)
        cur = record(current)
        current = cur.parent if cur is not None else ""
        if not current or record(current) is None:
            break
    return out
