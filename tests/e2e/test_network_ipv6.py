"""Dual-stack and IPv6-only bridge networks, through the docker CLI: addresses, names (AAAA), ports
published over IPv6 and reached from this host and from another one, the default bridge with
--ipv6, and nothing left behind. Only ULA subnets (fd00::/8) that the host's routes do not cover."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import DNSRecord

from tests.e2e.test_network import WWW, free_port, out
from tests.e2e.test_network_dns import lookup, upstream_dns  # noqa: F401 (a fixture)
from tests.support.daemon import ServinDaemon, running_daemon

FETCH = ("import sys, urllib.request; "
         "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())")


def subnet6() -> str:
    """A /64 of fd00:5e71::/32 (fd00::/64 is the host's own LAN here), different for each test."""
    return f"fd00:5e71:{random.randint(1, 0xffff):x}::/64"


def inspect(d: ServinDaemon, kind: str, ref: str) -> dict:
    return json.loads(out(d, kind, "inspect", ref))[0]


def ip6tables_mentioning(word: str) -> list[str]:
    saved = subprocess.run(["ip6tables-save"], capture_output=True, text=True).stdout
    return [line for line in saved.splitlines() if word in line]


def fetch(url: str, ns: str | None = None, timeout: float = 15.0) -> str:
    """The body at `url` (from namespace `ns`), retried while the server comes up."""
    argv = [*(["ip", "netns", "exec", ns] if ns else []), sys.executable, "-c", FETCH, url]
    deadline = time.monotonic() + timeout
    while True:
        res = subprocess.run(argv, capture_output=True, timeout=30)
        if res.returncode == 0 or time.monotonic() > deadline:
            assert res.returncode == 0, res.stderr
            return res.stdout.decode()
        time.sleep(0.2)


@contextlib.contextmanager
def another_host6() -> Iterator[tuple[str, str]]:
    """A namespace routed to this machine over IPv6 through a veth pair (a second host on the LAN):
    yields (its name, this machine's address as it sees it)."""
    tag = uuid.uuid4().hex[:6]
    ns, host_if, peer_if = f"svh{tag}", f"svh{tag}a", f"svh{tag}b"
    prefix = f"fd00:5e72:{random.randint(1, 0xffff):x}::"
    host_ip, peer_ip = f"{prefix}1", f"{prefix}2"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for cmd in (["ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if, "netns", ns],
                    ["ip", "addr", "add", f"{host_ip}/64", "dev", host_if, "nodad"],
                    ["ip", "link", "set", host_if, "up"],
                    ["ip", "-n", ns, "addr", "add", f"{peer_ip}/64", "dev", peer_if, "nodad"],
                    ["ip", "-n", ns, "link", "set", peer_if, "up"],
                    ["ip", "-n", ns, "link", "set", "lo", "up"],
                    ["ip", "-n", ns, "-6", "route", "add", "default", "via", host_ip]):
            subprocess.run(cmd, check=True)
        yield ns, host_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_dual_stack_network_addresses_inspect_and_cleanup(servin: ServinDaemon) -> None:
    sub = subnet6()
    net = ipaddress.IPv6Network(sub)
    gw, fixed = str(net[1]), str(net[0x99])
    out(servin, "network", "create", "--ipv6", "--subnet", sub, "v6net")
    try:
        n = inspect(servin, "network", "v6net")
        assert n["EnableIPv6"] is True and n["EnableIPv4"] is True
        configs = {c["Subnet"]: c for c in n["IPAM"]["Config"]}
        assert configs[sub]["Gateway"] == gw and len(configs) == 2  # and an IPv4 subnet from the pools
        bridge = n["Options"].get("com.docker.network.bridge.name") or "br-" + n["Id"][:12]
        addrs = subprocess.run(["ip", "-6", "addr", "show", "dev", bridge], capture_output=True, text=True).stdout
        assert f"inet6 {gw}/64" in addrs
        shown = out(servin, "run", "--rm", "--network", "v6net", "busybox", "ip", "-6", "addr", "show", "eth0")
        assert f"inet6 {net[2]}/64 scope global" in shown, shown
        routes = out(servin, "run", "--rm", "--network", "v6net", "busybox", "ip", "-6", "route")
        assert f"default via {gw} dev eth0" in routes, routes
        cid = out(servin, "run", "-d", "--network", "v6net", "--ip6", fixed, "busybox", "sleep", "60").strip()
        c = inspect(servin, "container", cid)
        ep = c["NetworkSettings"]["Networks"]["v6net"]
        assert (ep["GlobalIPv6Address"], ep["GlobalIPv6PrefixLen"], ep["IPv6Gateway"]) == (fixed, 64, gw)
        assert ep["IPAMConfig"] == {"IPv6Address": fixed} and ep["IPAddress"]
        members = inspect(servin, "network", "v6net")["Containers"]
        assert members[cid]["IPv6Address"] == f"{fixed}/64"
        res = servin.docker("run", "--rm", "--network", "v6net", "--ip6", fixed, "busybox", "true", check=False)
        assert res.returncode != 0 and b"Address already in use" in res.stderr
        out(servin, "rm", "-f", cid)
        assert ip6tables_mentioning(bridge)  # the network's ip6tables rules while it exists
    finally:
        servin.docker("network", "rm", "v6net", check=False)
    assert not ip6tables_mentioning(bridge)
    assert subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode != 0


def test_default_ipv6_subnet_is_a_ula_64(servin: ServinDaemon) -> None:
    out(servin, "network", "create", "--ipv6", "auto6")
    try:
        subnets = [ipaddress.ip_network(c["Subnet"]) for c in inspect(servin, "network", "auto6")["IPAM"]["Config"]]
        v6 = [s for s in subnets if s.version == 6]
        assert len(v6) == 1 and v6[0].prefixlen == 64 and v6[0].subnet_of(ipaddress.IPv6Network("fd00::/8"))
        res = servin.docker("network", "create", "--subnet", subnet6(), "nov6", check=False)
        assert res.returncode != 0 and b"EnableIPv6" in res.stderr
    finally:
        servin.docker("network", "rm", "auto6", check=False)


def test_containers_ping6_each_other_by_name(servin: ServinDaemon) -> None:
    out(servin, "network", "create", "--ipv6", "--subnet", subnet6(), "v6ping")
    try:
        out(servin, "run", "-d", "--name", "v6a", "--network", "v6ping", "busybox", "sleep", "60")
        address = inspect(servin, "container", "v6a")["NetworkSettings"]["Networks"]["v6ping"]["GlobalIPv6Address"]
        answer = out(servin, "run", "--rm", "--network", "v6ping", "busybox", "nslookup", "-type=aaaa", "v6a")
        assert address in answer, answer
        ping = out(servin, "run", "--rm", "--network", "v6ping", "busybox", "ping", "-6", "-c", "1", "-W", "5", "v6a")
        assert f"PING v6a ({address})" in ping and "1 packets received" in ping, ping
    finally:
        servin.docker("rm", "-f", "v6a", check=False)
        servin.docker("network", "rm", "v6ping", check=False)


def test_published_port_over_ipv6_from_this_host_and_another(servin: ServinDaemon) -> None:
    sub = subnet6()
    gw = str(ipaddress.IPv6Network(sub)[1])
    out(servin, "network", "create", "--ipv6", "--subnet", sub, "v6pub")
    port, port6 = free_port(), free_port()
    try:
        cid = out(servin, "run", "-d", "--network", "v6pub", "-p", f"{port}:80", "-p", f"[::]:{port6}:81",
                  "busybox", "sh", "-c", WWW.format(tag="v6").replace("exec httpd", "httpd -p 81 -h /www && exec httpd")
                  ).strip()
        bindings = inspect(servin, "container", cid)["NetworkSettings"]["Ports"]
        assert bindings["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(port)},
                                      {"HostIp": "::", "HostPort": str(port)}]
        assert bindings["81/tcp"] == [{"HostIp": "::", "HostPort": str(port6)}]
        shown = out(servin, "port", cid).splitlines()
        assert f"80/tcp -> [::]:{port}" in shown and f"81/tcp -> [::]:{port6}" in shown, shown
        assert f"[::]:{port}->80/tcp" in out(servin, "ps", "--format", "{{.Ports}}", "--filter", f"id={cid}")
        # from this host, at one of its own IPv6 addresses
        assert fetch(f"http://[{gw}]:{port}/index.html") == "hello-from-v6\n"
        assert fetch(f"http://[{gw}]:{port6}/index.html") == "hello-from-v6\n"
        with another_host6() as (ns, host_ip):
            assert fetch(f"http://[{host_ip}]:{port}/index.html", ns) == "hello-from-v6\n"
            assert fetch(f"http://[{host_ip}]:{port6}/index.html", ns) == "hello-from-v6\n"
            res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", FETCH,
                                  f"http://[{host_ip}]:{free_port()}/index.html"], capture_output=True, timeout=30)
            assert res.returncode != 0  # nothing else is forwarded
        # the [::] binding is IPv6's only: nothing on IPv4 for that port
        assert not any(f"--dport {port6} " in r for r in _iptables_nat())
        out(servin, "rm", "-f", cid)
        assert not [r for r in ip6tables_mentioning(f"--dport {port}") if "DNAT" in r]
    finally:
        servin.docker("network", "rm", "v6pub", check=False)


