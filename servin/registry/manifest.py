"""Manifests, indexes and platform selection (Docker schema2 and OCI)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from servin import errors
from servin.images.model import host_architecture

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_NONDIST = ("application/vnd.oci.image.layer.nondistributable.v1.tar",
               "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")

# what dockerd sends in Accept when it fetches a manifest
ACCEPT = ", ".join([DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX, *DOCKER_SCHEMA1])
LAYER_TYPES = frozenset({DOCKER_LAYER_GZIP, DOCKER_FOREIGN_GZIP, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
                         "application/vnd.docker.image.rootfs.diff.tar", *OCI_NONDIST})
CONFIG_TYPES = frozenset({DOCKER_CONFIG, OCI_CONFIG, "application/octet-stream", "application/json"})


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm",
                 "i386": "386"}


def normalize(p: Platform) -> Platform:
    """containerd's platforms.Normalize: arch aliases, arm64's v8 and arm's v7 are the defaults."""
    arch = _ARCH_ALIASES.get(p.architecture.lower(), p.architecture.lower())
    variant = p.variant.lower()
    if p.architecture.lower() == "armhf":
        variant = variant or "v7"
    elif p.architecture.lower() == "armel":
        variant = variant or "v6"
    if arch == "arm64" and variant in ("8", "v8"):
        variant = ""
    if arch == "arm" and variant in ("", "7"):
        variant = "v7"
    elif arch == "arm" and variant in ("5", "6", "8"):
        variant = "v" + variant
    return Platform(p.os.lower() or "linux", arch, variant)


def host_platform() -> Platform:
    return normalize(Platform("linux", host_architecture()))


def parse_platform(spec: str) -> Platform | None:
    """The ``platform`` query parameter (``linux/arm64/v8``, ``linux/amd64``, ``arm64``); "" = none."""
    spec = spec.strip()
    if not spec:
        return None
    parts = spec.split("/")
    if len(parts) > 3 or any(not p for p in parts):
        raise errors.InvalidArgument(f'"{spec}": unknown operating system or architecture: invalid argument')
    if len(parts) == 1:
        if parts[0].lower() == "linux":
            return host_platform()
        return normalize(Platform("linux", parts[0]))
    if parts[0].lower() not in ("linux", "windows", "darwin", "freebsd"):
        raise errors.InvalidArgument(f'"{spec}": unknown operating system or architecture: invalid argument')
    return normalize(Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else ""))


def _platform_of(d: dict[str, Any]) -> Platform:
    return normalize(Platform(str(d.get("os") or ""), str(d.get("architecture") or ""), str(d.get("variant") or "")))


def matches(want: Platform, have: Platform, *, variant_given: bool) -> bool:
    if want.os != have.os or want.architecture != have.architecture:
        return False
    return not variant_given or want.variant == have.variant


def loads(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise errors.InvalidArgument(f"invalid manifest: {exc}") from None
    if not isinstance(data, dict):
        raise errors.InvalidArgument("invalid manifest: not a JSON object")
    return data


def media_type_of(data: dict[str, Any], header: str) -> str:
    """The manifest's own mediaType, else the Content-Type, else guessed from its shape (OCI allows none)."""
    mt = data.get("mediaType")
    if isinstance(mt, str) and mt:
        return mt
    header = header.split(";")[0].strip()
    if header in (DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX, *DOCKER_SCHEMA1):
        return header
    if data.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1[0]
    return OCI_INDEX if "manifests" in data else OCI_MANIFEST


def _descriptor(d: Any) -> Descriptor:
    if not isinstance(d, dict) or not isinstance(d.get("digest"), str):
        raise errors.InvalidArgument("invalid manifest: bad descriptor")
    try:
        size = int(d.get("size") or 0)
    except (TypeError, ValueError):
        raise errors.InvalidArgument("invalid manifest: bad descriptor size") from None
    return Descriptor(str(d.get("mediaType") or ""), d["digest"], size,
                      d.get("platform") if isinstance(d.get("platform"), dict) else None)


def index_entries(data: dict[str, Any]) -> list[Descriptor]:
    return [_descriptor(d) for d in data.get("manifests") or []]


def image_parts(data: dict[str, Any]) -> tuple[Descriptor, list[Descriptor]]:
    """(config, layers) of an image manifest."""
    if not isinstance(data.get("config"), dict) or not isinstance(data.get("layers"), list):
        raise errors.InvalidArgument("invalid manifest: no config or layers")
    return _descriptor(data["config"]), [_descriptor(d) for d in data["layers"]]


def select(entries: list[Descriptor], want: Platform | None) -> Descriptor:
    """The entry of an index for ``want`` (the host's platform by default), as dockerd chooses it."""
    target = want or host_platform()
    variant_given = want is not None and bool(want.variant)
    if target.architecture == "arm64" or (target.architecture == "arm" and want is None):
        variant_given = False
    candidates = []
    for e in entries:
        if e.media_type not in ("", DOCKER_MANIFEST, OCI_MANIFEST):
            continue  # nested indexes and attestations are not images
        if e.platform is None:
            continue
        have = _platform_of(e.platform)
        if matches(target, have, variant_given=variant_given):
            candidates.append((have.variant != target.variant, e))
    if not candidates:
        raise errors.NotFound(f"no matching manifest for {target} in the manifest list entries")
    candidates.sort(key=lambda c: c[0])  # exact variant first, list order otherwise
    return candidates[0][1]


def config_platform(config: dict[str, Any]) -> Platform:
    return _platform_of(config)


def schema2(config: Descriptor, layers: list[Descriptor]) -> bytes:
    """A Docker schema2 manifest, indented as dockerd marshals it (three spaces)."""
    doc = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": config.to_json(),
           "layers": [d.to_json() for d in layers]}
    return json.dumps(doc, indent=3).encode()
