"""`docker create`: a request checked as dockerd checks it, resolved against its image into a new
container record (command, environment, user, mounts, networks) and its bundle directory."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from servin import errors, safefs
from servin.core import confinement, names
from servin.core.events import Event, EventBus
from servin.core.lifecycle import Records, now_rfc3339
from servin.core.model import (
    Container,
    ContainerConfig,
    EndpointConfig,
    HealthConfig,
    HostConfig,
    MountPoint,
    MountRequest,
    State,
)
from servin.core.networking import ContainerNetworking
from servin.core.store import ContainerStore
from servin.core.volumemounts import VolumeMounts, resolve_subpath
from servin.core.volumes import VolumeStore, copy_image_content
from servin.images.manifests import ImageManifests
from servin.images.model import Image
from servin.images import union
from servin.images.union import container_path

log = logging.getLogger(__name__)

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOG_OPTS = {"json-file": {"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"},
            "none": set()}
DEVICE_RULE_RE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")
SIZE_UNITS = ("", "b", "k", "m", "g", "t", "p")


class ManifestLookup(Protocol):
    def of(self, image: Image) -> ImageManifests: ...


class ImageSource(Protocol):
    @property
    def manifests(self) -> ManifestLookup: ...
    def get(self, ref: str) -> Image: ...
    def layer_dirs(self, image_id: str) -> list[Path]: ...
    def read_file(self, image_id: str, path: str) -> bytes | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSettings:
    """The daemon's defaults and limits a new container is checked and completed with."""

    default_log: tuple[str, dict[str, str]]  # daemon.json log-driver, log-opts
    cgroup_version: int


