"""The container engine: lifecycle state machine, supervision, wait, attach, logs."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import signal as signal_mod
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from servin import atomicfile, errors
from servin.core import endpoints as endpoints_mod
from servin.core import names
from servin.core import resources as resources_mod
from servin.core.networking import ContainerNetworking
from servin.core.events import Event, EventBus
from servin.core.logs import LogQuery, parse_time_ns, read_log, render_log
from servin.core.model import (
    Container,
    ContainerConfig,
    EndpointConfig,
    HealthConfig,
    HostConfig,
    LogLine,
    MountPoint,
    MountRequest,
    State,
    Status,
)
from servin.core import confinement
from servin.core.spec import Confinement, ProcessUser, RootfsLayout, build_spec, resources_for
from servin.core.store import ContainerStore
from servin.core.users import resolve_group, resolve_user
from servin.core.volumes import VolumeStore, copy_image_content, tree_size
from servin.images.union import container_path
from servin.runtime.devices import block_numbers
from servin.runtime.plan import CAPABILITIES

log = logging.getLogger(__name__)

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    ns = time.time_ns()
    base = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns % 1_000_000_000:09d}Z"


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


class ImageSource(Protocol):
    def get(self, ref: str) -> Any: ...
    def layer_dirs(self, image_id: str) -> list[Path]: ...
    def read_file(self, image_id: str, path: str) -> bytes | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitResult:
    status_code: int
    error: str | None = None


@dataclass(slots=True)
class AttachTicket:
    """A client attaching: `shim` resolves with the supervisor to connect to (None: the
    container will not run); the client sets `connected` once its stream is open."""

    shim: asyncio.Future[Any]
    connected: asyncio.Future[None]


@dataclass(slots=True)
class _Live:
    """In-memory companions of a container: its shim handle and waiters."""

    shim: Any = None
    monitor: asyncio.Task[None] | None = None
    exit_waiters: list[asyncio.Future[WaitResult]] | None = None
    remove_waiters: list[asyncio.Future[WaitResult]] | None = None
    pending_attach: list[AttachTicket] | None = None
    lock: asyncio.Lock | None = None
    restart_task: asyncio.Task[None] | None = None
    restart_delay: float = 0.0  # Docker's back-off: 100 ms doubling to 1 min, reset after 10 s up


class ContainerService:
    def __init__(
        self,
        *,
        store: ContainerStore,
        images: ImageSource,
        runtime: Any,
        events: EventBus,
        cgroup_parent: str,
        cgroup_version: int,
        cgroups: Any = None,  # kernel.cgroups.CgroupManager: pause, update, top, stats
        volumes: VolumeStore | None = None,
        default_log: tuple[str, dict[str, str]] = ("json-file", {}),  # daemon.json log-driver, log-opts
        host_resolv_conf: Path = Path("/etc/resolv.conf"),
        network: Any = None,  # servin.network.service.NetworkService; None: no bridge (default mode = none)
        seccomp_profile: str | Mapping[str, Any] = "builtin",  # --seccomp-profile: builtin, unconfined or a profile
        host_caps: tuple[str, ...] | None = None,  # the daemon's bounding set (None: every capability)
        no_new_privileges: bool = False,  # the daemon's --no-new-privileges
    ) -> None:
        self.networking = ContainerNetworking(network=network, store=store, lookup=self.get, lock_of=self._lock_of,
                                              events=events, host_resolv_conf=host_resolv_conf)
        self.store = store
        self.images = images
        self.runtime = runtime
        self.cgroups = cgroups
        self.features = getattr(cgroups, "features", None) or resources_mod.assumed_features(
            cgroup_version, os.cpu_count() or 1)
        self.block_numbers: Callable[[list[str]], dict[str, tuple[int, int]]] = block_numbers
        self.volumes = volumes
        self.default_log = default_log
        self.seccomp_profile = seccomp_profile
        self.host_caps = tuple(host_caps) if host_caps is not None else CAPABILITIES
        self.no_new_privileges = no_new_privileges
        self.events = events
        self.cgroup_parent = "/" + cgroup_parent.strip("/")
        self.cgroup_version = cgroup_version
        self._live: dict[str, _Live] = {}
        # called with the container once it runs (also when re-attached) and once it exited
        self.on_running: list[Callable[[Container, bool], None]] = []  # (container, re-attached)
        self.on_exited: list[Callable[[str], None]] = []
        self._names: dict[str, str] = {c.name: c.id for c in store.all()}

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

    def _lock_of(self, cid: str) -> asyncio.Lock:
        lock = self._live_of(cid).lock
        assert lock is not None
        return lock

    def _live_of(self, cid: str) -> _Live:
        live = self._live.get(cid)
        if live is None:
            live = self._live[cid] = _Live(exit_waiters=[], remove_waiters=[], pending_attach=[],
                                           lock=asyncio.Lock())
        return live

    def live_shim(self, cid: str) -> Any:
        live = self._live.get(cid)
        return live.shim if live is not None else None

    def cgroups_path(self, cid: str) -> str:
        return f"{self.cgroup_parent}/{cid}"

    def log_path(self, cid: str) -> Path:
        return self.store.dir(cid) / f"{cid}-json.log"

    def _exit_path(self, cid: str) -> Path:
        return self.store.dir(cid) / "exit.json"

    def _emit(self, c: Container, action: str, **extra: str) -> None:
        attrs = {"image": c.config.image, "name": c.name, **c.config.labels, **extra}
        self.events.publish(Event(type="container", action=action, actor_id=c.id, attributes=attrs))

    # ---- create -------------------------------------------------------------------------

    async def create(self, config: ContainerConfig, host_config: HostConfig, name: str | None,
                     endpoints: Mapping[str, EndpointConfig] | None = None) -> Container:
        config = _check_working_dir(config)
        if name:
            name = self._reserve_check(name)
        else:
            name = names.generate(set(self._names))
        image = await asyncio.to_thread(self.images.get, config.image)
        icfg = (image.config or {}).get("config") or {}
        entrypoint = config.entrypoint if config.entrypoint is not None else tuple(icfg.get("Entrypoint") or ())
        if config.cmd is not None:
            cmd = config.cmd
        elif config.entrypoint is not None:
            cmd = ()
        else:
            cmd = tuple(icfg.get("Cmd") or ())
        argv = tuple(entrypoint) + tuple(cmd)
        if not argv:
            raise errors.InvalidArgument("No command specified")
        if not host_config.log_type:
            host_config = replace(host_config, log_type=self.default_log[0],
                                  log_config={**self.default_log[1], **host_config.log_config})
        _check_host_config(host_config)  # resources and restart policy: verify(), which the caller ran
        confinement.check(host_config, available_caps=self.host_caps, hostname=config.hostname)
        host_config = confinement.adapt(host_config, cgroup_version=self.cgroup_version, lookup=self.get)
        networks = self.networking.initial_networks(config, host_config, endpoints)
        cid = secrets.token_hex(32)
        # as dockerd: with the host's network the host's name (in the container's own UTS namespace)
        hostname = config.hostname or (socket.gethostname() if host_config.network_mode == "host" else cid[:12])
        env = _merge_env(
            icfg.get("Env") or [],
            [f"HOSTNAME={hostname}"] + (["TERM=xterm"] if config.tty else []) + list(config.env),
        )
        mount_points = self._resolve_mounts(config, host_config, icfg)
        c = Container(
            id=cid, name=name, created=now_rfc3339(), image_id=image.id, config=config, mount_points=mount_points,
            resolved_entrypoint=tuple(entrypoint), resolved_cmd=tuple(cmd),
            healthcheck=config.healthcheck or _image_healthcheck(icfg.get("Healthcheck")),
            host_config=host_config, state=State(), path=argv[0], args=argv[1:],
            resolved_env=tuple(env), resolved_user=config.user or icfg.get("User") or "",
            resolved_workdir=config.working_dir or container_path(str(icfg.get("WorkingDir") or "/")),
            resolved_hostname=hostname, networks=networks,
        )
        self._names[name] = cid
        try:
            await asyncio.to_thread(self._prepare_bundle, c)
            self.store.save(c)
        except BaseException:
            self._names.pop(name, None)
            await asyncio.to_thread(self.store.delete, cid)
            raise
        self._emit(c, "create")
        return c

    def _resolve_mounts(self, config: ContainerConfig, hc: HostConfig, icfg: dict[str, Any]) -> tuple[MountPoint, ...]:
        """--volumes-from, then -v/--mount/--tmpfs, then an anonymous volume for every VOLUME left.

        Destinations are paths inside the container, cleaned as dockerd does (``filepath.Clean``);
        the keys of ``Volumes`` (the image's and the request's) are made absolute first, so an
        image's ``/../../etc`` is the container's ``/etc``, never a host path."""
        points: dict[str, MountPoint] = {}
        for ref in hc.volumes_from:
            name, _, mode = ref.partition(":")
            source = self.get(name)
            for mp in source.mount_points:
                rw = mp.rw if mode not in ("ro", "rw") else mode == "rw"
                dest = container_path(mp.destination)
                points[dest] = replace(mp, destination=dest, rw=rw, copy_content=False, anonymous=False)
        for req in hc.mounts:
            req = replace(req, target=container_path(req.target))
            points[req.target] = self._mount_point(req, hc.volume_driver)
        declared = icfg.get("Volumes")
        image_volumes = [*(declared if isinstance(declared, dict) else ()), *config.volumes]
        for spec in image_volumes:
            dest = container_path(str(spec))
            if dest == "/":  # dockerd lets it through to fail at start; refused with its -v wording
                raise errors.InvalidArgument(
                    f"invalid volume specification: '{spec}': invalid mount config for type \"volume\": "
                    "invalid specification: destination can't be '/'")
            if dest not in points:
                points[dest] = self._mount_point(MountRequest(type="volume", target=dest), hc.volume_driver)
        return tuple(sorted(points.values(), key=lambda m: m.destination.count("/")))

    def _mount_point(self, req: MountRequest, volume_driver: str = "") -> MountPoint:
        if req.type == "bind":
            src = Path(req.source)
            if not src.exists():
                if not req.create_source:
                    raise errors.InvalidArgument(
                        f'invalid mount config for type "bind": bind source path does not exist: {req.source}')
                src.mkdir(parents=True, exist_ok=True)
            return MountPoint(type="bind", source=req.source, destination=req.target, rw=not req.read_only,
                              mode=req.mode, propagation=req.propagation or "rprivate")
        if req.type == "tmpfs":
            return MountPoint(type="tmpfs", destination=req.target, rw=not req.read_only,
                              options=req.tmpfs_options)
        if self.volumes is None:
            raise errors.NotImplementedYet("volumes are not available")
        vol, created = self.volumes.create(req.source or None, driver=volume_driver or "local",
                                           labels=req.volume_labels,
                                           options=req.volume_options, created=now_rfc3339())
        if created:
            self.events.publish(Event(type="volume", action="create", actor_id=vol.name,
                                      attributes={"driver": vol.driver}))
        mp = MountPoint(type="volume", name=vol.name, source=vol.mountpoint, destination=req.target,
                        driver=vol.driver, rw=not req.read_only, mode=req.mode or "z",
                        copy_content=not req.nocopy, anonymous=vol.anonymous)
        if vol.is_mount:
            o = vol.options.get("o", "")
            mp = replace(mp, fstype=vol.options.get("type", "none"), device=vol.options.get("device", ""),
                         options=tuple(x for x in o.split(",") if x), copy_content=False)
        return mp

    def volume_users(self, name: str) -> list[str]:
        return [c.id for c in self.store.all() if any(m.name == name for m in c.mount_points)]

    def _populate_volumes(self, c: Container, layers: list[Path]) -> None:
        """Copy the image's files into each new, still empty volume (Docker does it at first start)."""
        for mp in c.mount_points:
            if mp.type != "volume" or not mp.copy_content or mp.fstype:
                continue
            data = Path(mp.source)
            if data.is_dir() and not any(data.iterdir()):
                copy_image_content(layers, mp.destination, data)

    def _prepare_bundle(self, c: Container) -> None:
        d = self.store.dir(c.id)
        for sub in ("rootfs", "upper", "work"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "hostname").write_text(c.resolved_hostname + "\n")
        self.networking.write_files(c)
        # A missing working directory is made by the supervisor inside the container, after
        # pivot_root (servin-shim.c, child_main), where symlinks resolve in the container's root;
        # never here on the host.

    # ---- network ------------------------------------------------------------------------

    # ---- start --------------------------------------------------------------------------

    async def start(self, ref: str) -> None:
        c = self.get(ref)
        live = self._live_of(c.id)
        assert live.lock is not None
        async with live.lock:
            c = self.get(c.id)
            if c.state.status in (Status.RUNNING, Status.RESTARTING):
                raise errors.NotModified("container already started")
            if c.state.status == Status.PAUSED:
                raise errors.Conflict("cannot start a paused container, try unpause instead")
            if c.state.status in (Status.REMOVING, Status.DEAD):
                raise errors.Conflict(f"container {c.id} is marked for removal and cannot be started")
            try:
                await self._start_locked(c, live)
            except errors.ServinError:
                if c.host_config.auto_remove:  # `docker run --rm` waits for the removal
                    asyncio.get_running_loop().call_soon(
                        lambda: asyncio.ensure_future(self._auto_remove(c.id)))
                raise

    async def _start_locked(self, c: Container, live: _Live) -> None:
        image_id = c.image_id
        layers = await asyncio.to_thread(self.images.layer_dirs, image_id)
        passwd = await asyncio.to_thread(self.images.read_file, image_id, "/etc/passwd")
        group = await asyncio.to_thread(self.images.read_file, image_id, "/etc/group")
        user = resolve_user(c.resolved_user, passwd, group)
        extra_gids = tuple(resolve_group(g, group) for g in c.host_config.group_add)
        user = replace(user, additional_gids=tuple(dict.fromkeys(user.additional_gids + extra_gids)))
        await asyncio.to_thread(self._populate_volumes, c, layers)
        d = self.store.dir(c.id)
        # `-e NAME` of a variable the client does not have arrives as "NAME": it unsets NAME, and is
        # not passed on (dockerd's container/env.go ReplaceOrAppendEnvValues)
        env = [e for e in c.resolved_env if "=" in e]
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={user.home}")
        layout = RootfsLayout(bundle=str(d), lowerdirs=tuple(str(p) for p in reversed(layers)),
                              upperdir=str(d / "upper"), workdir=str(d / "work"))
        netns_path = await self.networking.attach(c)
        if c.host_config.links:
            try:
                env += self.networking.link_env(c)
            except BaseException:
                await self.networking.release(c.id)
                raise
        hostname = c.resolved_hostname
        if endpoints_mod.joined_container(c.host_config.network_mode) is not None:  # the joined one's
            hostname = (await asyncio.to_thread((d / "hostname").read_text)).strip() or hostname
        try:
            spec = build_spec(replace(c, resolved_env=tuple(env), resolved_hostname=hostname), layout=layout,
                              user=ProcessUser(uid=user.uid, gid=user.gid, additional_gids=user.additional_gids),
                              cgroups_path=self.cgroups_path(c.id), cgroup_version=self.cgroup_version,
                              netns_path=netns_path, seccomp_default=self.seccomp_profile,
                              confinement=await self._confinement(c),
                              block_devices=await asyncio.to_thread(
                                  self.block_numbers, resources_mod.block_device_paths(c.host_config)))
            await asyncio.to_thread(atomicfile.write_json, d / "config.json", spec)
            exit_path = self._exit_path(c.id)
            exit_path.unlink(missing_ok=True)
            shim = await self.runtime.create(c.id, bundle=d, log_path=self.log_path(c.id), exit_path=exit_path)
        except BaseException:
            await self.networking.release(c.id)
            raise
        live.shim = shim
        assert live.pending_attach is not None
        tickets, live.pending_attach = live.pending_attach, []
        for t in tickets:
            if not t.shim.done():
                t.shim.set_result(shim)
        if tickets:  # the first byte must reach clients that attached before start
            await asyncio.wait([t.connected for t in tickets], timeout=5)
        try:
            pid = await shim.start()
        except Exception as exc:
            code = getattr(exc, "exit_code", 128)
            message = getattr(exc, "message", str(exc))
            # dockerd 20.10 with runc 1.1; the CLI picks exit code 127 or 126 from these words
            full = ("OCI runtime create failed: runc create failed: unable to start container process: "
                    f"{message}: unknown")
            never_ran = c.state.started_at == ZERO_TIME
            c = (self.store.get(c.id) or c).with_state(status=Status.CREATED if never_ran else Status.EXITED,
                             exit_code=code, error=full, pid=0)
            self.store.save(c)
            await shim.close()
            await self.runtime.delete(c.id, cgroups_path=self.cgroups_path(c.id))
            await self.networking.release(c.id)
            live.shim = None
            self._resolve_exit(c.id, WaitResult(status_code=code, error=full))
            raise errors.ExecFailed(full, code) from None
        c = (self.store.get(c.id) or c)  # fresh after the awaits: a rename meanwhile is kept
        c = c.with_state(status=Status.RUNNING, pid=pid, started_at=now_rfc3339(), finished_at=ZERO_TIME,
                         exit_code=0, error="", oom_killed=False, manually_stopped=False)
        self.store.save(c)
        self._emit(c, "start")
        live.monitor = asyncio.create_task(self._monitor(c.id, shim))
        for hook in self.on_running:
            hook(c, False)

    async def _confinement(self, c: Container) -> Confinement:
        """What the spec needs of the host and of other containers at start."""
        donors = confinement.donors(c.host_config, self.get)
        nodes = await asyncio.to_thread(confinement.resolve_devices, c.host_config)
        return Confinement(host_caps=self.host_caps, no_new_privileges=self.no_new_privileges, devices=nodes,
                           ipc_pid=donors.ipc.state.pid if donors.ipc else None,
                           pid_pid=donors.pid.state.pid if donors.pid else None)

    async def _monitor(self, cid: str, shim: Any) -> None:
        try:
            status = await shim.wait()
            code, oom, finished = status.exit_code, status.oom_killed, status.finished_at
        except Exception as exc:  # the shim vanished without an exit record
            log.error("lost the supervisor of %s: %s", cid[:12], exc)
            code, oom, finished = 255, False, now_rfc3339()
        await self._on_exit(cid, code, oom, finished)

    async def _on_exit(self, cid: str, code: int, oom: bool, finished: str) -> None:
        for hook in self.on_exited:
            hook(cid)
        live = self._live_of(cid)
        if live.shim is not None:
            shim, live.shim = live.shim, None
            await shim.close()
        await self.networking.release(cid)  # as dockerd: the network goes before the container reads as exited
        c = self.store.get(cid)  # read after the await: a rename or rm may have happened meanwhile
        if c is not None:  # exited first, then the cgroup goes: nobody may pause a vanishing cgroup
            c = c.with_state(status=Status.EXITED, pid=0, exit_code=code, oom_killed=oom, finished_at=finished)
            self.store.save(c)
        try:
            await self.runtime.delete(cid, cgroups_path=self.cgroups_path(cid))
        except Exception as exc:
            log.warning("cleaning up %s: %s", cid[:12], exc)
        if c is None or (c := self.store.get(cid)) is None:
            self._resolve_exit(cid, WaitResult(status_code=code))
            return
        if oom:
            self._emit(c, "oom")
        self._emit(c, "die", exitCode=str(code))
        self._resolve_exit(cid, WaitResult(status_code=code))
        if c.host_config.auto_remove:
            await self._auto_remove(cid)
        elif _should_restart(c):
            ran = parse_time_ns(finished) - parse_time_ns(c.state.started_at)
            live.restart_delay = 0.1 if live.restart_delay == 0 or ran >= 10e9 else min(live.restart_delay * 2, 60)
            self.store.save(c.with_state(status=Status.RESTARTING))
            live.restart_task = asyncio.create_task(self._restart_later(cid, live.restart_delay))

    async def _restart_later(self, cid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        live = self._live_of(cid)
        assert live.lock is not None
        async with live.lock:
            c = self.store.get(cid)
            if c is None or c.state.status != Status.RESTARTING:
                return
            live.restart_task = None
            c = c.with_state(restart_count=c.state.restart_count + 1)
            self.store.save(c)
            try:
                await self._start_locked(c, live)
            except errors.ServinError as exc:
                log.warning("restarting %s: %s", c.short_id, exc.message)

    def _cancel_restart(self, c: Container) -> Container:
        """stop/kill/rm of a container waiting to restart: it stays down. The pending restart is
        not cancelled (it may be half way through a start); it wakes, sees EXITED and gives up."""
        cur = self.store.get(c.id) or c
        if cur.state.status == Status.RESTARTING:
            cur = cur.with_state(status=Status.EXITED, manually_stopped=True)
            self.store.save(cur)
        return cur

    async def _settle_restart(self, c: Container) -> Container:
        """A restart policy's start under way finishes before a stop or kill looks at the state."""
        if c.state.status == Status.RESTARTING:
            lock = self._live_of(c.id).lock
            assert lock is not None
            async with lock:
                pass
            c = self.get(c.id)
        return c

    def _mark_stopped_by_user(self, cid: str) -> None:
        """Read-modify-write with no await in between: a concurrent exit is never undone."""
        cur = self.store.get(cid)
        if cur is not None:
            self.store.save(cur.with_state(manually_stopped=True))

    async def _auto_remove(self, cid: str) -> None:
        try:
            await self.remove(cid, force=True, volumes=True)
        except errors.ServinError as exc:
            log.warning("auto-remove of %s: %s", cid[:12], exc.message)

    def _resolve_exit(self, cid: str, result: WaitResult) -> None:
        live = self._live_of(cid)
        assert live.exit_waiters is not None
        waiters, live.exit_waiters = live.exit_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(result)

    # ---- stop / kill --------------------------------------------------------------------

    async def kill(self, ref: str, sig: str | int | None = None) -> None:
        c = self.get(ref)
        signum = parse_signal(sig)
        live = self._live.get(c.id)
        c = await self._settle_restart(c)
        if c.state.status == Status.RESTARTING:
            self._cancel_restart(c)
            return
        live = self._live.get(c.id)
        if not c.state.alive or live is None or live.shim is None:
            raise errors.Conflict(f"Container {c.id} is not running")
        self._mark_stopped_by_user(c.id)
        exited = self._exit_future(c.id) if signum == signal_mod.SIGKILL else None
        await self._signal(live.shim, signum)
        if c.state.status == Status.PAUSED and signum == signal_mod.SIGKILL:
            await asyncio.to_thread(self.cgroups.thaw, self.cgroups_path(c.id))
        if exited is not None:  # as dockerd: a SIGKILL returns once the container is down
            await self._await_exit(c.id, exited)
        if signum != signal_mod.SIGKILL:
            self._emit(c, "kill", signal=str(signum))
        else:
            self._emit(c, "kill", signal="9")

    @staticmethod
    async def _signal(shim: Any, signum: int) -> None:
        try:
            await shim.kill(signum)
        except errors.SystemError_ as exc:  # the supervisor is exiting with its container
            log.debug("signal %d: %s", signum, exc.message)

    async def _await_exit(self, cid: str, exited: asyncio.Future[WaitResult], timeout: float = 15) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(exited), timeout)
        except asyncio.TimeoutError:
            raise errors.SystemError_(f"container {cid} did not exit within {timeout:.0f}s of SIGKILL") from None

    async def stop(self, ref: str, timeout: int | None = None) -> None:
        c = self.get(ref)
        live = self._live.get(c.id)
        c = await self._settle_restart(c)
        if c.state.status == Status.RESTARTING:
            self._cancel_restart(c)
            self._emit(c, "stop")
            return
        live = self._live.get(c.id)
        if not c.state.alive or live is None or live.shim is None:
            raise errors.NotModified("container already stopped")
        self._mark_stopped_by_user(c.id)
        if timeout is None:
            timeout = c.config.stop_timeout if c.config.stop_timeout is not None else 10
        signum = parse_signal(c.config.stop_signal, default=signal_mod.SIGTERM)
        waiter = self._exit_future(c.id)
        shim = live.shim
        if timeout != 0:
            await self._signal(shim, signum)
            if c.state.status == Status.PAUSED:  # a frozen process cannot act on the signal
                await asyncio.to_thread(self.cgroups.thaw, self.cgroups_path(c.id))
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout if timeout > 0 else None)
                self._emit(c, "stop")
                return
            except asyncio.TimeoutError:
                pass
        await self._signal(shim, signal_mod.SIGKILL)
        if c.state.status == Status.PAUSED:
            await asyncio.to_thread(self.cgroups.thaw, self.cgroups_path(c.id))
        await self._await_exit(c.id, waiter)
        self._emit(c, "stop")

    async def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        shim = self.live_shim(c.id)
        if not c.state.alive or shim is None:
            raise errors.Conflict(f"Container {c.id} is not running")
        if c.config.tty:
            await shim.resize(0, height, width)

    async def restart(self, ref: str, timeout: int | None = None) -> None:
        try:
            await self.stop(ref, timeout)
        except errors.NotModified:
            pass
        await self.start(ref)
        self._emit(self.get(ref), "restart")

    def _exit_future(self, cid: str) -> asyncio.Future[WaitResult]:
        fut: asyncio.Future[WaitResult] = asyncio.get_running_loop().create_future()
        live = self._live_of(cid)
        assert live.exit_waiters is not None
        live.exit_waiters.append(fut)
        return fut

    # ---- wait ---------------------------------------------------------------------------

    def wait_future(self, ref: str, condition: str) -> asyncio.Future[WaitResult]:
        """Registered at once (so the HTTP headers can go out), resolved on the condition."""
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise errors.InvalidArgument(f"invalid condition: {condition!r}")
        c = self.get(ref)
        loop = asyncio.get_running_loop()
        if condition == "removed":
            fut: asyncio.Future[WaitResult] = loop.create_future()
            live = self._live_of(c.id)
            assert live.remove_waiters is not None
            live.remove_waiters.append(fut)
            return fut
        if condition in ("", "not-running") and not c.state.running:
            fut = loop.create_future()
            fut.set_result(WaitResult(status_code=c.state.exit_code, error=c.state.error or None))
            return fut
        return self._exit_future(c.id)

    # ---- remove -------------------------------------------------------------------------

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        live = self._live_of(c.id)
        if c.state.status == Status.RESTARTING and force:
            c = self._cancel_restart(await self._settle_restart(c))
        if c.state.running:
            if not force:
                raise errors.Conflict(
                    f"You cannot remove a running container {c.id}. Stop the container before "
                    "attempting removal or force remove")
            waiter = self._exit_future(c.id)
            if live.shim is not None:
                await self._signal(live.shim, signal_mod.SIGKILL)
                if c.state.status == Status.PAUSED:
                    await asyncio.to_thread(self.cgroups.thaw, self.cgroups_path(c.id))
            # with no shim the exit is already being recorded: wait for it either way
            await self._await_exit(c.id, waiter)
            if self.store.get(c.id) is None:
                return  # auto-removed meanwhile
            c = self.get(c.id)
        if self.store.get(c.id) is None:
            return  # auto-removed meanwhile
        if live.shim is not None:  # created, never started: the shim is not running
            await live.shim.close()
        await self.networking.release(c.id)
        await asyncio.to_thread(self.store.delete, c.id)
        self._names.pop(c.name, None)
        self._emit(c, "destroy")
        if volumes and self.volumes is not None:
            for mp in c.mount_points:
                if mp.anonymous and mp.name and not self.volume_users(mp.name):
                    await asyncio.to_thread(self.volumes.remove, mp.name, users=[], force=True)
                    self.events.publish(Event(type="volume", action="destroy", actor_id=mp.name,
                                              attributes={"driver": mp.driver}))
        assert live.remove_waiters is not None
        result = WaitResult(status_code=c.state.exit_code, error=c.state.error or None)
        for w in live.remove_waiters:
            if not w.done():
                w.set_result(result)
        for w in live.exit_waiters or []:
            if not w.done():
                w.set_result(result)
        for t in live.pending_attach or []:
            if not t.shim.done():
                t.shim.set_result(None)
        self._live.pop(c.id, None)

    # ---- pause / rename / update / top / stats / prune ----------------------------------

    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        if c.state.status == Status.PAUSED:
            raise errors.Conflict(f"Container {c.id} is already paused")
        if c.state.status != Status.RUNNING:
            raise errors.Conflict(f"Container {c.id} is not running")
        try:
            await asyncio.to_thread(self.cgroups.freeze, self.cgroups_path(c.id))
        except OSError:  # it exited meanwhile and its cgroup is gone
            raise errors.Conflict(f"Container {c.id} is not running") from None
        cur = self.store.get(c.id)
        if cur is None or cur.state.status != Status.RUNNING:
            raise errors.Conflict(f"Container {c.id} is not running")
        self.store.save(cur.with_state(status=Status.PAUSED))
        self._emit(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        if c.state.status != Status.PAUSED:
            raise errors.Conflict(f"Container {c.id} is not paused")
        try:
            await asyncio.to_thread(self.cgroups.thaw, self.cgroups_path(c.id))
        except OSError:
            raise errors.Conflict(f"Container {c.id} is not running") from None
        c = self.store.get(c.id) or c
        if c.state.status == Status.PAUSED:
            self.store.save(c.with_state(status=Status.RUNNING))
        self._emit(c, "unpause")

    def _reserve_check(self, name: str) -> str:
        """dockerd's reserveName (daemon/names.go): the name's pattern (names.check_container_name),
        then whether another container has it (nameConflictError). The bare name."""
        bare = names.check_container_name(name)
        if bare in self._names:
            raise errors.Conflict(
                f'Conflict. The container name "/{bare}" is already in use by container '
                f'"{self._names[bare]}". You have to remove (or rename) that container to be able '
                "to reuse that name.")
        return bare

    def rename(self, ref: str, new_name: str) -> None:
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
            new_name = self._reserve_check(new_name)
        except errors.ServinError as exc:
            raise type(exc)(f"Error when allocating new name: {exc.message}") from None
        old = c.name
        self._names.pop(old, None)
        self._names[new_name] = c.id
        c = replace(c, name=new_name)
        self.store.save(c)
        self._emit(c, "rename", oldName="/" + old)

    def verify(self, host_config: HostConfig, *, update: bool = False) -> tuple[HostConfig, list[str]]:
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
            from servin.runtime.plan import resources_from_oci

            numbers = await asyncio.to_thread(self.block_numbers, resources_mod.block_device_paths(host_config))
            resources = resources_from_oci({"resources": resources_for(host_config, numbers)})
            await asyncio.to_thread(self.cgroups.update, self.cgroups_path(c.id),
                                    replace(resources, device_rules=None))
        c = replace(self.store.get(c.id) or c, host_config=host_config)  # fresh: the state may have moved
        self.store.save(c)
        self._emit(c, "update")
        return c

    async def top(self, ref: str, ps_args: str) -> tuple[list[str], list[list[str]]]:
        c = self.get(ref)
        if not c.state.alive:
            raise errors.Conflict(f"Container {c.id} is not running")
        pids = set(await asyncio.to_thread(self.cgroups.pids, self.cgroups_path(c.id)))
        return await asyncio.to_thread(ps_table, ps_args or "-ef", pids)

    def stats_sample(self, ref: str) -> tuple[Container, Any]:
        """One reading of the container's cgroup (None when it is not running)."""
        c = self.get(ref)
        if not c.state.alive:
            return c, None
        try:
            return c, self.cgroups.stats(self.cgroups_path(c.id))
        except OSError:
            return c, None

    async def prune(self, filters: dict[str, list[str]]) -> tuple[list[str], int]:
        """Removes the stopped containers the filters select: (ids, bytes of their layers)."""
        from servin.core.query import label_matches, parse_until

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

    # ---- attach / logs ------------------------------------------------------------------

    def attach_ticket(self, ref: str) -> tuple[Container, AttachTicket]:
        c = self.get(ref)
        live = self._live_of(c.id)
        loop = asyncio.get_running_loop()
        ticket = AttachTicket(shim=loop.create_future(), connected=loop.create_future())
        self._emit(c, "attach")
        if c.state.running and live.shim is not None:
            ticket.shim.set_result(live.shim)
        elif c.state.status in (Status.CREATED, Status.EXITED):
            assert live.pending_attach is not None
            live.pending_attach.append(ticket)
        else:
            ticket.shim.set_result(None)
        return c, ticket

    def logs(self, ref: str, query: LogQuery) -> tuple[Container, AsyncIterator[list[LogLine]]]:
        c = self._readable_log(ref)
        return c, read_log(self.log_path(c.id), query, self._still_running(c.id))

    def rendered_logs(self, ref: str, query: LogQuery, *, timestamps: bool) -> tuple[Container, AsyncIterator[bytes]]:
        """The body of `docker logs` for queries `renders_natively` takes (no since/until/tail)."""
        c = self._readable_log(ref)
        return c, render_log(self.log_path(c.id), query, self._still_running(c.id), tty=c.config.tty,
                             timestamps=timestamps)

    def _readable_log(self, ref: str) -> Container:
        c = self.get(ref)
        if c.host_config.log_type == "none":
            raise errors.InvalidArgument(
                'configured logging driver does not support reading')
        return c

    def _still_running(self, cid: str) -> Callable[[], bool]:
        def still_running() -> bool:
            cur = self.store.get(cid)
            return cur is not None and cur.state.running

        return still_running

    # ---- daemon start -------------------------------------------------------------------

    async def restore(self) -> None:
        """Re-attach to every live supervisor; settle containers that died while we were away."""
        for c in self.store.all():
            if not c.state.running:
                continue
            shim = None
            try:
                shim = await self.runtime.reconnect(c.id)
            except Exception as exc:
                log.warning("reconnecting to %s: %s", c.short_id, exc)
            if shim is not None:
                c = self.networking.reconcile(c)  # a connect or disconnect the crash cut short
                live = self._live_of(c.id)
                live.shim = shim
                live.monitor = asyncio.create_task(self._monitor(c.id, shim))
                for hook in self.on_running:
                    hook(c, True)
                log.info("re-attached to running container %s", c.short_id)
                continue
            status = self.runtime.read_exit(c.id, exit_path=self._exit_path(c.id),
                                            cgroups_path=self.cgroups_path(c.id))
            if status is not None:
                await self._on_exit(c.id, status.exit_code, status.oom_killed, status.finished_at)
            else:
                await self._on_exit(c.id, 255, False, now_rfc3339())
        for c in self.store.all():
            policy = c.host_config.restart_policy.name
            if c.state.status in (Status.EXITED, Status.RESTARTING) and (
                    policy == "always" or policy == "unless-stopped" and not c.state.manually_stopped):
                try:
                    if c.state.status == Status.RESTARTING:
                        self.store.save(c.with_state(status=Status.EXITED))
                    await self.start(c.id)
                    log.info("restarted %s (restart policy %s)", c.short_id, policy)
                except errors.ServinError as exc:
                    log.warning("restarting %s at daemon start: %s", c.short_id, exc.message)

    async def shutdown(self) -> None:
        """Daemon stop: drop our connections; containers keep running."""
        for live in self._live.values():
            if live.monitor is not None:
                live.monitor.cancel()
            if live.restart_task is not None:
                live.restart_task.cancel()
            if live.shim is not None:
                try:
                    await live.shim.close()
                except Exception:
                    pass

    def counts(self) -> dict[str, int]:
        out = {"running": 0, "paused": 0, "stopped": 0}
        for c in self.store.all():
            if c.state.status == Status.PAUSED:
                out["paused"] += 1
            elif c.state.running:
                out["running"] += 1
            else:
                out["stopped"] += 1
        return out


def _image_healthcheck(raw: Any) -> HealthConfig | None:
    if not isinstance(raw, dict) or not raw.get("Test"):
        return None
    return HealthConfig(test=tuple(raw["Test"]), interval_ns=int(raw.get("Interval") or 0),
                        timeout_ns=int(raw.get("Timeout") or 0), start_period_ns=int(raw.get("StartPeriod") or 0),
                        retries=int(raw.get("Retries") or 0))


def _should_restart(c: Container) -> bool:
    policy = c.host_config.restart_policy
    if c.state.manually_stopped:
        return False
    if policy.name in ("always", "unless-stopped"):
        return True
    if policy.name == "on-failure":
        retries = policy.maximum_retry_count
        return c.state.exit_code != 0 and (retries == 0 or c.state.restart_count < retries)
    return False


def ps_table(ps_args: str, pids: set[int]) -> tuple[list[str], list[list[str]]]:
    """Run the host's ps like dockerd does and keep the rows of the container's processes."""
    import shlex
    import subprocess

    args = shlex.split(ps_args)
    res = subprocess.run(["ps", *args], capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise errors.SystemError_(f"Error running ps: {res.stderr.strip() or res.returncode}")
    lines = res.stdout.splitlines()
    if not lines:
        return [], []
    titles = lines[0].split()
    if "PID" not in titles:
        raise errors.SystemError_("Couldn't find PID field in ps output")
    pid_index = titles.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > pid_index and fields[pid_index].isdigit() and int(fields[pid_index]) in pids:
            rows.append(fields)
    return titles, rows


def _merge_env(base: list[str], overrides: list[str]) -> list[str]:
    env: dict[str, str] = {}
    for item in list(base) + list(overrides):
        key = item.split("=", 1)[0]
        env[key] = item
    if "PATH" not in env:
        env = {"PATH": DEFAULT_PATH, **env}
    return list(env.values())


LOG_OPTS = {"json-file": {"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"},
            "none": set()}
DEVICE_RULE_RE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")


def _check_working_dir(config: ContainerConfig) -> ContainerConfig:
    """dockerd's translateWorkingDir (daemon/container.go): an absolute path, then cleaned."""
    wd = config.working_dir
    if not wd:
        return config
    if not wd.startswith("/"):
        raise errors.InvalidArgument(f"the working directory '{wd}' is invalid, it needs to be an absolute path")
    return replace(config, working_dir=container_path(wd))


def _check_host_config(hc: HostConfig) -> None:
    """What dockerd refuses at create: unknown log drivers and options, bad modes and rules."""
    driver = hc.log_type or "json-file"
    if driver not in LOG_OPTS:
        raise errors.InvalidArgument(f"logger: no log driver named '{driver}' is registered")
    for key, value in hc.log_config.items():
        if key not in LOG_OPTS[driver]:
            raise errors.InvalidArgument(f"unknown log opt '{key}' for {driver} log driver")
        if key == "max-size":
            from servin.runtime.plan import parse_size

            try:
                parse_size(value)
            except errors.ServinError:
                raise errors.InvalidArgument(f"invalid size: '{value}'") from None
        if key == "max-file" and (not value.isdigit() or int(value) < 1):
            raise errors.InvalidArgument("max-file cannot be less than 1")
    for rule in hc.device_cgroup_rules:
        if not DEVICE_RULE_RE.match(rule):
            raise errors.InvalidArgument(f"invalid device cgroup format '{rule}'")
