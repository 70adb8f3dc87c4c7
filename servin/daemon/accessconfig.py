"""The access settings' flags and daemon.json keys (who must authenticate where, rate limits, token
keys, the audit log): their names, flags and checks, kept beside config.py's."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from servin.access.durations import Rate

ACCESS_KEYS = {
    "auth_tcp": "auth-tcp", "auth_unix": "auth-unix", "api_rate_limit": "api-rate-limit",
    "auth_failure_limit": "auth-failure-limit", "token_public_keys": "token-public-keys",
    "token_jwks": "token-jwks", "token_audience": "token-audience", "token_issuer": "token-issuer",
    "audit_log": "audit-log", "audit_log_max_size": "audit-log-max-size", "audit_log_max_files": "audit-log-max-files",
}
AUTH_MODES = ("required", "none")
_SIZE = re.compile(r"(?P<n>[0-9]+)(?P<unit>[kmg]?)b?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def add_access_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--auth-tcp", dest="auth_tcp", choices=AUTH_MODES,
                   help="TCP listeners: require a key, token or verified client certificate (default required)")
    p.add_argument("--auth-unix", dest="auth_unix", choices=AUTH_MODES,
                   help="unix sockets: require a key or token too (default none: the socket's mode decides)")
    p.add_argument("--api-rate-limit", dest="api_rate_limit",
                   help="requests per key, token or certificate without a limit of its own (default 100/s)")
    p.add_argument("--auth-failure-limit", dest="auth_failure_limit",
                   help="failed authentications per client address before 429 (default 10/min)")
    p.add_argument("--token-public-key", dest="token_public_keys", action="append",
                   help="PEM public key (or certificate) of an outside token issuer (RS256, ES256); repeatable")
    p.add_argument("--token-jwks", dest="token_jwks", help="JWKS file of an outside token issuer")
    p.add_argument("--token-audience", dest="token_audience",
                   help='the "aud" outside tokens must carry (default servin)')
    p.add_argument("--token-issuer", dest="token_issuer", help='the "iss" outside tokens must carry')
    p.add_argument("--audit-log", dest="audit_log", help="audit log file (default <data-root>/access/audit.log)")
    p.add_argument("--audit-log-max-size", dest="audit_log_max_size",
                   help="rotate the audit log at this size (default 100m)")
    p.add_argument("--audit-log-max-files", dest="audit_log_max_files", type=int,
                   help="audit log files kept, the current one included (default 5)")


def convert_access(name: str, value: Any) -> Any:
    """A flag's or daemon.json's value as DaemonConfig holds it; ValueError naming the key."""
    key = ACCESS_KEYS[name]
    if name in ("auth_tcp", "auth_unix"):
        if value not in AUTH_MODES:
            raise ValueError(f'{key} must be "required" or "none", not {value!r}')
        return value
    if name in ("api_rate_limit", "auth_failure_limit"):
        if not isinstance(value, str):
            raise ValueError(f'{key} must be a rate like "100/s" or "600/min"')
        try:
            return Rate.parse(value)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    if name == "token_public_keys":
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"{key} must be a list of paths")
        return tuple(Path(v) for v in value)
    if name in ("token_jwks", "audit_log"):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{key} must be a path")
        return Path(value)
    if name in ("token_audience", "token_issuer"):
        if not isinstance(value, str) or (name == "token_audience" and not value):
            raise ValueError(f"{key} must be a string")
        return value
    if name == "audit_log_max_size":
        m = _SIZE.fullmatch(str(value)) if isinstance(value, str | int) and not isinstance(value, bool) else None
        if m is None or int(m["n"]) < 1:
            raise ValueError(f'{key} must be a size like "100m", "512k" or a number of bytes, not {value!r}')
        return int(m["n"]) * _UNITS[m["unit"].lower()]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:  # audit_log_max_files
        raise ValueError(f"{key} must be a positive integer, not {value!r}")
    return value
