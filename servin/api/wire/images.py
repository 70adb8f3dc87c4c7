"""Docker Engine API JSON for images: summaries, inspect, delete results, in the newest shape (the
version rules of version_table.py take away what an older version did not have).

Pure functions from the image domain objects; empty lists/maps render as ``[]`` / ``{}``, never null
(but for what dockerd itself sends as null: a manifest's `ImageData.Containers` when none use it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from servin.api.wire import versions
from servin.images.manifests import ImageManifests, ManifestSummary
from servin.images.model import DeleteItem, HistoryItem, Image, go_container_config
from servin.registry.search import SearchResult

ZERO_TIME = "0001-01-01T00:00:00Z"

def render_config(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """An image's container config in Docker's field order; unknown extra keys are kept."""
    return go_container_config(cfg)


@versions.answer("ImageSummary")
def image_list(images: Iterable[Image], containers: Callable[[str], int],
               shared_size: Callable[[str], int] = lambda _id: -1, *,
               manifests: Callable[[Image], ImageManifests | None] | None = None,
               users: Callable[[str], Sequence[str]] = lambda _id: (), listed: bool = False,
               identity: bool = False) -> list[dict[str, Any]]:
    """``GET /images/json``: each image with the number of containers using it and, when asked, the bytes
    it shares with other images (-1: not counted), by its ID; with `manifests`, its Descriptor and, when
    `listed` (``manifests=1``), its Manifests, whose own entry names the containers `users(id)` (and the
    image's Identity when `identity`)."""
    out = []
    for img in images:
        oci = manifests(img) if manifests is not None else None
        entries = (manifest_list(oci, users(img.id), with_identity=identity)
                   if oci is not None and listed else None)
        out.append({**image_summary(img, containers=containers(img.id), oci=oci, entries=entries),
                    "SharedSize": shared_size(img.id)})
    return out


def image_summary(img: Image, *, containers: int = -1, oci: ImageManifests | None = None,
                  entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One image of ``GET /images/json`` or ``/system/df``, the newest shape (an untagged image has empty
    lists; the version rules are those of the list it is in); `oci` gives its Descriptor, `entries` its
    Manifests."""
    repo_tags = list(img.repo_tags)
    repo_digests = list(img.repo_digests)
    return {
        "Containers": containers,
        "Created": img.created_unix,
        "Id": img.id,
        "Labels": img.labels,
        "ParentId": img.parent,
        **({"Descriptor": dict(oci.descriptor)} if oci is not None else {}),
        **({"Manifests": entries} if entries else {}),
        "RepoDigests": repo_digests,
        "RepoTags": repo_tags,
        "SharedSize": -1,
        "Size": img.size,
        "VirtualSize": img.size,
    }


def graph_driver(layer_dirs: Sequence[Path]) -> dict[str, Any]:
    """overlay2 GraphDriver data for an image whose layer ``diff`` dirs are given lowest first."""
    if not layer_dirs:
        return {"Name": "overlay2", "Data": {}}
    top = Path(layer_dirs[-1])
    data: dict[str, str] = {}
    lowers = [str(p) for p in reversed(layer_dirs[:-1])]
    if lowers:
        data["LowerDir"] = ":".join(lowers)
    data["MergedDir"] = str(top.parent / "merged")
    data["UpperDir"] = str(top)
    data["WorkDir"] = str(top.parent / "work")
    return {"Name": "overlay2", "Data": data}


def identity(oci: ImageManifests) -> dict[str, Any] | None:
    """moby's image.Identity: where the image was pulled from (None when nothing is known)."""
    return {"Pull": [{"Repository": r} for r in oci.repositories]} if oci.repositories else None


def manifest_summary(m: ManifestSummary, containers: Sequence[str] = (), image_identity: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
    """One entry of an image's `Manifests` (moby's image.ManifestSummary, Go's field order)."""
    unpacked = m.unpacked_size if m.kind == "image" else 0
    out: dict[str, Any] = {"ID": m.descriptor.get("digest", ""), "Descriptor": dict(m.descriptor),
                           "Available": m.available, "Size": {"Content": m.content_size,
                                                              "Total": m.content_size + unpacked},
                           "Kind": m.kind}
    if m.kind == "image":
        out["ImageData"] = {"Platform": dict(m.platform or {"architecture": "", "os": ""}),
                            **({"Identity": image_identity} if image_identity else {}),
                            "Size": {"Unpacked": unpacked}, "Containers": list(containers) or None}
    elif m.kind == "attestation":
        out["AttestationData"] = {"For": m.attestation_for}
    return out


def manifest_list(oci: ImageManifests, users: Sequence[str], *, with_identity: bool = False) -> list[dict[str, Any]]:
    """An image's `Manifests`: the containers `users` on its own manifest (the one they run)."""
    found = identity(oci) if with_identity else None
    return [manifest_summary(m, users if m.own else (), found if m.own else None) for m in oci.manifests]


@versions.answer("ImageInspect")
def image_inspect(img: Image, *, layer_dirs: Sequence[Path] = (), oci: ImageManifests | None = None,
                  listed: bool = False, users: Sequence[str] = ()) -> dict[str, Any]:
    """``GET /images/{name}/json`` (the newest shape: no Created when the config has none); `oci` gives
    its Descriptor and Identity, and its Manifests when `listed` (``manifests=1``)."""
    raw = img.config
    container_config = raw.get("container_config")
    out: dict[str, Any] = {
        "Id": img.id,
        "RepoTags": list(img.repo_tags),
        "RepoDigests": list(img.repo_digests),
        "Parent": img.parent,
        "Comment": img.comment,
        **({"Created": img.created} if img.created else {}),
        "Container": img.container,
        "ContainerConfig": render_config(container_config if isinstance(container_config, dict) else None),
        "DockerVersion": img.docker_version,
        "Author": img.author,
        "Config": render_config(img.run_config),
        "Architecture": img.architecture,
        "Os": img.os,
        "Size": img.size,
        "VirtualSize": img.size,
        "GraphDriver": graph_driver(layer_dirs),
        "RootFS": {"Type": "layers", "Layers": list(img.diff_ids)},
        "Metadata": {"LastTagTime": img.last_tag_time or ZERO_TIME},
    }
    if img.variant:
        out["Variant"] = img.variant
    if img.os_version:
        out["OsVersion"] = img.os_version
    if oci is not None:
        out["Descriptor"] = dict(oci.descriptor)
        if listed:
            out["Manifests"] = manifest_list(oci, users)
        if (found := identity(oci)) is not None:
            out["Identity"] = found
    return out


def delete_items(items: Iterable[DeleteItem]) -> list[dict[str, str]]:
    """The body of ``DELETE /images/{name}``: ``[{"Untagged": ...}, {"Deleted": ...}]``."""
    out: list[dict[str, str]] = []
    for item in items:
        if item.untagged is not None:
            out.append({"Untagged": item.untagged})
        if item.deleted is not None:
            out.append({"Deleted": item.deleted})
    return out


def load_lines(lines: Iterable[str]) -> list[dict[str, str]]:
    """``POST /images/load`` progress messages: one ``{"stream": "...\\n"}`` per line."""
    return [{"stream": line + "\n"} for line in lines]


def history(items: Iterable[HistoryItem]) -> list[dict[str, Any]]:
    """``GET /images/{name}/history`` (Tags is null for a step without tags, as dockerd)."""
    return [
        {
            "Comment": h.comment,
            "Created": h.created,
            "CreatedBy": h.created_by,
            "Id": h.id,
            "Size": h.size,
            "Tags": list(h.tags) if h.tags is not None else None,
        }
        for h in items
    ]


def search_result(r: SearchResult) -> dict[str, Any]:
    """One entry of ``GET /images/search``, in dockerd's field order."""
    return {"star_count": r.star_count, "is_official": r.is_official, "name": r.name,
            "is_automated": r.is_automated, "description": r.description}
