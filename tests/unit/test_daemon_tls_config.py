"""dockerd's TLS flags and daemon.json keys: defaults, ports, conflicts, and the refusal of plain TCP
off loopback unless --tls=false says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from servin.cli.main import main
from servin.daemon.config import DEFAULT_CERT_DIR, ConfigError
from tests.support.daemonconfig import cfg_of

pytestmark = pytest.mark.unit


def test_defaults_are_off_and_files_sit_beside_daemon_json(tmp_path):
    cfg = cfg_of(tmp_path, [])
    assert cfg.tls is None and cfg.tlsverify is False and not cfg.tls_on
    assert cfg.tlscacert == DEFAULT_CERT_DIR / "ca.pem" == Path("/etc/servin/ca.pem")
    assert cfg.tlscert == Path("/etc/servin/server-cert.pem")
    assert cfg.tlskey == Path("/etc/servin/server-key.pem")


def test_tlsverify_implies_tls_and_the_port_2376(tmp_path):
    cfg = cfg_of(tmp_path, ["--tlsverify", "-H", "tcp://0.0.0.0", "--tlscacert", "/c/ca.pem",
                            "--tlscert", "/c/s.pem", "--tlskey", "/c/k.pem"])
    assert cfg.tls_on and cfg.tlsverify
    assert cfg.hosts == ("tcp://0.0.0.0:2376",)
    assert (cfg.tlscacert, cfg.tlscert, cfg.tlskey) == (Path("/c/ca.pem"), Path("/c/s.pem"), Path("/c/k.pem"))


def test_default_ports_and_address(tmp_path):
    assert cfg_of(tmp_path, ["-H", "tcp://127.0.0.1"]).hosts == ("tcp://127.0.0.1:2375",)
    assert cfg_of(tmp_path, ["--tls", "-H", "tcp://localhost"]).hosts == ("tcp://localhost:2376",)
    assert cfg_of(tmp_path, ["-H", "tcp://"]).hosts == ("tcp://127.0.0.1:2375",)
    assert cfg_of(tmp_path, ["-H", "tcp://[::1]"]).hosts == ("tcp://[::1]:2375",)
    assert cfg_of(tmp_path, ["-H", "tcp://127.0.0.1:9999"]).hosts == ("tcp://127.0.0.1:9999",)


def test_file_keys(tmp_path):
    cfg = cfg_of(tmp_path, ["-H", "tcp://10.1.2.3"], {"tlsverify": True, "tlscacert": "/x/ca.pem",
                                                       "tlscert": "/x/c.pem", "tlskey": "/x/k.pem"})
    assert cfg.tlsverify and cfg.hosts == ("tcp://10.1.2.3:2376",) and cfg.tlscacert == Path("/x/ca.pem")
    assert cfg_of(tmp_path, [], {"tls": True}).tls is True


def test_flag_and_file_conflict_is_dockerds_error(tmp_path):
    with pytest.raises(ConfigError, match="the following directives are specified both as a flag and in the "
                       r"configuration file: tlsverify: \(from flag: true, from file: true\)"):
        cfg_of(tmp_path, ["--tlsverify"], {"tlsverify": True})
    with pytest.raises(ConfigError, match=r"tlscert: \(from flag: /a, from file: /b\)"):
        cfg_of(tmp_path, ["--tlscert", "/a"], {"tlscert": "/b"})


def test_bad_values_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="tlsverify must be true or false"):
        cfg_of(tmp_path, [], {"tlsverify": "yes"})
    with pytest.raises(ConfigError, match="tlscacert must be a path"):
        cfg_of(tmp_path, [], {"tlscacert": 3})
    with pytest.raises(ConfigError, match="contradict"):
        cfg_of(tmp_path, ["--tls=false", "--tlsverify"])
    with pytest.raises(ConfigError, match="bad port"):
        cfg_of(tmp_path, ["-H", "tcp://127.0.0.1:x"])


@pytest.mark.parametrize("host", ["tcp://0.0.0.0:2375", "tcp://10.0.0.1", "tcp://[::]:2375", "tcp://myhost:1"])
def test_plain_tcp_off_loopback_is_refused_with_the_way_out(tmp_path, host):
    with pytest.raises(ConfigError) as exc:
        cfg_of(tmp_path, ["-H", host])
    msg = str(exc.value)
    assert "without TLS" in msg and "--tlsverify" in msg and "--tls=false" in msg and "certs generate" in msg


def test_plain_tcp_off_loopback_with_explicit_tls_false(tmp_path):
    assert cfg_of(tmp_path, ["--tls=false", "-H", "tcp://0.0.0.0"]).hosts == ("tcp://0.0.0.0:2375",)
    cfg = cfg_of(tmp_path, ["-H", "tcp://0.0.0.0:2375"], {"tls": False})
    assert cfg.tls is False and not cfg.tls_on


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:2375", "tcp://127.1.2.3:1", "tcp://localhost", "tcp://[::1]:5"])
def test_plain_tcp_on_loopback_keeps_working(tmp_path, host):
    assert cfg_of(tmp_path, ["-H", host]).tls is None


def test_servin_daemon_refuses_before_starting(tmp_path, capsys):
    conf = tmp_path / "daemon.json"
    conf.write_text("{}")
    assert main(["daemon", "--config-file", str(conf), "-H", "tcp://0.0.0.0:2375"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("servin: refusing to listen on tcp://0.0.0.0:2375 without TLS")
