"""A container's start (moby's daemon/start.go): its user, volumes, network namespace and OCI
spec made ready, the runtime's supervisor created, waiting attach clients handed over, then the
process run and supervised. The caller holds the container's lock and checked `can_start`."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

from servin import atomicfile, errors
from servin.core import confinement
from servin.core import endpoints as endpoints_mod
from servin.core import resources as resources_mod
from servin.core.attach import AttachDesk
from servin.core.creation import ImageSource
from servin.core.lifecycle import CREATED, EXITED, RUNNING, ZERO_TIME, Records, now_rfc3339
from servin.core.model import Container, Ulimit
from servin.core.networking import ContainerNetworking
from servin.core.spec import Confinement, ProcessUser, RootfsLayout, build_spec
from servin.core.store import ContainerStore
from servin.core.supervision import Supervisor, WaitResult
from servin.core.users import resolve_group, resolve_user
from servin.core.volumemounts import IMAGE_SCRATCH, VolumeMounts
from servin.runtime.api import Runtime


def kernel_at_least(release: str, want: tuple[int, int]) -> bool:
    """uname -r ("6.8.0-45-generic") is `want` (major, minor) or newer."""
    parts = [int(p) for p in re.findall(r"\d+", release)[:2]]
    return len(parts) == 2 and (parts[0], parts[1]) >= want


RECURSIVE_RO = kernel_at_least(os.uname().release, (5, 12))  # mount_setattr(2)


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchSettings:
    """The daemon's settings every container starts with."""

    seccomp_profile: str | Mapping[str, Any]  # --seccomp-profile: builtin, unconfined or a profile
    no_new_privileges: bool  # the daemon's --no-new-privileges
    default_ulimits: tuple[Ulimit, ...] = ()  # the daemon's default-ulimits, for those a container does not set


