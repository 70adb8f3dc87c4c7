"""ContainerStore: one atomically written record per container, loaded at start.

A record changes in memory at once, at the call (read-modify-write code relies on no await between
its read and its write), and reaches the disk on the store's one writer thread, in call order, off
the event loop. Every write is an atomic replace: a daemon killed at any instant leaves each record
whole, old or new.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from servin import atomicfile
from servin import safefs
from servin.errors import InvalidArgument
from servin.core.model import (
    BlkioDevice,
    Container,
    ContainerConfig,
    DeviceMapping,
    EndpointConfig,
    Health,
    HealthConfig,
    HealthResult,
    HostConfig,
    MountPoint,
    MountRequest,
    RestartPolicy,
    State,
    Status,
    Ulimit,
)
from servin.network.portmap import PublishedPort, published_port

log = logging.getLogger(__name__)

RECORD = "container.json"


def _to_record(c: Container) -> dict[str, Any]:
    return dataclasses.asdict(c)


def _from_record(d: dict[str, Any]) -> Container:
    cfg = dict(d["config"])
    for key in ("cmd", "entrypoint"):
        if cfg.get(key) is not None:
            cfg[key] = tuple(cfg[key])
    for key in ("env", "exposed_ports", "volumes"):
        cfg[key] = tuple(cfg.get(key, ()))
    hc = dict(d["host_config"])
    hc["restart_policy"] = RestartPolicy(**hc.get("restart_policy", {}))
    hc["mounts"] = tuple(MountRequest(**{**m, "tmpfs_options": tuple(m.get("tmpfs_options", ())),
                                         "tmpfs_extra": tuple(tuple(o) for o in m.get("tmpfs_extra", ()))})
                         for m in hc.get("mounts", ()))
    hc["ulimits"] = tuple(Ulimit(**u) for u in hc.get("ulimits", ()))
    for key in ("binds", "volumes_from", "group_add", "device_cgroup_rules", "extra_hosts", "dns", "dns_search",
                "dns_options", "links", "cap_add", "cap_drop", "security_opt"):
        hc[key] = tuple(hc.get(key, ()))
    for key in ("masked_paths", "readonly_paths"):
        hc[key] = tuple(hc[key]) if hc.get(key) is not None else None
    hc["devices"] = tuple(DeviceMapping(**m) for m in hc.get("devices", ()))
    hc["console_size"] = tuple(hc.get("console_size", (0, 0)))
    hc["port_bindings"] = _published_ports(hc.get("port_bindings"))
    for key in ("blkio_weight_device", "blkio_device_read_bps", "blkio_device_write_bps", "blkio_device_read_iops",
                "blkio_device_write_iops"):
        hc[key] = tuple(BlkioDevice(**d) for d in hc.get(key, ()))
    st = dict(d["state"])
    st["status"] = Status(st["status"])
    if st.get("health"):
        h = st["health"]
        st["health"] = Health(status=h["status"], failing_streak=h.get("failing_streak", 0),
                              log=tuple(HealthResult(**r) for r in h.get("log", ())))
    if cfg.get("healthcheck"):
        cfg["healthcheck"] = _health_config(cfg["healthcheck"])
    return Container(
        id=d["id"], name=d["name"], created=d["created"], image_id=d["image_id"],
        config=ContainerConfig(**cfg), host_config=HostConfig(**hc), state=State(**st),
        path=d["path"], args=tuple(d["args"]), resolved_env=tuple(d["resolved_env"]),
        resolved_user=d["resolved_user"], resolved_workdir=d["resolved_workdir"],
        resolved_hostname=d["resolved_hostname"],
        resolved_entrypoint=tuple(d.get("resolved_entrypoint", ())),
        healthcheck=_health_config(d["healthcheck"]) if d.get("healthcheck") else None,
        resolved_cmd=tuple(d.get("resolved_cmd", ())),
        mount_points=tuple(MountPoint(**{**m, "options": tuple(m.get("options", ())),
                                         "layers": tuple(m.get("layers", ()))})
                           for m in d.get("mount_points", ())),
        networks=tuple(EndpointConfig(**{**e, **{k: tuple(e.get(k, ())) for k in ("aliases", "links",
                                                                                    "link_local_ips")}})
                       for e in d["networks"]) if "networks" in d else _legacy_networks(hc["network_mode"]),
        image_manifest=d.get("image_manifest") or None,
    )


def _legacy_networks(mode: str) -> tuple[EndpointConfig, ...]:
    """Records from before networks were kept: the network mode's network."""
    if mode.startswith("container:"):
        return ()
    return (EndpointConfig(network="bridge" if mode in ("", "default") else mode),)


