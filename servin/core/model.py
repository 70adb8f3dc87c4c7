"""Domain objects of the engine. No Docker JSON here: api/wire translates."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from servin.limits import CpuMemoryLimits
from servin.runtime.logfile import LogLine as LogLine  # one json-file entry, as the log reader makes it

from servin.network.portmap import PublishedPort


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
    healthcheck: HealthConfig | None = None
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    mac_address: str = ""  # Config.MacAddress: the primary network's interface


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointConfig:
    """A network the container is attached to while it runs (connect, run --network), as asked."""

    network: str  # the network's name
    aliases: tuple[str, ...] = ()  # as the user gave them (inspect adds the short ID on user networks)
    ipv4_address: str = ""  # --ip
    ipv6_address: str = ""  # --ip6
    mac_address: str = ""
    links: tuple[str, ...] = ()  # "container:alias" (legacy links: the alias resolves for this container)
    link_local_ips: tuple[str, ...] = ()  # echoed
    driver_opts: dict[str, str] = field(default_factory=dict)  # echoed; endpoint sysctls applied
    gw_priority: int = 0  # the default gateway's endpoint: the highest, then the network name sorting first


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    name: str = "no"
    maximum_retry_count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MountRequest:
    """One of -v / --mount / --tmpfs as the user wrote it, before volumes are resolved."""

    type: str  # bind | volume | tmpfs | image
    target: str
    source: str = ""  # host path (bind), volume name ("" = anonymous), image reference (image)
    read_only: bool = False
    propagation: str = ""
    nocopy: bool = False
    create_source: bool = False  # -v and BindOptions.CreateMountpoint create a missing host directory
    tmpfs_options: tuple[str, ...] = ()
    volume_labels: dict[str, str] = field(default_factory=dict)
    volume_options: dict[str, str] = field(default_factory=dict)
    mode: str = ""  # the -v option string, shown as Mounts[].Mode
    non_recursive: bool = False  # BindOptions.NonRecursive: the bind leaves the source's submounts out
    read_only_non_recursive: bool = False  # read-only, its submounts not (API < 1.44, or asked)
    read_only_force_recursive: bool = False  # recursively read-only, or the start fails
    subpath: str = ""  # of the volume (VolumeOptions.Subpath) or the image (ImageOptions.Subpath)
    spec: bool = False  # from HostConfig.Mounts (echoed there), not from Binds or Tmpfs
    tmpfs_size: int = 0  # TmpfsOptions as given, echoed in HostConfig.Mounts
    tmpfs_mode: int = 0
    tmpfs_extra: tuple[tuple[str, ...], ...] = ()  # TmpfsOptions.Options


@dataclass(frozen=True, slots=True, kw_only=True)
class MountPoint:
    """A resolved mount of a container, as `docker inspect` shows under Mounts."""

    type: str  # bind | volume | tmpfs | image
    destination: str
    source: str = ""
    name: str = ""
    driver: str = ""
    rw: bool = True
    mode: str = ""
    propagation: str = ""
    copy_content: bool = False  # copy the image's files into the volume while it is empty
    options: tuple[str, ...] = ()  # tmpfs options, or the mount options of a type/device volume
    fstype: str = ""  # for a volume that is a mount (type=...)
    device: str = ""  # its device=...
    anonymous: bool = False
    non_recursive: bool = False  # a bind without the source's submounts
    read_only_non_recursive: bool = False  # read-only, its submounts left as they are
    read_only_force_recursive: bool = False  # recursively read-only, or the start fails
    subpath: str = ""  # mounted: this subdirectory of the volume or the image (resolved inside it at start)
    image: str = ""  # an image mount: the image's id (in use while the container exists)
    layers: tuple[str, ...] = ()  # an image mount: its layer directories, topmost first


@dataclass(frozen=True, slots=True, kw_only=True)
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceMapping:
    """--device HOST[:CONTAINER[:rwm]] (Docker's DeviceMapping)."""

    path_on_host: str
    path_in_container: str
    cgroup_permissions: str = "rwm"


@dataclass(frozen=True, slots=True, kw_only=True)
class BlkioDevice:
    """A block device of a blkio setting, as Docker's WeightDevice and ThrottleDevice give it."""

    path: str
    value: int  # the weight (10..1000), or the rate in bytes or operations per second


@dataclass(frozen=True, slots=True, kw_only=True)
class HostConfig(CpuMemoryLimits):
    auto_remove: bool = False
    nano_cpus: int = 0
    pids_limit: int | None = None
    # the other resources (api/wire/resources.py reads them, core/resources.py checks them)
    memory_reservation: int = 0
    memory_swappiness: int | None = None  # None: the kernel's
    kernel_memory: int = 0  # never applied: discarded with dockerd's warnings
    cpu_percent: int = 0  # Windows only: discarded with dockerd's warning
    cpu_rt_period: int = 0
    cpu_rt_runtime: int = 0
    blkio_weight: int = 0
    blkio_weight_device: tuple[BlkioDevice, ...] = ()
    blkio_device_read_bps: tuple[BlkioDevice, ...] = ()
    blkio_device_write_bps: tuple[BlkioDevice, ...] = ()
    blkio_device_read_iops: tuple[BlkioDevice, ...] = ()
    blkio_device_write_iops: tuple[BlkioDevice, ...] = ()
    shm_size: int = 64 * 1024 * 1024
    network_mode: str = "default"
    port_bindings: tuple[PublishedPort, ...] = ()  # -p: HostConfig.PortBindings, one per host binding
    publish_all_ports: bool = False
    restart_policy: RestartPolicy = RestartPolicy()
    log_type: str = "json-file"
    log_config: dict[str, str] = field(default_factory=dict)
    binds: tuple[str, ...] = ()
    mounts: tuple[MountRequest, ...] = ()  # from Binds, Mounts and Tmpfs, in that order
    volumes_from: tuple[str, ...] = ()
    tmpfs: dict[str, str] = field(default_factory=dict)
    readonly_rootfs: bool = False
    ulimits: tuple[Ulimit, ...] = ()
    group_add: tuple[str, ...] = ()
    oom_kill_disable: bool = False
    init: bool | None = None
    pid_mode: str = ""  # "" (private) | host | container:<id>
    uts_mode: str = ""
    ipc_mode: str = ""  # "" / private | shareable | host | none | container:<id>
    cgroupns_mode: str = ""  # "" (the daemon's default) | private | host
    isolation: str = ""
    device_cgroup_rules: tuple[str, ...] = ()
    volume_driver: str = ""
    extra_hosts: tuple[str, ...] = ()  # "name:ip", ip may be "host-gateway"
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    links: tuple[str, ...] = ()  # legacy --link, "target:alias"
    # confinement (api/wire/security.py parses SecurityOpt into the fields after it)
    privileged: bool = False
    cap_add: tuple[str, ...] = ()  # as given (NET_ADMIN, cap_net_admin, ALL); checked at create
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()  # as given, shown by inspect
    no_new_privileges: bool | None = None  # None: the daemon's --no-new-privileges
    seccomp_profile: str = ""  # "" (the daemon's default), "unconfined", "builtin", or a profile's JSON
    apparmor_profile: str = ""  # "" or "unconfined" (no AppArmor on the host: a named one is refused)
    masked_paths: tuple[str, ...] | None = None  # None: Docker's defaults (none when privileged)
    readonly_paths: tuple[str, ...] | None = None
    devices: tuple[DeviceMapping, ...] = ()
    sysctls: dict[str, str] = field(default_factory=dict)
    oom_score_adj: int = 0
    userns_mode: str = ""  # "" | host (Servin has no user namespace remapping)
    console_size: tuple[int, int] = (0, 0)  # the pty's first (rows, cols) with Tty
    container_id_file: str = ""  # the client writes it (docker run --cidfile); kept for inspect
    annotations: dict[str, str] = field(default_factory=dict)  # HostConfig.Annotations: the OCI spec's too


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthConfig:
    """HEALTHCHECK / --health-*: durations in ns, 0 = Docker's default."""

    test: tuple[str, ...]  # ("CMD", ...), ("CMD-SHELL", "..."), ("NONE",)
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    start_interval_ns: int = 0  # the probe interval during the start period (0: the interval)
    retries: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthResult:
    start: str
    end: str
    exit_code: int
    output: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    status: str  # starting | healthy | unhealthy
    failing_streak: int = 0
    log: tuple[HealthResult, ...] = ()


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
    health: Health | None = None
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
    mount_points: tuple[MountPoint, ...] = ()
    resolved_entrypoint: tuple[str, ...] = ()  # after merging with the image: inspect's Config shows these
    resolved_cmd: tuple[str, ...] = ()
    healthcheck: HealthConfig | None = None  # the user's, else the image's; None or NONE: no checks
    networks: tuple[EndpointConfig, ...] = ()  # the main network first; eth0: endpoints.gateway_order
    # the OCI descriptor (with its platform) of the image's own manifest at create; None: not known (a
    # record from before they were kept, whose image has gone)
    image_manifest: Mapping[str, Any] | None = None

    def with_state(self, **changes: object) -> Container:
        return replace(self, state=replace(self.state, **changes))  # type: ignore[arg-type]

    @property
    def short_id(self) -> str:
        return self.id[:12]
