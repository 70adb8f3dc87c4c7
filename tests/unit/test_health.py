from __future__ import annotations

from servin.core.health import next_health, probe_command
from servin.core.model import Health, HealthConfig, HealthResult


def result(code: int) -> HealthResult:
    return HealthResult(start="s", end="e", exit_code=code, output="")


def test_probe_command_forms() -> None:
    assert probe_command(("CMD-SHELL", "curl -f x")) == ("/bin/sh", "-c", "curl -f x")
    assert probe_command(("CMD", "true", "x")) == ("true", "x")
    assert probe_command(("NONE",)) is None
    assert probe_command(()) is None


def test_failures_need_retries_in_a_row_and_success_resets() -> None:
    cfg = HealthConfig(test=("CMD", "x"), retries=2)
    h = next_health(None, result(1), cfg, in_start_period=False)
    assert (h.status, h.failing_streak) == ("starting", 1)
    h = next_health(h, result(1), cfg, in_start_period=False)
    assert (h.status, h.failing_streak) == ("unhealthy", 2)
    h = next_health(h, result(0), cfg, in_start_period=False)
    assert (h.status, h.failing_streak) == ("healthy", 0)


def test_start_period_failures_do_not_count_and_log_keeps_five() -> None:
    cfg = HealthConfig(test=("CMD", "x"), retries=1)
    h = Health(status="starting")
    for _ in range(7):
        h = next_health(h, result(1), cfg, in_start_period=True)
    assert h.status == "starting" and h.failing_streak == 0 and len(h.log) == 5
