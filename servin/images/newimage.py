"""The configs of images Servin makes itself: ``docker import`` (one layer from a tarball) and
``docker commit`` (a child of the container's image, as dockerd's NewChildImage)."""

from __future__ import annotations

from typing import Any

from servin.images.changes import apply_changes, empty_container_config
from servin.images.content import config_diff_ids
from servin.images.model import host_architecture

DOCKER_VERSION = "20.10.24"


def import_run_config(changes: list[str]) -> dict[str, Any]:
    """The run config of ``docker import``: the ``--change`` lines applied to an empty one."""
    return apply_changes(empty_container_config(), changes)


def imported_config(diff_id: str, *, run_config: dict[str, Any], message: str, created: str) -> dict[str, Any]:
    """The config of ``docker import``: the layer ``diff_id`` alone."""
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
    return cfg


def child_config(parent: dict[str, Any], new_layer: str | None, *, config: dict[str, Any],
                 container_config: dict[str, Any], container_id: str, comment: str, author: str,
                 created: str) -> dict[str, Any]:
    """The config of a commit on ``parent`` (``{}`` for none): its layers plus ``new_layer`` (None:
    no changes, an empty layer in the history), its history plus this step."""
    diff_ids = config_diff_ids(parent)
    if new_layer is not None:
        diff_ids.append(new_layer)
    entry: dict[str, Any] = {"created": created}
    if author:
        entry["author"] = author
    created_by = " ".join(container_config.get("Cmd") or [])
    if created_by:
        entry["created_by"] = created_by
    if comment:
        entry["comment"] = comment
    if new_layer is None:
        entry["empty_layer"] = True
    cfg: dict[str, Any] = {"comment": comment} if comment else {}  # `docker commit -m`: the image's Comment
    cfg["created"] = created
    if container_id:  # none for a layer the builder wrote itself (COPY, ADD), as dockerd's omitempty
        cfg["container"] = container_id
    cfg["container_config"] = container_config
    cfg["docker_version"] = DOCKER_VERSION
    if author:
        cfg["author"] = author
    cfg["config"] = config
    cfg["architecture"] = parent.get("architecture") or host_architecture()
    if parent.get("variant"):
        cfg["variant"] = parent["variant"]
    cfg["os"] = parent.get("os") or "linux"
    cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    cfg["history"] = [*(parent.get("history") or []), entry]
    for key in ("os.version", "os.features"):
        if parent.get(key):
            cfg[key] = parent[key]
    return cfg
