"""Resolve `--user` against the image's /etc/passwd and /etc/group (pure), as runc's and dockerd's
github.com/moby/sys/user (GetExecUser, GetAdditionalGroups) do."""

from __future__ import annotations

from dataclasses import dataclass

from servin.core.names import GO_INT, INT64_MAX, INT64_MIN, go_atoi
from servin.errors import InvalidArgument

# moby/sys/user/user.go: minID = 0, maxID = 1<<31 - 1 ("for 32-bit systems compatibility"), and
# ErrRange = fmt.Errorf("uids and gids must be in range %d-%d", minID, maxID). dockerd returns it
# unwrapped from the spec at `docker start` (`docker run --user 4294967295` prints
# "Error response from daemon: uids and gids must be in range 0-2147483647").
MAX_ID = (1 << 31) - 1
ERR_RANGE = f"uids and gids must be in range 0-{MAX_ID}"



@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str


def _field_id(s: str) -> int:
    """A uid or gid field of /etc/passwd or /etc/group as moby/sys/user's parseLine reads it
    (`*e, _ = strconv.Atoi(...)`): 0 when it is not a number, clamped to int64 when too big."""
    if not GO_INT.fullmatch(s):
        return 0
    return max(INT64_MIN, min(INT64_MAX, int(s)))


def _in_range(i: int) -> int:
    """Every uid and gid the container gets: moby/sys/user refuses only numeric `--user`/`--group-add`
    values out of range, but an image's passwd or group entry can carry 4294967296 (which dockerd
    truncates to uint32: root) or -1 as well, so those are refused the same way here."""
    if not 0 <= i <= MAX_ID:
        raise InvalidArgument(ERR_RANGE)
    return i


def _entries(data: bytes | None) -> list[list[str]]:
    if not data:
        return []
    rows = []
    for line in data.decode(errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def resolve_user(spec: str, passwd: bytes | None, group: bytes | None) -> ResolvedUser:
    """`spec` is "", "name", "uid", "name:group", "uid:gid" as Docker accepts (GetExecUser)."""
    parts = (spec or "").split(":")
    user_arg, group_arg = parts[0], parts[1] if len(parts) > 1 else ""
    uid_arg, gid_arg = go_atoi(user_arg), go_atoi(group_arg)
    users = [e for e in _entries(passwd) if len(e) >= 7]
    groups = [e for e in _entries(group) if len(e) >= 3]
    if not user_arg:  # the default: the entry of uid 0
        match = next((e for e in users if _field_id(e[2]) == 0), None)
    elif uid_arg is not None:  # a number is always a uid
        match = next((e for e in users if _field_id(e[2]) == uid_arg), None)
    else:
        match = next((e for e in users if e[0] == user_arg), None)
    uid, gid, home, name = 0, 0, "/", None
    if match is not None:
        uid, gid, home, name = _in_range(_field_id(match[2])), _in_range(_field_id(match[3])), match[5], match[0]
    elif user_arg:
        if uid_arg is None:
            raise InvalidArgument(f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = _in_range(uid_arg)
    extra: list[int] = []
    if group_arg:
        if gid_arg is not None:
            g = next((e for e in groups if _field_id(e[2]) == gid_arg), None)
        else:
            g = next((e for e in groups if e[0] == group_arg), None)
        if g is not None:
            gid = _in_range(_field_id(g[2]))
        elif gid_arg is None:
            raise InvalidArgument(f"unable to find group {group_arg}: no matching entries in group file")
        else:
            gid = _in_range(gid_arg)
    elif name is not None:  # supplementary groups only in the implicit form, as runc
        for g in groups:
            members = g[3].split(",") if len(g) > 3 and g[3] else []
            if name in members:
                extra.append(_in_range(_field_id(g[2])))
    # like dockerd's getUser: the supplementary list starts with the primary group
    gids = [gid] + [x for x in extra if x != gid]
    return ResolvedUser(uid=uid, gid=gid, additional_gids=tuple(dict.fromkeys(gids)), home=home or "/")


def resolve_group(spec: str, group: bytes | None) -> int:
    """--group-add (GetAdditionalGroups): a group of the image's /etc/group by name or gid, else a
    number in range."""
    for e in _entries(group):
        if len(e) >= 3 and (e[0] == spec or str(_field_id(e[2])) == spec):
            return _in_range(_field_id(e[2]))
    gid = go_atoi(spec)
    if gid is None:
        raise InvalidArgument(f"Unable to find group {spec}: no matching entries in group file")
    return _in_range(gid)


HOSTS_TEMPLATE = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def resolv_conf(host_resolv: str, *, ipv6: bool = False) -> str:
    """The host's resolv.conf without loopback nameservers (and without IPv6 ones when the
    container has no IPv6), as Docker's libnetwork resolvconf.FilterResolvDNS filters it."""
    out, servers = [], 0
    for line in host_resolv.splitlines():
        fields = line.split()
        if fields and fields[0] == "nameserver":
            if len(fields) > 1 and (fields[1].startswith("127.") or fields[1] == "::1"):
                continue
            if len(fields) > 1 and ":" in fields[1] and not ipv6:
                continue
            servers += 1
        out.append(line)
    if servers == 0:
        out += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    return "\n".join(out) + "\n"


def hosts_file(*, own: tuple[str, str] | None, extra: list[tuple[str, str]]) -> str:
    """/etc/hosts: the standard entries, --add-host lines, then the container's own (ip, name)."""
    lines = HOSTS_TEMPLATE + "".join(f"{ip}\t{name}\n" for name, ip in extra)
    if own is not None:
        lines += f"{own[0]}\t{own[1]}\n"
    return lines


def resolv_conf_with(host_resolv: str, *, dns: tuple[str, ...], search: tuple[str, ...],
                     options: tuple[str, ...]) -> str:
    """--dns/--dns-search/--dns-option replace the host's corresponding lines, as dockerd does."""
    base = resolv_conf(host_resolv) if not dns else ""
    kept = [line for line in base.splitlines()
            if not (search and line.startswith("search") or options and line.startswith("options"))]
    out = [f"nameserver {ns}" for ns in dns] + kept
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def resolv_conf_embedded(host_resolv: str, *, nameserver: str, search: tuple[str, ...],
                         options: tuple[str, ...]) -> str:
    """resolv.conf for a container on a user-defined network: the embedded DNS server (at the
    network's gateway) as the only nameserver, the host's search and options unless --dns-search
    or --dns-option replace them, and `ndots:0` as dockerd writes it."""
    host_search: list[str] = []
    host_options: list[str] = []
    other: list[str] = []
    for line in host_resolv.splitlines():
        f = line.split()
        if not f or f[0] == "nameserver":
            continue
        if f[0] == "search":
            host_search = f[1:]
        elif f[0] == "options":
            host_options += f[1:]
        else:
            other.append(line)
    opts = list(options) or host_options
    if not any(o.startswith("ndots:") for o in options):
        opts = ["ndots:0"] + [o for o in opts if not o.startswith("ndots:")]
    out = [f"nameserver {nameserver}", *other]
    if search or host_search:
        out.append("search " + " ".join(search or host_search))
    out.append("options " + " ".join(opts))
    return "\n".join(out) + "\n"


def host_nameservers(host_resolv: str) -> tuple[str, ...]:
    """The nameservers of the host's resolv.conf (loopback ones included: the daemon is on the host)."""
    return tuple(f[1] for f in (line.split() for line in host_resolv.splitlines())
                 if len(f) > 1 and f[0] == "nameserver")
