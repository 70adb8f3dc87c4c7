"""`docker rm` and `docker container prune` (moby's daemon/delete.go).

A removal kills a running container (with force) and waits for its exit, then marks it REMOVING
and cleans up in a task of its own: the supervisor's state, the network, the record and its
directory, then the anonymous volumes (with `v`). A step that fails leaves the container DEAD,
which `docker rm` removes again. A second `docker rm` meanwhile is refused, as dockerd refuses
it; the one that killed a container whose auto-removal took over waits for that removal instead.
"""

from __future__ import annotations

import asyncio
import logging
import signal as signal_mod
from collections.abc import Awaitable, Callable

from servin import errors
from servin.core import lifecycle
from servin.core.attach import AttachDesk
from servin.core.events import Event, EventBus
from servin.core.lifecycle import DEAD, REMOVING, RESTARTING, Records
from servin.core.logs import parse_time_ns
from servin.core.model import Container
from servin.core.networking import ContainerNetworking
from servin.core.query import label_matches, parse_until
from servin.core.store import ContainerStore, Saved
from servin.core.supervision import Supervisor, WaitResult
from servin.core.volumemounts import IMAGE_SCRATCH, VolumeMounts
from servin.core.volumes import VolumeStore, tree_size
from servin.runtime.api import Runtime

log = logging.getLogger(__name__)


class Remover:
    def __init__(self, *, records: Records, store: ContainerStore, runtime: Runtime, networking: ContainerNetworking,
                 supervisor: Supervisor, attach: AttachDesk, volumes: VolumeStore | None, events: EventBus,
                 names: dict[str, str], lookup: Callable[[str], Container], emit: Callable[..., None],
                 signal: Callable[[str, int], Awaitable[None]], volume_mounts: VolumeMounts) -> None:
        self.records = records
        self.volume_mounts = volume_mounts
        self.store = store
        self.runtime = runtime
        self.networking = networking
        self.supervisor = supervisor
        self.attach = attach
        self.volumes = volumes
        self.events = events
        self.names = names  # name → id, shared with the engine
        self.get = lookup
        self.emit = emit
        self.signal = signal

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        if c.state.status == RESTARTING and force:
            c = await self.supervisor.cancel_restart(await self.supervisor.settle_restart(c))
        lifecycle.can_remove(c, force=force)
        live = self.supervisor.live(c.id)
        while True:
            if c.state.running:
                waiter = self.supervisor.exit_future(c.id)
                if self.supervisor.supervised(c.id):
                    await self.signal(c.id, signal_mod.SIGKILL)
                # with no supervisor the exit is already being recorded: wait for it either way
                await self.supervisor.await_exit(c.id, waiter)
            async with live.lock:  # no start under way
                cur = self.store.get(c.id)
                if cur is None:
                    return  # auto-removed meanwhile
                if cur.state.status == REMOVING and live.removal is not None:
                    removal = live.removal  # the auto-removal of its exit took over: done when it is
                    break
                lifecycle.can_remove(cur, force=force)
                if cur.state.alive:  # started meanwhile: killed again
                    c = cur
                    continue
                if cur.state.status == RESTARTING:  # its restart policy's, after the kill: it stays down
                    cur = await self.supervisor.cancel_restart(cur)
                saved = self.records.move(cur, REMOVING)
                removal = live.removal = asyncio.get_running_loop().create_future()
                removal.add_done_callback(lambda f: f.cancelled() or f.exception())  # its error is the caller's
                asyncio.ensure_future(self._removal(saved.record or cur, volumes, saved, removal))
                break
        await asyncio.shield(removal)

    async def _removal(self, c: Container, volumes: bool, marked: Saved, done: asyncio.Future[None]) -> None:
        try:
            await marked
            await self.runtime.release(c.id)  # created, never started: a supervisor may be up
            await self.networking.release(c.id)
            # what a daemon killed during an image mount's lookup left on the bundle (else EBUSY below)
            await asyncio.to_thread(self.volume_mounts.clear_scratch, str(self.store.dir(c.id) / IMAGE_SCRATCH))
            await self.records.delete(c.id)
        except BaseException as exc:
            self.supervisor.live(c.id).removal = None
            done.set_exception(exc)
            await self.records.move(c, DEAD)  # back in the records, to be removed again
            return
        self.names.pop(c.name, None)
        self.emit(c, "destroy")
        if volumes and self.volumes is not None:
            for mp in c.mount_points:
                if mp.anonymous and mp.name and not self.volume_users(mp.name):
                    await asyncio.to_thread(self.volumes.remove, mp.name, users=[], force=True)
                    self.events.publish(Event(type="volume", action="destroy", actor_id=mp.name,
                                              attributes={"driver": mp.driver}))
        self.supervisor.resolve_removed(c.id, WaitResult(status_code=c.state.exit_code, error=c.state.error or None))
        self.attach.cancel(c.id)
        self.supervisor.forget(c.id)
        done.set_result(None)

    def volume_users(self, name: str) -> list[str]:
        return [c.id for c in self.store.all() if any(m.name == name for m in c.mount_points)]

    async def prune(self, filters: dict[str, list[str]]) -> tuple[list[str], int]:
        """Removes the stopped containers the filters select: (ids, bytes of their layers)."""
        until_ns = None
        if filters.get("until"):
            until_ns = parse_until(filters["until"][0])
        removed, reclaimed = [], 0
        for c in list(self.store.all()):
            if c.state.running:
                continue
            if "label" in filters and not label_matches(c.config.labels, filters["label"]):
                continue
            if "label!" in filters and label_matches(c.config.labels, filters["label!"]):
                continue
            if until_ns is not None and parse_time_ns(c.created) >= until_ns:
                continue
            try:
                size = await asyncio.to_thread(tree_size, self.store.dir(c.id) / "upper")
                await self.remove(c.id)
                removed.append(c.id)
                reclaimed += size
            except errors.ServinError as exc:
                log.warning("prune %s: %s", c.short_id, exc.message)
        if removed:
            self.events.publish(Event(type="container", action="prune", actor_id="",
                                      attributes={"reclaimed": str(reclaimed)}))
        return removed, reclaimed
