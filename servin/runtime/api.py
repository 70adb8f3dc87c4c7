"""The runtime's face to the core: runc's verbs, by container id.

The core names a container by its id and gets typed values back; it never holds a shim, a cgroup
manager, a cgroup path or a plan helper. The runtime owns the supervisor (servin-shim), the
container's cgroup (its path is `<cgroup parent>/<id>`, chosen by the runtime) and the translation
of the OCI spec into the shim's plan. `runtime/runtime.py` implements it for real;
`tests/support/fakes.py` implements it for the API tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from servin.kernel.cgroups import CgroupStats, Features

# What `stats` reads of a container's cgroup, and what the host's cgroups can limit. They are the
# kernel's own dataclasses, re-exported so the layers above name them through the runtime.
ResourceStats = CgroupStats
ResourceFeatures = Features

# An OCI `linux.resources` object, as `runc update --resources` reads it.
OciResources = Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitStatus:
    exit_code: int
    started_at: str = ""
    finished_at: str = ""
    oom_killed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSpec:
    """A process to run in a running container (`docker exec`, healthchecks)."""

    args: Sequence[str | bytes]
    env: Sequence[str | bytes] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: Sequence[int] = ()
    privileged: bool = False  # every capability of the bounding set instead of the container's
    terminal: bool = False
    open_stdin: bool = False
    console_size: tuple[int, int] | None = None  # (rows, cols)
    stdout: bool = True
    stderr: bool = True


class ProcessSession(Protocol):
    """A started exec. `reader` yields its output as Docker's stdcopy frames (stream 1 and 2; with a
    terminal everything is stream 1) and reaches EOF after the last one; `writer` is its stdin."""

    pid: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def wait(self) -> int: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachStream:
    """A connection to a container's stdio as the supervisor serves it: output as stdcopy frames
    (raw bytes with a terminal), input written to `writer`."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


class Runtime(Protocol):
    """Errors: errors.ExecFailed (StartFailed: the process could not start, with Docker's exit code
    and wording), errors.Conflict (ContainerNotRunning), errors.SystemError_ (the supervisor failed)."""

    @property
    def cgroup_version(self) -> int: ...

    @property
    def features(self) -> ResourceFeatures: ...

    def cgroups_path(self, container_id: str) -> str:
        """The cgroup the runtime puts the container in; the spec's linux.cgroupsPath."""
        ...

    async def create(self, container_id: str, *, bundle: Path, log_path: Path | None, exit_path: Path) -> None:
        """Make the cgroup, the plan and the supervisor from the bundle's config.json; nothing runs yet."""
        ...

    async def start(self, container_id: str) -> int:
        """Run the container's process; its host pid."""
        ...

    async def signal(self, container_id: str, signum: int, *, thaw: bool = False) -> None:
        """Send a signal to the container's init. A paused container is thawed after it for SIGKILL,
        and for any signal with `thaw` (docker stop's: a frozen process cannot act on it). A
        container on its way out is not an error."""
        ...

    async def pause(self, container_id: str) -> None:
        """Freeze the container's cgroup (errors.Conflict when it is gone)."""
        ...

    async def resume(self, container_id: str) -> None:
        """Thaw the container's cgroup (errors.Conflict when it is gone)."""
        ...

    async def update(self, container_id: str, resources: OciResources) -> None:
        """Apply new limits to the running container's cgroup (devices are left as they are)."""
        ...

    def stats(self, container_id: str) -> ResourceStats | None:
        """One reading of the container's cgroup; None when it is gone."""
        ...

    async def pids(self, container_id: str) -> list[int]: ...

    async def top(self, container_id: str, ps_args: str) -> tuple[list[str], list[list[str]]]:
        """`ps` with these arguments over the container's processes: titles and rows."""
        ...

    async def exec(self, container_id: str, process: ProcessSpec) -> ProcessSession: ...

    async def attach(self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool) -> AttachStream: ...

    async def resize(self, container_id: str, rows: int, cols: int, *, pid: int = 0) -> None:
        """The terminal size of the container's init (pid 0) or of one of its execs."""
        ...

    async def wait(self, container_id: str) -> ExitStatus:
        """Once the container's init exited (the supervisor's record, or 255 if it vanished)."""
        ...

    async def delete(self, container_id: str) -> None:
        """Stop a leftover supervisor (killing its container), remove the cgroup and the state."""
        ...

    async def reconnect(self, container_id: str) -> bool:
        """After a daemon restart: take up a live supervisor again (False: it is gone)."""
        ...

    def read_exit(self, container_id: str, *, exit_path: Path | None = None) -> ExitStatus | None:
        """The recorded exit of a container whose supervisor is gone (None: it never exited).
        `exit_path` is the file create was given: it outlives the runtime's state (a reboot)."""
        ...

    async def release(self, container_id: str) -> None:
        """Drop the daemon's connection to the supervisor; the container keeps running."""
        ...
