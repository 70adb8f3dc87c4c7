"""Supervision: what happens when a container's process ends, and at daemon start and stop.

One monitor task per running container waits for its exit (moby's daemon/monitor.go), records it,
cleans up, wakes the waiters, then auto-removes the container or restarts it by its policy with
Docker's back-off (daemon/restart.go: 100 ms doubling to a minute, reset after 10 s up). At daemon
start, `restore` takes up the supervisors still alive and settles the containers that ended while
the daemon was away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from servin import errors
from servin.core.lifecycle import DEAD, EXITED, REMOVING, RESTARTING, Records, now_rfc3339
from servin.core.logs import parse_time_ns
from servin.core.model import Container
from servin.core.networking import ContainerNetworking
from servin.runtime.api import Runtime

log = logging.getLogger(__name__)

SIGKILL_GRACE = 15.0  # how long a SIGKILLed container may take to be reported down


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitResult:
    status_code: int
    error: str | None = None


@dataclass(slots=True)
class _Live:
    """In-memory companions of a container: its lock, monitor, waiters and restart back-off."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    supervised: bool = False  # the runtime holds a supervisor for it (from create to exit)
    monitor: asyncio.Task[None] | None = None
    exit_waiters: list[asyncio.Future[WaitResult]] = field(default_factory=list)
    remove_waiters: list[asyncio.Future[WaitResult]] = field(default_factory=list)
    removal: asyncio.Future[None] | None = None  # set while a removal is under way
    restart_task: asyncio.Task[None] | None = None
    restart_delay: float = 0.0


class Engine(Protocol):
    """What supervision asks of the engine."""

    async def start(self, ref: str) -> None: ...

    async def relaunch(self, c: Container) -> None:
        """Start `c` under its lock, which the caller holds."""
        ...

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None: ...

    def emit(self, c: Container, action: str, **extra: str) -> None: ...

    def error(self, c: Container, kind: str, message: str) -> None:
        """Publish the daemon's `error` event of `kind` about `c` (webhooks' system.error)."""
        ...


