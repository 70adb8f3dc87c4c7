"""core/users: --user resolution against the image's passwd/group, and resolv.conf filtering."""

from __future__ import annotations

import pytest

from servin.core.resolution import resolv_conf
from servin.core.users import resolve_user
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


# ---- uid and gid ranges (moby/sys/user ErrRange) ----------------------------------------------

RANGE = "uids and gids must be in range 0-2147483647"


@pytest.mark.parametrize("spec", ["4294967295", "4294967296", "2147483648", "-1", "0:-1", "0:4294967296",
                                  "alice:2147483648", "4294967295:nogroup"])
def test_ids_out_of_range_are_refused(spec):
    # 4294967295 was setresuid(-1) (no change: root), 4294967296 wrapped to 0
    with pytest.raises(InvalidArgument) as e:
        resolve_user(spec, PASSWD, GROUP)
    assert e.value.message == RANGE


def test_the_largest_ids_pass():
    u = resolve_user("2147483647:2147483647", PASSWD, GROUP)
    assert (u.uid, u.gid, u.additional_gids) == (2147483647, 2147483647, (2147483647,))


def test_numbers_are_go_s_atoi():
    assert resolve_user("+1000", PASSWD, GROUP).uid == 1000  # strconv.Atoi takes a sign
    # beyond int64 Atoi fails, so it is a name
    with pytest.raises(InvalidArgument, match="unable to find user 99999999999999999999: no matching"):
        resolve_user("99999999999999999999", PASSWD, GROUP)


@pytest.mark.parametrize("passwd, group, spec", [
    (b"evil:x:4294967296:0::/:/bin/sh\n", b"", "evil"),  # dockerd truncates it to uint32: root
    (b"evil:x:1000:-1::/:/bin/sh\n", b"", "evil"),
    (b"evil:x:1000:99999999999999999999::/:/bin/sh\n", b"", "1000"),
    (b"evil:x:1000:1000::/:/bin/sh\n", b"g:x:4294967295:evil\n", "evil"),  # a supplementary group
    (b"", b"g:x:-5:\n", "0:g"),
])
def test_an_image_s_entries_out_of_range_are_refused(passwd, group, spec):
    with pytest.raises(InvalidArgument) as e:
        resolve_user(spec, passwd, group)
    assert e.value.message == RANGE


def test_non_numeric_fields_read_as_zero_like_runc():
    u = resolve_user("odd", b"odd:x:abc:12x::/h:/bin/sh\n", b"g:x:zz:odd\n")
    assert (u.uid, u.gid, u.additional_gids, u.home) == (0, 0, (0,), "/h")


def test_an_explicit_group_has_no_supplementary_groups_like_runc():
    assert resolve_user("alice:users", PASSWD, GROUP).additional_gids == (100,)


def test_the_default_user_is_uid_0_s_entry():
    assert resolve_user(":staff", PASSWD, GROUP).uid == 0
    assert (resolve_user(":staff", PASSWD, GROUP).gid, resolve_user(":staff", PASSWD, GROUP).home) == (50, "/root")


def test_group_add():
    from servin.core.users import resolve_group

    assert resolve_group("staff", GROUP) == 50
    assert resolve_group("50", GROUP) == 50
    assert resolve_group("4242", GROUP) == 4242
    assert resolve_group("2147483647", None) == 2147483647
    for spec, group in (("4294967296", GROUP), ("-1", None), ("evil", b"evil:x:4294967295:\n")):
        with pytest.raises(InvalidArgument) as e:
            resolve_group(spec, group)
        assert e.value.message == RANGE
    with pytest.raises(InvalidArgument) as e:
        resolve_group("nogroup", GROUP)
    assert e.value.message == "Unable to find group nogroup: no matching entries in group file"
