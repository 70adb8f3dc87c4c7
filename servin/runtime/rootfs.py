"""The daemon's side of the root-filesystem helper (rootfs_exec.py): spawn it, read its answer,
stream tar data through its stdin and stdout without holding an archive in memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import servin

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
_PYTHONPATH = str(Path(servin.__file__).resolve().parent.parent)


@dataclass(frozen=True, slots=True, kw_only=True)
class RootfsTarget:
    """Where a container's files are: in a running init's mount namespace (``pid``), or in the
    overlay of its image layers (``lowerdirs``, top first) and its upper/work dirs, which the
    helper mounts on ``mountpoint`` in a namespace of its own."""

    pid: int = 0
    lowerdirs: tuple[str, ...] = ()
    upperdir: str = ""
    workdir: str = ""
    mountpoint: str = ""
    # a stopped container's volumes and binds, (host source, container path, read-only, subpath of
    # the source: resolved inside it, "" for all of it), parents first
    binds: tuple[tuple[str, str, bool, str], ...] = ()

    def request(self) -> dict[str, Any]:
        if self.pid:
            return {"pid": self.pid, "upperdir": self.upperdir}
        return {"lowerdirs": list(self.lowerdirs), "upperdir": self.upperdir, "workdir": self.workdir,
                "mountpoint": self.mountpoint, "binds": [list(b) for b in self.binds]}


@dataclass(frozen=True, slots=True, kw_only=True)
class PathStat:
    name: str
    size: int
    mode: int  # st_mode
    mtime_ns: int
    link_target: str


class RootfsError(Exception):
    """The helper refused: ``kind`` is notfound, invalid, system, or gone (the running container
    it was sent to has exited)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _stat(d: dict[str, Any]) -> PathStat:
    return PathStat(name=d["name"], size=int(d["size"]), mode=int(d["mode"]), mtime_ns=int(d["mtime_ns"]),
                    link_target=d.get("link_target") or "")


class _Helper:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, target: RootfsTarget, op: str, **params: Any) -> _Helper:
        req = {**target.request(), "op": op, **params}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": _PYTHONPATH,
               "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C.UTF-8"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "servin.runtime.rootfs_exec", json.dumps(req),
            stdin=asyncio.subprocess.PIPE if op == "put" else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd="/",
            limit=_CHUNK * 4)
        return cls(proc)

    async def answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            await self.finish()
            raise RootfsError("system", "the filesystem helper exited without an answer: "
                              + self._stderr.strip()[-500:])
        msg = json.loads(line)
        if "error" in msg:
            await self.finish()
            raise RootfsError(msg["error"], msg.get("message", ""))
        return msg

    _stderr = ""

    async def finish(self) -> int:
        assert self.proc.stderr is not None
        with contextlib.suppress(Exception):
            self._stderr = (await self.proc.stderr.read()).decode(errors="replace")
        rc = await self.proc.wait()
        if rc != 0 and self._stderr.strip():
            log.warning("filesystem helper exited %d: %s", rc, self._stderr.strip()[-2000:])
        return rc

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()



class TarStream:
    """A helper's tar output: iterate it once; ``close`` ends the helper whether or not it was read."""

    def __init__(self, helper: _Helper) -> None:
        self._helper = helper

    async def __aiter__(self) -> AsyncIterator[bytes]:
        h = self._helper
        assert h.proc.stdout is not None
        try:
            while chunk := await h.proc.stdout.read(_CHUNK):
                yield chunk
            rc = await h.finish()
            if rc != 0:
                raise RootfsError("system", f"the filesystem helper failed ({rc}): {h._stderr.strip()[-300:]}")
        finally:
            await h.kill()

    async def close(self) -> None:
        await self._helper.kill()


async def stat(target: RootfsTarget, path: str) -> PathStat:
    h = await _Helper.start(target, "stat", path=path)
    try:
        msg = await h.answer()
        await h.finish()
        return _stat(msg["stat"])
    finally:
        await h.kill()


async def archive(target: RootfsTarget, path: str) -> tuple[PathStat, TarStream]:
    """The stat of ``path`` and its tar stream (Docker's GET /containers/{id}/archive)."""
    h = await _Helper.start(target, "get", path=path)
    try:
        msg = await h.answer()
    except BaseException:
        await h.kill()
        raise
    return _stat(msg["stat"]), TarStream(h)


async def export(target: RootfsTarget) -> TarStream:
    """The whole filesystem as a tar stream; the mounts on it are left out."""
    h = await _Helper.start(target, "export", bare=True)
    try:
        await h.answer()
    except BaseException:
        await h.kill()
        raise
    return TarStream(h)


async def extract(target: RootfsTarget, path: str, body: AsyncIterator[bytes], *,
                  no_overwrite_dir_non_dir: bool, chown: tuple[int, int] | None) -> None:
    """Extract the tar ``body`` into the existing directory ``path``."""
    h = await _Helper.start(target, "put", path=path, no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                            chown=list(chown) if chown else None)
    try:
        await h.answer()  # the destination is a directory: send the archive
        stdin = h.proc.stdin
        assert stdin is not None
        try:
            async for chunk in body:
                stdin.write(chunk)
                await stdin.drain()
            stdin.close()
            await stdin.wait_closed()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the helper stopped reading: its answer says why
        await h.answer()
        await h.finish()
    finally:
        await h.kill()
