"""The builder's step containers on the engine (build/steps.StepContainers): a RUN step is a real
container made from the step's image, attached, started and waited for; its writable layer is
committed as the step's image, as dockerd's containerManager and CommitBuildStep do.

Every step container carries build/steps.BUILD_LABEL: ``remove_leftovers`` (daemon start) removes
those a killed daemon left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from servin import errors, stdcopy
from servin.build.steps import BUILD_LABEL, StepRun
from servin.core.containers import ContainerService
from servin.core.model import ContainerConfig, HealthConfig, HostConfig
from servin.images import diff
from servin.images.service import ImageService

log = logging.getLogger(__name__)


def container_config(run: StepRun) -> ContainerConfig:
    """The engine's ContainerConfig of a step's Docker config."""
    cfg = run.config
    entrypoint = cfg.get("Entrypoint")
    return ContainerConfig(
        image=run.image_id,
        cmd=tuple(cfg.get("Cmd") or ()),
        entrypoint=() if entrypoint in ([""], None) else tuple(entrypoint),
        env=tuple(cfg.get("Env") or ()),
        working_dir=cfg.get("WorkingDir") or "",
        user=cfg.get("User") or "",
        labels={**(cfg.get("Labels") or {}), BUILD_LABEL: run.build_id},
        attach_stdout=True,
        attach_stderr=True,
        healthcheck=HealthConfig(test=("NONE",)),  # dockerd's withoutHealthcheck
    )


def host_config(run: StepRun) -> HostConfig:
    h = run.host
    extra: dict[str, Any] = {"shm_size": h.shm_size} if h.shm_size else {}
    return HostConfig(**h.limits(), network_mode=h.network_mode or "default", extra_hosts=h.extra_hosts,
                      log_type="json-file", **extra)


class BuildSteps:
    def __init__(self, *, containers: ContainerService, images: ImageService, tmp_dir: Path) -> None:
        self.containers = containers
        self.images = images
        self.tmp_dir = tmp_dir

    async def create(self, run: StepRun) -> tuple[str, list[str]]:
        hc, warnings = self.containers.verify(host_config(run))
        c = await self.containers.create(container_config(run), hc, None)
        return c.id, warnings

    async def run(self, container_id: str, output: Callable[[int, bytes], None]) -> int:
        _, ticket = self.containers.attach_ticket(container_id)
        exited = self.containers.wait_future(container_id, "next-exit")
        attach = asyncio.ensure_future(
            self.containers.open_attach(ticket, stdin=False, stdout=True, stderr=True))
        try:
            await self.containers.start(container_id)
            stream = await attach
            if stream is not None:
                try:
                    async for f in stdcopy.frames(stream.reader):
                        output(f.stream, f.payload)
                finally:
                    with contextlib.suppress(Exception):
                        stream.writer.close()
            result = await exited
        except BaseException:
            attach.cancel()
            ticket.done()
            with contextlib.suppress(errors.ServinError):
                await self.containers.kill(container_id)
            raise
        return result.status_code

    async def commit(self, container_id: str, *, parent: str, config: dict[str, Any],
                     container_config: dict[str, Any], author: str) -> str:
        c = self.containers.get(container_id)
        upper = self.containers.store.dir(c.id) / "upper"
        tmp = self.tmp_dir / f"build-{c.id[:12]}-{uuid.uuid4().hex[:8]}.tar"

        def write_and_commit() -> str:
            lowers = list(reversed(self.images.layer_dirs(c.image_id)))
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            try:
                with open(tmp, "wb") as f:
                    entries = diff.write_layer(upper, lowers, f)
                image = self.images.commit_layer(parent, tmp if entries else None, config=config,
                                                 container_config=container_config, container_id=c.id,
                                                 author=author)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            return image.id

        image_id = await asyncio.to_thread(write_and_commit)
        self.images.created(image_id)  # a step run in a container is a commit, as dockerd's CommitBuildStep
        return image_id

    async def remove(self, container_id: str) -> None:
        with contextlib.suppress(errors.NotFound):
            await self.containers.remove(container_id, force=True, volumes=True)

    async def remove_leftovers(self, interrupted: Callable[[str], bool]) -> None:
        """Daemon start: the step containers of the builds a killed daemon did not finish
        (``interrupted(build id)``); a failed step's container that ``rm`` keeps stays, as dockerd's."""
        for c in self.containers.list():
            if interrupted(c.config.labels.get(BUILD_LABEL, "")):
                log.info("removing intermediate container %s of an interrupted build", c.id[:12])
                try:
                    await self.remove(c.id)
                except errors.ServinError as exc:
                    log.warning("cannot remove intermediate container %s: %s", c.id[:12], exc.message)
