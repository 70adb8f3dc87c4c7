"""Crash-safe small files: write a temp file, fsync, rename over the target, fsync the dir."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any


def write_bytes(path: Path, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    """Replace `path` whole. `durable=False` skips the fsyncs: for files made again at every
    container start (hosts, resolv.conf), where a crash may lose the write but never tear it."""
    # a fresh name, made with O_EXCL|O_NOFOLLOW: nothing planted at it is written through or reused
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # the mode asked for, whatever the umask
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if not durable:
        return
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_json(path: Path, obj: Any) -> None:
    write_bytes(path, json.dumps(obj, separators=(",", ":")).encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())
