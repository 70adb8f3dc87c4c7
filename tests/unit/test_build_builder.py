"""The builder's dispatch, messages and cache policy over a real image store and fake step containers."""

from __future__ import annotations

import asyncio
import io
import re
import secrets
import tarfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from servin.build import gofmt
from servin.build.builder import Builder
from servin.build.cache import same_config
from servin.build.executor import StepFailed
from servin.build.options import BuildOptions
from servin.build.sources import go_match
from servin.build.steps import BuildMessage, ImageBuilt, StepRun, StreamText
from servin.errors import ServinError
from servin.images.seed import write_busybox_archive
from servin.images.service import ImageService
from tests.support.buildcontext import context


class FakeSteps:
    """Step containers that print, exit with ``code`` and commit nothing but the config."""

    def __init__(self, images: ImageService) -> None:
        self.images = images
        self.code = 0
        self.created: list[tuple[str, StepRun]] = []
        self.removed: list[str] = []

    async def create(self, run: StepRun) -> tuple[str, list[str]]:
        cid = secrets.token_hex(32)
        self.created.append((cid, run))
        return cid, []

    async def run(self, container_id: str, output: Callable[[int, bytes], None]) -> int:
        output(1, b"out\n")
        output(2, b"err\n")
        return self.code

    async def commit(self, container_id: str, *, parent: str, config: dict[str, Any],
                     container_config: dict[str, Any], author: str) -> str:
        return self.images.commit_layer(parent, None, config=config, container_config=container_config,
                                        container_id=container_id, author=author).id

    async def remove(self, container_id: str) -> None:
        self.removed.append(container_id)


@pytest.fixture(scope="module")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seed") / "busybox.tar"
    write_busybox_archive(out)
    return out


@pytest.fixture
def images(tmp_path: Path, busybox_archive: Path) -> ImageService:
    svc = ImageService(tmp_path / "image")
    svc.load_archive(busybox_archive)
    return svc


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 1000):
        yield data[i:i + 1000]


class Run:
    def __init__(self, images: ImageService, tmp: Path) -> None:
        self.steps = FakeSteps(images)
        self.builder = Builder(images=images, steps=self.steps, work_root=tmp / "builder")

    def build(self, files: dict[str, str], **options: Any) -> tuple[list[BuildMessage], str | Exception]:
        messages: list[BuildMessage] = []

        async def go() -> str:
            result = await self.builder.build(BuildOptions(**options), chunks(context(files)), messages.append)
            return result.image_id

        try:
            return messages, asyncio.run(go())
        except ServinError as exc:
            return messages, exc


def text(messages: list[BuildMessage]) -> list[str]:
    return "".join(m.text for m in messages if isinstance(m, StreamText)).splitlines()


@pytest.fixture
def run(images: ImageService, tmp_path: Path) -> Run:
    return Run(images, tmp_path)


def test_steps_print_as_dockerd_and_the_image_is_announced(run: Run, images: ImageService) -> None:
    msgs, image_id = run.build({"Dockerfile": "FROM busybox\nRUN echo hi\nENV A=1\n"}, tags=("t",))
    assert isinstance(image_id, str)
    lines = text(msgs)
    assert lines[0] == "Step 1/3 : FROM busybox" and re.fullmatch(r" ---> [0-9a-f]{12}", lines[1])
    assert lines[2:5] == ["Step 2/3 : RUN echo hi", f" ---> Running in {run.steps.created[0][0][:12]}", "out"]
    assert lines[5] == "\033[91merr"  # stderr as dockerd's stderr writer wraps it
    assert lines[6] == f"\033[0mRemoving intermediate container {run.steps.created[0][0][:12]}"
    assert lines[-2:] == [f"Successfully built {image_id[7:19]}", "Successfully tagged t:latest"]
    assert ImageBuilt(image_id) in msgs
    assert run.steps.removed == [run.steps.created[0][0]]  # ENV needed no container
    (cid, step), = run.steps.created
    assert step.config["Cmd"] == ["/bin/sh", "-c", "echo hi"] and step.config["Entrypoint"] == [""]
    history = images.history(image_id)
    assert history[0].created_by == "/bin/sh -c #(nop)  ENV A=1"
    assert history[1].created_by == "/bin/sh -c echo hi"
    assert images.get(image_id).parent == history[1].id


def test_cache_hits_until_the_first_changed_step(run: Run) -> None:
    df = "FROM busybox\nRUN echo one\nRUN echo two\nLABEL x=1\n"
    _, first = run.build({"Dockerfile": df})
    msgs, again = run.build({"Dockerfile": df})
    assert again == first and text(msgs).count(" ---> Using cache") == 3
    msgs, _ = run.build({"Dockerfile": df.replace("two", "TWO")})
    assert text(msgs).count(" ---> Using cache") == 1
    msgs, _ = run.build({"Dockerfile": df}, no_cache=True)
    assert text(msgs).count(" ---> Using cache") == 0


