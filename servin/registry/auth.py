"""Registry credentials: the X-Registry-Auth header, WWW-Authenticate challenges, bearer tokens."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from servin import errors

CLIENT_ID = "docker"  # dockerd's OAuth client id


@dataclass(frozen=True, slots=True)
class AuthConfig:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth refresh token from a previous login
    registry_token: str = ""  # a bearer token used as is
    server_address: str = ""

    @property
    def empty(self) -> bool:
        return not (self.username or self.identity_token or self.registry_token)


def from_dict(data: Any) -> AuthConfig:
    if not isinstance(data, dict):
        return AuthConfig()
    d = {str(k).lower(): v for k, v in data.items()}
    username, password = str(d.get("username") or ""), str(d.get("password") or "")
    if not username and d.get("auth"):  # the "auth" field of config.json: base64(user:password)
        try:
            username, _, password = base64.b64decode(str(d["auth"])).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            pass
    return AuthConfig(username=username, password=password, identity_token=str(d.get("identitytoken") or ""),
                      registry_token=str(d.get("registrytoken") or ""),
                      server_address=str(d.get("serveraddress") or ""))


def decode_header(value: str | None) -> AuthConfig:
    """X-Registry-Auth: base64url JSON (padding optional; dockerd also tolerates standard base64).

    A header that does not decode is ignored, as dockerd does for pulls (anonymous access)."""
    if not value:
        return AuthConfig()
    raw = value.strip()
    raw += "=" * (-len(raw) % 4)
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            return from_dict(json.loads(decode(raw)))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            continue
    return AuthConfig()


_CHALLENGE_RE = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def parse_challenges(header: str) -> list[tuple[str, dict[str, str]]]:
    """``Bearer realm="…",service="…"`` → [("bearer", {"realm": …, "service": …})] (several allowed)."""
    out: list[tuple[str, dict[str, str]]] = []
    s = header or ""
    pos = 0
    while pos < len(s):
        m = re.compile(r"\s*,?\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)").match(s, pos)
        if not m:
            break
        scheme = m.group(1).lower()
        pos = m.end()
        params: dict[str, str] = {}
        while pos < len(s):
            pm = _CHALLENGE_RE.match(s, pos)
            if not pm or pm.end() == pos:
                break
            # a bare token followed by a space is the next scheme, not a parameter
            params[pm.group(1).lower()] = pm.group(2).replace('\\"', '"') if pm.group(2) is not None else pm.group(3)
            pos = pm.end()
        out.append((scheme, params))
    return out


@dataclass
class Token:
    value: str
    expires: float
    refresh_token: str = ""

    @property
    def valid(self) -> bool:
        return time.monotonic() < self.expires


def token_from_response(data: Any) -> Token:
    if not isinstance(data, dict):
        raise errors.Unauthorized("unable to decode token response")
    value = data.get("token") or data.get("access_token")
    if not isinstance(value, str) or not value:
        raise errors.Unauthorized("authorization server did not include a token in the response")
    try:
        expires_in = max(int(data.get("expires_in") or 60), 60)  # distribution's minimum
    except (TypeError, ValueError):
        expires_in = 60
    return Token(value=value, expires=time.monotonic() + expires_in - 5,
                 refresh_token=str(data.get("refresh_token") or ""))
