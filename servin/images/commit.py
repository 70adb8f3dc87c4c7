"""The run config of a ``docker commit`` image: a base config (the container's, unless the request
brings one), the ``--change`` lines applied, then filled in from the container's config as
dockerd's ``merge`` (daemon/commit.go) does. Configs are Docker's container.Config shape."""

from __future__ import annotations

import json
from typing import Any

from servin.images.changes import apply_changes


def _key(env: str) -> str:
    return env.split("=", 1)[0]


def merge(user: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """``user`` with what it leaves unset taken from ``container`` (a new dict)."""
    out = json.loads(json.dumps(user))
    if not out.get("User"):
        out["User"] = container.get("User") or ""
    ports = dict(out.get("ExposedPorts") or {})
    if not ports:
        if container.get("ExposedPorts"):
            out["ExposedPorts"] = dict(container["ExposedPorts"])
    else:
        for port, v in (container.get("ExposedPorts") or {}).items():
            ports.setdefault(port, v)
        out["ExposedPorts"] = ports
    env = list(out.get("Env") or [])
    if not env:
        out["Env"] = list(container.get("Env") or []) or out.get("Env")
    else:
        keys = {_key(e) for e in env}
        out["Env"] = env + [e for e in container.get("Env") or [] if _key(e) not in keys]
    labels = dict(out.get("Labels") or {})
    for k, v in (container.get("Labels") or {}).items():
        labels.setdefault(k, v)
    out["Labels"] = labels
    if not out.get("Entrypoint"):
        if not out.get("Cmd"):
            out["Cmd"] = container.get("Cmd")
        if out.get("Entrypoint") is None:
            out["Entrypoint"] = container.get("Entrypoint")
    if container.get("Healthcheck") and not out.get("Healthcheck"):
        out["Healthcheck"] = container["Healthcheck"]
    if not out.get("WorkingDir"):
        out["WorkingDir"] = container.get("WorkingDir") or ""
    volumes = dict(out.get("Volumes") or {})
    if not volumes:
        out["Volumes"] = container.get("Volumes")
    else:
        for v, x in (container.get("Volumes") or {}).items():
            volumes.setdefault(v, x)
        out["Volumes"] = volumes
    if not out.get("StopSignal") and container.get("StopSignal"):
        out["StopSignal"] = container["StopSignal"]
    return out


def commit_config(container: dict[str, Any], changes: list[str], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """dockerd's CreateImageFromContainer: ``base`` (default: the container's config) with the
    ``changes`` applied, merged with the container's config."""
    return merge(apply_changes(base if base is not None else container, changes), container)
