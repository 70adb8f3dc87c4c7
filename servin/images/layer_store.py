"""The layers of the image store, by diff_id, as moby's layer store; extraction itself is layers.py.

Layout under the store's root::

    layers/<diff_id hex>/diff           the extracted layer (overlay format), renamed into place whole
    layers/<diff_id hex>/layer.json     {"diff_id", "size", "tar_size"}
    layers/<diff_id hex>/tar-split.bin  what rebuilds the original tar from diff/ (tarsplit.py)
    layers/.tmp-*  layers/.del-*        in-flight extracts / deletions; removed on open
    retained-layers.json                layers of images force-removed while containers used them
    distribution/<diff_id hex>.json     [{repository, digest, media_type, size}]: registry blobs of a layer

A layer is extracted into a temp directory and renamed only once its digest has been verified, so
a crash never leaves a half layer under its final name. Pins (a pull counting on a layer) and the
retained set keep a layer no image uses from being removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from servin import safefs
from servin.errors import InvalidArgument, NotFound, SystemError_
from servin.images import tarsplit
from servin.images.durable import (
    atomic_write,
    fsync_dir,
    is_hex64,
    is_sha256_digest,
    json_bytes,
    remove_leftover,
    remove_temp_files,
)
from servin.images.layers import digest_of_stream, extract_layer
from servin.images.model import BlobRef
from servin.images.reference import parse_normalized

MAX_BLOBS_PER_LAYER = 50


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


class LayerStore:
    """Layers on disk with their sizes, pins, retained set and registry blob records."""

    def __init__(self, root: Path, state: threading.RLock) -> None:
        self.root = root
        self.dir = root / "layers"
        self._dist_dir = root / "distribution"
        self._retained_file = root / "retained-layers.json"
        self._state = state
        self._blob_lock = threading.Lock()
        self._sizes: dict[str, int] = {}  # diff_id -> bytes of content
        self._tar_sizes: dict[str, int] = {}  # diff_id -> bytes of its tar (when known)
        self._blobs: dict[str, list[BlobRef]] = {}  # diff_id -> registry blobs holding it
        self._pins: dict[str, int] = {}  # diff_id -> pulls counting on it (see pinned())
        self._retained: set[str] = set()

    # ------------------------------------------------------------------ opening / recovery

    def open(self) -> None:
        """Drop in-flight leftovers; read the committed layers (a dir without layer.json is removed)."""
        for d in (self.dir, self._dist_dir):
            d.mkdir(parents=True, exist_ok=True)
        for entry in self.dir.iterdir():
            if entry.name.startswith((".tmp-", ".del-")):
                remove_leftover(entry)
        remove_temp_files(self.root)
        remove_temp_files(self._dist_dir)
        for entry in self.dir.iterdir():
            if not is_hex64(entry.name):
                continue
            try:
                meta = json.loads((entry / "layer.json").read_bytes())
                self._sizes["sha256:" + entry.name] = int(meta["size"])
                if "tar_size" in meta:
                    self._tar_sizes["sha256:" + entry.name] = int(meta["tar_size"])
            except (OSError, ValueError, KeyError, TypeError):
                remove_leftover(entry)  # not a committed layer

    def collect(self, used: set[str]) -> None:
        """Second step of opening, once the images are read: remove the layers no image uses (left
        by a load or pull that died before its image was registered) unless retained, then read
        the blob records of the layers kept."""
        try:
            self._retained = set(json.loads(self._retained_file.read_bytes()))
        except (OSError, ValueError, TypeError):
            self._retained = set()
        for diff_id in [d for d in self._sizes if d not in used and d not in self._retained]:
            self.remove(diff_id)
        for entry in self._dist_dir.iterdir():
            hexid = entry.name.removesuffix(".json")
            if not entry.name.endswith(".json") or not is_hex64(hexid):
                continue
            if "sha256:" + hexid not in self._sizes:
                entry.unlink(missing_ok=True)  # its layer went (a crash between the two removals)
                continue
            try:
                self._blobs["sha256:" + hexid] = [BlobRef(**b) for b in json.loads(entry.read_bytes())]
            except (ValueError, TypeError):
                entry.unlink(missing_ok=True)

    # ------------------------------------------------------------------ reads

    def path(self, diff_id: str) -> Path:
        return self.dir / diff_id.split(":", 1)[1]

    def diff_dir(self, diff_id: str) -> Path:
        return self.path(diff_id) / "diff"

    def has(self, diff_id: str) -> bool:
        return diff_id in self._sizes

    def size(self, diff_id: str) -> int:
        return self._sizes.get(diff_id, 0)

    def all(self) -> list[str]:
        return [*self._sizes]

    def is_pinned(self, diff_id: str) -> bool:
        return diff_id in self._pins

    def pinned_ids(self) -> set[str]:
        return set(self._pins)

    # ------------------------------------------------------------------ adding

    def ensure(self, stream: IO[bytes], expected: str | None, index: int = 0, *, label: str = "") -> str:
        """Extract ``stream`` as a layer unless present; verify it hashes to ``expected``.

        Thread-safe: concurrent calls extract into their own temp dirs and the first to finish is kept."""
        what = label or f"invalid diffID for layer {index}"
        if expected is not None and expected in self._sizes:
            actual, _ = digest_of_stream(stream)
            if actual != expected:
                raise InvalidArgument(f'{what}: expected "{expected}", got "{actual}"')
            return expected
        tmp = self.dir / f".tmp-{uuid.uuid4().hex}"
        (tmp / "diff").mkdir(parents=True)
        try:
            result = extract_layer(stream, tmp / "diff", split_path=tmp / tarsplit.SPLIT_FILE)
            if expected is not None and result.diff_id != expected:
                raise InvalidArgument(f'{what}: expected "{expected}", got "{result.diff_id}"')
            self._commit(tmp, result.diff_id, result.size, result.tar_size)
        except BaseException:
            safefs.remove_tree(tmp, ignore_errors=True)  # what it cannot remove, the next start retries
            raise
        return result.diff_id

    def ingest(self, stream: IO[bytes], expected_diff_id: str | None) -> str:
        """A registry blob (gzip/bzip2/xz detected, or plain tar) as a layer; its diff_id. A digest
        other than ``expected_diff_id`` is InvalidArgument and leaves nothing behind."""
        if expected_diff_id is not None and not is_sha256_digest(expected_diff_id):
            raise InvalidArgument(f"invalid diffID {expected_diff_id!r}")
        return self.ensure(stream, expected_diff_id, label="layer does not match its diffID")

    def _commit(self, tmp: Path, diff_id: str, size: int, tar_size: int) -> None:
        """Rename an extracted temp layer into place (or drop it if the layer exists)."""
        final = self.path(diff_id)
        with self._state:
            if diff_id in self._sizes:
                safefs.remove_tree(tmp, ignore_errors=True)
                return
            meta = {"diff_id": diff_id, "size": size, "tar_size": tar_size}
            atomic_write(tmp / "layer.json", json_bytes(meta))
            fsync_dir(tmp)
            if final.exists():  # a stale uncommitted dir: cannot happen after open, be safe
                safefs.remove_tree(final)
            os.rename(tmp, final)
            fsync_dir(self.dir)
            self._sizes[diff_id] = size
            self._tar_sizes[diff_id] = tar_size

    # ------------------------------------------------------------------ removing, pinning, retaining

    def remove(self, diff_id: str) -> None:
        final = self.path(diff_id)
        doomed = self.dir / f".del-{final.name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(final, doomed)
        except FileNotFoundError:
            return
        fsync_dir(self.dir)
        self._sizes.pop(diff_id, None)
        self._tar_sizes.pop(diff_id, None)
        self._drop_blobs(diff_id)
        if diff_id in self._retained:
            self._retained.discard(diff_id)
            atomic_write(self._retained_file, json_bytes(sorted(self._retained)))
        safefs.remove_tree(doomed, ignore_errors=True)  # what it cannot remove, the next start retries

    def retain(self, diff_ids: Iterable[str]) -> None:
        """Keep these layers though no image uses them (containers still have them mounted)."""
        self._retained |= set(diff_ids)
        atomic_write(self._retained_file, json_bytes(sorted(self._retained)))

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

    # ------------------------------------------------------------------ the original tar

    def tar(self, diff_id: str) -> IO[bytes]:
        """The layer's original uncompressed tar, streamed (its sha256 is ``diff_id``; a mismatch
        found at the end raises SystemError_)."""
        if diff_id not in self._sizes:
            raise NotFound(f"layer {diff_id} does not exist")
        layer = self.path(diff_id)
        if (layer / tarsplit.SPLIT_FILE).exists():
            return tarsplit.open_stream(tarsplit.replay(layer, diff_id))
        # Stored by an older Servin without a tar-split: a deterministic tar may still match.
        tmp = tempfile.TemporaryFile(dir=self.root)
        try:
            tarsplit.regenerate(layer / "diff", tmp)
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
        return tmp

    def tar_size(self, diff_id: str) -> int:
        """Bytes of ``tar(diff_id)`` (counted once for layers stored before it was recorded)."""
        size = self._tar_sizes.get(diff_id)
        if size is None:
            n = 0
            with self.tar(diff_id) as f:
                while chunk := f.read(1 << 20):
                    n += len(chunk)
            size = self._tar_sizes[diff_id] = n
        return size

    # ------------------------------------------------------------------ registry blob records

    def record_blob(self, diff_id: str, repository: str, digest: str, media_type: str, size: int) -> None:
        """Remember that ``repository`` (any spelling; stored fully qualified) holds the layer as the
        blob ``digest``. Newest last; at most 50 per layer."""
        repo = parse_normalized(repository).name
        entry = BlobRef(repository=repo, digest=digest, media_type=media_type, size=int(size))
        with self._blob_lock:
            current = [b for b in self._blobs.get(diff_id, []) if (b.repository, b.digest) != (repo, digest)]
            current = [*current, entry][-MAX_BLOBS_PER_LAYER:]
            data = json_bytes(
                [{"repository": b.repository, "digest": b.digest, "media_type": b.media_type, "size": b.size}
                 for b in current]
            )
            atomic_write(self._dist_dir / f"{diff_id.split(':', 1)[1]}.json", data)
            self._blobs[diff_id] = current

    def blobs_for(self, diff_id: str) -> list[BlobRef]:
        with self._blob_lock:
            return list(self._blobs.get(diff_id, []))

    def _drop_blobs(self, diff_id: str) -> None:
        with self._blob_lock:
            self._blobs.pop(diff_id, None)
            (self._dist_dir / f"{diff_id.split(':', 1)[1]}.json").unlink(missing_ok=True)
