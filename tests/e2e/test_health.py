"""Healthchecks: State.Health, docker ps status, health_status events."""

from __future__ import annotations

import json
import time

from tests.support.daemon import ServinDaemon


def out(d: ServinDaemon, *args: str, **kw: object) -> str:
    return d.docker(*args, **kw).stdout.decode()  # type: ignore[arg-type]


def wait_for(d: ServinDaemon, name: str, status: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    health: dict = {}
    while time.monotonic() < deadline:
        health = json.loads(out(d, "inspect", name))[0]["State"].get("Health") or {}
        if health.get("Status") == status:
            return health
        time.sleep(0.2)
    raise AssertionError(f"{name} never became {status}: {health}")


def test_healthy_then_unhealthy(servin: ServinDaemon) -> None:
    d = servin
    since = str(time.time() - 0.5)
    d.docker("run", "-d", "--name", "probed", "--health-cmd", "test -f /tmp/ok && echo fine",
             "--health-interval", "300ms", "--health-retries", "2", "--health-timeout", "2s",
             "busybox", "sh", "-c", "touch /tmp/ok; sleep 600")
    try:
        health = wait_for(d, "probed", "healthy")
        assert health["FailingStreak"] == 0 and health["Log"][-1]["ExitCode"] == 0
        assert health["Log"][-1]["Output"] == "fine\n"
        assert "(healthy)" in out(d, "ps", "--filter", "name=probed", "--format", "{{.Status}}")
        assert out(d, "ps", "-q", "--filter", "health=healthy", "--filter", "name=probed").strip()
        d.docker("exec", "probed", "rm", "/tmp/ok")
        health = wait_for(d, "probed", "unhealthy")
        assert health["FailingStreak"] >= 2 and len(health["Log"]) <= 5
        assert "(unhealthy)" in out(d, "ps", "--filter", "name=probed", "--format", "{{.Status}}")
        until = str(int(time.time()) + 1)
        events = out(d, "events", "--since", since, "--until", until, "--filter", "container=probed",
                     "--format", "{{.Action}}").splitlines()
        assert "health_status: healthy" in events and "health_status: unhealthy" in events
    finally:
        d.docker("rm", "-f", "probed")


def test_probe_timeout_counts_as_failure(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "-d", "--name", "slowprobe", "--health-cmd", "sleep 5", "--health-interval", "200ms",
             "--health-timeout", "300ms", "--health-retries", "1", "busybox", "sleep", "600")
    try:
        health = wait_for(d, "slowprobe", "unhealthy")
        assert "exceeded timeout" in health["Log"][-1]["Output"]
        assert health["Log"][-1]["ExitCode"] == -1
    finally:
        d.docker("rm", "-f", "slowprobe")
