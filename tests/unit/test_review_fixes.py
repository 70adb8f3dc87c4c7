"""Edges found in review: atomic files never write through what is planted beside them, an encrypted
TLS key fails the start instead of prompting, a reload that cannot parse its file keeps the running
configuration, and a passed descriptor that is no socket is refused in dockerd's words."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from servin import atomicfile
from servin.access.tls import ServerTLS, TLSConfigError, server_context
from servin.daemon import systemd
from servin.daemon.config import DaemonConfig
from servin.daemon.reload import Reloader

pytestmark = pytest.mark.unit


def test_atomic_write_has_its_mode_whatever_the_umask_and_ignores_planted_links(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    os.symlink(victim, tmp_path / f".key.pem.tmp{os.getpid()}")  # the old, guessable temp name
    old = os.umask(0)
    try:
        atomicfile.write_bytes(tmp_path / "key.pem", b"secret", mode=0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "key.pem").stat().st_mode) == 0o600
    assert (tmp_path / "key.pem").read_bytes() == b"secret" and victim.read_text() == "untouched"


def test_an_encrypted_key_fails_the_start_instead_of_prompting(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    (tmp_path / "cert.pem").write_text("")
    with pytest.raises(TLSConfigError, match="could not load X509 key pair"):
        server_context(ServerTLS(cert=tmp_path / "cert.pem", key=tmp_path / "key.pem", ca=tmp_path / "ca.pem",
                                 verify=False))


@pytest.mark.parametrize("failure", [ValueError("invalid literal for int()"), OSError(13, "Permission denied")])
def test_a_reload_that_cannot_read_its_file_keeps_the_running_configuration(failure: Exception) -> None:
    running = DaemonConfig(registry_mirrors=("https://old",))
    published: list[object] = []

    def read() -> DaemonConfig:
        raise failure

    reloader = Reloader(running=running, read=read, daemon_id="d", configure_registry=lambda **_: None,
                        set_debug=lambda _: None, publish=published.append)
    assert reloader.apply() is running and published == []


def test_a_passed_descriptor_that_is_no_socket_is_refused(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(systemd.ActivationError, match=f"^failed to listen on systemd activated file: fd {fd}$"):
            systemd.listeners("fd://", [fd])
    finally:
        os.close(fd)
