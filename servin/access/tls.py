"""The daemon's TLS: a server context as dockerd builds one (TLS 1.2+, forward-secret AEAD ciphers),
requiring a client certificate signed by the CA when verification is on (--tlsverify)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

# TLS 1.2 suites Go's crypto/tls offers by default (ECDHE with AES-GCM or ChaCha20); 1.3's are always on.
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


class TLSConfigError(Exception):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerTLS:
    cert: Path
    key: Path
    ca: Path
    verify: bool  # require a client certificate signed by `ca`


def server_context(tls: ServerTLS) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    try:
        ctx.load_cert_chain(tls.cert, tls.key, password=_no_passphrase)  # never a terminal prompt
    except FileNotFoundError as exc:
        raise TLSConfigError(f"could not load X509 key pair: open {exc.filename}: no such file or directory"
                             ) from None
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(f"could not load X509 key pair ({tls.cert}, {tls.key}): {exc}") from None
    if tls.verify:
        try:
            ctx.load_verify_locations(cafile=tls.ca)
        except FileNotFoundError:
            raise TLSConfigError(f"could not read CA certificate \"{tls.ca}\": no such file or directory"
                                 ) from None
        except (ssl.SSLError, OSError) as exc:
            raise TLSConfigError(f"failed to append certificates from PEM file: \"{tls.ca}\": {exc}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _no_passphrase() -> bytes:
    raise ssl.SSLError("the key is encrypted: the daemon cannot ask for its passphrase")
