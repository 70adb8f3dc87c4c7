"""The classic builder's cache through the docker CLI (`docker system df -v`, `docker builder
prune -f`) and docker-py (`df()`, `prune_builds()`): step images listed, pruned with their delete
events, rebuilt by the next build; and a context file named like a whiteout copied as it is."""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from pathlib import Path

import docker
import pytest

from tests.e2e.test_build import build, out, write
from tests.support.daemon import ServinDaemon

pytestmark = pytest.mark.e2e

MULTI = ("FROM busybox AS tool\nRUN head -c 4096 /dev/zero > /tool.bin\nENV T=1\n"
         "FROM busybox\nENV A=1\nCOPY --from=tool /tool.bin /tool.bin\n")


def test_docker_system_df_and_builder_prune(servin: ServinDaemon, tmp_path: Path) -> None:
    write(tmp_path, {"Dockerfile": MULTI})
    build(servin, tmp_path, "-t", "cached:1")
    df = out(servin, "system", "df")
    assert re.search(r"^Build Cache\s+3\s+0\s+", df, re.M), df
    verbose = out(servin, "system", "df", "-v")
    assert "Build cache usage:" in verbose and verbose.count(" regular ") == 3, verbose
    since = time.time()
    pruned = servin.docker("builder", "prune", "-f").stdout.decode()
    assert pruned.startswith("Deleted build cache objects:\n"), pruned
    deleted = re.findall(r"^[0-9a-f]{64}$", pruned, re.M)
    assert len(deleted) == 2 and re.search(r"Total reclaimed space: 4\.\d+kB", pruned), pruned
    events = servin.docker("events", "--since", str(since), "--until", str(int(time.time()) + 1),
                           "--filter", "type=image", "--filter", "event=delete", "--format", "{{.Actor.ID}}")
    assert sorted(events.stdout.decode().split()) == sorted(f"sha256:{i}" for i in deleted)
    assert out(servin, "image", "inspect", "-f", "{{.Id}}", "cached:1").strip()
    verbose = out(servin, "system", "df", "-v")
    assert verbose.count(" regular ") == 1, verbose  # ENV A=1, cached:1's parent (shared)
    again = build(servin, tmp_path, "-t", "cached:1").stdout.decode()
    assert again.count("Using cache") == 2 and "Running in" in again  # the tool stage's RUN made anew
    assert out(servin, "system", "df", "-v").count(" regular ") == 3


def test_docker_py_df_and_prune_builds(servin: ServinDaemon, tmp_path: Path) -> None:
    client = docker.DockerClient(base_url=servin.host, version="auto", timeout=120)
    try:
        write(tmp_path, {"Dockerfile": MULTI.replace("T=1", "T=2")})
        client.images.build(path=str(tmp_path), tag="cached:2", rm=True)
        records = {r["Description"]: r for r in client.df()["BuildCache"]}
        assert {"ENV T=2", "RUN /bin/sh -c head -c 4096 /dev/zero > /tool.bin"} <= set(records)
        run = records["RUN /bin/sh -c head -c 4096 /dev/zero > /tool.bin"]
        assert run["Size"] >= 4096 and run["Shared"] is False and run["InUse"] is False
        assert client.api.prune_builds(filters={"until": "1h"}) == {"CachesDeleted": None, "SpaceReclaimed": 0}
        assert client.api.prune_builds(filters={"label": "a"}) == {"CachesDeleted": None, "SpaceReclaimed": 0}
        with pytest.raises(docker.errors.APIError, match="invalid filter 'dangling'"):
            client.api.prune_builds(filters={"dangling": "true"})
        result = client.api.prune_builds(filters={"description": "ENV T=2"})
        assert result == {"CachesDeleted": [records["ENV T=2"]["ID"]], "SpaceReclaimed": 0}
        result = client.api.prune_builds(all=True)
        assert run["ID"] in result["CachesDeleted"] and result["SpaceReclaimed"] >= 4096
        assert json.dumps(client.df()["BuildCache"]).count("/tool.bin") == 0
    finally:
        client.close()


def test_context_file_named_like_a_whiteout(servin: ServinDaemon, tmp_path: Path) -> None:
    """The context keeps ``.wh.*`` files as files, so COPY finds and copies them into the step's
    layer tar; in an image layer such a name is a whiteout (the OCI layer format, as with dockerd),
    so the layer as saved carries the file and the container sees the whiteout's effect."""
    write(tmp_path, {"Dockerfile": "FROM busybox\nCOPY .wh.keep /x/\nCOPY d /d/\n", ".wh.keep": "kept\n",
                     "d/.wh..wh..opq": "marker\n", "d/f": "f\n"})
    build(servin, tmp_path, "-t", "whiteout-names")
    saved = servin.docker("save", "whiteout-names").stdout
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(saved)) as image:
        for m in image.getmembers():
            if m.name.endswith(".tar") or m.name.startswith("blobs/"):
                f = image.extractfile(m)
                if f is None:
                    continue
                with tarfile.open(fileobj=io.BytesIO(f.read())) as layer:
                    for e in layer.getmembers():
                        if e.isreg():
                            data = layer.extractfile(e)
                            files[e.name] = data.read() if data is not None else b""
    assert files.get("x/.wh.keep") == b"kept\n" and files.get("d/.wh..wh..opq") == b"marker\n"
    assert files.get("d/f") == b"f\n"
    assert out(servin, "run", "--rm", "whiteout-names", "cat", "/d/f") == "f\n"
