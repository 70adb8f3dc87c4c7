"""The OCI side of an image: the descriptor of its target (the index or manifest a registry or an OCI
layout named) and the manifests under it, as dockerd's containerd image store reports them
(`Descriptor`, `Manifests`; moby daemon/containerd/image_list.go).

A pulled image keeps the registry's index (when it came through one) and its own manifest; an image
loaded from an OCI layout keeps the layout's. Every other image (built, committed, imported, loaded
from a docker-archive, or stored before this module) gets an OCI image manifest over its config and
its layers as Servin stores them (uncompressed tars), made once and stored, so its Descriptor is the
same on every call and across restarts, and a save and load gives it back unchanged.

Layout under the image store's root::

    manifests/<hex>          manifest and index blobs by sha256 (verified on read)
    targets/<image id hex>   {"target": descriptor, "manifest": digest, "repositories": [...]}

Blobs are written before the target that names them, each atomically (durable.py): a crash leaves at
most an unnamed blob, swept when the store opens; a target whose blob is missing or corrupt counts
as absent, and the image gets its made manifest again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servin.errors import NotFound, ServinError
from servin.images.durable import atomic_write, is_hex64, json_bytes, remove_temp_files
from servin.images.model import Image

log = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
# buildkit's attestation manifests, marked in the index (moby's attestation.DockerAnnotationReference*)
REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION = "attestation-manifest"

# ocispec.Descriptor and ocispec.Platform fields in Go's order (all but mediaType, digest, size omitempty)
_DESCRIPTOR_FIELDS = ("mediaType", "digest", "size", "urls", "annotations", "data", "platform", "artifactType")
_PLATFORM_FIELDS = ("architecture", "os", "os.version", "os.features", "variant")


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestSource:
    """What a registry or an OCI layout named for an image: the top blob (an index, or the image's
    manifest itself) and the image's manifest, byte for byte."""

    top: bytes
    top_media_type: str
    manifest: bytes
    repository: str = ""  # the repository it was pulled from (fully qualified), if pulled


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestSummary:
    """One manifest under an image's target (moby's image.ManifestSummary, in domain terms)."""

    descriptor: Mapping[str, Any]  # the OCI descriptor, as the index lists it (Go's field order)
    available: bool  # its config and layers are in the store
    kind: str  # "image", "attestation" or "unknown"
    content_size: int  # bytes of its blobs the store holds (manifest, config, layers)
    unpacked_size: int = 0  # of an image: its layers unpacked
    platform: Mapping[str, Any] | None = None  # of an image: the index's, else its config's
    attestation_for: str = ""  # of an attestation: the manifest it is about
    own: bool = False  # the manifest of this image's config: the one its containers use


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageManifests:
    """An image's target descriptor and the manifests under it."""

    descriptor: Mapping[str, Any]
    manifests: tuple[ManifestSummary, ...]
    repositories: tuple[str, ...] = ()  # where it was pulled from

    def own(self) -> ManifestSummary:
        """The manifest of the image's config (the platform it was pulled or made for)."""
        return next(m for m in self.manifests if m.own)

    def container_descriptor(self) -> dict[str, Any]:
        """What a container made from the image records of it (dockerd's ImageManifest): its own manifest's
        descriptor with the platform (the index's, else its config's)."""
        own = self.own()
        return go_descriptor({**own.descriptor, "platform": own.platform})


