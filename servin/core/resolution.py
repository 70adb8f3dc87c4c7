"""How a container resolves names: its /etc/hosts and resolv.conf, and what the embedded DNS
server tells it.

/etc/hosts is written as dockerd 29 writes it (libnetwork `Sandbox.buildHostsFile`, etchosts):
    127.0.0.1	localhost
    ::1	localhost ip6-localhost ip6-loopback      (these five IPv6 lines unless the container
    fe00::	ip6-localnet                           has IPv6 off: --sysctl
    ff00::	ip6-mcastprefix                        net.ipv6.conf.{all,lo}.disable_ipv6=1)
    ff02::1	ip6-allnodes
    ff02::2	ip6-allrouters
    <--add-host lines>, <legacy links>
    <each address of each endpoint, IPv4 then IPv6>	<fqdn> <short name>
A live `network connect` appends the new endpoint's lines, a `disconnect` removes exactly its
lines (kept if the user edited them), as dockerd's etchosts.Add and Delete.

resolv.conf: the host's (with --dns, --dns-search, --dns-option) on the default bridge; on a
user-defined network the embedded DNS server at that network's gateway (IPv4, or IPv6 on an
IPv6-only network), rewritten when a live connect or disconnect changes which network that is.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from servin import atomicfile
from servin.core.model import Container
from servin.network.dns import View

HOSTS_IPV4 = "127.0.0.1\tlocalhost\n"
HOSTS_IPV6 = (
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::\tip6-localnet\n"
    "ff00::\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)

HostsEntry = tuple[str, str]  # (address, names separated by spaces)


def ipv6_enabled(sysctls: Mapping[str, str]) -> bool:
    """Whether the container keeps IPv6 on its loopback (dockerd asks the namespace; its sysctls
    are what turns it off)."""
    return not any(sysctls.get(f"net.ipv6.conf.{dev}.disable_ipv6", "0").strip() == "1" for dev in ("all", "lo"))


def own_names(hostname: str, domainname: str) -> str:
    """The names of the container's own lines: "fqdn short" when the name has a dot, as dockerd."""
    fqdn = f"{hostname}.{domainname}" if domainname else hostname
    short, dot, _ = fqdn.partition(".")
    return f"{fqdn} {short}" if dot else fqdn


def own_entries(c: Container, addresses: Iterable[str]) -> list[HostsEntry]:
    names = own_names(c.resolved_hostname, c.config.domainname)
    return [(ip, names) for ip in addresses]


def hosts_text(*, entries: Sequence[HostsEntry], ipv6: bool = True) -> str:
    """/etc/hosts: the standard lines, then `entries` (without IPv6 ones when `ipv6` is off)."""
    kept = [(ip, names) for ip, names in entries if ipv6 or ":" not in ip]
    return HOSTS_IPV4 + (HOSTS_IPV6 if ipv6 else "") + "".join(f"{ip}\t{names}\n" for ip, names in kept)


def hosts_add(text: str, entries: Sequence[HostsEntry]) -> str:
    return text + "".join(f"{ip}\t{names}\n" for ip, names in entries)


def hosts_delete(text: str, entries: Sequence[HostsEntry]) -> str:
    """`text` without the lines of `entries` (the names exactly, the address as parsed)."""
    def matches(line: str) -> bool:
        for ip, names in entries:
            before, tab, rest = line.rpartition("\t")
            if tab and rest == names:
                try:
                    if ipaddress.ip_address(before.strip()) == ipaddress.ip_address(ip):
                        return True
                except ValueError:
                    continue
        return False
    return "".join(line + "\n" for line in text.splitlines() if line and (line.startswith("#") or not matches(line)))


def _lines(text: str) -> list[HostsEntry]:
    """(address, names) of the lines of a hosts file the daemon writes (address, a tab, the names)."""
    out = []
    for line in text.splitlines():
        before, tab, rest = line.rpartition("\t")
        if tab and not line.startswith("#"):
            out.append((before.strip(), rest))
    return out


