"""SIGHUP's reload of daemon.json (daemon/reload.Reloader) with the engine's parts faked."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from servin import errors
from servin.access.durations import Rate
from servin.core.events import Event
from servin.daemon.config import ConfigError, DaemonConfig, DefaultUlimit
from servin.daemon.reload import Reloader

pytestmark = pytest.mark.unit


class Engine:
    def __init__(self) -> None:
        self.registry: dict[str, tuple[str, ...]] = {}
        self.debug: list[bool] = []
        self.events: list[Event] = []
        self.transfers: dict[str, int] = {}
        self.labels: tuple[str, ...] = ()
        self.ulimits: tuple[DefaultUlimit, ...] = ()

    def configure_registry(self, *, insecure_registries: tuple[str, ...], mirrors: tuple[str, ...]) -> None:
        if any(not m.startswith("http") for m in mirrors):
            raise errors.InvalidArgument(f"invalid mirror: unsupported scheme in {mirrors[0]}")
        self.registry = {"insecure": insecure_registries, "mirrors": mirrors}

    def reloader(self, running: DaemonConfig, read: Callable[[], DaemonConfig]) -> Reloader:
        return Reloader(running=running, read=read, daemon_id="d1", configure_registry=self.configure_registry,
                        set_debug=self.debug.append, publish=self.events.append,
                        limit_transfers=self.limit_transfers, set_labels=self.set_labels,
                        set_default_ulimits=self.set_default_ulimits)

    def limit_transfers(self, *, downloads: int, uploads: int) -> None:
        self.transfers = {"downloads": downloads, "uploads": uploads}

    def set_labels(self, labels: tuple[str, ...]) -> None:
        self.labels = labels

    def set_default_ulimits(self, ulimits: tuple[DefaultUlimit, ...]) -> None:
        self.ulimits = ulimits


def test_reloadable_keys_are_applied_and_announced(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine()
    new = DaemonConfig(debug=True, registry_mirrors=("https://m.example",), insecure_registries=("10.0.0.0/8",),
                       data_root=DaemonConfig().data_root)
    applied = engine.reloader(DaemonConfig(), lambda: new).apply()
    assert applied.debug and applied.registry_mirrors == ("https://m.example",)
    assert engine.registry == {"insecure": ("10.0.0.0/8",), "mirrors": ("https://m.example",)}
    assert engine.debug == [True] and logging.getLogger().level == logging.DEBUG
    (ev,) = engine.events
    assert (ev.type, ev.action, ev.actor_id) == ("daemon", "reload", "d1")
    assert ev.attributes["registry-mirrors"] == "[https://m.example]" and ev.attributes["debug"] == "true"
    logging.getLogger().setLevel(logging.WARNING)


def test_other_keys_wait_for_a_restart_and_say_so(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine()
    with caplog.at_level(logging.WARNING):
        applied = engine.reloader(DaemonConfig(), lambda: DaemonConfig(cgroup_parent="other", icc=False)).apply()
    assert applied.cgroup_parent == "servin" and applied.icc is True
    assert "only when the daemon restarts: cgroup-parent, icc" in caplog.text


@pytest.mark.parametrize("failure", [
    ConfigError("unable to configure the Servin daemon with file /etc/servin/daemon.json: invalid character"),
    DaemonConfig(registry_mirrors=("ftp://m",)),
])
def test_a_bad_file_leaves_the_running_configuration(failure: object, caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine()
    running = DaemonConfig(registry_mirrors=("https://old",))

    def read() -> DaemonConfig:
        if isinstance(failure, Exception):
            raise failure
        assert isinstance(failure, DaemonConfig)
        return failure

    with caplog.at_level(logging.ERROR):
        assert engine.reloader(running, read).apply() is running
    assert "the running one stays" in caplog.text
    assert engine.registry == {} and engine.events == []


def test_access_settings_are_reloaded_and_a_bad_token_key_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine()
    seen: list[DaemonConfig] = []

    def configure_access(cfg: DaemonConfig) -> None:
        if cfg.token_jwks is not None:
            raise ValueError(f"token-jwks: cannot read {cfg.token_jwks}: No such file or directory")
        seen.append(cfg)

    new = DaemonConfig(api_rate_limit=Rate.parse("7/min"), auth_tcp="none")
    reloader = engine.reloader(DaemonConfig(), lambda: new)
    reloader.configure_access = configure_access
    applied = reloader.apply()
    assert seen == [new] and applied.api_rate_limit == Rate.parse("7/min") and applied.auth_tcp == "none"
    assert engine.events[0].attributes["api-rate-limit"] == "7/min"
    bad = DaemonConfig(api_rate_limit=Rate.parse("1/s"), token_jwks=Path("/nope.json"))
    reloader._read = lambda: bad
    with caplog.at_level(logging.ERROR):
        assert reloader.apply().api_rate_limit == Rate.parse("7/min")
    assert "token-jwks: cannot read /nope.json" in caplog.text and len(seen) == 1
    logging.getLogger().setLevel(logging.WARNING)
