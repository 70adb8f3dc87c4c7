"""Pull: manifest (index → platform), config, layers (a daemon-wide number at a time, verified, skipped when
present)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from servin import errors
from servin.images.manifests import ManifestSource
from servin.images.reference import Reference, truncate_id
from servin.registry import manifest as mf
from servin.registry import progress
from servin.registry.client import TRANSIENT, Repository
from servin.registry.errors import RegistryError
from servin.registry.transfers import TransferLimit

MAX_CONCURRENT_DOWNLOADS = 3  # dockerd's default (the daemon's max-concurrent-downloads)
DOWNLOAD_RETRY_SECONDS = (1, 2, 4)  # a layer download cut midway is retried after these pauses
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True, slots=True)
class Resolved:
    """A reference resolved on the registry: the top manifest's digest and the image manifest chosen."""

    digest: str  # what `Digest:` prints and the RepoDigest records (the index's, for an index)
    media_type: str
    size: int
    manifest: dict[str, Any]  # the image manifest (after platform selection)
    top: dict[str, Any]  # the manifest or index the reference names
    top_raw: bytes = b""  # its bytes
    manifest_raw: bytes = b""  # the image manifest's bytes

    def source(self, repository: str) -> ManifestSource:
        """What the image store keeps of the registry's manifests (images/manifests.py)."""
        return ManifestSource(top=self.top_raw, top_media_type=self.media_type,
                              manifest=self.manifest_raw or self.top_raw, repository=repository)


def verify_digest(raw: bytes, digest: str) -> bool:
    algo, _, hexpart = digest.partition(":")
    if algo not in ("sha256", "sha384", "sha512"):
        return False
    return hashlib.new(algo, raw).hexdigest() == hexpart


async def resolve(repo: Repository, ref: Reference, platform: mf.Platform | None) -> Resolved:
    reference = ref.digest or ref.tag or "latest"
    raw, ctype, header_digest = await repo.get_manifest(reference, mf.ACCEPT)
    if ref.digest:
        if not verify_digest(raw, ref.digest):
            raise errors.SystemError_(f"manifest verification failed for digest {ref.digest}")
        digest = ref.digest
    else:
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    top = mf.loads(raw)
    mt = mf.media_type_of(top, ctype)
    if mt in mf.DOCKER_SCHEMA1:
        raise errors.InvalidArgument(
            "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 support "
            "is disabled by default and will be removed in an upcoming release. Suggest the author of "
            f"{ref.familiar()} to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2.")
    image, image_raw = top, raw
    if mt in (mf.DOCKER_LIST, mf.OCI_INDEX):
        entry = mf.select(mf.index_entries(top), platform)
        child_raw, child_type, _ = await repo.get_manifest(entry.digest, mf.ACCEPT)
        if not verify_digest(child_raw, entry.digest):
            raise errors.SystemError_(f"manifest verification failed for digest {entry.digest}")
        image, image_raw = mf.loads(child_raw), child_raw
        if mf.media_type_of(image, entry.media_type or child_type) not in (mf.DOCKER_MANIFEST, mf.OCI_MANIFEST):
            raise errors.InvalidArgument(f"unsupported media type {mf.media_type_of(image, child_type)}")
    elif mt not in (mf.DOCKER_MANIFEST, mf.OCI_MANIFEST):
        raise errors.InvalidArgument(f"unsupported media type {mt}")
    return Resolved(digest=digest, media_type=mt, size=len(raw), manifest=image, top=top, top_raw=raw,
                    manifest_raw=image_raw)


class _Sink:
    """A temp file that hashes what it is given; writes and hashing happen off the event loop.
    What was written survives a cut connection: the download resumes at `size`."""

    def __init__(self, f: IO[bytes], algo: str) -> None:
        self.f, self.algo, self.hash, self.buf, self.size = f, algo, hashlib.new(algo), bytearray(), 0

    def _flush(self, data: bytes) -> None:
        self.hash.update(data)
        self.f.write(data)

    async def feed(self, chunk: bytes) -> None:
        self.buf += chunk
        self.size += len(chunk)
        if len(self.buf) >= 1 << 20:
            await self.flush()

    async def flush(self) -> None:
        if self.buf:
            data, self.buf = bytes(self.buf), bytearray()
            await asyncio.to_thread(self._flush, data)

    def restart(self) -> None:
        """The registry sent the whole blob again: drop what was kept."""
        self.f.seek(0)
        self.f.truncate()
        self.hash, self.buf, self.size = hashlib.new(self.algo), bytearray(), 0

    async def close(self) -> None:
        await self.flush()
        await asyncio.to_thread(self.f.close)