class Creator:
    def __init__(self, *, records: Records, store: ContainerStore, images: ImageSource, volumes: VolumeStore | None,
                 events: EventBus, networking: ContainerNetworking, names: dict[str, str],
                 lookup: Callable[[str], Container], host_caps: Callable[[], tuple[str, ...]],
                 settings: CreateSettings, volume_mounts: VolumeMounts) -> None:
        self.records = records
        self.volume_mounts = volume_mounts
        self.store = store
        self.images = images
        self.volumes = volumes
        self.events = events
        self.networking = networking
        self.names = names  # name → id, shared with the engine
        self.get = lookup
        self.host_caps = host_caps
        self.settings = settings

    def reserve_check(self, name: str) -> str:
        """dockerd's reserveName (daemon/names.go): the name's pattern (names.check_container_name),
        then whether another container has it (nameConflictError). The bare name."""
        bare = names.check_container_name(name)
        if bare in self.names:
            raise errors.Conflict(
                f'Conflict. The container name "/{bare}" is already in use by container '
                f'"{self.names[bare]}". You have to remove (or rename) that container to be able '
                "to reuse that name.")
        return bare

    async def create(self, config: ContainerConfig, host_config: HostConfig, name: str | None,
                     endpoints: Mapping[str, EndpointConfig] | None = None) -> Container:
        config = _check_working_dir(config)
        name = self.reserve_check(name) if name else names.generate(set(self.names))
        image, image_manifest = await asyncio.to_thread(self._image_of, config.image)
        # the image's EXPOSE joins the container's (dockerd's merge at create): -P publishes them, inspect shows them
        exposed = {p if "/" in p else f"{p}/tcp" for p in (*config.exposed_ports, *image.exposed_ports)}
        config = replace(config, exposed_ports=tuple(sorted(exposed)))
        entrypoint = config.entrypoint if config.entrypoint is not None else (image.entrypoint or ())
        if config.cmd is not None:
            cmd = config.cmd
        elif config.entrypoint is not None:
            cmd = ()
        else:
            cmd = image.cmd or ()
        argv = tuple(entrypoint) + tuple(cmd)
        if not argv:
            raise errors.InvalidArgument("No command specified")
        default_driver, default_opts = self.settings.default_log
        if not host_config.log_type:
            host_config = replace(host_config, log_type=default_driver,
                                  log_config={**default_opts, **host_config.log_config})
        _check_host_config(host_config)  # resources and restart policy: verify(), which the caller ran
        confinement.check(host_config, available_caps=self.host_caps(), hostname=config.hostname)
        host_config = confinement.adapt(host_config, cgroup_version=self.settings.cgroup_version, lookup=self.get)
        networks = self.networking.initial_networks(config, host_config, endpoints)
        cid = secrets.token_hex(32)
        # as dockerd: with the host's network the host's name (in the container's own UTS namespace)
        hostname = config.hostname or (socket.gethostname() if host_config.network_mode == "host" else cid[:12])
        env = merge_env(
            list(image.env),
            [f"HOSTNAME={hostname}"] + (["TERM=xterm"] if config.tty else []) + list(config.env),
        )
        made: list[str] = []  # the anonymous volumes this create makes: removed again if it fails, as dockerd
        # its volumes count as in use (never removed under the copy) until the record is saved or it fails
        try:
            mount_points = self._resolve_mounts(cid, config, host_config, image, made)
        except BaseException:
            self.volume_mounts.unclaim(cid)
            await asyncio.to_thread(self._drop_volumes, made)
            raise
        c = Container(
            id=cid, name=name, created=now_rfc3339(), image_id=image.id, config=config, mount_points=mount_points,
            resolved_entrypoint=tuple(entrypoint), resolved_cmd=tuple(cmd),
            healthcheck=config.healthcheck or image_healthcheck(image),
            host_config=host_config, state=State(), path=argv[0], args=argv[1:],
            resolved_env=tuple(env), resolved_user=config.user or image.user,
            resolved_workdir=config.working_dir or container_path(image.working_dir or "/"),
            resolved_hostname=hostname, networks=networks, image_manifest=image_manifest,
        )
        self.names[name] = cid
        try:
            await asyncio.to_thread(self._prepare_bundle, c)
            layers = await asyncio.to_thread(self.images.layer_dirs, image.id)
            await asyncio.to_thread(populate_volumes, c, layers, self.volume_mounts)
            await self.records.create(c)
        except BaseException:
            self.names.pop(name, None)
            await self.records.delete(cid)
            self.volume_mounts.unclaim(cid)
            await asyncio.to_thread(self._drop_volumes, made)
            raise
        self.volume_mounts.unclaim(cid)  # from now on the record says who uses them
        return c

    def _drop_volumes(self, names: list[str]) -> None:
        if self.volumes is None:
            return
        for name in names:
            try:
                self.volumes.remove(name, users=[], force=True)
            except errors.ServinError as exc:  # still mounted: left, as the failure that brought us here stands
                log.warning("removing volume %s: %s", name, exc.message)
                continue
            self.events.publish(Event(type="volume", action="destroy", actor_id=name, attributes={"driver": "local"}))

    def _image_of(self, ref: str) -> tuple[Image, dict[str, Any]]:
        """The image `ref` and the descriptor of its own manifest, which the container keeps (its platform
        stays known after the image is retagged or removed)."""
        image = self.images.get(ref)
        return image, self.images.manifests.of(image).container_descriptor()

    def _resolve_mounts(self, cid: str, config: ContainerConfig, hc: HostConfig, image: Image,
                        made: list[str]) -> tuple[MountPoint, ...]:
        """--volumes-from, then -v/--mount/--tmpfs, then an anonymous volume for every VOLUME left.

        Destinations are paths inside the container, cleaned as dockerd does (``filepath.Clean``);
        the keys of ``Volumes`` (the image's and the request's) are made absolute first, so an
        image's ``/../../etc`` is the container's ``/etc``, never a host path."""
        points: dict[str, MountPoint] = {}
        for ref in hc.volumes_from:
            name, _, mode = ref.partition(":")
            source = self.get(name)
            for mp in source.mount_points:
                rw = mp.rw if mode not in ("ro", "rw") else mode == "rw"
                dest = container_path(mp.destination)
                points[dest] = replace(mp, destination=dest, rw=rw, copy_content=False, anonymous=False)
        for req in hc.mounts:
            req = replace(req, target=container_path(req.target))
            points[req.target] = self._mount_point(cid, req, hc.volume_driver, made)
        for spec in (*image.volumes, *config.volumes):
            dest = container_path(str(spec))
            if dest == "/":  # dockerd lets it through to fail at start; refused with its -v wording
                raise errors.InvalidArgument(
                    f"invalid volume specification: '{spec}': invalid mount config for type \"volume\": "
                    "invalid specification: destination can't be '/'")
            if dest not in points:
                points[dest] = self._mount_point(cid, MountRequest(type="volume", target=dest), hc.volume_driver,
                                                 made)
        return tuple(sorted(points.values(), key=lambda m: m.destination.count("/")))

    def _mount_point(self, cid: str, req: MountRequest, volume_driver: str, made: list[str]) -> MountPoint:
        """The mount point of one request; the name of an anonymous volume it makes joins `made`; a
        volume is claimed for the create `cid` (in use until it is saved or fails)."""
        if req.type == "bind":
            src = Path(req.source)
            if not src.exists():
                if not req.create_source:
                    raise errors.InvalidArgument(
                        f'invalid mount config for type "bind": bind source path does not exist: {req.source}')
                src.mkdir(parents=True, exist_ok=True)
            return MountPoint(type="bind", source=req.source, destination=req.target, rw=not req.read_only,
                              mode=req.mode, propagation=req.propagation or "rprivate",
                              non_recursive=req.non_recursive, read_only_non_recursive=req.read_only_non_recursive,
                              read_only_force_recursive=req.read_only_force_recursive)
        if req.type == "tmpfs":
            return MountPoint(type="tmpfs", destination=req.target, rw=not req.read_only,
                              options=req.tmpfs_options)
        if req.type == "image":  # its layers, read-only (an overlay without an upper dir, at start)
            image = self.images.get(req.source)
            layers = tuple(str(p) for p in reversed(self.images.layer_dirs(image.id)))
            return MountPoint(type="image", source=req.source, destination=req.target, rw=False,
                              propagation="rprivate", subpath=req.subpath, image=image.id, layers=layers)
        if self.volumes is None:
            raise errors.NotImplementedYet("volumes are not available")
        vol, created = self.volumes.create(req.source or None, driver=volume_driver or "local",
                                           labels=req.volume_labels,
                                           options=req.volume_options, created=now_rfc3339())
        self.volume_mounts.claim(cid, vol.name)
        if created:
            if vol.anonymous:
                made.append(vol.name)
            self.events.publish(Event(type="volume", action="create", actor_id=vol.name,
                                      attributes={"driver": vol.driver}))
        mp = MountPoint(type="volume", name=vol.name, source=vol.mountpoint, destination=req.target,
                        driver=vol.driver, rw=not req.read_only, mode=req.mode or "z",
                        copy_content=not req.nocopy, anonymous=vol.anonymous,
                        subpath=req.subpath)
        if vol.is_mount:
            o = vol.options.get("o", "")
            mp = replace(mp, fstype=vol.options.get("type", "none"), device=vol.options.get("device", ""),
                         options=tuple(x for x in o.split(",") if x))
        return mp

    def _prepare_bundle(self, c: Container) -> None:
        d = self.store.dir(c.id)
        for sub in ("rootfs", "upper", "work"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "hostname").write_text(c.resolved_hostname + "\n")
        self.networking.write_files(c)
        # A missing working directory is made by the supervisor inside the container, after
        # pivot_root (servin-shim.c, child_main), where symlinks resolve in the container's root;
        # never here on the host.