class Supervisor:
    def __init__(self, *, records: Records, runtime: Runtime, networking: ContainerNetworking, engine: Engine,
                 exit_path: Callable[[str], Path]) -> None:
        self.records = records
        self.runtime = runtime
        self.networking = networking
        self.engine = engine
        self.exit_path = exit_path
        self._live: dict[str, _Live] = {}
        # called with the container once it runs (also when re-attached) and once it exited
        self.on_running: list[Callable[[Container, bool], None]] = []  # (container, re-attached)
        self.on_exited: list[Callable[[str], None]] = []

    def live(self, cid: str) -> _Live:
        live = self._live.get(cid)
        if live is None:
            live = self._live[cid] = _Live()
        return live

    def lock_of(self, cid: str) -> asyncio.Lock:
        return self.live(cid).lock

    def supervised(self, cid: str) -> bool:
        live = self._live.get(cid)
        return live is not None and live.supervised

    def forget(self, cid: str) -> None:
        self._live.pop(cid, None)

    # ---- running and exiting ---------------------------------------------------------------

    def supervise(self, c: Container, *, reattached: bool) -> None:
        live = self.live(c.id)
        live.supervised = True
        live.monitor = asyncio.create_task(self._monitor(c.id))
        for hook in self.on_running:
            hook(c, reattached)

    async def _monitor(self, cid: str) -> None:
        try:
            status = await self.runtime.wait(cid)
            code, oom, finished = status.exit_code, status.oom_killed, status.finished_at
        except Exception as exc:  # the supervisor vanished without an exit record
            log.error("lost the supervisor of %s: %s", cid[:12], exc)
            if (c := self.records.get(cid)) is not None:
                self.engine.error(c, "supervisor_lost", f"lost the supervisor of {c.short_id}: {exc}")
            code, oom, finished = 255, False, now_rfc3339()
        await self.exited(cid, code, oom, finished)

    async def exited(self, cid: str, code: int, oom: bool, finished: str) -> None:
        for hook in self.on_exited:
            hook(cid)
        live = self.live(cid)
        if live.supervised:
            live.supervised = False
            await self.runtime.release(cid)
        await self.networking.release(cid)  # as dockerd: the network goes before the container reads as exited
        c = self.records.get(cid)  # read after the await: a rename or rm may have happened meanwhile
        if c is not None:  # exited first, then the cgroup goes: nobody may pause a vanishing cgroup
            saved = self.records.move(c, EXITED, pid=0, exit_code=code, oom_killed=oom, finished_at=finished)
            await saved
        try:
            await self.runtime.delete(cid)
        except Exception as exc:
            log.warning("cleaning up %s: %s", cid[:12], exc)
        if c is None or (c := self.records.get(cid)) is None:
            self.resolve_exit(cid, WaitResult(status_code=code))
            return
        if oom:
            self.engine.emit(c, "oom")
        self.engine.emit(c, "die", exitCode=str(code))
        self.resolve_exit(cid, WaitResult(status_code=code))
        if c.host_config.auto_remove:
            await self.auto_remove(cid)
        elif should_restart(c):
            ran = parse_time_ns(finished) - parse_time_ns(c.state.started_at)
            live.restart_delay = 0.1 if live.restart_delay == 0 or ran >= 10e9 else min(live.restart_delay * 2, 60)
            await self.records.move(c, RESTARTING)
            live.restart_task = asyncio.create_task(self._restart_later(cid, live.restart_delay))

    async def auto_remove(self, cid: str) -> None:
        try:
            await self.engine.remove(cid, force=True, volumes=True)
        except errors.ServinError as exc:
            log.warning("auto-remove of %s: %s", cid[:12], exc.message)

    # ---- the restart policy ----------------------------------------------------------------

    async def _restart_later(self, cid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        live = self.live(cid)
        async with live.lock:
            c = self.records.get(cid)
            if c is None or c.state.status != RESTARTING:
                return
            live.restart_task = None
            saved = self.records.amend(cid, lambda cur: cur.with_state(restart_count=cur.state.restart_count + 1))
            await saved
            try:
                await self.engine.relaunch(self.records.get(cid) or c)
            except errors.ServinError as exc:
                log.warning("restarting %s: %s", c.short_id, exc.message)
                self.engine.error(c, "restart_failed", f"restarting {c.short_id}: {exc.message}")

    async def cancel_restart(self, c: Container) -> Container:
        """stop/kill/rm of a container waiting to restart: it stays down. The pending restart is
        not cancelled (it may be half way through a start); it wakes, sees EXITED and gives up."""
        cur = self.records.get(c.id) or c
        if cur.state.status == RESTARTING:
            saved = self.records.move(cur, EXITED, manually_stopped=True)
            await saved
            cur = saved.record or cur
        return cur

    async def settle_restart(self, c: Container) -> Container:
        """A restart policy's start under way finishes before a stop or kill looks at the state."""
        if c.state.status == RESTARTING:
            async with self.lock_of(c.id):
                pass
            c = self.records.now(c.id)
        return c

    # ---- waiters ---------------------------------------------------------------------------

    def exit_future(self, cid: str) -> asyncio.Future[WaitResult]:
        fut: asyncio.Future[WaitResult] = asyncio.get_running_loop().create_future()
        self.live(cid).exit_waiters.append(fut)
        return fut

    def removed_future(self, cid: str) -> asyncio.Future[WaitResult]:
        fut: asyncio.Future[WaitResult] = asyncio.get_running_loop().create_future()
        self.live(cid).remove_waiters.append(fut)
        return fut

    def resolve_exit(self, cid: str, result: WaitResult) -> None:
        live = self.live(cid)
        waiters, live.exit_waiters = live.exit_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(result)

    def resolve_removed(self, cid: str, result: WaitResult) -> None:
        live = self.live(cid)
        for w in (*live.remove_waiters, *live.exit_waiters):
            if not w.done():
                w.set_result(result)

    async def await_exit(self, cid: str, exited: asyncio.Future[WaitResult], timeout: float = SIGKILL_GRACE) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(exited), timeout)
        except asyncio.TimeoutError:
            raise errors.SystemError_(f"container {cid} did not exit within {timeout:.0f}s of SIGKILL") from None

    # ---- daemon start and stop -------------------------------------------------------------

    async def restore(self) -> None:
        """Re-attach to every live supervisor; settle containers that died while we were away."""
        for c in self.records.all():
            if c.state.status == REMOVING:
                # as dockerd: the daemon died during the removal; whether volumes were to go too is
                # not known, so the container is left dead for the user to remove again
                await self.records.move(c, DEAD)
                continue
            if not c.state.running:
                continue
            alive = False
            try:
                alive = await self.runtime.reconnect(c.id)
            except Exception as exc:
                log.warning("reconnecting to %s: %s", c.short_id, exc)
            if alive:
                c = self.networking.reconcile(c)  # a connect or disconnect the crash cut short
                self.supervise(c, reattached=True)
                log.info("re-attached to running container %s", c.short_id)
                continue
            status = self.runtime.read_exit(c.id, exit_path=self.exit_path(c.id))
            if status is not None:
                await self.exited(c.id, status.exit_code, status.oom_killed, status.finished_at)
            else:
                self.engine.error(c, "supervisor_lost", f"the supervisor of {c.short_id} is gone without an "
                                  "exit status")
                await self.exited(c.id, 255, False, now_rfc3339())
        for c in self.records.all():
            policy = c.host_config.restart_policy.name
            if c.state.status in (EXITED, RESTARTING) and (
                    policy == "always" or policy == "unless-stopped" and not c.state.manually_stopped):
                try:
                    if c.state.status == RESTARTING:
                        await self.records.move(c, EXITED)
                    await self.engine.start(c.id)
                    log.info("restarted %s (restart policy %s)", c.short_id, policy)
                except errors.ServinError as exc:
                    log.warning("restarting %s at daemon start: %s", c.short_id, exc.message)
                    self.engine.error(c, "restart_failed", f"restarting {c.short_id} at daemon start: {exc.message}")

    async def shutdown(self) -> None:
        """Daemon stop: drop our connections; containers keep running."""
        for cid, live in list(self._live.items()):
            if live.monitor is not None:
                live.monitor.cancel()
            if live.restart_task is not None:
                live.restart_task.cancel()
            if live.supervised:
                try:
                    await self.runtime.release(cid)
                except Exception:
                    pass


def should_restart(c: Container) -> bool:
    policy = c.host_config.restart_policy
    if c.state.manually_stopped:
        return False
    if policy.name in ("always", "unless-stopped"):
        return True
    if policy.name == "on-failure":
        retries = policy.maximum_retry_count
        return c.state.exit_code != 0 and (retries == 0 or c.state.restart_count < retries)
    return False
