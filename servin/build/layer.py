"""The layer of a COPY, ADD or WORKDIR step, written as a tar without a container: the destination's
parent directories (as the image has them, or new ones), then the files, as dockerd's copier lays
them out (a directory's contents into the destination; a file into a directory destination under its
own name). Files are read from layer entries found without following a host symlink."""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from servin import archive
from servin.build.sources import walk
from servin.images import union

Owner = tuple[int, int] | None  # --chown's uid and gid; None keeps the source's


class LayerWriter:
    def __init__(self, out: BinaryIO, image_layers: Sequence[Path]) -> None:
        """``image_layers``: the layers of the image the step starts from, top first."""
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        self.image = list(image_layers)
        self.now = int(time.time())
        self.count = 0
        self._written: set[str] = set()

    def close(self) -> None:
        self.tar.close()

    def image_entry(self, path: str) -> union.Entry | None:
        """What the image has at ``path`` (symlinks followed in the image's root)."""
        return union.resolve(self.image, path) if self.image else None

    def is_image_dir(self, path: str) -> bool:
        e = self.image_entry(path)
        return e is not None and e.is_dir

    def _add(self, ti: tarfile.TarInfo, data: BinaryIO | None = None) -> None:
        name = ti.name.rstrip("/")
        if name in self._written:
            return
        self._written.add(name)
        self.tar.addfile(ti, data)
        self.count += 1

    def directory(self, path: str, *, owner: Owner = None, mode: int = 0o755) -> None:
        """``path`` and its parents as directories: those the image has keep their metadata."""
        parts = [p for p in path.split("/") if p]
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub in self._written:
                continue
            existing = union.entry(self.image, parts[:i]) if self.image else None
            ti = tarfile.TarInfo(sub)
            ti.type = tarfile.DIRTYPE
            if existing is not None and existing.is_dir:
                ti.mode, ti.uid, ti.gid = stat.S_IMODE(existing.st.st_mode), existing.st.st_uid, existing.st.st_gid
            else:
                ti.mode = mode
                ti.uid, ti.gid = owner if owner is not None else (0, 0)
            ti.mtime = self.now
            self._add(ti)

    def entry(self, dest: str, e: union.Entry, *, owner: Owner = None) -> None:
        """One entry (not a directory's contents) at ``dest``."""
        dest = dest.strip("/")
        linkname = os.readlink(e.path) if e.is_symlink else ""
        ti = archive.header(dest, e.st, linkname=linkname)
        if ti is None:
            return
        if owner is not None:
            ti.uid, ti.gid = owner
        if ti.type != tarfile.REGTYPE:
            self._add(ti)
            return
        fd = os.open(e.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return
            with os.fdopen(os.dup(fd), "rb") as f:
                self._add(ti, f)
        finally:
            os.close(fd)

    def contents(self, dest: str, d: union.Entry, *, owner: Owner = None) -> None:
        """The directory ``d``'s contents into the directory ``dest``."""
        for rel, e in walk(d):
            self.entry(posixpath.join(dest, rel), e, owner=owner)

    def copy(self, dest: str, source: union.Entry, *, dest_is_dir: bool, name: str, owner: Owner = None) -> None:
        """dockerd's performCopyForInfo: a directory's contents go into ``dest``; a file goes to
        ``dest/name`` when ``dest`` is a directory, else to ``dest``."""
        if source.is_dir:
            self.directory(dest, owner=owner, mode=stat.S_IMODE(source.st.st_mode))
            self.contents(dest, source, owner=owner)
            return
        target = posixpath.join(dest, name) if dest_is_dir else dest
        self.directory(posixpath.dirname(target.rstrip("/")), owner=owner)
        self.entry(target, source, owner=owner)
