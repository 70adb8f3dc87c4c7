"""The store after a crash: a load or a layer ingest killed halfway leaves no half image and no
orphan layer once the store is reopened; layers of force-removed images in use survive."""

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

from servin.images.service import ImageService

pytestmark = pytest.mark.unit


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(name: str, size: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo(name)
        ti.size = size
        tf.addfile(ti, io.BytesIO(os.urandom(size)))
    return buf.getvalue()


def docker_archive(path: Path, layers: list[bytes], tag: str) -> None:
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": [_sha(x) for x in layers]}}).encode()
    files = {"config.json": cfg, "manifest.json": json.dumps(
        [{"Config": "config.json", "RepoTags": [tag], "Layers": [f"l{i}.tar" for i in range(len(layers))]}]).encode()}
    files.update({f"l{i}.tar": x for i, x in enumerate(layers)})
    with tarfile.open(path, "w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))


# The child loads the archive through a reader slowed down after the first layer, so the parent
# can kill it once the first layer is committed and the second one is being extracted.
CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import servin.images.archives as st
    from servin.images.service import ImageService
    real = st.HashingReader
    class Slow(real):
        def read(self, n=-1):
            time.sleep(0.002)
            return super().read(min(n, 4096) if n and n > 0 else 4096)
    st.HashingReader = Slow
    ImageService(Path(sys.argv[1])).load_archive(Path(sys.argv[2]))
""")


def test_load_killed_halfway_leaves_nothing_visible(tmp_path):
    root = tmp_path / "store"
    archive = tmp_path / "img.tar"
    first, second = layer("a", 64 << 10), layer("b", 8 << 20)
    docker_archive(archive, [first, second], "half:1")
    ImageService(root)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(archive)], cwd=Path(__file__).parents[2])
    layers = root / "layers"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            names = os.listdir(layers)
            if _sha(first)[7:] in names and any(n.startswith(".tmp-") for n in names):
                break
            assert proc.poll() is None, "the load ended before it could be killed"
            time.sleep(0.005)
        else:
            pytest.fail("the load never got halfway")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert _sha(first)[7:] in os.listdir(layers)  # the first layer was committed

    store = ImageService(root)
    assert store.list() == []
    assert not store.exists("half:1")
    assert not store.has_layer(_sha(first)) and not store.has_layer(_sha(second))
    assert os.listdir(layers) == []  # no orphan layer, no temp dir
    # and the load works again from scratch
    assert store.load_archive(archive) == ["Loaded image: half:1"]
    assert ImageService(root).get("half:1").diff_ids == (_sha(first), _sha(second))


def test_ingested_layer_without_image_is_collected_on_reopen(tmp_path):
    store = ImageService(tmp_path / "s")
    data = layer("x", 1000)
    store.ingest_layer(io.BytesIO(data), _sha(data))
    store.record_blob(_sha(data), "localhost:5000/x", "sha256:" + "1" * 64, "application/x-tar", 1)
    again = ImageService(tmp_path / "s")
    assert not again.has_layer(_sha(data)) and again.blobs_for(_sha(data)) == []
    assert os.listdir(tmp_path / "s" / "layers") == [] and os.listdir(tmp_path / "s" / "distribution") == []


def test_layers_of_an_image_force_removed_in_use_survive_reopen(tmp_path):
    store = ImageService(tmp_path / "s")
    archive = tmp_path / "img.tar"
    data = layer("x", 1000)
    docker_archive(archive, [data], "used:1")
    store.load_archive(archive)
    image_id = store.get("used:1").id
    items = store.delete(image_id, force=True, users=lambda _i: [("c" * 64, False)])
    assert [i.deleted for i in items if i.deleted] == [image_id]
    again = ImageService(tmp_path / "s")
    assert again.has_layer(_sha(data))  # a container's overlay still stacks on it
    assert again.prune_layers() == [_sha(data)]
    assert not ImageService(tmp_path / "s").has_layer(_sha(data))


def test_corrupt_config_on_disk_is_never_used(tmp_path):
    store = ImageService(tmp_path / "s")
    archive = tmp_path / "img.tar"
    data = layer("x", 1000)
    docker_archive(archive, [data], "c:1")
    store.load_archive(archive)
    image_id = store.get("c:1").id
    cfg = tmp_path / "s" / "images" / f"{image_id[7:]}.json"
    cfg.write_bytes(cfg.read_bytes().replace(b"amd64", b"arm64"))
    again = ImageService(tmp_path / "s")
    assert not again.exists("c:1") and again.list() == []
    assert not again.has_layer(_sha(data))  # its layer is an orphan now
