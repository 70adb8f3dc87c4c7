"""core/names: dockerd's name patterns for containers, volumes and networks, and Go's %q."""

from __future__ import annotations

import pytest

from servin import errors
from servin.core import names

CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"


@pytest.mark.parametrize("name", ["ab", "a1", "A_b.c-d", "0x", "a" * 300])
def test_restricted_names(name):
    assert names.is_restricted_name(name)


@pytest.mark.parametrize("name", ["", "a", "-a", "_a", ".a", "a b", "a/b", "ü1", "ab\n", "ab\r\n", "\nab",
                                  "a\x00b", "ab ", "ab\t"])
def test_not_restricted_names(name):
    # Go's `$` is the end of the text: Python's `$` would take "ab\n"
    assert not names.is_restricted_name(name)


def test_container_names_take_one_leading_slash():
    assert names.check_container_name("/web") == "web"
    assert names.check_container_name("web") == "web"
    for bad in ("//web", "web\n", "/web\n"):
        with pytest.raises(errors.InvalidArgument) as e:
            names.check_container_name(bad)
        assert e.value.message == f"Invalid container name ({bad}), only {CHARS} are allowed"


@pytest.mark.parametrize("name, shown", [
    ("abc\n", '"abc\\n"'), ("a b", '"a b"'), ("x/../y", '"x/../y"'), ('q"', '"q\\""'), ("-a", '"-a"'),
    ("tab\there", '"tab\\there"'), ("bell\x07", '"bell\\a"'), ("nul\x00", '"nul\\x00"'), ("del\x7f", '"del\\x7f"'),
    ("ü!", '"ü!"'), ("nbsp\xa0", '"nbsp\\u00a0"'), ("ls\u2028", '"ls\\u2028"'), ("b\\s", '"b\\\\s"'),
])
def test_volume_names_are_refused_with_dockerd_s_quoting(name, shown):
    with pytest.raises(errors.InvalidArgument) as e:
        names.check_volume_name(name)
    assert e.value.message == (
        f"create {name}: {shown} includes invalid characters for a local volume name, only "
        f'"{CHARS}" are allowed. If you intended to pass a host directory, use absolute path')


def test_a_one_byte_volume_name_is_too_short():
    with pytest.raises(errors.InvalidArgument) as e:
        names.check_volume_name("a")
    assert e.value.message == ("create a: volume name is too short, names should be at least two "
                               "alphanumeric characters")
    with pytest.raises(errors.InvalidArgument, match="includes invalid characters"):
        names.check_volume_name("ü")  # two bytes in Go's len


def test_volume_names_that_pass():
    names.check_volume_name("data")
    names.check_volume_name("0" * 64)


@pytest.mark.parametrize("name", ["n", "my_net", "app.default-1", "test 01", "ü", "a/b", "-x", " padded "])
def test_network_names_are_anything_but_blank_as_in_libnetwork(name):
    names.check_network_name(name)


@pytest.mark.parametrize("name", ["x\n", "a\x00b", "\x1bname", "tab\there", "\x85x"])
def test_network_names_with_control_characters_are_refused(name):
    with pytest.raises(errors.InvalidArgument) as e:
        names.check_network_name(name)
    assert "includes control characters" in e.value.message


@pytest.mark.parametrize("name", ["", " ", "\t\n", "\xa0", "\u3000"])
def test_blank_network_names_are_refused(name):
    with pytest.raises(errors.InvalidArgument) as e:
        names.check_network_name(name)
    assert e.value.message == "invalid name: name is empty"


def test_go_quote():
    assert names.go_quote("") == '""'
    assert names.go_quote("\U0001f600") == '"\U0001f600"'
    assert names.go_quote("\U000e0001") == '"\\U000e0001"'
    assert names.go_quote("x\udcff") == '"x\\xff"'
