"""Image domain objects the store returns (no Docker JSON here; that is api/wire)."""

from __future__ import annotations

import copy
import platform
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def host_architecture() -> str:
    """The host architecture named the Go way (``amd64``, ``arm64``...)."""
    machine = platform.machine().lower()
    return _GOARCH.get(machine, machine)


_RFC3339_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})?$")


def parse_rfc3339(value: str) -> datetime | None:
    """Parse Go's RFC3339Nano (nanoseconds are truncated to microseconds)."""
    m = _RFC3339_RE.match(value or "")
    if not m:
        return None
    date, time_, frac, tz = m.groups()
    text = f"{date}T{time_}"
    if frac:
        text += "." + (frac + "000000")[:6]
    if not tz or tz in ("Z", "z"):
        text += "+00:00"
    else:
        text += tz
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def format_rfc3339_nano(dt: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped."""
    dt = dt.astimezone(timezone.utc)
    out = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        out += ("." + f"{dt.microsecond:06d}").rstrip("0")
    return out + "Z"


@dataclass(frozen=True, slots=True, kw_only=True)
class Image:
    """One image: its config as loaded plus what the store knows about it.

    ``config`` is the *whole* image config JSON (architecture, config, rootfs, history, ...), kept
    as parsed so the API layer can render fields the domain does not model. Treat it as read-only.
    """

    id: str  # "sha256:<hex>"
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    parent: str = ""
    comment: str = ""
    created: str = ""  # RFC3339Nano as in the config
    author: str = ""
    docker_version: str = ""
    container: str = ""
    architecture: str = ""
    variant: str = ""
    os: str = ""
    os_version: str = ""
    size: int = 0
    diff_ids: tuple[str, ...] = ()
    last_tag_time: str | None = None  # RFC3339Nano, None when never tagged locally
    config: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def run_config(self) -> dict[str, Any]:
        """The ``config`` section: defaults for containers (Cmd, Env, Entrypoint...)."""
        value = self.config.get("config")
        return value if isinstance(value, dict) else {}

    @property
    def container_config(self) -> dict[str, Any]:
        value = self.config.get("container_config")
        return value if isinstance(value, dict) else {}

    @property
    def labels(self) -> dict[str, str]:
        value = self.run_config.get("Labels")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def env(self) -> tuple[str, ...]:
        return tuple(self.run_config.get("Env") or ())

    @property
    def cmd(self) -> tuple[str, ...] | None:
        value = self.run_config.get("Cmd")
        return tuple(value) if value is not None else None

    @property
    def entrypoint(self) -> tuple[str, ...] | None:
        value = self.run_config.get("Entrypoint")
        return tuple(value) if value is not None else None

    @property
    def working_dir(self) -> str:
        return str(self.run_config.get("WorkingDir") or "")

    @property
    def user(self) -> str:
        return str(self.run_config.get("User") or "")

    @property
    def exposed_ports(self) -> tuple[str, ...]:
        return tuple((self.run_config.get("ExposedPorts") or {}).keys())

    @property
    def volumes(self) -> tuple[str, ...]:
        value = self.run_config.get("Volumes")
        return tuple(value) if isinstance(value, dict) else ()

    @property
    def stop_signal(self) -> str | None:
        return self.run_config.get("StopSignal") or None

    @property
    def healthcheck(self) -> dict[str, Any] | None:
        value = self.run_config.get("Healthcheck")
        return value if isinstance(value, dict) else None

    @property
    def created_unix(self) -> int:
        dt = parse_rfc3339(self.created)
        return int(dt.timestamp()) if dt else 0

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[-1][:12]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteItem:
    """One line of ``docker rmi`` output: exactly one of the two is set."""

    untagged: str | None = None
    deleted: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobRef:
    """Distribution metadata: a compressed blob in a registry repository that holds a layer."""

    repository: str  # fully qualified, e.g. "docker.io/library/busybox"
    digest: str  # of the compressed blob
    media_type: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryItem:
    """One step of ``docker history``, newest first; ``id`` is "<missing>" past the local parents."""

    id: str
    created: int  # unix seconds
    created_by: str
    tags: tuple[str, ...] | None
    size: int
    comment: str


GO_ZERO_TIME_UNIX = -62135596800  # time.Time{}.Unix()


# ContainerConfig / ImageConfig fields in the order dockerd emits them.
_CONFIG_FIELDS: tuple[tuple[str, Any], ...] = (
    ("Hostname", ""),
    ("Domainname", ""),
    ("User", ""),
    ("AttachStdin", False),
    ("AttachStdout", False),
    ("AttachStderr", False),
    ("ExposedPorts", None),
    ("Tty", False),
    ("OpenStdin", False),
    ("StdinOnce", False),
    ("Env", None),
    ("Cmd", None),
    ("Healthcheck", None),
    ("ArgsEscaped", None),
    ("Image", ""),
    ("Volumes", None),
    ("WorkingDir", ""),
    ("Entrypoint", None),
    ("NetworkDisabled", None),
    ("MacAddress", None),
    ("OnBuild", None),
    ("Labels", None),
    ("StopSignal", None),
    ("StopTimeout", None),
    ("Shell", None),
)
# Fields dockerd omits when empty (``omitempty`` in container.Config).
_OMIT_EMPTY = {
    "ExposedPorts",
    "Healthcheck",
    "ArgsEscaped",
    "NetworkDisabled",
    "MacAddress",
    "StopSignal",
    "StopTimeout",
    "Shell",
}


def go_container_config(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """An image's container config in Docker's field order; unknown extra keys are kept."""
    src = copy.deepcopy(cfg) if isinstance(cfg, dict) else {}
    out: dict[str, Any] = {}
    for key, default in _CONFIG_FIELDS:
        value = src.pop(key, default)
        if key in _OMIT_EMPTY and value in (None, "", [], {}, False, 0):
            continue
        out[key] = value
    out.update(src)
    return out
