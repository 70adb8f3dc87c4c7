"""The daemon settings a SIGHUP reloads beside debug and the registries, as dockerd has them:
labels, max-concurrent-downloads/uploads and default-ulimits (flags, daemon.json, validation in
dockerd's words, the reload and its event), and default ulimits in a container's spec."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from servin.api.wire import system as system_wire
from servin.core.events import Event
from servin.core.host import HostFacts
from servin.core.model import Ulimit
from servin.core.spec import with_default_ulimits
from servin.daemon.config import ConfigError, DaemonConfig, DefaultUlimit, resolve
from servin.daemon import wiring
from servin.daemon.reload import Reloader
from tests.support.daemonconfig import parse

pytestmark = pytest.mark.unit


def resolved(tmp_path: Path, data: dict[str, Any], *flags: str) -> DaemonConfig:
    f = tmp_path / "daemon.json"
    f.write_text(json.dumps(data))
    return resolve(parse(list(flags), f))


def refused(tmp_path: Path, data: dict[str, Any], *flags: str) -> str:
    with pytest.raises(ConfigError) as e:
        resolved(tmp_path, data, *flags)
    return str(e.value)


# ---- labels


def test_labels_from_the_file_and_from_repeated_flags(tmp_path: Path) -> None:
    assert resolved(tmp_path, {"labels": ["env=prod", "zone=a"]}).labels == ("env=prod", "zone=a")
    assert resolved(tmp_path, {}, "--label", "env=prod", "--label", "empty=").labels == ("env=prod", "empty=")
    assert DaemonConfig().labels == ()


def test_a_key_given_twice_with_one_value_is_kept_once(tmp_path: Path) -> None:
    assert resolved(tmp_path, {"labels": ["a=1", "b=2", "a=1"]}).labels == ("a=1", "b=2")


@pytest.mark.parametrize(("labels", "message"), [
    (["novalue"], "bad attribute format: novalue"),
    (["a=1", "a=2"], "conflict labels for a=2 and a=1"),
    (["com.docker.x=1"], "label com.docker.x=1 is not allowed: the namespaces com.docker.*, io.docker.*, and "
                         "org.dockerproject.* are reserved for internal use"),
    ("a=1", "labels must be a list of strings"),
])
def test_bad_labels_are_refused_in_dockerds_words(tmp_path: Path, labels: Any, message: str) -> None:
    assert refused(tmp_path, {"labels": labels}) == message


def test_a_bad_label_flag_is_refused(tmp_path: Path) -> None:
    assert refused(tmp_path, {}, "--label", "x=1", "--label", "x=2") == "conflict labels for x=2 and x=1"


def test_labels_from_flag_and_file_conflict(tmp_path: Path) -> None:
    assert "labels: (from flag: [a=1], from file: [b=2])" in refused(tmp_path, {"labels": ["b=2"]}, "--label", "a=1")


# ---- max-concurrent-downloads / uploads


def test_transfer_limits_default_to_dockerds(tmp_path: Path) -> None:
    cfg = resolved(tmp_path, {})
    assert (cfg.max_concurrent_downloads, cfg.max_concurrent_uploads) == (3, 5)


def test_transfer_limits_from_file_and_flags(tmp_path: Path) -> None:
    cfg = resolved(tmp_path, {"max-concurrent-downloads": 8}, "--max-concurrent-uploads", "2")
    assert (cfg.max_concurrent_downloads, cfg.max_concurrent_uploads) == (8, 2)


def test_zero_means_the_default_as_dockerds_reload(tmp_path: Path) -> None:
    cfg = resolved(tmp_path, {"max-concurrent-downloads": 0, "max-concurrent-uploads": 0})
    assert (cfg.max_concurrent_downloads, cfg.max_concurrent_uploads) == (3, 5)


@pytest.mark.parametrize(("data", "message"), [
    ({"max-concurrent-downloads": -1}, "invalid max concurrent downloads: -1"),
    ({"max-concurrent-uploads": -2}, "invalid max concurrent uploads: -2"),
    ({"max-concurrent-downloads": "4"}, "max-concurrent-downloads must be an integer"),
    ({"max-concurrent-uploads": True}, "max-concurrent-uploads must be an integer"),
])
def test_bad_transfer_limits_are_refused(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    assert refused(tmp_path, data) == message


def test_a_negative_flag_is_refused(tmp_path: Path) -> None:
    assert refused(tmp_path, {}, "--max-concurrent-downloads=-1") == "invalid max concurrent downloads: -1"


# ---- default-ulimits


def test_default_ulimits_as_dockerd_writes_them(tmp_path: Path) -> None:
    cfg = resolved(tmp_path, {"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024},
                                                  "nproc": {"soft": 500, "hard": -1}}})
    assert cfg.default_ulimits == (DefaultUlimit(name="nofile", soft=1024, hard=2048),
                                   DefaultUlimit(name="nproc", soft=500, hard=-1))


def test_default_ulimit_flags_the_last_of_a_name_wins(tmp_path: Path) -> None:
    cfg = resolved(tmp_path, {}, "--default-ulimit", "nofile=100:200", "--default-ulimit", "core=0",
                   "--default-ulimit", "nofile=1024:2048")
    assert cfg.default_ulimits == (DefaultUlimit(name="core", soft=0, hard=0),
                                   DefaultUlimit(name="nofile", soft=1024, hard=2048))


@pytest.mark.parametrize(("flag", "message"), [
    ("nofile", "invalid ulimit argument: nofile"),
    ("as=10", "invalid ulimit type: as"),
    ("nofile=2048:1024", "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"),
    ("nofile=-1:1024", "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: 1024"),
    ("nofile=1:2:3", "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`"),
    ("nofile=many", "invalid ulimit argument: nofile=many: the limits must be integers"),
])
def test_bad_default_ulimit_flags_are_refused_in_go_units_words(tmp_path: Path, flag: str, message: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        resolved(tmp_path, {}, "--default-ulimit", flag)
    assert f"argument --default-ulimit: {message}" in capsys.readouterr().err


@pytest.mark.parametrize(("value", "message"), [
    ({"nofile": {"Name": "nofile", "Soft": 10}}, 'default-ulimits: nofile must be {"Name": "nofile", "Soft": N, '
                                                 '"Hard": N}'),
    ({"nofile": {"Name": "nproc", "Soft": 10, "Hard": 10}}, "default-ulimits: the entry nofile names nproc"),
    ({"bogus": {"Soft": 1, "Hard": 1}}, "invalid ulimit type: bogus"),
    ({"nofile": {"Soft": 9, "Hard": 8}}, "ulimit soft limit must be less than or equal to hard limit: 9 > 8"),
    (["nofile=1"], "default-ulimits must be a map of ulimits"),
])
def test_bad_default_ulimits_in_the_file_are_refused(tmp_path: Path, value: Any, message: str) -> None:
    assert refused(tmp_path, {"default-ulimits": value}) == message


def test_default_ulimits_from_flag_and_file_conflict(tmp_path: Path) -> None:
    message = refused(tmp_path, {"default-ulimits": {"core": {"Soft": 0, "Hard": 0}}}, "--default-ulimit", "nofile=8")
    assert "default-ulimits: (from flag: [nofile=8:8], from file: " in message


def test_a_containers_own_ulimit_wins_over_the_default() -> None:
    own = (Ulimit(name="nofile", soft=10, hard=20),)
    defaults = (Ulimit(name="core", soft=0, hard=0), Ulimit(name="nofile", soft=1024, hard=2048))
    assert with_default_ulimits(own, defaults) == (own[0], defaults[0])
    assert with_default_ulimits((), defaults) == defaults


# ---- reload


class Parts:
    """The engine's parts a reload changes, recording what they were given."""

    def __init__(self) -> None:
        self.calls: dict[str, Any] = {}
        self.events: list[Event] = []

    def reloader(self, running: DaemonConfig, new: DaemonConfig | Exception) -> Reloader:
        def read() -> DaemonConfig:
            if isinstance(new, Exception):
                raise new
            return new

        def record(name: str) -> Any:
            return lambda *args, **kwargs: self.calls.__setitem__(name, kwargs or args[0])

        return Reloader(running=running, read=read, daemon_id="d1", configure_registry=record("registry"),
                        set_debug=record("debug"), publish=self.events.append,
                        limit_transfers=record("transfers"), set_labels=record("labels"),
                        set_default_ulimits=record("ulimits"))


