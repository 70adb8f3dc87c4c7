"""``docker load``: docker-archive (``manifest.json``) and OCI image layout (``index.json``)
tarballs, possibly compressed, read member by member (moby's image/tarexport load.go). Writing
a docker-archive is save.py."""

from __future__ import annotations

import hashlib
import json
import posixpath
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from servin.errors import InvalidArgument
from servin.images import reference as refs
from servin.images.content import config_diff_ids, parse_config
from servin.images.durable import is_hex64
from servin.images.layer_store import LayerStore
from servin.images.layers import HashingReader
from servin.images.manifests import INDEX_TYPES, ManifestSource
from servin.images.model import host_architecture
from servin.images.progress import LayerProgress, ProgressSink
from servin.images.reference import Reference, truncate_id

MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
_PROGRESS_EVERY = 512 * 1024  # as dockerd's progress reader

Register = Callable[[bytes, dict[str, Any], "ManifestSource | None"], str]  # (config bytes, parsed, manifests) -> id
SetTag = Callable[[Reference, str], "str | None"]  # -> the id the tag pointed at before


class _ProgressReader:
    def __init__(self, inner: IO[bytes], short_id: str, total: int, report: ProgressSink) -> None:
        self._inner, self._id, self._total, self._report = inner, short_id, total, report
        self._current = self._last = 0

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        self._current += len(data)
        if (not data and self._current != self._last) or self._current - self._last > _PROGRESS_EVERY:
            self._last = self._current
            self._report(LayerProgress(id=self._id, action="Loading layer", current=self._current,
                                       total=self._total))
        return data


class _Archive:
    """Random access to the members of a (possibly compressed) image archive."""

    def __init__(self, path: Path) -> None:
        try:
            self._tf = tarfile.open(path, "r:*")
            members = self._tf.getmembers()
        except (tarfile.TarError, OSError, EOFError) as e:
            cut = isinstance(e, EOFError) or any(w in str(e) for w in ("truncated", "end of data", "empty file"))
            raise _tar_error(eof=cut) from e
        _check_complete(self._tf, path)
        self.members: dict[str, tarfile.TarInfo] = {}
        for m in members:
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
        if algo != "sha256" or not is_hex64(hexpart):
            raise InvalidArgument(f"invalid image archive: unsupported digest {digest!r}")
        return f"blobs/sha256/{hexpart}"


def _tar_error(*, eof: bool) -> InvalidArgument:
    """What dockerd's tar reader says of a broken archive: cut short, or a block that is no header."""
    reason = "unexpected EOF" if eof else "archive/tar: invalid tar header"
    return InvalidArgument(f"Error processing tar file(exit status 1): {reason}")


