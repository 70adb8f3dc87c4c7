"""Which engine events a webhook hears, by the reference's names (`container.start`, `image.remove`,
`system.error`, ...), and the payload each is delivered as: `{"event", "timestamp", "data"}`."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from servin.core.events import ERROR, Event

# (Docker event type, action) -> the webhook event; Docker's image delete, volume and network destroy
# are the reference's image.remove, volume.remove and network.remove
_NAMES: dict[tuple[str, str], str] = {
    ("container", "create"): "container.create",
    ("container", "start"): "container.start",
    ("container", "stop"): "container.stop",
    ("container", "die"): "container.die",
    ("container", "destroy"): "container.destroy",
    ("image", "pull"): "image.pull",
    ("image", "delete"): "image.remove",
    ("volume", "create"): "volume.create",
    ("volume", "destroy"): "volume.remove",
    ("network", "create"): "network.create",
    ("network", "destroy"): "network.remove",
    ("daemon", ERROR): "system.error",
}
KNOWN_EVENTS: tuple[str, ...] = tuple(sorted(set(_NAMES.values()), key=list(_NAMES.values()).index))

# what `data.status` says after each event
_STATUS = {"container.create": "created", "container.start": "running", "container.stop": "stopped",
           "container.die": "exited", "container.destroy": "removed", "image.pull": "pulled",
           "image.remove": "removed", "volume.create": "created", "volume.remove": "removed",
           "network.create": "created", "network.remove": "removed", "system.error": "error"}


@dataclass(frozen=True, slots=True, kw_only=True)
class HookEvent:
    name: str  # one of KNOWN_EVENTS
    body: bytes  # the JSON posted, the same at every attempt


def event_name(event: Event) -> str | None:
    """The webhook event's name of an engine event, or None for one no webhook can hear (pause, exec_start...)."""
    return _NAMES.get((event.type, event.action))


def hook_event(event: Event) -> HookEvent | None:
    """The webhook event of an engine event, with its payload."""
    name = event_name(event)
    if name is None:
        return None
    payload = {"event": name, "timestamp": rfc3339_nano(event.time_nano), "data": _data(name, event)}
    return HookEvent(name=name, body=json.dumps(payload, separators=(",", ":")).encode())


def _data(name: str, event: Event) -> dict[str, Any]:
    attrs = event.attributes
    data: dict[str, Any] = {"id": event.actor_id, "name": attrs.get("name", event.actor_id),
                            "status": _STATUS[name]}
    kind = event.type
    if kind == "container":
        data["image"] = attrs.get("image", "")
        if "exitCode" in attrs and attrs["exitCode"].lstrip("-").isdigit():
            data["exit_code"] = int(attrs["exitCode"])
    elif kind == "volume":
        data["driver"] = attrs.get("driver", "local")
    elif kind == "network":
        data["driver"] = attrs.get("type", "")
    elif kind == "daemon":
        data["error"] = attrs.get("error", "")
        data["message"] = attrs.get("message", "")
    data["attributes"] = dict(attrs)  # all that Docker's /events says of it (labels too)
    return data


def rfc3339_nano(ns: int) -> str:
    t = datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
