"""Running the daemon: pidfile, listeners, restore, signals, clean shutdown."""

from __future__ import annotations

import asyncio
import grp
import logging
import os
import signal
import socket
import ssl
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import pyroute2  # noqa: F401 - imported before logging is set up: it resets its logger's level when imported
from aiohttp import web

from servin import errors
from servin.access.tls import ServerTLS, TLSConfigError, server_context
from servin.daemon import connections, listeners, systemd, wiring
from servin.daemon.config import (UNVERIFIED_TLS_WARNING, DaemonConfig, DefaultUlimit, is_loopback, open_to_anyone,
                                  tcp_address)
from servin.daemon.reload import Reloader, log_level
from servin.images.seed import write_busybox_archive

log = logging.getLogger("servin")


class StartupError(Exception):
    pass


def _claim_pidfile(path: Path) -> None:
    try:
        old = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        old = 0
    if old and old != os.getpid():
        try:
            os.kill(old, 0)
            raise StartupError(
                f"pid file found, ensure servin is not running or delete {path}")
        except ProcessLookupError:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}")


# dockerd's warning for plain TCP (cmd/dockerd), printed when --tls=false lets a listener off loopback
INSECURE_WARNING = (
    "Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone "
    "who has access to your network. API is accessible on http://%s without encryption. Access to the "
    "remote API is equivalent to root access on the host. Refer to the 'Docker daemon attack surface' "
    "section in the documentation for more information: https://docs.docker.com/go/attack-surface/")


def _tls_context(config: DaemonConfig) -> ssl.SSLContext | None:
    if not config.tls_on:
        return None
    try:
        return server_context(ServerTLS(cert=config.tlscert, key=config.tlskey, ca=config.tlscacert,
                                        verify=config.tlsverify))
    except TLSConfigError as exc:
        raise StartupError(str(exc)) from None


