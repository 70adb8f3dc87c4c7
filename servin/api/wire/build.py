"""POST /build on the wire: the query (every v1.41 parameter) → build/options.BuildOptions, each
honoured or refused by name as dockerd does; the build's messages → dockerd's JSON lines."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from multidict import MultiMapping

from servin import errors
from servin.api.wire import progress as wire_progress
from servin.build.options import BuildOptions, StepHost
from servin.build.steps import BuildMessage, ImageBuilt, StreamText
from servin.images import reference as refs
from servin.images.model import host_architecture
from servin.registry import auth as auth_mod

BUILDKIT_REFUSAL = ("Servin has the classic builder only (no BuildKit): build with DOCKER_BUILDKIT=0 "
                    "(DOCKER_BUILDKIT=0 docker build ...)")


def _bool(q: MultiMapping[str], name: str) -> bool:
    return q.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _int(q: MultiMapping[str], name: str) -> int:
    raw = q.get(name, "")
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise errors.InvalidArgument(f"invalid value for {name}: {raw!r}") from None


def _json(q: MultiMapping[str], name: str, what: str) -> Any:
    raw = q.get(name, "")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.InvalidArgument(f"error reading {what}: {exc}") from None


def _build_args(q: MultiMapping[str]) -> dict[str, str | None]:
    data = _json(q, "buildargs", "build args") or {}
    if not isinstance(data, dict) or not all(v is None or isinstance(v, str) for v in data.values()):
        raise errors.InvalidArgument("error reading build args: not a map of strings")
    return {str(k): v for k, v in data.items()}


def _labels(q: MultiMapping[str]) -> dict[str, str]:
    data = _json(q, "labels", "labels") or {}
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise errors.InvalidArgument("error reading labels: not a map of strings")
    return {str(k): v for k, v in data.items()}


def _cache_from(q: MultiMapping[str]) -> tuple[str, ...]:
    data = _json(q, "cachefrom", "cache from") or []
    if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
        raise errors.InvalidArgument("error reading cache from: not a list of strings")
    return tuple(data)


def _tags(q: MultiMapping[str]) -> tuple[str, ...]:
    tags = []
    for t in q.getall("t", []):
        if not t:
            continue
        try:
            ref = refs.parse_normalized(t)
        except errors.InvalidArgument:
            raise errors.InvalidArgument(f"invalid reference format: repository name ({t}) must be lowercase"
                                         if t != t.lower() else "invalid reference format") from None
        if ref.digest is not None:
            raise errors.InvalidArgument("refusing to create a tag with a digest reference")
        tags.append(t)
    return tuple(tags)


def _platform(value: str) -> str:
    """The host's platform only: Servin builds no foreign images."""
    if not value:
        return ""
    os_, _, rest = value.lower().partition("/")
    arch = rest.partition("/")[0]
    if os_ != "linux" or (arch and arch != host_architecture()):
        raise errors.InvalidArgument(f"platform {value} is not supported: Servin builds for linux/"
                                     f"{host_architecture()} only")
    return value


def registry_config(header: str | None) -> dict[str, auth_mod.AuthConfig]:
    """X-Registry-Config: base64url JSON of AuthConfigs by registry (undecodable: none, as dockerd)."""
    if not header:
        return {}
    raw = header.strip() + "=" * (-len(header.strip()) % 4)
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            data = json.loads(decode(raw))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            continue
        if isinstance(data, dict):
            return {str(k): auth_mod.from_dict(v) for k, v in data.items() if isinstance(v, dict)}
    return {}


# Parameters dockerd takes that have no meaning for Servin's classic builder: refused by name.
_REFUSED = {
    "securityopt": "The daemon on this platform does not support setting security options on build",
    "cgroupparent": "cgroupparent is not supported for builds by Servin",
    "ulimits": "ulimits are not supported for builds by Servin",
    "outputs": "outputs require BuildKit: " + BUILDKIT_REFUSAL,
    "session": "sessions require BuildKit: " + BUILDKIT_REFUSAL,
}


def parse_options(q: MultiMapping[str], *, registry_header: str | None, experimental: bool = False) -> BuildOptions:
    """The query of POST /build (API 1.41), as dockerd's newImageBuildOptions."""
    if q.get("version", "") == "2":
        raise errors.InvalidArgument(BUILDKIT_REFUSAL)
    if q.get("version", "") not in ("", "1"):
        raise errors.InvalidArgument(f"invalid version: {q.get('version')}")
    for name, message in _REFUSED.items():
        if q.get(name):
            raise errors.InvalidArgument(message)
    if _bool(q, "squash") and not experimental:
        raise errors.InvalidArgument("squash is only supported with experimental mode")
    isolation = q.get("isolation", "")
    if isolation not in ("", "default"):
        raise errors.InvalidArgument(f'unsupported isolation: "{isolation}"')
    force_remove = _bool(q, "forcerm")
    remove = True if force_remove or q.get("rm", "") == "" else _bool(q, "rm")
    shm = _int(q, "shmsize")
    if shm < 0:
        raise errors.InvalidArgument("shmsize: SHM size can not be less than 0")
    extra_hosts = tuple(h for raw in q.getall("extrahosts", []) for h in raw.split(",") if h)
    host = StepHost(memory=_int(q, "memory"), memory_swap=_int(q, "memswap"), cpu_shares=_int(q, "cpushares"),
                    cpu_period=_int(q, "cpuperiod"), cpu_quota=_int(q, "cpuquota"),
                    cpuset_cpus=q.get("cpusetcpus", ""), cpuset_mems=q.get("cpusetmems", ""), shm_size=shm,
                    network_mode=q.get("networkmode", ""), extra_hosts=extra_hosts)
    return BuildOptions(
        dockerfile=q.get("dockerfile", ""), remote=q.get("remote", ""), tags=_tags(q), quiet=_bool(q, "q"),
        no_cache=_bool(q, "nocache"),
        cache_from=_cache_from(q), pull=_bool(q, "pull"), remove=remove, force_remove=force_remove,
        build_args=_build_args(q), labels=_labels(q), target=q.get("target", ""), squash=_bool(q, "squash"),
        platform=_platform(q.get("platform", "")), host=host, registry_auth=registry_config(registry_header))


def render(msg: BuildMessage) -> dict[str, Any]:
    """One message as dockerd's JSON line."""
    if isinstance(msg, StreamText):
        return {"stream": msg.text}
    if isinstance(msg, ImageBuilt):
        return {"id": msg.id, "aux": {"ID": msg.image_id}} if msg.id else {"aux": {"ID": msg.image_id}}
    return wire_progress.render(msg)


def error(message: str, code: int | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"code": code, "message": message} if code is not None else {"message": message}
    return {"errorDetail": detail, "error": message}


def quiet_result(image_id: str) -> Mapping[str, str]:
    return {"stream": image_id + "\n"}
