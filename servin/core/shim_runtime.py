"""# transition: today's Runtime (shims and a cgroup manager) behind the Runtime protocol of
runtime/api.py, until the runtime implements the verbs itself. Deleted when it does."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal as signal_mod
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from servin import errors
from servin.runtime.api import AttachStream, ExitStatus, OciResources, ProcessSpec, ResourceFeatures, ResourceStats


class ShimRuntime:
    def __init__(self, runtime: Any, *, cgroups: Any, cgroup_parent: str, cgroup_version: int,
                 features: ResourceFeatures | None = None) -> None:
        self.runtime = runtime
        self.cgroups = cgroups
        self.cgroup_parent = "/" + cgroup_parent.strip("/")
        self._version = cgroup_version
        self._features = features
        self._shims: dict[str, Any] = {}
        self._exit_paths: dict[str, Path] = {}
        self._frozen: set[str] = set()

    @property
    def cgroup_version(self) -> int:
        return self._version

    @property
    def features(self) -> ResourceFeatures:
        return self._features or self.cgroups.features

    def cgroups_path(self, container_id: str) -> str:
        return f"{self.cgroup_parent}/{container_id}"

    def _shim(self, cid: str) -> Any:
        shim = self._shims.get(cid)
        if shim is None:
            raise errors.Conflict(f"Container {cid} is not running")
        return shim

    async def create(self, container_id: str, *, bundle: Path, log_path: Path | None, exit_path: Path) -> None:
        self._exit_paths[container_id] = exit_path
        self._shims[container_id] = await self.runtime.create(container_id, bundle=bundle, log_path=log_path,
                                                              exit_path=exit_path)
        self._frozen.discard(container_id)

    async def start(self, container_id: str) -> int:
        return int(await self._shim(container_id).start())

    async def signal(self, container_id: str, signum: int, *, thaw: bool = False) -> None:
        try:
            await self._shim(container_id).kill(signum)
        except errors.SystemError_:  # the supervisor is exiting with its container
            pass
        if (thaw or signum == signal_mod.SIGKILL) and container_id in self._frozen:
            await asyncio.to_thread(self.cgroups.thaw, self.cgroups_path(container_id))
            self._frozen.discard(container_id)

    async def pause(self, container_id: str) -> None:
        await self._freezer(container_id, self.cgroups.freeze)
        self._frozen.add(container_id)

    async def resume(self, container_id: str) -> None:
        await self._freezer(container_id, self.cgroups.thaw)
        self._frozen.discard(container_id)

    async def _freezer(self, container_id: str, change: Callable[[str], None]) -> None:
        try:
            await asyncio.to_thread(change, self.cgroups_path(container_id))
        except OSError:  # it exited meanwhile and its cgroup is gone
            raise errors.Conflict(f"Container {container_id} is not running") from None

    async def update(self, container_id: str, resources: OciResources) -> None:
        from servin.runtime.plan import resources_from_oci  # transition: the runtime's own helper

        limits = replace(resources_from_oci({"resources": resources}), device_rules=None)
        await asyncio.to_thread(self.cgroups.update, self.cgroups_path(container_id), limits)

    def stats(self, container_id: str) -> ResourceStats | None:
        try:
            return self.cgroups.stats(self.cgroups_path(container_id))  # type: ignore[no-any-return]
        except OSError:
            return None

    async def pids(self, container_id: str) -> list[int]:
        return list(await asyncio.to_thread(self.cgroups.pids, self.cgroups_path(container_id)))

    async def top(self, container_id: str, ps_args: str) -> tuple[list[str], list[list[str]]]:
        pids = set(await self.pids(container_id))
        return await asyncio.to_thread(ps_table, ps_args or "-ef", pids)

    async def exec(self, container_id: str, process: ProcessSpec) -> Any:
        return await self._shim(container_id).exec(
            args=process.args, env=process.env, cwd=process.cwd, uid=process.uid, gid=process.gid,
            groups=process.groups, caps_privileged=process.privileged, terminal=process.terminal,
            open_stdin=process.open_stdin, console_size=process.console_size, stdout=process.stdout,
            stderr=process.stderr)

    async def attach(self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool) -> AttachStream:
        reader, writer = await self._shim(container_id).attach(stdin=stdin, stdout=stdout, stderr=stderr)
        return AttachStream(reader=reader, writer=writer)

    async def resize(self, container_id: str, rows: int, cols: int, *, pid: int = 0) -> None:
        await self._shim(container_id).resize(pid, rows, cols)

    async def wait(self, container_id: str) -> ExitStatus:
        shim = self._shims.get(container_id)
        if shim is None:
            return self.read_exit(container_id) or ExitStatus(exit_code=255)
        st = await shim.wait()
        return ExitStatus(exit_code=st.exit_code, started_at=st.started_at, finished_at=st.finished_at,
                          oom_killed=st.oom_killed)

    async def delete(self, container_id: str) -> None:
        await self.release(container_id)
        self._frozen.discard(container_id)
        await self.runtime.delete(container_id, cgroups_path=self.cgroups_path(container_id))

    async def reconnect(self, container_id: str) -> bool:
        shim = await self.runtime.reconnect(container_id)
        if shim is None:
            return False
        self._shims[container_id] = shim
        self._frozen.add(container_id)  # it may have been paused before the restart
        return True

    def read_exit(self, container_id: str, *, exit_path: Path | None = None) -> ExitStatus | None:
        path = exit_path or self._exit_paths.get(container_id)
        if path is None:
            return None
        st = self.runtime.read_exit(container_id, exit_path=path, cgroups_path=self.cgroups_path(container_id))
        if st is None:
            return None
        return ExitStatus(exit_code=st.exit_code, started_at=st.started_at, finished_at=st.finished_at,
                          oom_killed=st.oom_killed)

    async def release(self, container_id: str) -> None:
        shim = self._shims.pop(container_id, None)
        if shim is not None:
            with contextlib.suppress(Exception):
                await shim.close()


def ps_table(ps_args: str, pids: set[int]) -> tuple[list[str], list[list[str]]]:
    """Run the host's ps like dockerd does and keep the rows of the container's processes."""
    args = shlex.split(ps_args)
    res = subprocess.run(["ps", *args], capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise errors.SystemError_(f"Error running ps: {res.stderr.strip() or res.returncode}")
    lines = res.stdout.splitlines()
    if not lines:
        return [], []
    titles = lines[0].split()
    if "PID" not in titles:
        raise errors.SystemError_("Couldn't find PID field in ps output")
    pid_index = titles.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > pid_index and fields[pid_index].isdigit() and int(fields[pid_index]) in pids:
            rows.append(fields)
    return titles, rows