class _CountingReader:
    def __init__(self, f: IO[bytes], meter: progress.Meter) -> None:
        self.f, self.meter = f, meter

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        if data:
            self.meter.add(len(data))
        return data


async def download_blob(repo: Repository, desc: mf.Descriptor, out: progress.Output, tmp_dir: Path,
                        id_: str) -> Path:
    """The blob in a temp file, verified against its digest; refetched once if it does not match."""
    algo, _, expected = desc.digest.partition(":")
    if algo not in ("sha256", "sha384", "sha512"):
        raise errors.InvalidArgument(f"unsupported digest algorithm {algo}")
    mismatches = 0
    retries = 0
    while True:
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="pull-")
        path = Path(name)
        sink = _Sink(os.fdopen(fd, "wb"), algo)
        meter = progress.Meter(out, id_, "Downloading", desc.size)
        try:
            while True:  # a cut transfer resumes where it stopped (Range), as dockerd's
                try:
                    first = True
                    async for resumed, chunk in repo.blob_stream(desc.digest, offset=sink.size):
                        if first and sink.size and not resumed:
                            await sink.flush()
                            await asyncio.to_thread(sink.restart)
                            meter = progress.Meter(out, id_, "Downloading", desc.size)
                        first = False
                        await sink.feed(chunk)
                        meter.add(len(chunk))
                    break
                except TRANSIENT:
                    if retries >= len(DOWNLOAD_RETRY_SECONDS):
                        raise
                    await sink.flush()
                    for left in range(DOWNLOAD_RETRY_SECONDS[retries], 0, -1):  # dockerd's countdown
                        out.update(id_, f"Retrying in {left} second{'s' if left > 1 else ''}")
                        await asyncio.sleep(1)
                    retries += 1
        except BaseException:  # no await here: a second cancellation must not leave the file behind
            with contextlib.suppress(OSError):
                sink.f.close()
            path.unlink(missing_ok=True)
            raise
        await sink.close()
        out.update(id_, "Verifying Checksum")
        if sink.hash.hexdigest() == expected and (not desc.size or sink.size == desc.size):
            out.update(id_, "Download complete")
            return path
        path.unlink(missing_ok=True)
        mismatches += 1
        if mismatches > 1:
            raise errors.SystemError_(f"filesystem layer verification failed for digest {desc.digest}")


# layers being fetched by a pull of this daemon, by diff_id: a concurrent pull of another image with
# the same layer waits for that transfer instead of making its own
_IN_FLIGHT: dict[str, asyncio.Future[None]] = {}


