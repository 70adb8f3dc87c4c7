"""A container's filesystem from outside: docker cp (stat, archive, extract), export, diff, commit.

Reads and writes of the container's root go through the helper process of runtime/rootfs.py
(the daemon never enters a namespace): a running container is reached in its own mount
namespace, a created or stopped one through an overlay the helper mounts privately. ``changes``
and ``commit`` only read the container's upper dir, which is a plain directory of the data root,
walked with directory fds and never through a symlink (images/diff.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from servin import errors
from servin.core.events import Event
from servin.core.model import Container, Status
from servin.core.users import resolve_user
from servin.core.volumemounts import resolve_subpath
from servin.images import diff
from servin.images.commit import commit_config
from servin.images.reference import parse_normalized
from servin.runtime import rootfs
from servin.runtime.rootfs import PathStat, RootfsError, RootfsTarget, TarStream

log = logging.getLogger(__name__)


class ContainerFilesystem:
    def __init__(self, *, containers: Any, images: Any, tmp_dir: Path) -> None:
        self.containers = containers  # core.containers.ContainerService
        self.images = images  # images.service.ImageService
        self.tmp_dir = tmp_dir

    # ---- where the files are ------------------------------------------------------------

    def _bundle(self, c: Container) -> Path:
        return Path(self.containers.store.dir(c.id))

    def _lowers(self, c: Container) -> list[Path]:
        """The image layers, top first."""
        return list(reversed(self.images.layer_dirs(c.image_id)))

    def _target(self, c: Container, with_volumes: bool) -> RootfsTarget:
        """with_volumes: the volumes that are mounts and the volume subpaths too (bound for docker
        cp, left out of export); a subpath is resolved here for dockerd's errors, then again by the
        helper inside the volume (a link swapped in meanwhile never leaves it)."""
        if c.state.alive and c.state.pid > 0:
            return RootfsTarget(pid=c.state.pid, upperdir=str(self._bundle(c) / "upper"))
        d = self._bundle(c)
        binds = tuple((m.source, m.destination, not m.rw, resolve_subpath(m.source, m.subpath) if m.subpath else "")
                      for m in c.mount_points if m.type in ("bind", "volume") and m.source
                      and (with_volumes or not (m.fstype or m.subpath)))
        return RootfsTarget(lowerdirs=tuple(str(p) for p in self._lowers(c)), upperdir=str(d / "upper"),
                            workdir=str(d / "work"), mountpoint=str(d / "rootfs"), binds=binds)

    async def _with_target(self, ref: str, path: str, op: Any, *,
                           with_volumes: bool = True) -> tuple[Container, Any]:
        """Run ``op(target)``; a container that stopped meanwhile is retried through its overlay,
        with its volumes that are mounts mounted (as dockerd's for docker cp) until the helper has
        bound them (its own mount namespace keeps them for the rest of the copy)."""
        c = self.containers.get(ref)
        for attempt in (0, 1):
            try:
                if (c.state.alive and c.state.pid > 0) or not with_volumes:
                    return c, await op(await asyncio.to_thread(self._target, c, with_volumes))
                user = f"{c.id}/cp/{uuid.uuid4().hex}"
                await asyncio.to_thread(self.containers.volume_mounts.lend, user, c.mount_points)
                try:
                    return c, await op(await asyncio.to_thread(self._target, c, True))
                finally:
                    await asyncio.to_thread(self.containers.volume_mounts.release, user)
            except RootfsError as exc:
                if exc.kind == "gone" and attempt == 0:
                    c = self.containers.get(c.id)
                    continue
                raise _translate(exc, path, ref) from None
        raise AssertionError("unreachable")

    def _emit(self, c: Container, action: str, **extra: str) -> None:
        attrs = {"image": c.config.image, "name": c.name, **c.config.labels, **extra}
        self.containers.events.publish(Event(type="container", action=action, actor_id=c.id, attributes=attrs))

    @staticmethod
    def _check_usable(c: Container, verb: str) -> None:
        if c.state.status == Status.DEAD:
            raise errors.Conflict(f"You cannot {verb} container {c.id} which is Dead")
        if c.state.status == Status.REMOVING:
            raise errors.Conflict(f"You cannot {verb} container {c.id} which is being removed")

    # ---- docker cp ----------------------------------------------------------------------

    async def stat_path(self, ref: str, path: str) -> PathStat:
        _, st = await self._with_target(ref, path, lambda t: rootfs.stat(t, path))
        return st

    async def archive_path(self, ref: str, path: str) -> tuple[PathStat, TarStream]:
        c, (st, stream) = await self._with_target(ref, path, lambda t: rootfs.archive(t, path))
        self._emit(c, "archive-path")
        return st, stream

    async def extract_to_dir(self, ref: str, path: str, body: AsyncIterator[bytes], *,
                             no_overwrite_dir_non_dir: bool, copy_uid_gid: bool) -> None:
        c = self.containers.get(ref)
        if getattr(c.host_config, "readonly_rootfs", False):
            raise errors.InvalidArgument("container rootfs is marked read-only")
        chown = await asyncio.to_thread(self._owner, c) if copy_uid_gid else None

        async def op(target: RootfsTarget) -> None:
            await rootfs.extract(target, path, body, no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                                 chown=chown)

        c, _ = await self._with_target(ref, path, op)
        self._emit(c, "extract-to-dir")

    def _owner(self, c: Container) -> tuple[int, int] | None:
        """copyUIDGID: the container's user (and its primary group) owns what is copied in."""
        if not c.resolved_user:
            return None
        passwd = self.images.read_file(c.image_id, "/etc/passwd")
        group = self.images.read_file(c.image_id, "/etc/group")
        u = resolve_user(c.resolved_user, passwd, group)
        return u.uid, u.gid

    # ---- docker export ------------------------------------------------------------------

    async def export(self, ref: str) -> TarStream:
        c = self.containers.get(ref)
        self._check_usable(c, "export")
        c, stream = await self._with_target(ref, "/", rootfs.export, with_volumes=False)
        self._emit(c, "export")
        return stream

    # ---- docker diff --------------------------------------------------------------------

    async def changes(self, ref: str) -> list[diff.Change]:
        c = self.containers.get(ref)
        upper = self._bundle(c) / "upper"
        return await asyncio.to_thread(lambda: diff.changes(upper, self._lowers(c)))

    # ---- docker commit ------------------------------------------------------------------

    async def commit(self, ref: str, *, container_config: dict[str, Any], config: dict[str, Any] | None,
                     changes: list[str], repo: str, tag: str, comment: str, author: str,
                     pause: bool) -> Any:
        c = self.containers.get(ref)
        self._check_usable(c, "commit")
        new_config = commit_config(container_config, changes, config)  # bad --change: fail first
        paused_here = False
        if pause and c.state.status == Status.RUNNING:
            try:
                await self.containers.pause(c.id)
                paused_here = True
            except errors.Conflict:
                pass  # it exited meanwhile: there is nothing to pause
        tmp = self.tmp_dir / f"commit-{c.id[:12]}-{uuid.uuid4().hex[:8]}.tar"
        try:
            upper, lowers = self._bundle(c) / "upper", self._lowers(c)

            def write() -> int:
                self.tmp_dir.mkdir(parents=True, exist_ok=True)
                with open(tmp, "wb") as f:
                    return diff.write_layer(upper, lowers, f)

            entries = await asyncio.to_thread(write)
        finally:
            if paused_here:
                with contextlib.suppress(errors.ServinError):
                    await self.containers.unpause(c.id)
        try:
            image = await asyncio.to_thread(
                lambda: self.images.commit_layer(
                    c.image_id, tmp if entries else None, config=new_config, container_config=container_config,
                    container_id=c.id, comment=comment, author=author, repo=repo or None, tag=tag or None))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        image_ref = ""
        if repo:  # however the client spelt it (CLI 28 sends docker.io/library/app)
            wanted = parse_normalized(repo).familiar_name()
            image_ref = next((t for t in image.repo_tags if t.rsplit(":", 1)[0] == wanted), "")
        self.images.created(image.id, tagged=image_ref)
        self._emit(c, "commit", comment=comment, imageID=image.id, imageRef=image_ref)
        return image


def _translate(exc: RootfsError, path: str, ref: str) -> errors.ServinError:
    if exc.kind == "notfound":
        return errors.NotFound(f"Could not find the file {path} in container {ref}")
    if exc.kind == "invalid":
        return errors.InvalidArgument(exc.message)
    if exc.kind == "gone":
        return errors.Conflict(f"Container {ref} is not running")
    return errors.SystemError_(exc.message)
