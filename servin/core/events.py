"""The event bus: every action the engine takes, for /events now and webhooks later."""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    type: str  # container, image, volume, network, daemon
    action: str  # create, start, die, destroy, ...
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_nano: int = field(default_factory=time.time_ns)


class EventBus:
    """Fan-out to live subscribers plus a bounded ring so `since` can replay."""

    def __init__(self, history: int = 1024) -> None:
        self._ring: collections.deque[Event] = collections.deque(maxlen=history)
        self._subscribers: set[asyncio.Queue[Event]] = set()

    def publish(self, event: Event) -> None:
        self._ring.append(event)
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
