"""The build context: the request body streamed into a directory of its own, never held whole in
memory. A tar (plain or compressed) is extracted as plain files by the image store's safe extractor
(nothing outside the directory, no host symlink followed, no whiteouts, no device nodes); a body
that is no archive is the Dockerfile itself (``docker build - < Dockerfile``). Then, as dockerd,
the Dockerfile is read and ``.dockerignore`` and the Dockerfile are deleted when ``.dockerignore``
excludes them."""

from __future__ import annotations

import asyncio
import queue
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from servin import safefs
from servin.build import ignore
from servin.errors import InvalidArgument
from servin.images import union
from servin.images.layers import extract_plain

_MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
_DOCKERFILE_LIMIT = 16 << 20
_END = b""


def is_archive(head: bytes) -> bool:
    return any(head.startswith(m) for m in _MAGICS) or head[257:262] == b"ustar"


class _QueueReader:
    """A blocking reader of the chunks an event loop puts into a queue (b"" ends it, None aborts).

    A plain tar is completed at its end: the docker CLI sends a context whose Dockerfile it added
    (``-f`` outside the context) without the last member's padding and the end-of-archive blocks,
    which Go's reader tolerates and Python's does not."""

    def __init__(self, chunks: queue.Queue[bytes | None], head: bytes, *, plain_tar: bool) -> None:
        self._chunks = chunks
        self._buf = head
        self._pos = 0  # what was read of _buf
        self._eof = False
        self._plain_tar = plain_tar
        self._total = len(head)

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buf) - self._pos < n):
            chunk = self._chunks.get()
            if chunk is None:
                raise EOFError("the build context ended early")
            if chunk == _END:
                self._eof = True
                if self._plain_tar:
                    chunk = bytes(-self._total % 512 + 1024)
            self._total += len(chunk)
            self._buf = self._buf[self._pos:] + chunk
            self._pos = 0
        if n < 0:
            n = len(self._buf) - self._pos
        out = self._buf[self._pos:self._pos + n]
        self._pos += len(out)
        return out


async def _put(chunks: queue.Queue[bytes | None], item: bytes | None, worker: asyncio.Future[Any]) -> None:
    while True:
        try:
            chunks.put_nowait(item)
            return
        except queue.Full:
            if worker.done():
                return
            await asyncio.sleep(0.002)


async def receive(body: AsyncIterator[bytes], dest: Path) -> None:
    """Stream ``body`` into the new directory ``dest``."""
    dest.mkdir(mode=0o700, parents=True)
    head = b""
    it = body.__aiter__()
    async for chunk in it:
        head += chunk
        if len(head) >= 512:
            break
    if not is_archive(head):
        with open(dest / "Dockerfile", "wb") as f:
            f.write(head)
            async for chunk in it:
                f.write(chunk)
                if f.tell() > _DOCKERFILE_LIMIT:
                    raise InvalidArgument("the Dockerfile sent as the build context is too large")
        return
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=4)  # at most a few MiB in flight
    plain = not any(head.startswith(m) for m in _MAGICS)
    worker = asyncio.ensure_future(asyncio.to_thread(extract_plain, _QueueReader(chunks, head, plain_tar=plain),
                                                     dest))
    try:
        async for chunk in it:
            if chunk:
                await _put(chunks, chunk, worker)
            if worker.done():
                break
        await _put(chunks, _END, worker)
    except BaseException:
        await _put(chunks, None, worker)
        await asyncio.wait([worker])
        raise
    await worker


def read_dockerfile(root: Path, name: str) -> tuple[str, bytes]:
    """The Dockerfile's path in the context (as given) and its content."""
    candidates = [name] if name else ["Dockerfile", "dockerfile"]
    for path in candidates:
        found = union.resolve([root], path)
        if found is not None and stat.S_ISREG(found.st.st_mode):
            with open(found.path, "rb") as f:
                data = f.read(_DOCKERFILE_LIMIT + 1)
            if len(data) > _DOCKERFILE_LIMIT:
                raise InvalidArgument(f"the Dockerfile ({path}) is too large")
            return path, data
    raise InvalidArgument(f"Cannot locate specified Dockerfile: {name or 'Dockerfile'}")


def apply_dockerignore(root: Path, dockerfile: str) -> None:
    """Delete .dockerignore and the Dockerfile when .dockerignore excludes them (dockerd's removeDockerfile)."""
    found = union.resolve([root], ".dockerignore")
    if found is None or not stat.S_ISREG(found.st.st_mode):
        return
    patterns = ignore.read_patterns(found.path.read_bytes())
    for name in ignore.removed_by_daemon(patterns, dockerfile):
        entry = union.entry([root], [p for p in name.split("/") if p not in ("", ".")])
        if entry is not None and not entry.is_dir:
            entry.path.unlink(missing_ok=True)


def remove(root: Path) -> None:
    safefs.remove_tree(root, ignore_errors=True)
