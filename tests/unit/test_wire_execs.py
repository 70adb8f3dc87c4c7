"""Exec create bodies as clients send them."""

from __future__ import annotations

import pytest

from servin import errors
from servin.api.wire.execs import parse_exec_create

pytestmark = pytest.mark.unit


def test_field_names_match_case_insensitively_as_in_go() -> None:
    # docker-py puts the config file's detach keys in "detachKeys"
    cfg = parse_exec_create({"Cmd": ["cat"], "detachKeys": "ctrl-p", "attachstdin": True, "TTY": True})
    assert cfg.detach_keys == "ctrl-p" and cfg.attach_stdin and cfg.tty
    assert parse_exec_create({"cmd": "ls"}).cmd == ("ls",)


def test_missing_command_is_docker_s_error() -> None:
    with pytest.raises(errors.InvalidArgument, match="No exec command specified"):
        parse_exec_create({"Env": []})
