"""How a step becomes an image, with dockerd's messages: the cache probe (`` ---> Using cache``), a
commit of the run config alone (ENV, CMD, ...: an ``empty_layer`` history entry), a layer written
by the builder (COPY, ADD, WORKDIR) or a RUN in a step container (`` ---> Running in <id>``), and
the intermediate containers removed after the step (``Removing intermediate container <id>``) with
``rm`` when it succeeded, with ``forcerm`` always.

A metadata-only step needs no process: unless ``rm`` is off (the user wants the containers kept),
its container exists by ID only, as dockerd's would for the moment between its create and remove.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from servin import errors
from servin.build.cache import CacheProbe
from servin.build.layer import LayerWriter
from servin.build.options import BuildOptions
from servin.build.state import StageState
from servin.build.steps import BuildImages, BuildSink, StepContainers, StepRun, StreamText

RED, RESET = "\033[91m", "\033[0m"  # dockerd's stderr writer wraps what a step writes to stderr


class StepFailed(errors.InvalidArgument):
    """A RUN exited non-zero: dockerd's message, the code in errorDetail."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


class Executor:
    def __init__(self, *, images: BuildImages, steps: StepContainers, sink: BuildSink, options: BuildOptions,
                 build_id: str, work_dir: Path, cache: CacheProbe) -> None:
        self.images = images
        self.steps = steps
        self.sink = sink
        self.options = options
        self.build_id = build_id
        self.work_dir = work_dir
        self.cache = cache
        self._pending: list[tuple[str, bool]] = []  # (container id, it exists) to remove after the step

    def say(self, text: str) -> None:
        self.sink(StreamText(text))

    def output(self, stream: int, data: bytes) -> None:
        text = data.decode("utf-8", "replace")
        self.say(RED + text + RESET if stream == 2 else text)

    def probe(self, state: StageState, config: dict[str, Any]) -> bool:
        cached = self.cache.probe(state.image_id, config, state.config_copy())
        if cached is None:
            return False
        self.say(" ---> Using cache\n")
        state.updated(cached)
        return True

    def _container_id(self) -> str:
        cid = secrets.token_hex(32)
        self._pending.append((cid, False))
        self.say(f" ---> Running in {cid[:12]}\n")
        return cid

    async def _step_container(self, state: StageState, config: dict[str, Any]) -> str:
        cid, warnings = await self.steps.create(StepRun(image_id=state.image_id, config=config,
                                                        host=self.options.host, build_id=self.build_id))
        self._pending.append((cid, True))
        for warning in warnings:
            self.say(f" ---> [Warning] {warning}\n")
        self.say(f" ---> Running in {cid[:12]}\n")
        return cid

    async def commit(self, state: StageState, container_config: dict[str, Any]) -> None:
        """A metadata-only step (dockerd's commit): the run config with ``container_config`` as its record."""
        if self.probe(state, container_config):
            return
        if not self.options.remove and state.image_id:
            cid = await self._step_container(state, container_config)
            image_id = await self.steps.commit(cid, parent=state.image_id, config=state.config_copy(),
                                               container_config=container_config, author=state.maintainer)
        else:
            cid = self._container_id()
            image = await asyncio.to_thread(
                self.images.commit_layer, state.image_id, None, config=state.config_copy(),
                container_config=container_config, container_id=cid, author=state.maintainer)
            image_id = image.id
        state.updated(image_id)

    async def commit_layer(self, state: StageState, container_config: dict[str, Any],
                           write: Callable[[LayerWriter], None], *, announce: bool) -> None:
        """A step whose layer the builder writes (``write`` fills it, in a worker thread); ``announce``:
        dockerd ran it in a container (WORKDIR), so the output names one."""
        if self.probe(state, container_config):
            return
        cid = self._container_id() if announce else ""
        tmp = self.work_dir / f"layer-{uuid.uuid4().hex[:12]}.tar"

        def build() -> str:
            layers = list(reversed(self.images.layer_dirs(state.image_id))) if state.image_id else []
            try:
                with open(tmp, "wb") as f:
                    writer = LayerWriter(f, layers)
                    try:
                        write(writer)
                    finally:
                        writer.close()
                image = self.images.commit_layer(
                    state.image_id, tmp if writer.count else None, config=state.config_copy(),
                    container_config=container_config, container_id=cid, author=state.maintainer)
                return image.id
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

        state.updated(await asyncio.to_thread(build))

    async def run(self, state: StageState, run_config: dict[str, Any], record: dict[str, Any]) -> None:
        """A RUN: ``run_config`` is the step container's, ``record`` what the image records (the cache key)."""
        if self.probe(state, record):
            return
        if not state.image_id:
            raise errors.InvalidArgument("Please provide a source image with `from` prior to run")
        cid = await self._step_container(state, run_config)
        code = await self.steps.run(cid, self.output)
        if code != 0:
            cmd = " ".join(run_config.get("Cmd") or [])
            raise StepFailed(f"The command '{cmd}' returned a non-zero code: {code}", code)
        config = state.config_copy()
        image_id = await self.steps.commit(cid, parent=state.image_id, config=config, container_config=record,
                                           author=state.maintainer)
        state.updated(image_id)

    async def finish_step(self, *, succeeded: bool) -> None:
        """After each step (dockerd's deferred RemoveAll): ``forcerm`` always, ``rm`` on success."""
        if not (self.options.force_remove or (self.options.remove and succeeded)):
            self._pending = []  # kept, as dockerd keeps them (a failed step's container with rm)
            return
        pending, self._pending = self._pending, []
        for cid, real in pending:
            if real:
                await self.steps.remove(cid)
            self.say(f"Removing intermediate container {cid[:12]}\n")

    async def abandon(self) -> None:
        """The build ends early (an error, the client gone): the step containers go whatever ``rm`` says."""
        pending, self._pending = self._pending, []
        for cid, real in pending:
            if real:
                with contextlib.suppress(errors.ServinError):
                    await self.steps.remove(cid)