class Launcher:
    def __init__(self, *, records: Records, store: ContainerStore, images: ImageSource, runtime: Runtime,
                 networking: ContainerNetworking, supervisor: Supervisor, attach: AttachDesk,
                 lookup: Callable[[str], Container], emit: Callable[..., None],
                 host_caps: Callable[[], tuple[str, ...]],
                 block_numbers: Callable[[], Callable[[list[str]], dict[str, tuple[int, int]]]],
                 settings: LaunchSettings, volume_mounts: VolumeMounts) -> None:
        self.records = records
        self.store = store
        self.images = images
        self.runtime = runtime
        self.networking = networking
        self.supervisor = supervisor
        self.attach = attach
        self.get = lookup
        self.emit = emit
        self.host_caps = host_caps
        self.block_numbers = block_numbers
        self.settings = settings
        self.volume_mounts = volume_mounts

    def log_path(self, cid: str) -> Path:
        return self.store.dir(cid) / f"{cid}-json.log"

    def exit_path(self, cid: str) -> Path:
        return self.store.dir(cid) / "exit.json"

    async def start(self, c: Container) -> None:
        image_id = c.image_id
        layers = await asyncio.to_thread(self.images.layer_dirs, image_id)
        passwd = await asyncio.to_thread(self.images.read_file, image_id, "/etc/passwd")
        group = await asyncio.to_thread(self.images.read_file, image_id, "/etc/group")
        user = resolve_user(c.resolved_user, passwd, group)
        extra_gids = tuple(resolve_group(g, group) for g in c.host_config.group_add)
        user = replace(user, additional_gids=tuple(dict.fromkeys(user.additional_gids + extra_gids)))
        d = self.store.dir(c.id)
        # `-e NAME` of a variable the client does not have arrives as "NAME": it unsets NAME, and is
        # not passed on (dockerd's container/env.go ReplaceOrAppendEnvValues)
        env = [e for e in c.resolved_env if "=" in e]
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={user.home}")
        layout = RootfsLayout(bundle=str(d), lowerdirs=tuple(str(p) for p in reversed(layers)),
                              upperdir=str(d / "upper"), workdir=str(d / "work"))
        # subpaths resolved
        mount_points = await asyncio.to_thread(self.volume_mounts.take, c, str(d / IMAGE_SCRATCH))
        try:
            netns_path = await self.networking.attach(c)
        except BaseException:
            await asyncio.to_thread(self.volume_mounts.release, c.id)
            raise
        if c.host_config.links:
            try:
                env += self.networking.link_env(c)
            except BaseException:
                await self._release(c.id)
                raise
        hostname = c.resolved_hostname
        if endpoints_mod.joined_container(c.host_config.network_mode) is not None:  # the joined one's
            hostname = (await asyncio.to_thread((d / "hostname").read_text)).strip() or hostname
        try:
            spec = build_spec(replace(c, resolved_env=tuple(env), resolved_hostname=hostname,
                                      mount_points=mount_points), layout=layout,
                              user=ProcessUser(uid=user.uid, gid=user.gid, additional_gids=user.additional_gids),
                              cgroups_path=self.runtime.cgroups_path(c.id),
                              cgroup_version=self.runtime.cgroup_version,
                              netns_path=netns_path, seccomp_default=self.settings.seccomp_profile,
                              default_ulimits=self.settings.default_ulimits,
                              confinement=await self._confinement(c),
                              block_devices=await asyncio.to_thread(
                                  self.block_numbers(), resources_mod.block_device_paths(c.host_config)))
            await asyncio.to_thread(atomicfile.write_json, d / "config.json", spec)
            exit_path = self.exit_path(c.id)
            exit_path.unlink(missing_ok=True)
            await self.runtime.create(c.id, bundle=d, log_path=self.log_path(c.id), exit_path=exit_path)
        except BaseException:
            await self._release(c.id)
            raise
        live = self.supervisor.live(c.id)
        live.supervised = True
        await self.attach.hand_over(c.id)
        try:
            pid = await self.runtime.start(c.id)
        except Exception as exc:
            await self._failed(c, exc)
        c = self.records.get(c.id) or c  # fresh after the awaits: a rename meanwhile is kept
        saved = self.records.move(c, RUNNING, pid=pid, started_at=now_rfc3339(), finished_at=ZERO_TIME,
                                  exit_code=0, error="", oom_killed=False, manually_stopped=False)
        c = saved.record or c
        self.emit(c, "start")
        self.supervisor.supervise(c, reattached=False)
        await saved

    async def _failed(self, c: Container, exc: Exception) -> NoReturn:
        """The process did not start: the container is as before (created, or exited with the error)."""
        code = getattr(exc, "exit_code", 128)
        message = getattr(exc, "message", str(exc))
        # dockerd 20.10 with runc 1.1; the CLI picks exit code 127 or 126 from these words
        full = ("OCI runtime create failed: runc create failed: unable to start container process: "
                f"{message}: unknown")
        never_ran = c.state.started_at == ZERO_TIME
        cur = self.records.get(c.id) or c
        await self.records.move(cur, CREATED if never_ran else EXITED, exit_code=code, error=full, pid=0)
        await self.runtime.delete(c.id)
        await self._release(c.id)
        self.supervisor.live(c.id).supervised = False
        self.supervisor.resolve_exit(c.id, WaitResult(status_code=code, error=full))
        raise errors.ExecFailed(full, code) from None

    async def _release(self, cid: str) -> None:
        """A start that failed: its network and its volume mounts go."""
        await self.networking.release(cid)
        await asyncio.to_thread(self.volume_mounts.release, cid)

    async def _confinement(self, c: Container) -> Confinement:
        """What the spec needs of the host and of other containers at start."""
        donors = confinement.donors(c.host_config, self.get)
        nodes = await asyncio.to_thread(confinement.resolve_devices, c.host_config)
        return Confinement(host_caps=self.host_caps(), no_new_privileges=self.settings.no_new_privileges,
                           devices=nodes, ipc_pid=donors.ipc.state.pid if donors.ipc else None,
                           pid_pid=donors.pid.state.pid if donors.pid else None,
                           recursive_ro=RECURSIVE_RO)
