"""core/users: --user resolution against the image's passwd/group, and resolv.conf filtering."""

from __future__ import annotations

import pytest

from servin.core.users import resolv_conf, resolve_user
from servin.errors import InvalidArgument

PASSWD = b"""root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
# a comment
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:100::/home/bob:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
"""

GROUP = b"""root:x:0:
wheel:x:10:root,alice
users:x:100:bob
alice:x:1000:
staff:x:50:alice,bob
"""


def test_empty_is_root_with_its_groups():
    u = resolve_user("", PASSWD, GROUP)
    assert (u.uid, u.gid, u.home) == (0, 0, "/root")
    assert u.additional_gids == (0, 10)


def test_name():
    u = resolve_user("alice", PASSWD, GROUP)
    assert (u.uid, u.gid, u.home) == (1000, 1000, "/home/alice")
    # like runc: the primary gid first, then every group listing the user
    assert u.additional_gids == (1000, 10, 50)


def test_uid_known_takes_the_passwd_entry():
    u = resolve_user("1001", PASSWD, GROUP)
    assert (u.uid, u.gid, u.home) == (1001, 100, "/home/bob")
    assert u.additional_gids == (100, 50)


def test_uid_unknown_is_fine_with_gid_0():
    u = resolve_user("4242", PASSWD, GROUP)
    assert (u.uid, u.gid, u.home) == (4242, 0, "/")
    assert u.additional_gids == (0,)


def test_uid_gid():
    u = resolve_user("1000:1000", PASSWD, GROUP)
    assert (u.uid, u.gid) == (1000, 1000)
    assert u.additional_gids[0] == 1000


def test_uid_gid_without_passwd_file():
    u = resolve_user("1000:1000", None, None)
    assert (u.uid, u.gid, u.additional_gids, u.home) == (1000, 1000, (1000,), "/")


def test_name_group():
    u = resolve_user("bob:staff", PASSWD, GROUP)
    assert (u.uid, u.gid) == (1001, 50)
    assert u.additional_gids[0] == 50


def test_unknown_user_has_dockers_message():
    with pytest.raises(InvalidArgument) as e:
        resolve_user("mallory", PASSWD, GROUP)
    assert e.value.message == "unable to find user mallory: no matching entries in passwd file"


def test_unknown_user_without_passwd():
    with pytest.raises(InvalidArgument, match="unable to find user app: no matching entries in passwd file"):
        resolve_user("app", None, None)


def test_unknown_group_has_dockers_message():
    with pytest.raises(InvalidArgument) as e:
        resolve_user("alice:nogroup", PASSWD, GROUP)
    assert e.value.message == "unable to find group nogroup: no matching entries in group file"


def test_short_and_garbage_lines_are_ignored():
    u = resolve_user("alice", b"junk\n\nalice:x:7:8:A:/a:/bin/sh\n", b"x\n")
    assert (u.uid, u.gid, u.home, u.additional_gids) == (7, 8, "/a", (8,))


# ---- resolv.conf ------------------------------------------------------------------------

def test_resolv_conf_drops_loopback_nameservers_and_keeps_the_rest():
    host = ("# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\n"
            "search example.com\noptions ndots:2\n")
    assert resolv_conf(host) == "# generated\nnameserver 10.0.0.2\nsearch example.com\noptions ndots:2\n"


def test_resolv_conf_falls_back_to_google_dns_when_only_loopback():
    out = resolv_conf("nameserver 127.0.0.53\nsearch lan\n")
    assert out == "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_resolv_conf_empty_host_file():
    assert resolv_conf("") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_resolv_conf_drops_ipv6_nameservers_without_ipv6():
    host = "nameserver 2001:4860:4860::8888\nnameserver fe80::1%eth0\nnameserver 10.0.0.2\n"
    assert resolv_conf(host) == "nameserver 10.0.0.2\n"
    assert resolv_conf(host, ipv6=True) == host
