"""Network scenarios run by tests/kernel/test_network.py in a process of their own, inside a fresh
network namespace (`unshare --net`), which is the "host" here: the bridge, veths and iptables
rules never touch the machine's real namespace and vanish with the process. Container namespace
files live under the temp dir given on the command line; the scenario removes them and checks
that nothing is left. Prints "OK" at the end; any failure is a traceback and exit status 1.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path

from servin.kernel import netns
from servin.kernel.netfilter import Netfilter
from servin.kernel.netlink import ContainerSide, Netlink, mac_from_ip
from servin.network.portmap import parse_publish
from servin.network.service import NetworkService

ECHO = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8); print("listening", flush=True)
while True:
    c, _ = s.accept(); d = c.recv(100); c.sendall(b"echo:" + d + b" from " + c.getpeername()[0].encode()); c.close()
"""


def in_ns(path: Path, *argv: str, **kw) -> subprocess.CompletedProcess[str]:  # noqa: ANN003
    return subprocess.run(["nsenter", f"--net={path}", *argv], capture_output=True, text=True, timeout=20, **kw)


def start_echo(path: Path, port: int) -> subprocess.Popen[str]:
    p = subprocess.Popen(["nsenter", f"--net={path}", sys.executable, "-c", ECHO, str(port)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "listening"
    return p


def tcp(host: str, port: int, data: bytes = b"hi") -> bytes:
    with socket.create_connection((host, port), timeout=5) as c:
        c.sendall(data)
        return c.recv(200)


def tcp_from(path: Path, host: str, port: int) -> str:
    code = (f"import socket;c=socket.create_connection(({host!r},{port}),timeout=5);"
            "c.sendall(b'hi');print(c.recv(200).decode())")
    r = in_ns(path, sys.executable, "-c", code)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def outside_host(tmp: Path, nl: Netlink) -> Path:
    """A second netns "another host" linked to this one by a veth, 198.51.100.2 <-> .1."""
    path = tmp / "outside"
    sock = netns.create(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        nl.ensure_bridge("sout0", ipaddress.IPv4Interface("198.51.100.1/24"), mac="02:00:00:00:00:01")
        nl.create_veth(host_ifname="vethout0001", bridge="sout0", netns_fd=fd, netns_socket=sock,
                       side=ContainerSide(ifname="eth0", address=ipaddress.IPv4Interface("198.51.100.2/24"),
                                          mac=mac_from_ip(ipaddress.IPv4Address("198.51.100.2")),
                                          gateway=ipaddress.IPv4Address("198.51.100.1")))
    finally:
        os.close(fd)
    return path


def scenario_bridge(tmp: Path) -> None:
    nl, nf = Netlink(), Netfilter()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    svc = NetworkService(root=tmp / "net", exec_root=tmp / "exec", netlink=nl, netfilter=nf)
    echo: list[subprocess.Popen[str]] = []
    out: Path | None = None
    try:
        svc.restore(running=())
        assert nl.read_sysctl("net.ipv4.ip_forward") == "1"
        a = svc.connect("c1", "bridge", ports=parse_publish("8080:80") + parse_publish("9000-9001:7000-7001"))
        b = svc.connect("c2", "bridge", ports=parse_publish("127.0.0.1::80"))
        assert (a.endpoint.ip, b.endpoint.ip) == ("172.17.0.2", "172.17.0.3"), (a, b)
        assert a.endpoint.mac == "02:42:ac:11:00:02"
        assert a.netns_path is not None and b.netns_path is not None
        assert netns.is_netns_file(a.netns_path)
        # ping both ways and to the gateway
        for src, dst in ((a.netns_path, "172.17.0.3"), (b.netns_path, "172.17.0.2"), (a.netns_path, "172.17.0.1")):
            r = in_ns(src, "busybox", "ping", "-c", "1", "-W", "2", dst)
            assert r.returncode == 0, (dst, r.stdout, r.stderr)
        r = in_ns(a.netns_path, "ip", "-o", "addr", "show", "eth0")
        assert "172.17.0.2/16" in r.stdout, r.stdout
        echo.append(start_echo(a.netns_path, 80))
        echo.append(start_echo(b.netns_path, 80))
        echo.append(start_echo(a.netns_path, 7001))
        # from this "host": published port on 127.0.0.1 (DNAT in OUTPUT + route_localnet)
        assert tcp("127.0.0.1", 8080).startswith(b"echo:hi from 172.17.0.1")
        assert tcp("127.0.0.1", 9001).startswith(b"echo:hi")
        # [::1]: the daemon's userland proxy, to the container's IPv4 address (the gateway is the source)
        assert tcp("::1", 8080).startswith(b"echo:hi from 172.17.0.1")
        b_port = b.endpoint.ports[0].host_port
        assert 49153 <= b_port <= 60999 or 32768 <= b_port <= 60999
        assert tcp("127.0.0.1", b_port).startswith(b"echo:hi")
        # from "another host" routed to this one: DNAT in PREROUTING, source kept
        out = outside_host(tmp, nl)
        assert tcp_from(out, "198.51.100.1", 8080) == "echo:hi from 198.51.100.2"
        # bound to 127.0.0.1 only: not reachable from outside
        r = in_ns(out, sys.executable, "-c",
                  f"import socket;socket.create_connection(('198.51.100.1',{b_port}),timeout=2)")
        assert r.returncode != 0
        # MASQUERADE: a container reaches "another host", which sees the host's address
        srv = start_echo(out, 5000)
        echo.append(srv)
        assert tcp_from(a.netns_path, "198.51.100.2", 5000) == "echo:hi from 198.51.100.1"
        # a user-defined network: its own subnet; isolated from the default bridge
        n2 = svc.create_network("front")
        assert n2.subnet == "172.18.0.0/16"
        c = svc.connect("c3", "front")
        assert c.endpoint.ip == "172.18.0.2"
        r = in_ns(c.netns_path, "busybox", "ping", "-c", "1", "-W", "1", "172.17.0.2")  # type: ignore[arg-type]
        assert r.returncode != 0, "networks must be isolated"
        # host ports are not handed out twice
        try:
            svc.connect("c4", "bridge", ports=parse_publish("8080:80"))
            raise AssertionError("port 8080 handed out twice")
        except Exception as e:  # noqa: BLE001
            assert "already allocated" in str(e), e
        assert not svc.endpoints("c4")
        # crash: a new service over the same records; c2 is no longer running
        svc.publisher.close()  # the first "daemon" is gone, and its proxy with it
        assert tcp("127.0.0.1", 8080).startswith(b"echo:hi")  # DNAT stays
        svc2 = NetworkService(root=tmp / "net", exec_root=tmp / "exec", netlink=nl, netfilter=nf)
        svc2.restore(running=("c1", "c3"))
        assert not (tmp / "exec" / "netns" / "c2").exists()
        assert tcp("127.0.0.1", 8080).startswith(b"echo:hi")
        assert tcp("::1", 8080).startswith(b"echo:hi")  # the restored one serves [::1] again
        d = svc2.connect("c5", "bridge")
        assert d.endpoint.ip == "172.17.0.3"  # c2's address was released, c1's kept
        try:
            svc2.remove_network("front")
            raise AssertionError("removed a network in use")
        except Exception as e:  # noqa: BLE001
            assert "active endpoints" in str(e), e
        svc2.disconnect("c3", "front")
        svc2.remove_network("front")
        svc2.release("c5")
        svc2.release("c1")
        svc = svc2
    finally:
        for p in echo:
            p.kill()
            p.wait()
        svc.shutdown()
        if out is not None:
            netns.delete(out)
        nl.delete_link("sout0")
    left = [n for n in nl.link_names() if n != "lo"]
    assert left == [], left
    assert nf.lines_mentioning("SERVIN") == [], nf.lines_mentioning("SERVIN")
    assert os.listdir(tmp / "exec" / "netns") == []
    mountinfo = Path("/proc/self/mountinfo").read_text()
    assert str(tmp) not in mountinfo, "a netns file is still mounted"


def scenario_icc_off(tmp: Path) -> None:
    nl, nf = Netlink(), Netfilter()
    svc = NetworkService(root=tmp / "net", exec_root=tmp / "exec", netlink=nl, netfilter=nf, icc=False)
    try:
        svc.restore(running=())
        a = svc.connect("c1", "bridge")
        b = svc.connect("c2", "bridge")
        r = in_ns(a.netns_path, "busybox", "ping", "-c", "1", "-W", "1", b.endpoint.ip)  # type: ignore[arg-type]
        br_nf = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
        if br_nf.exists() and br_nf.read_text().strip() == "1":
            assert r.returncode != 0, "icc=false must block container to container"
        assert in_ns(a.netns_path, "busybox", "ping", "-c", "1", "-W", "1", "172.17.0.1").returncode == 0
    finally:
        svc.shutdown()
    assert [n for n in nl.link_names() if n != "lo"] == []
    assert nf.lines_mentioning("SERVIN") == []


if __name__ == "__main__":
    globals()[f"scenario_{sys.argv[1]}"](Path(sys.argv[2]))
    print("OK")
