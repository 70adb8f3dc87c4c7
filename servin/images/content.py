"""Image configs by digest: ``images/<id hex>.json`` (the config, byte for byte; its sha256 is the
image id, verified on read) and ``images/<id hex>.meta.json`` (``{"parent", "last_tag_time"}``),
as moby's image store. Every file is written atomically (durable.py)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from servin.errors import Conflict, InvalidArgument, SystemError_
from servin.images.durable import atomic_write, fsync_dir, is_hex64, is_sha256_digest, json_bytes, remove_temp_files
from servin.images.model import Image, format_rfc3339_nano


def now_rfc3339() -> str:
    return format_rfc3339_nano(datetime.now(timezone.utc))


def image_id_of(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def parse_config(raw: bytes) -> dict[str, Any]:
    """An image config as stored: a JSON object whose ``rootfs`` lists sha256 diff_ids."""
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
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) and is_sha256_digest(d) for d in diff_ids):
        raise InvalidArgument("invalid image config: bad rootfs.diff_ids")
    return cfg


def config_diff_ids(cfg: dict[str, Any]) -> list[str]:
    rootfs = cfg.get("rootfs") or {}
    return list(rootfs.get("diff_ids") or [])


@dataclass(slots=True)
class ImageRecord:
    """A stored image: its parsed config and local metadata (mutable: the tag time moves)."""

    id: str
    config: dict[str, Any]
    parent: str
    last_tag_time: str | None

    @property
    def diff_ids(self) -> list[str]:
        return config_diff_ids(self.config)

    def image(self, *, tags: list[str], digests: list[str], size: int) -> Image:
        """The domain view, with what the other stores know: references and layer bytes."""
        cfg = self.config

        def s(key: str) -> str:
            v = cfg.get(key)
            return v if isinstance(v, str) else ""

        return Image(
            id=self.id, repo_tags=tuple(sorted(tags)), repo_digests=tuple(sorted(digests)), parent=self.parent,
            comment=s("comment"), created=s("created"), author=s("author"), docker_version=s("docker_version"),
            container=s("container"), architecture=s("architecture"), variant=s("variant"), os=s("os"),
            os_version=s("os.version"), size=size, diff_ids=tuple(self.diff_ids), last_tag_time=self.last_tag_time,
            config=cfg,
        )


class ContentStore:
    """The image configs in ``directory``, held in memory by id; ``state`` guards the map."""

    def __init__(self, directory: Path, state: threading.RLock) -> None:
        self.dir = directory
        self._state = state
        self._records: dict[str, ImageRecord] = {}

    def open(self, has_layer: Callable[[str], bool]) -> None:
        """Read every config whose digest checks and whose layers are all present; skip the rest."""
        self.dir.mkdir(parents=True, exist_ok=True)
        remove_temp_files(self.dir)
        for entry in self.dir.iterdir():
            name = entry.name
            if not name.endswith(".json") or name.endswith(".meta.json"):
                continue
            hexid = name[: -len(".json")]
            if not is_hex64(hexid):
                continue
            raw = entry.read_bytes()
            if hashlib.sha256(raw).hexdigest() != hexid:
                continue  # corrupt: ignore it
            try:
                cfg = parse_config(raw)
            except InvalidArgument:
                continue
            rec = ImageRecord(id="sha256:" + hexid, config=cfg, parent="", last_tag_time=None)
            if not all(has_layer(d) for d in rec.diff_ids):
                continue  # incomplete
            meta_path = self.dir / f"{hexid}.meta.json"
            if meta_path.exists():
                try:
                    meta = json.loads(meta_path.read_bytes())
                    rec.parent = str(meta.get("parent") or "")
                    rec.last_tag_time = meta.get("last_tag_time")
                except ValueError:
                    pass
            self._records[rec.id] = rec

    # ------------------------------------------------------------------ reads

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._records

    def record(self, image_id: str) -> ImageRecord:
        return self._records[image_id]

    def ids(self) -> list[str]:
        with self._state:
            return list(self._records)

    def records(self) -> Iterator[ImageRecord]:
        """The records (call under the state lock)."""
        return iter(list(self._records.values()))

    def used_layers(self, *, besides: str = "") -> set[str]:
        return {d for r in self._records.values() if r.id != besides for d in r.diff_ids}

    def has_children(self, image_id: str) -> bool:
        with self._state:
            return any(r.parent == image_id for r in self._records.values())

    def by_prefix(self, prefix: str) -> list[str]:
        """Ids whose hex starts with ``prefix`` (a hex string; empty matches nothing)."""
        if not prefix or not set(prefix) <= set("0123456789abcdef"):
            return []
        return [i for i in self._records if i[7:].startswith(prefix)]

    def raw(self, image_id: str) -> bytes:
        """The config exactly as stored, checked against its id."""
        raw = (self.dir / f"{image_id[7:]}.json").read_bytes()
        if image_id_of(raw) != image_id:
            raise SystemError_(f"image config {image_id} is corrupt on disk")
        return raw

    # ------------------------------------------------------------------ writes

    def register(self, raw: bytes, cfg: dict[str, Any], *, parent: str, has_layer: Callable[[str], bool]
                 ) -> tuple[str, bool]:
        """Write the config (after its layers exist). Returns (id, newly created)."""
        image_id = image_id_of(raw)
        with self._state:
            if image_id in self._records:
                return image_id, False
            missing = [d for d in config_diff_ids(cfg) if not has_layer(d)]
            if missing:
                raise Conflict(f"layer {missing[0]} disappeared while loading {image_id}")
            rec = ImageRecord(id=image_id, config=cfg, parent=parent, last_tag_time=None)
            self._save_meta(rec)
            atomic_write(self.dir / f"{image_id[7:]}.json", raw)
            self._records[image_id] = rec
            return image_id, True

    def set_parent(self, image_id: str, parent: str) -> None:
        rec = self._records[image_id]
        rec.parent = parent
        self._save_meta(rec)

    def touch(self, image_id: str) -> None:
        """Record that the image was just tagged."""
        rec = self._records[image_id]
        rec.last_tag_time = now_rfc3339()
        self._save_meta(rec)

    def remove(self, image_id: str) -> ImageRecord:
        rec = self._records.pop(image_id)
        (self.dir / f"{image_id[7:]}.json").unlink(missing_ok=True)
        (self.dir / f"{image_id[7:]}.meta.json").unlink(missing_ok=True)
        fsync_dir(self.dir)
        return rec

    def _save_meta(self, rec: ImageRecord) -> None:
        meta = {"parent": rec.parent, "last_tag_time": rec.last_tag_time}
        atomic_write(self.dir / f"{rec.id[7:]}.meta.json", json_bytes(meta))