def _iptables_nat() -> list[str]:
    return subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout.splitlines()


def test_ipv6_only_network(servin: ServinDaemon) -> None:
    sub = subnet6()
    out(servin, "network", "create", "--ipv4=false", "--ipv6", "--subnet", sub, "v6only")
    try:
        n = inspect(servin, "network", "v6only")
        assert n["EnableIPv4"] is False and [c["Subnet"] for c in n["IPAM"]["Config"]] == [sub]
        shown = out(servin, "run", "--rm", "--network", "v6only", "busybox", "ip", "addr", "show", "eth0")
        assert f"inet6 {ipaddress.IPv6Network(sub)[2]}/64" in shown and "inet " not in shown, shown
        res = servin.docker("network", "create", "--ipv4=false", "neither", check=False)
        assert res.returncode != 0 and b"IPv4 or IPv6 must be enabled" in res.stderr
    finally:
        servin.docker("network", "rm", "v6only", check=False)


TCP_QUERY = ("import socket, struct, sys; q = bytes.fromhex(sys.argv[2]); "
             "s = socket.create_connection((sys.argv[1], 53), timeout=5); s.sendall(struct.pack('!H', len(q)) + q); "
             "n = struct.unpack('!H', s.recv(2))[0]; data = b''\n"
             "while len(data) < n: data += s.recv(n - len(data))\n"
             "sys.stdout.buffer.write(data)")


