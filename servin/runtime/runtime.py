"""The runtime: OCI bundle -> plan -> cgroup -> servin-shim. What the core calls."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
from pathlib import Path

from servin.kernel.cgroups import CgroupManager
from servin.runtime.plan import host_cgroup_v1_hierarchies, plan_from_oci, resources_from_oci
from servin.runtime.seccomp import ProgramCache
from servin.runtime.shim import (
    ExitStatus,
    Shim,
    ShimError,
    open_shim_socket,
    read_exit_file,
    shim_binary,
    spawn_shim,
)

META = "meta.json"


class Runtime:
    def __init__(
        self,
        *,
        exec_root: Path,
        cgroups: CgroupManager,
        shim_binary: Path | None = None,
        init_binary: Path | None = None,
    ) -> None:
        self.exec_root = Path(exec_root)
        self.cgroups = cgroups
        self._binary = shim_binary
        self._init_binary = init_binary
        self.seccomp_programs = ProgramCache(self.exec_root / "seccomp")  # compiled once per profile

    def state_dir(self, container_id: str) -> Path:
        return self.exec_root / container_id

    def _oom_checker(self, cgroups_path: str | None):  # noqa: ANN202
        def check() -> bool:
            if not cgroups_path:
                return False
            try:
                return bool(self.cgroups.oom_killed(cgroups_path))
            except Exception:  # noqa: BLE001 - a best-effort flag: the cgroup may be gone already
                return False

        return check

    async def create(self, container_id: str, *, bundle: Path, log_path: Path | None, exit_path: Path) -> Shim:
        """Build the plan, create the cgroup, spawn the shim. The container is not started.
        log_path None (or the annotation io.servin.log.driver=none): no log is written."""
        bundle = Path(bundle)
        config = json.loads((bundle / "config.json").read_text())
        linux = config.get("linux") or {}
        cgroups_path = linux.get("cgroupsPath") or ""
        state = self.state_dir(container_id)
        if (state / "shim.sock").exists():
            live = await self.reconnect(container_id)
            if live is not None:
                await live.close()
                raise ShimError(f"a shim for {container_id} is already running")
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in ("exit", "shim.pid", "shim.sock"):
            with contextlib.suppress(FileNotFoundError):
                (state / stale).unlink()

        needs_cgroup_mounts = any(m.get("type") in ("cgroup", "cgroup2") for m in config.get("mounts") or [])
        v1 = host_cgroup_v1_hierarchies() if needs_cgroup_mounts and self.cgroups.version == 1 else None
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
            if plan.log:
                Path(plan.log).parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(spawn_shim, shim_binary(self._binary), state)
            reader, writer = await open_shim_socket(state / "shim.sock")
        except BaseException:
            if cgroups_path:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(self.cgroups.destroy, cgroups_path)
            raise
        writer.write(b"control\n")
        await writer.drain()
        return Shim(
            container_id=container_id,
            state_dir=state,
            exit_path=Path(exit_path),
            oom_killed=self._oom_checker(cgroups_path),
            reader=reader,
            writer=writer,
        )

    async def reconnect(self, container_id: str) -> Shim | None:
        """A new handle on a live shim (after a daemon restart); None if the shim is gone."""
        state = self.state_dir(container_id)
        try:
            reader, writer = await open_shim_socket(state / "shim.sock")
        except (FileNotFoundError, ConnectionRefusedError, OSError):
            return None
        meta: dict = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            meta = json.loads((state / META).read_text())
        writer.write(b"control\n")
        await writer.drain()
        shim = Shim(
            container_id=container_id,
            state_dir=state,
            exit_path=Path(meta["exit_path"]) if meta.get("exit_path") else None,
            oom_killed=self._oom_checker(meta.get("cgroups_path")),
            reader=reader,
            writer=writer,
        )
        try:
            st, pid, _ = await asyncio.wait_for(shim.state(), 5)
        except (ShimError, TimeoutError, ValueError):
            await shim.close()
            return None
        if st != "created":
            shim.pid = pid
        return shim

    def read_exit(self, container_id: str, *, exit_path: Path, cgroups_path: str) -> ExitStatus | None:
        """The recorded exit of a container whose shim is gone (None if it never exited)."""
        info = read_exit_file(Path(exit_path)) or read_exit_file(self.state_dir(container_id) / "exit")
        if info is None:
            return None
        return ExitStatus(
            exit_code=int(info["exit_code"]),
            started_at=info.get("started_at", ""),
            finished_at=info.get("finished_at", ""),
            oom_killed=self._oom_checker(cgroups_path)(),
        )

    async def delete(self, container_id: str, *, cgroups_path: str) -> None:
        """Stop a leftover shim (killing its container), destroy the cgroup, remove the state."""
        state = self.state_dir(container_id)
        shim = await self.reconnect(container_id)
        if shim is not None:
            await shim.shutdown()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shim.wait(), 10)
            await shim.close()
        self._kill_shim_pid(state)
        if cgroups_path:
            await asyncio.to_thread(self.cgroups.destroy, cgroups_path)
        await asyncio.to_thread(shutil.rmtree, state, True)

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
                    os.kill(pid, signal.SIGKILL)
