"""The runtime: OCI bundle -> plan -> cgroup -> servin-shim, driven by container id (runtime/api.py).

It keeps the daemon's connection to each container's supervisor (a `Shim`), owns the cgroup
manager and the cgroup parent (a container's cgroup is `<parent>/<id>`), and turns OCI
`linux.resources` into the kernel's limits. Per container, `<exec root>/<id>/` holds the plan,
the shim's socket, pid and exit record, and `meta.json`: what a restarted daemon needs to find the
container again (its cgroup, its exit file).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal as signal_mod
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from servin.errors import SystemError_
from servin.kernel.cgroups import CgroupManager
from servin.runtime.api import AttachStream, ExitStatus, OciResources, ProcessSpec, ResourceFeatures, ResourceStats
from servin.runtime.plan import plan_from_oci
from servin.runtime.resources import resources_from_oci
from servin.runtime.seccomp import ProgramCache
from servin.runtime.shim import (
    ContainerNotRunning,
    ExecSession,
    Shim,
    ShimError,
    open_shim_socket,
    read_exit_file,
    shim_binary,
    spawn_shim,
)
from servin.runtime.top import ps_table
from servin.safefs import remove_tree

log = logging.getLogger(__name__)

META = "meta.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Meta:
    """What create recorded of a container (meta.json)."""

    cgroups_path: str
    exit_path: Path | None


class Runtime:
    """Implements runtime.api.Runtime."""

    def __init__(
        self,
        *,
        exec_root: Path,
        cgroups: CgroupManager,
        cgroup_parent: str = "servin",
        shim_binary: Path | None = None,
        init_binary: Path | None = None,
    ) -> None:
        self.exec_root = Path(exec_root)
        self.cgroups = cgroups
        self.cgroup_parent = "/" + cgroup_parent.strip("/")
        self._binary = shim_binary
        self._init_binary = init_binary
        self.seccomp_programs = ProgramCache(self.exec_root / "seccomp")  # compiled once per profile
        self._shims: dict[str, Shim] = {}  # the live supervisors, by container id
        self._metas: dict[str, _Meta] = {}  # meta.json as read or written
        self._maybe_frozen: set[str] = set()  # paused by us, or unknown (taken up again after a restart)

    # ---- the host's cgroups -------------------------------------------------------------

    @property
    def cgroup_version(self) -> int:
        return self.cgroups.version

    @property
    def features(self) -> ResourceFeatures:
        return self.cgroups.features

    def cgroups_path(self, container_id: str) -> str:
        return f"{self.cgroup_parent}/{container_id}"

    def state_dir(self, container_id: str) -> Path:
        return self.exec_root / container_id

    def _meta(self, container_id: str) -> _Meta:
        """What create recorded; the defaults when it is gone."""
        if (meta := self._metas.get(container_id)) is not None:
            return meta
        raw: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            raw = json.loads((self.state_dir(container_id) / META).read_text())
        cgroups_path = raw.get("cgroups_path")
        meta = _Meta(
            cgroups_path=self.cgroups_path(container_id) if cgroups_path is None else str(cgroups_path),
            exit_path=Path(raw["exit_path"]) if raw.get("exit_path") else None,
        )
        if raw:
            self._metas[container_id] = meta
        return meta

    def _oom_killed(self, cgroups_path: str) -> bool:
        if not cgroups_path:
            return False
        try:
            return bool(self.cgroups.oom_killed(cgroups_path))
        except Exception:  # noqa: BLE001 - a best-effort flag: the cgroup may be gone already
            return False

    # ---- create / reconnect / delete ----------------------------------------------------

    async def create(self, container_id: str, *, bundle: Path, log_path: Path | None, exit_path: Path) -> None:
        await self.spawn(container_id, bundle=bundle, log_path=log_path, exit_path=exit_path)

    async def spawn(self, container_id: str, *, bundle: Path, log_path: Path | None, exit_path: Path) -> Shim:
        """`create`, handing back the supervisor's handle (the runtime's own tests drive it): build
        the plan, create the cgroup (the spec's linux.cgroupsPath, as runc), spawn the shim. The
        container is not started. log_path None (or the annotation io.servin.log.driver=none): no
        log is written."""
        bundle = Path(bundle)
        config = json.loads((bundle / "config.json").read_text())
        linux = config.get("linux") or {}
        cgroups_path = linux.get("cgroupsPath") or ""
        state = self.state_dir(container_id)
        if (state / "shim.sock").exists():
            live = await self._connect(container_id)
            if live is not None:
                await live.close()
                raise ShimError(f"a shim for {container_id} is already running")
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._metas.pop(container_id, None)
        for stale in ("exit", "shim.pid", "shim.sock"):
            with contextlib.suppress(FileNotFoundError):
                (state / stale).unlink()

        needs_cgroup_mounts = any(m.get("type") in ("cgroup", "cgroup2") for m in config.get("mounts") or [])
        v1 = self.cgroups.hierarchy_mounts if needs_cgroup_mounts else None  # v2: None
        program = None
        if linux.get("seccomp"):  # before the cgroup: a profile libseccomp refuses leaves nothing behind
            program = await asyncio.to_thread(self.seccomp_programs.program, linux["seccomp"])
        procs: list[Path] = []
        if cgroups_path:
            procs = await asyncio.to_thread(self.cgroups.create, cgroups_path, resources_from_oci(linux))
        try:
            plan = plan_from_oci(
                config,
                bundle=bundle,
                log_path=log_path,
                exit_path=exit_path,
                cgroup_procs=procs,
                cgroup_v1_hierarchies=v1,
                init_binary=self._init_binary,
                seccomp_program=program,
            )
            tmp = state / "plan.tmp"
            tmp.write_bytes(plan.encode())
            os.replace(tmp, state / "plan")
            (state / META).write_text(
                json.dumps({"cgroups_path": cgroups_path, "exit_path": str(exit_path), "bundle": str(bundle)})
            )
            self._metas[container_id] = _Meta(cgroups_path=cgroups_path, exit_path=Path(exit_path))
            if plan.log:
                Path(plan.log).parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(spawn_shim, shim_binary(self._binary), state)
            reader, writer = await open_shim_socket(state / "shim.sock")
        except BaseException:
            self._metas.pop(container_id, None)
            if cgroups_path:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(self.cgroups.destroy, cgroups_path)
            raise
        writer.write(b"control\n")
        await writer.drain()
        shim = self._handle(container_id, Path(exit_path), cgroups_path, reader, writer)
        await self._register(container_id, shim)
        self._maybe_frozen.discard(container_id)
        return shim

    def _handle(
        self,
        container_id: str,
        exit_path: Path | None,
        cgroups_path: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> Shim:
        return Shim(
            container_id=container_id,
            state_dir=self.state_dir(container_id),
            exit_path=exit_path,
            oom_killed=lambda: self._oom_killed(cgroups_path),
            reader=reader,
            writer=writer,
        )

    async def _register(self, container_id: str, shim: Shim) -> None:
        old = self._shims.pop(container_id, None)
        if old is not None and old is not shim:
            await old.close()
        self._shims[container_id] = shim

    async def _connect(self, container_id: str) -> Shim | None:
        """A new control connection to a live shim (not registered); None if the shim is gone."""
        state = self.state_dir(container_id)
        try:
            reader, writer = await open_shim_socket(state / "shim.sock")
        except (FileNotFoundError, ConnectionRefusedError, OSError):
            return None
        meta = self._meta(container_id)
        writer.write(b"control\n")
        await writer.drain()
        shim = self._handle(container_id, meta.exit_path, meta.cgroups_path, reader, writer)
        try:
            st, pid, _ = await asyncio.wait_for(shim.state(), 5)
        except (ShimError, TimeoutError, ValueError):
            await shim.close()
            return None
        if st != "created":
            shim.pid = pid
        return shim

    async def reconnect(self, container_id: str) -> bool:
        return await self.reattach(container_id) is not None

    async def reattach(self, container_id: str) -> Shim | None:
        """`reconnect`, handing back the supervisor's handle: after a daemon restart, take up the
        live shim again; None if it is gone."""
        shim = await self._connect(container_id)
        if shim is None:
            return None
        await self._register(container_id, shim)
        self._maybe_frozen.add(container_id)  # it may have been paused before the restart
        return shim

    async def release(self, container_id: str) -> None:
        shim = self._shims.pop(container_id, None)
        if shim is not None:
            await shim.close()

    def read_exit(self, container_id: str, *, exit_path: Path | None = None) -> ExitStatus | None:
        """The recorded exit of a container whose shim is gone (None if it never exited)."""
        meta = self._meta(container_id)
        info = None
        for path in (exit_path, meta.exit_path, self.state_dir(container_id) / "exit"):
            if path is not None and (info := read_exit_file(Path(path))) is not None:
                break
        if info is None:
            return None
        return ExitStatus(
            exit_code=int(info["exit_code"]),
            started_at=info.get("started_at", ""),
            finished_at=info.get("finished_at", ""),
            oom_killed=self._oom_killed(meta.cgroups_path),
        )

    async def delete(self, container_id: str) -> None:
        """Stop a leftover shim (killing its container), destroy the cgroup, remove the state."""
        state = self.state_dir(container_id)
        meta = self._meta(container_id)
        await self.release(container_id)
        self._maybe_frozen.discard(container_id)
        shim = await self._connect(container_id)
        if shim is not None:
            await shim.shutdown()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shim.wait(), 10)
            await shim.close()
        self._kill_shim_pid(state)
        if meta.cgroups_path:
            await asyncio.to_thread(self.cgroups.destroy, meta.cgroups_path)
        self._metas.pop(container_id, None)
        await asyncio.to_thread(remove_tree, state, ignore_errors=True)

    @staticmethod
    def _kill_shim_pid(state: Path) -> None:
        """Last resort for a shim that does not answer: SIGKILL it if the pid is still ours."""
        try:
            pid = int((state / "shim.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return
        if os.path.basename(exe).startswith("servin-shim") and len(cmdline) > 1:
            if os.path.realpath(cmdline[1].decode(errors="replace")) == os.path.realpath(state):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal_mod.SIGKILL)

    # ---- the container's process --------------------------------------------------------

    def _shim(self, container_id: str) -> Shim:
        shim = self._shims.get(container_id)
        if shim is None:
            raise ContainerNotRunning(f"Container {container_id} is not running")
        return shim

    async def start(self, container_id: str) -> int:
        return await self._shim(container_id).start()

    async def signal(self, container_id: str, signum: int, *, thaw: bool = False) -> None:
        shim = self._shim(container_id)
        try:
            await shim.kill(signum)
        except SystemError_ as exc:  # the supervisor is exiting with its container
            log.debug("signal %d to %s: %s", signum, container_id[:12], exc.message)
        if (thaw or signum == signal_mod.SIGKILL) and container_id in self._maybe_frozen:
            with contextlib.suppress(OSError):  # gone meanwhile
                await asyncio.to_thread(self.cgroups.thaw, self._meta(container_id).cgroups_path)
            self._maybe_frozen.discard(container_id)

    async def wait(self, container_id: str) -> ExitStatus:
        shim = self._shims.get(container_id)
        if shim is not None:
            return await shim.wait()
        return self.read_exit(container_id) or ExitStatus(exit_code=255)

    async def exec(self, container_id: str, process: ProcessSpec) -> ExecSession:
        return await self._shim(container_id).exec(
            args=process.args, env=process.env, cwd=process.cwd, uid=process.uid, gid=process.gid,
            groups=process.groups, caps_privileged=process.privileged, terminal=process.terminal,
            open_stdin=process.open_stdin, console_size=process.console_size, stdout=process.stdout,
            stderr=process.stderr,
        )  # fmt: skip

    async def attach(self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool) -> AttachStream:
        reader, writer = await self._shim(container_id).attach(stdin=stdin, stdout=stdout, stderr=stderr)
        return AttachStream(reader=reader, writer=writer)

    async def resize(self, container_id: str, rows: int, cols: int, *, pid: int = 0) -> None:
        await self._shim(container_id).resize(pid, rows, cols)

    # ---- the container's cgroup ---------------------------------------------------------

    async def pause(self, container_id: str) -> None:
        self._maybe_frozen.add(container_id)
        await self._freezer(container_id, self.cgroups.freeze)

    async def resume(self, container_id: str) -> None:
        await self._freezer(container_id, self.cgroups.thaw)
        self._maybe_frozen.discard(container_id)

    async def _freezer(self, container_id: str, change: Callable[[str], None]) -> None:
        try:
            await asyncio.to_thread(change, self._meta(container_id).cgroups_path)
        except OSError:  # it exited meanwhile and its cgroup is gone
            raise ContainerNotRunning(f"Container {container_id} is not running") from None

    async def update(self, container_id: str, resources: OciResources) -> None:
        """New limits for the running container (its device rules stay as create set them)."""
        limits = replace(resources_from_oci({"resources": resources}), device_rules=None)
        await asyncio.to_thread(self.cgroups.update, self._meta(container_id).cgroups_path, limits)

    def stats(self, container_id: str) -> ResourceStats | None:
        try:
            return self.cgroups.stats(self._meta(container_id).cgroups_path)
        except OSError:
            return None

    async def pids(self, container_id: str) -> list[int]:
        return await asyncio.to_thread(self.cgroups.pids, self._meta(container_id).cgroups_path)

    async def top(self, container_id: str, ps_args: str) -> tuple[list[str], list[list[str]]]:
        pids = set(await self.pids(container_id))
        return await asyncio.to_thread(ps_table, ps_args or "-ef", pids)
