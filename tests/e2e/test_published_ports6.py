"""Published ports as dockerd publishes them by family: no host address is IPv4 and IPv6, 0.0.0.0
IPv4 only, [::] IPv6 only; the IPv6 loopback and host IPv6 to an IPv4-only container served by the
daemon's userland proxy (restored at a daemon restart); the ports follow a live gateway change."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from tests.e2e.test_network import WWW, free_port, out
from tests.e2e.test_network_ipv6 import another_host6, fetch, inspect, ip6tables_mentioning, subnet6
from tests.support.daemon import ServinDaemon

pytestmark = pytest.mark.e2e


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError:
        return True
    return False


def port_lines(d: ServinDaemon, cid: str) -> list[str]:
    return out(d, "port", cid).splitlines()


def dnat_targets(port: int, family: str = "iptables") -> list[str]:
    saved = subprocess.run([f"{family}-save", "-t", "nat"], capture_output=True, text=True).stdout
    return [line.split()[-1] for line in saved.splitlines() if f"--dport {port} " in line and "DNAT" in line]


def test_an_ipv4_only_container_is_reached_over_ipv6(servin: ServinDaemon) -> None:
    port = free_port()
    cid = out(servin, "run", "-d", "-p", f"{port}:80", "busybox", "sh", "-c", WWW.format(tag="v4")).strip()
    try:
        # as dockerd with its proxy: [::]:P too, forwarded to the container's IPv4 address
        assert port_lines(servin, cid) == [f"80/tcp -> 0.0.0.0:{port}", f"80/tcp -> [::]:{port}"]
        assert out(servin, "ps", "--format", "{{.Ports}}", "--filter", f"id={cid}").strip() == \
            f"0.0.0.0:{port}->80/tcp, [::]:{port}->80/tcp"
        assert inspect(servin, "container", cid)["NetworkSettings"]["Ports"] == {
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}, {"HostIp": "::", "HostPort": str(port)}]}
        assert fetch(f"http://[::1]:{port}/index.html") == "hello-from-v4\n"
        assert fetch(f"http://127.0.0.1:{port}/index.html") == "hello-from-v4\n"
        with another_host6() as (ns, host_ip):  # from another host, over IPv6
            assert fetch(f"http://[{host_ip}]:{port}/index.html", ns) == "hello-from-v4\n"
        assert not dnat_targets(port, "ip6tables")  # no ip6tables rule: the proxy serves it all
    finally:
        servin.docker("rm", "-f", cid)
    assert refused("::1", port)


def test_ipv4_and_ipv6_any_addresses_do_not_conflict(servin: ServinDaemon) -> None:
    port = free_port()
    a = out(servin, "run", "-d", "-p", f"0.0.0.0:{port}:80", "busybox", "sh", "-c", WWW.format(tag="a")).strip()
    b = out(servin, "run", "-d", "-p", f"[::]:{port}:80", "busybox", "sh", "-c", WWW.format(tag="b")).strip()
    c = ""
    try:
        assert port_lines(servin, a) == [f"80/tcp -> 0.0.0.0:{port}"]
        assert port_lines(servin, b) == [f"80/tcp -> [::]:{port}"]
        assert fetch(f"http://127.0.0.1:{port}/index.html") == "hello-from-a\n"
        assert fetch(f"http://[::1]:{port}/index.html") == "hello-from-b\n"
        res = servin.docker("run", "-d", "-p", f"{port}:80", "busybox", "true", check=False)
        c = res.stdout.decode().strip()
        assert res.returncode != 0 and f"Bind for 0.0.0.0:{port} failed: port is already allocated".encode() \
            in res.stderr, res.stderr
        servin.docker("rm", "-f", a)
        res = servin.docker("start", c, check=False)  # now [::] is b's: dockerd names that one
        assert res.returncode != 0 and f"Bind for :::{port} failed: port is already allocated".encode() \
            in res.stderr, res.stderr
    finally:
        servin.docker("rm", "-f", a, b, *([c] if c else []), check=False)
    assert refused("::1", port) and refused("127.0.0.1", port)


def test_dual_stack_and_ipv6_only_containers_from_the_ipv6_loopback(servin: ServinDaemon) -> None:
    out(servin, "network", "create", "--ipv6", "--subnet", subnet6(), "pp-dual")
    out(servin, "network", "create", "--ipv6", "--ipv4=false", "--subnet", subnet6(), "pp-v6only")
    p1, p2, p3 = free_port(), free_port(), free_port()
    try:
        dual = out(servin, "run", "-d", "--network", "pp-dual", "-p", f"{p1}:80", "busybox", "sh", "-c",
                   WWW.format(tag="dual")).strip()
        ip6 = inspect(servin, "container", dual)["NetworkSettings"]["Networks"]["pp-dual"]["GlobalIPv6Address"]
        assert fetch(f"http://[::1]:{p1}/index.html") == "hello-from-dual\n"  # the proxy, to the IPv6 address
        assert fetch(f"http://127.0.0.1:{p1}/index.html") == "hello-from-dual\n"
        assert dnat_targets(p1, "ip6tables") == [f"[{ip6}]:80"]  # the other IPv6 addresses: DNAT
        assert any("! -d ::1/128" in r for r in ip6tables_mentioning("-A OUTPUT") if "SERVIN" in r)
        only6 = out(servin, "run", "-d", "--network", "pp-v6only", "-p", f"0.0.0.0:{p2}:80", "-p", f"{p3}:81",
                    "busybox", "sh", "-c", WWW.format(tag="only6").replace("exec httpd",
                                                                           "httpd -p 81 -h /www && exec httpd"))
        only6 = only6.strip()
        # no host address: IPv6 only (the container has no IPv4); 0.0.0.0 asked: served by the proxy
        assert sorted(port_lines(servin, only6)) == [f"80/tcp -> 0.0.0.0:{p2}", f"81/tcp -> [::]:{p3}"]
        assert fetch(f"http://127.0.0.1:{p2}/index.html") == "hello-from-only6\n"
        assert fetch(f"http://[::1]:{p3}/index.html") == "hello-from-only6\n"
        assert refused("127.0.0.1", p3)
        servin.docker("rm", "-f", dual, only6)
        assert refused("::1", p1) and refused("127.0.0.1", p2) and refused("::1", p3)
        assert not dnat_targets(p1, "ip6tables")
    finally:
        servin.docker("rm", "-f", "dual", check=False)
        for c in out(servin, "ps", "-aq").split():
            servin.docker("rm", "-f", c, check=False)
        servin.docker("network", "rm", "pp-dual", "pp-v6only", check=False)


def test_proxied_ports_are_served_again_after_a_daemon_restart(daemon: ServinDaemon) -> None:
    port = free_port()
    cid = out(daemon, "run", "-d", "-p", f"{port}:80", "busybox", "sh", "-c", WWW.format(tag="r")).strip()
    assert fetch(f"http://[::1]:{port}/index.html") == "hello-from-r\n"
    daemon.kill9()
    assert refused("::1", port)  # the proxied path is the daemon's
    assert fetch(f"http://127.0.0.1:{port}/index.html") == "hello-from-r\n"  # DNAT stays
    daemon.start()
    assert fetch(f"http://[::1]:{port}/index.html") == "hello-from-r\n"
    daemon.docker("stop", "-t", "1", cid)
    assert refused("::1", port) and refused("127.0.0.1", port)
    daemon.docker("rm", cid)


OWN_ADDRESS = "$(ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1)"


def test_published_ports_follow_the_gateway_endpoint(servin: ServinDaemon) -> None:
    port = free_port()
    # the server answers "old" on the first endpoint's address only, then "new" on the second's
    cid = out(servin, "run", "-d", "-p", f"{port}:80", "busybox", "sh", "-c",
              "mkdir -p /old /new && echo old > /old/index.html && echo new > /new/index.html && "
              f"exec httpd -f -p {OWN_ADDRESS}:80 -h /old").strip()
    out(servin, "network", "create", "pp-gw")
    try:
        old_ip = inspect(servin, "container", cid)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        assert fetch(f"http://127.0.0.1:{port}/index.html") == "old\n"
        out(servin, "network", "connect", "--gw-priority", "10", "pp-gw", cid)
        new_ip = inspect(servin, "container", cid)["NetworkSettings"]["Networks"]["pp-gw"]["IPAddress"]
        out(servin, "exec", cid, "httpd", "-p", f"{new_ip}:80", "-h", "/new")
        assert fetch(f"http://127.0.0.1:{port}/index.html") == "new\n"
        assert fetch(f"http://[::1]:{port}/index.html") == "new\n"
        assert dnat_targets(port) == [f"{new_ip}:80"]
        assert port_lines(servin, cid) == [f"80/tcp -> 0.0.0.0:{port}", f"80/tcp -> [::]:{port}"]
        out(servin, "network", "disconnect", "pp-gw", cid)
        assert fetch(f"http://127.0.0.1:{port}/index.html") == "old\n"
        assert fetch(f"http://[::1]:{port}/index.html") == "old\n"
        assert dnat_targets(port) == [f"{old_ip}:80"]
        assert port_lines(servin, cid) == [f"80/tcp -> 0.0.0.0:{port}", f"80/tcp -> [::]:{port}"]
        saved = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        assert not [line for line in saved.splitlines() if new_ip in line]  # nothing left of the move
    finally:
        servin.docker("rm", "-f", cid)
        servin.docker("network", "rm", "pp-gw", check=False)
    assert not dnat_targets(port) and refused("::1", port)
    assert json.loads(out(servin, "network", "ls", "--format", "json", "--filter", "name=pp-gw") or "null") is None


def test_published_ports_come_back_when_a_container_left_without_networks_is_connected(servin: ServinDaemon) -> None:
    port = free_port()
    cid = out(servin, "run", "-d", "-p", f"{port}:80", "busybox", "sh", "-c",
              "mkdir /www && echo hi > /www/index.html && exec httpd -f -p 80 -h /www").strip()
    try:
        assert fetch(f"http://127.0.0.1:{port}/index.html") == "hi\n"
        out(servin, "network", "disconnect", "bridge", cid)
        assert refused("127.0.0.1", port) and not dnat_targets(port)
        out(servin, "network", "connect", "bridge", cid)
        ip = inspect(servin, "container", cid)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        assert fetch(f"http://127.0.0.1:{port}/index.html") == "hi\n"
        assert fetch(f"http://[::1]:{port}/index.html") == "hi\n"
        assert dnat_targets(port) == [f"{ip}:80"]
        assert port_lines(servin, cid) == [f"80/tcp -> 0.0.0.0:{port}", f"80/tcp -> [::]:{port}"]
    finally:
        servin.docker("rm", "-f", cid)
    assert not dnat_targets(port) and refused("::1", port)
