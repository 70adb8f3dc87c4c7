"""The composition root: builds the object graph from a DaemonConfig."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from pathlib import Path

from aiohttp import web

from servin import atomicfile
from servin.access.audit import AuditLog
from servin.access.gate import Gate, Policy
from servin.access.keys import KeyStore
from servin.access.ratelimit import RateLimiter
from servin.access.scopes import Scope
from servin.access.tokens import TokenAuthority
from servin.api.app import build_app
from servin.api.context import Services
from servin.api.errors import ERROR_BODIES, INTERNAL_ERROR_HOOK, InternalErrorHook
from servin.api.wire.system import API_VERSION
from servin.api.wire.seccomp import decode_profile
from servin.build.builder import Builder
from servin.build.pull import registry_puller
from servin.core.buildcache import BuildCache
from servin.core.buildsteps import BuildSteps
from servin.core.containers import ContainerService, now_rfc3339
from servin.core.events import Event, EventBus, daemon_error
from servin.core.execs import ExecService
from servin.core.filesystem import ContainerFilesystem
from servin.core.health import HealthService
from servin.core.host import HostFacts
from servin.core.model import Ulimit
from servin.core.networks import NetworkProvider, Networks
from servin.core.store import ContainerStore
from servin.core.system import System
from servin.core.views import ContainerViews
from servin.core.volumes import Volumes, VolumeStore
from servin.daemon import facts, listeners
from servin.daemon.config import DEFAULT_CONFIG_FILE, DaemonConfig, DefaultUlimit
from servin.daemon.registryauth import DockerConfigCredentials
from servin.daemon.selfcheck import SelfCheck
from servin.errors import InvalidArgument
from servin.images.deletion import UsersFn
from servin.images.events import ImageEvent, ImageEventPublisher
from servin.images.service import ImageService
from servin.core import caps, seccomp
from servin.kernel import cgroups, procfs
from servin import manage
from servin.manage import credentials, envelope
from servin.manage.engine import Engine as ManageEngine
from servin.manage import webhooks as manage_webhooks
from servin.manage.hoststats import HostSampler
from servin.manage.webhooks import Webhooks
from servin.runtime.devices import block_numbers
from servin.runtime.volumemount import LocalVolumeMounter
from servin.network.dns import DnsServer
from servin.network.ipam import DEFAULT_POOLS, Pool
from servin.network.service import NetworkService
from servin.registry.service import RegistryService
from servin.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Engine:
    services: Services
    containers: ContainerService
    images: ImageService
    system: System
    build_steps: BuildSteps
    builder: Builder
    network: Any = None  # servin.network.service.NetworkService (None with --bridge none)
    dns: Any = None  # servin.network.dns.DnsServer of the user-defined networks (started by main)
    webhooks: Webhooks | None = None  # started by main before the containers are restored


def image_events(bus: EventBus) -> ImageEventPublisher:
    """The image service's events onto the engine's bus, as ``type=image`` events."""
    def publish(e: ImageEvent) -> None:
        bus.publish(Event(type="image", action=e.action, actor_id=e.actor_id, attributes=dict(e.attributes)))

    return publish


def image_users(containers: Callable[[], ContainerService]) -> UsersFn:
    """The containers made from an image, ``(id, running)``, for the image service's delete rules
    (``containers`` is called late: the container service is built after the image service)."""
    def users(image_id: str) -> list[tuple[str, bool]]:
        return [(c.id, c.state.running) for c in containers().list()
                if c.image_id == image_id or any(m.image == image_id for m in c.mount_points)]  # image mounts

    return users


def _daemon_id(data_root: Path) -> str:
    path = data_root / "engine-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = secrets.token_hex(16)
        atomicfile.write_bytes(path, value.encode())
        return value


# Modes of the daemon's directories, as dockerd's (CVE-2021-41091): a local user may pass through the
# roots (to the socket, to a volume's or bind's own files) but never read or enter layers, container
# root filesystems and state, where an image's setuid binaries and a container's files lie.
PRIVATE_DIRS = {".": 0o711, "containers": 0o710, "image": 0o700, "volumes": 0o701, "network": 0o700,
                "builder": 0o700, "tmp": 0o700, "access": 0o700}


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
    if setting in ("", seccomp.BUILTIN):
        return seccomp.BUILTIN
    if setting == seccomp.UNCONFINED:
        return seccomp.UNCONFINED
    try:
        text = Path(setting).read_text()
    except OSError as exc:
        raise InvalidArgument(f"opening seccomp profile ({setting}) failed: open {setting}: "
                              f"{os.strerror(exc.errno or 0).lower()}") from None
    return decode_profile(text)


def ulimits(defaults: tuple[DefaultUlimit, ...]) -> tuple[Ulimit, ...]:
    """The daemon's default-ulimits as the engine's Ulimits (at start and at a reload)."""
    return tuple(Ulimit(name=u.name, soft=u.soft, hard=u.hard) for u in defaults)


def build(config: DaemonConfig, *, cgroup_root: Path = Path("/sys/fs/cgroup")) -> Engine:
    secure_roots(config.data_root, config.exec_root)
    profile = seccomp_profile(config.seccomp_profile)
    for leftover in (config.data_root / "tmp").iterdir():  # uploads a crash interrupted
        leftover.unlink(missing_ok=True)
    cg = cgroups.detect(cgroup_root)
    events = EventBus()
    images = ImageService(config.data_root / "image", events=image_events(events),
                          users=image_users(lambda: containers))
    runtime = Runtime(exec_root=config.exec_root, cgroups=cg, cgroup_parent=config.cgroup_parent)
    network = build_network(config)
    volumes = VolumeStore(config.data_root / "volumes")
    containers = ContainerService(
        store=ContainerStore(config.data_root / "containers"), images=images, runtime=runtime,
        volumes=volumes, events=events,
        default_log=(config.log_driver, dict(config.log_opts or {})), network=network, seccomp_profile=profile,
        host_caps=caps.names_of(procfs.capability_bounding_set()), no_new_privileges=config.no_new_privileges,
        block_numbers=block_numbers, default_ulimits=ulimits(config.default_ulimits),
        volume_mounter=LocalVolumeMounter())
    host = facts.gather(
        daemon_id=_daemon_id(config.data_root), data_root=config.data_root, cgroup_version=cg.version,
        debug=config.debug, swap_limit=cg.features.swap, start_time_ns=time.time_ns(),
        seccomp_profile="default" if profile == "builtin" else config.seccomp_profile,
        no_new_privileges=config.no_new_privileges, labels=config.labels, experimental=config.experimental)
    execs = ExecService(containers)
    HealthService(containers, execs)  # hooks itself into the containers' start and exit
    # registry CAs and client certificates: Servin's certs.d beside daemon.json, then Docker's
    certs = (DEFAULT_CONFIG_FILE.parent / "certs.d", Path("/etc/docker/certs.d"))
    registry = RegistryService(images, config.data_root / "tmp", events=image_events(events),
                               insecure_registries=config.insecure_registries, mirrors=config.registry_mirrors,
                               certs_dirs=certs, max_concurrent_downloads=config.max_concurrent_downloads,
                               max_concurrent_uploads=config.max_concurrent_uploads)
    services = build_services(containers=containers, images=images, volumes=volumes, network=network,
                              events=events, host=host, tmp_dir=config.data_root / "tmp", execs=execs,
                              registry=registry, host_cpu_ns=procfs.system_cpu_ns,
                              build_root=config.data_root / "builder")
    dns = None
    if network is not None:
        dns = DnsServer(containers.networking.dns_view)
    assert isinstance(services.system, System)  # the daemon reloads it (SIGHUP)
    assert isinstance(services.builder, Builder)
    return Engine(services=services, containers=containers, images=images, system=services.system,
                  build_steps=BuildSteps(containers=containers, images=images, tmp_dir=config.data_root / "tmp"),
                  builder=services.builder, network=network, dns=dns,
                  webhooks=Webhooks(config.data_root / "webhooks", events))


def build_services(*, containers: ContainerService, images: ImageService, volumes: VolumeStore,
                   network: NetworkProvider | None, events: EventBus, host: HostFacts, tmp_dir: Path,
                   execs: ExecService | None = None, registry: RegistryService | None = None,
                   host_cpu_ns: Callable[[], int] = procfs.system_cpu_ns,
                   build_root: Path | None = None) -> Services:
    """The API's backends over the engine (the API tests build theirs here too); builds work in
    ``build_root`` (default: ``builder`` beside ``tmp_dir``)."""

    def container_name(cid: str) -> str:
        c = containers.store.get(cid)
        return c.name if c is not None else ""

    def writable_layer(cid: str) -> Path:
        return containers.store.dir(cid) / "upper"

    execs = execs or ExecService(containers)
    registry = registry or RegistryService(images, tmp_dir, events=image_events(events))
    builder = Builder(images=images, steps=BuildSteps(containers=containers, images=images, tmp_dir=tmp_dir),
                      work_root=build_root or tmp_dir.parent / "builder", pull=registry_puller(registry))
    build_cache = BuildCache(images=images, ledger=builder.ledger, work_root=builder.work_root,
                             users=image_users(lambda: containers), active=lambda: builder.active)
    return Services(
        containers=containers, images=images, info=host, host_cpu_ns=host_cpu_ns, tmp_dir=tmp_dir, execs=execs,
        container_views=ContainerViews(containers=containers, images=images, execs=execs),
        filesystem=ContainerFilesystem(containers=containers, images=images, tmp_dir=tmp_dir),
        registry=registry, builder=builder,
        networks=Networks(service=network, attachments=containers.networking, container_name=container_name,
                          events=events),
        volumes=Volumes(store=volumes, users=containers.volume_users, events=events, now=now_rfc3339),
        system=System(facts=host, containers=containers, images=images, volumes=volumes,
                      writable_layer=writable_layer, events=events, registry=registry.settings,
                      build_cache=build_cache))


def build_network(config: DaemonConfig) -> Any:
    """The NetworkService of the default bridge; nothing in the kernel changes until restore()."""
    if config.bridge == "none":
        return None
    try:
        bip = ipaddress.IPv4Interface(config.bip) if config.bip else None
        pools = tuple(Pool(ipaddress.ip_network(p["base"]), int(p["size"]))
                      for p in config.default_address_pools) if config.default_address_pools else DEFAULT_POOLS
    except ValueError as exc:
        raise InvalidArgument(f"invalid network configuration: {exc}") from None
    if len(config.bridge) > 15:
        raise InvalidArgument(f"bridge name {config.bridge!r} is longer than 15 characters")
    return NetworkService(root=config.data_root / "network", exec_root=config.exec_root, pools=pools,
                          bridge_name=config.bridge, bridge_subnet=bip, icc=config.icc,
                          bridge_mtu=config.mtu or None, engine_id=_daemon_id(config.data_root),
                          bridge_ipv6=config.ipv6,
                          bridge_subnet6=ipaddress.IPv6Network(config.fixed_cidr_v6) if config.fixed_cidr_v6 else None,
                          reserved=listeners.reserved_ports(config.hosts + config.management_hosts,
                                                            tls=config.tls_on))


def build_gate(config: DaemonConfig) -> Gate:
    """Keys, tokens, limits and the audit log of the access layer (files under <data-root>/access);
    ValueError naming the key file, token key or audit log that does not load."""
    access = config.data_root / "access"
    audit = AuditLog(config.audit_log or access / "audit.log", max_bytes=config.audit_log_max_size,
                     max_files=config.audit_log_max_files)
    keys = KeyStore(access / "keys.json")
    if config.auth_unix == "required" and not config.tlsverify and all(k.scope < Scope.ADMIN for k in keys.list()):
        log.warning('auth-unix is "required" and no admin API key exists: nobody can manage keys. Generate an '
                    "admin key with the socket open first, or use --tlsverify client certificates")
    return Gate(keys=keys, tokens=token_authority(config), policy=access_policy(config), limiter=RateLimiter(),
                audit=audit)


def token_authority(config: DaemonConfig) -> TokenAuthority:
    return TokenAuthority.load(config.data_root / "access" / "token-secret", public_keys=config.token_public_keys,
                               jwks=config.token_jwks, audience=config.token_audience,
                               issuer=config.token_issuer or None)


def access_policy(config: DaemonConfig) -> Policy:
    return Policy(tcp_required=config.auth_tcp == "required", unix_required=config.auth_unix == "required",
                  rate=config.api_rate_limit, failure_rate=config.auth_failure_limit)


def reconfigure_gate(gate: Gate, config: DaemonConfig) -> None:
    """SIGHUP: the key file, token keys and limits again; raises (and changes nothing) if one does not load."""
    tokens = token_authority(config)
    gate.keys.reload()
    gate.reconfigure(tokens=tokens, policy=access_policy(config))


def build_api(services: Services, gate: Gate, config: DaemonConfig | None = None, *,
              webhooks: Webhooks | None = None, events: EventBus | None = None) -> web.Application:
    """Docker's API and the management API on one app, both behind the gate; the management API checks the
    listeners, data root and socket group of `config` (default: the defaults over the services' data root);
    answers 500 are published on `events` as the daemon's error events."""
    app = build_app(services, gate=gate.middleware)
    app[ERROR_BODIES] = {envelope.PREFIX: envelope.failure_body}
    if events is not None:
        app[INTERNAL_ERROR_HOOK] = internal_errors(events)
    credentials.add_routes(app, gate)
    config = config or DaemonConfig(data_root=Path(services.info.data_root))
    if webhooks is not None:
        manage_webhooks.add_routes(app, webhooks)
    manage.add_routes(app, ManageEngine(containers=services.containers, views=services.container_views,
                                        facts=services.info, docker_version=API_VERSION, host=HostSampler(),
                                        host_cpu_ns=services.host_cpu_ns, images=services.images,
                                        registry=services.registry, registry_auth=DockerConfigCredentials(),
                                        connection=SelfCheck.of(config)))
    gate.install(app)
    return app


def internal_errors(bus: EventBus) -> InternalErrorHook:
    """An answer 500 as a `daemon` `error` event (webhooks' system.error)."""
    def publish(method: str, path: str, message: str) -> None:
        bus.publish(daemon_error("internal_error", f"{method} {path}: {message}", method=method, path=path))

    return publish
