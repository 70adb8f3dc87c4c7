"""The composition root: builds the object graph from a DaemonConfig."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from typing import Any
from pathlib import Path

from servin.api.context import Services
from servin.core.containers import ContainerService
from servin.core.events import EventBus
from servin.core.execs import ExecService
from servin.core.health import HealthService
from servin.core.store import ContainerStore
from servin.core.volumes import VolumeStore
from servin.daemon import facts
from servin.daemon.config import DaemonConfig
from servin.images.store import ImageStore
from servin.core import caps
from servin.kernel import blockdev, cgroups, procfs
from servin.runtime import Runtime


@dataclass(frozen=True, slots=True, kw_only=True)
class Engine:
    services: Services
    containers: ContainerService
    images: ImageStore
    network: Any = None  # servin.network.service.NetworkService (None with --bridge none)
    dns: Any = None  # servin.network.dns.DnsServer of the user-defined networks (started by main)


def _daemon_id(data_root: Path) -> str:
    path = data_root / "engine-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = secrets.token_hex(16)
        from servin import atomicfile

        atomicfile.write_bytes(path, value.encode())
        return value


# Modes of the daemon's directories, as dockerd's (CVE-2021-41091): a local user may pass through the
# roots (to the socket, to a volume's or bind's own files) but never read or enter layers, container
# root filesystems and state, where an image's setuid binaries and a container's files lie.
PRIVATE_DIRS = {".": 0o711, "containers": 0o710, "image": 0o700, "volumes": 0o701, "network": 0o700,
                "tmp": 0o700}


def secure_roots(data_root: Path, exec_root: Path) -> None:
    """Make the data and exec roots (and the data root's stores) with those modes; existing ones
    are set to them too, so an older installation is closed at the next start."""
    for name, mode in PRIVATE_DIRS.items():
        d = data_root / name
        d.mkdir(mode=mode, parents=True, exist_ok=True)
        os.chmod(d, mode)
    exec_root.mkdir(mode=0o711, parents=True, exist_ok=True)
    os.chmod(exec_root, 0o711)


def seccomp_profile(setting: str) -> str | dict[str, Any]:
    """dockerd's setupSeccompProfile: "" and builtin are Docker's default, unconfined none, anything
    else a profile's path, read and checked now (dockerd reads it at start, decodes it per container)."""
    from servin.core import seccomp
    from servin.errors import InvalidArgument

    if setting in ("", seccomp.BUILTIN):
        return seccomp.BUILTIN
    if setting == seccomp.UNCONFINED:
        return seccomp.UNCONFINED
    from servin.api.wire.seccomp import decode_profile

    try:
        text = Path(setting).read_text()
    except OSError as exc:
        raise InvalidArgument(f"opening seccomp profile ({setting}) failed: open {setting}: "
                              f"{os.strerror(exc.errno or 0).lower()}") from None
    return decode_profile(text)


def build(config: DaemonConfig, *, cgroup_root: Path = Path("/sys/fs/cgroup")) -> Engine:
    secure_roots(config.data_root, config.exec_root)
    profile = seccomp_profile(config.seccomp_profile)
    for leftover in (config.data_root / "tmp").iterdir():  # uploads a crash interrupted
        leftover.unlink(missing_ok=True)
    cg = cgroups.detect(cgroup_root)
    images = ImageStore(config.data_root / "image")
    events = EventBus()
    runtime = Runtime(exec_root=config.exec_root, cgroups=cg, cgroup_parent=config.cgroup_parent)
    network = build_network(config)
    containers = ContainerService(
        store=ContainerStore(config.data_root / "containers"), images=images, runtime=runtime,
        volumes=VolumeStore(config.data_root / "volumes"), events=events,
        default_log=(config.log_driver, dict(config.log_opts or {})), network=network, seccomp_profile=profile,
        host_caps=caps.names_of(procfs.capability_bounding_set()), no_new_privileges=config.no_new_privileges,
        block_numbers=blockdev.numbers)
    host = facts.gather(
        daemon_id=_daemon_id(config.data_root), data_root=config.data_root, cgroup_version=cg.version,
        debug=config.debug, swap_limit=cg.features.swap, start_time_ns=time.time_ns(),
        seccomp_profile="default" if profile == "builtin" else config.seccomp_profile,
        no_new_privileges=config.no_new_privileges)
    execs = ExecService(containers)
    HealthService(containers, execs)  # hooks itself into the containers' start and exit
    from servin.registry import RegistryService

    from servin.daemon.config import DEFAULT_CONFIG_FILE

    # registry CAs and client certificates: Servin's certs.d beside daemon.json, then Docker's
    certs = (DEFAULT_CONFIG_FILE.parent / "certs.d", Path("/etc/docker/certs.d"))
    registry = RegistryService(images, config.data_root / "tmp", insecure_registries=config.insecure_registries,
                               mirrors=config.registry_mirrors, certs_dirs=certs)
    services = Services(containers=containers, images=images, events=events, info=host,
                        tmp_dir=config.data_root / "tmp", execs=execs, registry=registry)
    dns = None
    if network is not None:
        from servin.network.dns import DnsServer

        dns = DnsServer(containers.networking.dns_view)
    return Engine(services=services, containers=containers, images=images, network=network, dns=dns)


def build_network(config: DaemonConfig) -> Any:
    """The NetworkService of the default bridge; nothing in the kernel changes until restore()."""
    if config.bridge == "none":
        return None
    import ipaddress

    from servin.errors import InvalidArgument
    from servin.network.ipam import DEFAULT_POOLS, Pool
    from servin.network.service import NetworkService

    try:
        bip = ipaddress.IPv4Interface(config.bip) if config.bip else None
        pools = tuple(Pool(ipaddress.IPv4Network(p["base"]), int(p["size"]))
                      for p in config.default_address_pools) if config.default_address_pools else DEFAULT_POOLS
    except ValueError as exc:
        raise InvalidArgument(f"invalid network configuration: {exc}") from None
    if len(config.bridge) > 15:
        raise InvalidArgument(f"bridge name {config.bridge!r} is longer than 15 characters")
    return NetworkService(root=config.data_root / "network", exec_root=config.exec_root, pools=pools,
                          bridge_name=config.bridge, bridge_subnet=bip, icc=config.icc,
                          bridge_mtu=config.mtu or None)
