"""An in-memory stand-in for ImageService's registry-facing API, for tests without a daemon."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import tarfile
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from servin import errors
from servin.images.reference import Reference, parse_normalized


@dataclass(frozen=True)
class BlobRef:
    repository: str
    digest: str
    media_type: str
    size: int


@dataclass
class FakeImage:
    id: str
    config: dict[str, Any]
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(self.config["rootfs"]["diff_ids"])


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def image_config(diff_ids: list[str], arch: str = "amd64", variant: str = "", label: str = "") -> bytes:
    cfg: dict[str, Any] = {"architecture": arch, "os": "linux", "created": "2026-11-22T00:00:00Z",
                           "config": {"Cmd": ["sh"], "Labels": {"test": label} if label else None},
                           "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": []}
    if variant:
        cfg["variant"] = variant
    return json.dumps(cfg).encode()


class FakeStore:
    def __init__(self) -> None:
        self.layers: dict[str, bytes] = {}
        self.configs: dict[str, bytes] = {}
        self.refs: dict[str, str] = {}  # str(Reference) → image id
        self.blobs: dict[str, list[BlobRef]] = {}
        self.ingested: list[str] = []
        self.sources: dict[str, Any] = {}  # image id → the manifests a pull gave it
        self.lock = threading.Lock()

    # building images for tests
    def make_image(self, name: str, layer_files: list[dict[str, bytes]], **kw: Any) -> str:
        tars = [layer_tar(f) for f in layer_files]
        for t in tars:
            self.layers[sha(t)] = t
        raw = image_config([sha(t) for t in tars], **kw)
        self.configs[sha(raw)] = raw
        self.refs[str(parse_normalized(name).tag_name_only())] = sha(raw)
        return sha(raw)

    # the store API the registry code uses
    def has_layer(self, diff_id: str) -> bool:
        return diff_id in self.layers

    @contextlib.contextmanager
    def pinned(self, diff_ids: Any) -> Iterator[None]:
        yield  # nothing removes layers from the fake store

    def ingest_layer(self, stream: IO[bytes], expected_diff_id: str | None) -> str:
        data = stream.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        elif data[:4] == b"\x28\xb5\x2f\xfd":
            raise errors.InvalidArgument("zstd")
        got = sha(data)
        if expected_diff_id and got != expected_diff_id:
            raise errors.InvalidArgument(f"diff id mismatch {got} != {expected_diff_id}")
        with self.lock:
            self.layers[got] = data
            self.ingested.append(got)
        return got

    def add_image(self, config_raw: bytes, ref: Reference | None, repo_digest: str | None = None,
                  source: Any = None) -> tuple[Any, Any]:
        image_id = sha(config_raw)
        self.sources[image_id] = source  # the registry's manifests (images/manifests.ManifestSource)
        for d in json.loads(config_raw)["rootfs"]["diff_ids"]:
            assert d in self.layers, d
        self.configs[image_id] = config_raw
        old = None
        if ref is not None:
            old = self.refs.get(str(ref))
            self.refs[str(ref)] = image_id
        if repo_digest:
            self.refs[str(parse_normalized(repo_digest))] = image_id
        return self.get(image_id), (old if old != image_id else None)

    def config_raw(self, ref_or_id: str) -> bytes:
        return self.configs[self.get(ref_or_id).id]

    def _resolve(self, ref_or_id: str) -> str:
        if ref_or_id in self.configs:
            return ref_or_id
        key = str(parse_normalized(ref_or_id).tag_name_only())
        if key in self.refs:
            return self.refs[key]
        raise errors.NotFound(f"No such image: {ref_or_id}")

    def get(self, ref_or_id: str) -> FakeImage:
        image_id = self._resolve(ref_or_id)
        mine = [parse_normalized(r) for r, i in self.refs.items() if i == image_id]
        tags = tuple(sorted(r.familiar() for r in mine if r.digest is None))
        digests = tuple(sorted(r.familiar() for r in mine if r.digest is not None))
        return FakeImage(image_id, json.loads(self.configs[image_id]), tags, digests)

    def list(self) -> list[FakeImage]:
        return [self.get(i) for i in self.configs]

    def record_blob(self, diff_id: str, repository: str, digest: str, media_type: str, size: int) -> None:
        with self.lock:
            refs = [b for b in self.blobs.get(diff_id, []) if b.repository != repository]
            self.blobs[diff_id] = [*refs, BlobRef(repository, digest, media_type, size)]

    def blobs_for(self, diff_id: str) -> list[BlobRef]:
        return list(self.blobs.get(diff_id, []))

    def layer_tar(self, diff_id: str) -> IO[bytes]:
        return io.BytesIO(self.layers[diff_id])


__all__ = ["FakeStore", "layer_tar", "image_config", "sha", "zlib"]
