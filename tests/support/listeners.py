"""TCP listeners for end-to-end daemons: a free port, certificates from `servin certs generate`, and a
daemon on its socket and on a TLS port that requires a client certificate."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.daemon import ServinDaemon, running_daemon


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def generate(directory: Path, *hosts: str) -> Path:
    """ca.pem, server-cert.pem, server-key.pem, cert.pem, key.pem in `directory`, valid for `hosts` too."""
    args = [a for h in hosts for a in ("--host", h)]
    subprocess.run([sys.executable, "-m", "servin.cli.main", "certs", "generate", str(directory), *args],
                   check=True, capture_output=True)
    return directory


@contextlib.contextmanager
def running_tls_daemon(certs: Path) -> Iterator[tuple[ServinDaemon, int]]:
    """A daemon on its unix socket and on 127.0.0.1:<port> with --tlsverify and the certificates of `certs`."""
    port = free_port()
    with running_daemon(("-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(certs / "ca.pem"),
                         "--tlscert", str(certs / "server-cert.pem"),
                         "--tlskey", str(certs / "server-key.pem"))) as d:
        yield d, port
