"""The packaged systemd units and daemon.json work together as installed (docs/install.md)."""

from __future__ import annotations

import argparse
import configparser
import shlex
from pathlib import Path

import pytest

from servin.daemon.config import DEFAULT_SOCKET, add_daemon_flags, resolve

pytestmark = pytest.mark.unit

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"


def unit(name: str) -> configparser.ConfigParser:
    c = configparser.ConfigParser(strict=False, interpolation=None)
    c.optionxform = str  # type: ignore[assignment,method-assign]
    c.read(PACKAGING / name)
    return c


def test_the_service_is_socket_activated_and_notifies() -> None:
    service, sock = unit("servin.service"), unit("servin.socket")
    assert service["Service"]["Type"] == "notify"
    assert service["Service"]["KillMode"] == "process"  # containers survive a daemon restart
    assert "servin.socket" in service["Unit"]["Requires"]
    assert sock["Socket"]["ListenStream"] == DEFAULT_SOCKET.removeprefix("unix://")


def test_the_service_command_line_and_the_packaged_daemon_json_agree() -> None:
    argv = shlex.split(unit("servin.service")["Service"]["ExecStart"])
    assert argv[1:3] == ["daemon", "-H"] and argv[3] == "fd://"
    p = argparse.ArgumentParser()
    add_daemon_flags(p)
    cfg = resolve(p.parse_args([*argv[2:], "--config-file", str(PACKAGING / "daemon.json")]))
    assert cfg.hosts == ("fd://",)  # no "the following directives are specified both as a flag..."
