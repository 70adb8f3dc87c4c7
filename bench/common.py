"""What the side-by-side benchmarks share: the daemons to measure and a docker CLI aimed at each."""

from __future__ import annotations

import http.client
import os
import socket
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def daemons(hosts: list[str], start_servin: bool) -> tuple[list[tuple[str, str]], Any]:
    """(name, url) of every daemon to measure and the throwaway Servin started for it (or None; the
    caller cleans it up). Each host is [NAME=]URL; with no host and no --start-servin, DOCKER_HOST,
    else a throwaway Servin."""
    if not hosts and not start_servin:
        hosts, start_servin = ([os.environ["DOCKER_HOST"]], False) if os.environ.get("DOCKER_HOST") else ([], True)
    out: list[tuple[str, str]] = []
    servin = None
    if start_servin:
        sys.path.insert(0, str(REPO))
        from tests.support.daemon import ServinDaemon

        servin = ServinDaemon()
        servin.start()
        out.append(("servin", servin.host))
    for i, spec in enumerate(hosts):
        name, sep, url = spec.partition("=")
        out.append((name, url) if sep and "://" not in name else (f"daemon{i + 1}", spec))
    return out, servin


def cli_env(url: str, config_dir: Path | str) -> dict[str, str]:
    """The environment of a docker CLI talking to `url` (no contexts or credential helpers of ~/.docker)."""
    env = {**os.environ, "DOCKER_HOST": url, "DOCKER_CONFIG": str(config_dir)}
    env.pop("DOCKER_CONTEXT", None)
    return env


class UnixConnection(http.client.HTTPConnection):
    """An HTTP connection to a daemon's unix socket."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)
