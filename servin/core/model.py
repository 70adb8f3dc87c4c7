"""Domain objects of the engine. No Docker JSON here: api/wire translates."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace


class Status(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerConfig:
    """What the user asked for (Docker's Config), None meaning "inherit from the image"."""

    image: str
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    hostname: str = ""
    domainname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    stop_signal: str = ""
    stop_timeout: int | None = None
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    name: str = "no"
    maximum_retry_count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class HostConfig:
    auto_remove: bool = False
    memory: int = 0
    memory_swap: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int | None = None
    shm_size: int = 64 * 1024 * 1024
    network_mode: str = "default"
    restart_policy: RestartPolicy = RestartPolicy()
    log_type: str = "json-file"
    log_config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    status: Status = Status.CREATED
    pid: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    started_at: str = "0001-01-01T00:00:00Z"
    finished_at: str = "0001-01-01T00:00:00Z"
    restart_count: int = 0
    manually_stopped: bool = False  # by stop/kill: restart policies (but `always` at daemon start) hold off

    @property
    def running(self) -> bool:
        return self.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)

    @property
    def alive(self) -> bool:
        """A process exists (running or paused); a restarting container has none."""
        return self.status in (Status.RUNNING, Status.PAUSED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    id: str
    name: str  # without the leading "/"
    created: str
    image_id: str
    config: ContainerConfig
    host_config: HostConfig
    state: State
    path: str  # the resolved executable (first of entrypoint+cmd)
    args: tuple[str, ...]
    resolved_env: tuple[str, ...]  # image env merged with the user's
    resolved_user: str
    resolved_workdir: str
    resolved_hostname: str

    def with_state(self, **changes: object) -> Container:
        return replace(self, state=replace(self.state, **changes))  # type: ignore[arg-type]

    @property
    def short_id(self) -> str:
        return self.id[:12]


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLine:
    stream: str  # "stdout" | "stderr"
    time: str  # RFC3339Nano as written
    data: bytes
