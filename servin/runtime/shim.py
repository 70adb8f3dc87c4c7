"""Talking to servin-shim (native/servin-shim.c): spawn it, connect to its socket, send commands.

One control connection per `Shim` object carries the commands (answered in order) and the
unsolicited `exited <status>` line; attach and exec connections are opened on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from servin import stdcopy
from servin.errors import Conflict, ExecFailed, OperationFailed
from servin.runtime.api import ExitStatus
from servin.runtime.linux import ALL_CAPS
from servin.runtime.plan_format import ExecPlan, decode

SHIM_NAME = "servin-shim"
_SUN_PATH_MAX = 100


class StartFailed(ExecFailed):
    """The container's process could not be started. exit_code is 126/127 as Docker has it for
    a command that cannot be invoked / is not found, 1 for other setup failures."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message, exit_code)


class ShimError(OperationFailed):
    pass


class ContainerNotRunning(Conflict):
    """An exec was asked of a container whose init is not running (the shim's
    `failed 1 container not running`)."""


EXIT_FRAME = 0xFE  # stream type of the exec's last frame: 4-byte big-endian exit code


class _Gate:
    """Stands in for a transport on the StreamReader handed to the caller: the reader's own flow
    control pauses us once it buffers 2 x limit bytes and resumes us when it is read down."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()

    def pause_reading(self) -> None:
        self.open.clear()

    def resume_reading(self) -> None:
        self.open.set()


class ExecSession:
    """A running exec. `reader` yields the exec's output as stdcopy frames (stream 1 and 2; with a
    terminal everything is stream 1) and reaches EOF after the last one; the shim's exit trailer
    is taken off. `writer` is the exec's stdin (raw bytes; write_eof() closes it)."""

    def __init__(
        self,
        *,
        pid: int,
        raw: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        stdout: bool = True,
        stderr: bool = True,
        limit: int = 1 << 20,
    ) -> None:
        self.pid = pid
        self.writer = writer
        self.reader = asyncio.StreamReader(limit=limit)
        self._gate = _Gate()
        self.reader.set_transport(self._gate)  # type: ignore[arg-type]
        self._raw = raw
        self._want = {1: stdout, 2: stderr}
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._pump(), name=f"exec-{pid}")

    async def _pump(self) -> None:
        code: int | None = None
        try:
            while (f := await stdcopy.read_frame(self._raw)) is not None:
                if f.stream == EXIT_FRAME:
                    code = int.from_bytes(f.payload[:4], "big", signed=True) if len(f.payload) >= 4 else 255
                    break
                if self._want.get(f.stream, True):
                    await self._gate.open.wait()
                    self.reader.feed_data(stdcopy.frame(f.stream, f.payload))
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.reader.feed_eof()
            if not self._exit.done():
                if code is None:
                    self._exit.set_exception(ShimError(f"the shim closed exec {self.pid} without an exit status"))
                else:
                    self._exit.set_result(code)

    async def wait(self) -> int:
        """Docker's exit code of the exec (code, or 128 + signal), once its output is drained."""
        return await asyncio.shield(self._exit)

    async def close(self) -> None:
        """Drop the connection (the exec runs on; its output is discarded by the shim)."""
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self._exit.done():
            self._exit.cancel()


def shim_binary(explicit: Path | None = None) -> Path:
    """$SERVIN_SHIM, else servin/libexec/servin-shim next to this package."""
    if explicit is not None:
        return explicit
    env = os.environ.get("SERVIN_SHIM")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "libexec" / SHIM_NAME


