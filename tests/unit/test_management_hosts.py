"""management-hosts / --management-host: the management API's own listener, on by default at
127.0.0.1:8080, off when empty, reserved against published ports, and serving /api/ only."""

from __future__ import annotations

import pytest

from servin.daemon import listeners
from servin.daemon.config import DEFAULT_MANAGEMENT_HOST, ConfigError, DaemonConfig, resolve
from tests.unit.test_daemon_config import daemon_json, parse


def test_default_is_loopback_8080(tmp_path):
    assert resolve(parse([], daemon_json(tmp_path, {}))).management_hosts == (DEFAULT_MANAGEMENT_HOST,)
    assert DEFAULT_MANAGEMENT_HOST == "tcp://127.0.0.1:8080"


def test_flag_and_file(tmp_path):
    cfg = resolve(parse(["--management-host", "tcp://127.0.0.1:9090"], daemon_json(tmp_path, {})))
    assert cfg.management_hosts == ("tcp://127.0.0.1:9090",)
    cfg = resolve(parse([], daemon_json(tmp_path, {"management-hosts": ["tcp://127.0.0.1"]})))
    assert cfg.management_hosts == ("tcp://127.0.0.1:2375",)


@pytest.mark.parametrize("argv,file", [(["--management-host", ""], {}), ([], {"management-hosts": []}),
                                       ([], {"management-hosts": [""]})])
def test_empty_turns_it_off(tmp_path, argv, file):
    assert resolve(parse(argv, daemon_json(tmp_path, file))).management_hosts == ()


@pytest.mark.parametrize("file,message", [
    ({"management-hosts": ["fd://"]}, "invalid management-host address: fd://"),
    ({"management-hosts": 8080}, "management-hosts must be a list of addresses"),
    ({"management-hosts": ["tcp://0.0.0.0:8080"]}, "refusing to listen on tcp://0.0.0.0:8080 without TLS"),
])
def test_refused(tmp_path, file, message):
    with pytest.raises(ConfigError, match=message):
        resolve(parse([], daemon_json(tmp_path, file)))


def test_its_port_is_reserved():
    cfg = DaemonConfig()
    reserved = listeners.reserved_ports(cfg.hosts + cfg.management_hosts)
    assert [(r.host_ip, r.port) for r in reserved] == [("127.0.0.1", 8080)]