def test_build_args_are_part_of_a_runs_cache_key(run: Run, images: ImageService) -> None:
    df = "FROM busybox\nARG V\nRUN echo $V\n"
    _, a = run.build({"Dockerfile": df}, build_args={"V": "a"})
    msgs, b = run.build({"Dockerfile": df}, build_args={"V": "b"})
    assert a != b and text(msgs).count(" ---> Using cache") == 1
    assert images.history(str(b))[0].created_by == "|1 V=b /bin/sh -c echo $V"
    msgs, _ = run.build({"Dockerfile": df}, build_args={"V": "b", "UNUSED": "x"})
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in text(msgs)


def test_copy_records_the_content_checksum(run: Run, images: ImageService) -> None:
    df = "FROM busybox\nCOPY f /f\n"
    _, a = run.build({"Dockerfile": df, "f": "one"})
    msgs, same = run.build({"Dockerfile": df, "f": "one"})
    assert same == a and " ---> Using cache" in text(msgs)
    _, other = run.build({"Dockerfile": df, "f": "two"})
    assert other != a
    created = images.history(str(a))[0].created_by
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /f ", created)
    _, many = run.build({"Dockerfile": "FROM busybox\nCOPY f g /d/\n", "f": "1", "g": "2"})
    assert re.search(r"COPY multi:[0-9a-f]{64} in /d/ $", images.history(str(many))[0].created_by)


def test_failed_run_keeps_its_container_with_rm_and_not_with_forcerm(run: Run) -> None:
    run.steps.code = 2
    msgs, err = run.build({"Dockerfile": "FROM busybox\nRUN false\n"})
    assert isinstance(err, StepFailed) and err.code == 2
    assert err.message == "The command '/bin/sh -c false' returned a non-zero code: 2"
    assert run.steps.removed == []
    msgs, err = run.build({"Dockerfile": "FROM busybox\nRUN false\n"}, force_remove=True)
    assert run.steps.removed == [run.steps.created[-1][0]]


def test_without_rm_metadata_steps_get_real_containers(run: Run) -> None:
    run.build({"Dockerfile": "FROM busybox\nENV A=1\n"}, remove=False)
    assert len(run.steps.created) == 1 and run.steps.removed == []


def test_multi_stage_skips_what_the_target_does_not_need(run: Run, images: ImageService) -> None:
    df = "FROM busybox AS a\nRUN echo a\nFROM busybox AS b\nRUN echo b\nFROM a\nLABEL final=1\n"
    msgs, image_id = run.build({"Dockerfile": df})
    assert [ln for ln in text(msgs) if ln.startswith("Step")] == [
        "Step 1/4 : FROM busybox AS a", "Step 2/4 : RUN echo a", "Step 3/4 : FROM a", "Step 4/4 : LABEL final=1"]
    assert sum(isinstance(m, ImageBuilt) for m in msgs) == 2
    msgs, target = run.build({"Dockerfile": df}, target="b")
    assert "Step 2/2 : RUN echo b" in text(msgs)


def test_onbuild_triggers_run_in_the_child(run: Run) -> None:
    _, parent = run.build({"Dockerfile": "FROM busybox\nONBUILD RUN echo trig\n"}, tags=("parent",))
    msgs, _ = run.build({"Dockerfile": "FROM parent\n"})
    lines = text(msgs)
    assert lines[1] == "# Executing 1 build trigger" and " ---> Running in" in lines[2]
    assert run.steps.created[-1][1].config["Cmd"] == ["/bin/sh", "-c", "echo trig"]


def test_errors_as_dockerd(run: Run) -> None:
    _, err = run.build({"Dockerfile": "FROM busybox\nCOPY a b /notadir\n", "a": "", "b": ""})
    assert str(err) == ("When using COPY with more than one source file, the destination must be a directory and "
                        "end with a /")
    _, err = run.build({"Dockerfile": "FROM busybox\nCOPY nope /x\n"})
    assert str(err) == ("COPY failed: file not found in build context or excluded by .dockerignore: stat nope: "
                        "file does not exist")
    _, err = run.build({"Dockerfile": "FROM busybox\nCOPY *.none /x/\n"})
    assert str(err) == "COPY failed: no source files were specified"
    _, err = run.build({"Dockerfile": "FROM busybox\nSTOPSIGNAL NOPE\n"})
    assert str(err) == "Invalid signal: NOPE"
    _, err = run.build({"x": ""}, dockerfile="Dockerfile")
    assert str(err) == "Cannot locate specified Dockerfile: Dockerfile"


def test_the_build_leaves_no_work_directory(run: Run, tmp_path: Path) -> None:
    run.build({"Dockerfile": "FROM busybox\nCOPY f /f\n", "f": "x"})
    assert list((tmp_path / "builder").iterdir()) == []


def test_same_config_is_dockerds_compare() -> None:
    base = {"Cmd": ["a"], "Env": ["A=1"], "Labels": {"x": "1"}, "ExposedPorts": {"80/tcp": {}}}
    assert same_config(base, dict(base, WorkingDir="/elsewhere"))  # not compared, as dockerd
    assert not same_config(base, dict(base, Cmd=["b"]))
    assert not same_config(base, dict(base, Labels={"x": "2"}))
    assert not same_config(base, dict(base, OpenStdin=True))


