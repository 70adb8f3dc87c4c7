"""The classic builder (dockerd's builder/dockerfile): the context received, the Dockerfile parsed,
the stages a --target needs dispatched step by step with dockerd's output, the image tagged.

    builder = Builder(images=..., steps=..., work_root=data_root / "builder", pull=...)
    result = await builder.build(options, body_chunks, sink)    # sink gets StreamText / ImageBuilt / progress

Each build works in ``work_root/<build id>/`` (the context, layer tars), removed when it ends; a
directory left there names a build a killed daemon interrupted (``interrupted``), whose step
containers the next start removes. The ledger (ledger.py, ``buildcache.json`` beside ``work_root``) records the
step images each build made or reused and its result: the build cache that ``docker system df``
shows and ``docker builder prune`` frees (core/buildcache.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from servin import errors, safefs
from servin.build import context, remote
from servin.build import instructions as ins
from servin.build.buildargs import BuildArgs, declare_meta_args
from servin.build.cache import CacheProbe
from servin.build.dispatch import dispatch
from servin.build.dockerfile import Dockerfile, needed_stages, parse_dockerfile, parse_trigger, resolve_base
from servin.build.executor import Executor, short_id
from servin.build.ledger import LEDGER_NAME, BuildLedger
from servin.build.options import BuildOptions, BuildResult
from servin.build.state import StageState
from servin.build.steps import BuildImages, BuildSink, ImageBuilt, Puller, StepContainers, StreamText
from servin.images.model import Image, host_architecture
from servin.images.reference import parse_normalized

RED, RESET = "\033[91m", "\033[0m"


def check_platform(platform: str) -> None:
    """FROM --platform: the host's only (Servin runs no foreign binaries)."""
    os_, _, rest = platform.lower().partition("/")
    arch = rest.partition("/")[0]
    if platform and (os_ != "linux" or (arch and arch != host_architecture())):
        raise errors.InvalidArgument(f"FROM --platform={platform} is not supported: Servin builds for "
                                     f"linux/{host_architecture()} only")


class Builder:
    def __init__(self, *, images: BuildImages, steps: StepContainers, work_root: Path,
                 pull: Puller | None = None) -> None:
        self.images = images
        self.steps = steps
        self.work_root = work_root
        self.pull = pull
        self.ledger = BuildLedger(work_root.parent / LEDGER_NAME)
        self.active: set[str] = set()  # the builds under way (their work directories are in use)

    def interrupted(self, build_id: str) -> bool:
        """A build a killed daemon left unfinished (its work directory is still there)."""
        return bool(build_id) and "/" not in build_id and (self.work_root / build_id).is_dir()

    def clean(self) -> None:
        """Daemon start, after the interrupted builds' containers are gone: their work directories."""
        if self.work_root.is_dir():
            for d in self.work_root.iterdir():
                safefs.remove_tree(d, ignore_errors=True)

    async def build(self, options: BuildOptions, body: AsyncIterator[bytes], sink: BuildSink) -> BuildResult:
        build_id = uuid.uuid4().hex
        work = self.work_root / build_id
        work.mkdir(mode=0o700, parents=True)
        self.active.add(build_id)
        run: _Build | None = None
        image_id = ""
        try:
            if options.remote:
                ctx = await remote.fetch(options.remote, work / "remote", sink)
            else:
                ctx = work / "context"
                await context.receive(body, ctx)
            name, text = await asyncio.to_thread(context.read_dockerfile, ctx, options.dockerfile)
            await asyncio.to_thread(context.apply_dockerignore, ctx, name)
            dockerfile = parse_dockerfile(text, name=name)
            run = _Build(self, options, sink, build_id=build_id, work=work, ctx=ctx)
            image_id = await run.execute(dockerfile)
            if options.squash:  # dockerd's squashBuild: on the last stage's FROM image
                image_id = (await asyncio.to_thread(self.images.squash, image_id, run.from_image)).id
                sink(ImageBuilt(image_id, id="moby.image.id"))
        finally:
            self.active.discard(build_id)
            await asyncio.to_thread(safefs.remove_tree, work, ignore_errors=True)
            if run is not None and run.made:
                await asyncio.to_thread(self.ledger.record, run.made, image_id)
        sink(StreamText(f"Successfully built {short_id(image_id)}\n"))
        tagged = []
        for t in options.tags:
            ref = parse_normalized(t)
            if ref.tag is None and ref.digest is None:
                ref = ref.with_tag("latest")
            await self.images.tag_image(image_id, ref.familiar_name(), ref.tag or "latest")
            tagged.append(ref.familiar())
            sink(StreamText(f"Successfully tagged {ref.familiar()}\n"))
        return BuildResult(image_id=image_id, tags=tuple(tagged))


