"""Push: layers (skipped, mounted or gzip-streamed), the config, then a Docker schema2 manifest."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, Any

from servin import errors
from servin.images.progress import PushedManifest
from servin.images.reference import Reference, parse_normalized, truncate_id
from servin.registry import manifest as mf
from servin.registry import progress
from servin.registry.client import Repository
from servin.registry.errors import RegistryError
from servin.registry.transfers import TransferLimit

MAX_CONCURRENT_UPLOADS = 5  # dockerd's default (the daemon's max-concurrent-uploads)
GZIP_TYPES = frozenset({mf.DOCKER_LAYER_GZIP, mf.OCI_LAYER_GZIP})
CHUNK = 1 << 20

try:  # ISA-L's deflate is ~10x zlib's at level 1; same gzip format
    from isal import isal_zlib as _zlib

    _LEVEL = 1
except ImportError:  # pragma: no cover - isal is a dependency, but stay usable without it
    import zlib as _zlib  # type: ignore[no-redef]

    _LEVEL = 1


@dataclass(frozen=True, slots=True)
class PushResult:
    tag: str
    digest: str
    size: int


class _Compressor:
    """Reads a layer tar, yields gzip chunks, hashes them; all work happens in a worker thread."""

    def __init__(self, tar: IO[bytes], meter: progress.Meter) -> None:
        self.tar, self.meter = tar, meter
        self.comp = _zlib.compressobj(_LEVEL, _zlib.DEFLATED, 31)
        self.hash = hashlib.sha256()
        self.size = 0
        self.done = False

    def step(self) -> bytes:
        data = self.tar.read(CHUNK)
        if data:
            self.meter.add(len(data))
            out = self.comp.compress(data)
        else:
            out = self.comp.flush()
            self.done = True
        self.hash.update(out)
        self.size += len(out)
        return out

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self.done:
            out = await asyncio.to_thread(self.step)
            if out:
                yield out

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def _tar_size(f: IO[bytes]) -> int:
    try:
        pos = f.tell()
        end = f.seek(0, 2)
        f.seek(pos)
        return int(end - pos)
    except (OSError, AttributeError, ValueError):
        return 0


async def push_layer(store: Any, repo: Repository, target: Reference, diff_id: str,
                     out: progress.Output) -> mf.Descriptor:
    id_ = truncate_id(diff_id)
    known = await asyncio.to_thread(store.blobs_for, diff_id)
    known = [b for b in known if b.media_type in GZIP_TYPES and b.repository.split("/", 1)[0] == target.domain]
    for b in known:  # the registry may already have it in this repository
        if b.repository == target.name:
            size = await repo.blob_exists(b.digest)
            if size is not None:
                out.update(id_, "Layer already exists")
                return mf.Descriptor(mf.DOCKER_LAYER_GZIP, b.digest, size or b.size)
    location = None
    for b in known:  # or in another repository of the same registry: mount it
        if b.repository == target.name:
            continue
        source = b.repository.split("/", 1)[1]
        try:
            location = await repo.start_upload(mount=b.digest, source=source)
        except RegistryError:
            continue
        if location is None:
            out.update(id_, f"Mounted from {source}")
            await asyncio.to_thread(store.record_blob, diff_id, target.name, b.digest, b.media_type, b.size)
            return mf.Descriptor(mf.DOCKER_LAYER_GZIP, b.digest, b.size)
        break
    if location is None:
        location = await repo.start_upload()
        if location is None:
            raise RegistryError("BLOB_UPLOAD_INVALID", f"the registry mounted {diff_id} though no mount was asked for")
    tar = await asyncio.to_thread(store.layer_tar, diff_id)
    try:
        sizer = getattr(store, "layer_tar_size", None)
        total = await asyncio.to_thread(sizer, diff_id) if sizer is not None else _tar_size(tar)
        meter = progress.Meter(out, id_, "Pushing", total, threadsafe=True)
        comp = _Compressor(tar, meter)
        await repo.upload_stream(location, comp.chunks(), lambda: comp.digest)
    finally:
        await asyncio.to_thread(tar.close)
    out.update(id_, "Pushed")
    await asyncio.to_thread(store.record_blob, diff_id, target.name, comp.digest, mf.DOCKER_LAYER_GZIP, comp.size)
    return mf.Descriptor(mf.DOCKER_LAYER_GZIP, comp.digest, comp.size)


async def push_tag(store: Any, repo: Repository, target: Reference, image: Any, out: progress.Output,
                   limit: TransferLimit | None = None) -> PushResult:
    """Push one tagged image: its layers (as many at once as `limit`, shared by every push of the
    daemon, lets; top first in the output, as dockerd), config, manifest."""
    gate = limit or TransferLimit(MAX_CONCURRENT_UPLOADS)
    diff_ids = list(image.diff_ids)
    order = list(reversed(diff_ids))
    seen: list[str] = []
    for d in order:
        if d not in seen:
            seen.append(d)
            out.update(truncate_id(d), "Preparing")
    for n, d in enumerate(seen):
        if n >= gate.limit - gate.active:
            out.update(truncate_id(d), "Waiting")

    async def one(d: str) -> mf.Descriptor:
        async with gate.slot():
            return await push_layer(store, repo, target, d, out)

    tasks = {d: asyncio.ensure_future(one(d)) for d in seen}
    try:
        await asyncio.gather(*tasks.values())
    except BaseException:
        for t in tasks.values():
            t.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        raise
    layers = [tasks[d].result() for d in diff_ids]

    config_raw = await asyncio.to_thread(store.config_raw, image.id)
    config_digest = "sha256:" + hashlib.sha256(config_raw).hexdigest()
    if await repo.blob_exists(config_digest) is None:
        location = await repo.start_upload()
        assert location is not None
        await repo.upload(location, config_digest, config_raw)
    raw = mf.schema2(mf.Descriptor(mf.DOCKER_CONFIG, config_digest, len(config_raw)), layers)
    tag = target.tag or "latest"
    await repo.put_manifest(tag, mf.DOCKER_MANIFEST, raw)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    out.message(f"{tag}: digest: {digest} size: {len(raw)}")
    out.emit(PushedManifest(tag=tag, digest=digest, size=len(raw)))
    await asyncio.to_thread(store.add_image, config_raw, None, f"{target.name}@{digest}")
    return PushResult(tag, digest, len(raw))


def images_to_push(store: Any, ref: Reference) -> list[tuple[Reference, Any]]:
    """(tagged reference, image) pairs: the one tag asked for, or every tag of the repository."""
    if ref.digest is not None:
        raise errors.InvalidArgument("cannot push a digest reference")
    pairs = []
    for img in store.list():
        for t in img.repo_tags:
            r = parse_normalized(t)
            if r.name == ref.name and (ref.tag is None or r.tag == ref.tag):
                pairs.append((r, img))
    pairs.sort(key=lambda p: p[0].tag or "")
    return pairs
