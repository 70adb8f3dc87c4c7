"""Crash-safe small files of the image store: temp name, fsync, rename, fsync the directory.

Temp files are named ``.<name>.<uuid>.tmp`` (mode 0600); the stores remove leftovers of that
shape when they open.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from servin import safefs

log = logging.getLogger(__name__)

HEX = frozenset("0123456789abcdef")


def is_hex64(s: str) -> bool:
    return len(s) == 64 and set(s) <= HEX


def is_sha256_digest(s: str) -> bool:
    return s.startswith("sha256:") and is_hex64(s[7:])


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def remove_temp_files(directory: Path) -> None:
    """Drop the temp files an interrupted :func:`atomic_write` left in ``directory``."""
    for entry in directory.iterdir():
        if entry.name.startswith(".") and entry.name.endswith(".tmp"):
            entry.unlink(missing_ok=True)


def remove_leftover(path: Path) -> None:
    """Start-up cleanup: what cannot be removed is logged and left, never fatal to the daemon."""
    try:
        safefs.remove_tree(path)
    except OSError as exc:
        log.warning("cannot remove leftover %s: %s", path, exc)
