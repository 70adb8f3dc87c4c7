"""Resolve `--user` against the image's /etc/passwd and /etc/group (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from servin.errors import InvalidArgument


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str


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
    """`spec` is "", "name", "uid", "name:group", "uid:gid" as Docker accepts."""
    user_part, _, group_part = (spec or "0").partition(":")
    users = [e for e in _entries(passwd) if len(e) >= 7]
    groups = [e for e in _entries(group) if len(e) >= 3]
    home = "/"
    if user_part.isdigit():
        uid = int(user_part)
        match = next((e for e in users if e[2] == user_part), None)
        gid = int(match[3]) if match else 0
        name = match[0] if match else None
        if match:
            home = match[5]
    else:
        match = next((e for e in users if e[0] == user_part), None)
        if match is None:
            raise InvalidArgument(f"unable to find user {user_part}: no matching entries in passwd file")
        uid, gid, name, home = int(match[2]), int(match[3]), match[0], match[5]
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            g = next((e for e in groups if e[0] == group_part), None)
            if g is None:
                raise InvalidArgument(f"unable to find group {group_part}: no matching entries in group file")
            gid = int(g[2])
    extra: list[int] = [gid]  # like runc, the supplementary list starts with the primary group
    if name is not None:
        for g in groups:
            members = g[3].split(",") if len(g) > 3 and g[3] else []
            if name in members and int(g[2]) not in extra:
                extra.append(int(g[2]))
    return ResolvedUser(uid=uid, gid=gid, additional_gids=tuple(extra), home=home or "/")


def resolve_group(spec: str, group: bytes | None) -> int:
    """--group-add: a gid or a group name from the image's /etc/group."""
    if spec.isdigit():
        return int(spec)
    for e in _entries(group):
        if len(e) >= 3 and e[0] == spec:
            return int(e[2])
    raise InvalidArgument(f"Unable to find group {spec}: no matching entries in group file")


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
