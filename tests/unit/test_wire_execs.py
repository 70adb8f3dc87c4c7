"""Exec create bodies as clients send them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from servin import errors
from servin.api.wire import versions
from servin.api.wire.execs import parse_exec_create, parse_exec_start

pytestmark = pytest.mark.unit


def test_field_names_match_case_insensitively_as_in_go() -> None:
    # docker-py puts the config file's detach keys in "detachKeys"
    cfg = parse_exec_create({"Cmd": ["cat"], "detachKeys": "ctrl-p", "attachstdin": True, "TTY": True})
    assert cfg.detach_keys == "ctrl-p" and cfg.attach_stdin and cfg.tty
    assert parse_exec_create({"cmd": ["ls"]}).cmd == ("ls",)


@pytest.mark.parametrize("body, message", [
    ("ls", "string into Go value of type container.ExecOptions"),
    ({"Cmd": "ls"}, "string into Go struct field ExecOptions.Cmd of type []string"),
    ({"Cmd": ["ls"], "Tty": "yes"}, "string into Go struct field ExecOptions.Tty of type bool"),
    ({"Cmd": ["ls"], "ConsoleSize": [-1, 80]}, "number -1 into Go struct field ExecOptions.ConsoleSize of type uint"),
])
def test_wrong_types_are_go_s_errors(body, message) -> None:
    with pytest.raises(errors.InvalidArgument) as e:
        parse_exec_create(body)
    assert e.value.message == "invalid JSON: json: cannot unmarshal " + message


def test_an_empty_body_has_no_command() -> None:
    for body in (None, {}, {"Cmd": None}, {"Cmd": []}):
        with pytest.raises(errors.InvalidArgument) as e:
            parse_exec_create(body)
        assert e.value.message == "No exec command specified"


@pytest.fixture
def api_1_42() -> Iterator[None]:
    token = versions.use((1, 42))  # ConsoleSize is read from API 1.42 on (versions.py)
    yield
    versions.reset(token)


def test_console_size_is_go_s_two_uints(api_1_42: None) -> None:
    assert parse_exec_create({"Cmd": ["ls"], "ConsoleSize": [24, 80]}).console_size == (24, 80)
    assert parse_exec_create({"Cmd": ["ls"], "ConsoleSize": [24]}).console_size == (24, 0)
    assert parse_exec_create({"Cmd": ["ls"], "ConsoleSize": None}).console_size is None


def test_console_size_is_dropped_below_1_42() -> None:
    token = versions.use((1, 41))
    try:
        assert parse_exec_create({"Cmd": ["ls"], "ConsoleSize": [24, 80]}).console_size is None
        assert parse_exec_start({"Tty": True, "ConsoleSize": [24, 80]}) == (False, True, None)
    finally:
        versions.reset(token)
    token = versions.use((1, 42))
    try:
        assert parse_exec_start({"Tty": True, "ConsoleSize": [24, 80]}) == (False, True, (24, 80))
        assert parse_exec_start({"ConsoleSize": [24, 80]}) == (False, None, None)  # no console without a tty
    finally:
        versions.reset(token)


def test_missing_command_is_docker_s_error() -> None:
    with pytest.raises(errors.InvalidArgument, match="No exec command specified"):
        parse_exec_create({"Env": []})