def lookup6(d: ServinDaemon, cid: str, name: str) -> list[str]:
    """The IPv6 addresses `nslookup -type=aaaa` inside the container finds for `name`."""
    text = d.docker("exec", cid, "nslookup", "-type=aaaa", name, check=False).stdout.decode()
    answers = text.split("Name:", 1)[1] if "Name:" in text else ""
    return [line.split()[-1] for line in answers.splitlines() if line.startswith("Address")]


def test_ipv6_only_network_has_the_embedded_dns(servin: ServinDaemon, upstream_dns: str) -> None:  # noqa: F811
    d = servin
    sub = subnet6()
    gw = str(ipaddress.IPv6Network(sub)[1])
    out(d, "network", "create", "--ipv4=false", "--ipv6", "--subnet", sub, "v6dns")
    try:
        out(d, "run", "-d", "--name", "v6db", "--network", "v6dns", "--network-alias", "v6alias", "busybox",
            "sleep", "120")
        client = out(d, "run", "-d", "--network", "v6dns", "--dns", upstream_dns, "busybox", "sleep", "120").strip()
        address = inspect(d, "container", "v6db")["NetworkSettings"]["Networks"]["v6dns"]["GlobalIPv6Address"]
        # the nameserver is the network's IPv6 gateway (dockerd: 127.0.0.11 inside the container)
        resolv = out(d, "exec", client, "cat", "/etc/resolv.conf").splitlines()
        assert resolv[0] == f"nameserver {gw}" and "options ndots:0" in resolv[-1], resolv
        shown = out(d, "exec", client, "nslookup", "v6db")
        assert f"Server:\t\t{gw}" in shown and f"Address: {address}" in shown, shown
        assert lookup6(d, client, "v6db") == [address]
        assert lookup6(d, client, "V6ALIAS") == [address] and lookup6(d, client, "v6db.v6dns") == [address]
        assert lookup(d, client, "v6db") == []  # no IPv4 address: no A record
        assert lookup(d, client, "outside.example") == ["192.0.2.55"]  # forwarded to its --dns
        ping = out(d, "exec", client, "ping", "-6", "-c", "1", "-W", "5", "v6db")
        assert f"PING v6db ({address})" in ping and "1 packets received" in ping, ping
        # over TCP too (busybox's nslookup has none: a query from the container's namespace)
        key = inspect(d, "container", client)["NetworkSettings"]["SandboxKey"]
        query = DNSRecord.question("v6alias", "AAAA").pack().hex()
        res = subprocess.run(["nsenter", f"--net={key}", sys.executable, "-c", TCP_QUERY, gw, query],
                             capture_output=True, timeout=30, check=True)
        assert [str(rr.rdata) for rr in DNSRecord.parse(res.stdout).rr] == [address]
        # the listener behind [gateway]:53 is bound to the bridge: nothing from elsewhere reaches it
        bridge = "br-" + inspect(d, "network", "v6dns")["Id"][:12]
        sockets = subprocess.run(["ss", "-Hlnu"], capture_output=True, text=True).stdout
        assert f"[{gw}]%{bridge}:" in sockets, sockets
    finally:
        ids = out(d, "ps", "-aq", "--filter", "network=v6dns").split()
        if ids:
            d.docker("rm", "-f", *ids, check=False)
        d.docker("network", "rm", "v6dns", check=False)
    assert not ip6tables_mentioning(gw)
    assert f"[{gw}]" not in subprocess.run(["ss", "-Hlnu"], capture_output=True, text=True).stdout