class _Build:
    """One build's walk over its stages."""

    def __init__(self, builder: Builder, options: BuildOptions, sink: BuildSink, *, build_id: str, work: Path,
                 ctx: Path) -> None:
        self.b = builder
        self.images = builder.images
        self.options = options
        self.sink = sink
        self.ctx = ctx
        self.stage_images: dict[int, str] = {}
        self.stage_names: dict[str, int] = {}
        self.cache = CacheProbe(images=builder.images, enabled=not options.no_cache)
        self.ex = Executor(images=builder.images, steps=builder.steps, sink=sink, options=options,
                           build_id=build_id, work_dir=work, cache=self.cache)
        self.made: list[str] = []  # the step images, made or reused, in order
        self.step = 0
        self.total = 0
        self.escape = "\\"
        self.from_image = ""  # the last stage's FROM image ("" for scratch)

    def say(self, text: str) -> None:
        self.sink(StreamText(text))

    def _print_step(self, text: object) -> None:
        self.step += 1
        self.say(f"Step {self.step}/{self.total} : {text}\n")

    async def execute(self, df: Dockerfile) -> str:
        self.escape = df.escape
        for line in df.warning_lines():
            self.say(RED + line + RESET)
        if df.syntax:
            self.say(f"{RED}[WARNING]: the syntax directive ({df.syntax}) is ignored: Servin's classic builder "
                     f"runs the Dockerfile itself\n{RESET}")
        stages = df.up_to(self.options.target)
        args = BuildArgs(self.options.build_args)
        labels = [ins.label_option(k, v) for k, v in sorted(self.options.labels.items())]
        self.total = df.step_count(stages, extra=len(labels))
        for meta in df.meta_args:
            self._print_step(meta)
            declare_meta_args(args, meta.pairs, escape=df.escape)
        needed = needed_stages(stages, args.meta(), escape=df.escape)
        skipped = [i for i in range(len(stages)) if i not in needed]
        self.total -= sum(1 + len(stages[i].commands) for i in skipped)
        self.cache.sources = await self._cache_from()
        self.cache.sources_asked = bool(self.options.cache_from)
        image_id = ""
        for i in needed:
            stage = stages[i]
            last = i == len(stages) - 1
            image_id = await self._stage(i, stage, args, (*stage.commands, *(labels if last else ())))
        if (warning := args.unused_warning()) is not None:
            self.say(warning)
        if not image_id:
            raise errors.InvalidArgument("No image was generated. Is your Dockerfile empty?")
        return image_id

    async def _cache_from(self) -> list[Image]:
        """--cache-from: those images (one that is missing is skipped, as dockerd does)."""
        def found() -> list[Image]:
            return [self.images.get(ref) for ref in self.options.cache_from if self.images.exists(ref)]

        return await asyncio.to_thread(found)

    async def _stage(self, index: int, stage: ins.Stage, args: BuildArgs,
                     commands: tuple[ins.Instruction, ...]) -> str:
        self.cache.reset()
        self._print_step(stage)
        stage_args = args.for_stage()
        base, platform = resolve_base(stage, args.meta(), escape=self.escape)
        check_platform(platform)
        state = await self._begin(base, stage_args, stage.name)
        self.from_image = state.image_id
        async with self._step_outcome():
            if state.triggers:
                await self._triggers(state)
                self.made.append(state.image_id)
            await self.ex.finish_step(succeeded=True)
        self.say(f" ---> {short_id(state.image_id)}\n")
        for instr in commands:
            self._print_step(instr)
            async with self._step_outcome():
                await dispatch(self.ex, state, instr, trees=self._tree, escape=self.escape)
            await self.ex.finish_step(succeeded=True)
            if state.image_id:
                self.made.append(state.image_id)
            self.say(f" ---> {short_id(state.image_id)}\n")
        if state.image_id:
            self.sink(ImageBuilt(state.image_id))
        self.stage_images[index] = state.image_id
        if stage.name:
            self.stage_names[stage.name] = index
        args.merge_referenced(state.build_args)
        return state.image_id

    @contextlib.asynccontextmanager
    async def _step_outcome(self) -> AsyncIterator[None]:
        """A step that fails is finished as failed; one that is cancelled (the client left) is abandoned."""
        try:
            yield
        except asyncio.CancelledError:
            await self.ex.abandon()
            raise
        except BaseException:
            await self._failed()
            raise

    async def _failed(self) -> None:
        await self.ex.finish_step(succeeded=False)

    async def _triggers(self, state: StageState) -> None:
        triggers, state.triggers = state.triggers, []
        self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
        for expression in triggers:
            await dispatch(self.ex, state, parse_trigger(expression), trees=self._tree, escape=self.escape)

    async def _begin(self, base: str, args: BuildArgs, name: str) -> StageState:
        """FROM: an earlier stage, scratch, or an image (pulled when missing or with --pull)."""
        if base.lower() in self.stage_names:
            image_id = self.stage_images[self.stage_names[base.lower()]]
            if not image_id:  # a stage that is FROM scratch and nothing else
                return StageState.begin("", None, args, name=name)
        elif base == "scratch":
            return StageState.begin("", None, args, name=name)
        else:
            image_id = await self._image(base, always_pull=self.options.pull)
        img = await asyncio.to_thread(self.images.get, image_id)
        return StageState.begin(img.id, img.run_config, args, name=name)

    async def _image(self, ref: str, *, always_pull: bool) -> str:
        if always_pull or not await asyncio.to_thread(self.images.exists, ref):
            if self.b.pull is None:
                raise errors.NotFound(f"No such image: {ref}")
            await self.b.pull(ref, self.options.platform, self.options.registry_auth, self.sink)
        return (await asyncio.to_thread(self.images.get, ref)).id

    async def _tree(self, from_: str) -> tuple[list[Path], bool]:
        """The files COPY reads: the context, an earlier stage's image (by name or index), an image."""
        if not from_:
            return [self.ctx], True
        if from_.lower() in self.stage_names:
            image_id = self.stage_images[self.stage_names[from_.lower()]]
        elif from_.isdigit() and int(from_) in self.stage_images:
            image_id = self.stage_images[int(from_)]
        else:
            image_id = await self._image(from_, always_pull=False)
        if not image_id:
            return [], False
        layers = await asyncio.to_thread(self.images.layer_dirs, image_id)
        return list(reversed(layers)), False
