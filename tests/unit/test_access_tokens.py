"""Bearer tokens: the daemon's own (HS256) and an outside issuer's (RS256 and ES256 from PEM files or a
JWKS file); expired, not yet valid, wrong audience or issuer, wrong signature, `alg: none` and the
HS256-with-a-public-key confusion are all refused."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from servin import errors
from servin.access.scopes import Scope
from servin.access.tokens import TokenAuthority

pytestmark = pytest.mark.unit

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
HOUR = datetime.timedelta(hours=1)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def claims(**over: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"sub": "ci@example", "scope": "read", "exp": NOW + HOUR, "nbf": NOW - HOUR,
                         "iat": NOW, "aud": "servin"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def own(tmp_path: Path) -> TokenAuthority:
    return TokenAuthority.load(tmp_path / "access" / "token-secret")


def outside(tmp_path: Path, rsa_key: rsa.RSAPrivateKey, **kw: Any) -> TokenAuthority:
    p = tmp_path / "issuer.pem"
    p.write_bytes(pem(rsa_key))
    return TokenAuthority.load(tmp_path / "token-secret", public_keys=[p], **kw)


def test_the_daemon_issues_and_verifies_its_own_tokens(tmp_path: Path) -> None:
    authority = own(tmp_path)
    token, expires = authority.issue(subject="key:abc", scope=Scope.WRITE, ttl=HOUR)
    c = authority.verify(token)
    assert (c.subject, c.scope, c.issuer, c.expires) == ("key:abc", Scope.WRITE, "servin", expires)
    secret = tmp_path / "access" / "token-secret"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600 and len(secret.read_bytes()) == 32
    assert own(tmp_path).verify(token).subject == "key:abc"  # the same secret after a restart
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    body = jwt.decode(token, options={"verify_signature": False})
    assert {"sub", "scope", "iat", "nbf", "exp", "jti", "iss", "aud"} <= set(body)


def test_a_token_of_another_daemon_is_refused(tmp_path: Path) -> None:
    token, _ = own(tmp_path / "a").issue(subject="x", scope=Scope.READ, ttl=HOUR)
    with pytest.raises(errors.AuthenticationFailed, match="signature is invalid"):
        own(tmp_path / "b").verify(token)


def test_an_expired_token_is_refused(tmp_path: Path) -> None:
    authority = own(tmp_path)
    secret = (tmp_path / "access" / "token-secret").read_bytes()
    token = jwt.encode(claims(exp=NOW - HOUR, iss="servin"), secret, algorithm="HS256")
    with pytest.raises(errors.AuthenticationFailed, match="expired"):
        authority.verify(token)


def test_a_token_not_valid_yet_is_refused(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(claims(nbf=NOW + HOUR), rsa_key, algorithm="RS256")
    with pytest.raises(errors.AuthenticationFailed, match="not valid yet"):
        outside(tmp_path, rsa_key).verify(token)


@pytest.mark.parametrize("aud", ["someone-else", None])
def test_a_wrong_or_missing_audience_is_refused(tmp_path: Path, rsa_key: rsa.RSAPrivateKey, aud: str | None) -> None:
    token = jwt.encode(claims(aud=aud), rsa_key, algorithm="RS256")
    with pytest.raises(errors.AuthenticationFailed, match="audience|aud"):
        outside(tmp_path, rsa_key).verify(token)


def test_a_configured_audience_and_issuer_are_checked(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    authority = outside(tmp_path, rsa_key, audience="https://servin.example", issuer="https://idp.example")
    good = jwt.encode(claims(aud="https://servin.example", iss="https://idp.example", scope="openid write"),
                      rsa_key, algorithm="RS256")
    c = authority.verify(good)
    assert (c.subject, c.scope, c.issuer) == ("ci@example", Scope.WRITE, "https://idp.example")
    with pytest.raises(errors.AuthenticationFailed, match="another issuer"):
        authority.verify(jwt.encode(claims(aud="https://servin.example", iss="https://evil.example"), rsa_key,
                                    algorithm="RS256"))
    with pytest.raises(errors.AuthenticationFailed, match="audience"):
        authority.verify(jwt.encode(claims(iss="https://idp.example"), rsa_key, algorithm="RS256"))


def test_an_outside_token_signed_by_another_key_is_refused(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(errors.AuthenticationFailed, match="signature is invalid"):
        outside(tmp_path, rsa_key).verify(jwt.encode(claims(), other, algorithm="RS256"))


def test_a_tampered_token_is_refused(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(claims(scope="read"), rsa_key, algorithm="RS256")
    head, _body, sig = token.split(".")
    forged = ".".join([head, b64(json.dumps(claims(scope="admin"), default=lambda t: int(t.timestamp())).encode()),
                       sig])
    with pytest.raises(errors.AuthenticationFailed, match="signature is invalid"):
        outside(tmp_path, rsa_key).verify(forged)


def unsigned(alg: str, body: dict[str, Any]) -> str:
    return f"{b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{b64(json.dumps(body).encode())}."


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none_is_refused(tmp_path: Path, rsa_key: rsa.RSAPrivateKey, alg: str) -> None:
    body = {"sub": "x", "scope": "admin", "exp": int((NOW + HOUR).timestamp()), "aud": "servin", "iss": "servin"}
    with pytest.raises(errors.AuthenticationFailed, match="not accepted"):
        outside(tmp_path, rsa_key).verify(unsigned(alg, body))


def test_hs256_signed_with_the_public_key_is_refused(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    """The key-confusion attack: the attacker knows the public key and uses it as an HMAC secret."""
    body = {"sub": "x", "scope": "admin", "exp": int((NOW + HOUR).timestamp()), "nbf": int(NOW.timestamp()),
            "iat": int(NOW.timestamp()), "aud": "servin", "iss": "servin", "jti": "1"}
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64(json.dumps(body).encode())}"
    sig = hmac.new(pem(rsa_key), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(errors.AuthenticationFailed, match="signature is invalid"):
        outside(tmp_path, rsa_key).verify(f"{signing_input}.{b64(sig)}")


def test_rs256_is_refused_when_no_outside_issuer_is_configured(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(errors.AuthenticationFailed, match="'RS256' is not accepted"):
        own(tmp_path).verify(jwt.encode(claims(), rsa_key, algorithm="RS256"))


def test_es256_from_a_pem_file(tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey) -> None:
    p = tmp_path / "ec.pem"
    p.write_bytes(pem(ec_key))
    authority = TokenAuthority.load(tmp_path / "s", public_keys=[p])
    assert authority.verify(jwt.encode(claims(scope="admin"), ec_key, algorithm="ES256")).scope == Scope.ADMIN


def test_es256_from_a_jwks_file_chosen_by_kid(tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey,
                                               rsa_key: rsa.RSAPrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": [
        {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(other.public_key())), "kid": "old", "use": "sig"},
        {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "k2", "alg": "ES256"},
        {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "enc", "use": "enc"},
    ]}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    authority = TokenAuthority.load(tmp_path / "s", jwks=path)
    token = jwt.encode(claims(scope="write"), ec_key, algorithm="ES256", headers={"kid": "k2"})
    assert authority.verify(token).scope == Scope.WRITE
    assert authority.verify(jwt.encode(claims(), ec_key, algorithm="ES256")).scope == Scope.READ  # no kid: each key
    wrong_kid = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "old"})
    with pytest.raises(errors.AuthenticationFailed, match="signature is invalid"):
        authority.verify(wrong_kid)
    with pytest.raises(errors.AuthenticationFailed, match="no configured RS256 key"):  # the enc key is skipped
        authority.verify(jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "enc"}))


def test_a_token_without_a_known_scope_is_refused(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(errors.AuthenticationFailed, match="no scope"):
        outside(tmp_path, rsa_key).verify(jwt.encode(claims(scope="root"), rsa_key, algorithm="RS256"))


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "Bearer"])
def test_malformed_tokens_are_refused(tmp_path: Path, token: str) -> None:
    with pytest.raises(errors.AuthenticationFailed):
        own(tmp_path).verify(token)


def test_bad_key_files_are_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ValueError, match=f"token-public-keys: {bad}"):
        TokenAuthority.load(tmp_path / "s", public_keys=[bad])
    with pytest.raises(ValueError, match="token-public-keys: .*cannot read"):
        TokenAuthority.load(tmp_path / "s", public_keys=[tmp_path / "missing.pem"])
    p384 = tmp_path / "p384.pem"
    p384.write_bytes(pem(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(ValueError, match="only RSA and P-256"):
        TokenAuthority.load(tmp_path / "s", public_keys=[p384])
    jwks = tmp_path / "jwks.json"
    jwks.write_text("[]")
    with pytest.raises(ValueError, match=f"token-jwks: {jwks}"):
        TokenAuthority.load(tmp_path / "s", jwks=jwks)