def test_ipv6_only_names_resolve_again_after_daemon_kill9(daemon: ServinDaemon) -> None:
    d = daemon
    sub = subnet6()
    out(d, "network", "create", "--ipv4=false", "--ipv6", "--subnet", sub, "v6crash")
    try:
        out(d, "run", "-d", "--name", "v6crashdb", "--network", "v6crash", "busybox", "sleep", "120")
        client = out(d, "run", "-d", "--network", "v6crash", "busybox", "sleep", "120").strip()
        address = lookup6(d, client, "v6crashdb")
        assert address and address[0].startswith(sub.split("::")[0])
        d.kill9()
        d.start()  # the gateway's listener is opened again (new ports), and its rules follow
        assert lookup6(d, client, "v6crashdb") == address
    finally:
        ids = out(d, "ps", "-aq", "--filter", "network=v6crash").split()
        if ids:
            d.docker("rm", "-f", *ids, check=False)
        d.docker("network", "rm", "v6crash", check=False)
    assert not ip6tables_mentioning(str(ipaddress.IPv6Network(sub)[1]))


def test_hosts_file_lists_every_address_of_the_container(servin: ServinDaemon) -> None:
    """/etc/hosts as dockerd 29 writes it (and 20.10 where they agree): its IPv4 and IPv6
    addresses on each network for its name, kept up to date by connect and disconnect."""
    d = servin
    sub6, sub_dual = subnet6(), subnet6()
    v4 = f"10.216.{random.randint(1, 250)}"
    out(d, "network", "create", "--ipv4=false", "--ipv6", "--subnet", sub6, "hosts6")
    out(d, "network", "create", "--ipv6", "--subnet", f"{v4}.0/24", "--subnet", sub_dual, "hostsdual")
    a6, a_dual = str(ipaddress.IPv6Network(sub6)[2]), str(ipaddress.IPv6Network(sub_dual)[2])
    base = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\n"
            "ff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
    try:
        cid = out(d, "run", "-d", "--network", "hosts6", "--hostname", "c1.invalid", "--add-host",
                  "other.invalid:192.0.2.3", "--add-host", "other.invalid:2001:db8::1234", "busybox",
                  "sleep", "120").strip()
        extra = "192.0.2.3\tother.invalid\n2001:db8::1234\tother.invalid\n"
        assert out(d, "exec", cid, "cat", "/etc/hosts") == base + extra + f"{a6}\tc1.invalid c1\n"
        d.docker("network", "connect", "hostsdual", cid)
        both = f"{a6}\tc1.invalid c1\n{v4}.2\tc1.invalid c1\n{a_dual}\tc1.invalid c1\n"
        assert out(d, "exec", cid, "cat", "/etc/hosts") == base + extra + both
        d.docker("network", "disconnect", "hosts6", cid)  # its lines only
        dual = f"{v4}.2\tc1.invalid c1\n{a_dual}\tc1.invalid c1\n"
        assert out(d, "exec", cid, "cat", "/etc/hosts") == base + extra + dual
        d.docker("network", "connect", "hosts6", cid)  # at the end again
        assert out(d, "exec", cid, "cat", "/etc/hosts") == base + extra + dual + f"{a6}\tc1.invalid c1\n"
        # a container with IPv6 off: no IPv6 line at all (dockerd 29; 20.10 kept them)
        off = out(d, "run", "--rm", "--network", "hostsdual", "--sysctl", "net.ipv6.conf.all.disable_ipv6=1",
                  "--hostname", "box", "busybox", "cat", "/etc/hosts")
        assert off == f"127.0.0.1\tlocalhost\n{v4}.3\tbox\n", off
    finally:
        ids = out(d, "ps", "-aq", "--filter", "network=hostsdual").split()
        ids += out(d, "ps", "-aq", "--filter", "network=hosts6").split()
        if ids:
            d.docker("rm", "-f", *set(ids), check=False)
        d.docker("network", "rm", "hosts6", "hostsdual", check=False)


