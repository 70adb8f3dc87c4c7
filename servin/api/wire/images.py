"""Docker Engine API v1.41 JSON for images: summaries, inspect, delete results.

Pure functions from the image domain objects; empty lists/maps render as ``[]`` / ``{}``, never null.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from servin.api.wire import versions
from servin.images.model import DeleteItem, HistoryItem, Image, go_container_config
from servin.registry.search import SearchResult

ZERO_TIME = "0001-01-01T00:00:00Z"

def render_config(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """An image's container config in Docker's field order; unknown extra keys are kept."""
    return go_container_config(cfg)


@versions.answer("ImageSummary")
def image_list(images: Iterable[Image], containers: Callable[[str], int],
               shared_size: Callable[[str], int] = lambda _id: -1) -> list[dict[str, Any]]:
    """``GET /images/json``: each image with the number of containers using it and, when asked, the bytes
    it shares with other images (-1: not counted), by its ID."""
    return [{**image_summary(img, containers=containers(img.id)), "SharedSize": shared_size(img.id)}
            for img in images]


def image_summary(img: Image, *, containers: int = -1) -> dict[str, Any]:
    """One image of ``GET /images/json`` or ``/system/df``, the newest shape (an untagged image has empty
    lists; the version rules are those of the list it is in)."""
    repo_tags = list(img.repo_tags)
    repo_digests = list(img.repo_digests)
    return {
        "Containers": containers,
        "Created": img.created_unix,
        "Id": img.id,
        "Labels": img.labels,
        "ParentId": img.parent,
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


@versions.answer("ImageInspect")
def image_inspect(img: Image, *, layer_dirs: Sequence[Path] = ()) -> dict[str, Any]:
    """``GET /images/{name}/json`` (the newest shape: no Created when the config has none)."""
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