def populate_volumes(c: Container, layers: list[Path], mounts: VolumeMounts) -> None:
    """dockerd's populateVolumes, at create: for each volume without nocopy over a directory of the
    image, the image's files copied into the volume, or into its subpath, while that is empty. A
    volume that is a mount is mounted for the copy and unmounted after it (a tmpfs keeps none of
    it, as on dockerd). A missing subpath gets nothing; other failures fail the create."""
    top_first = list(reversed(layers))
    for mp in c.mount_points:
        if mp.type != "volume" or not mp.copy_content:
            continue
        src = union.resolve(top_first, mp.destination)
        if src is None or not src.is_dir:
            continue
        try:
            with mounts.borrowed(f"{c.id}/populate", (mp,)):
                _populate(mp, layers)
        except errors.ServinError as exc:
            raise type(exc)(f"failed to populate volume: {exc.message}") from None
        except OSError as exc:  # ENOSPC, EACCES, ...: Go's *PathError in dockerd's wording
            where = f"{exc.filename}: " if exc.filename else ""
            raise errors.SystemError_(
                f"failed to populate volume: {where}{(exc.strerror or str(exc)).lower()}") from None


def _populate(mp: MountPoint, layers: list[Path]) -> None:
    try:
        rel = resolve_subpath(mp.source, mp.subpath) if mp.subpath else ""
    except errors.NotFound:
        return
    root = safefs.open_root(mp.source)
    try:
        fd = safefs.open_dir(root, rel)  # no symlink followed: one swapped in meanwhile is refused
    except OSError:
        return  # a file, or no longer a directory
    finally:
        os.close(root)
    try:
        if not os.listdir(fd):
            copy_image_content(layers, mp.destination, fd)
    finally:
        os.close(fd)


