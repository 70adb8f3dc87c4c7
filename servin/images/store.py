"""The on-disk image store: content-addressed layers, image configs, tags.

Layout under ``root``::

    layers/<diff_id hex>/diff         the extracted layer (overlay format), renamed into place whole
    layers/<diff_id hex>/layer.json   {"diff_id", "size"}
    layers/<diff_id hex>/tar-split.bin  what rebuilds the original tar from diff/ (tarsplit.py)
    distribution/<diff_id hex>.json   [{repository, digest, media_type, size}]: registry blobs of a layer
    layers/.tmp-*  layers/.del-*      in-flight extracts / deletions; removed on open
    images/<id hex>.json              the image config, byte for byte (id = sha256 of it, verified)
    images/<id hex>.meta.json         {"parent", "last_tag_time"}
    retained-layers.json              layers of images force-removed while containers used them
    repositories.json                 {"Repositories": {repo: {familiar ref: id}}} (Docker's shape)

Every small file is written to a temp name, fsynced and renamed. A layer is extracted into a temp
directory and renamed only once its digest has been verified, so a crash never leaves a half layer
under its final name. Mutations are serialized by one lock; reads take a short state lock.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import logging
import tempfile
import json
import os
import posixpath
import stat
import tarfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from servin.errors import Conflict, InvalidArgument, NotFound, SystemError_
from servin.images import reference as refs
from servin import safefs
from servin.images import tarsplit, union
from servin.images.changes import apply_changes, empty_container_config
from servin.images.layers import (
    HashingReader,
    digest_of_stream,
    extract_layer,
)
from servin.images.model import (
    GO_ZERO_TIME_UNIX,
    BlobRef,
    DeleteItem,
    HistoryItem,
    Image,
    format_rfc3339_nano,
    host_architecture,
    parse_rfc3339,
)
from servin.images.reference import Reference, truncate_id

log = logging.getLogger(__name__)

DOCKER_VERSION = "20.10.24"
_HEX = frozenset("0123456789abcdef")

MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"

UsersFn = Callable[[str], list[tuple[str, bool]]]
ProgressFn = Callable[[str, int, int], None]
_PROGRESS_EVERY = 512 * 1024  # as dockerd's progress reader


class _ProgressReader:
    def __init__(self, inner: IO[bytes], short_id: str, total: int, report: ProgressFn) -> None:
        self._inner, self._id, self._total, self._report = inner, short_id, total, report
        self._current = self._last = 0

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        self._current += len(data)
        if (not data and self._current != self._last) or self._current - self._last > _PROGRESS_EVERY:
            self._last = self._current
            self._report(self._id, self._current, self._total)
        return data


def _remove_leftover(path: Path) -> None:
    """Start-up cleanup: what cannot be removed is logged and left, never fatal to the daemon."""
    try:
        safefs.remove_tree(path)
    except OSError as exc:
        log.warning("cannot remove leftover %s: %s", path, exc)


def _is_hex64(s: str) -> bool:
    return len(s) == 64 and set(s) <= _HEX


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _now() -> str:
    return format_rfc3339_nano(datetime.now(timezone.utc))


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


@dataclass(slots=True)
class _Record:
    id: str
    config: dict[str, Any]
    parent: str
    last_tag_time: str | None

    @property
    def diff_ids(self) -> list[str]:
        rootfs = self.config.get("rootfs") or {}
        return list(rootfs.get("diff_ids") or [])


def _parse_config(raw: bytes) -> dict[str, Any]:
    try:
        cfg = json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"invalid image config: {e}") from e
    if not isinstance(cfg, dict):
        raise InvalidArgument("invalid image config: not a JSON object")
    rootfs = cfg.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise InvalidArgument('invalid image config: rootfs type must be "layers"')
    diff_ids = rootfs.get("diff_ids") or []
    if not isinstance(diff_ids, list) or not all(
        isinstance(d, str) and d.startswith("sha256:") and _is_hex64(d[7:]) for d in diff_ids
    ):
        raise InvalidArgument("invalid image config: bad rootfs.diff_ids")
    return cfg


class _Archive:
    """Random access to the members of a (possibly compressed) image archive."""

    def __init__(self, path: Path) -> None:
        try:
            self._tf = tarfile.open(path, "r:*")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise InvalidArgument(f"invalid image archive: {e}") from e
        self.members: dict[str, tarfile.TarInfo] = {}
        for m in self._tf.getmembers():
            name = posixpath.normpath(m.name.lstrip("/"))
            self.members[name] = m

    def close(self) -> None:
        self._tf.close()

    def has(self, name: str) -> bool:
        return posixpath.normpath(name.lstrip("/")) in self.members

    def open(self, name: str) -> IO[bytes]:
        norm = posixpath.normpath(name.lstrip("/"))
        if norm.startswith(".."):
            raise InvalidArgument(f"invalid image archive: path {name!r} escapes the archive")
        member = self.members.get(norm)
        if member is None:
            raise InvalidArgument(f"invalid image archive: missing {name}")
        try:
            f = self._tf.extractfile(member)
        except KeyError as e:
            raise InvalidArgument(f"invalid image archive: broken link {name}") from e
        if f is None:
            raise InvalidArgument(f"invalid image archive: {name} is not a file")
        return f

    def size(self, name: str) -> int:
        member = self.members.get(posixpath.normpath(name.lstrip("/")))
        return member.size if member is not None else 0

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def read_blob(self, digest: str) -> bytes:
        data = self.read(self.blob_path(digest))
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise InvalidArgument(f"invalid image archive: blob {digest} does not match its digest")
        return data

    @staticmethod
    def blob_path(digest: str) -> str:
        algo, _, hexpart = digest.partition(":")
        if algo != "sha256" or not _is_hex64(hexpart):
            raise InvalidArgument(f"invalid image archive: unsupported digest {digest!r}")
        return f"blobs/sha256/{hexpart}"


@dataclass(slots=True)
class _Planned:
    config_raw: bytes
    config: dict[str, Any]
    layers: list[tuple[str, str | None]]  # (archive path, expected blob digest or None)
    tags: list[Reference]


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._layers_dir = self.root / "layers"
        self._images_dir = self.root / "images"
        self._repos_file = self.root / "repositories.json"
        self._dist_dir = self.root / "distribution"
        self._retained_file = self.root / "retained-layers.json"
        self._retained: set[str] = set()
        self._write_lock = threading.RLock()
        self._state = threading.RLock()
        self._blob_lock = threading.Lock()
        self._images: dict[str, _Record] = {}  # by full id
        self._refs: dict[str, str] = {}  # str(Reference) (fully qualified) -> image id
        self._layer_sizes: dict[str, int] = {}  # diff_id -> size
        self._tar_sizes: dict[str, int] = {}  # diff_id -> bytes of its tar (when known)
        self._blobs: dict[str, list[BlobRef]] = {}  # diff_id -> registry blobs holding it
        self._pins: dict[str, int] = {}  # diff_id -> pulls counting on it (see pinned())
        self._open()

    # ------------------------------------------------------------------ opening / recovery

    def _open(self) -> None:
        for d in (self.root, self._layers_dir, self._images_dir, self._dist_dir):
            d.mkdir(parents=True, exist_ok=True)
        for entry in self._layers_dir.iterdir():
            if entry.name.startswith((".tmp-", ".del-")):
                _remove_leftover(entry)
        for entry in self._images_dir.iterdir():
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                entry.unlink(missing_ok=True)
        for d in (self.root, self._dist_dir):
            for entry in d.iterdir():
                if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                    entry.unlink(missing_ok=True)

        for entry in self._layers_dir.iterdir():
            if not _is_hex64(entry.name):
                continue
            try:
                meta = json.loads((entry / "layer.json").read_bytes())
                self._layer_sizes["sha256:" + entry.name] = int(meta["size"])
                if "tar_size" in meta:
                    self._tar_sizes["sha256:" + entry.name] = int(meta["tar_size"])
            except (OSError, ValueError, KeyError, TypeError):
                _remove_leftover(entry)  # not a committed layer

        for entry in self._images_dir.iterdir():
            name = entry.name
            if not name.endswith(".json") or name.endswith(".meta.json"):
                continue
            hexid = name[: -len(".json")]
            if not _is_hex64(hexid):
                continue
            raw = entry.read_bytes()
            if hashlib.sha256(raw).hexdigest() != hexid:
                continue  # corrupt: ignore it
            try:
                cfg = _parse_config(raw)
            except InvalidArgument:
                continue
            rec = _Record(id="sha256:" + hexid, config=cfg, parent="", last_tag_time=None)
            if not all(d in self._layer_sizes for d in rec.diff_ids):
                continue  # incomplete
            meta_path = self._images_dir / f"{hexid}.meta.json"
            if meta_path.exists():
                try:
                    meta = json.loads(meta_path.read_bytes())
                    rec.parent = str(meta.get("parent") or "")
                    rec.last_tag_time = meta.get("last_tag_time")
                except ValueError:
                    pass
            self._images[rec.id] = rec

        # Layers no image uses: left by a load or pull that died before its image was registered.
        # Layers of images force-removed while containers used them are kept (retained-layers.json).
        try:
            self._retained = set(json.loads(self._retained_file.read_bytes()))
        except (OSError, ValueError, TypeError):
            self._retained = set()
        used = {d for r in self._images.values() for d in r.diff_ids}
        for diff_id in [d for d in self._layer_sizes if d not in used and d not in self._retained]:
            self._remove_layer(diff_id)

        for entry in self._dist_dir.iterdir():
            hexid = entry.name.removesuffix(".json")
            if not entry.name.endswith(".json") or not _is_hex64(hexid):
                continue
            if "sha256:" + hexid not in self._layer_sizes:
                entry.unlink(missing_ok=True)  # its layer went (a crash between the two removals)
                continue
            try:
                self._blobs["sha256:" + hexid] = [BlobRef(**b) for b in json.loads(entry.read_bytes())]
            except (ValueError, TypeError):
                entry.unlink(missing_ok=True)

        if self._repos_file.exists():
            try:
                data = json.loads(self._repos_file.read_bytes())
            except ValueError:
                data = {}
            for by_ref in (data.get("Repositories") or {}).values():
                for ref_s, image_id in by_ref.items():
                    if image_id not in self._images:
                        continue
                    try:
                        ref = refs.parse_normalized(ref_s)
                    except InvalidArgument:
                        continue
                    self._refs[str(ref)] = image_id

    # ------------------------------------------------------------------ persistence helpers

    def _save_refs(self) -> None:
        repos: dict[str, dict[str, str]] = {}
        for ref_s in sorted(self._refs):
            ref = refs.parse_normalized(ref_s)
            repos.setdefault(ref.familiar_name(), {})[ref.familiar()] = self._refs[ref_s]
        _atomic_write(self._repos_file, _json_bytes({"Repositories": repos}))

    def _save_meta(self, rec: _Record) -> None:
        hexid = rec.id[7:]
        meta = {"parent": rec.parent, "last_tag_time": rec.last_tag_time}
        _atomic_write(self._images_dir / f"{hexid}.meta.json", _json_bytes(meta))

    def _layer_path(self, diff_id: str) -> Path:
        return self._layers_dir / diff_id.split(":", 1)[1]

    # ------------------------------------------------------------------ layers

    def _commit_layer(self, tmp: Path, diff_id: str, size: int, tar_size: int) -> None:
        """Rename an extracted temp layer into place (or drop it if the layer exists)."""
        final = self._layer_path(diff_id)
        with self._state:
            if diff_id in self._layer_sizes:
                safefs.remove_tree(tmp, ignore_errors=True)
                return
            meta = {"diff_id": diff_id, "size": size, "tar_size": tar_size}
            _atomic_write(tmp / "layer.json", _json_bytes(meta))
            _fsync_dir(tmp)
            if final.exists():  # a stale uncommitted dir: cannot happen after _open, be safe
                safefs.remove_tree(final)
            os.rename(tmp, final)
            _fsync_dir(self._layers_dir)
            self._layer_sizes[diff_id] = size
            self._tar_sizes[diff_id] = tar_size

    def _new_tmp_layer(self) -> Path:
        tmp = self._layers_dir / f".tmp-{uuid.uuid4().hex}"
        (tmp / "diff").mkdir(parents=True)
        return tmp

    def _ensure_layer(self, stream: IO[bytes], expected: str | None, index: int = 0, *, label: str = "") -> str:
        """Extract ``stream`` as a layer unless present; verify it hashes to ``expected``."""
        what = label or f"invalid diffID for layer {index}"
        if expected is not None and expected in self._layer_sizes:
            actual, _ = digest_of_stream(stream)
            if actual != expected:
                raise InvalidArgument(f'{what}: expected "{expected}", got "{actual}"')
            return expected
        tmp = self._new_tmp_layer()
        try:
            result = extract_layer(stream, tmp / "diff", split_path=tmp / tarsplit.SPLIT_FILE)
            if expected is not None and result.diff_id != expected:
                raise InvalidArgument(f'{what}: expected "{expected}", got "{result.diff_id}"')
            self._commit_layer(tmp, result.diff_id, result.size, result.tar_size)
        except BaseException:
            safefs.remove_tree(tmp, ignore_errors=True)  # what it cannot remove, the next start retries
            raise
        return result.diff_id

    def _remove_layer(self, diff_id: str) -> None:
        final = self._layer_path(diff_id)
        doomed = self._layers_dir / f".del-{final.name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(final, doomed)
        except FileNotFoundError:
            return
        _fsync_dir(self._layers_dir)
        self._layer_sizes.pop(diff_id, None)
        self._tar_sizes.pop(diff_id, None)
        self._drop_blobs(diff_id)
        if diff_id in self._retained:
            self._retained.discard(diff_id)
            _atomic_write(self._retained_file, _json_bytes(sorted(self._retained)))
        safefs.remove_tree(doomed, ignore_errors=True)  # what it cannot remove, the next start retries

    # ------------------------------------------------------------------ the registry side (pull, push)

    def has_layer(self, diff_id: str) -> bool:
        return diff_id in self._layer_sizes

    @contextlib.contextmanager
    def pinned(self, diff_ids: Iterable[str]) -> Iterator[None]:
        """Layers a pull counts on (found present, or being fetched) are not removed by an rmi or
        a prune meanwhile, until the image that uses them is registered; a pull that fails leaves
        them unused, for the next prune (or the next open) to collect."""
        ids = list(dict.fromkeys(diff_ids))
        with self._state:
            for d in ids:
                self._pins[d] = self._pins.get(d, 0) + 1
        try:
            yield
        finally:
            with self._state:
                for d in ids:
                    if self._pins[d] > 1:
                        self._pins[d] -= 1
                    else:
                        del self._pins[d]

    def ingest_layer(self, stream: IO[bytes], expected_diff_id: str | None) -> str:
        """Store a layer blob (gzip/bzip2/xz detected, or plain tar) unless present; its diff_id.

        Thread-safe without the store lock: concurrent calls extract into their own temp dirs and
        the first to finish is kept. A digest other than ``expected_diff_id`` is InvalidArgument
        and leaves nothing behind."""
        if expected_diff_id is not None and not (
            expected_diff_id.startswith("sha256:") and _is_hex64(expected_diff_id[7:])
        ):
            raise InvalidArgument(f"invalid diffID {expected_diff_id!r}")
        return self._ensure_layer(stream, expected_diff_id, label="layer does not match its diffID")

    def add_image(
        self, config_raw: bytes, ref: Reference | None, repo_digest: str | None = None
    ) -> tuple[Image, str | None]:
        """Register an image whose layers are stored (Conflict if one is missing), point the tag
        ``ref`` at it and record ``repo_digest`` (``domain/path@sha256:...``). Returns the image
        and the id ``ref`` pointed to before when that was another image."""
        cfg = _parse_config(config_raw)
        if ref is not None:
            if ref.digest is not None:
                raise InvalidArgument("refusing to create a tag with a digest reference")
            ref = ref.tag_name_only()
        digest_ref = None
        if repo_digest is not None:
            digest_ref = refs.parse_normalized(repo_digest)
            if digest_ref.digest is None or digest_ref.tag is not None:
                raise InvalidArgument(f"invalid repository digest {repo_digest!r}")
        with self._write_lock:
            image_id, _ = self._register(config_raw, cfg)
            old = None
            with self._state:
                if digest_ref is not None:
                    self._set_tag(digest_ref, image_id, touch=False)
                if ref is not None:
                    old = self._set_tag(ref, image_id, touch=False)
            return self._image(image_id), old

    def config_raw(self, ref_or_id: str) -> bytes:
        """The image config exactly as stored (its sha256 is the image id)."""
        image_id = self._resolve(ref_or_id)
        raw = (self._images_dir / f"{image_id[7:]}.json").read_bytes()
        if "sha256:" + hashlib.sha256(raw).hexdigest() != image_id:
            raise SystemError_(f"image config {image_id} is corrupt on disk")
        return raw

    def record_blob(self, diff_id: str, repository: str, digest: str, media_type: str, size: int) -> None:
        """Remember that ``repository`` (any spelling; stored fully qualified) holds the layer as the
        blob ``digest``. Newest last; at most 50 per layer."""
        repo = refs.parse_normalized(repository).name
        entry = BlobRef(repository=repo, digest=digest, media_type=media_type, size=int(size))
        with self._blob_lock:
            current = [b for b in self._blobs.get(diff_id, []) if (b.repository, b.digest) != (repo, digest)]
            current = [*current, entry][-50:]
            data = _json_bytes(
                [{"repository": b.repository, "digest": b.digest, "media_type": b.media_type, "size": b.size}
                 for b in current]
            )
            _atomic_write(self._dist_dir / f"{diff_id.split(':', 1)[1]}.json", data)
            self._blobs[diff_id] = current

    def blobs_for(self, diff_id: str) -> builtins.list[BlobRef]:
        with self._blob_lock:
            return list(self._blobs.get(diff_id, []))

    def _drop_blobs(self, diff_id: str) -> None:
        with self._blob_lock:
            self._blobs.pop(diff_id, None)
            (self._dist_dir / f"{diff_id.split(':', 1)[1]}.json").unlink(missing_ok=True)

    def layer_tar(self, diff_id: str) -> IO[bytes]:
        """The layer's original uncompressed tar, streamed (its sha256 is ``diff_id``; a mismatch
        found at the end raises SystemError_)."""
        if diff_id not in self._layer_sizes:
            raise NotFound(f"layer {diff_id} does not exist")
        layer = self._layer_path(diff_id)
        if (layer / tarsplit.SPLIT_FILE).exists():
            return tarsplit.open_stream(tarsplit.replay(layer, diff_id))
        # Stored by an older Servin without a tar-split: a deterministic tar may still match.
        tmp = tempfile.TemporaryFile(dir=self.root)
        try:
            tarsplit.regenerate(layer / "diff", tmp)  # type: ignore[arg-type]
            tmp.seek(0)
            actual, _ = digest_of_stream(tmp)
            if actual != diff_id:
                raise SystemError_(
                    f"layer {diff_id} was stored without its original tar (by an older Servin) and cannot "
                    f"be reproduced (rebuilt tar is {actual}); remove the image and load or pull it again"
                )
            tmp.seek(0)
        except BaseException:
            tmp.close()
            raise
        return tmp  # type: ignore[return-value]

    def layer_tar_size(self, diff_id: str) -> int:
        """Bytes of ``layer_tar(diff_id)`` (counted once for layers stored before it was recorded)."""
        size = self._tar_sizes.get(diff_id)
        if size is None:
            n = 0
            with self.layer_tar(diff_id) as f:
                while chunk := f.read(1 << 20):
                    n += len(chunk)
            size = self._tar_sizes[diff_id] = n
        return size

    # ------------------------------------------------------------------ registering images

    def _register(self, raw: bytes, cfg: dict[str, Any], *, parent: str = "") -> tuple[str, bool]:
        """Write the config (after its layers exist). Returns (id, newly created)."""
        image_id = "sha256:" + hashlib.sha256(raw).hexdigest()
        with self._state:
            if image_id in self._images:
                return image_id, False
            missing = [d for d in _Record(image_id, cfg, "", None).diff_ids if d not in self._layer_sizes]
            if missing:
                raise Conflict(f"layer {missing[0]} disappeared while loading {image_id}")
            rec = _Record(id=image_id, config=cfg, parent=parent, last_tag_time=None)
            self._save_meta(rec)
            _atomic_write(self._images_dir / f"{image_id[7:]}.json", raw)
            self._images[image_id] = rec
            return image_id, True

    def _set_tag(self, ref: Reference, image_id: str, *, touch: bool) -> str | None:
        """Point ``ref`` at ``image_id``; returns the id it pointed at before (if different)."""
        key = str(ref)
        old = self._refs.get(key)
        self._refs[key] = image_id
        self._save_refs()
        if touch:
            rec = self._images[image_id]
            rec.last_tag_time = _now()
            self._save_meta(rec)
        return old if old != image_id else None

    # ------------------------------------------------------------------ load (docker load)

    def load_archive(self, path: Path, progress: ProgressFn | None = None) -> list[str]:
        """``docker load``; ``progress(short diff_id, bytes read, total)`` follows each new layer."""
        archive = _Archive(Path(path))
        try:
            if archive.has("manifest.json"):
                plans = self._plan_docker(archive)
            elif archive.has("index.json"):
                plans = self._plan_oci(archive)
            else:
                raise InvalidArgument("invalid image archive: no manifest.json or OCI index.json found")
            out: list[str] = []
            with self._write_lock:
                for plan in plans:
                    diff_ids = plan.config["rootfs"].get("diff_ids") or []
                    if len(plan.layers) != len(diff_ids):
                        raise InvalidArgument(
                            f"invalid manifest, layers length mismatch: expected {len(diff_ids)}, "
                            f"got {len(plan.layers)}"
                        )
                    for i, ((member, blob_digest), diff_id) in enumerate(zip(plan.layers, diff_ids, strict=True)):
                        with archive.open(member) as raw:
                            src: Any = raw
                            if progress is not None and diff_id not in self._layer_sizes:
                                src = _ProgressReader(raw, truncate_id(diff_id), archive.size(member), progress)
                            outer = HashingReader(src)
                            self._ensure_layer(outer, diff_id, i)  # type: ignore[arg-type]
                            outer.drain()
                            if blob_digest is not None and outer.digest() != blob_digest:
                                raise InvalidArgument(
                                    f"invalid image archive: layer blob {blob_digest} does not match its digest"
                                )
                    image_id, _ = self._register(plan.config_raw, plan.config)
                    with self._state:
                        for ref in plan.tags:
                            old = self._set_tag(ref, image_id, touch=False)
                            if old is not None:
                                out.append(
                                    f"The image {ref.familiar()} already exists, renaming the old "
                                    f"one with ID {old} to empty string"
                                )
                            out.append(f"Loaded image: {ref.familiar()}")
                    if not plan.tags:
                        out.append(f"Loaded image ID: {image_id}")
            return out
        finally:
            archive.close()

    def _plan_docker(self, archive: _Archive) -> list[_Planned]:
        try:
            manifest = json.loads(archive.read("manifest.json"))
        except ValueError as e:
            raise InvalidArgument(f"invalid manifest.json: {e}") from e
        if not isinstance(manifest, list):
            raise InvalidArgument("invalid manifest.json: not a list")
        plans = []
        for entry in manifest:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
                raise InvalidArgument("invalid manifest.json: entry without Config")
            raw = archive.read(entry["Config"])
            cfg_path = posixpath.normpath(entry["Config"])
            if cfg_path.startswith("blobs/sha256/"):
                if hashlib.sha256(raw).hexdigest() != cfg_path.rsplit("/", 1)[1]:
                    raise InvalidArgument(f"invalid image archive: config {cfg_path} does not match its digest")
            cfg = _parse_config(raw)
            layers: list[tuple[str, str | None]] = []
            for member in entry.get("Layers") or []:
                norm = posixpath.normpath(member)
                blob = None
                if norm.startswith("blobs/sha256/") and _is_hex64(norm.rsplit("/", 1)[1]):
                    blob = "sha256:" + norm.rsplit("/", 1)[1]
                layers.append((member, blob))
            tags = []
            for t in entry.get("RepoTags") or []:
                ref = refs.parse_normalized(t)
                if ref.tag is None or ref.digest is not None:
                    raise InvalidArgument(f"invalid tag {t!r}")
                tags.append(ref)
            plans.append(_Planned(config_raw=raw, config=cfg, layers=layers, tags=tags))
        return plans

    def _plan_oci(self, archive: _Archive) -> list[_Planned]:
        try:
            index = json.loads(archive.read("index.json"))
        except ValueError as e:
            raise InvalidArgument(f"invalid index.json: {e}") from e
        plans: list[_Planned] = []
        for desc in index.get("manifests") or []:
            annotations = desc.get("annotations") or {}
            tags: list[Reference] = []
            name = annotations.get(ANNOTATION_CONTAINERD_NAME)
            ref_name = annotations.get(ANNOTATION_REF_NAME)
            candidate = name or (ref_name if ref_name and any(c in ref_name for c in ":/@") else None)
            if candidate:
                ref = refs.parse_normalized(candidate).tag_name_only()
                if ref.digest is None:
                    tags.append(ref)
            manifest = self._oci_manifest(archive, desc, depth=0)
            config_desc = manifest.get("config") or {}
            raw = archive.read_blob(str(config_desc.get("digest", "")))
            cfg = _parse_config(raw)
            layers: list[tuple[str, str | None]] = []
            for layer in manifest.get("layers") or []:
                digest = str(layer.get("digest", ""))
                layers.append((archive.blob_path(digest), digest))
            existing = next((p for p in plans if p.config_raw == raw), None)
            if existing is not None:
                existing.tags.extend(t for t in tags if t not in existing.tags)
            else:
                plans.append(_Planned(config_raw=raw, config=cfg, layers=layers, tags=tags))
        if not plans:
            raise InvalidArgument("invalid OCI layout: index.json lists no manifests")
        return plans

    def _oci_manifest(self, archive: _Archive, desc: dict[str, Any], depth: int) -> dict[str, Any]:
        if depth > 4:
            raise InvalidArgument("invalid OCI layout: index nesting too deep")
        data = json.loads(archive.read_blob(str(desc.get("digest", ""))))
        media = desc.get("mediaType") or data.get("mediaType")
        if media in (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST) or "manifests" in data:
            entries = data.get("manifests") or []
            if not entries:
                raise InvalidArgument("invalid OCI layout: empty image index")
            arch, os_ = host_architecture(), "linux"

            def matches(e: dict[str, Any]) -> bool:
                p = e.get("platform") or {}
                return p.get("architecture") == arch and p.get("os") == os_

            chosen = next((e for e in entries if matches(e)), None)
            if chosen is None:
                chosen = next(
                    (e for e in entries if (e.get("platform") or {}).get("architecture") != "unknown"),
                    entries[0],
                )
            return self._oci_manifest(archive, chosen, depth + 1)
        return data

    # ------------------------------------------------------------------ import (docker import)

    def import_tarball(
        self,
        path: Path,
        *,
        repo: str | None,
        tag: str | None,
        changes: list[str],
        message: str,
    ) -> Image:
        new_ref = _new_tag(repo, tag)
        run_config = apply_changes(empty_container_config(), changes)
        with self._write_lock:
            with open(path, "rb") as f:
                diff_id = self._ensure_layer(f, None)  # type: ignore[arg-type]
            created = _now()
            cfg: dict[str, Any] = {
                "architecture": host_architecture(),
                "comment": message,
                "config": run_config,
                "container_config": empty_container_config(),
                "created": created,
                "docker_version": DOCKER_VERSION,
                "history": [{"created": created, "comment": message}],
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
            if not message:
                cfg.pop("comment")
                cfg["history"] = [{"created": created}]
            raw = _json_bytes(cfg)
            image_id, _ = self._register(raw, cfg)
            if new_ref is not None:
                with self._state:
                    self._set_tag(new_ref, image_id, touch=True)
            return self._image(image_id)

    # ------------------------------------------------------------------ commit (docker commit)

    def commit_layer(
        self,
        parent_id: str,
        layer_tar: Path | None,
        *,
        config: dict[str, Any],
        container_config: dict[str, Any],
        container_id: str,
        comment: str = "",
        author: str = "",
        repo: str | None = None,
        tag: str | None = None,
    ) -> Image:
        """A child of ``parent_id`` whose new layer is ``layer_tar`` (None: no changes, an empty
        layer as dockerd records it), built as dockerd's NewChildImage; tagged ``repo:tag``."""
        new_ref = _new_tag(repo, tag)
        with self._write_lock:
            parent_full = self._resolve(parent_id) if parent_id else ""
            pcfg: dict[str, Any] = self._images[parent_full].config if parent_full else {}
            diff_ids = list((pcfg.get("rootfs") or {}).get("diff_ids") or [])
            if layer_tar is not None:
                with open(layer_tar, "rb") as f:
                    diff_ids.append(self._ensure_layer(f, None))  # type: ignore[arg-type]
            created = _now()
            entry: dict[str, Any] = {"created": created}
            if author:
                entry["author"] = author
            created_by = " ".join(container_config.get("Cmd") or [])
            if created_by:
                entry["created_by"] = created_by
            if comment:
                entry["comment"] = comment
            if layer_tar is None:
                entry["empty_layer"] = True
            cfg: dict[str, Any] = {
                "created": created,
                "container": container_id,
                "container_config": container_config,
                "docker_version": DOCKER_VERSION,
            }
            if author:
                cfg["author"] = author
            cfg["config"] = config
            cfg["architecture"] = pcfg.get("architecture") or host_architecture()
            if pcfg.get("variant"):
                cfg["variant"] = pcfg["variant"]
            cfg["os"] = pcfg.get("os") or "linux"
            cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
            cfg["history"] = [*(pcfg.get("history") or []), entry]
            for key in ("os.version", "os.features"):
                if pcfg.get(key):
                    cfg[key] = pcfg[key]
            raw = _json_bytes(cfg)
            image_id, _ = self._register(raw, cfg, parent=parent_full)
            if new_ref is not None:
                with self._state:
                    self._set_tag(new_ref, image_id, touch=True)
            return self._image(image_id)

    # ------------------------------------------------------------------ queries

    def _image(self, image_id: str) -> Image:
        with self._state:
            rec = self._images[image_id]
            tags: list[str] = []
            digests: list[str] = []
            for ref_s, target in self._refs.items():
                if target != image_id:
                    continue
                ref = refs.parse_normalized(ref_s)
                (digests if ref.digest is not None else tags).append(ref.familiar())
            size = sum(self._layer_sizes.get(d, 0) for d in rec.diff_ids)
        cfg = rec.config

        def s(key: str) -> str:
            v = cfg.get(key)
            return v if isinstance(v, str) else ""

        return Image(
            id=image_id,
            repo_tags=tuple(sorted(tags)),
            repo_digests=tuple(sorted(digests)),
            parent=rec.parent,
            comment=s("comment"),
            created=s("created"),
            author=s("author"),
            docker_version=s("docker_version"),
            container=s("container"),
            architecture=s("architecture"),
            variant=s("variant"),
            os=s("os"),
            os_version=s("os.version"),
            size=size,
            diff_ids=tuple(rec.diff_ids),
            last_tag_time=rec.last_tag_time,
            config=cfg,
        )

    def list(self) -> list[Image]:
        with self._state:
            ids = list(self._images)
        images = [self._image(i) for i in ids if i in self._images]
        images.sort(key=lambda im: (im.created_unix, im.id), reverse=True)
        return images

    def _resolve(self, ref_or_id: str) -> str:
        """Docker's GetImage: full id, tag/digest reference, then unambiguous id prefix."""
        with self._state:
            s = ref_or_id
            if refs.is_full_id(s):
                full = s if s.startswith("sha256:") else "sha256:" + s
                if full in self._images:
                    return full
                raise NotFound(f"No such image: {full}")
            ref = refs.parse_normalized(s)  # InvalidArgument, as Docker's ParseAnyReference
            target = self._refs.get(str(ref.tag_name_only()))
            if target is not None and target in self._images:
                return target
            prefix = s.removeprefix("sha256:")
            if prefix and set(prefix) <= _HEX:
                found = [i for i in self._images if i[7:].startswith(prefix)]
                if len(found) == 1:
                    return found[0]
            raise NotFound(f"No such image: {ref.tag_name_only().familiar()}")

    def get(self, ref_or_id: str) -> Image:
        return self._image(self._resolve(ref_or_id))

    def exists(self, ref_or_id: str) -> bool:
        try:
            self._resolve(ref_or_id)
        except (NotFound, InvalidArgument):
            return False
        return True

    # ------------------------------------------------------------------ tagging

    def tag(self, ref_or_id: str, repo: str, tag: str | None = None) -> Image:
        new_ref = refs.parse_normalized(repo)
        if new_ref.digest is not None:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        if tag:
            new_ref = new_ref.with_tag(tag)
        new_ref = new_ref.tag_name_only()
        with self._write_lock:
            image_id = self._resolve(ref_or_id)
            with self._state:
                self._set_tag(new_ref, image_id, touch=True)
            return self._image(image_id)

    def references(self, image_id: str) -> builtins.list[Reference]:
        with self._state:
            return [refs.parse_normalized(r) for r, t in self._refs.items() if t == image_id]

    # ------------------------------------------------------------------ delete (docker rmi)

    def delete(
        self, ref_or_id: str, *, force: bool, users: UsersFn, prune: bool = True
    ) -> builtins.list[DeleteItem]:
        """``docker rmi``; ``prune=False`` (noprune) keeps untagged parents."""
        with self._write_lock:
            image_id = self._resolve(ref_or_id)
            records: builtins.list[DeleteItem] = []
            repo_refs = self.references(image_id)

            if not _is_id_prefix(image_id, ref_or_id):
                if not force and _is_single_reference(repo_refs):
                    using = users(image_id)
                    if using:
                        raise Conflict(
                            f"conflict: unable to remove repository reference "
                            f"{json.dumps(ref_or_id)} (must force) - container "
                            f"{truncate_id(using[0][0])} is using its referenced image "
                            f"{truncate_id(image_id)}"
                        )
                parsed = refs.parse_normalized(ref_or_id).tag_name_only()
                self._remove_ref(parsed)
                records.append(DeleteItem(untagged=parsed.familiar()))
                repo_refs = self.references(image_id)
                if parsed.digest is None:
                    same_repo_tag = any(r.digest is None and r.name == parsed.name for r in repo_refs)
                    if not same_repo_tag:
                        remaining: builtins.list[Reference] = []
                        for r in repo_refs:
                            if r.digest is not None and r.name == parsed.name:
                                self._remove_ref(r)
                                records.append(DeleteItem(untagged=r.familiar()))
                            else:
                                remaining.append(r)
                        repo_refs = remaining
                if repo_refs:
                    return records
                self._delete_helper(image_id, records, force=force, users=users, quiet=True, prune=prune)
                return records

            if _is_single_reference(repo_refs):
                conflict = self._conflict(
                    image_id, users, running=True, children=True, stopped=not force, refs_=False
                )
                if conflict is not None:
                    raise conflict
                for r in sorted(repo_refs, key=lambda r: r.familiar()):
                    self._remove_ref(r)
                    records.append(DeleteItem(untagged=r.familiar()))
            self._delete_helper(image_id, records, force=force, users=users, quiet=False, prune=prune)
            return records

    def _remove_ref(self, ref: Reference) -> None:
        with self._state:
            if self._refs.pop(str(ref), None) is None:
                raise NotFound(f"No such image: {ref.familiar()}")
            self._save_refs()

    def _conflict(
        self,
        image_id: str,
        users: UsersFn,
        *,
        running: bool,
        children: bool,
        stopped: bool,
        refs_: bool,
    ) -> _DeleteConflict | None:
        short = truncate_id(image_id)
        if children and any(r.parent == image_id for r in self._images.values()):
            return _DeleteConflict(short, True, False, "image has dependent child images")
        using = users(image_id) if (running or stopped) else []
        if running:
            for cid, is_running in using:
                if is_running:
                    return _DeleteConflict(
                        short, True, True, f"image is being used by running container {truncate_id(cid)}"
                    )
        if refs_ and self.references(image_id):
            return _DeleteConflict(short, False, False, "image is referenced in multiple repositories")
        if stopped:
            for cid, is_running in using:
                if not is_running:
                    return _DeleteConflict(
                        short, False, True, f"image is being used by stopped container {truncate_id(cid)}"
                    )
        return None

    def _delete_helper(
        self,
        image_id: str,
        records: builtins.list[DeleteItem],
        *,
        force: bool,
        users: UsersFn,
        quiet: bool,
        prune: bool = False,
    ) -> None:
        conflict = self._conflict(image_id, users, running=True, children=True, stopped=not force, refs_=not force)
        if conflict is not None:
            if quiet and (not self._is_dangling(image_id) or conflict.used):
                return
            raise conflict
        for r in sorted(self.references(image_id), key=lambda r: r.familiar()):
            self._remove_ref(r)
            records.append(DeleteItem(untagged=r.familiar()))

        in_use_by_containers = bool(users(image_id))
        with self._state:
            rec = self._images[image_id]
            still_used = {d for r in self._images.values() if r.id != image_id for d in r.diff_ids}
            if in_use_by_containers:  # a (forced) container still has these layers mounted: keep them
                self._retained |= {d for d in rec.diff_ids if d not in still_used}
                _atomic_write(self._retained_file, _json_bytes(sorted(self._retained)))
            del self._images[image_id]
            (self._images_dir / f"{image_id[7:]}.json").unlink(missing_ok=True)
            (self._images_dir / f"{image_id[7:]}.meta.json").unlink(missing_ok=True)
            _fsync_dir(self._images_dir)
            records.append(DeleteItem(deleted=image_id))
            if not in_use_by_containers:
                diff_ids = rec.diff_ids
                chains = chain_ids(diff_ids)
                for diff_id, chain in reversed([*zip(diff_ids, chains, strict=True)]):
                    if diff_id in still_used or diff_id not in self._layer_sizes or diff_id in self._pins:
                        continue
                    self._remove_layer(diff_id)
                    still_used.add(diff_id)  # the same diff twice in one image: remove once
                    records.append(DeleteItem(deleted=chain))
        # as dockerd: an untagged parent goes too, quietly, unless something still needs it
        if prune and rec.parent and rec.parent in self._images:
            self._delete_helper(rec.parent, records, force=False, users=users, quiet=True, prune=True)

    def _is_dangling(self, image_id: str) -> bool:
        """No reference and no child (dockerd's imageIsDangling)."""
        return not self.references(image_id) and not self._has_children(image_id)

    def _has_children(self, image_id: str) -> bool:
        with self._state:
            return any(r.parent == image_id for r in self._images.values())

    def prune_layers(self, keep: Iterable[str] = ()) -> builtins.list[str]:
        """Remove layers no image uses (and not listed in ``keep``); returns their diff_ids."""
        with self._write_lock, self._state:
            used = {d for r in self._images.values() for d in r.diff_ids} | set(keep) | set(self._pins)
            removed = [d for d in [*self._layer_sizes] if d not in used]
            for d in removed:
                self._remove_layer(d)
            return removed

    def prune(
        self, *, dangling_only: bool, select: Callable[[Image], bool], users: UsersFn
    ) -> tuple[builtins.list[DeleteItem], int]:
        """``docker image prune``, as dockerd's ImagesPrune: images without children (all images
        without ``dangling_only``) that ``select`` keeps, untagged intermediates skipped, images
        in use skipped quietly. Returns what was deleted and the bytes of the removed layers."""
        with self._write_lock:
            with self._state:
                candidates = [i for i in self._images if not (dangling_only and self._has_children(i))]
                sizes = {
                    chain: self._layer_sizes.get(d, 0)
                    for r in self._images.values()
                    for d, chain in zip(r.diff_ids, chain_ids(r.diff_ids), strict=True)
                }
            chosen = []
            for image_id in candidates:
                if not self.references(image_id) and self._has_children(image_id):
                    continue
                if select(self._image(image_id)):
                    chosen.append(image_id)
            items: builtins.list[DeleteItem] = []
            for image_id in chosen:
                if image_id not in self._images:
                    continue  # went as the parent of another
                repo_refs = self.references(image_id)
                try:
                    if not repo_refs:
                        items.extend(self.delete(image_id[7:], force=False, users=users))
                    elif not dangling_only or all(r.digest is not None for r in repo_refs):
                        for r in repo_refs:
                            try:
                                items.extend(self.delete(str(r), force=False, users=users))
                            except (Conflict, NotFound):
                                continue
                except (Conflict, NotFound):
                    continue
            reclaimed = sum(sizes.get(i.deleted, 0) for i in items if i.deleted)  # layers' chain ids
            return items, reclaimed

    # ------------------------------------------------------------------ history, save

    def history(self, ref_or_id: str) -> builtins.list[HistoryItem]:
        """``docker history``, as dockerd's ImageHistory (newest step first)."""
        image_id = self._resolve(ref_or_id)
        with self._state:
            rec = self._images[image_id]
            diff_ids = rec.diff_ids
            steps: builtins.list[dict[str, Any]] = [h for h in rec.config.get("history") or [] if isinstance(h, dict)]
            out: builtins.list[HistoryItem] = []
            n = 0
            for h in steps:
                size = 0
                if not h.get("empty_layer"):
                    if n >= len(diff_ids):
                        raise SystemError_("too many non-empty layers in History section")
                    size = self._layer_sizes.get(diff_ids[n], 0)
                    n += 1
                created = parse_rfc3339(str(h.get("created") or ""))
                out.append(HistoryItem(
                    id="<missing>",
                    created=int(created.timestamp()) if created else GO_ZERO_TIME_UNIX,
                    created_by=str(h.get("created_by") or ""),
                    tags=None,
                    size=size,
                    comment=str(h.get("comment") or ""),
                ))
            out.reverse()
            current: str = image_id
            for i, item in enumerate(out):
                tags = tuple(r.familiar() for r in self.references(current) if r.digest is None) or None
                out[i] = HistoryItem(id=current, created=item.created, created_by=item.created_by, tags=tags,
                                     size=item.size, comment=item.comment)
                current = self._images[current].parent if current in self._images else ""
                if not current or current not in self._images:
                    break
            return out

    def save_selection(self, names: Iterable[str]) -> builtins.list[tuple[str, builtins.list[Reference]]]:
        """What ``docker save NAMES`` exports, as dockerd's parseNames: (image id, its tags to
        record) in request order. A bare repository saves all its tags, an ID none."""
        chosen: dict[str, builtins.list[Reference]] = {}

        def add(image_id: str, ref: Reference | None) -> None:
            tags = chosen.setdefault(image_id, [])
            if ref is not None and ref.digest is None:
                ref = ref.tag_name_only()
                if ref not in tags:
                    tags.append(ref)

        with self._state:
            for name in names:
                if refs.is_full_id(name):
                    add(self._resolve(name), None)
                    continue
                ref = refs.parse_normalized(name)
                if ref.familiar_name() == "sha256" or (ref.tag is None and ref.digest is None):
                    by_name = sorted(
                        (r for r in (refs.parse_normalized(k) for k in self._refs) if r.name == ref.name),
                        key=lambda r: r.familiar(),
                    )
                    if ref.familiar_name() != "sha256" and by_name:
                        for r in by_name:
                            add(self._refs[str(r)], r)
                        continue
                    add(self._search(name), None)
                    continue
                target = self._refs.get(str(ref))
                if target is None or target not in self._images:
                    raise NotFound("reference does not exist")
                add(target, ref)
        return [*chosen.items()]

    def _search(self, term: str) -> str:
        """An image by (short) ID, as dockerd's image store Search."""
        prefix = term.removeprefix("sha256:")
        found = [i for i in self._images if i[7:].startswith(prefix)] if prefix and set(prefix) <= _HEX else []
        if len(found) == 1:
            return found[0]
        raise NotFound(f"No such image: {term}")

    # ------------------------------------------------------------------ filesystem access

    def layer_dirs(self, ref_or_id: str) -> builtins.list[Path]:
        """The image's layer ``diff`` dirs, lowest first (reverse it for overlay's lowerdir)."""
        image_id = self._resolve(ref_or_id)
        with self._state:
            return [self._layer_path(d) / "diff" for d in self._images[image_id].diff_ids]

    def read_file(self, ref_or_id: str, path: str, *, limit: int = 16 << 20) -> bytes | None:
        """Read ``path`` from the image's union view (whiteouts, opaque dirs honoured, symlinks
        followed inside the image's root only: ``images.union``)."""
        found = union.resolve([*reversed(self.layer_dirs(ref_or_id))], path)
        if found is None or not stat.S_ISREG(found.st.st_mode):
            return None
        try:
            fd = os.open(found.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
                return f.read(limit)
            except OSError:
                return None


def _new_tag(repo: str | None, tag: str | None) -> Reference | None:
    """The reference an import or commit is tagged with (`repo[:tag]`), if any."""
    if not repo:
        return None
    ref = refs.parse_normalized(repo)
    if ref.digest is not None:
        raise InvalidArgument("refusing to create a tag with a digest reference")
    if tag:
        ref = ref.with_tag(tag)
    return ref.tag_name_only()


class _DeleteConflict(Conflict):
    def __init__(self, short_id: str, hard: bool, used: bool, message: str) -> None:
        force_msg = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {short_id} ({force_msg}) - {message}")
        self.hard = hard
        self.used = used


def _is_id_prefix(image_id: str, candidate: str) -> bool:
    return image_id.startswith(candidate) or image_id.split(":", 1)[-1].startswith(candidate)


def _is_single_reference(repo_refs: list[Reference]) -> bool:
    if len(repo_refs) <= 1:
        return len(repo_refs) == 1
    single: Reference | None = None
    canonical_names: set[str] = set()
    for r in repo_refs:
        if r.digest is not None:
            canonical_names.add(r.name)
        elif single is None:
            single = r
        else:
            return False
    if single is None:
        single = repo_refs[0]
    return len(canonical_names) == 1 and single.name in canonical_names
