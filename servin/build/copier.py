"""COPY and ADD (dockerd's copier.go and performCopy): the sources found in the context, a stage or
an image; the history text with their checksum (``COPY file:<sha256> in /dest ``) that the cache
compares; the layer written by the builder. ADD extracts local tar archives (plain, gzip, bzip2,
xz) into the destination, and downloads URLs (download.py), which it never extracts."""

from __future__ import annotations

import asyncio
import posixpath
import stat
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from servin import safefs
from servin.build import instructions as ins
from servin.build.context import is_archive
from servin.build.executor import Executor
from servin.build.layer import LayerWriter, Owner
from servin.build.download import download, is_url
from servin.build.sources import Source, combined_hash, entry_hash, find
from servin.build.state import StageState
from servin.errors import InvalidArgument
from servin.images import union
from servin.images.layers import extract_layer

SourceTree = Callable[[str], Awaitable[tuple[list[Path], bool]]]


def _lookup(db: bytes | None, name: str, what: str) -> int:
    """A name's id in /etc/passwd or /etc/group text (numbers are taken as they are)."""
    if name.isdigit():
        return int(name)
    for line in (db or b"").decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
            return int(fields[2])
    kind = "uid for user" if what == "user" else "gid for group"
    raise InvalidArgument(f"unable to convert uid/gid chown string to host mapping: can't find {kind} "
                          f"{name}: no such {what}: {name}")


def _read(layers: Sequence[Path], path: str) -> bytes | None:
    e = union.resolve(layers, path) if layers else None
    if e is None or not stat.S_ISREG(e.st.st_mode):
        return None
    return e.path.read_bytes()


def resolve_owner(chown: str, image_layers: Sequence[Path]) -> Owner:
    """--chown=user[:group] by the image's /etc/passwd and /etc/group (dockerd's parseChownFlag)."""
    if not chown:
        return None
    user, _, group = chown.partition(":")
    group = group or user
    uid = _lookup(_read(image_layers, "/etc/passwd") if not user.isdigit() else None, user, "user")
    gid = _lookup(_read(image_layers, "/etc/group") if not group.isdigit() else None, group, "group")
    return uid, gid


def _archive(e: union.Entry) -> bool:
    if not stat.S_ISREG(e.st.st_mode):
        return False
    with open(e.path, "rb") as f:
        return is_archive(f.read(512))


async def copy_step(ex: Executor, state: StageState, instr: ins.Copy | ins.Add, trees: SourceTree) -> None:
    name = instr.name
    add = isinstance(instr, ins.Add)
    tree, from_context = await trees(instr.from_ if isinstance(instr, ins.Copy) else "")
    downloaded: dict[str, Path] = {}
    for src in instr.sources:
        if add and is_url(src):
            downloaded[src] = await download(src, ex.work_dir / f"url-{uuid.uuid4().hex[:12]}", ex.sink)

    def collect() -> list[Source]:
        out = []
        for pattern in instr.sources:
            if pattern in downloaded:
                path = downloaded[pattern]
                e = union.resolve([path.parent], path.name)
                assert e is not None
                out.append(Source(rel=path.name, entry=e, hash=entry_hash(e), remote=True))
            else:
                out += find(tree, pattern, from_context=from_context)
        return out

    try:
        found = await asyncio.to_thread(collect)
        if not found:
            raise InvalidArgument("no source files were specified")
    except InvalidArgument as exc:
        raise InvalidArgument(f"{name} failed: {exc.message}") from None
    dest = instr.dest
    if len(found) > 1 and not dest.endswith("/"):
        raise InvalidArgument(f"When using {name} with more than one source file, the destination must be a "
                              "directory and end with a /")
    chown = f"--chown={instr.chown}" if instr.chown else ""
    record = state.with_comment_string(f"{name} {chown}{combined_hash(found)} in {dest} ")
    target = dest if dest.startswith("/") else posixpath.join("/", state.run_config.get("WorkingDir") or "/", dest)
    if dest.endswith("/") and not target.endswith("/"):
        target += "/"
    chown_text = instr.chown

    def write(layer: LayerWriter) -> None:
        owner = resolve_owner(chown_text, layer.image)
        for s in found:
            if add and not s.remote and _archive(s.entry):
                _extract_into(layer, ex.work_dir, s.entry, posixpath.normpath(target))
                continue
            dest_is_dir = target.endswith("/") or layer.is_image_dir(target)
            layer.copy(posixpath.normpath(target), s.entry, dest_is_dir=dest_is_dir,
                       name=posixpath.basename(s.rel), owner=owner)

    await ex.commit_layer(state, record, write, announce=False)


def _extract_into(layer: LayerWriter, work_dir: Path, archive: union.Entry, dest: str) -> None:
    staging = work_dir / f"add-{uuid.uuid4().hex[:12]}"
    staging.mkdir(mode=0o700)
    try:
        with open(archive.path, "rb") as f:
            extract_layer(f, staging)
        top = union.root([staging])
        layer.directory(dest)
        if top is not None:
            layer.contents(dest, top)
    finally:
        safefs.remove_tree(staging, ignore_errors=True)