def _same(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


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


class ResolutionFiles:
    """The hosts and resolv.conf files in each container's directory, and the host's resolvers."""

    def __init__(self, *, container_dir: Callable[[str], Path], host_resolv_conf: Path) -> None:
        self._dir = container_dir
        self.host_resolv_conf = host_resolv_conf
        self._resolvers: tuple[tuple[int, int, int], tuple[str, ...]] | None = None  # (file stamp, servers)

    def write_hosts(self, c: Container, entries: Sequence[HostsEntry]) -> None:
        text = hosts_text(entries=entries, ipv6=ipv6_enabled(c.host_config.sysctls))
        _write(self._dir(c.id) / "hosts", text)

    def add_hosts(self, c: Container, addresses: Sequence[str]) -> None:
        """A live connect: the container's lines for its new addresses at the end."""
        kept = [ip for ip in addresses if ipv6_enabled(c.host_config.sysctls) or ":" not in ip]
        self._edit_hosts(c, lambda text: hosts_add(text, own_entries(c, kept)))

    def remove_hosts(self, c: Container, addresses: Sequence[str]) -> None:
        """A live disconnect: the container's lines for the addresses it had there."""
        self._edit_hosts(c, lambda text: hosts_delete(text, own_entries(c, addresses)))

    def restore_hosts(self, c: Container, entries: Sequence[HostsEntry], addresses: Sequence[str]) -> None:
        """At daemon start, for a running container: its own lines for `addresses` (its endpoints'
        now) and none for others; the whole file (`entries`) again when it is empty or missing
        (a kill cut a write short). The lines a user added stay."""
        path = self._dir(c.id) / "hosts"
        try:
            text = path.read_text()
        except OSError:
            text = ""
        ipv6 = ipv6_enabled(c.host_config.sysctls)
        want = [ip for ip in addresses if ipv6 or ":" not in ip]
        if not text.strip():
            new = hosts_text(entries=entries, ipv6=ipv6)
        else:
            names = own_names(c.resolved_hostname, c.config.domainname)
            have = [ip for ip, n in _lines(text) if n == names]
            stale = [ip for ip in have if not any(_same(ip, w) for w in want)]
            missing = [ip for ip in want if not any(_same(ip, h) for h in have)]
            new = hosts_add(hosts_delete(text, own_entries(c, stale)), own_entries(c, missing))
        if new != text:
            _write(path, new)

    def _edit_hosts(self, c: Container, change: Callable[[str], str]) -> None:
        path = self._dir(c.id) / "hosts"
        try:
            text = path.read_text()
        except OSError:
            return
        _write(path, change(text))

    def write_resolv_conf(self, c: Container, embedded_dns: str | None) -> None:
        """The host's resolvers (with --dns*), or the embedded DNS server at `embedded_dns`."""
        try:
            host = self.host_resolv_conf.read_text()
        except OSError:
            host = ""
        hc = c.host_config
        if embedded_dns:
            text = resolv_conf_embedded(host, nameserver=embedded_dns, search=hc.dns_search, options=hc.dns_options)
        else:
            text = resolv_conf_with(host, dns=hc.dns, search=hc.dns_search, options=hc.dns_options)
        path = self._dir(c.id) / "resolv.conf"
        try:
            if path.read_text() == text:
                return
        except OSError:
            pass
        _write(path, text)

    def copy_from(self, c: Container, other: Container) -> None:
        """`--network container:<other>`: the other container's files, as dockerd shares them."""
        for name in ("hosts", "resolv.conf", "hostname"):
            data = (self._dir(other.id) / name).read_bytes()
            atomicfile.write_bytes(self._dir(c.id) / name, data)

    def host_nameservers(self) -> tuple[str, ...]:
        """The host's resolvers, read again only when its resolv.conf changes (asked on every DNS query)."""
        try:
            st = self.host_resolv_conf.stat()
        except OSError:
            return ()
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._resolvers is None or self._resolvers[0] != stamp:
            try:
                self._resolvers = (stamp, host_nameservers(self.host_resolv_conf.read_text()))
            except OSError:
                return ()
        return self._resolvers[1]


def _write(path: Path, text: str) -> None:
    """A new file atomically; an existing one in place, as dockerd writes them: a running container
    has it bind-mounted, and a renamed-over file would never reach it. In place, the whole text
    goes at offset 0 in one write and only then is the file cut to its length, so a kill in between
    leaves the new text (with the old one's tail at worst), never an empty file; the daemon's
    restore writes the files again (`ResolutionFiles.restore_hosts`)."""
    data = text.encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        atomicfile.write_bytes(path, data, durable=False)
        return
    try:
        done = os.pwrite(fd, data, 0)
        while done < len(data):
            done += os.pwrite(fd, data[done:], done)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def dns_view(client_ip: str, *, network: Any, lookup: Callable[[str], Container | None],
             host_nameservers: Callable[[], tuple[str, ...]]) -> View | None:
    """What the embedded DNS server tells the container at `client_ip` (an IPv4 or IPv6 address
    of one of its endpoints): the names (container names and endpoint aliases, bare and
    "name.network") on the user-defined networks it is on; None for a stranger. `network` is the
    NetworkService, `lookup` a container record by ID."""
    eps = network.endpoints_all()
    me = next((e for e in eps if client_ip in (e.ip, e.ip6)), None)
    if me is None:
        return None
    nets = {n.id: n for n in network.networks()}
    shared = {e.network_id for e in eps if e.container_id == me.container_id
              and e.network_id in nets and nets[e.network_id].name != "bridge"}
    names: dict[str, list[str]] = {}
    reverse: dict[str, str] = {}
    for e in eps:
        addresses = [ip for ip in (e.ip, e.ip6) if ip]  # A and AAAA answers
        if e.network_id not in shared or not addresses:
            continue
        other = lookup(e.container_id)
        if other is None:
            continue
        net_name = nets[e.network_id].name
        for name in dict.fromkeys((other.name, *e.aliases)):
            names.setdefault(name.lower(), []).extend(addresses)
            # as dockerd: "name.network" resolves the name on that network only (PTR answers so too)
            names.setdefault(f"{name}.{net_name}".lower(), []).extend(addresses)
        for ip in addresses:
            reverse[ip] = f"{other.name}.{net_name}"
    c = lookup(me.container_id)
    for want in c.networks if c is not None else ():  # legacy links: "target:alias" on that network
        for link in want.links:
            target, _, alias = link.partition(":")
            for e in eps:
                other = lookup(e.container_id) if e.network_id in shared else None
                if other is not None and target in (other.name, other.id, other.short_id) \
                        and nets[e.network_id].name == want.network:
                    names.setdefault((alias or target).lower(), []).extend(ip for ip in (e.ip, e.ip6) if ip)
    upstreams: tuple[str, ...] = ()
    if any(not nets[n].internal for n in shared):
        upstreams = c.host_config.dns if c is not None and c.host_config.dns else ()
        if not upstreams:
            upstreams = host_nameservers()
        gateways = {gw for n in shared for gw in (nets[n].gateway, nets[n].gateway6) if gw}
        upstreams = tuple(u for u in upstreams if u not in gateways)
    return View(names={k: tuple(v) for k, v in names.items()}, reverse=reverse, upstreams=upstreams)