async def pull_image(store: Any, repo: Repository, ref: Reference, resolved: Resolved, out: progress.Output,
                     tmp_dir: Path, platform: mf.Platform | None,
                     limit: TransferLimit | None = None) -> tuple[str, bool]:
    """Fetch config and layers (as many at once as `limit`, shared by every pull of the daemon, lets),
    register the image. Returns (image id, something new was stored)."""
    gate = limit or TransferLimit(MAX_CONCURRENT_DOWNLOADS)
    config_desc, layers = mf.image_parts(resolved.manifest)
    if config_desc.media_type and config_desc.media_type not in mf.CONFIG_TYPES:
        raise errors.InvalidArgument(f"unsupported media type {config_desc.media_type}")
    for layer in layers:
        if layer.media_type and layer.media_type not in mf.LAYER_TYPES:
            raise errors.InvalidArgument(f"unsupported media type {layer.media_type}")
    tag_or_digest = ref.digest or ref.tag or "latest"
    out.message("Pulling from " + ref.path, tag_or_digest)  # the path, as dockerd: library/busybox

    local = await asyncio.to_thread(_local_config, store, config_desc.digest)
    config_raw = local if local is not None else await repo.get_blob(config_desc.digest)
    if not verify_digest(config_raw, config_desc.digest):
        raise errors.SystemError_(f"image config verification failed for digest {config_desc.digest}")
    try:
        config = json.loads(config_raw)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    except (ValueError, AttributeError):
        raise errors.InvalidArgument("invalid image config") from None
    if platform is not None and resolved.media_type not in (mf.DOCKER_LIST, mf.OCI_INDEX):
        actual = mf.config_platform(config)
        if not mf.matches(platform, actual, variant_given=bool(platform.variant)):
            raise errors.NotFound(f"image with reference {ref.familiar()} was found but does not match the "
                                  f"specified platform: wanted {platform}, actual: {actual}")
    if len(diff_ids) != len(layers):
        raise errors.InvalidArgument("layers from manifest don't match image configuration")

    image_id = "sha256:" + hashlib.sha256(config_raw).hexdigest()
    with store.pinned(diff_ids):  # no rmi or prune takes a layer away before add_image
        todo: dict[str, tuple[mf.Descriptor, str]] = {}  # blob digest → (descriptor, diff_id)
        # as dockerd: an image already stored is not looked at layer by layer (no "Already exists" lines)
        pairs = list(zip(layers, diff_ids, strict=True)) if local is None else []
        for desc, diff_id in pairs:
            id_ = truncate_id(desc.digest)
            if desc.digest in todo:
                continue
            if await asyncio.to_thread(store.has_layer, diff_id):
                out.update(id_, "Already exists")
                continue
            todo[desc.digest] = (desc, diff_id)
            out.update(id_, "Pulling fs layer")
        for n, digest in enumerate(todo):
            if n >= gate.limit - gate.active:
                out.update(truncate_id(digest), "Waiting")

        async def fetch(desc: mf.Descriptor, diff_id: str) -> None:
            id_ = truncate_id(desc.digest)
            theirs = _IN_FLIGHT.get(diff_id)
            if theirs is not None:  # another pull is fetching this layer: wait for it, as dockerd
                out.update(id_, "Waiting")
                with contextlib.suppress(Exception):
                    await asyncio.shield(theirs)
                if await asyncio.to_thread(store.has_layer, diff_id):
                    out.update(id_, "Pull complete")
                    return
            mine = asyncio.get_running_loop().create_future()
            mine.add_done_callback(lambda f: f.cancelled() or f.exception())  # waiters read it, or nobody
            _IN_FLIGHT.setdefault(diff_id, mine)
            try:
                await fetch_layer(desc, diff_id, id_)
                mine.set_result(None)
            except BaseException as exc:
                mine.set_exception(exc if isinstance(exc, Exception) else errors.SystemError_("pull cancelled"))
                raise
            finally:
                if _IN_FLIGHT.get(diff_id) is mine:
                    del _IN_FLIGHT[diff_id]

        async def fetch_layer(desc: mf.Descriptor, diff_id: str, id_: str) -> None:
            async with gate.slot():
                path = await download_blob(repo, desc, out, tmp_dir, id_)
            try:
                meter = progress.Meter(out, id_, "Extracting", path.stat().st_size, threadsafe=True)

                def ingest() -> str:
                    with open(path, "rb") as f:
                        stream: Any = _CountingReader(f, meter)
                        if f.read(4) == ZSTD_MAGIC:  # the store knows gzip, bzip2 and xz; zstd is undone here
                            import zstandard

                            f.seek(0)
                            stream = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
                        else:
                            f.seek(0)
                        return str(store.ingest_layer(stream, diff_id))

                got = await asyncio.to_thread(ingest)
                if got != diff_id:
                    raise errors.SystemError_(f"layer {desc.digest}: diff id {got} does not match {diff_id}")
            finally:
                path.unlink(missing_ok=True)
            out.update(id_, "Pull complete")

        tasks = [asyncio.ensure_future(fetch(d, i)) for d, i in todo.values()]
        try:
            if tasks:
                await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

        name = ref.name_only()
        before = await asyncio.to_thread(_target, store, ref)
        tagged = ref if ref.digest is None else None
        source = resolved.source(ref.name) if resolved.top_raw else None
        await asyncio.to_thread(store.add_image, config_raw, tagged, f"{name}@{resolved.digest}", source)
        for desc, diff_id in zip(layers, diff_ids, strict=True):
            await asyncio.to_thread(store.record_blob, diff_id, ref.name, desc.digest,
                                    desc.media_type or mf.OCI_LAYER_GZIP, desc.size)
    return image_id, bool(todo) or before != image_id


def _local_config(store: Any, digest: str) -> bytes | None:
    """The config of an image already stored under that id (its layers are there: nothing to fetch)."""
    if not digest.startswith("sha256:"):
        return None
    try:
        return bytes(store.config_raw(digest))
    except (errors.ServinError, KeyError, OSError):
        return None


def _target(store: Any, ref: Reference) -> str | None:
    try:
        return str(store.get(str(ref)).id)
    except errors.ServinError:
        return None


__all__ = ["RegistryError", "Resolved", "download_blob", "pull_image", "resolve"]
