"""`DOCKER_BUILDKIT=0 docker build --squash` against a daemon started with --experimental, as dockerd's
classic builder squashes: the FROM image's layers plus one, the build's history kept as empty layers
plus the merge entry, files a later step deleted absent; refused without --experimental."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.daemon import ServinDaemon, running_daemon

pytestmark = pytest.mark.e2e

DOCKERFILE = """FROM busybox
RUN echo kept > /kept && dd if=/dev/zero of=/big bs=1024 count=256
RUN rm /big /etc/group
COPY file.txt /data/
ENV X=1
CMD ["sh", "-c", "cat /kept /data/file.txt; echo $X; ls /big /etc/group 2>&1; true"]
"""


@pytest.fixture(scope="module")
def experimental() -> Iterator[ServinDaemon]:
    with running_daemon(("--experimental",)) as d:
        yield d


def build(d: ServinDaemon, ctx: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["docker", "build", *args, str(ctx)], env=dict(d.env, DOCKER_BUILDKIT="0"),
                          capture_output=True, timeout=180)


def context(tmp_path: Path, dockerfile: str = DOCKERFILE) -> Path:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    (tmp_path / "file.txt").write_text("copied\n")
    return tmp_path


def inspect(d: ServinDaemon, ref: str) -> dict:
    return json.loads(d.docker("image", "inspect", ref).stdout)[0]


def test_info_and_version_say_experimental(experimental: ServinDaemon) -> None:
    assert experimental.docker("version", "--format", "{{.Server.Experimental}}").stdout.decode().strip() == "true"
    assert experimental.docker("info", "--format", "{{.ExperimentalBuild}}").stdout.decode().strip() == "true"


def test_squashed_image_as_dockerd(experimental: ServinDaemon, tmp_path: Path) -> None:
    d = experimental
    res = build(d, context(tmp_path), "--squash", "-t", "squashed", "--iidfile", str(tmp_path / "iid"))
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode() + d.log()
    out = res.stdout.decode().splitlines()
    squashed = inspect(d, "squashed")
    assert out[-2] == f"Successfully built {squashed['Id'][7:19]}" and out[-1] == "Successfully tagged squashed:latest"
    assert (tmp_path / "iid").read_text() == squashed["Id"]
    base = inspect(d, "busybox")
    layers = squashed["RootFS"]["Layers"]
    assert layers[:-1] == base["RootFS"]["Layers"] and len(layers) == len(base["RootFS"]["Layers"]) + 1
    assert squashed["Parent"] == "" and squashed["Config"]["Env"][-1] == "X=1"
    # the unsquashed image stays (the build cache), its id is the one the merge entry names
    unsquashed = [ln.split()[-1] for ln in out if ln.startswith(" ---> ")][-1]
    hist = d.docker("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
                    "squashed").stdout.decode().splitlines()
    top_id, top_by, top_size, comment = hist[0].split("|")
    assert top_id == squashed["Id"] and top_by == "" and top_size != "0B"
    assert comment.startswith("merge sha256:" + unsquashed) and comment.endswith(" to " + base["Id"])
    rows = [h.split("|") for h in hist[1:]]
    assert all(r[0] == "<missing>" for r in rows)
    build_rows = rows[:5]  # CMD, ENV, COPY, RUN rm, RUN echo: all empty layers now
    assert [r[2] for r in build_rows] == ["0B"] * 5
    assert build_rows[0][1].startswith("/bin/sh -c #(nop)  CMD") and build_rows[4][1].startswith("/bin/sh -c echo kept")
    assert len(rows) == len(d.docker("history", "-q", "busybox").stdout.decode().split()) + 5
    run = d.docker("run", "--rm", "squashed").stdout.decode()
    assert run.startswith("kept\ncopied\n1\n")
    assert "/big: No such file or directory" in run and "/etc/group: No such file or directory" in run
    # the deleted 256 KiB file is in no layer: the squashed layer is small
    size = squashed["Size"] - base["Size"]
    assert 0 < size < 64 * 1024, size


def test_metadata_only_build_fails_as_dockerd(experimental: ServinDaemon, tmp_path: Path) -> None:
    res = build(experimental, context(tmp_path, "FROM busybox\nENV A=1\n"), "--squash")
    assert res.returncode != 0
    assert ("error squashing image: error getting tar stream to parent: layer ID 'sha256:"
            in res.stderr.decode()), res.stderr.decode()
    assert "cannot provide diff to non-parent" in res.stderr.decode()


def test_squash_refused_without_experimental(servin: ServinDaemon, tmp_path: Path) -> None:
    assert servin.docker("version", "--format", "{{.Server.Experimental}}").stdout.decode().strip() == "false"
    res = build(servin, context(tmp_path), "--squash")  # the CLI reads Docker-Experimental: false
    assert res.returncode != 0
    assert ('"--squash" is only supported on a Docker daemon with experimental features enabled'
            in res.stderr.decode())
    # the API itself (docker-py, curl) refuses as dockerd does
    client = docker.APIClient(base_url=servin.host, version="1.41")
    try:
        r = client._post(client._url("/build"), params={"squash": "1"}, data=b"")
        assert r.status_code == 400 and r.json()["message"] == "squash is only supported with experimental mode"
    finally:
        client.close()
