"""Bearer tokens: JWTs the daemon issues (HS256, with a secret in the data root) and JWTs from an
outside issuer whose public keys are configured as PEM files or a JWKS file (RS256, ES256).

The JOSE library is PyJWT: maintained (regular releases, prompt security fixes), the most widely used
JWT library for Python, small, and it does its RSA and EC signatures with `cryptography`, which Servin
already depends on for TLS. Its decode checks signatures, `exp`, `nbf`, `aud` and `iss` itself.

The algorithm a token may use is decided here, never by the token: HS256 only with the daemon's own
secret (so an HS256 token "signed" with a public key as its HMAC secret, the classic key-confusion
attack, fails its signature check), RS256 and ES256 only with configured public keys of that kind,
and nothing else (`alg: none` included) at all.
"""

from __future__ import annotations

import datetime
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from servin import atomicfile, errors
from servin.access.scopes import Scope

log = logging.getLogger(__name__)

ISSUER = AUDIENCE = "servin"  # of the daemon's own tokens
LEEWAY = datetime.timedelta(seconds=30)  # clock skew allowed on exp and nbf
SECRET_BYTES = 32
BAD_SIGNATURE = "bearer token signature is invalid"
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenClaims:
    subject: str
    scope: Scope
    expires: datetime.datetime
    issuer: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Verifier:
    algorithm: str  # RS256 or ES256
    key: PublicKey
    kid: str | None
    source: str  # the file it came from, for messages


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class TokenAuthority:
    """Issues the daemon's tokens and verifies every bearer token."""

    def __init__(self, secret: bytes, *, outside: Sequence[_Verifier] = (), audience: str = AUDIENCE,
                 issuer: str | None = None, clock: Callable[[], datetime.datetime] = _utcnow) -> None:
        if len(secret) < SECRET_BYTES:
            raise ValueError(f"the token secret must be at least {SECRET_BYTES} bytes")
        self._secret = secret
        self._outside = tuple(outside)
        self.audience = audience
        self.issuer = issuer
        self._clock = clock

    @classmethod
    def load(cls, secret_path: Path, *, public_keys: Sequence[Path] = (), jwks: Path | None = None,
             audience: str = AUDIENCE, issuer: str | None = None) -> TokenAuthority:
        """The daemon's secret (made, 0600, on first use) and the outside issuers' keys; ValueError naming
        the file that does not load."""
        try:
            secret = secret_path.read_bytes()
        except FileNotFoundError:
            secret = secrets.token_bytes(SECRET_BYTES)
            secret_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomicfile.write_bytes(secret_path, secret, mode=0o600)
        outside = [_pem_verifier(p) for p in public_keys] + (_jwks_verifiers(jwks) if jwks else [])
        return cls(secret, outside=outside, audience=audience, issuer=issuer)

    def issue(self, *, subject: str, scope: Scope, ttl: datetime.timedelta) -> tuple[str, datetime.datetime]:
        now = self._clock().replace(microsecond=0)
        expires = now + ttl
        claims = {"sub": subject, "scope": str(scope), "iat": now, "nbf": now, "exp": expires,
                  "jti": secrets.token_hex(16), "iss": ISSUER, "aud": AUDIENCE}
        return jwt.encode(claims, self._secret, algorithm="HS256"), expires

    def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; AuthenticationFailed saying why not."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise errors.AuthenticationFailed("malformed bearer token") from None
        alg = header.get("alg")
        if alg == "HS256":
            claims = self._decode(token, self._secret, "HS256", AUDIENCE, ISSUER,
                                  ("exp", "iat", "nbf", "sub", "scope", "iss", "aud"))
        elif alg in ("RS256", "ES256") and self._outside:
            claims = self._outside_claims(token, alg, header.get("kid"))
        else:
            raise errors.AuthenticationFailed(f"bearer token algorithm {alg!r} is not accepted")
        return TokenClaims(subject=str(claims["sub"]), scope=_scope_of(claims), issuer=str(claims.get("iss", "")),
                           expires=datetime.datetime.fromtimestamp(claims["exp"], datetime.timezone.utc))

    def _outside_claims(self, token: str, alg: str, kid: object) -> dict[str, Any]:
        candidates = [v for v in self._outside if v.algorithm == alg and (kid is None or v.kid in (None, kid))]
        if not candidates:
            raise errors.AuthenticationFailed(f"no configured {alg} key verifies this bearer token")
        for v in candidates:  # PyJWT checks the signature first: any other complaint is the right key's
            try:
                return self._decode(token, v.key, alg, self.audience, self.issuer, ("exp", "sub", "aud"))
            except errors.AuthenticationFailed as exc:
                if exc.message != BAD_SIGNATURE:
                    raise
        raise errors.AuthenticationFailed(BAD_SIGNATURE)

    def _decode(self, token: str, key: bytes | PublicKey, alg: str, audience: str, issuer: str | None,
                required: Sequence[str]) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[alg], audience=audience, issuer=issuer, leeway=LEEWAY,
                options={"require": list(required), "verify_iat": False})
            return claims
        except jwt.ExpiredSignatureError:
            raise errors.AuthenticationFailed("bearer token has expired") from None
        except jwt.ImmatureSignatureError:
            raise errors.AuthenticationFailed("bearer token is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise errors.AuthenticationFailed(f"bearer token is not for this audience ({audience})") from None
        except jwt.InvalidIssuerError:
            raise errors.AuthenticationFailed("bearer token is from another issuer") from None
        except jwt.InvalidSignatureError:
            raise errors.AuthenticationFailed(BAD_SIGNATURE) from None
        except jwt.MissingRequiredClaimError as exc:
            raise errors.AuthenticationFailed(f"bearer token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise errors.AuthenticationFailed(f"invalid bearer token: {exc}") from None


def _scope_of(claims: dict[str, Any]) -> Scope:
    """`scope` is one of read, write, admin, or a space-separated list (OAuth's form): the highest known."""
    words = str(claims.get("scope", "")).split()
    known = [s for s in Scope if str(s) in words]
    if not known:
        raise errors.AuthenticationFailed("bearer token has no scope Servin knows (read, write, admin)")
    return max(known)


def _algorithm_of(key: object, source: str) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise ValueError(f"{source}: only RSA and P-256 EC public keys verify tokens (RS256, ES256)")


def _pem_verifier(path: Path) -> _Verifier:
    """A public key, or the key of a certificate, in PEM."""
    try:
        data = path.read_bytes()
        if b"CERTIFICATE" in data:
            key: object = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except OSError as exc:
        raise ValueError(f"token-public-keys: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ValueError(f"token-public-keys: {path} is not a PEM public key or certificate: {exc}") from None
    alg = _algorithm_of(key, f"token-public-keys: {path}")
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return _Verifier(algorithm=alg, key=key, kid=None, source=str(path))


def _jwks_verifiers(path: Path) -> list[_Verifier]:
    """The signing keys of a JWKS file (RS256 and ES256; keys for encryption or other algorithms are skipped
    with a warning)."""
    try:
        keys = json.loads(path.read_text())["keys"]
    except OSError as exc:
        raise ValueError(f"token-jwks: cannot read {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"token-jwks: {path} is not a JWKS (a JSON object with \"keys\"): {exc}") from None
    out = []
    for item in keys:
        kid = item.get("kid") if isinstance(item, dict) else None
        if not isinstance(item, dict) or item.get("use", "sig") != "sig" or item.get("alg", "RS256") not in (
                "RS256", "ES256"):
            log.warning("token-jwks: %s: key %s skipped: not an RS256 or ES256 signing key", path, kid)
            continue
        try:
            jwk = jwt.PyJWK.from_dict(item)
        except jwt.PyJWTError as exc:
            raise ValueError(f"token-jwks: {path}: key {kid}: {exc}") from None
        key = jwk.key
        alg = _algorithm_of(key, f"token-jwks: {path}: key {kid}")
        if item.get("alg", alg) != alg:
            raise ValueError(f"token-jwks: {path}: key {kid} is marked {item['alg']} but is a {alg} key")
        out.append(_Verifier(algorithm=alg, key=key, kid=kid, source=str(path)))
    if not out:
        raise ValueError(f"token-jwks: {path} holds no RS256 or ES256 signing key")
    return out