def test_go_formats() -> None:
    assert [gofmt.duration(n) for n in (0, 5 * 10**9, 300 * 10**9, 3600 * 10**9, 1_500_000_000, 100_000_000)] == [
        "0s", "5s", "5m0s", "1h0m0s", "1.5s", "100ms"]
    assert gofmt.quote_list(["sh", "-c", 'say "hi"']) == '["sh" "-c" "say \\"hi\\""]'
    assert gofmt.healthcheck({"Test": ["CMD", "true"], "Retries": 3}) == '&{["CMD" "true"] "0s" "0s" "0s" \'\\x03\'}'
    assert go_match("*.txt", "a.txt") and not go_match("*.txt", "d/a.txt") and go_match("d/[ab].txt", "d/a.txt")


def test_syntax_directive_warns_and_foreign_platforms_are_refused(run: Run) -> None:
    msgs, image_id = run.build({"Dockerfile": "# syntax=docker/dockerfile:1\nFROM busybox\n"})
    assert isinstance(image_id, str)
    assert "the syntax directive (docker/dockerfile:1) is ignored" in "".join(text(msgs))
    _, err = run.build({"Dockerfile": "FROM --platform=linux/nope busybox\n"})
    assert "FROM --platform=linux/nope is not supported" in str(err)
    _, err = run.build({"Dockerfile": "FROM busybox\nADD http://127.0.0.1:1/ /x\n"})
    assert str(err) == "cannot determine filename from url: http://127.0.0.1:1/"


def test_a_context_without_its_end_blocks_is_read_as_the_cli_sends_it(run: Run, images: ImageService) -> None:
    data = context({"Dockerfile": "FROM busybox\nCOPY f /f\n", "f": "abc"})
    last = list(tarfile.open(fileobj=io.BytesIO(data)))[-1]
    truncated = data[:last.offset_data + last.size]  # as the CLI's -f outside the context sends it

    async def go() -> str:
        result = await run.builder.build(BuildOptions(), chunks(truncated), lambda m: None)
        return result.image_id

    image_id = asyncio.run(go())
    assert images.history(image_id)[0].size == 3


def test_cache_from_an_image_without_its_parents(run: Run, images: ImageService, tmp_path: Path,
                                                 busybox_archive: Path) -> None:
    from servin.images import save

    df = {"Dockerfile": "FROM busybox\nCOPY f /f\nRUN echo a\nENV X=1\n", "f": "data"}
    _, built = run.build(df, tags=("src:1",))
    archive = tmp_path / "src.tar"
    with open(archive, "wb") as f:
        save.write_archive(images, images.save_selection(["src:1"]), f)
    pulled = ImageService(tmp_path / "elsewhere")  # as after a pull: no parents recorded
    pulled.load_archive(busybox_archive)
    pulled.load_archive(archive)
    other = Run(pulled, tmp_path / "other")
    msgs, without = other.build(df)
    assert " ---> Using cache" not in text(msgs)
    msgs, again = other.build(df, cache_from=("src:1", "missing:1"))
    assert text(msgs).count(" ---> Using cache") == 3 and again == built
    assert pulled.get(str(built)).parent != ""  # the restored chain is recorded


def test_cache_from_only_missing_images_uses_no_cache(run: Run) -> None:
    """dockerd: with --cache-from, a local match counts only in a source's chain; none found, no cache
    (docker-py's test_build_with_cache_from asks for `nosuchtag`)."""
    df = {"Dockerfile": "FROM busybox\nENV FOO=bar\nRUN touch baz\n"}
    run.build(df, tags=("build1",))
    msgs, _ = run.build(df, cache_from=("build1",))
    assert text(msgs).count(" ---> Using cache") == 2
    msgs, _ = run.build(df, cache_from=("nosuchtag",))
    assert " ---> Using cache" not in text(msgs)


def test_from_scratch_stages(run: Run, images: ImageService) -> None:
    df = "FROM scratch AS empty\nFROM empty AS files\nCOPY f /f\nENV A=1\nFROM busybox\nCOPY --from=files /f /g\n"
    msgs, image_id = run.build({"Dockerfile": df, "f": "x"})
    assert isinstance(image_id, str), image_id
    files = [m.image_id for m in msgs if isinstance(m, ImageBuilt)][0]
    assert len(images.get(files).diff_ids) == 1  # the COPY on scratch
    assert images.history(image_id)[0].size == 1


def test_a_compressed_context_and_a_bare_dockerfile(run: Run, images: ImageService) -> None:
    import gzip

    async def go(body: bytes) -> str:
        return (await run.builder.build(BuildOptions(), chunks(body), lambda m: None)).image_id

    zipped = gzip.compress(context({"Dockerfile": "FROM busybox\nCOPY f /f\n", "f": "zz"}))
    assert images.history(asyncio.run(go(zipped)))[0].size == 2
    bare = asyncio.run(go(b"FROM busybox\nENV BARE=1\n"))  # docker build - < Dockerfile
    assert "BARE=1" in images.get(bare).env
