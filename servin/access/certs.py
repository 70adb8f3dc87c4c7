"""`servin certs generate`: a CA, a server certificate and a client certificate in the file names
dockerd and the docker CLI expect (ca.pem, server-cert.pem/server-key.pem, cert.pem/key.pem)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import stat
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from servin import atomicfile

ALWAYS_HOSTS = ("localhost", "127.0.0.1")
VALID_DAYS = 365
CA_VALID_DAYS = 3650


class CertsError(Exception):
    pass


def generate(directory: Path, hosts: Sequence[str] = (), *, force: bool = False,
             days: int = VALID_DAYS) -> list[Path]:
    """Write the CA, server and client pairs into `directory`; refuse to replace a CA unless `force`."""
    ca_path = directory / "ca.pem"
    if (ca_path.exists() or (directory / "ca-key.pem").exists()) and not force:
        raise CertsError(f"{ca_path} already exists: refusing to replace the CA (--force to do it)")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    _check_private(directory)
    names = list(dict.fromkeys([*ALWAYS_HOSTS, *hosts]))
    ca_key = _key()
    ca_name = _name("Servin CA")
    ca = (_builder(ca_name, ca_name, ca_key, CA_VALID_DAYS)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    server_key, client_key = _key(), _key()
    server = _leaf(ca, ca_key, server_key, names[0], days, ExtendedKeyUsageOID.SERVER_AUTH,
                   x509.SubjectAlternativeName([_san(n) for n in names]))
    client = _leaf(ca, ca_key, client_key, "client", days, ExtendedKeyUsageOID.CLIENT_AUTH, None)
    files = {
        "ca-key.pem": (_pem_key(ca_key), 0o600), "ca.pem": (_pem_cert(ca), 0o644),
        "server-key.pem": (_pem_key(server_key), 0o600), "server-cert.pem": (_pem_cert(server), 0o644),
        "key.pem": (_pem_key(client_key), 0o600), "cert.pem": (_pem_cert(client), 0o644),
    }
    for name, (data, mode) in files.items():
        atomicfile.write_bytes(directory / name, data, mode)
    return [directory / name for name in files]


def _check_private(directory: Path) -> None:
    """Keys go only into a directory no one else can write: another user could swap them or read them."""
    st = directory.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise CertsError(f"{directory} is not a directory")
    if st.st_uid not in (0, os.geteuid()):
        try:
            owner = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            owner = str(st.st_uid)
        raise CertsError(f"refusing to write keys into {directory}: it belongs to user {owner}, not to you or "
                         "root; use a directory of your own")
    if st.st_mode & 0o022:
        raise CertsError(f"refusing to write keys into {directory}: it is writable by "
                         f"{'others' if st.st_mode & 0o002 else 'its group'} (mode "
                         f"{stat.S_IMODE(st.st_mode):04o}); `chmod go-w {directory}` or use a private directory")


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        if not name or "/" in name or " " in name:
            raise CertsError(f"invalid --host {name!r}: a DNS name or an IP address") from None
        return x509.DNSName(name)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Servin"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
             days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days)))


def _leaf(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, key: ec.EllipticCurvePrivateKey,
          common_name: str, days: int, usage: x509.ObjectIdentifier,
          san: x509.SubjectAlternativeName | None) -> x509.Certificate:
    b = (_builder(_name(common_name), ca.subject, key, days)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_agreement=True,
                                      content_commitment=False, data_encipherment=False,
                                      key_cert_sign=False, crl_sign=False,
                                      encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        critical=False))
    if san is not None:
        b = b.add_extension(san, critical=False)
    return b.sign(ca_key, hashes.SHA256())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
