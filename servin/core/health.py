"""Healthchecks: a probe exec'd in the container on an interval, State.Health, health_status events."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

from servin import errors
from servin.core.containers import ContainerService
from servin.core.events import Event
from servin.core.execs import ExecService
from servin.core.lifecycle import now_rfc3339
from servin.core.logs import parse_time_ns
from servin.core.model import Container, Health, HealthConfig, HealthResult, Status

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 30.0  # seconds, as dockerd
DEFAULT_START_INTERVAL = 5.0  # between probes during the start period, while still starting
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
KEPT_RESULTS = 5
MAX_OUTPUT = 4096


def probe_command(test: tuple[str, ...]) -> tuple[str, ...] | None:
    """The argv of a healthcheck test; None when checks are off."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ("/bin/sh", "-c", " ".join(test[1:]))
    if test[0] == "CMD":
        return tuple(test[1:]) or None
    return ("/bin/sh", "-c", " ".join(test))  # a bare string list, as old clients send


def next_health(prev: Health | None, result: HealthResult, cfg: HealthConfig, *, in_start_period: bool) -> Health:
    """Docker's rules: success → healthy; failures count only after the start period, and
    `retries` consecutive ones make the container unhealthy."""
    retries = cfg.retries or DEFAULT_RETRIES
    prev = prev or Health(status="starting")
    kept = (prev.log + (result,))[-KEPT_RESULTS:]
    if result.exit_code == 0:
        return Health(status="healthy", failing_streak=0, log=kept)
    if in_start_period and prev.status == "starting":
        return replace(prev, log=kept)
    streak = prev.failing_streak + 1
    return Health(status="unhealthy" if streak >= retries else prev.status, failing_streak=streak, log=kept)


def probe_interval(cfg: HealthConfig, since_start_ns: int, health: Health | None) -> float:
    """Seconds to the next probe, as dockerd's monitor: the start interval while the container is in
    its start period and still starting, else the interval."""
    interval = cfg.interval_ns / 1e9 if cfg.interval_ns else DEFAULT_INTERVAL
    if since_start_ns >= cfg.start_period_ns or (health is not None and health.status != "starting"):
        return interval
    return cfg.start_interval_ns / 1e9 if cfg.start_interval_ns else DEFAULT_START_INTERVAL


class HealthService:
    def __init__(self, containers: ContainerService, execs: ExecService) -> None:
        self.containers = containers
        self.execs = execs
        self._tasks: dict[str, asyncio.Task[None]] = {}
        containers.on_running.append(self._started)
        containers.on_exited.append(self._stopped)

    def _started(self, c: Container, reattached: bool) -> None:
        if c.healthcheck is None or probe_command(c.healthcheck.test) is None:
            return
        self._stopped(c.id)
        if not reattached:  # its write is queued behind the start's own
            self.containers.amend(c.id, lambda cur: cur.with_state(health=Health(status="starting")))
        self._tasks[c.id] = asyncio.create_task(self._run(c.id))

    def _stopped(self, cid: str) -> None:
        task = self._tasks.pop(cid, None)
        if task is not None:
            task.cancel()

    async def _run(self, cid: str) -> None:
        try:
            while True:
                c = self.containers.store.get(cid)
                if c is None or c.healthcheck is None:
                    return
                cfg = c.healthcheck
                since_start = time.time_ns() - parse_time_ns(c.state.started_at)
                await asyncio.sleep(probe_interval(cfg, since_start, c.state.health))
                c = self.containers.store.get(cid)
                if c is None or c.state.status not in (Status.RUNNING, Status.PAUSED):
                    return
                if c.state.status == Status.PAUSED:
                    continue
                await self._probe(c, cfg)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("healthcheck of %s", cid[:12])

    async def _probe(self, c: Container, cfg: HealthConfig) -> None:
        cmd = probe_command(cfg.test)
        assert cmd is not None
        timeout = cfg.timeout_ns / 1e9 if cfg.timeout_ns else DEFAULT_TIMEOUT
        start = now_rfc3339()
        try:
            code, out = await self.execs.run(c, cmd, timeout)
            output = out[:MAX_OUTPUT].decode(errors="replace")
        except asyncio.TimeoutError:
            code, output = -1, f"Health check exceeded timeout ({timeout:g}s)"
        except errors.ServinError as exc:
            code, output = -1, exc.message
        result = HealthResult(start=start, end=now_rfc3339(), exit_code=code, output=output)
        cur = self.containers.store.get(c.id)
        if cur is None or not cur.state.alive:
            return
        started_ns = parse_time_ns(cur.state.started_at)
        in_start = parse_time_ns(start) - started_ns < cfg.start_period_ns
        health = next_health(cur.state.health, result, cfg, in_start_period=in_start)
        await self.containers.amend(c.id, lambda cur: cur.with_state(health=health))
        if cur.state.health is None or health.status != cur.state.health.status:
            attrs = {"image": cur.config.image, "name": cur.name, **cur.config.labels}
            self.containers.events.publish(Event(type="container", action=f"health_status: {health.status}",
                                                 actor_id=cur.id, attributes=attrs))
