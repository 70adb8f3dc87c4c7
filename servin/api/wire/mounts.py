"""-v binds, --mount objects and --tmpfs entries (Docker JSON) → MountRequest."""

from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Any

from servin import errors
from servin.api.wire.compat import BINDS_READ_ONLY_NON_RECURSIVE
from servin.core.model import MountRequest
from servin.images.union import container_path

PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}
TMPFS_OPTIONS = {"exec", "noexec"}  # what dockerd lets through TmpfsOptions.Options


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
            raise errors.InvalidArgument(f"invalid mode: {mode}")  # dockerd names the whole mode (rro too)
    target = _check_target(dst, spec, "bind" if src.startswith("/") else "volume")
    if src.startswith("/"):
        return MountRequest(type="bind", source=src, target=target, read_only=read_only,
                            propagation=propagation or "rprivate", create_source=True, mode=mode)
    return MountRequest(type="volume", source=src, target=target, read_only=read_only, nocopy=nocopy, mode=mode)


def _config_error(kind: str, message: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(f'invalid mount config for type "{kind}": {message}')


def check_options_match(mounts: list[Any]) -> None:
    """dockerd's router (API >= 1.42; older bodies lost such blocks in versions.py): an options block
    of another mount type is refused."""
    for m in mounts:
        if not isinstance(m, dict):
            continue
        kind = m.get("Type") or ""
        for block, owner in (("VolumeOptions", "volume"), ("BindOptions", "bind"), ("TmpfsOptions", "tmpfs")):
            if m.get(block) is not None and kind != owner:
                raise errors.InvalidArgument(f'{block} must not be specified on mount type "{kind}"')


def is_local(path: str) -> bool:
    """Go's filepath.IsLocal: relative, not empty, never above its base."""
    clean = posixpath.normpath(path) if path else ""
    return bool(path) and not path.startswith("/") and clean != ".." and not clean.startswith("../")


def _tmpfs_extra(raw: Any) -> tuple[tuple[str, ...], ...]:
    """TmpfsOptions.Options: the flags dockerd lets through (validateTmpfsOptions)."""
    out = []
    for opt in raw or ():
        if not 1 <= len(opt) <= 2:
            raise _config_error("tmpfs", "invalid option array length")
        if opt[0] not in TMPFS_OPTIONS:
            raise _config_error("tmpfs", f"invalid option: {opt[0]}")
        out.append(tuple(str(o) for o in opt))
    return tuple(out)


def _size(n: int) -> str:
    """dockerd's ConvertTmpfsOptions: the largest of g, m, k that divides the size."""
    for suffix, unit in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


def _check_read_only_options(read_only: bool, opts: dict[str, Any]) -> None:
    """dockerd's setupMounts (at start there, at create here): the recursive read-only options need
    ReadOnly, and one of them."""
    non, force = opts.get("ReadOnlyNonRecursive"), opts.get("ReadOnlyForceRecursive")
    for given, name in ((non, "ReadOnlyNonRecursive"), (force, "ReadOnlyForceRecursive")):
        if given and not read_only:
            raise errors.InvalidArgument(f"mount options conflict: !ReadOnly && BindOptions.{name}")
    if non and force:
        raise errors.InvalidArgument(
            "mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive")


def parse_mount(m: Any) -> MountRequest:
    if not isinstance(m, dict):
        raise errors.InvalidArgument("invalid mount config: must be an object")
    kind = m.get("Type") or ""
    if m.get("ImageOptions") is not None and kind != "image":
        raise _config_error(kind, "field ImageOptions must not be specified")
    target = m.get("Target") or ""
    if not target:
        raise _config_error(kind, "field Target must not be empty")
    try:
        target = check_destination(target)
    except errors.InvalidArgument as e:
        raise _config_error(kind, str(e)) from None
    source = m.get("Source") or ""
    read_only = bool(m.get("ReadOnly"))
    if kind == "bind":
        if not source:
            raise _config_error("bind", "field Source must not be empty")
        if not source.startswith("/"):
            raise _config_error("bind", f"invalid mount path: '{source}' mount path must be absolute")
        opts = m.get("BindOptions") or {}
        propagation = opts.get("Propagation") or ""
        if propagation and propagation not in PROPAGATIONS:
            raise _config_error("bind", f"invalid propagation mode: {propagation}")
        _check_read_only_options(read_only, opts)
        return MountRequest(type="bind", source=posixpath.normpath(source), target=target, read_only=read_only,
                            propagation=propagation, spec=True,
                            create_source=bool(opts.get("CreateMountpoint")),
                            non_recursive=bool(opts.get("NonRecursive")),
                            read_only_non_recursive=bool(opts.get("ReadOnlyNonRecursive")),
                            read_only_force_recursive=bool(opts.get("ReadOnlyForceRecursive")))
    if kind == "volume":
        opts = m.get("VolumeOptions") or {}
        driver_cfg = opts.get("DriverConfig") or {}
        subpath = opts.get("Subpath") or ""
        if subpath and not source:
            raise _config_error("volume", "must not set Subpath when using anonymous volumes")
        if subpath and not is_local(subpath):
            raise _config_error("volume", "subpath must be a relative path within the volume")
        return MountRequest(type="volume", source=source, target=target, read_only=read_only,
                            nocopy=bool(opts.get("NoCopy")), volume_labels=dict(opts.get("Labels") or {}),
                            volume_options=dict(driver_cfg.get("Options") or {}), subpath=subpath, spec=True)
    if kind == "tmpfs":
        if source:
            raise _config_error("tmpfs", "field Source must not be specified")
        opts = m.get("TmpfsOptions") or {}
        size, mode = int(opts.get("SizeBytes") or 0), int(opts.get("Mode") or 0)
        extra = _tmpfs_extra(opts.get("Options"))
        tmpfs = (["ro"] if read_only else []) + ([f"mode={mode:o}"] if mode else []) + \
            ([f"size={_size(size)}"] if size else []) + ["=".join(o) for o in extra]
        return MountRequest(type="tmpfs", target=target, read_only=read_only, tmpfs_options=tuple(tmpfs),
                            spec=True, tmpfs_size=size, tmpfs_mode=mode, tmpfs_extra=extra)
    if kind == "image":
        if not source:
            raise _config_error("image", "field Source must not be empty")
        subpath = (m.get("ImageOptions") or {}).get("Subpath") or ""
        if subpath and not is_local(subpath):
            raise _config_error("image", "subpath must be a relative path within the volume")
        return MountRequest(type="image", source=source, target=target, read_only=read_only, subpath=subpath,
                            spec=True)
    raise _config_error(kind, "mount type unknown") if kind else errors.InvalidArgument(
        "invalid mount config: missing Type")


def mount_json(req: MountRequest) -> dict[str, Any]:
    """One HostConfig.Mounts entry as given (Go's omitempty)."""
    out: dict[str, Any] = {"Type": req.type}
    if req.source:
        out["Source"] = req.source
    out["Target"] = req.target
    if req.read_only:
        out["ReadOnly"] = True
    if req.type == "bind":
        bind = {k: v for k, v in (("Propagation", req.propagation), ("NonRecursive", req.non_recursive),
                                  ("CreateMountpoint", req.create_source),
                                  ("ReadOnlyNonRecursive", req.read_only_non_recursive),
                                  ("ReadOnlyForceRecursive", req.read_only_force_recursive)) if v}
        if bind:
            out["BindOptions"] = bind
    elif req.type == "volume":
        vol: dict[str, Any] = {k: v for k, v in (("NoCopy", req.nocopy), ("Labels", req.volume_labels),
                                                 ("Subpath", req.subpath)) if v}
        if req.volume_options:
            vol["DriverConfig"] = {"Options": dict(req.volume_options)}
        if vol:
            out["VolumeOptions"] = vol
    elif req.type == "tmpfs":
        tmpfs: dict[str, Any] = {k: v for k, v in (("SizeBytes", req.tmpfs_size), ("Mode", req.tmpfs_mode)) if v}
        if req.tmpfs_extra:
            tmpfs["Options"] = [list(o) for o in req.tmpfs_extra]
        if tmpfs:
            out["TmpfsOptions"] = tmpfs
    elif req.type == "image" and req.subpath:
        out["ImageOptions"] = {"Subpath": req.subpath}
    return out


def parse_tmpfs(target: str, options: str) -> MountRequest:
    return MountRequest(type="tmpfs", target=check_destination(target),  # dockerd's words, unprefixed
                        tmpfs_options=tuple(o for o in options.split(",") if o))


def parse_all(hc: dict[str, Any]) -> tuple[MountRequest, ...]:
    legacy_ro = bool(hc.get(BINDS_READ_ONLY_NON_RECURSIVE))
    out = [parse_bind(b) for b in hc.get("Binds") or []]
    out = [replace(m, read_only_non_recursive=True) if legacy_ro and m.type == "bind" and m.read_only else m
           for m in out]
    check_options_match(hc.get("Mounts") or [])
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