def spawn_shim(binary: Path, state_dir: Path, timeout: float = 10.0) -> int:
    """Start the shim for `state_dir` (blocking; run it in a thread). Returns the shim's pid once
    it wrote "ready". The process we start forks the shim and exits at once; we reap it here."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        proc = subprocess.Popen(
            [str(binary), str(state_dir), str(w)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(w,),
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
        os.close(w)
        w = -1
        proc.wait(timeout=timeout)
        data = b""
        deadline = time.monotonic() + timeout
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise ShimError(f"servin-shim for {state_dir} did not become ready")
            ready, _, _ = select.select([r], [], [], left)
            if not ready:
                continue
            chunk = os.read(r, 4096)
            if not chunk:
                break
            data += chunk
        line = data.decode(errors="replace").strip()
        if line != "ready":
            raise ShimError(f"servin-shim failed: {line or 'exited without a word'} (exit {proc.returncode})")
        return int((state_dir / "shim.pid").read_text().strip())
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


async def open_shim_socket(sock: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    path = str(sock)
    if len(path) < _SUN_PATH_MAX:
        return await asyncio.open_unix_connection(path, limit=1 << 20)
    # a long path: connect through the directory's fd (sun_path holds ~108 bytes)
    dfd = os.open(sock.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return await asyncio.open_unix_connection(f"/proc/self/fd/{dfd}/{sock.name}", limit=1 << 20)
    finally:
        os.close(dfd)


def read_exit_file(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


class Shim:
    """A handle on one container's shim. Dropping it (close) leaves the container running."""

    def __init__(
        self,
        *,
        container_id: str,
        state_dir: Path,
        exit_path: Path | None,
        oom_killed: Callable[[], bool],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pid: int | None = None,
    ) -> None:
        self.container_id = container_id
        self.state_dir = state_dir
        self.exit_path = exit_path
        self.pid: int | None = pid
        self._oom_killed = oom_killed
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self._replies: asyncio.Queue[str | None] = asyncio.Queue()
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._status: ExitStatus | None = None
        self._process_settings: tuple[int, bool] | None = None
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"shim-control-{container_id[:12]}")

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "shim.sock"

    async def _read_loop(self) -> None:
        try:
            while True:
                raw = await self._reader.readline()
                if not raw:
                    break
                line = raw.decode(errors="replace").rstrip("\n")
                if line.startswith("exited "):
                    if not self._exited.done():
                        self._exited.set_result(int(line.split()[1]))
                else:
                    self._replies.put_nowait(line)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._replies.put_nowait(None)
            if not self._exited.done():
                self._exited.set_result(-1)  # connection lost: the exit file tells

    async def _command(self, cmd: str) -> str:
        async with self._lock:
            if self._writer.is_closing():
                raise ShimError(f"connection to the shim of {self.container_id} is closed")
            self._writer.write(cmd.encode() + b"\n")
            await self._writer.drain()
            reply = await self._replies.get()
            if reply is None:
                self._replies.put_nowait(None)
                raise ShimError(f"the shim of {self.container_id} went away")
            return reply

    async def attach(
        self, *, stdin: bool, stdout: bool, stderr: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await open_shim_socket(self.socket_path)
        writer.write(f"attach {int(stdin)} {int(stdout)} {int(stderr)}\n".encode())
        await writer.drain()
        return reader, writer

    async def exec(
        self,
        *,
        args: Sequence[str | bytes],
        env: Sequence[str | bytes] = (),
        cwd: str = "/",
        uid: int = 0,
        gid: int = 0,
        groups: Sequence[int] = (),
        caps_privileged: bool = False,
        terminal: bool = False,
        open_stdin: bool = False,
        console_size: tuple[int, int] | None = None,
        stdout: bool = True,
        stderr: bool = True,
        no_new_privs: bool | None = None,
    ) -> ExecSession:
        """Run a process in the running container (its namespaces, cgroup, rlimits). Capabilities
        and no_new_privs are the container's unless caps_privileged (every capability) or
        no_new_privs is given. Raises StartFailed (126/127/1 with Docker's wording) when it cannot
        start, ContainerNotRunning when the container's init is not running."""
        caps, nnp = self._container_process_settings()
        plan = ExecPlan(
            args=tuple(_b(a) for a in args),
            env=tuple(_b(e) for e in env),
            cwd=cwd or "/",
            uid=uid,
            gid=gid,
            groups=tuple(groups),
            caps=ALL_CAPS if caps_privileged else caps,
            no_new_privs=nnp if no_new_privs is None else no_new_privs,
            terminal=terminal,
            open_stdin=open_stdin,
            console_size=console_size,
        )
        path = self.state_dir / f"exec-{uuid.uuid4().hex}.plan"
        path.write_bytes(plan.encode())
        writer: asyncio.StreamWriter | None = None
        try:
            try:
                reader, writer = await open_shim_socket(self.socket_path)
            except (FileNotFoundError, ConnectionRefusedError):
                raise ContainerNotRunning(f"container {self.container_id} is not running") from None
            writer.write(b"exec " + str(path).encode() + b"\n")
            try:
                await writer.drain()
                raw = await reader.readline()
            except ConnectionError:
                raw = b""
            if not raw:  # the shim closes without a word only when it is exiting
                raise ContainerNotRunning(f"container {self.container_id} is not running")
        except BaseException:
            if writer is not None:
                writer.close()
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        reply = raw.decode(errors="replace").rstrip("\n")
        if reply.startswith("started "):
            return ExecSession(pid=int(reply.split()[1]), raw=reader, writer=writer, stdout=stdout, stderr=stderr)
        writer.close()
        if reply.startswith("failed "):
            _, code, *msg = reply.split(" ", 2)
            message = msg[0] if msg else "exec failed"
            if message == "container not running":
                raise ContainerNotRunning(f"container {self.container_id} is not running")
            raise StartFailed(int(code), message)
        raise ShimError(f"unexpected reply from the shim: {reply or 'connection closed'!r}")

    def _container_process_settings(self) -> tuple[int, bool]:
        """The container's capability mask and no_new_privs, from its plan."""
        if self._process_settings is None:
            caps, nnp = 0, False
            with contextlib.suppress(FileNotFoundError):
                for tag, values in decode((self.state_dir / "plan").read_bytes()):
                    if tag == "caps":
                        caps = int(values[0])
                    elif tag == "no_new_privs":
                        nnp = values[0] == b"1"
            self._process_settings = (caps, nnp)
        return self._process_settings

    async def resize(self, pid: int, rows: int, cols: int) -> None:
        """Set the terminal size of the container's init (pid 0 or its pid) or of an exec."""
        reply = await self._command(f"resize {int(pid)} {int(rows)} {int(cols)}")
        if reply != "ok":
            raise ShimError(reply.removeprefix("error ").strip() or reply)

    async def start(self) -> int:
        reply = await self._command("start")
        if reply.startswith("started "):
            self.pid = int(reply.split()[1])
            return self.pid
        if reply.startswith("failed "):
            _, code, *msg = reply.split(" ", 2)
            raise StartFailed(int(code), msg[0] if msg else "start failed")
        raise ShimError(f"unexpected reply from the shim: {reply!r}")

    async def kill(self, signum: int) -> None:
        reply = await self._command(f"kill {int(signum)}")
        if reply != "ok":
            raise ShimError(reply.removeprefix("error ").strip() or reply)

    async def close_stdin(self) -> None:
        await self._command("closestdin")

    async def state(self) -> tuple[str, int, int]:
        """("created"|"running"|"exited", pid, exit_code)."""
        _, st, pid, code = (await self._command("state")).split()
        return st, int(pid), int(code)

    async def shutdown(self) -> None:
        """Make the shim exit (a running container is SIGKILLed first)."""
        with contextlib.suppress(ShimError, ConnectionError, OSError):
            await self._command("shutdown")

    async def wait(self) -> ExitStatus:
        if self._status is not None:
            return self._status
        code = await asyncio.shield(self._exited)
        info = read_exit_file(self.state_dir / "exit")
        if info is None and self.exit_path is not None:
            info = read_exit_file(self.exit_path)
        if info is None:
            info = {"exit_code": code if code >= 0 else 255, "started_at": "", "finished_at": ""}
        self._status = ExitStatus(
            exit_code=int(info["exit_code"]),
            started_at=info.get("started_at", ""),
            finished_at=info.get("finished_at", ""),
            oom_killed=self._oom_killed(),
        )
        return self._status

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader_task


def _b(s: str | bytes) -> bytes:
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")
