"""Attach tickets: a client attaching to a container's stdio, before or while it runs.

A client that attaches to a created or exited container waits for its next start: the start hands
the ticket over once the supervisor is up and waits (a little) for the client's stream to open, so
the first byte of output reaches it. The stream itself comes from the runtime.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from servin.runtime.api import AttachStream, Runtime

__all__ = ["AttachDesk", "AttachStream", "AttachTicket"]

HANDOVER_TIMEOUT = 5.0  # how long a start waits for the clients it handed over to


@dataclass(slots=True, kw_only=True)
class AttachTicket:
    """`ready` resolves True once there is a supervisor to attach to, False when the container will
    not run; `connected` once the client's stream is open (or it gave up)."""

    container_id: str
    ready: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    connected: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def done(self) -> None:
        """The client's stream is open, or never will be."""
        if not self.connected.done():
            self.connected.set_result(None)


class AttachDesk:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._waiting: dict[str, list[AttachTicket]] = {}  # for the next start, by container

    def issue(self, cid: str, *, now: bool, later: bool) -> AttachTicket:
        """`now`: the container runs under a supervisor; `later`: it may start (created or exited)."""
        ticket = AttachTicket(container_id=cid)
        if now:
            ticket.ready.set_result(True)
        elif later:
            self._waiting.setdefault(cid, []).append(ticket)
        else:
            ticket.ready.set_result(False)
        return ticket

    async def hand_over(self, cid: str) -> None:
        """At start, the supervisor up and the process not yet running: the waiting clients attach."""
        tickets = self._waiting.pop(cid, [])
        for t in tickets:
            if not t.ready.done():
                t.ready.set_result(True)
        if tickets:  # the first byte must reach clients that attached before start
            await asyncio.wait([t.connected for t in tickets], timeout=HANDOVER_TIMEOUT)

    def cancel(self, cid: str) -> None:
        """The container is gone: nobody waits for it any more."""
        for t in self._waiting.pop(cid, []):
            if not t.ready.done():
                t.ready.set_result(False)

    async def open(self, ticket: AttachTicket, *, stdin: bool, stdout: bool, stderr: bool) -> AttachStream | None:
        """The container's stdio once it runs; None when it will not."""
        try:
            if not await ticket.ready:
                return None
            return await self.runtime.attach(ticket.container_id, stdin=stdin, stdout=stdout, stderr=stderr)
        finally:
            ticket.done()