NEW = DaemonConfig(labels=("env=prod", "zone=a"), max_concurrent_downloads=7, max_concurrent_uploads=1,
                   default_ulimits=(DefaultUlimit(name="nofile", soft=1024, hard=2048),))


def test_a_reload_applies_labels_transfer_limits_and_default_ulimits() -> None:
    parts = Parts()
    applied = parts.reloader(DaemonConfig(), NEW).apply()
    assert (applied.labels, applied.max_concurrent_downloads, applied.max_concurrent_uploads,
            applied.default_ulimits) == (NEW.labels, 7, 1, NEW.default_ulimits)
    assert parts.calls["labels"] == ("env=prod", "zone=a")
    assert parts.calls["transfers"] == {"downloads": 7, "uploads": 1}
    assert parts.calls["ulimits"] == NEW.default_ulimits
    (ev,) = parts.events
    assert {k: ev.attributes[k] for k in ("labels", "max-concurrent-downloads", "max-concurrent-uploads",
                                          "default-ulimits")} == {
        "labels": '["env=prod","zone=a"]', "max-concurrent-downloads": "7", "max-concurrent-uploads": "1",
        "default-ulimits": '["nofile=1024:2048"]'}


def test_keys_left_out_of_the_file_go_back_to_their_defaults() -> None:
    parts = Parts()
    applied = parts.reloader(NEW, DaemonConfig()).apply()
    assert (applied.labels, applied.max_concurrent_downloads, applied.max_concurrent_uploads,
            applied.default_ulimits) == ((), 3, 5, ())
    assert parts.events[0].attributes["labels"] == "[]"


