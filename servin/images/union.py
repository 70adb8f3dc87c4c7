"""The merged view of an image's read-only layers, as overlayfs shows it, read without following any
symlink on the host.

Layers are ``diff`` directories in overlay format, given **top first** (the order of overlay's
``lowerdir``): a 0:0 character device is a whiteout that hides the name in every layer below, and a
directory with the xattr ``trusted.overlay.opaque=y`` hides the directories of the same name below
it. As in overlayfs, a directory merges with the directories of the same name below it until an
opaque one, a whiteout or a non-directory; a non-directory hides everything below it; opaque
marks on the layer roots are ignored.

Every name is looked up with ``lstat`` one component at a time, in directories that were seen as
directories, so a symlink inside a layer is never followed on the host. ``resolve`` follows
symlinks as the container would, but inside the image's root (moby's ``FollowSymlinkInScope``):
``..`` stops at the root and an absolute target starts again from the image's root.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

OPAQUE_XATTR = "trusted.overlay.opaque"
MAX_LINKS = 40  # the kernel's limit of symlinks followed in one lookup (ELOOP)


@dataclass(frozen=True, slots=True)
class Entry:
    """One name of the merged view."""

    parts: tuple[str, ...]  # where it is in the image, symlink-free ("/" is ())
    st: os.stat_result  # lstat of the top-most layer's entry
    stack: tuple[Path, ...]  # the layers' entries the view merges, top first (one unless a directory)

    @property
    def path(self) -> Path:
        """The top-most layer's entry on the host (never a symlink to follow: lstat it)."""
        return self.stack[0]

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.st.st_mode)


def container_path(path: str) -> str:
    """``path`` made absolute inside the container and cleaned as Go's ``filepath.Clean`` does:
    ``/../../etc`` and ``../etc`` are ``/etc``, ``//a/./b/`` is ``/a/b``."""
    return "/" + posixpath.normpath("/" + path).lstrip("/")


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: Path | str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def root(layers: Sequence[Path]) -> Entry | None:
    """The image's ``/``: every layer's root merged (None without layers)."""
    if not layers:
        return None
    try:
        st = os.lstat(layers[0])
    except OSError:
        return None
    return Entry(parts=(), st=st, stack=tuple(layers))


def child(parent: Entry, name: str) -> Entry | None:
    """The entry ``name`` inside the directory ``parent``, or None if absent or whited out."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"not a file name: {name!r}")
    if not parent.is_dir:
        return None
    found: list[Path] = []
    top: os.stat_result | None = None
    for d in parent.stack:
        p = d / name
        try:
            st = os.lstat(p)
        except OSError:  # absent in this layer (ENOENT, or ENOTDIR/EACCES on a broken layer)
            continue
        if is_whiteout(st):
            break  # hides the name in every layer below
        if top is None:
            top = st
        elif not stat.S_ISDIR(st.st_mode):
            break  # a lower non-directory under a directory is hidden
        found.append(p)
        if not stat.S_ISDIR(st.st_mode) or is_opaque(p):
            break
    if top is None:
        return None
    return Entry(parts=(*parent.parts, name), st=top, stack=tuple(found))


def entry(layers: Sequence[Path], parts: Sequence[str]) -> Entry | None:
    """The entry at ``parts`` (file names, no ``..``), following no symlink at all: a symlink or a
    file as a non-final component means "absent"."""
    cur = root(layers)
    for name in parts:
        if cur is None:
            return None
        cur = child(cur, name)
    return cur


def listdir(d: Entry) -> dict[str, Entry]:
    """The merged children of the directory ``d``, by name (whiteouts and what they hide left out)."""
    if not d.is_dir:
        return {}
    names: dict[str, None] = {}
    for layer_dir in d.stack:
        try:
            names.update(dict.fromkeys(os.listdir(layer_dir)))
        except OSError:
            continue
    out: dict[str, Entry] = {}
    for name in names:
        e = child(d, name)
        if e is not None:
            out[name] = e
    return out


def resolve(layers: Sequence[Path], path: str, *, max_links: int = MAX_LINKS) -> Entry | None:
    """What the container sees at ``path`` (relative paths start at ``/``): every symlink, the
    last one included, followed inside the image's root. None if absent, through a non-directory,
    or after more than ``max_links`` symlinks."""
    base = root(layers)
    if base is None or "\0" in path:
        return None
    chain = [base]  # the directories walked so far, symlink-free: chain[-1] is the current one
    todo = [p for p in path.split("/") if p not in ("", ".")]
    todo.reverse()
    links = 0
    while todo:
        name = todo.pop()
        if name == "..":
            if len(chain) > 1:
                chain.pop()
            continue
        e = child(chain[-1], name)
        if e is None:
            return None
        if e.is_symlink:
            links += 1
            if links > max_links:
                return None
            try:
                target = os.readlink(e.path)
            except OSError:
                return None
            if target.startswith("/"):
                del chain[1:]
            todo.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
            continue
        if todo and not e.is_dir:
            return None  # ENOTDIR
        chain.append(e)
    return chain[-1]