def _check_complete(tf: tarfile.TarFile, path: Path) -> None:
    """Python's tarfile ends quietly at a cut or broken header after the first member; Go's does not.
    A plain tar must end at EOF or in a zero block, with every member's data inside the file (a
    compressed one was cut short if its decompressor raised)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(4).startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ"[:4], b"(\xb5/\xfd")):
            return
        f.seek(tf.offset)
        block = f.read(tarfile.BLOCKSIZE)
    if any(m.offset_data + m.size > size for m in tf.getmembers()) or 0 < len(block) < tarfile.BLOCKSIZE:
        raise _tar_error(eof=True)
    if block.strip(b"\0"):
        raise _tar_error(eof=False)


@dataclass(slots=True)
class _Planned:
    config_raw: bytes
    config: dict[str, Any]
    layers: list[tuple[str, str | None]]  # (archive path, expected blob digest or None)
    tags: list[Reference]
    source: ManifestSource | None = None  # an OCI layout's index entry and manifest


def load_archive(path: Path, layers: LayerStore, register: Register, set_tag: SetTag,
                 progress: ProgressSink | None = None) -> list[str]:
    """Store the images of the archive at ``path``: their layers (verified against the configs'
    diff_ids, and the blob digests of an OCI layout), configs and tags. Returns dockerd's lines
    (``Loaded image: busybox:latest``); ``progress`` follows each new layer as it is read."""
    archive = _Archive(Path(path))
    try:
        if archive.has("manifest.json"):
            plans = _plan_docker(archive)
            if archive.has("index.json"):  # dockerd >= 25 writes both: its manifests come with the images
                _with_oci_sources(archive, plans)
        elif archive.has("index.json"):
            plans = _plan_oci(archive)
        else:
            raise InvalidArgument("invalid image archive: no manifest.json or OCI index.json found")
        out: list[str] = []
        for plan in plans:
            diff_ids = config_diff_ids(plan.config)
            if len(plan.layers) != len(diff_ids):
                raise InvalidArgument(
                    f"invalid manifest, layers length mismatch: expected {len(diff_ids)}, got {len(plan.layers)}"
                )
            for i, ((member, blob_digest), diff_id) in enumerate(zip(plan.layers, diff_ids, strict=True)):
                with archive.open(member) as raw:
                    src: Any = raw
                    if progress is not None and not layers.has(diff_id):
                        src = _ProgressReader(raw, truncate_id(diff_id), archive.size(member), progress)
                    outer = HashingReader(src)
                    layers.ensure(outer, diff_id, i)  # type: ignore[arg-type]
                    outer.drain()
                    if blob_digest is not None and outer.digest() != blob_digest:
                        raise InvalidArgument(
                            f"invalid image archive: layer blob {blob_digest} does not match its digest"
                        )
            image_id = register(plan.config_raw, plan.config, plan.source)
            for ref in plan.tags:
                old = set_tag(ref, image_id)
                if old is not None:
                    out.append(
                        f"The image {ref.familiar()} already exists, renaming the old one with ID {old} to empty string"
                    )
                out.append(f"Loaded image: {ref.familiar()}")
            if not plan.tags:
                out.append(f"Loaded image ID: {image_id}")
        return out
    finally:
        archive.close()


def _plan_docker(archive: _Archive) -> list[_Planned]:
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
        cfg = parse_config(raw)
        layers: list[tuple[str, str | None]] = []
        for member in entry.get("Layers") or []:
            norm = posixpath.normpath(member)
            blob = None
            if norm.startswith("blobs/sha256/") and is_hex64(norm.rsplit("/", 1)[1]):
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


def _with_oci_sources(archive: _Archive, plans: list[_Planned]) -> None:
    """Give the plans of a docker-archive the manifests its index.json lists for the same configs."""
    try:
        by_config = {p.config_raw: p.source for p in _plan_oci(archive)}
    except (InvalidArgument, ValueError, AttributeError, TypeError):
        return  # an index Servin cannot read: the images get made manifests, as from any docker-archive
    for plan in plans:
        plan.source = by_config.get(plan.config_raw)


def _plan_oci(archive: _Archive) -> list[_Planned]:
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
        manifest_raw = _oci_manifest(archive, desc, depth=0)
        manifest = json.loads(manifest_raw)
        config_desc = manifest.get("config") or {}
        raw = archive.read_blob(str(config_desc.get("digest", "")))
        cfg = parse_config(raw)
        layers: list[tuple[str, str | None]] = []
        for layer in manifest.get("layers") or []:
            digest = str(layer.get("digest", ""))
            layers.append((archive.blob_path(digest), digest))
        existing = next((p for p in plans if p.config_raw == raw), None)
        if existing is not None:
            existing.tags.extend(t for t in tags if t not in existing.tags)
        else:
            top = archive.read_blob(str(desc.get("digest", "")))
            source = ManifestSource(top=top, top_media_type=str(desc.get("mediaType") or _media_type(top)),
                                    manifest=manifest_raw)
            plans.append(_Planned(config_raw=raw, config=cfg, layers=layers, tags=tags, source=source))
    if not plans:
        raise InvalidArgument("invalid OCI layout: index.json lists no manifests")
    return plans


def _media_type(raw: bytes) -> str:
    data = json.loads(raw)
    return str(data.get("mediaType") or (MEDIA_OCI_INDEX if "manifests" in data else MEDIA_OCI_MANIFEST))


def _oci_manifest(archive: _Archive, desc: dict[str, Any], depth: int) -> bytes:
    """The bytes of the image manifest `desc` names (the host's platform's, under an index)."""
    if depth > 4:
        raise InvalidArgument("invalid OCI layout: index nesting too deep")
    raw = archive.read_blob(str(desc.get("digest", "")))
    data = json.loads(raw)
    media = desc.get("mediaType") or data.get("mediaType")
    if media in INDEX_TYPES or "manifests" in data:
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
        return _oci_manifest(archive, chosen, depth + 1)
    return raw