def test_default_bridge_with_ipv6_and_fixed_cidr_v6() -> None:
    sub = subnet6()
    net = ipaddress.IPv6Network(sub)
    with running_daemon(("--ipv6", "--fixed-cidr-v6", sub)) as d:
        bridge = inspect(d, "network", "bridge")
        assert bridge["EnableIPv6"] is True and {"Subnet": sub, "Gateway": str(net[1])} in bridge["IPAM"]["Config"]
        cid = out(d, "run", "-d", "busybox", "sleep", "60").strip()
        settings = inspect(d, "container", cid)["NetworkSettings"]
        assert (settings["GlobalIPv6Address"], settings["GlobalIPv6PrefixLen"], settings["IPv6Gateway"]) == (
            str(net[2]), 64, str(net[1]))
        assert settings["Networks"]["bridge"]["GlobalIPv6Address"] == str(net[2])
        out(d, "rm", "-f", cid)


DOCKER_PY = Path("/work/.mirror/docker+docker-py/repo")


def test_docker_py_ipv6_integration_tests(servin: ServinDaemon, tmp_path: Path) -> None:
    """docker-py's own IPv6 tests (tests/integration/api_network_test.py), unchanged but for their
    subnet: 2001:389::/64 is a real prefix, so they run on fd00:389::/64 (ULA) here."""
    if not DOCKER_PY.exists():
        pytest.skip("docker-py's repository is not mirrored here")
    archive = subprocess.run(["git", "--git-dir", str(DOCKER_PY), "archive", "HEAD", "tests"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive, check=True)
    suite = tmp_path / "tests" / "integration" / "api_network_test.py"
    suite.write_text(suite.read_text().replace("2001:389::", "fd00:389::"))
    out(servin, "tag", "busybox", "alpine:3.10")  # their TEST_IMG; busybox has the `top` they run
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", str(suite),
                          "-k", "ipv6"], cwd=tmp_path, env={**servin.env, "PYTHONPATH": str(tmp_path)},
                         capture_output=True, text=True, timeout=300)
    report = res.stdout + res.stderr
    assert res.returncode == 0, report[-3000:] + "\ndaemon log:\n" + servin.log()
    for name in ("test_create_with_ipv6_address", "test_connect_with_ipv6_address",
                 "test_create_network_ipv6_enabled"):
        assert f"PASSED tests/integration/api_network_test.py::TestNetworks::{name}" in report, report
