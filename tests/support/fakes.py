"""A recording, in-memory stand-in for servin.runtime.Runtime and Shim (no root, no processes).

The fake "container" interprets its OCI args:
  ["sh", "-c", "<script>"]  a tiny script of `;`-separated commands:
                            `echo TEXT` (stdout), `echo TEXT >&2` (stderr), `exit N`,
                            `sleep` (run until killed), `trap` (ignore every signal but SIGKILL)
  ["sleep", ...], ["top"]   run until killed
  ["cat"]                   copy attached stdin to stdout until stdin closes
  anything else             exit 0 at once
Output goes to the json-file log (as servin-shim writes it) and, as stdcopy frames (raw with a
TTY), to every attached reader. `kill` ends `wait()` with 128+signal.

`FakeRuntime` implements servin.runtime.api.Runtime (verbs by container id). An exec runs the same
tiny scripts.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servin.core.containers import now_rfc3339
from servin.core.resources import assumed_features
from servin.runtime import ContainerNotRunning, ExitStatus, StartFailed
from servin.runtime.api import AttachStream, OciResources, ProcessSpec, ResourceFeatures, ResourceStats


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(payload)) + payload


@dataclass(frozen=True)
class Echo:
    stream: int  # 1 stdout, 2 stderr
    data: bytes


@dataclass(frozen=True)
class Exit:
    code: int


def is_script(args: list[str]) -> bool:
    return args[:2] == ["sh", "-c"] and len(args) > 2


def script(text: str) -> list[Echo | Exit | str]:
    """The steps of a tiny `sh -c` script (the module's docstring): Echo, Exit, "trap" and "sleep";
    other commands are passed over."""
    steps: list[Echo | Exit | str] = []
    for cmd in (c.strip() for c in text.split(";")):
        if cmd.startswith("echo "):
            body = cmd[5:]
            steps.append(Echo(2, body[:-3].strip().encode() + b"\n") if body.endswith(">&2")
                         else Echo(1, body.encode() + b"\n"))
        elif cmd.startswith("exit"):
            steps.append(Exit(int(cmd.split()[1]) if len(cmd.split()) > 1 else 0))
        elif cmd == "trap" or cmd.startswith("sleep"):
            steps.append("trap" if cmd == "trap" else "sleep")
    return steps


class FakeWriter:
    """The stdin side of an attach connection (what asyncio.StreamWriter offers)."""

    def __init__(self, shim: FakeShim) -> None:
        self._shim = shim
        self.closed = False

    def write(self, data: bytes) -> None:
        self._shim.stdin_received(data)

    async def drain(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self._shim.stdin_closed()

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed


class FakeShim:
    def __init__(self, runtime: FakeRuntime, cid: str, spec: dict[str, Any], log_path: Path,
                 exit_path: Path) -> None:
        self.runtime = runtime
        self.container_id = cid
        self.spec = spec
        self.log_path = Path(log_path)
        self.exit_path = Path(exit_path)
        self.pid: int | None = None
        self.tty = bool(spec.get("process", {}).get("terminal"))
        self.args: list[str] = list(spec.get("process", {}).get("args") or [])
        self.readers: list[asyncio.StreamReader] = []
        self.stdin = bytearray()
        self.signals: list[int] = []
        self.ignore_signals = False
        self.closed = False
        self.started_at = ""
        self._killed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._stdin_eof: asyncio.Event = asyncio.Event()
        self._exited: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None

    # ---- the Shim interface --------------------------------------------------------------

    async def attach(self, *, stdin: bool, stdout: bool, stderr: bool
                     ) -> tuple[asyncio.StreamReader, FakeWriter]:
        self.runtime.record("attach", self.container_id, stdin, stdout, stderr)
        reader = asyncio.StreamReader()
        if self._exited.done():
            reader.feed_eof()
        else:
            self.readers.append(reader)
        return reader, FakeWriter(self)

    async def start(self) -> int:
        self.runtime.record("start", self.container_id)
        failure = self.runtime.start_failures.pop(self.container_id, None) or self.runtime.fail_next_start
        if failure is not None:
            self.runtime.fail_next_start = None
            raise StartFailed(*failure)
        self.runtime.next_pid += 1
        self.pid = self.runtime.next_pid
        self.started_at = now_rfc3339()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self.pid

    async def kill(self, signum: int) -> None:
        self.runtime.record("kill", self.container_id, signum)
        self.signals.append(signum)
        if self.ignore_signals and signum != signal.SIGKILL:
            return
        if not self._killed.done():
            self._killed.set_result(128 + signum)

    async def close_stdin(self) -> None:
        self.stdin_closed()

    async def wait(self) -> ExitStatus:
        return await asyncio.shield(self._exited)

    async def close(self) -> None:
        self.closed = True

    # ---- the container -------------------------------------------------------------------

    def stdin_received(self, data: bytes) -> None:
        self.stdin += data
        if self.args[:1] == ["cat"]:
            self.write("stdout", data)

    def stdin_closed(self) -> None:
        self._stdin_eof.set()

    def write(self, stream: str, data: bytes) -> None:
        entry = {"log": data.decode("utf-8", "surrogateescape"), "stream": stream, "time": now_rfc3339()}
        with open(self.log_path, "ab") as f:
            f.write(json.dumps(entry).encode() + b"\n")
        chunk = data if self.tty else frame(1 if stream == "stdout" else 2, data)
        for r in self.readers:
            r.feed_data(chunk)

    async def _until_killed(self) -> int:
        return await asyncio.shield(self._killed)

    async def _run(self) -> None:
        await asyncio.sleep(0)  # start() returns first, as a real process runs on its own
        code = 0
        args = self.args
        try:
            if is_script(args):
                for step in script(args[2]):
                    if isinstance(step, Echo):
                        self.write("stdout" if step.stream == 1 else "stderr", step.data)
                    elif isinstance(step, Exit):
                        code = step.code
                        break
                    elif step == "trap":
                        self.ignore_signals = True
                    elif step == "sleep":
                        code = await self._until_killed()
                        break
            elif args[:1] in (["sleep"], ["top"]):
                code = await self._until_killed()
            elif args[:1] == ["cat"]:
                eof = asyncio.ensure_future(self._stdin_eof.wait())
                done, _ = await asyncio.wait({eof, asyncio.shield(self._killed)},
                                             return_when=asyncio.FIRST_COMPLETED)
                code = self._killed.result() if self._killed.done() else 0
                eof.cancel()
        finally:
            self._finish(code)

    def _finish(self, code: int) -> None:
        if self._exited.done():
            return
        for r in self.readers:
            r.feed_eof()
        status = ExitStatus(exit_code=code, started_at=self.started_at, finished_at=now_rfc3339(),
                            oom_killed=False)
        self.exit_path.write_text(json.dumps({"exit_code": code, "started_at": status.started_at,
                                              "finished_at": status.finished_at}))
        self.runtime.record("exit", self.container_id, code)
        self._exited.set_result(status)


class FakeExec:
    """An exec in a fake container: `echo` lines as stdcopy frames (raw with a terminal), then EOF;
    `exit N` is its exit code; `cat` copies stdin until it closes."""

    def __init__(self, runtime: FakeRuntime, process: ProcessSpec) -> None:
        runtime.next_pid += 1
        self.pid = runtime.next_pid
        self.process = process
        self.args = [a.decode() if isinstance(a, bytes) else a for a in process.args]
        self.reader = asyncio.StreamReader()
        self.writer = FakeExecWriter(self)
        self.stdin = bytearray()
        self._stdin_eof = asyncio.Event()
        self._code: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _out(self, stream: int, data: bytes) -> None:
        if (self.process.stdout if stream == 1 else self.process.stderr) or self.process.open_stdin:
            self.reader.feed_data(data if self.process.terminal else frame(stream, data))

    async def _run(self) -> None:
        await asyncio.sleep(0)
        code, args = 0, self.args
        try:
            if is_script(args):
                for step in script(args[2]):
                    if isinstance(step, Echo):
                        self._out(step.stream, step.data)
                    elif isinstance(step, Exit):
                        code = step.code
                        break
            elif args[:1] == ["cat"]:
                await self._stdin_eof.wait()
                self._out(1, bytes(self.stdin))
        finally:
            self.reader.feed_eof()
            self._code.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._code)

    async def close(self) -> None:
        self.writer.close()


class FakeExecWriter(FakeWriter):
    def __init__(self, ex: FakeExec) -> None:
        self._exec = ex
        self.closed = False

    def write(self, data: bytes) -> None:
        self._exec.stdin += data

    def write_eof(self) -> None:
        self._exec._stdin_eof.set()


@dataclass
class FakeRuntime:
    """Records every call in `calls`; `specs` holds each container's config.json."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    shims: dict[str, FakeShim] = field(default_factory=dict)
    fail_next_start: tuple[int, str] | None = None
    start_failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    next_pid: int = 1000
    cgroup_parent: str = "servin-test"
    cgroup_version: int = 2
    paused: set[str] = field(default_factory=set)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # the last update of each
    exit_paths: dict[str, Path] = field(default_factory=dict)

    def record(self, *call: Any) -> None:
        self.calls.append(call)

    def actions(self, cid: str) -> list[str]:
        return [c[0] for c in self.calls if c[1] == cid]

    @property
    def features(self) -> ResourceFeatures:
        return assumed_features(self.cgroup_version, os.cpu_count() or 1)

    def cgroups_path(self, container_id: str) -> str:
        return f"/{self.cgroup_parent.strip('/')}/{container_id}"

    async def create(self, container_id: str, *, bundle: Path, log_path: Path | None, exit_path: Path) -> None:
        spec = json.loads((Path(bundle) / "config.json").read_text())
        self.specs[container_id] = spec
        self.record("create", container_id)
        shim = FakeShim(self, container_id, spec, log_path or Path(os.devnull), exit_path)
        self.shims[container_id] = shim
        self.exit_paths[container_id] = Path(exit_path)
        self.paused.discard(container_id)

    async def reconnect(self, container_id: str) -> bool:
        self.record("reconnect", container_id)
        shim = self.shims.get(container_id)
        return shim is not None and not shim._exited.done()

    def read_exit(self, container_id: str, *, exit_path: Path | None = None) -> ExitStatus | None:
        self.record("read_exit", container_id)
        path = exit_path or self.exit_paths.get(container_id)
        if path is None:
            return None
        try:
            info = json.loads(Path(path).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return ExitStatus(exit_code=info["exit_code"], started_at=info["started_at"],
                          finished_at=info["finished_at"], oom_killed=False)

    async def delete(self, container_id: str) -> None:
        self.record("delete", container_id, self.cgroups_path(container_id))
        self.shims.pop(container_id, None)
        self.paused.discard(container_id)

    async def release(self, container_id: str) -> None:
        shim = self.shims.get(container_id)
        if shim is not None:
            await shim.close()

    # ---- verbs by id -----------------------------------------------------------------------

    def _live(self, container_id: str) -> FakeShim:
        shim = self.shims.get(container_id)
        if shim is None or shim._exited.done():
            raise ContainerNotRunning(f"Container {container_id} is not running")
        return shim

    async def start(self, container_id: str) -> int:
        shim = self.shims.get(container_id)
        if shim is None:
            raise ContainerNotRunning(f"Container {container_id} is not running")
        return await shim.start()

    async def signal(self, container_id: str, signum: int, *, thaw: bool = False) -> None:
        await self._live(container_id).kill(signum)
        if (thaw or signum == signal.SIGKILL) and container_id in self.paused:
            self.paused.discard(container_id)
            self.record("thaw", container_id)

    async def pause(self, container_id: str) -> None:
        self._live(container_id)
        self.record("pause", container_id)
        self.paused.add(container_id)

    async def resume(self, container_id: str) -> None:
        self._live(container_id)
        self.record("resume", container_id)
        self.paused.discard(container_id)

    async def update(self, container_id: str, resources: OciResources) -> None:
        self.record("update", container_id)
        self.resources[container_id] = dict(resources)

    def stats(self, container_id: str) -> ResourceStats | None:
        shim = self.shims.get(container_id)
        if shim is None or shim.pid is None or shim._exited.done():
            return None
        return ResourceStats(cpu_usage_ns=0, memory_usage=0, memory_limit=None, pids_current=1, oom_kills=0)

    async def pids(self, container_id: str) -> list[int]:
        shim = self.shims.get(container_id)
        return [shim.pid] if shim is not None and shim.pid is not None and not shim._exited.done() else []

    async def top(self, container_id: str, ps_args: str) -> tuple[list[str], list[list[str]]]:
        self.record("top", container_id, ps_args)
        titles = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        shim = self.shims.get(container_id)
        cmd = " ".join(shim.args) if shim is not None else ""
        return titles, [["root", str(pid), "0", "0", "00:00", "?", "00:00:00", cmd]
                        for pid in await self.pids(container_id)]

    async def exec(self, container_id: str, process: ProcessSpec) -> FakeExec:
        self._live(container_id)
        self.record("exec", container_id, tuple(process.args))
        return FakeExec(self, process)

    async def attach(self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool) -> AttachStream:
        shim = self.shims.get(container_id)
        if shim is None:
            raise ContainerNotRunning(f"Container {container_id} is not running")
        reader, writer = await shim.attach(stdin=stdin, stdout=stdout, stderr=stderr)
        return AttachStream(reader=reader, writer=writer)  # type: ignore[arg-type]

    async def resize(self, container_id: str, rows: int, cols: int, *, pid: int = 0) -> None:
        self._live(container_id)
        self.record("resize", container_id, pid, rows, cols)

    async def wait(self, container_id: str) -> ExitStatus:
        shim = self.shims.get(container_id)
        if shim is not None:
            return await shim.wait()
        return self.read_exit(container_id) or ExitStatus(exit_code=255)
