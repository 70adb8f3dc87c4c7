"""Hostile images, built by hand the way an attacker publishes one, aimed at a host marker directory
(tests/support/marker.py). The same image is written as a `docker save` archive, as one flat tar for
`docker import`, and pushed to a registry."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servin.images.seed import build_rootfs_tar, host_architecture

MTIME = 1_700_000_000


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def entry(name: str, *, mode: int = 0o644, data: bytes | None = None, link: str | None = None,
          kind: bytes | None = None) -> tuple[tarfile.TarInfo, bytes | None]:
    ti = tarfile.TarInfo(name)
    ti.mtime, ti.mode, ti.uid, ti.gid = MTIME, mode, 0, 0
    if link is not None:
        ti.type, ti.linkname = tarfile.SYMTYPE, link
    elif name.endswith("/"):
        ti.type = tarfile.DIRTYPE
    elif kind is not None:
        ti.type = kind
    else:
        ti.size = len(data or b"")
    return ti, data


def tar_of(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def tricks_layer(marker: Path) -> bytes:
    """Directories replaced by links to the host after their mode was set (the chmod-follows-link
    attack), and the image's /etc, /dev, /data, /work and a volume's subdirectory as links to it."""
    m = str(marker)
    return tar_of([
        entry("chmodme/", mode=0o4777),
        entry("chmodme", link=f"{m}/tool"),  # replaces the directory: its 04777 must not land on the host
        entry("chparent/", mode=0o755),
        entry("chparent/sub/", mode=0o4777),
        entry("chparent", link=m),  # now chparent/sub is <marker>/sub on the host
        entry("etc", link=m),
        entry("dev", link="../../../../../../../../.." + str(marker.parent / "devhost")),  # beside it
        entry("data", link=str(marker.parent / "datahost")),  # dangling links beside it
        entry("work", link=str(marker.parent / "workhost" / "newdir")),
        entry("vol/", mode=0o755),
        entry("vol/sub", link=m),
    ])


def shadow_layer() -> bytes:
    """A directory over the lower layer's link: copying /vol into a volume must not write through it."""
    return tar_of([
        entry("vol/sub/", mode=0o777),
        entry("vol/sub/planted", data=b"planted\n", mode=0o4755),
    ])


@dataclass
class Image:
    layers: list[bytes]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def config_raw(self) -> bytes:
        return json.dumps(self.config).encode()


def hostile_image(marker: Path) -> Image:
    layers = [build_rootfs_tar(), tricks_layer(marker), shadow_layer()]
    config = {
        "architecture": host_architecture(), "os": "linux", "created": "2026-12-06T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Volumes": {f"/../../../..{marker}": {}, "/vol": {}},
                   "WorkingDir": f"/../../..{marker}/wd"},
        "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in layers]}, "history": [],
    }
    return Image(layers=layers, config=config)


def whiteout_image(name: str) -> Image:
    """busybox with a second layer holding one whiteout entry `name` (e.g. "bin/.wh..")."""
    layers = [build_rootfs_tar(), tar_of([entry(name, mode=0o600)])]
    config = {"architecture": host_architecture(), "os": "linux", "config": {"Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in layers]}}
    return Image(layers=layers, config=config)


def write_docker_archive(image: Image, path: Path, tag: str) -> None:
    """dockerd's `docker save` layout: manifest.json, the config and <id>/layer.tar per layer."""
    files: list[tuple[str, bytes]] = []
    layer_paths = []
    for i, layer in enumerate(image.layers):
        layer_paths.append(f"l{i}/layer.tar")
        files.append((layer_paths[-1], layer))
    cfg = image.config_raw
    files.append((f"{sha(cfg)[7:]}.json", cfg))
    files.append(("manifest.json", json.dumps([{"Config": f"{sha(cfg)[7:]}.json", "RepoTags": [tag],
                                                "Layers": layer_paths}]).encode()))
    path.write_bytes(tar_of([entry(name, data=data) for name, data in files]))


def flat_tar(image: Image) -> bytes:
    """All layers' entries in one tar, lowest first (what `docker import` takes)."""
    out: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for layer in image.layers:
        with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
            for ti in tf.getmembers():
                out.append((ti, tf.extractfile(ti).read() if ti.isreg() else None))  # type: ignore[union-attr]
    return tar_of(out)


def push(image: Image, registry: Any, repo: str, tag: str) -> None:
    """Blobs and a schema2 manifest put straight into a registry (tests/registry/server.py)."""
    layers = [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar", "size": len(t),
               "digest": registry.put_blob(repo, t)} for t in image.layers]
    cfg = image.config_raw
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
           "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(cfg),
                      "digest": registry.put_blob(repo, cfg)}, "layers": layers}
    registry.put_manifest(repo, tag, doc, doc["mediaType"])
