"""The client's TLS as the docker CLI sets it up: TLS 1.2+, the server's certificate checked against the CA
and the host name in the URL when verifying, a client certificate presented when one is given."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from servin.errors import InvalidArgument

# TLS 1.2 suites of Go's crypto/tls (ECDHE with AES-GCM or ChaCha20); 1.3's are always on.
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSConfig:
    """`verify`: check the server's certificate (against `ca_cert`, or the system's CAs without one) and
    that it names the host connected to; off, the connection is encrypted but the server unchecked
    (`--tls` without `--tlsverify`). `client_cert`: (certificate, key) files presented to the daemon."""

    verify: bool = True
    ca_cert: Path | None = None
    client_cert: tuple[Path, Path] | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(CIPHERS)
        if self.verify:
            ctx.check_hostname = True
            ctx.verify_mode = ssl.CERT_REQUIRED
            if self.ca_cert is None:
                ctx.load_default_certs()
            else:
                _load_ca(ctx, self.ca_cert)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.client_cert is not None:
            _load_pair(ctx, *self.client_cert)
        return ctx


def _load_ca(ctx: ssl.SSLContext, ca: Path) -> None:
    try:
        ctx.load_verify_locations(cafile=str(ca))
    except FileNotFoundError:
        raise InvalidArgument(f"could not read CA certificate \"{ca}\": open {ca}: no such file or directory"
                              ) from None
    except (ssl.SSLError, OSError) as exc:
        raise InvalidArgument(f"failed to append certificates from PEM file: \"{ca}\": {exc}") from None


def _load_pair(ctx: ssl.SSLContext, cert: Path, key: Path) -> None:
    try:
        ctx.load_cert_chain(str(cert), str(key), password=_no_passphrase)  # never a terminal prompt
    except FileNotFoundError as exc:
        raise InvalidArgument(f"could not load X509 key pair: open {exc.filename}: no such file or directory"
                              ) from None
    except (ssl.SSLError, OSError) as exc:
        raise InvalidArgument(f"could not load X509 key pair ({cert}, {key}): {exc}") from None


def _no_passphrase() -> bytes:
    raise ssl.SSLError("the key is encrypted: the client cannot ask for its passphrase")
