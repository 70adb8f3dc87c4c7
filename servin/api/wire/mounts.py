"""-v binds, --mount objects and --tmpfs entries (Docker JSON) → MountRequest."""

from __future__ import annotations

from typing import Any

from servin import errors
from servin.core.model import MountRequest
from servin.images.union import container_path

PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}


def _check_target(target: str, spec: str, kind: str) -> str:
    """dockerd's checks of a -v destination (volume/mounts/linux_parser.go), its wording; cleaned."""
    try:
        return check_destination(target)
    except errors.InvalidArgument as e:
        raise errors.InvalidArgument(
            f"invalid volume specification: '{spec}': invalid mount config for type \"{kind}\": {e}") from None


def check_destination(target: str) -> str:
    """linuxValidateNotRoot then linuxValidateAbsolute; the path cleaned as dockerd's
    ``path.Clean`` (never ``..`` out of the container's root)."""
    if target.startswith("/") and container_path(target) == "/":
        raise errors.InvalidArgument("invalid specification: destination can't be '/'")
    if not target.startswith("/"):
        raise errors.InvalidArgument(f"invalid mount path: '{target}' mount path must be absolute")
    return container_path(target)


def parse_bind(spec: str) -> MountRequest:
    """`src:dst[:opts]` or `dst` (an anonymous volume)."""
    parts = spec.split(":")
    if len(parts) == 1:
        return MountRequest(type="volume", target=_check_target(parts[0], spec, "volume"))
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise errors.InvalidArgument(f"invalid volume specification: '{spec}'")
    src, dst = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    read_only, propagation, nocopy = False, "", False
    for opt in filter(None, mode.split(",")):
        if opt in ("ro", "rw"):
            read_only = opt == "ro"
        elif opt in PROPAGATIONS:
            propagation = opt
        elif opt == "nocopy":
            nocopy = True
        elif opt in ("z", "Z", "consistent", "cached", "delegated"):
            continue
        else:
            raise errors.InvalidArgument(f"invalid mode: {opt}")
    target = _check_target(dst, spec, "bind" if src.startswith("/") else "volume")
    if src.startswith("/"):
        return MountRequest(type="bind", source=src, target=target, read_only=read_only,
                            propagation=propagation or "rprivate", create_source=True, mode=mode)
    return MountRequest(type="volume", source=src, target=target, read_only=read_only, nocopy=nocopy, mode=mode)


def parse_mount(m: Any) -> MountRequest:
    if not isinstance(m, dict):
        raise errors.InvalidArgument("invalid mount config: must be an object")
    kind = m.get("Type") or ""
    target = m.get("Target") or ""
    if not target:
        raise errors.InvalidArgument(f'invalid mount config for type "{kind}": field Target must not be empty')
    try:
        target = check_destination(target)
    except errors.InvalidArgument as e:
        raise errors.InvalidArgument(f'invalid mount config for type "{kind}": {e}') from None
    source = m.get("Source") or ""
    read_only = bool(m.get("ReadOnly"))
    if kind == "bind":
        if not source:
            raise errors.InvalidArgument('invalid mount config for type "bind": field Source must not be empty')
        if not source.startswith("/"):
            raise errors.InvalidArgument(
                f"invalid mount config for type \"bind\": invalid mount path: '{source}' mount path must be absolute")
        opts = m.get("BindOptions") or {}
        return MountRequest(type="bind", source=source, target=target, read_only=read_only,
                            propagation=opts.get("Propagation") or "rprivate")
    if kind == "volume":
        opts = m.get("VolumeOptions") or {}
        driver_cfg = opts.get("DriverConfig") or {}
        return MountRequest(type="volume", source=source, target=target, read_only=read_only,
                            nocopy=bool(opts.get("NoCopy")), volume_labels=dict(opts.get("Labels") or {}),
                            volume_options=dict(driver_cfg.get("Options") or {}))
    if kind == "tmpfs":
        if source:
            raise errors.InvalidArgument('invalid mount config for type "tmpfs": field Source must not be specified')
        opts = m.get("TmpfsOptions") or {}
        tmpfs: list[str] = []
        if opts.get("SizeBytes"):
            tmpfs.append(f"size={int(opts['SizeBytes'])}")
        if opts.get("Mode"):
            tmpfs.append(f"mode={int(opts['Mode']):o}")
        if read_only:
            tmpfs.append("ro")
        return MountRequest(type="tmpfs", target=target, read_only=read_only, tmpfs_options=tuple(tmpfs))
    raise errors.InvalidArgument(f"mount type unknown: {kind!r}" if kind else "invalid mount config: missing Type")


def parse_tmpfs(target: str, options: str) -> MountRequest:
    return MountRequest(type="tmpfs", target=check_destination(target),  # dockerd's words, unprefixed
                        tmpfs_options=tuple(o for o in options.split(",") if o))


def parse_all(hc: dict[str, Any]) -> tuple[MountRequest, ...]:
    out = [parse_bind(b) for b in hc.get("Binds") or []]
    out += [parse_mount(m) for m in hc.get("Mounts") or []]
    tmpfs = hc.get("Tmpfs") or {}
    if not isinstance(tmpfs, dict):
        raise errors.InvalidArgument("invalid Tmpfs: must be a map")
    out += [parse_tmpfs(t, o or "") for t, o in tmpfs.items()]
    seen: set[str] = set()
    for m in out:
        if m.target in seen:
            raise errors.InvalidArgument(f"Duplicate mount point: {m.target}")
        seen.add(m.target)
    return tuple(out)