def image_healthcheck(image: Image) -> HealthConfig | None:
    raw = image.healthcheck
    if raw is None or not raw.get("Test"):
        return None
    return HealthConfig(test=tuple(raw["Test"]), interval_ns=int(raw.get("Interval") or 0),
                        timeout_ns=int(raw.get("Timeout") or 0), start_period_ns=int(raw.get("StartPeriod") or 0),
                        start_interval_ns=int(raw.get("StartInterval") or 0), retries=int(raw.get("Retries") or 0))


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    env: dict[str, str] = {}
    for item in list(base) + list(overrides):
        key = item.split("=", 1)[0]
        env[key] = item
    if "PATH" not in env:
        env = {"PATH": DEFAULT_PATH, **env}
    return list(env.values())


def _check_working_dir(config: ContainerConfig) -> ContainerConfig:
    """dockerd's translateWorkingDir (daemon/container.go): an absolute path, then cleaned."""
    wd = config.working_dir
    if not wd:
        return config
    if not wd.startswith("/"):
        raise errors.InvalidArgument(f"the working directory '{wd}' is invalid, it needs to be an absolute path")
    return replace(config, working_dir=container_path(wd))


def _check_host_config(hc: HostConfig) -> None:
    """What dockerd refuses at create: unknown log drivers and options, bad modes and rules."""
    driver = hc.log_type or "json-file"
    if driver not in LOG_OPTS:
        raise errors.InvalidArgument(f"logger: no log driver named '{driver}' is registered")
    for key, value in hc.log_config.items():
        if key not in LOG_OPTS[driver]:
            raise errors.InvalidArgument(f"unknown log opt '{key}' for {driver} log driver")
        if key == "max-size" and not _is_size(value):
            raise errors.InvalidArgument(f"invalid size: '{value}'")
        if key == "max-file" and (not value.isdigit() or int(value) < 1):
            raise errors.InvalidArgument("max-file cannot be less than 1")
    for rule in hc.device_cgroup_rules:
        if not DEVICE_RULE_RE.match(rule):
            raise errors.InvalidArgument(f"invalid device cgroup format '{rule}'")


def _is_size(value: str) -> bool:
    """A log max-size the runtime reads: plain bytes or docker's units.RAMInBytes forms ("10m",
    "1.5k", "2gb"), as runtime/plan.py's parse_size accepts them."""
    if value == "":
        return True
    text = value.strip().lower()
    number = text.rstrip("bkmgtpi")
    unit = text[len(number):].removesuffix("ib").removesuffix("b") or ("b" if text.endswith("b") else "")
    try:
        float(number)
    except ValueError:
        return False
    return unit in SIZE_UNITS
