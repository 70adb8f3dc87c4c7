"""The event bus: every action the engine takes, for /events and the webhooks."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    type: str  # container, image, volume, network, daemon
    action: str  # create, start, die, destroy, ...
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_nano: int = field(default_factory=time.time_ns)


# a `daemon` event of this action: something went wrong that no request was there to hear (a restart the
# policy could not make, a supervisor lost, an internal error answered 500); webhooks call it system.error
ERROR = "error"


def daemon_error(kind: str, message: str, *, actor_id: str = "", **attributes: str) -> Event:
    """The `daemon` `error` event of `kind` (restart_failed, supervisor_lost, internal_error)."""
    return Event(type="daemon", action=ERROR, actor_id=actor_id,
                 attributes={**attributes, "error": kind, "message": message})


class EventBus:
    """Fan-out to live subscribers plus a bounded ring so `since` can replay."""

    def __init__(self, history: int = 1024) -> None:
        self._ring: collections.deque[Event] = collections.deque(maxlen=history)
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._listeners: list[Callable[[Event], None]] = []

    def publish(self, event: Event) -> None:
        self._ring.append(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener's bug never fails the action that published
                log.exception("event listener %r failed on %s %s", listener, event.type, event.action)
        for q in self._subscribers:
            q.put_nowait(event)

    def history(self) -> list[Event]:
        return list(self._ring)

    def subscribe(self) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        self._subscribers.discard(q)

    def listen(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """`listener` is called with every event as it is published, in the publisher's thread, before
        the subscribers' queues: for what must record it at once (the webhooks' queue on disk, so a
        daemon killed right after the action loses no event). Returns the call that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None