def digest_of(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def go_descriptor(desc: Mapping[str, Any]) -> dict[str, Any]:
    """A descriptor as Go marshals ocispec.Descriptor: its field order, empty optional fields left out."""
    out: dict[str, Any] = {"mediaType": desc.get("mediaType") or "", "digest": desc.get("digest") or "",
                           "size": desc.get("size") or 0}
    for key in _DESCRIPTOR_FIELDS[3:]:
        value = desc.get(key)
        if value and key == "platform" and isinstance(value, dict):
            out[key] = go_platform(value)
        elif value and key == "annotations" and isinstance(value, dict):
            out[key] = dict(sorted(value.items()))  # a Go map: marshalled in key order
        elif value:
            out[key] = value
    return out


def go_platform(p: Mapping[str, Any]) -> dict[str, Any]:
    """ocispec.Platform as Go marshals it: architecture and os always, the rest when set."""
    out: dict[str, Any] = {"architecture": p.get("architecture") or "", "os": p.get("os") or ""}
    out.update({k: p[k] for k in _PLATFORM_FIELDS[2:] if p.get(k)})
    return out


def made_manifest(config_raw: bytes, diff_ids: Iterable[str], tar_size: Callable[[str], int]) -> bytes:
    """The OCI image manifest Servin gives an image that came with none: its config, and its layers as
    the store keeps them (uncompressed tars, whose digests are the diff_ids). Deterministic: the same
    image always has the same manifest (compact JSON in Go's field order)."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config_raw), "size": len(config_raw)},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": tar_size(d)} for d in diff_ids],
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


def _config_platform(image: Image) -> dict[str, Any]:
    features = image.config.get("os.features")
    return go_platform({"architecture": image.architecture, "os": image.os, "os.version": image.os_version,
                        "os.features": features if isinstance(features, list) else None,
                        "variant": image.variant})


def _content_size(manifest_raw: bytes) -> int:
    """The bytes of a manifest and the blobs it lists (as containerd sums an image's present content)."""
    try:
        m = json.loads(manifest_raw)
        parts = [m.get("config") or {}, *(m.get("layers") or [])]
        return len(manifest_raw) + sum(int(p.get("size") or 0) for p in parts if isinstance(p, dict))
    except (ValueError, TypeError, AttributeError, OverflowError):  # a size of 1e999 is a float infinity
        return len(manifest_raw)


def summarize(image: Image, target: Mapping[str, Any], top: bytes, manifest: bytes,
              repositories: tuple[str, ...] = ()) -> ImageManifests:
    """What dockerd reports of an image whose target is `target` (`top` its bytes) and whose own manifest
    is `manifest`: under an index, every manifest it lists (the other platforms' not available, their
    content not counted; attestations and unknown/unknown entries as such), else the one manifest."""
    own_digest = digest_of(manifest)
    content = _content_size(manifest)

    def own(desc: Mapping[str, Any], platform: Mapping[str, Any] | None) -> ManifestSummary:
        return ManifestSummary(descriptor=go_descriptor(desc), available=True, kind="image", content_size=content,
                               unpacked_size=image.size, platform=go_platform(platform or _config_platform(image)),
                               own=True)

    if target.get("mediaType") not in INDEX_TYPES:
        return ImageManifests(descriptor=go_descriptor(target), manifests=(own(target, None),),
                              repositories=repositories)
    entries: list[ManifestSummary] = []
    for entry in _index_entries(top):
        if entry.get("mediaType") not in MANIFEST_TYPES:
            continue  # a nested index or an artifact: dockerd walks manifests only
        platform = entry.get("platform") if isinstance(entry.get("platform"), dict) else None
        if entry.get("digest") == own_digest:
            entries.append(own(entry, platform))
            continue
        found = entry.get("annotations")
        annotations: dict[str, Any] = found if isinstance(found, dict) else {}
        if annotations.get(REFERENCE_TYPE) == ATTESTATION and annotations.get(REFERENCE_DIGEST):
            entries.append(ManifestSummary(descriptor=go_descriptor(entry), available=False, kind="attestation",
                                           content_size=0, attestation_for=str(annotations[REFERENCE_DIGEST])))
        elif annotations.get(REFERENCE_TYPE) == ATTESTATION or (
                platform is not None and platform.get("os") == platform.get("architecture") == "unknown"):
            entries.append(ManifestSummary(descriptor=go_descriptor(entry), available=False, kind="unknown",
                                           content_size=0))
        else:
            entries.append(ManifestSummary(descriptor=go_descriptor(entry), available=False, kind="image",
                                           content_size=0, platform=go_platform(platform or {})))
    if not any(e.own for e in entries):  # the index does not list it (an OCI layout's nested index)
        entries.append(own({"mediaType": _media_type(manifest), "digest": own_digest, "size": len(manifest)}, None))
    return ImageManifests(descriptor=go_descriptor(target), manifests=tuple(entries), repositories=repositories)


def _index_entries(raw: bytes) -> list[dict[str, Any]]:
    try:
        entries = json.loads(raw).get("manifests")
    except (ValueError, AttributeError):
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _media_type(manifest_raw: bytes) -> str:
    try:
        value = json.loads(manifest_raw).get("mediaType")
    except (ValueError, AttributeError):
        value = None
    return value if isinstance(value, str) and value else OCI_MANIFEST


class ManifestStore:
    """The targets and manifest blobs of the images under `root`. `config_raw(image id)` and
    `tar_size(diff_id)` are the image store's, for the manifests it makes."""

    def __init__(self, root: Path, *, config_raw: Callable[[str], bytes], tar_size: Callable[[str], int]) -> None:
        self._blobs = root / "manifests"
        self._targets = root / "targets"
        self._config_raw = config_raw
        self._tar_size = tar_size
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[dict[str, Any], bytes, bytes, tuple[str, ...]]] = {}

    def open(self, known: Callable[[str], bool]) -> None:
        """Drop the targets of images that are gone and the blobs no target names (a crash's leftovers)."""
        for d in (self._blobs, self._targets):
            d.mkdir(parents=True, exist_ok=True)
            remove_temp_files(d)
        named: set[str] = set()
        for entry in self._targets.iterdir():
            record = self._read_record(entry.name) if is_hex64(entry.name) else None
            if record is None or not known("sha256:" + entry.name):
                entry.unlink(missing_ok=True)
                continue
            named.update(str(d)[7:] for d in (record["target"].get("digest"), record.get("manifest")) if d)
        for entry in self._blobs.iterdir():
            if entry.name not in named:
                entry.unlink(missing_ok=True)

    def record(self, image_id: str, source: ManifestSource | None, *, anew: bool = False) -> None:
        """Keep `source` as the image's target, with the repositories of its earlier pulls unless it is
        stored `anew`; None: forget any it had (an image made anew, or one deleted before)."""
        path = self._targets / image_id[7:]
        with self._lock:
            self._cache.pop(image_id, None)
            if source is None:
                path.unlink(missing_ok=True)
                return
            top, manifest = digest_of(source.top), digest_of(source.manifest)
            for digest, raw in {top: source.top, manifest: source.manifest}.items():
                if self._blob(digest) is None:  # absent, or corrupt on disk
                    atomic_write(self._blobs / digest[7:], raw)
            target = {"mediaType": source.top_media_type, "digest": top, "size": len(source.top)}
            before = {} if anew else self._read_record(image_id[7:]) or {}
            repositories = [r for r in before.get("repositories") or () if isinstance(r, str)]  # pulled before
            if source.repository and source.repository not in repositories:
                repositories.append(source.repository)
            record = {"target": target, "manifest": manifest, "repositories": repositories}
            atomic_write(path, json_bytes(record))

    def of(self, image: Image) -> ImageManifests:
        """The image's target and manifests: as stored, or (the first time) made and stored; NotFound when
        the image went away meanwhile."""
        with self._lock:
            cached = self._cache.get(image.id) or self._load(image.id)
            if cached is None:
                try:
                    manifest = made_manifest(self._config_raw(image.id), image.diff_ids, self._tar_size)
                except (OSError, ServinError) as exc:  # removed meanwhile (an rmi while listing)
                    raise NotFound(f"No such image: {image.id}") from exc
                digest = digest_of(manifest)
                target = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)}
                try:
                    atomic_write(self._blobs / digest[7:], manifest)
                    atomic_write(self._targets / image.id[7:], json_bytes({"target": target, "manifest": digest,
                                                                            "repositories": []}))
                except OSError as exc:  # a full or read-only disk: served from memory, stored at a later start
                    log.warning("could not store the manifest of %s: %s", image.id, exc)
                cached = (target, manifest, manifest, ())
            self._cache[image.id] = cached
        target, top, manifest, repositories = cached
        return summarize(image, target, top, manifest, repositories)

    def _load(self, image_id: str) -> tuple[dict[str, Any], bytes, bytes, tuple[str, ...]] | None:
        record = self._read_record(image_id[7:])
        if record is None:
            return None
        top = self._blob(str(record["target"].get("digest") or ""))
        manifest = self._blob(str(record.get("manifest") or ""))
        if top is None or manifest is None:
            return None
        repositories = tuple(r for r in record.get("repositories") or () if isinstance(r, str))
        return record["target"], top, manifest, repositories

    def _read_record(self, hexid: str) -> dict[str, Any] | None:
        try:
            record = json.loads((self._targets / hexid).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or not isinstance(record.get("target"), dict):
            return None
        return record

    def _blob(self, digest: str) -> bytes | None:
        if not digest.startswith("sha256:") or not is_hex64(digest[7:]):
            return None
        try:
            raw = (self._blobs / digest[7:]).read_bytes()
        except OSError:
            return None
        return raw if digest_of(raw) == digest else None
