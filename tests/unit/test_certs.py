"""`servin certs generate`: the files the docker CLI and dockerd expect, a chain that verifies, the SANs,
the key modes, and no silent replacement of a CA."""

from __future__ import annotations

import ipaddress
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from servin.cli.main import main

pytestmark = pytest.mark.unit

FILES = {"ca.pem", "ca-key.pem", "server-cert.pem", "server-key.pem", "cert.pem", "key.pem"}


def load(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_generate_writes_a_verifiable_set(tmp_path, capsys):
    d = tmp_path / "certs"
    assert main(["certs", "generate", str(d), "--host", "servin.example", "--host", "10.1.2.3"]) == 0
    assert {p.name for p in d.iterdir()} == FILES
    for key in ("ca-key.pem", "server-key.pem", "key.pem"):
        assert stat.S_IMODE((d / key).stat().st_mode) == 0o600
    server, client = load(d / "server-cert.pem"), load(d / "cert.pem")
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "servin.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                       ipaddress.ip_address("10.1.2.3")]
    assert list(server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
    assert list(client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    for leaf in ("server-cert.pem", "cert.pem"):
        res = subprocess.run(["openssl", "verify", "-CAfile", str(d / "ca.pem"), str(d / leaf)],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


def test_an_existing_ca_is_kept_unless_forced(tmp_path, capsys):
    assert main(["certs", "generate", str(tmp_path)]) == 0
    ca = (tmp_path / "ca.pem").read_bytes()
    capsys.readouterr()
    assert main(["certs", "generate", str(tmp_path)]) == 1
    assert "already exists: refusing to replace the CA (--force to do it)" in capsys.readouterr().err
    assert (tmp_path / "ca.pem").read_bytes() == ca
    assert main(["certs", "generate", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "ca.pem").read_bytes() != ca


def test_a_bad_host_is_refused(tmp_path, capsys):
    assert main(["certs", "generate", str(tmp_path), "--host", "a b"]) == 1
    assert "invalid --host 'a b'" in capsys.readouterr().err
    assert not (tmp_path / "ca.pem").exists()