def test_a_bad_value_leaves_the_running_configuration(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "daemon.json"
    f.write_text(json.dumps({"labels": ["a=1"]}))
    args = parse([], f)
    parts = Parts()
    running = resolve(args)
    reloader = Reloader(running=running, read=lambda: resolve(args), daemon_id="d1",
                        configure_registry=lambda **_: None, set_debug=lambda _: None, publish=parts.events.append,
                        limit_transfers=lambda **kw: parts.calls.__setitem__("transfers", kw),
                        set_labels=lambda v: parts.calls.__setitem__("labels", v),
                        set_default_ulimits=lambda v: parts.calls.__setitem__("ulimits", v))
    for bad in ({"labels": ["a=1"], "max-concurrent-downloads": -1}, {"labels": ["a=1", "a=2"]},
                {"default-ulimits": {"nofile": {"Soft": 2, "Hard": 1}}}):
        f.write_text(json.dumps(bad))
        with caplog.at_level(logging.ERROR):
            assert reloader.apply() is running
    assert parts.calls == {} and parts.events == []
    assert "the running one stays: invalid max concurrent downloads: -1" in caplog.text
    assert "the running one stays: conflict labels for a=2 and a=1" in caplog.text
    assert "the running one stays: ulimit soft limit must be less than or equal to hard limit: 2 > 1" in caplog.text


def test_docker_info_shows_the_labels() -> None:
    facts = HostFacts(id="x", hostname="h", kernel_version="6", operating_system="L", os_version="1",
                      architecture="x86_64", go_arch="amd64", ncpu=1, mem_total=1, data_root="/d", cgroup_version=2,
                      cgroup_driver="cgroupfs", debug=False, swap_limit=True, start_time_ns=0)
    counts = {"running": 0, "paused": 0, "stopped": 0}
    assert system_wire.info(facts, counts, 0)["Labels"] == []
    assert system_wire.info(replace(facts, labels=("env=prod",)), counts, 0)["Labels"] == ["env=prod"]


def test_the_engine_gets_them_as_its_ulimits() -> None:
    assert wiring.ulimits(NEW.default_ulimits) == (Ulimit(name="nofile", soft=1024, hard=2048),)
