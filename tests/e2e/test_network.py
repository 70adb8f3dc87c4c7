"""The default bridge network and published ports, through the docker CLI."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator

from tests.support.daemon import ServinDaemon

WWW = "mkdir -p /www && echo hello-from-{tag} > /www/index.html && exec httpd -f -p 80 -h /www"


def out(d: ServinDaemon, *args: str) -> str:
    return d.docker(*args).stdout.decode()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port: int, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def veths_on(bridge: str) -> list[str]:
    res = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True)
    return [line.split(":")[1].strip() for line in res.stdout.splitlines()]


def veths_gone(bridge: str, timeout: float = 5) -> list[str]:
    """The kernel removes a dead container's veth pair with its namespace, asynchronously."""
    import time

    deadline = time.monotonic() + timeout
    while (left := veths_on(bridge)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_published_port_answers_on_loopback(servin: ServinDaemon) -> None:
    port = free_port()
    cid = out(servin, "run", "-d", "-p", f"{port}:80", "busybox", "sh", "-c", WWW.format(tag="p")).strip()
    try:
        assert http_get(port) == "hello-from-p\n"
        # as dockerd (where the host has IPv6): [::] too, proxied to the container's IPv4 address
        assert out(servin, "port", cid).strip() == f"80/tcp -> 0.0.0.0:{port}\n80/tcp -> [::]:{port}"
        assert out(servin, "port", cid, "80").strip() == f"0.0.0.0:{port}\n[::]:{port}"
        assert f"0.0.0.0:{port}->80/tcp" in out(servin, "ps", "--format", "{{.Ports}}", "--filter", f"id={cid}")
    finally:
        servin.docker("rm", "-f", cid)
    assert veths_gone(servin.bridge) == []


def test_publish_all_uses_exposed_ports(servin: ServinDaemon) -> None:
    cid = out(servin, "run", "-d", "-P", "--expose", "80", "busybox", "sh", "-c", WWW.format(tag="P")).strip()
    try:
        ports = json.loads(out(servin, "inspect", "-f", "{{json .NetworkSettings.Ports}}", cid))
        assert list(ports) == ["80/tcp"]
        binding, binding6 = ports["80/tcp"]  # IPv4's and IPv6's, one host port, as dockerd
        assert binding["HostIp"] == "0.0.0.0" and 49153 <= int(binding["HostPort"]) <= 60999
        assert binding6 == {"HostIp": "::", "HostPort": binding["HostPort"]}
        assert http_get(int(binding["HostPort"])) == "hello-from-P\n"
        assert out(servin, "port", cid, "80/tcp").strip().splitlines()[0] == f"0.0.0.0:{binding['HostPort']}"
    finally:
        servin.docker("rm", "-f", cid)


def test_inspect_network_settings(servin: ServinDaemon) -> None:
    cid = out(servin, "run", "-d", "-p", f"{free_port()}:80", "busybox", "sleep", "60").strip()
    try:
        ns = json.loads(out(servin, "inspect", "-f", "{{json .NetworkSettings}}", cid))
        gw = servin.bip.split("/")[0]
        subnet = gw.rsplit(".", 1)[0]
        assert ns["Gateway"] == gw and ns["IPPrefixLen"] == 24
        assert ns["IPAddress"].startswith(subnet + ".") and ns["IPAddress"] != gw
        assert ns["MacAddress"].startswith("02:42:")
        br = ns["Networks"]["bridge"]
        assert {br[k] for k in ("IPAddress", "Gateway", "MacAddress")} == {ns["IPAddress"], gw, ns["MacAddress"]}
        assert len(br["NetworkID"]) == 64 and br["EndpointID"] == ns["EndpointID"] and br["IPPrefixLen"] == 24
        assert list(ns["Ports"]) == ["80/tcp"]
        # the container sees the same address, and its /etc/hosts names it
        addr = out(servin, "exec", cid, "ip", "-4", "-o", "addr", "show", "eth0")
        assert f"{ns['IPAddress']}/24" in addr
        hosts = out(servin, "exec", cid, "cat", "/etc/hosts")
        assert f"{ns['IPAddress']}\t{cid[:12]}" in hosts
    finally:
        servin.docker("rm", "-f", cid)
    # a container that is not running has no address, but keeps its network (as Docker)
    cid = out(servin, "create", "busybox", "true").strip()
    try:
        ns = json.loads(out(servin, "inspect", "-f", "{{json .NetworkSettings}}", cid))
        assert ns["IPAddress"] == "" and ns["Ports"] == {} and list(ns["Networks"]) == ["bridge"]
        assert ns["Networks"]["bridge"]["IPAddress"] == "" and ns["Networks"]["bridge"]["EndpointID"] == ""
    finally:
        servin.docker("rm", "-f", cid)


def test_two_containers_ping_each_other(servin: ServinDaemon) -> None:
    a = out(servin, "run", "-d", "busybox", "sleep", "60").strip()
    b = out(servin, "run", "-d", "busybox", "sleep", "60").strip()
    try:
        ip_a = out(servin, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", a).strip()
        ip_b = out(servin, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", b).strip()
        assert ip_a and ip_b and ip_a != ip_b
        assert "1 packets received" in out(servin, "exec", a, "ping", "-c", "1", "-W", "5", ip_b)
        assert "1 packets received" in out(servin, "exec", b, "ping", "-c", "1", "-W", "5", ip_a)
        assert len(veths_on(servin.bridge)) == 2
    finally:
        servin.docker("rm", "-f", a, b)
    assert veths_gone(servin.bridge) == []


def test_exited_container_releases_its_address(servin: ServinDaemon) -> None:
    port = free_port()
    assert out(servin, "run", "--rm", "-p", f"{port}:80", "busybox", "true") == ""
    # the port is free again at once: a second container can take it
    cid = out(servin, "run", "-d", "-p", f"{port}:80", "busybox", "sleep", "60").strip()
    servin.docker("rm", "-f", cid)
    assert veths_gone(servin.bridge) == []


def test_network_none_and_host_are_unchanged(servin: ServinDaemon) -> None:
    links = out(servin, "run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    host = out(servin, "run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
    assert servin.bridge in host


def test_address_and_port_survive_daemon_kill9(daemon: ServinDaemon) -> None:
    d = daemon
    port = free_port()
    keep = out(d, "run", "-d", "-p", f"{port}:80", "busybox", "sh", "-c", WWW.format(tag="k")).strip()
    gone = out(d, "run", "-d", "busybox", "sleep", "1").strip()
    ip_keep = out(d, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", keep).strip()
    ip_gone = out(d, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", gone).strip()
    assert ip_gone and ip_gone != ip_keep
    assert http_get(port) == "hello-from-k\n"
    d.kill9()
    time.sleep(1.5)  # `gone` exits while no daemon runs
    assert http_get(port) == "hello-from-k\n"  # the container keeps its network meanwhile
    d.start()
    assert out(d, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", keep).strip() == ip_keep
    assert out(d, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", gone).strip() == ""
    assert http_get(port) == "hello-from-k\n"
    assert len(veths_on(d.bridge)) == 1  # the exited one's endpoint went at restore
    # nothing handed out twice: the port is taken, the address of the exited one is free again
    res = d.docker("run", "-d", "-p", f"{port}:80", "busybox", "sleep", "60", check=False)
    assert res.returncode != 0 and b"port is already allocated" in res.stderr
    d.docker("rm", "-f", res.stdout.decode().strip() or "x", check=False)
    ips = set()
    for _ in range(2):
        cid = out(d, "run", "-d", "busybox", "sleep", "60").strip()
        ips.add(out(d, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid).strip())
    assert ip_keep not in ips and len(ips) == 2
    d.docker("rm", "-f", keep)
    assert http_get_fails(port)


def http_get_fails(port: int) -> bool:
    try:
        http_get(port, timeout=0)
    except OSError:
        return True
    return False


def test_a_second_daemon_keeps_the_first_ones_ports(servin: ServinDaemon) -> None:
    from tests.support.daemon import running_daemon

    port = free_port()
    cid = out(servin, "run", "-d", "-p", f"{port}:80", "busybox", "sh", "-c", WWW.format(tag="first")).strip()
    try:
        assert http_get(port) == "hello-from-first\n"
        with running_daemon() as other:  # its start rebuilds only its own rules in the shared chains
            other_port = free_port()
            other.docker("run", "-d", "-p", f"{other_port}:80", "busybox", "sh", "-c", WWW.format(tag="second"))
            assert http_get(other_port) == "hello-from-second\n"
            assert http_get(port, timeout=3) == "hello-from-first\n"
        assert http_get(port, timeout=3) == "hello-from-first\n"  # and its cleanup left ours alone
    finally:
        servin.docker("rm", "-f", cid)


def test_user_defined_network(servin: ServinDaemon) -> None:
    d = servin
    subnet = f"10.214.{random.randint(1, 250)}.0/24"
    d.docker("network", "create", "--subnet", subnet, "--label", "team=x", "appnet")
    try:
        net = json.loads(out(d, "network", "inspect", "appnet"))[0]
        assert net["Driver"] == "bridge" and net["IPAM"]["Config"][0]["Subnet"] == subnet
        assert net["Labels"] == {"team": "x"}
        assert "appnet" in out(d, "network", "ls", "--filter", "label=team=x", "--format", "{{.Name}}").split()
        a = out(d, "run", "-d", "--network", "appnet", "--name", "app-a", "busybox", "sleep", "60").strip()
        b = out(d, "run", "-d", "--network", "appnet", "--name", "app-b", "busybox", "sleep", "60").strip()
        ip_b = json.loads(out(d, "inspect", b))[0]["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
        assert ip_b.startswith(subnet.rsplit(".", 1)[0] + ".")
        assert "1 packets received" in out(d, "exec", a, "ping", "-c", "1", "-W", "5", ip_b)
        members = json.loads(out(d, "network", "inspect", "appnet"))[0]["Containers"]
        assert {m["Name"] for m in members.values()} == {"app-a", "app-b"}
        res = d.docker("network", "rm", "appnet", check=False)
        assert res.returncode != 0 and b"has active endpoints" in res.stderr
        d.docker("rm", "-f", a, b)
        res = d.docker("run", "--rm", "--network", "nosuchnet", "busybox", "true", check=False)
        assert b"network nosuchnet not found" in res.stderr
        res = d.docker("network", "rm", "bridge", check=False)
        assert b"pre-defined network and cannot be removed" in res.stderr
    finally:
        d.docker("rm", "-f", "app-a", "app-b", check=False)
        d.docker("network", "rm", "appnet", check=False)
    assert "appnet" not in out(d, "network", "ls", "--format", "{{.Name}}").split()


def test_network_connect_and_prune(servin: ServinDaemon) -> None:
    d = servin
    side, unused, kept = (f"10.216.{third}.0/24" for third in random.sample(range(1, 251), 3))  # never the same
    d.docker("network", "create", "--subnet", side, "sidenet")
    d.docker("network", "create", "--subnet", unused, "unused-net")
    cid = out(d, "run", "-d", "busybox", "sleep", "60").strip()
    try:
        d.docker("network", "connect", "sidenet", cid)
        links = out(d, "exec", cid, "ls", "/sys/class/net").split()
        assert sorted(links) == ["eth0", "eth1", "lo"]
        d.docker("network", "disconnect", "sidenet", cid)
        assert sorted(out(d, "exec", cid, "ls", "/sys/class/net").split()) == ["eth0", "lo"]
        d.docker("network", "create", "--label", "keep=1", "--subnet", kept, "kept-net")
        # filters: until (older than an hour: none of them), label! (not kept-net)
        assert out(d, "network", "prune", "-f", "--filter", "until=1h").strip() == ""
        pruned = out(d, "network", "prune", "-f", "--filter", "label!=keep=1")
        assert "unused-net" in pruned and "sidenet" in pruned and "kept-net" not in pruned
        assert "kept-net" in out(d, "network", "ls", "--format", "{{.Name}}").split()
    finally:
        d.docker("rm", "-f", cid)
        d.docker("network", "rm", "sidenet", "unused-net", "kept-net", check=False)


def test_add_host_and_dns_options(servin: ServinDaemon) -> None:
    text = out(servin, "run", "--rm", "--add-host", "db.local:10.1.2.3", "--add-host", "gw:host-gateway",
               "--dns", "10.9.9.9", "--dns-search", "corp.example", "--dns-option", "ndots:2",
               "--hostname", "box7", "busybox", "sh", "-c", "cat /etc/hosts; echo ---; cat /etc/resolv.conf")
    hosts, resolv = text.split("---\n")
    gateway = json.loads(out(servin, "network", "inspect", "bridge"))[0]["IPAM"]["Config"][0]["Gateway"]
    assert "10.1.2.3\tdb.local" in hosts and f"{gateway}\tgw" in hosts
    assert hosts.strip().splitlines()[-1].endswith("\tbox7")  # its own address last
    assert resolv.splitlines() == ["nameserver 10.9.9.9", "search corp.example", "options ndots:2"]
    res = servin.docker("run", "--rm", "--add-host", "bad:notanip", "busybox", "true", check=False)
    assert b"invalid IP address in add-host" in res.stderr


@contextlib.contextmanager
def another_host() -> Iterator[tuple[str, str]]:
    """A network namespace routed to this machine through a veth pair, as a second host on the
    LAN would be: yields (its name, this machine's address as it sees it)."""
    tag = uuid.uuid4().hex[:6]
    ns, host_if, peer_if = f"svh{tag}", f"svh{tag}a", f"svh{tag}b"
    third = random.randint(1, 250)
    host_ip, peer_ip = f"10.218.{third}.1", f"10.218.{third}.2"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for cmd in (["ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if, "netns", ns],
                    ["ip", "addr", "add", f"{host_ip}/30", "dev", host_if],
                    ["ip", "link", "set", host_if, "up"],
                    ["ip", "-n", ns, "addr", "add", f"{peer_ip}/30", "dev", peer_if],
                    ["ip", "-n", ns, "link", "set", peer_if, "up"],
                    ["ip", "-n", ns, "link", "set", "lo", "up"],
                    ["ip", "-n", ns, "route", "add", "default", "via", host_ip]):
            subprocess.run(cmd, check=True)
        yield ns, host_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_published_port_answers_another_host(servin: ServinDaemon) -> None:
    port = free_port()
    cid = out(servin, "run", "-d", "-p", f"{port}:80", "busybox", "sh", "-c", WWW.format(tag="lan")).strip()
    fetch = ("import sys, urllib.request; "
             "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())")
    try:
        http_get(port)  # up
        with another_host() as (ns, host_ip):
            res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", fetch,
                                  f"http://{host_ip}:{port}/index.html"], capture_output=True, timeout=30)
            assert res.stdout == b"hello-from-lan\n", res.stderr
            # a port nobody published is not forwarded
            res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", fetch,
                                  f"http://{host_ip}:{free_port()}/index.html"], capture_output=True, timeout=30)
            assert res.returncode != 0 and b"Connection refused" in res.stderr
    finally:
        servin.docker("rm", "-f", cid)


def test_aliases_on_a_user_network_carry_the_short_id_and_hostname(servin: ServinDaemon) -> None:
    """As dockerd 26+ answers inspect below API 1.45, whatever the state (docker-py checks it at once)."""
    net = f"al-{uuid.uuid4().hex[:6]}"
    servin.docker("network", "create", net)
    try:
        fmt = "{{json (index .NetworkSettings.Networks \"" + net + "\").Aliases}}"
        cid = servin.docker("create", "--network", net, "--network-alias", "hello", "--hostname", "web",
                            "busybox", "true").stdout.decode().strip()

        def aliases(version: str) -> list[str]:
            res = subprocess.run(["docker", "inspect", "-f", fmt, cid], capture_output=True, check=True,
                                 env=dict(servin.env, DOCKER_API_VERSION=version))
            return json.loads(res.stdout)

        assert aliases("1.44") == ["hello", cid[:12], "web"]
        servin.docker("start", "-a", cid)
        assert aliases("1.44") == ["hello", cid[:12], "web"]
        assert aliases("1.45") == ["hello"]  # from 1.45: as submitted
        servin.docker("rm", cid)
    finally:
        servin.docker("network", "rm", net)


def test_network_list_with_a_trailing_slash(servin: ServinDaemon) -> None:
    res = subprocess.run(["curl", "-sS", "--unix-socket", str(servin.socket), "http://x/v1.41/networks/"],
                         capture_output=True, check=True)
    assert "bridge" in [n["Name"] for n in json.loads(res.stdout)]
