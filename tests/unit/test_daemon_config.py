"""daemon/config.resolve: flags over daemon.json over defaults, with dockerd's error wording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servin.daemon.config import DEFAULT_SOCKET, ConfigError, DaemonConfig, resolve
from tests.support.daemonconfig import parse


def daemon_json(tmp_path: Path, data: object) -> Path:
    p = tmp_path / "daemon.json"
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def test_defaults_with_an_empty_file(tmp_path):
    cfg = resolve(parse([], daemon_json(tmp_path, {})))
    assert cfg == DaemonConfig()
    assert cfg.hosts == (DEFAULT_SOCKET,)


def test_flags(tmp_path):
    cfg = resolve(parse(["-H", "unix:///tmp/a.sock", "-H", "tcp://127.0.0.1:2375", "--data-root", "/d",
                         "--cgroup-parent", "x", "-D", "-G", "docker"], daemon_json(tmp_path, {})))
    assert cfg.hosts == ("unix:///tmp/a.sock", "tcp://127.0.0.1:2375")
    assert cfg.data_root == Path("/d")
    assert cfg.cgroup_parent == "x" and cfg.debug is True and cfg.group == "docker"


def test_file_values(tmp_path):
    f = daemon_json(tmp_path, {"hosts": ["unix:///tmp/b.sock"], "data-root": "/data", "exec-root": "/run/x",
                               "log-level": "warn", "seed-busybox": True})
    cfg = resolve(parse([], f))
    assert cfg.hosts == ("unix:///tmp/b.sock",)
    assert cfg.data_root == Path("/data") and cfg.exec_root == Path("/run/x")
    assert cfg.log_level == "warn" and cfg.seed_busybox is True and cfg.debug is False


def test_flag_and_file_for_different_settings_merge(tmp_path):
    cfg = resolve(parse(["--data-root", "/flag"], daemon_json(tmp_path, {"exec-root": "/file"})))
    assert (cfg.data_root, cfg.exec_root) == (Path("/flag"), Path("/file"))


def test_log_level_debug_turns_debug_on(tmp_path):
    assert resolve(parse(["-l", "debug"], daemon_json(tmp_path, {}))).debug is True


def test_conflict_has_dockerds_message(tmp_path):
    f = daemon_json(tmp_path, {"data-root": "/file", "debug": False})
    with pytest.raises(ConfigError) as e:
        resolve(parse(["--data-root", "/flag", "-D"], f))
    assert str(e.value) == (
        f"unable to configure the Servin daemon with file {f}: the following directives are specified "
        "both as a flag and in the configuration file: data-root: (from flag: /flag, from file: /file), "
        "debug: (from flag: true, from file: false)")


def test_conflicting_hosts_print_like_go(tmp_path):
    f = daemon_json(tmp_path, {"hosts": ["unix:///b"]})
    with pytest.raises(ConfigError, match=r"hosts: \(from flag: \[unix:///a\], from file: \[unix:///b\]\)"):
        resolve(parse(["-H", "unix:///a"], f))


def test_unknown_keys(tmp_path):
    f = daemon_json(tmp_path, {"storage-driver": "overlay2", "bogus": 1, "debug": True})
    with pytest.raises(ConfigError) as e:
        resolve(parse([], f))
    assert str(e.value) == (f"unable to configure the Servin daemon with file {f}: the following directives "
                            "don't match any configuration option: bogus, storage-driver")


def test_bad_json(tmp_path):
    f = daemon_json(tmp_path, '{"debug": true,')
    with pytest.raises(ConfigError, match=f"unable to configure the Servin daemon with file {f}: "):
        resolve(parse([], f))


def test_not_an_object(tmp_path):
    with pytest.raises(ConfigError, match="not a JSON object"):
        resolve(parse([], daemon_json(tmp_path, "[1]")))


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        resolve(parse([], tmp_path / "nope.json"))


def test_bad_host(tmp_path):
    with pytest.raises(ConfigError, match="invalid daemon host address: http://x"):
        resolve(parse(["-H", "http://x"], daemon_json(tmp_path, {})))


def test_hosts_as_a_string_in_the_file(tmp_path):
    assert resolve(parse([], daemon_json(tmp_path, {"hosts": "unix:///c"}))).hosts == ("unix:///c",)


def test_network_flags_and_file_keys(tmp_path):
    cfg = resolve(parse(["--bridge", "br9", "--bip", "10.9.0.1/24", "--icc=false",
                         "--default-address-pool", "base=10.10.0.0/16,size=24"], daemon_json(tmp_path, {})))
    assert (cfg.bridge, cfg.bip, cfg.icc) == ("br9", "10.9.0.1/24", False)
    assert cfg.default_address_pools == ({"base": "10.10.0.0/16", "size": 24},)
    cfg = resolve(parse([], daemon_json(tmp_path, {
        "bridge": "br8", "bip": "10.8.0.1/16", "icc": False,
        "default-address-pools": [{"base": "10.20.0.0/16", "size": 24}]})))
    assert (cfg.bridge, cfg.bip, cfg.icc) == ("br8", "10.8.0.1/16", False)
    assert cfg.default_address_pools == ({"base": "10.20.0.0/16", "size": 24},)
    assert DaemonConfig().bridge == "servin0" and DaemonConfig().icc is True


def test_mtu_from_flag_or_file(tmp_path):
    assert resolve(parse(["--mtu", "1400"], daemon_json(tmp_path, {}))).mtu == 1400
    assert resolve(parse([], daemon_json(tmp_path, {"mtu": 9000}))).mtu == 9000
    with pytest.raises(ConfigError, match="invalid MTU"):
        resolve(parse([], daemon_json(tmp_path, {"mtu": "big"})))
