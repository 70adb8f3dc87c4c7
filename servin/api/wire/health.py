"""Docker's HealthConfig (a create body's Healthcheck, an image config's) ⇄ HealthConfig."""

from __future__ import annotations

from typing import Any

from servin import errors
from servin.core.model import HealthConfig

DURATIONS = (("Interval", "interval_ns"), ("Timeout", "timeout_ns"), ("StartPeriod", "start_period_ns"),
             ("StartInterval", "start_interval_ns"))


def parse_healthcheck(raw: Any) -> HealthConfig | None:
    """Durations in ns; StartInterval (API 1.44) is gone from older bodies (versions.py)."""
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise errors.InvalidArgument("invalid Healthcheck")
    test = raw.get("Test") or []
    if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
        raise errors.InvalidArgument("invalid Healthcheck.Test: must be a list of strings")
    for key, _ in DURATIONS:
        v = raw.get(key) or 0
        if v and v < 1_000_000:
            raise errors.InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")
    if (raw.get("Retries") or 0) < 0:
        raise errors.InvalidArgument("Retries in Healthcheck cannot be negative")
    return HealthConfig(test=tuple(test), retries=int(raw.get("Retries") or 0),
                        **{attr: int(raw.get(key) or 0) for key, attr in DURATIONS})


def health_config_json(h: HealthConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"Test": list(h.test)}
    for key, v in (*((key, getattr(h, attr)) for key, attr in DURATIONS), ("Retries", h.retries)):
        if v:
            out[key] = v
    return out
