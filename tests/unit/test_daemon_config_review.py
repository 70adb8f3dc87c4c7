"""dockerd's rules that the first TLS work left out: --tlsverify said at all (even =false) turns TLS on and
--tls alone verifies clients; TLS that asks no client certificate off loopback is warned about; log-level
takes only dockerd's levels, with dockerd's words."""

from __future__ import annotations

import json
import logging

import pytest

from servin.cli.main import main
from servin.daemon.config import UNVERIFIED_TLS_WARNING, ConfigError, open_to_anyone
from servin.daemon.reload import Reloader
from tests.support.daemonconfig import cfg_of

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("argv", "file"), [(["--tlsverify=false"], None), ([], {"tlsverify": False})])
def test_explicit_tlsverify_false_still_turns_tls_on(tmp_path, argv, file):
    cfg = cfg_of(tmp_path, [*argv, "-H", "tcp://127.0.0.1"], file)
    assert cfg.tls is True and cfg.tlsverify is False and cfg.tls_on
    assert cfg.hosts == ("tcp://127.0.0.1:2376",)  # the TLS port, not 2375


@pytest.mark.parametrize(("argv", "file"), [(["--tls"], None), ([], {"tls": True})])
def test_tls_alone_verifies_clients_as_dockerd(tmp_path, argv, file):
    cfg = cfg_of(tmp_path, argv, file)
    assert cfg.tls is True and cfg.tlsverify is True


def test_tls_with_tlsverify_false_asks_no_certificate(tmp_path):
    cfg = cfg_of(tmp_path, ["--tls", "--tlsverify=false"])
    assert cfg.tls is True and cfg.tlsverify is False


@pytest.mark.parametrize(("argv", "file"), [(["--tls=false", "--tlsverify=false"], None),
                                            (["--tls=false"], {"tlsverify": False}),
                                            ([], {"tls": False, "tlsverify": True})])
def test_tls_false_with_any_tlsverify_contradicts(tmp_path, argv, file):
    with pytest.raises(ConfigError, match=r"--tlsverify \(true or false\) turns TLS on"):
        cfg_of(tmp_path, argv, file)


@pytest.mark.parametrize("host", ["tcp://0.0.0.0", "tcp://10.1.2.3:2376", "tcp://[::]:2376", "tcp://myhost:2376"])
def test_tls_without_client_certificates_off_loopback_is_open_to_anyone(tmp_path, host):
    cfg = cfg_of(tmp_path, ["--tlsverify=false", "-H", host])
    assert [open_to_anyone(cfg, h) for h in cfg.hosts] == [True]
    shown = UNVERIFIED_TLS_WARNING % cfg.hosts[0]
    assert cfg.hosts[0] in shown and "root" in shown and "--tlsverify" in shown


@pytest.mark.parametrize(("argv", "host"), [
    (["--tlsverify"], "tcp://0.0.0.0"),  # client certificates required
    (["--tls"], "tcp://0.0.0.0"),  # the same, as dockerd
    (["--tlsverify=false"], "tcp://127.0.0.1"),  # loopback
    (["--tlsverify=false"], "tcp://localhost"),
    (["--tlsverify=false"], "unix:///run/x.sock"),
    (["--tls=false"], "tcp://0.0.0.0"),  # plain TCP: its own warning, where it is served
])
def test_not_open_to_anyone(tmp_path, argv, host):
    cfg = cfg_of(tmp_path, [*argv, "-H", host])
    assert [open_to_anyone(cfg, h) for h in cfg.hosts] == [False]


@pytest.mark.parametrize("level", ["debug", "info", "warn", "error", "fatal"])
def test_log_levels_of_dockerd(tmp_path, level):
    assert cfg_of(tmp_path, ["--log-level", level]).log_level == level
    assert cfg_of(tmp_path, [], {"log-level": level}).log_level == level


def test_log_level_is_case_blind_as_dockerd(tmp_path):
    assert cfg_of(tmp_path, ["-l", "WARN"]).log_level == "warn"
    cfg = cfg_of(tmp_path, [], {"log-level": "Debug"})
    assert cfg.log_level == "debug" and cfg.debug is True


@pytest.mark.parametrize("level", ["verbose", "warning", "trace", "", "info ", 3])
def test_other_log_levels_are_refused_in_dockerds_words(tmp_path, level):
    with pytest.raises(ConfigError, match=f"^invalid logging level: {level}$"):
        cfg_of(tmp_path, [], {"log-level": level})
    if isinstance(level, str):
        with pytest.raises(ConfigError, match=f"^invalid logging level: {level}$"):
            cfg_of(tmp_path, ["--log-level", level])


def test_servin_daemon_says_which_level(tmp_path, capsys):
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps({"log-level": "loud"}))
    assert main(["daemon", "--config-file", str(conf)]) == 1
    assert capsys.readouterr().err == "servin: invalid logging level: loud\n"
    conf.write_text("{}")
    assert main(["daemon", "--config-file", str(conf), "-l", "trace"]) == 1
    assert capsys.readouterr().err == "servin: invalid logging level: trace\n"


def test_a_reload_with_a_bad_level_keeps_the_running_one(tmp_path, caplog):
    running = cfg_of(tmp_path, [], {"log-level": "warn"})
    reloader = Reloader(running=running, read=lambda: cfg_of(tmp_path, [], {"log-level": "chatty"}), daemon_id="d1",
                        configure_registry=lambda **_: None, set_debug=lambda _: None, publish=lambda _: None)
    with caplog.at_level(logging.ERROR):
        assert reloader.apply() is running
    assert "invalid logging level: chatty" in caplog.text