def _published_ports(raw: Any) -> tuple[PublishedPort, ...]:
    """A record's port bindings. Records written before they were typed hold Docker's PortBindings
    ({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}), which create did not check: a binding that
    is no port is left out (the container could not start with it)."""
    if isinstance(raw, list):
        return tuple(PublishedPort(**p) for p in raw)
    out = []
    for port, entries in (raw or {}).items():
        for e in entries:
            try:
                out.append(published_port(port, host_ip=e["HostIp"], host_port=e["HostPort"]))
            except InvalidArgument as exc:
                log.warning("container record: port binding %s %s left out: %s", port, e, exc.message)
    return tuple(out)


def _health_config(h: dict[str, Any]) -> HealthConfig:
    return HealthConfig(**{**h, "test": tuple(h["test"])})


def _remove(d: Path) -> None:
    try:
        safefs.remove_tree(d)
    except OSError as exc:
        log.warning("cannot remove %s: %s", d, exc)


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Saved:
    """A record's write (or removal) queued on the store's writer thread: await it on the event
    loop, or call result() off it. Its error, if any, is the caller's. `record`: what was saved."""

    future: Future[None]
    record: Container | None = None

    def __await__(self) -> Generator[Any, None, None]:
        return asyncio.wrap_future(self.future).__await__()

    def result(self) -> None:
        self.future.result()

    @staticmethod
    def done(record: Container | None = None) -> Saved:
        """Nothing to write."""
        f: Future[None] = Future()
        f.set_result(None)
        return Saved(f, record)


class ContainerStore:
    """Records under `<root>/<id>/container.json`; the dir also serves as the bundle."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="servin-records")
        self._by_id: dict[str, Container] = {}
        for d in sorted(root.iterdir()):
            rec = d / RECORD
            if not rec.exists():
                # a create that crashed before its record landed (or a removal that did): nothing
                # refers to it; what cannot be removed is logged and left, never fatal at start
                _remove(d)
                continue
            try:
                c = _from_record(atomicfile.read_json(rec))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("skipping unreadable container record %s: %s", rec, exc)
                continue
            self._by_id[c.id] = c

    def dir(self, container_id: str) -> Path:
        return self.root / container_id

    def save(self, c: Container) -> Saved:
        """The record now, in memory; on disk after every write queued before it."""
        self._by_id[c.id] = c
        return Saved(self._submit(self._write, c), c)

    def delete(self, container_id: str) -> Saved:
        """The record gone now, in memory; its files after every write queued before."""
        self._by_id.pop(container_id, None)
        return Saved(self._submit(self._delete_files, container_id))

    def close(self) -> None:
        """Daemon stop: every queued write done (a write after it is made at once, by its caller)."""
        self._writer.shutdown(wait=True)

    def _submit(self, work: Callable[[Any], None], arg: Any) -> Future[None]:
        try:
            return self._writer.submit(work, arg)
        except RuntimeError:  # closed: a request still finishing as the daemon stops
            done: Future[None] = Future()
            try:
                work(arg)
                done.set_result(None)
            except Exception as exc:
                done.set_exception(exc)
            return done

    def _write(self, c: Container) -> None:
        d = self.dir(c.id)
        d.mkdir(exist_ok=True)
        atomicfile.write_json(d / RECORD, _to_record(c))

    def _delete_files(self, container_id: str) -> None:
        d = self.dir(container_id)
        (d / RECORD).unlink(missing_ok=True)  # first, so a crash mid-removal leaves no half container
        _remove(d)  # what is left without its record, the next start removes

    def all(self) -> list[Container]:
        return list(self._by_id.values())

    def get(self, container_id: str) -> Container | None:
        return self._by_id.get(container_id)