async def _listen(runner: web.AppRunner, host: str, config: DaemonConfig,
                  tls: ssl.SSLContext | None) -> web.BaseSite:
    group = config.group
    if host.startswith("unix://"):
        path = Path(host[len("unix://"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            probe = socket.socket(socket.AF_UNIX)
            try:
                probe.connect(str(path))
                raise StartupError(f"another daemon is listening on {path}")
            except (ConnectionRefusedError, FileNotFoundError):
                path.unlink()
            finally:
                probe.close()
        old_umask = os.umask(0o117)  # the socket is born 0660
        try:
            site: web.BaseSite = web.UnixSite(runner, str(path))
            await site.start()
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o660)
        if group:
            try:
                os.chown(path, 0, grp.getgrnam(group).gr_gid)
            except KeyError:
                log.warning("group %s not found; the socket stays root's", group)
        return site
    if host.startswith("tcp://"):
        address, port = tcp_address(host)  # config.resolve gave every tcp host its port
        site = web.TCPSite(runner, address, port, ssl_context=tls)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(f"failed to listen on {host}: {exc.strerror}") from None
        if tls is None and not is_loopback(address):
            log.warning(INSECURE_WARNING, f"{address}:{port}")
        elif open_to_anyone(config, host):
            log.warning(UNVERIFIED_TLS_WARNING, host)
        log.info("API listen on %s%s", f"{address}:{port}", " (TLS)" if tls else "")
        return site
    raise StartupError(f"unsupported host {host}")


async def _activated(runner: web.AppRunner, host: str, tls: ssl.SSLContext | None) -> list[web.BaseSite]:
    """`-H fd://` / `fd://N`: the listening sockets systemd passed (servin.socket); with TLS on, they
    speak TLS, as dockerd's activation.TLSListeners."""
    try:
        socks = systemd.listeners(host, systemd.activated_fds())
    except systemd.ActivationError as exc:
        raise StartupError(str(exc)) from None
    sites: list[web.BaseSite] = []
    for sock in socks:
        site = web.SockSite(runner, sock, ssl_context=tls)
        await site.start()
        sites.append(site)
    return sites


def _reloader(engine: wiring.Engine, config: DaemonConfig, reread: Callable[[], DaemonConfig]) -> Reloader:
    system = engine.system

    def set_debug(debug: bool) -> None:
        system.reloaded(replace(system.facts(), debug=debug))

    def set_labels(labels: tuple[str, ...]) -> None:
        system.reloaded(replace(system.facts(), labels=labels))

    def set_default_ulimits(defaults: tuple[DefaultUlimit, ...]) -> None:
        engine.containers.set_default_ulimits(wiring.ulimits(defaults))

    return Reloader(running=config, read=reread, daemon_id=system.facts().id,
                    configure_registry=engine.services.registry.configure, set_debug=set_debug,
                    publish=engine.containers.events.publish,
                    limit_transfers=engine.services.registry.limit_transfers, set_labels=set_labels,
                    set_default_ulimits=set_default_ulimits)


def _reload(reloader: Reloader) -> None:
    systemd.notify("RELOADING=1")
    try:
        reloader.apply()
    finally:
        systemd.notify("READY=1")


async def _seed_busybox(engine: wiring.Engine) -> None:
    try:
        await asyncio.to_thread(engine.images.get, "busybox:latest")
        return
    except errors.NotFound:
        pass
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        log.warning("cannot seed busybox:latest: %s is missing (apt-get install busybox-static)", busybox)
        return
    with tempfile.TemporaryDirectory(dir=engine.services.tmp_dir) as tmp:
        archive = Path(tmp) / "busybox.tar"
        await asyncio.to_thread(write_busybox_archive, archive, busybox=busybox)
        for line in await asyncio.to_thread(engine.images.load_archive, archive):
            log.info("seeded: %s", line)


def _hosts_clear_of_containers(config: DaemonConfig, engine: wiring.Engine) -> list[str]:
    """The listeners to open: one on a port a running container publishes is refused (logged,
    naming the container); the daemon refuses to start if that leaves none."""
    hosts = _clear_of_containers(config.hosts, config, engine)
    if not hosts:
        raise StartupError(f"no listener left: running containers publish {', '.join(config.hosts)}")
    return hosts


def _clear_of_containers(hosts: tuple[str, ...], config: DaemonConfig, engine: wiring.Engine) -> list[str]:
    if engine.network is None:
        return list(hosts)

    def name_of(container_id: str) -> str:
        c = engine.containers.store.get(container_id)
        return c.name if c is not None else container_id[:12]

    return listeners.clear_of_containers(hosts, engine.network.publishers, name_of, tls=config.tls_on)


async def serve(config: DaemonConfig, reread: Callable[[], DaemonConfig] | None = None) -> None:
    """Serve until SIGTERM or SIGINT; SIGHUP reads the configuration again with `reread`."""
    tls = _tls_context(config)  # bad TLS files stop the start before anything is restored
    asyncio.get_running_loop().set_exception_handler(connections.AcceptErrors())
    _claim_pidfile(config.pidfile)
    try:
        engine = wiring.build(config)
    except errors.ServinError as exc:
        raise StartupError(exc.message) from None
    if engine.webhooks is not None:  # first: the events of the restore are delivered too
        await engine.webhooks.start()
    if engine.network is not None:  # before the containers: restarts at restore connect to the bridge
        await engine.dns.start()
        engine.network.dns = engine.dns
        running = [c.id for c in engine.containers.store.all() if c.state.running]
        await asyncio.to_thread(engine.network.restore, running)
    await engine.containers.restore()
    await engine.build_steps.remove_leftovers(engine.builder.interrupted)  # of builds a kill interrupted
    await asyncio.to_thread(engine.builder.clean)
    hosts = _hosts_clear_of_containers(config, engine)  # the ports running containers publish stay theirs
    if config.seed_busybox:
        await _seed_busybox(engine)
    try:
        gate = wiring.build_gate(config)
    except (ValueError, OSError) as exc:
        raise StartupError(str(exc)) from None
    app = wiring.build_api(engine.services, gate, config, webhooks=engine.webhooks, events=engine.containers.events)
    management = _clear_of_containers(config.management_hosts, config, engine)
    app.middlewares.append(listeners.management_only(management, tls=config.tls_on))
    limits = connections.ConnectionLimits(read_header_timeout=config.read_header_timeout,
                                          max_per_client=config.max_connections_per_client)
    runner = connections.GuardedRunner(app, limits, shutdown_timeout=1.0)
    await runner.setup()
    sites = []
    for h in hosts:
        sites += await _activated(runner, h, tls) if h.startswith("fd://") else [await _listen(runner, h, config, tls)]
    for h in list(management):  # the default port may be taken: the Docker API serves on all the same
        try:
            sites.append(await _listen(runner, h, config, tls))
        except (StartupError, OSError) as exc:
            log.error("not serving the management API on %s: %s", h, exc)
            management.remove(h)
    systemd.notify("READY=1")
    log.info("Servin is serving the Docker API v1.41 on %s", ", ".join(hosts))
    if management:
        log.info("Servin is serving the management API (/api/v1) on %s", ", ".join(management))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if reread is not None:
        reloader = _reloader(engine, config, reread)
        reloader.configure_access = partial(wiring.reconfigure_gate, gate)
        loop.add_signal_handler(signal.SIGHUP, _reload, reloader)
    await stop.wait()
    log.info("shutting down; containers keep running")
    systemd.notify("STOPPING=1")
    for site in sites:
        await site.stop()
    await engine.containers.shutdown()
    if engine.webhooks is not None:
        await engine.webhooks.close()
    if engine.dns is not None:
        await engine.dns.close()
    await runner.cleanup()
    for h in config.hosts + config.management_hosts:
        if h.startswith("unix://"):
            Path(h[len("unix://"):]).unlink(missing_ok=True)
    config.pidfile.unlink(missing_ok=True)


def run(config: DaemonConfig, reread: Callable[[], DaemonConfig] | None = None) -> int:
    logging.basicConfig(
        level=log_level(config),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("pyroute2").setLevel(logging.WARNING)  # its debug output is every netlink message
    if os.geteuid() != 0:
        print("servin daemon needs to run as root", file=sys.stderr)
        return 1
    log.info("open files limit: %d", connections.raise_open_files_limit())
    try:
        asyncio.run(serve(config, reread))
    except StartupError as exc:
        print(f"failed to start daemon: {exc}", file=sys.stderr)
        return 1
    return 0
