"""`docker image ls --tree` and `docker image inspect --format '{{json .Descriptor}}'` (docker CLI 28.2, API
1.50) and docker-py's `manifests=1`: an image's OCI descriptor and manifests, for a local image (its made
manifest, the same across a restart and a save and load) and for an image pulled through an index."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from servin.images.model import host_architecture
from tests.registry.fakestore import image_config, layer_tar, sha
from tests.registry.server import REGISTRY_BIN, Registry, running_registry
from tests.support.daemon import ServinDaemon

ANSI = re.compile(r"\x1b\[[0-9;]*m")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def tree(d: ServinDaemon) -> list[str]:
    out = d.docker("image", "ls", "--tree").stdout.decode()
    return [ANSI.sub("", line).rstrip() for line in out.splitlines()]


def descriptor(d: ServinDaemon, name: str) -> dict[str, object]:
    return json.loads(d.docker("image", "inspect", "--format", "{{json .Descriptor}}", name).stdout)


def listed(d: ServinDaemon) -> dict[str, dict[str, object]]:
    """`GET /images/json?manifests=1` through docker-py (its images() does not pass manifests)."""
    import docker

    client = docker.DockerClient(base_url=d.host, version="auto")
    try:
        answer = client.api.get(client.api._url("/images/json"), params={"manifests": 1})
        answer.raise_for_status()
        return {tag: image for image in answer.json() for tag in image["RepoTags"]}
    finally:
        client.close()


def test_tree_and_descriptor_of_a_committed_image(daemon: ServinDaemon) -> None:
    d = daemon
    d.docker("run", "--name", "src", "busybox", "sh", "-c", "echo hi > /marker")
    d.docker("commit", "src", "mine:1")
    made = descriptor(d, "mine:1")
    assert made["mediaType"] == OCI_MANIFEST and str(made["digest"]).startswith("sha256:")
    image_id = d.docker("image", "inspect", "-f", "{{.Id}}", "mine:1").stdout.decode().strip()

    lines = tree(d)
    top = next(i for i, line in enumerate(lines) if line.startswith("mine:1 "))
    assert lines[top].split()[1] == image_id[7:19]
    child = lines[top + 1].split()
    assert child[:3] == ["└─", f"linux/{host_architecture()}", str(made["digest"])[7:19]]
    busybox = next(i for i, line in enumerate(lines) if line.startswith("busybox:latest "))
    assert lines[busybox].split()[-1] == "U" and lines[busybox + 1].split()[-1] == "U"  # src uses it

    [entry] = listed(d)["mine:1"]["Manifests"]
    assert entry["Descriptor"] == made and entry["Available"] and entry["Kind"] == "image"
    assert entry["ImageData"]["Platform"] == {"architecture": host_architecture(), "os": "linux"}
    assert entry["ImageData"]["Containers"] is None
    assert listed(d)["busybox:latest"]["Manifests"][0]["ImageData"]["Containers"] == [
        d.docker("inspect", "-f", "{{.Id}}", "src").stdout.decode().strip()]
    d.docker("rm", "src")

    d.stop()  # the same descriptor after a restart, and after a save and load
    d.start()
    assert descriptor(d, "mine:1") == made
    archive = d.root / "mine.tar"
    d.docker("save", "-o", str(archive), "mine:1")
    d.docker("rmi", "mine:1")
    d.docker("load", "-i", str(archive))
    assert descriptor(d, "mine:1") == made
    assert d.docker("image", "inspect", "-f", "{{.Id}}", "mine:1").stdout.decode().strip() == image_id
    # a client pinned to 1.47 sees no Descriptor
    old = {**d.env, "DOCKER_API_VERSION": "1.47"}
    res = subprocess.run(["docker", "image", "inspect", "mine:1"], env=old, capture_output=True, timeout=60)
    assert res.returncode == 0 and "Descriptor" not in json.loads(res.stdout)[0]


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("docker-registry is not installed")
    with running_registry() as reg:
        yield reg


def test_an_image_pulled_through_an_index(servin: ServinDaemon, registry: Registry) -> None:
    repo = "e2e/p"  # short: the tree's name column is narrowed to fit 80 columns
    mine, other = host_architecture(), "arm64" if host_architecture() != "arm64" else "amd64"
    entries = []
    for arch in (mine, other):
        tar = layer_tar({f"{arch}.txt": arch.encode()})
        blob = gzip.compress(tar, mtime=0)
        cfg = image_config([sha(tar)], arch=arch)
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                          "digest": registry.put_blob(repo, cfg), "size": len(cfg)},
               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                           "digest": registry.put_blob(repo, blob), "size": len(blob)}]}
        raw = json.dumps(doc).encode()
        registry.put_manifest(repo, sha(raw), doc, OCI_MANIFEST)
        entries.append({"mediaType": OCI_MANIFEST, "digest": sha(raw), "size": len(raw),
                        "platform": {"architecture": arch, "os": "linux"}})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    index_digest = registry.put_manifest(repo, "latest", index, OCI_INDEX)
    name = f"localhost:{registry.port}/{repo}"
    servin.docker("pull", name)
    try:
        assert descriptor(servin, name) == {"mediaType": OCI_INDEX, "digest": index_digest,
                                            "size": len(json.dumps(index).encode())}
        lines = tree(servin)
        top = next(i for i, line in enumerate(lines) if line.startswith(f"{name}:latest"[:24]))
        assert lines[top + 1].split()[:3] == ["├─", f"linux/{mine}", entries[0]["digest"][7:19]]
        assert lines[top + 2].split()[:3] == ["└─", f"linux/{other}", entries[1]["digest"][7:19]]
        assert lines[top + 2].split()[3:5] == ["0B", "0B"]  # not pulled: nothing of it is stored
        first, second = listed(servin)[f"{name}:latest"]["Manifests"]
        assert first["Available"] and first["Descriptor"] == entries[0]
        assert not second["Available"] and second["Descriptor"] == entries[1]
        assert second["Size"] == {"Content": 0, "Total": 0} and second["Kind"] == "image"
        inspected = json.loads(servin.docker("image", "inspect", name).stdout)[0]
        assert inspected["RepoDigests"] == [f"{name}@{index_digest}"]
    finally:
        servin.docker("rmi", name)
