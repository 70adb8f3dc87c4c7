"""Docker's JSON progress lines (jsonmessage) for the typed progress of pull, push and load
(images/progress.py).

Line shapes (Go's jsonmessage field order): ``{"status":…,"id":…}`` for a message,
``{"status":…,"progressDetail":{…},"progress":"[==>  ] 1MB/2MB","id":…}`` for a layer's state,
``{"progressDetail":{},"aux":{…}}`` and ``{"errorDetail":{"message":…},"error":…}``.
"""

from __future__ import annotations

import json
from typing import Any

from servin.images.progress import LayerProgress, ProgressEvent, PushedManifest, Status

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(n: float) -> str:
    """go-units HumanSize: 4 significant digits, powers of 1000, no space (``2.593MB``)."""
    i = 0
    while n >= 1000 and i < len(_UNITS) - 1:
        n /= 1000
        i += 1
    return f"{n:.4g}{_UNITS[i]}"


def bar(current: int, total: int) -> str:
    """The ``progress`` string dockerd computes server-side (a 200-column terminal, no ETA)."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    pct = min(int(current / total * 100) // 2, 50)
    box = "[" + "=" * pct + ">" + " " * max(50 - pct, 0) + "] "
    if current > total:
        return box + f"{human_size(current):>8}"
    return box + f"{human_size(current):>8}/{human_size(total)}"


def message(text: str, id_: str = "") -> dict[str, Any]:
    msg: dict[str, Any] = {"status": text}
    if id_:
        msg["id"] = id_
    return msg


def update(id_: str, action: str, current: int = 0, total: int = 0) -> dict[str, Any]:
    detail: dict[str, int] = {}
    if current:
        detail["current"] = current
    if total:
        detail["total"] = total
    msg: dict[str, Any] = {"status": action, "progressDetail": detail}
    text = bar(current, total)
    if text:
        msg["progress"] = text
    msg["id"] = id_
    return msg


def aux(obj: dict[str, Any]) -> dict[str, Any]:
    return {"progressDetail": {}, "aux": obj}


def error(text: str) -> dict[str, Any]:
    return {"errorDetail": {"message": text}, "error": text}


def render(event: ProgressEvent) -> dict[str, Any]:
    """The JSON message of one progress event."""
    if isinstance(event, Status):
        return message(event.text, event.id)
    if isinstance(event, LayerProgress):
        return update(event.id, event.action, event.current, event.total)
    if isinstance(event, PushedManifest):
        return aux({"Tag": event.tag, "Digest": event.digest, "Size": event.size})
    raise TypeError(f"not a progress event: {event!r}")


def dumps(msg: dict[str, Any]) -> bytes:
    """One line of a pull or push stream (compact, CRLF-terminated, as dockerd's)."""
    return json.dumps(msg, separators=(",", ":")).encode() + b"\r\n"
