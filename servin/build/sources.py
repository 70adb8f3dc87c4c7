"""The sources of COPY and ADD: paths in the build context or in an image's (a stage's) layers,
found as dockerd's copier finds them (wildcards matched against every path, symlinks followed in
scope), with the content checksums the cache compares (``file:<sha256>``, ``dir:<sha256>``,
``multi:<sha256>`` in the history's ``COPY ... in /dest``).

A tree is a list of overlay-format layer directories, top first (images/union.py): the context is
one directory, an image its layers. Nothing is read through a symlink on the host.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from servin.errors import InvalidArgument
from servin.images import union

_WILDCARD = re.compile(r"[*?\[]")
NOT_IN_CONTEXT = "file not found in build context or excluded by .dockerignore"


@dataclass(frozen=True, slots=True)
class Source:
    rel: str  # the path as matched, relative to the tree's root
    entry: union.Entry
    hash: str  # "file:<hex>" or "dir:<hex>"
    remote: bool = False  # downloaded by ADD (never extracted)


def has_wildcards(path: str) -> bool:
    return _WILDCARD.search(path) is not None


def go_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match: ``*`` and ``?`` never match ``/``; a bad pattern matches nothing."""
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                return False
            body = pattern[i + 1:end]
            out += "[" + ("^" + re.escape(body[1:]) if body.startswith("^") else re.escape(body)).replace(
                "\\-", "-") + "]"
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(ch)
        i += 1
    return re.fullmatch(out, name) is not None


def walk(d: union.Entry, rel: str = "") -> Iterator[tuple[str, union.Entry]]:
    """Every entry below the directory ``d``, parents first, names in byte order (Go's Walk)."""
    for name, e in sorted(union.listdir(d).items(), key=lambda kv: os.fsencode(kv[0])):
        path = f"{rel}/{name}" if rel else name
        yield path, e
        if e.is_dir:
            yield from walk(e, path)


def _file_hash(e: union.Entry) -> str:
    h = hashlib.sha256()
    st = e.st
    h.update(f"{stat.S_IFMT(st.st_mode)}:{stat.S_IMODE(st.st_mode):o}:{st.st_uid}:{st.st_gid}\0".encode())
    if e.is_symlink:
        h.update(os.readlink(e.path).encode("utf-8", "surrogateescape"))
    elif stat.S_ISREG(st.st_mode):
        fd = os.open(e.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            while chunk := os.read(fd, 1 << 20):
                h.update(chunk)
        finally:
            os.close(fd)
    return h.hexdigest()


def entry_hash(e: union.Entry) -> str:
    """dockerd's source hash: a file's header and content, a directory's entries' hashes."""
    if not e.is_dir:
        return "file:" + _file_hash(e)
    h = hashlib.sha256()
    for path, child in walk(e):
        h.update(f"{path}\0{_file_hash(child)}\0".encode("utf-8", "surrogateescape"))
    return "dir:" + h.hexdigest()


def combined_hash(sources: Sequence[Source]) -> str:
    """The hash of a step's sources (dockerd's getSourceHashFromInfos)."""
    if len(sources) == 1:
        return sources[0].hash
    return "multi:" + hashlib.sha256(",".join(s.hash for s in sources).encode()).hexdigest()


def find(tree: Sequence[Path], pattern: str, *, from_context: bool) -> list[Source]:
    """The sources one COPY/ADD argument names: a path (symlinks followed inside the tree), or
    with wildcards every path that matches."""
    clean = posixpath.normpath("/" + pattern).lstrip("/")
    if has_wildcards(pattern):
        top = union.root(tree)
        if top is None:
            return []
        out = []
        for rel, e in walk(top):
            if go_match(clean, rel):
                target = union.resolve(tree, rel) if e.is_symlink else e
                if target is not None:
                    out.append(Source(rel=rel, entry=target, hash=entry_hash(target)))
        return out
    found = union.resolve(tree, clean)
    if found is None:
        reason = f"stat {clean or '.'}: file does not exist"
        raise InvalidArgument(f"{NOT_IN_CONTEXT}: {reason}" if from_context else reason)
    return [Source(rel=clean, entry=found, hash=entry_hash(found))]
