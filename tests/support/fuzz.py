"""The swagger fuzz run (tests/e2e/test_fuzz.py, `make fuzz`): Docker's v1.41 swagger loaded with
schemathesis, the operations a private daemon can take without touching the network or the host, and
request bodies steered away from host bind mounts and privileged options.

The swagger loads as it is (/work/shared/reference/docker-api-v1.41.yaml, read-only); what this module
changes is in a copy in memory: the operations below are left out, and bodies go through `steer`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import schemathesis
import yaml

# ../shared/reference beside the checkout (/work/main), or $SERVIN_SWAGGER
SWAGGER = Path(os.environ.get("SERVIN_SWAGGER", "/work/shared/reference/docker-api-v1.41.yaml"))

# Operations that reach out of the host or never end on their own: pulls, pushes, searches and logins
# go to registries on the network; a build fetches `remote` URLs and runs containers; /events streams
# until `until`.
OFF_HOST = {
    "POST /images/create", "POST /images/{name}/push", "GET /images/search", "POST /auth",
    "GET /distribution/{name}/json", "POST /build", "GET /events", "POST /plugins/pull",
    "POST /plugins/{name}/upgrade", "POST /plugins/{name}/push", "POST /swarm/join",
}
# Servin has no swarm, plugins or sessions: every such path is a 404 from the router. The long run
# sends them anyway; the short one spends its time elsewhere.
NOT_SERVED = re.compile(r"^\w+ /(plugins|nodes|swarm|services|tasks|secrets|configs|session)\b")

# HostConfig keys that reach the host: bind mounts, devices, privileges, the host's namespaces, the
# cgroup tree outside the daemon's parent, sysctls, published ports, log drivers writing elsewhere.
HOST_REACHING = (
    "Binds", "Mounts", "Devices", "DeviceRequests", "DeviceCgroupRules", "Privileged", "CapAdd", "SecurityOpt",
    "PidMode", "IpcMode", "NetworkMode", "UTSMode", "UsernsMode", "CgroupnsMode", "Cgroup", "CgroupParent",
    "Sysctls", "VolumesFrom", "VolumeDriver", "Runtime", "PortBindings", "PublishAllPorts", "LogConfig",
    "MaskedPaths", "ReadonlyPaths", "Links",
)
# Refusals dockerd 20.10 (API 1.41) answers with a 500 and Servin mirrors (tests/api/test_resources.py
# test_create_refusals_dockerd_answers_with_500): input-caused, but Docker's answer.
# the layer driver's refusals of StorageOpt: errdefs.System in moby, a 500 there too
DOCKERD_500 = re.compile(r"--storage-opt is supported only|Unknown option ")
SWARM_503 = re.compile(r"This node is not (a swarm manager|part of a swarm)")


def is_finding(status: int, text: str) -> bool:
    """A 5xx caused by input: not a 501 (a feature Servin refuses by name: swarm, IPv6, sessions), not
    dockerd's 503 for swarm paths outside a swarm, not one of dockerd's own 500 refusals."""
    if status < 500 or status == 501:
        return False
    return not (status == 503 and SWARM_503.search(text)) and not DOCKERD_500.search(text)


NETWORK_KEYS = ("Name", "CheckDuplicate", "Driver", "Internal", "Attachable", "Labels")


# Objects made before the run, which generated path parameters are pointed at half the time, so that
# requests get past the lookup (an id the fuzzer makes up is a 404): a created container (its command
# exits at once), a tag of busybox, a network from the test pool, a volume.
EXISTING = {"/containers/": "fuzz-ctr", "/images/": "fuzz-img", "/networks/": "fuzz-net", "/volumes/": "fuzz-vol"}


# On an existing container these wait for something that never comes (its next exit, its output,
# its next stats), so they keep the made-up ids.
BLOCKING = {"POST /containers/{id}/attach", "GET /containers/{id}/attach/ws", "POST /containers/{id}/wait",
            "GET /containers/{id}/stats"}


def point_at_existing(label: str, path: str, params: dict[str, Any] | None) -> None:
    if not params or label in BLOCKING:
        return
    for prefix, name in EXISTING.items():
        if path.startswith(prefix):
            for key in ("id", "name"):
                if key in params:
                    params[key] = name


def load_schema() -> dict[str, Any]:
    """The swagger, with a serializer for its tar bodies (image load, archive upload, build): the bytes
    schemathesis generates for application/octet-stream."""
    schemathesis.serializer.alias("application/x-tar", "application/octet-stream")
    return yaml.safe_load(SWAGGER.read_text())


def selected(label: str, *, everything: bool) -> bool:
    return label not in OFF_HOST and (everything or not NOT_SERVED.match(label))


def steer(label: str, body: Any) -> Any:
    """A generated body with what reaches the host taken out: HostConfig's host keys, a volume's
    driver options (the local driver's o=bind), a network's IPAM and driver options (subnets and
    bridge names come from the daemon's test pool)."""
    if not isinstance(body, dict):
        return body
    if label == "POST /containers/create":
        host = body.get("HostConfig")
        if isinstance(host, dict):
            for key in HOST_REACHING:
                host.pop(key, None)
        body.pop("Volumes", None)
    elif label == "POST /containers/{id}/update":
        for key in HOST_REACHING:
            body.pop(key, None)
    elif label == "POST /volumes/create":
        body.pop("DriverOpts", None)
    elif label == "POST /networks/create":
        for key in list(body):
            if key not in NETWORK_KEYS:
                body.pop(key)
    return body


# Top-level directories a daemon must not add to. /tmp is shared with concurrent test runs, so there only
# an entry named by the fuzzer's own inputs counts (a path that escaped the daemon's roots).
WATCHED = ("/", "/etc", "/var/lib", "/var/tmp", "/run", "/usr", "/tmp")


@dataclass(frozen=True)
class HostTree:
    entries: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def read(cls) -> HostTree:
        out = set()
        for top in WATCHED:
            try:
                out.update(os.path.join(top, name) for name in os.listdir(top))
            except OSError:
                continue
        return cls(frozenset(out))

    def added_since(self, before: HostTree, sent: set[str]) -> list[str]:
        """New entries; in /tmp only those whose names the fuzzer sent."""
        return sorted(p for p in self.entries - before.entries
                      if not p.startswith("/tmp/") or os.path.basename(p) in sent)


def names_in(value: Any, out: set[str]) -> None:
    """Every string in a generated value, and its last path component, into `out`."""
    if isinstance(value, str):
        out.add(value)
        out.add(os.path.basename(value.rstrip("/")))
    elif isinstance(value, bytes):
        names_in(value.decode(errors="replace"), out)
    elif isinstance(value, dict):
        for k, v in value.items():
            names_in(k, out)
            names_in(v, out)
    elif isinstance(value, list | tuple):
        for v in value:
            names_in(v, out)
