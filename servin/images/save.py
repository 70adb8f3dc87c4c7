"""``docker save``: the docker-archive format dockerd 20.10 writes, streamed.

Layout (tar entries in lexical order, as dockerd's directory walk gives them)::

    <v1 id>/               one per layer of each image (dirs and files dated at the image's creation)
    <v1 id>/VERSION        "1.0"
    <v1 id>/json           the legacy v1 image JSON (the top layer's carries the image's metadata)
    <v1 id>/layer.tar      the layer's original tar, or a symlink to an earlier copy of it
    <config hex>.json      the image config, byte for byte
    manifest.json          [{"Config", "RepoTags", "Layers"[, "Parent"]}]
    repositories           {familiar name: {tag: top v1 id}}

The v1 ids follow dockerd's scheme (sha256 of the v1 JSON with ``layer_id`` = the chain id and
``parent``), so they are stable for an image, though not byte-identical to dockerd's.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from typing import IO, Any, Protocol

from servin.errors import InvalidArgument, SystemError_
from servin.images.layer_store import chain_ids
from servin.images.model import Image, go_container_config, parse_rfc3339
from servin.images.reference import Reference


class ImageSource(Protocol):
    """What a save reads of the image service."""

    def get(self, ref_or_id: str) -> Image: ...
    def config_raw(self, ref_or_id: str) -> bytes: ...
    def save_selection(self, names: list[str]) -> list[tuple[str, list[Reference]]]: ...
    def layer_tar(self, diff_id: str) -> IO[bytes]: ...
    def layer_tar_size(self, diff_id: str) -> int: ...

EPOCH = "1970-01-01T00:00:00Z"


_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_json(obj: Any, *, sort_keys: bool = False) -> bytes:
    """encoding/json's bytes: compact, UTF-8, HTML characters escaped."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    for ch, esc in _GO_ESCAPES.items():
        text = text.replace(ch, esc)
    return text.encode()


def _v1_image(cfg: dict[str, Any], top: bool) -> dict[str, Any]:
    """dockerd's image.V1Image for a layer (field order and omitempty as Go marshals it)."""
    if not top:
        return {"created": EPOCH, "container_config": go_container_config(None)}
    out: dict[str, Any] = {}
    for key in ("comment", "created", "container"):
        if cfg.get(key) or key == "created":
            out[key] = cfg.get(key) or "0001-01-01T00:00:00Z"
    cc = cfg.get("container_config")
    out["container_config"] = go_container_config(cc if isinstance(cc, dict) else None)
    for key in ("docker_version", "author"):
        if cfg.get(key):
            out[key] = cfg[key]
    if isinstance(cfg.get("config"), dict):
        out["config"] = go_container_config(cfg["config"])
    for key in ("architecture", "variant", "os"):  # the top layer's os counts in its v1 id, as dockerd
        if cfg.get(key):
            out[key] = cfg[key]
    return out


@dataclass(slots=True)
class _LayerDir:
    v1_id: str
    diff_id: str
    json: bytes
    mtime: int
    link_to: str | None = None  # another v1 dir holding the same layer.tar


@dataclass(slots=True)
class _Saved:
    image_id: str
    config_raw: bytes
    tags: list[Reference]
    v1_ids: list[str]
    mtime: int
    parent: str


def _plan(store: ImageSource, selection: list[tuple[str, list[Reference]]]) -> tuple[list[_Saved], list[_LayerDir]]:
    images: list[_Saved] = []
    dirs: dict[str, _LayerDir] = {}
    for image_id, tags in selection:
        raw = store.config_raw(image_id)
        cfg = json.loads(raw)
        created = parse_rfc3339(str(cfg.get("created") or ""))
        mtime = int(created.timestamp()) if created else 0
        diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
        parent = ""
        v1_ids = []
        for i, (diff_id, chain) in enumerate(zip(diff_ids, chain_ids(diff_ids), strict=True)):
            v1 = _v1_image(cfg, top=i == len(diff_ids) - 1)
            # v1.CreateID: the v1 JSON as a map (top-level keys sorted, values as marshalled) + layer_id, parent
            keyed = {**v1, "layer_id": chain}
            if parent:
                keyed["parent"] = "sha256:" + parent
            v1_id = hashlib.sha256(_go_json(dict(sorted(keyed.items())))).hexdigest()
            head = {"id": v1_id, **({"parent": parent} if parent else {})}
            body = {**head, **v1}
            if cfg.get("os"):
                body["os"] = cfg["os"]
            dirs.setdefault(v1_id, _LayerDir(v1_id=v1_id, diff_id=diff_id, json=_go_json(body), mtime=mtime))
            v1_ids.append(v1_id)
            parent = v1_id
        images.append(_Saved(image_id=image_id, config_raw=raw, tags=tags, v1_ids=v1_ids, mtime=mtime,
                             parent=store.get(image_id).parent))
    first_with: dict[str, str] = {}
    ordered = sorted(dirs.values(), key=lambda d: d.v1_id)
    for d in ordered:
        if d.diff_id in first_with:
            d.link_to = first_with[d.diff_id]
        else:
            first_with[d.diff_id] = d.v1_id
    return images, ordered


