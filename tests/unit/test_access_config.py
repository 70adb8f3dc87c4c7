"""The access settings: each daemon.json key and flag honoured, bad values refused by name, and the
defaults (TCP requires a credential, the unix socket does not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from servin.access.durations import Rate
from servin.daemon.config import ConfigError
from tests.support.daemonconfig import cfg_of

pytestmark = pytest.mark.unit


def test_defaults(tmp_path: Path) -> None:
    cfg = cfg_of(tmp_path, [])
    assert (cfg.auth_tcp, cfg.auth_unix) == ("required", "none")
    assert (cfg.api_rate_limit, cfg.auth_failure_limit) == (Rate.parse("100/s"), Rate.parse("10/min"))
    assert (cfg.token_public_keys, cfg.token_jwks, cfg.token_audience, cfg.token_issuer) == ((), None, "servin", "")
    assert (cfg.audit_log, cfg.audit_log_max_size, cfg.audit_log_max_files) == (None, 100 << 20, 5)


FILE = {"auth-tcp": "none", "auth-unix": "required", "api-rate-limit": "50/min", "auth-failure-limit": "3/min",
        "token-public-keys": ["/k/a.pem", "/k/b.pem"], "token-jwks": "/k/jwks.json", "token-audience": "https://s",
        "token-issuer": "https://idp", "audit-log": "/log/audit.log", "audit-log-max-size": "10m",
        "audit-log-max-files": 3}
FLAGS = ["--auth-tcp", "none", "--auth-unix", "required", "--api-rate-limit", "50/min", "--auth-failure-limit",
         "3/min", "--token-public-key", "/k/a.pem", "--token-public-key", "/k/b.pem", "--token-jwks", "/k/jwks.json",
         "--token-audience", "https://s", "--token-issuer", "https://idp", "--audit-log", "/log/audit.log",
         "--audit-log-max-size", "10m", "--audit-log-max-files", "3"]


@pytest.mark.parametrize("argv, file", [([], FILE), (FLAGS, {})])
def test_every_key_and_flag(tmp_path: Path, argv: list[str], file: dict[str, Any]) -> None:
    cfg = cfg_of(tmp_path, argv, file)
    assert (cfg.auth_tcp, cfg.auth_unix) == ("none", "required")
    assert (cfg.api_rate_limit, cfg.auth_failure_limit) == (Rate.parse("50/min"), Rate.parse("3/min"))
    assert cfg.token_public_keys == (Path("/k/a.pem"), Path("/k/b.pem")) and cfg.token_jwks == Path("/k/jwks.json")
    assert (cfg.token_audience, cfg.token_issuer) == ("https://s", "https://idp")
    assert (cfg.audit_log, cfg.audit_log_max_size, cfg.audit_log_max_files) == (Path("/log/audit.log"), 10 << 20, 3)


@pytest.mark.parametrize("file, words", [
    ({"auth-tcp": "optional"}, 'auth-tcp must be "required" or "none"'),
    ({"auth-unix": True}, 'auth-unix must be "required" or "none"'),
    ({"api-rate-limit": "fast"}, "api-rate-limit: invalid rate"),
    ({"auth-failure-limit": 10}, "auth-failure-limit must be a rate"),
    ({"token-public-keys": "/a.pem"}, None), ({"token-public-keys": [1]}, "token-public-keys must be a list of paths"),
    ({"token-jwks": ""}, "token-jwks must be a path"), ({"token-audience": ""}, "token-audience must be a string"),
    ({"token-issuer": 5}, "token-issuer must be a string"), ({"audit-log": 1}, "audit-log must be a path"),
    ({"audit-log-max-size": "big"}, "audit-log-max-size must be a size"),
    ({"audit-log-max-size": 0}, "audit-log-max-size must be a size"),
    ({"audit-log-max-files": 0}, "audit-log-max-files must be a positive integer"),
    ({"auth": "none"}, "don't match any configuration option: auth"),
])
def test_bad_values_are_refused_by_name(tmp_path: Path, file: dict[str, Any], words: str | None) -> None:
    if words is None:
        assert cfg_of(tmp_path, [], file).token_public_keys == (Path("/a.pem"),)
        return
    with pytest.raises(ConfigError, match=words):
        cfg_of(tmp_path, [], file)


def test_a_key_both_as_flag_and_in_the_file_is_a_conflict(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"auth-tcp: \(from flag: none, from file: required\)"):
        cfg_of(tmp_path, ["--auth-tcp", "none"], {"auth-tcp": "required"})
