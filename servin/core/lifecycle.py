"""A container's status as an explicit state machine, and the records it lives in.

The table below is every status change there is (moby's container/state.go keeps them as flags,
podman's libpod checks them per verb; here they are one table). `Records.move` is the only way a
status changes; `Records.amend` changes anything but the status (health, networks, names, limits).
The `can_*` predicates are the checks the verbs make before they act, raising the error category
and the words dockerd answers with.
"""

from __future__ import annotations

import signal as signal_mod
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Protocol

from servin import errors
from servin.core.model import Container, Status
from servin.core.store import ContainerStore, Saved

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    ns = time.time_ns()
    base = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns % 1_000_000_000:09d}Z"


CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD = (
    Status.CREATED, Status.RUNNING, Status.PAUSED, Status.RESTARTING, Status.REMOVING, Status.EXITED, Status.DEAD)

TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    CREATED: frozenset({RUNNING, REMOVING}),  # start; rm. A start that fails stays created
    RUNNING: frozenset({PAUSED, EXITED}),  # pause; its process ended
    PAUSED: frozenset({RUNNING, EXITED}),  # unpause; killed while frozen
    RESTARTING: frozenset({RUNNING, EXITED}),  # the policy's start; stop, kill, rm, or that start failed
    EXITED: frozenset({RUNNING, RESTARTING, REMOVING}),  # start; the restart policy; rm
    REMOVING: frozenset({DEAD}),  # the removal failed part way (it succeeds by deleting the record)
    DEAD: frozenset({REMOVING}),  # rm again
}


def may_move(frm: Status, to: Status) -> bool:
    """Whether `frm` → `to` is a transition (staying put always is: a start that fails, a restore)."""
    return frm == to or to in TRANSITIONS[frm]


# ---- the checks of the verbs, in dockerd's words ------------------------------------------------

def can_start(c: Container) -> None:
    st = c.state.status
    if st in (RUNNING, RESTARTING):
        raise errors.NotModified("container already started")
    if st == PAUSED:
        raise errors.Conflict("cannot start a paused container, try unpause instead")
    if st in (REMOVING, DEAD):
        raise errors.Conflict(f"container {c.id} is marked for removal and cannot be started")


def can_stop(c: Container, *, supervised: bool) -> None:
    """`supervised`: the daemon holds the container's supervisor (false while an exit is recorded)."""
    if not c.state.alive or not supervised:
        raise errors.NotModified("container already stopped")


def can_kill(c: Container, *, supervised: bool) -> None:
    if not c.state.alive or not supervised:
        raise errors.Conflict(f"Container {c.id} is not running")


def can_pause(c: Container) -> None:
    if c.state.status == PAUSED:
        raise errors.Conflict(f"Container {c.id} is already paused")
    if c.state.status != RUNNING:
        raise errors.Conflict(f"Container {c.id} is not running")


def can_unpause(c: Container) -> None:
    if c.state.status != PAUSED:
        raise errors.Conflict(f"Container {c.id} is not paused")


def can_remove(c: Container, *, force: bool) -> None:
    if c.state.status == REMOVING:
        raise errors.Conflict(f"removal of container {c.id} is already in progress")
    if c.state.running and not force:
        raise errors.Conflict(
            f"You cannot remove a running container {c.id}. Stop the container before "
            "attempting removal or force remove")


def can_exec(c: Container) -> None:
    if c.state.status == PAUSED:
        raise errors.Conflict(f"Container {c.id} is paused, unpause the container before exec")
    if c.state.status != RUNNING:
        raise errors.Conflict(f"Container {c.id} is not running")


def require_alive(c: Container) -> None:
    """resize, top: a process must exist (running or paused)."""
    if not c.state.alive:
        raise errors.Conflict(f"Container {c.id} is not running")


def parse_signal(sig: str | int | None, default: int = signal_mod.SIGKILL) -> int:
    """Docker accepts "KILL", "SIGKILL" and "9"."""
    if sig is None or sig == "":
        return int(default)
    s = str(sig).strip().upper()
    if s.isdigit():
        n = int(s)
        if 0 < n < 65:
            return n
        raise errors.InvalidArgument(f"Invalid signal: {sig}")
    if not s.startswith("SIG"):
        s = "SIG" + s
    try:
        return int(signal_mod.Signals[s])
    except KeyError:
        raise errors.InvalidArgument(f"Invalid signal: {sig}") from None


# ---- the records ---------------------------------------------------------------------------------

class Amend(Protocol):
    """The one way health and networking change a container's record: `change` maps the current
    record to the new one (never its status). Nothing happens when the container is gone. Await the
    result for the write to be on disk."""

    def __call__(self, cid: str, change: Callable[[Container], Container], /) -> Saved: ...


class Records:
    """The container records, changed only through the table. Every change is made in memory at
    the call (a read and a write with no await between them stay atomic) and queued to disk."""

    def __init__(self, store: ContainerStore) -> None:
        self.store = store

    def get(self, cid: str) -> Container | None:
        return self.store.get(cid)

    def all(self) -> list[Container]:
        return self.store.all()

    def create(self, c: Container) -> Saved:
        if c.state.status != CREATED:
            raise errors.SystemError_(f"container {c.id}: a new record must be created, not {c.state.status}")
        return self.store.save(c)

    def move(self, c: Container, to: Status, **changes: object) -> Saved:
        """`c` (the record as the caller last read it) in status `to`, with these state changes."""
        if not may_move(c.state.status, to):
            raise errors.SystemError_(f"container {c.id}: no transition from {c.state.status} to {to}")
        return self.store.save(c.with_state(status=to, **changes))

    def amend(self, cid: str, change: Callable[[Container], Container]) -> Saved:
        cur = self.store.get(cid)
        if cur is None:
            return Saved.done()
        new = change(cur)
        if new.state.status != cur.state.status:
            raise errors.SystemError_(f"container {cid}: a status changes through Records.move only")
        return self.store.save(new)

    def delete(self, cid: str) -> Saved:
        return self.store.delete(cid)

    def now(self, cid: str) -> Container:
        """The record as it is now (after a move)."""
        c = self.store.get(cid)
        if c is None:
            raise errors.NotFound(f"No such container: {cid}")
        return c
