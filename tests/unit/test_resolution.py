"""/etc/hosts as dockerd 29 writes it (etchosts Build, Add, Delete), pure."""

from __future__ import annotations

import pytest

from servin.core.resolution import hosts_add, hosts_delete, hosts_text, ipv6_enabled, own_names
from servin.network.service import next_ifname

pytestmark = pytest.mark.unit

BASE = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\n"
        "ff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def test_hosts_text_has_the_ipv6_lines_unless_ipv6_is_off() -> None:
    entries = [("192.0.2.3", "other"), ("2001:db8::1", "other"), ("10.0.0.2", "c1.invalid c1")]
    assert hosts_text(entries=entries) == BASE + "192.0.2.3\tother\n2001:db8::1\tother\n10.0.0.2\tc1.invalid c1\n"
    assert hosts_text(entries=entries, ipv6=False) == (
        "127.0.0.1\tlocalhost\n192.0.2.3\tother\n10.0.0.2\tc1.invalid c1\n")
    assert ipv6_enabled({}) and ipv6_enabled({"net.ipv6.conf.all.disable_ipv6": "0"})
    assert not ipv6_enabled({"net.ipv6.conf.all.disable_ipv6": "1"})
    assert not ipv6_enabled({"net.ipv6.conf.lo.disable_ipv6": "1"})


def test_own_names_are_the_fqdn_and_the_short_name() -> None:
    assert own_names("abc123", "") == "abc123"
    assert own_names("box", "example.org") == "box.example.org box"
    assert own_names("c1.invalid", "") == "c1.invalid c1"


def test_add_appends_and_delete_removes_exactly_those_lines() -> None:
    text = hosts_add(BASE, [("10.0.0.2", "c1"), ("fd00::2", "c1")])
    text = hosts_add(text, [("10.1.0.2", "c1")])
    assert text.endswith("10.0.0.2\tc1\nfd00::2\tc1\n10.1.0.2\tc1\n")
    # the address as parsed, the names exactly: an edited line stays
    edited = text.replace("fd00::2\tc1", "fd00:0::2\tc1") + "10.0.0.2\tc1 mine\n# a comment\n"
    assert hosts_delete(edited, [("10.0.0.2", "c1"), ("fd00::2", "c1")]) == (
        BASE + "10.1.0.2\tc1\n10.0.0.2\tc1 mine\n# a comment\n")


def test_next_interface_counts_up_past_a_freed_one() -> None:
    assert next_ifname([]) == "eth0"
    assert next_ifname(["eth0"]) == "eth1"
    assert next_ifname(["eth1"]) == "eth2"  # eth0 disconnected: eth1 is still there
