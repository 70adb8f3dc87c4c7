"""Exec: processes started in a running container (docker exec), and their records."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import secrets
from dataclasses import dataclass, field

from servin import errors, stdcopy
from servin.core import lifecycle
from servin.core.containers import ContainerService
from servin.core.events import Event
from servin.core.model import Container
from servin.core.users import resolve_user
from servin.runtime.api import ProcessSession, ProcessSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecConfig:
    cmd: tuple[str, ...]
    env: tuple[str, ...] = ()
    user: str = ""
    working_dir: str = ""
    tty: bool = False
    privileged: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    detach_keys: str = ""
    console_size: tuple[int, int] | None = None


@dataclass(slots=True, kw_only=True)
class ExecRecord:
    id: str
    container_id: str
    config: ExecConfig
    running: bool = False
    started: bool = False
    pid: int = 0
    exit_code: int | None = None
    session: ProcessSession | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


MAX_OUTPUT = 4096  # what run() keeps of a command's output


class ExecService:
    MAX_KEPT = 256  # finished execs kept per daemon for inspect, oldest dropped first

    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers
        self._execs: dict[str, ExecRecord] = {}

    def _running_container(self, ref: str) -> Container:
        c = self.containers.get(ref)
        lifecycle.can_exec(c)
        return c

    def create(self, ref: str, config: ExecConfig) -> ExecRecord:
        c = self._running_container(ref)
        if not config.cmd:
            raise errors.InvalidArgument("No exec command specified")
        rec = ExecRecord(id=secrets.token_hex(32), container_id=c.id, config=config)
        self._execs[rec.id] = rec
        self._trim()
        self._emit(c, rec, f"exec_create: {' '.join(config.cmd)}")
        return rec

    def get(self, exec_id: str) -> ExecRecord:
        rec = self._execs.get(exec_id)
        if rec is None:
            raise errors.NotFound(f"No such exec instance: {exec_id}")
        return rec

    def ids_of(self, container_id: str) -> list[str]:
        return [e.id for e in self._execs.values() if e.container_id == container_id and e.running]

    def _emit(self, c: Container, rec: ExecRecord, action: str, **extra: str) -> None:
        attrs = {"image": c.config.image, "name": c.name, "execID": rec.id, **c.config.labels, **extra}
        self.containers.events.publish(Event(type="container", action=action, actor_id=c.id, attributes=attrs))

    def _trim(self) -> None:
        finished = [e for e in self._execs.values() if e.exit_code is not None]
        for e in finished[: max(0, len(self._execs) - self.MAX_KEPT)]:
            self._execs.pop(e.id, None)

    async def start(self, exec_id: str, console_size: tuple[int, int] | None = None) -> ExecRecord:
        """Start the process; the caller reads rec.session (frames) and awaits finish(). `console_size`
        (the start body's) replaces the one given at create."""
        rec = self.get(exec_id)
        if rec.started:
            raise errors.Conflict(f"Error: Exec command {exec_id} has already run")
        c = self._running_container(rec.container_id)
        if not self.containers.supervised(c.id):
            raise errors.Conflict(f"Container {c.id} is not running")
        cfg = rec.config  # the pty comes from create; start's Tty only picks the framing (API layer)
        passwd = await asyncio.to_thread(self.containers.images.read_file, c.image_id, "/etc/passwd")
        group = await asyncio.to_thread(self.containers.images.read_file, c.image_id, "/etc/group")
        user = resolve_user(cfg.user or c.resolved_user, passwd, group)
        env = list(c.resolved_env)
        if cfg.tty and not any(e.startswith("TERM=") for e in env + list(cfg.env)):
            env.append("TERM=xterm")
        keys = {e.split("=", 1)[0] for e in cfg.env}
        # a bare "NAME" unsets NAME and is not passed on, as dockerd's ReplaceOrAppendEnvValues
        env = [e for e in [*(e for e in env if e.split("=", 1)[0] not in keys), *cfg.env] if "=" in e]
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={user.home}")
        rec.started = True
        try:
            session = await self.containers.runtime.exec(c.id, ProcessSpec(
                args=cfg.cmd, env=env, cwd=cfg.working_dir or c.resolved_workdir or "/", uid=user.uid,
                gid=user.gid, groups=user.additional_gids, privileged=cfg.privileged, terminal=cfg.tty,
                open_stdin=cfg.attach_stdin, console_size=(console_size or cfg.console_size) if cfg.tty else None,
                stdout=cfg.attach_stdout or not cfg.attach_stdin,
                stderr=cfg.attach_stderr or not cfg.attach_stdin))
        except errors.ExecFailed:
            rec.exit_code = 126  # dockerd's ContainerExecStart: any exec that fails to start, 127 or not
            rec.done.set()
            raise
        rec.session, rec.pid, rec.running = session, session.pid, True
        self._emit(c, rec, f"exec_start: {' '.join(cfg.cmd)}")
        asyncio.ensure_future(self._reap(rec, c))
        return rec

    async def _reap(self, rec: ExecRecord, c: Container) -> None:
        assert rec.session is not None
        try:
            code = await rec.session.wait()
        except Exception as exc:
            log.warning("exec %s: %s", rec.id[:12], exc)
            code = 126
        rec.exit_code, rec.running = code, False
        rec.done.set()
        self._emit(c, rec, "exec_die", exitCode=str(code))

    async def resize(self, exec_id: str, height: int, width: int) -> None:
        rec = self.get(exec_id)
        if not rec.running:
            raise errors.Conflict(f"Exec {exec_id} is not running")  # matches dockerd's wording closely
        if self.containers.supervised(rec.container_id) and rec.config.tty:
            await self.containers.runtime.resize(rec.container_id, height, width, pid=rec.pid)

    async def run(self, c: Container, cmd: tuple[str, ...], timeout: float) -> tuple[int, bytes]:
        """Run a command to completion (healthchecks): exit code and output (capped at 4 KiB)."""
        rec = self.create(c.id, ExecConfig(cmd=cmd))
        rec = await self.start(rec.id)
        out = bytearray()

        async def collect() -> None:
            assert rec.session is not None
            async for f in stdcopy.frames(rec.session.reader):
                if len(out) < MAX_OUTPUT:
                    out.extend(f.payload[: MAX_OUTPUT - len(out)])

        try:
            await asyncio.wait_for(asyncio.gather(collect(), rec.done.wait()), timeout)
        except asyncio.TimeoutError:
            if rec.pid and rec.running:  # the probe's host pid, a child of the container's shim
                with contextlib.suppress(ProcessLookupError):
                    os.kill(rec.pid, signal.SIGKILL)
            raise
        finally:
            self._execs.pop(rec.id, None)
        return rec.exit_code if rec.exit_code is not None else 1, bytes(out)