def _manifest(images: list[_Saved]) -> tuple[bytes, bytes | None]:
    ids = {i.image_id for i in images}
    manifest = []
    repos: dict[str, dict[str, str]] = {}
    for img in images:
        item: dict[str, Any] = {
            "Config": img.image_id[7:] + ".json",
            "RepoTags": [t.familiar() for t in img.tags] or None,
            "Layers": [f"{v}/layer.tar" for v in img.v1_ids],
        }
        if img.parent and img.parent in ids:  # dockerd's validatedParentLinks
            item["Parent"] = img.parent
        manifest.append(item)
        for t in img.tags:
            if img.v1_ids:
                repos.setdefault(t.familiar_name(), {})[t.tag or "latest"] = img.v1_ids[-1]
    repositories = _go_json({k: dict(sorted(v.items())) for k, v in sorted(repos.items())}) + b"\n" if repos else None
    return _go_json(manifest) + b"\n", repositories


_TYPE_BITS = {tarfile.DIRTYPE: 0o040000, tarfile.SYMTYPE: 0o120000, tarfile.REGTYPE: 0o100000}


class _GoTarInfo(tarfile.TarInfo):
    """A header whose mode field carries the file type bits (0o40755 for a directory), as Go's
    tar.FileInfoHeader writes them; Python's tarfile masks the field to 0o7777."""

    def tobuf(self, format: int | None = tarfile.DEFAULT_FORMAT, encoding: str | None = tarfile.ENCODING,
              errors: str = "surrogateescape") -> bytes:
        buf = bytearray(super().tobuf(format, encoding, errors))  # type: ignore[arg-type]
        block = len(buf) - tarfile.BLOCKSIZE  # the ustar header comes last (after any long-name blocks)
        buf[block + 100:block + 108] = b"%07o\0" % (self.mode | _TYPE_BITS.get(self.type, 0))
        buf[block + 148:block + 156] = b" " * 8
        chksum = sum(buf[block:block + tarfile.BLOCKSIZE])
        buf[block + 148:block + 155] = b"%06o\0" % chksum
        return bytes(buf)


def _info(name: str, size: int, mtime: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    ti = _GoTarInfo(name)
    ti.size, ti.mtime, ti.type = size, mtime, kind
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else (0o777 if kind == tarfile.SYMTYPE else 0o644)
    ti.uname = ti.gname = "root"
    return ti


def selection_names(store: ImageSource, names: list[str]) -> list[tuple[str, list[Reference]]]:
    """Resolve the names first, so an unknown one is a 404 before any byte is sent."""
    selection = store.save_selection(names)
    for image_id, _ in selection:
        if not store.get(image_id).diff_ids:
            raise InvalidArgument("empty export - not implemented")
    return selection


def write_archive(store: ImageSource, selection: list[tuple[str, list[Reference]]], out: IO[bytes]) -> None:
    """Write the archive for ``selection`` (from :func:`selection_names`) to ``out``, streaming
    each layer's tar from the store."""
    images, dirs = _plan(store, selection)
    manifest, repositories = _manifest(images)
    entries: list[tuple[str, Any]] = []
    for d in dirs:
        entries.append((d.v1_id, d))
    for img in images:
        entries.append((img.image_id[7:] + ".json", img))
    entries.append(("manifest.json", manifest))
    if repositories is not None:
        entries.append(("repositories", repositories))
    entries.sort(key=lambda e: e[0])

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for name, what in entries:
            if isinstance(what, _LayerDir):
                tf.addfile(_info(name + "/", 0, what.mtime, tarfile.DIRTYPE))
                tf.addfile(_info(name + "/VERSION", 3, what.mtime), io.BytesIO(b"1.0"))
                tf.addfile(_info(name + "/json", len(what.json), what.mtime), io.BytesIO(what.json))
                if what.link_to is not None:
                    link = _info(name + "/layer.tar", 0, what.mtime, tarfile.SYMTYPE)
                    link.linkname = f"../{what.link_to}/layer.tar"
                    tf.addfile(link)
                else:
                    size = store.layer_tar_size(what.diff_id)
                    with store.layer_tar(what.diff_id) as layer:
                        tf.addfile(_info(name + "/layer.tar", size, what.mtime), layer)
                        if layer.read(1):  # also runs the digest check at the end of the stream
                            raise SystemError_(f"layer {what.diff_id} is longer than recorded")
            elif isinstance(what, _Saved):
                tf.addfile(_info(name, len(what.config_raw), what.mtime), io.BytesIO(what.config_raw))
            else:
                tf.addfile(_info(name, len(what), 0), io.BytesIO(what))
