"""The container engine's face: the verbs of the Docker API on containers, by name, ID or prefix.

Each verb looks the container up, checks its status against the state machine (core/lifecycle.py)
and hands over to the room that does the work: creation.py (create), launch.py (start),
supervision.py (exits, restarts, daemon start and stop), attach.py (attach clients), the runtime
(signals, freezing, limits, processes) and the records (every status change through the table).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import signal as signal_mod
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from servin import errors
from servin.core import confinement, lifecycle
from servin.core import resources as resources_mod
from servin.core.attach import AttachDesk, AttachTicket
from servin.core.creation import CreateSettings, Creator, ImageSource
from servin.core.events import Event, daemon_error, EventBus
from servin.core.launch import Launcher, LaunchSettings
from servin.core.lifecycle import EXITED, PAUSED, RESTARTING, RUNNING, Records, now_rfc3339, parse_signal
from servin.core.model import Container, ContainerConfig, EndpointConfig, HostConfig, Status, Ulimit
from servin.core.networking import ContainerNetworking
from servin.core.spec import resources_for
from servin.core.removal import Remover
from servin.core.store import ContainerStore, Saved
from servin.core.supervision import Supervisor, WaitResult
from servin.core.volumes import VolumeStore
from servin.core.volumemounts import IMAGE_SCRATCH, VolumeMounter, VolumeMounts
from servin.runtime.api import AttachStream, Runtime
from servin.runtime.plan import CAPABILITIES  # the names of every capability, for the default bounding set

log = logging.getLogger(__name__)

__all__ = ["AttachStream", "AttachTicket", "ContainerService", "WaitResult", "now_rfc3339", "parse_signal"]


class ContainerService:
    def __init__(
        self,
        *,
        store: ContainerStore,
        images: ImageSource,
        runtime: Runtime,
        events: EventBus,
        block_numbers: Callable[[list[str]], dict[str, tuple[int, int]]],  # path → (major, minor) of block devices
        volumes: VolumeStore | None = None,
        default_log: tuple[str, dict[str, str]] = ("json-file", {}),  # daemon.json log-driver, log-opts
        host_resolv_conf: Path = Path("/etc/resolv.conf"),
        network: Any = None,  # servin.network.service.NetworkService; None: no bridge (default mode = none)
        seccomp_profile: str | Mapping[str, Any] = "builtin",  # --seccomp-profile: builtin, unconfined or a profile
        host_caps: tuple[str, ...] | None = None,  # the daemon's bounding set (None: every capability)
        no_new_privileges: bool = False,  # the daemon's --no-new-privileges
        default_ulimits: tuple[Ulimit, ...] = (),  # the daemon's default-ulimits
        volume_mounter: VolumeMounter | None = None,  # mounts the local volumes that are mounts (type/device/o)
    ) -> None:
        self.store = store
        self.records = Records(store)
        self.images = images
        self.runtime = runtime
        self.events = events
        self.volumes = volumes
        self.features = runtime.features  # what the host's cgroups can limit
        self.block_numbers = block_numbers
        self.host_caps = tuple(host_caps) if host_caps is not None else CAPABILITIES
        self._names: dict[str, str] = {c.name: c.id for c in store.all()}
        self.networking = ContainerNetworking(network=network, store=store, amend=self.records.amend,
                                              lookup=self.get, lock_of=self._lock_of, events=events,
                                              host_resolv_conf=host_resolv_conf)
        self.attach_desk = AttachDesk(runtime)
        self.volume_mounts = VolumeMounts(volume_mounter)
        self.creator = Creator(records=self.records, store=store, images=images, volumes=volumes, events=events,
                               networking=self.networking, names=self._names, lookup=self.get,
                               host_caps=lambda: self.host_caps,
                               settings=CreateSettings(default_log=default_log,
                                                       cgroup_version=runtime.cgroup_version),
                               volume_mounts=self.volume_mounts)
        self.supervisor = Supervisor(records=self.records, runtime=runtime, networking=self.networking,
                                     engine=self, exit_path=self._exit_path)
        self.launcher = Launcher(records=self.records, store=store, images=images, runtime=runtime,
                                 networking=self.networking, supervisor=self.supervisor, attach=self.attach_desk,
                                 lookup=self.get, emit=self.emit, host_caps=lambda: self.host_caps,
                                 block_numbers=lambda: self.block_numbers,
                                 settings=LaunchSettings(seccomp_profile=seccomp_profile,
                                                         no_new_privileges=no_new_privileges,
                                                         default_ulimits=default_ulimits),
                                 volume_mounts=self.volume_mounts)
        self.remover = Remover(records=self.records, store=store, runtime=runtime, networking=self.networking,
                               supervisor=self.supervisor, attach=self.attach_desk, volumes=volumes, events=events,
                               names=self._names, lookup=self.get, emit=self.emit, signal=self._signal,
                               volume_mounts=self.volume_mounts)
        # called with the container once it runs (also when re-attached) and once it exited
        self.on_running = self.supervisor.on_running
        self.on_exited = self.supervisor.on_exited
        self.on_exited.append(self._release_volumes)  # the last user of a volume that is a mount unmounts it
        self._volume_work: set[asyncio.Task[None]] = set()  # unmounts and mounts in threads (a server may hang)
        self.on_running.append(self._retake_volumes)

    @property
    def default_ulimits(self) -> tuple[Ulimit, ...]:
        return self.launcher.settings.default_ulimits

    def set_default_ulimits(self, ulimits: tuple[Ulimit, ...]) -> None:
        """The daemon's default-ulimits changed (a reload): containers started from now on get them."""
        self.launcher.settings = replace(self.launcher.settings, default_ulimits=ulimits)

    # ---- lookup -------------------------------------------------------------------------

    def get(self, ref: str) -> Container:
        c = self.store.get(ref)
        if c is not None:
            return c
        cid = self._names.get(ref.lstrip("/"))
        if cid is not None and (c := self.store.get(cid)) is not None:
            return c
        if ref:
            matches = [c for c in self.store.all() if c.id.startswith(ref.lower())]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise errors.InvalidArgument(f"Multiple IDs found with provided prefix: {ref}")
        raise errors.NotFound(f"No such container: {ref}")

    def list(self) -> list[Container]:
        return sorted(self.store.all(), key=lambda c: c.created, reverse=True)

    def supervised(self, cid: str) -> bool:
        """The runtime holds a supervisor for the container: it runs, or is about to."""
        return self.supervisor.supervised(cid)

    def amend(self, cid: str, change: Callable[[Container], Container]) -> Saved:
        """The one way health and networking change a record (never its status)."""
        return self.records.amend(cid, change)

    def _lock_of(self, cid: str) -> asyncio.Lock:
        return self.supervisor.lock_of(cid)

    def log_path(self, cid: str) -> Path:
        return self.launcher.log_path(cid)

    def _exit_path(self, cid: str) -> Path:
        return self.launcher.exit_path(cid)

    def emit(self, c: Container, action: str, **extra: str) -> None:
        attrs = {"image": c.config.image, "name": c.name, **c.config.labels, **extra}
        self.events.publish(Event(type="container", action=action, actor_id=c.id, attributes=attrs))

    def error(self, c: Container, kind: str, message: str) -> None:
        self.events.publish(daemon_error(kind, message, actor_id=c.id, container=c.id, name=c.name))

    def volume_users(self, name: str) -> builtins.list[str]:
        return sorted({*self.remover.volume_users(name), *self.volume_mounts.users_of(name)})

    # ---- create / start -----------------------------------------------------------------

    async def create(self, config: ContainerConfig, host_config: HostConfig, name: str | None,
                     endpoints: Mapping[str, EndpointConfig] | None = None) -> Container:
        c = await self.creator.create(config, host_config, name, endpoints)
        self.emit(c, "create")
        return c

    async def start(self, ref: str) -> None:
        c = self.get(ref)
        async with self._lock_of(c.id):
            c = self.get(c.id)
            lifecycle.can_start(c)
            try:
                await self.launcher.start(c)
            except errors.ServinError:
                if c.host_config.auto_remove:  # `docker run --rm` waits for the removal
                    asyncio.get_running_loop().call_soon(
                        lambda: asyncio.ensure_future(self.supervisor.auto_remove(c.id)))
                raise

    async def relaunch(self, c: Container) -> None:
        """A restart policy's start: the supervisor holds the lock."""
        await self.launcher.start(c)

    # ---- stop / kill / restart ----------------------------------------------------------

    async def _signal(self, cid: str, signum: int, *, thaw: bool = False) -> None:
        try:
            await self.runtime.signal(cid, signum, thaw=thaw)
        except (errors.SystemError_, errors.Conflict) as exc:  # the container is exiting meanwhile
            log.debug("signal %d: %s", signum, exc.message)

    def _mark_stopped_by_user(self, cid: str) -> Saved:
        """Read-modify-write with no await in between: a concurrent exit is never undone."""
        return self.records.amend(cid, lambda cur: cur.with_state(manually_stopped=True))

    async def kill(self, ref: str, sig: str | int | None = None) -> None:
        c = self.get(ref)
        signum = parse_signal(sig)
        c = await self.supervisor.settle_restart(c)
        if c.state.status == RESTARTING:
            await self.supervisor.cancel_restart(c)
            return
        lifecycle.can_kill(c, supervised=self.supervised(c.id))
        marked = self._mark_stopped_by_user(c.id)
        exited = self.supervisor.exit_future(c.id) if signum == signal_mod.SIGKILL else None
        await self._signal(c.id, signum)  # a paused container is thawed for SIGKILL
        await marked
        if exited is not None:  # as dockerd: a SIGKILL returns once the container is down
            await self.supervisor.await_exit(c.id, exited)
        self.emit(c, "kill", signal=str(signum))

    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        """`signal` (docker stop -s) instead of the container's StopSignal."""
        given = parse_signal(signal, default=0) if signal else 0  # a bad one is refused first, as dockerd
        c = self.get(ref)
        c = await self.supervisor.settle_restart(c)
        if c.state.status == RESTARTING:
            await self.supervisor.cancel_restart(c)
            self.emit(c, "stop")
            return
        lifecycle.can_stop(c, supervised=self.supervised(c.id))
        marked = self._mark_stopped_by_user(c.id)
        if timeout is None:
            timeout = c.config.stop_timeout if c.config.stop_timeout is not None else 10
        signum = given or parse_signal(c.config.stop_signal, default=signal_mod.SIGTERM)
        waiter = self.supervisor.exit_future(c.id)
        if timeout != 0:
            await self._signal(c.id, signum, thaw=True)  # a frozen process cannot act on the signal
            await marked
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout if timeout > 0 else None)
                self.emit(c, "stop")
                return
            except asyncio.TimeoutError:
                pass
        await self._signal(c.id, signal_mod.SIGKILL)
        await marked
        await self.supervisor.await_exit(c.id, waiter)
        self.emit(c, "stop")

    async def restart(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        try:
            await self.stop(ref, timeout, signal)
        except errors.NotModified:
            pass
        await self.start(ref)
        self.emit(self.get(ref), "restart")

    async def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        lifecycle.require_alive(c)
        if not self.supervised(c.id):
            raise errors.Conflict(f"Container {c.id} is not running")
        if c.config.tty:
            await self.runtime.resize(c.id, height, width)

    # ---- wait / remove ------------------------------------------------------------------

    def wait_future(self, ref: str, condition: str) -> asyncio.Future[WaitResult]:
        """Registered at once (so the HTTP headers can go out), resolved on the condition."""
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise errors.InvalidArgument(f"invalid condition: {condition!r}")
        c = self.get(ref)
        if condition == "removed":
            return self.supervisor.removed_future(c.id)
        if condition in ("", "not-running") and not c.state.running:
            fut: asyncio.Future[WaitResult] = asyncio.get_running_loop().create_future()
            fut.set_result(WaitResult(status_code=c.state.exit_code, error=c.state.error or None))
            return fut
        return self.supervisor.exit_future(c.id)

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        await self.remover.remove(ref, force=force, volumes=volumes)

    # ---- pause / rename / update / top / stats / prune ----------------------------------

    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        lifecycle.can_pause(c)
        await self.runtime.pause(c.id)  # Conflict: it exited meanwhile and its cgroup is gone
        cur = self.store.get(c.id)
        if cur is None or cur.state.status != RUNNING:
            raise errors.Conflict(f"Container {c.id} is not running")
        await self.records.move(cur, PAUSED)
        self.emit(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        lifecycle.can_unpause(c)
        await self.runtime.resume(c.id)  # Conflict: it exited meanwhile and its cgroup is gone
        c = self.store.get(c.id) or c
        if c.state.status == PAUSED:
            await self.records.move(c, RUNNING)
        self.emit(c, "unpause")

    async def rename(self, ref: str, new_name: str) -> None:
        """dockerd's ContainerRename (daemon/rename.go): empty names first, then the container,
        then the same name, then reserveName on "/<new name>", its errors wrapped."""
        if not ref or not new_name:
            raise errors.InvalidArgument("Neither old nor new names may be empty")
        c = self.get(ref)
        if not new_name.startswith("/"):
            new_name = "/" + new_name
        if new_name == "/" + c.name:
            raise errors.InvalidArgument("Renaming a container with the same name as its current name")
        try:
            new_name = self.creator.reserve_check(new_name)
        except errors.ServinError as exc:
            raise type(exc)(f"Error when allocating new name: {exc.message}") from None
        old = c.name
        self._names.pop(old, None)
        self._names[new_name] = c.id
        saved = self.records.amend(c.id, lambda cur: replace(cur, name=new_name))
        self.emit(saved.record or replace(c, name=new_name), "rename", oldName="/" + old)
        await saved

    def verify(self, host_config: HostConfig, *, update: bool = False) -> tuple[HostConfig, builtins.list[str]]:
        """The resources and restart policy checked as dockerd does: what the host's cgroups cannot
        do discarded, with the warnings for the response; the blkio devices must exist."""
        host_config, warnings = resources_mod.check(host_config, self.features, ncpu=os.cpu_count() or 1,
                                                    update=update)
        resources_mod.check_restart_policy(host_config.restart_policy)
        if paths := resources_mod.block_device_paths(host_config):
            self.block_numbers(paths)
        if not update:
            warnings += confinement.warnings(host_config, available_caps=self.host_caps)
        return host_config, warnings

    async def update(self, ref: str, host_config: HostConfig) -> Container:
        """Live resource and restart-policy changes (`docker update`) of a host config verify() passed."""
        c = self.get(ref)
        if host_config.auto_remove and host_config.restart_policy.name not in ("", "no"):
            raise errors.InvalidArgument(
                "Restart policy cannot be updated because AutoRemove is enabled for the container")
        if c.state.alive:
            numbers = await asyncio.to_thread(self.block_numbers, resources_mod.block_device_paths(host_config))
            await self.runtime.update(c.id, resources_for(host_config, numbers))
        saved = self.records.amend(c.id, lambda cur: replace(cur, host_config=host_config))  # the state may have moved
        c = saved.record or replace(c, host_config=host_config)
        await saved
        self.emit(c, "update")
        return c

    async def remove_link(self, parent: str, alias: str) -> None:
        """`DELETE /containers/<parent>/<alias>?link=1`: forget a legacy link."""
        await self.networking.remove_link(parent, alias)

    async def prune(self, filters: dict[str, builtins.list[str]]) -> tuple[builtins.list[str], int]:
        """Removes the stopped containers the filters select: (ids, bytes of their layers)."""
        return await self.remover.prune(filters)

    # ---- attach -------------------------------------------------------------------------

    def attach_ticket(self, ref: str) -> tuple[Container, AttachTicket]:
        c = self.get(ref)
        ticket = self.attach_desk.issue(c.id, now=c.state.running and self.supervised(c.id),
                                        later=c.state.status in (Status.CREATED, EXITED))
        self.emit(c, "attach")
        return c, ticket

    async def open_attach(self, ticket: AttachTicket, *, stdin: bool, stdout: bool,
                          stderr: bool) -> AttachStream | None:
        """The container's stdio for an attach client, once it runs; None when it will not."""
        return await self.attach_desk.open(ticket, stdin=stdin, stdout=stdout, stderr=stderr)

    # ---- daemon start and stop ----------------------------------------------------------

    async def restore(self) -> None:
        """Re-attach to every live supervisor; settle containers that died while we were away."""
        if self.volumes is not None:
            await asyncio.to_thread(self.volume_mounts.reclaim,
                                    [v.mountpoint for v in self.volumes.list() if v.is_mount])
        for c in self.store.all():  # an image mount's lookup a killed daemon left mounted
            await asyncio.to_thread(self.volume_mounts.clear_scratch, str(self.store.dir(c.id) / IMAGE_SCRATCH))
        await self.supervisor.restore()

    def _retake_volumes(self, c: Container, reattached: bool) -> None:
        """A container found running at daemon start holds its volumes again (mounted for the next users),
        in a thread: the event loop never waits on mount(2)."""
        if reattached:
            self._in_thread(self._hold_volumes, c)

    def _hold_volumes(self, c: Container) -> None:
        try:
            self.volume_mounts.hold(c)
        except errors.ServinError as exc:
            log.warning("volumes of %s: %s", c.short_id, exc.message)

    def _release_volumes(self, cid: str) -> None:
        """An exited container's volumes: its use dropped now, what nobody uses unmounted in a thread."""
        if unused := self.volume_mounts.drop(cid):
            self._in_thread(self.volume_mounts.unmount_unused, unused)

    def _in_thread(self, work: Callable[..., None], *args: Any) -> None:
        task = asyncio.create_task(asyncio.to_thread(work, *args))
        self._volume_work.add(task)
        task.add_done_callback(self._volume_work.discard)

    async def shutdown(self) -> None:
        """Daemon stop: drop our connections (containers keep running), finish the records' writes."""
        await self.supervisor.shutdown()
        await asyncio.to_thread(self.volume_mounts.release_all)
        await asyncio.to_thread(self.store.close)

    def counts(self) -> dict[str, int]:
        out = {"running": 0, "paused": 0, "stopped": 0}
        for c in self.store.all():
            if c.state.status == PAUSED:
                out["paused"] += 1
            elif c.state.running:
                out["running"] += 1
            else:
                out["stopped"] += 1
        return out
