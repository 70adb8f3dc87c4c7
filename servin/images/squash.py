"""``docker build --squash`` (dockerd's ImageService.SquashImage): an image's layers above a
parent's (the build's FROM image) merged into one layer, and the config dockerd writes for it.

``write_diff`` writes the layer: what the merged view of all the image's layers holds that the
parent's view does not, read through ``images.union`` (nothing mounted, no symlink followed on the
host). Only names some layer above the parent holds can differ: a name visible in the image is
written (a directory with ``.wh..wh..opq`` when it hides the parent's directory), a name the parent
has but the image no longer shows becomes a ``.wh.<name>`` whiteout, and a file added and removed
within the build is not there at all.

``squashed_config`` is the image's config with the parent's layers plus the new one, the build's
history entries all ``empty_layer`` and one entry added ("merge <id> to <parent>"), top-level keys
sorted as Go's image.MarshalJSON writes them.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from servin import archive
from servin.errors import InvalidArgument
from servin.images import union
from servin.images.content import config_diff_ids
from servin.images.layer_store import chain_ids
from servin.images.layers import WHITEOUT_OPAQUE, WHITEOUT_PREFIX


def squashed_layers(image: dict[str, Any], parent: dict[str, Any]) -> int:
    """How many of ``image``'s layers are ``parent``'s; refused as dockerd's TarStreamFrom when no
    layer sits on them (a build of metadata steps only) or they are not below the image's."""
    own, base = config_diff_ids(image), config_diff_ids(parent)
    if len(own) <= len(base) or own[:len(base)] != base:
        chain_id = chain_ids(base)[-1] if base else ""
        raise InvalidArgument(f"error squashing image: error getting tar stream to parent: layer ID '{chain_id}' "
                              "is not a parent of the specified layer: cannot provide diff to non-parent")
    return len(base)


def squashed_config(image: dict[str, Any], parent: dict[str, Any], diff_id: str, *, image_id: str,
                    parent_id: str, image_parent: str, created: str) -> dict[str, Any]:
    """The config dockerd's SquashImage writes: ``image``'s (``image_parent``: its parent's id, which
    dockerd's copy of the image carries in "parent") on ``parent``'s layers plus ``diff_id``."""
    cfg = dict(image)
    cfg["rootfs"] = {"type": "layers", "diff_ids": [*config_diff_ids(parent), diff_id]}
    kept = len(parent.get("history") or [])
    history = [dict(h, empty_layer=True) if i >= kept else h for i, h in enumerate(image.get("history") or [])]
    comment = f"merge {image_id} to {parent_id}" if parent_id else f"create new from {image_id}"
    cfg["history"] = [*history, {"created": created, "comment": comment}]
    cfg["created"] = created
    if image_parent:
        cfg["parent"] = image_parent
    return {k: cfg[k] for k in sorted(cfg)}


def _in(path: Path, layers: Sequence[Path]) -> bool:
    return any(path.is_relative_to(layer) for layer in layers)


def _names(d: union.Entry, upper: Sequence[Path]) -> list[str]:
    """The names the upper layers' copies of the directory ``d`` hold (whiteouts too), byte order."""
    names: set[str] = set()
    for p in d.stack:
        if _in(p, upper):
            names.update(os.listdir(p))
    return sorted(names, key=os.fsencode)


def _whiteout(arcname: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(arcname)
    ti.type, ti.mode, ti.size = tarfile.REGTYPE, 0o600, 0
    return ti


def write_diff(layers: Sequence[Path], parent_count: int, out: BinaryIO) -> int:
    """The layer holding what ``layers`` (diff dirs, lowest first) change over their first
    ``parent_count``; returns the number of tar entries written."""
    upper = layers[parent_count:]
    image_root = union.root(list(reversed(layers)))
    parent_root = union.root(list(reversed(layers[:parent_count])))
    writer = archive.TreeWriter(out)
    todo: list[tuple[tuple[str, ...], union.Entry, union.Entry | None]] = []
    if image_root is not None:
        todo.append(((), image_root, parent_root))
    while todo:
        parts, d, was = todo.pop()
        for name in _names(d, upper):
            now = union.child(d, name)
            before = union.child(was, name) if was is not None else None
            arcname = "/".join((*parts, name))
            if now is None:
                if before is not None:
                    writer.add_info(_whiteout("/".join((*parts, WHITEOUT_PREFIX + name))))
                continue
            if not _in(now.path, upper):
                continue  # the parent's own entry: unchanged
            fd = archive.open_dir(str(now.path.parent))
            try:
                writer.add(arcname, name, now.st, dir_fd=fd)
            finally:
                os.close(fd)
            if not now.is_dir:
                continue
            if before is not None and before.is_dir and before.path not in now.stack:
                ti = _whiteout(f"{arcname}/{WHITEOUT_OPAQUE}")
                ti.mode, ti.uid, ti.gid = stat.S_IMODE(now.st.st_mode) & 0o777, now.st.st_uid, now.st.st_gid
                writer.add_info(ti)
            todo.append(((*parts, name), now, before if before is not None and before.is_dir else None))
    writer.close()
    return writer.count
