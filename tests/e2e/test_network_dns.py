"""User-defined networks: the embedded DNS, aliases, --ip/--mac-address, stopped containers'
networks and `container:<id>` mode, through the docker CLI."""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import threading
from collections.abc import Iterator

import docker
import pytest
from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSServer

from tests.support.daemon import ServinDaemon

pytestmark = pytest.mark.e2e


def out(d: ServinDaemon, *args: str) -> str:
    return d.docker(*args).stdout.decode()


_THIRDS = iter(random.sample(range(1, 251), 250))


@contextlib.contextmanager
def network(d: ServinDaemon, name: str, *extra: str) -> Iterator[str]:
    """A user-defined network on a test subnet; removed (with its containers) afterwards."""
    third = next(_THIRDS)  # distinct per network: two random picks once collided
    subnet = f"10.217.{third}.0/24"
    d.docker("network", "create", "--subnet", subnet, *extra, name)
    try:
        yield subnet.rsplit(".", 1)[0]
    finally:
        ids = out(d, "ps", "-aq", "--filter", f"network={name}").split()
        if ids:
            d.docker("rm", "-f", *ids, check=False)
        d.docker("network", "rm", name, check=False)


def lookup(d: ServinDaemon, cid: str, name: str) -> list[str]:
    """The addresses `nslookup` inside the container finds for `name` (empty: not found)."""
    res = d.docker("exec", cid, "nslookup", "-type=a", name, check=False)
    text = res.stdout.decode()
    answers = text.split("Name:", 1)[1] if "Name:" in text else ""
    return [line.split()[-1] for line in answers.splitlines() if line.startswith("Address")]


def test_names_and_aliases_resolve_on_the_same_network_only(servin: ServinDaemon) -> None:
    d = servin
    with network(d, "dnsnet") as prefix, network(d, "othernet"):
        web = out(d, "run", "-d", "--network", "dnsnet", "--name", "web", "--network-alias", "www",
                  "busybox", "sleep", "120").strip()
        client = out(d, "run", "-d", "--network", "dnsnet", "--name", "client", "busybox", "sleep", "120").strip()
        outsider = out(d, "run", "-d", "--network", "othernet", "--name", "outsider", "busybox",
                       "sleep", "120").strip()
        web_ip = json.loads(out(d, "inspect", web))[0]["NetworkSettings"]["Networks"]["dnsnet"]["IPAddress"]
        assert web_ip.startswith(prefix + ".")
        resolv = out(d, "exec", client, "cat", "/etc/resolv.conf").splitlines()
        assert resolv[0] == f"nameserver {prefix}.1" and "options ndots:0" in resolv[-1]
        assert lookup(d, client, "web") == [web_ip]
        assert lookup(d, client, "WWW") == [web_ip]  # names are case-insensitive
        assert lookup(d, client, web[:12]) == [web_ip]  # the short ID is an alias on user networks
        assert lookup(d, client, "web.dnsnet") == [web_ip] and lookup(d, client, "www.dnsnet") == [web_ip]
        assert lookup(d, client, "web.othernet") == []  # name.network: on that network only
        inspect = subprocess.run(["docker", "inspect", web], env=dict(d.env, DOCKER_API_VERSION="1.44"),
                                 capture_output=True, check=True).stdout  # below 1.45: with the short ID
        aliases = json.loads(inspect)[0]["NetworkSettings"]["Networks"]["dnsnet"]["Aliases"]
        assert aliases == ["www", web[:12]]
        assert "1 packets received" in out(d, "exec", client, "ping", "-c", "1", "-W", "5", "web")
        assert lookup(d, outsider, "web") == []  # another network does not see it
        # the default bridge has no embedded DNS: its containers keep the host's resolvers
        plain = out(d, "run", "--rm", "busybox", "cat", "/etc/resolv.conf")
        assert f"nameserver {prefix}.1" not in plain


def test_connect_adds_names_live_and_disconnect_removes_them(servin: ServinDaemon) -> None:
    d = servin
    with network(d, "livenet") as prefix:
        client = out(d, "run", "-d", "--network", "livenet", "busybox", "sleep", "120").strip()
        late = out(d, "run", "-d", "--name", "late", "busybox", "sleep", "120").strip()  # default bridge
        assert lookup(d, client, "late") == []
        d.docker("network", "connect", "--alias", "latecomer", "--ip", f"{prefix}.77", "livenet", late)
        assert lookup(d, client, "late") == [f"{prefix}.77"]
        assert lookup(d, client, "latecomer") == [f"{prefix}.77"]
        d.docker("network", "disconnect", "livenet", late)
        assert lookup(d, client, "late") == []
        d.docker("rm", "-f", late)


class _Upstream(BaseResolver):
    def resolve(self, request, handler):  # type: ignore[no-untyped-def]
        reply = request.reply()
        if str(request.q.qname) == "outside.example.":
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.55"), ttl=60))
        return reply


@pytest.fixture
def upstream_dns() -> Iterator[str]:
    """A DNS server of the test's own on a loopback address (the daemon forwards from the host)."""
    addr = f"127.0.{random.randint(1, 250)}.{random.randint(2, 250)}"
    server = DNSServer(_Upstream(), address=addr, port=53)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield addr
    finally:
        server.server.shutdown()
        server.server.server_close()


def test_other_names_are_forwarded_except_on_internal_networks(servin: ServinDaemon, upstream_dns: str) -> None:
    d = servin
    with network(d, "fwdnet"), network(d, "sealed", "--internal"):
        cid = out(d, "run", "-d", "--network", "fwdnet", "--dns", upstream_dns, "busybox", "sleep", "120").strip()
        assert lookup(d, cid, "outside.example") == ["192.0.2.55"]
        assert lookup(d, cid, "nothing.example") == []
        sealed = out(d, "run", "-d", "--network", "sealed", "--name", "sealed-a", "--dns", upstream_dns,
                     "busybox", "sleep", "120").strip()
        assert lookup(d, sealed, "outside.example") == []
        assert lookup(d, sealed, "sealed-a") != []  # names still resolve inside an internal network


def test_stopped_container_keeps_networks_and_connects_at_start(servin: ServinDaemon) -> None:
    d = servin
    with network(d, "laternet") as prefix:
        cid = out(d, "create", "--name", "sleeper", "busybox", "sleep", "120").strip()
        d.docker("network", "connect", "--ip", f"{prefix}.9", "laternet", cid)
        nets = json.loads(out(d, "inspect", cid))[0]["NetworkSettings"]["Networks"]
        assert sorted(nets) == ["bridge", "laternet"]
        assert nets["laternet"]["IPAMConfig"] == {"IPv4Address": f"{prefix}.9"} and nets["laternet"]["IPAddress"] == ""
        d.docker("start", cid)
        assert sorted(out(d, "exec", cid, "ls", "/sys/class/net").split()) == ["eth0", "eth1", "lo"]
        assert f"inet {prefix}.9/24" in out(d, "exec", cid, "ip", "-4", "addr", "show", "eth1")
        d.docker("stop", "-t", "0", cid)
        nets = json.loads(out(d, "inspect", cid))[0]["NetworkSettings"]["Networks"]
        assert sorted(nets) == ["bridge", "laternet"] and nets["bridge"]["IPAddress"] == ""
        d.docker("network", "disconnect", "laternet", cid)
        res = d.docker("network", "disconnect", "laternet", cid, check=False)  # dockerd's words for a stopped one
        assert f"container {cid} is not connected to the network laternet".encode() in res.stderr
        d.docker("start", cid)
        assert sorted(out(d, "exec", cid, "ls", "/sys/class/net").split()) == ["eth0", "lo"]
        res = d.docker("network", "connect", "bridge", cid, check=False)
        assert b"already exists in network bridge" in res.stderr
        res = d.docker("network", "disconnect", "laternet", cid, check=False)
        assert f"container {cid} is not connected to network laternet".encode() in res.stderr
        d.docker("rm", "-f", cid)


def test_fixed_ip_and_mac_address(servin: ServinDaemon) -> None:
    d = servin
    with network(d, "fixednet") as prefix:
        text = out(d, "run", "--rm", "--network", "fixednet", "--ip", f"{prefix}.200",
                   "busybox", "ip", "addr", "show", "eth0")
        assert f"inet {prefix}.200/24" in text
        # docker CLI 28 sends --mac-address only to API >= 1.44; docker-py sends Config.MacAddress
        client = docker.DockerClient(base_url=d.host, version="1.41")
        text = client.containers.run("busybox", ["ip", "addr", "show", "eth0"], mac_address="02:42:ac:11:00:99",
                                     network="fixednet", remove=True).decode()
        client.close()
        assert "link/ether 02:42:ac:11:00:99" in text
        res = d.docker("run", "--rm", "--ip", "172.17.0.99", "busybox", "true", check=False)
        assert b"user specified IP address is supported on user defined networks only" in res.stderr
        res = d.docker("run", "--rm", "--network", "fixednet", "--ip", "10.1.1.1", "busybox", "true", check=False)
        assert res.returncode != 0 and b"10.1.1.1" in res.stderr


def test_container_network_mode_shares_the_namespace(servin: ServinDaemon) -> None:
    d = servin
    owner = out(d, "run", "-d", "--hostname", "owner-host", "busybox", "sleep", "120").strip()
    try:
        ip = json.loads(out(d, "inspect", owner))[0]["NetworkSettings"]["IPAddress"]
        text = out(d, "run", "--rm", "--network", f"container:{owner}", "busybox", "sh", "-c",
                   "ip -4 addr show eth0; hostname")
        assert f"inet {ip}/" in text and text.strip().splitlines()[-1] == "owner-host"
        res = d.docker("run", "--rm", "--network", f"container:{owner}", "-p", "80", "busybox", "true", check=False)
        assert b"conflicting options: port publishing and the container type network mode" in res.stderr
        stopped = out(d, "create", "busybox", "true").strip()
        res = d.docker("run", "--rm", "--network", f"container:{stopped}", "busybox", "true", check=False)
        assert b"cannot join network of a non running container" in res.stderr
        d.docker("rm", stopped)
    finally:
        d.docker("rm", "-f", owner)


def test_domainname_and_sandbox_key(servin: ServinDaemon) -> None:
    d = servin
    cid = out(d, "run", "-d", "--hostname", "box", "--domainname", "example.org", "busybox", "sleep", "60").strip()
    try:
        assert out(d, "exec", cid, "cat", "/proc/sys/kernel/domainname").strip() == "example.org"
        hosts = out(d, "exec", cid, "cat", "/etc/hosts").strip().splitlines()
        # as dockerd (20.10 and 29): "<ip>\t<fqdn> <short>", one tab then the names
        assert hosts[-1].split("\t")[1:] == ["box.example.org box"]
        settings = json.loads(out(d, "inspect", cid))[0]["NetworkSettings"]
        assert settings["SandboxKey"] and settings["SandboxKey"].endswith(cid)
    finally:
        d.docker("rm", "-f", cid)


def test_stats_report_interface_counters(servin: ServinDaemon) -> None:
    d = servin
    cid = out(d, "run", "-d", "busybox", "sleep", "60").strip()
    none = out(d, "run", "-d", "--network", "none", "busybox", "sleep", "60").strip()
    client = docker.DockerClient(base_url=d.host, version="1.41")
    try:
        gateway = d.bip.split("/")[0]
        d.docker("exec", cid, "ping", "-c", "2", "-W", "5", gateway)
        nets = client.api.stats(cid, stream=False, one_shot=True)["networks"]
        assert list(nets) == ["eth0"]
        assert nets["eth0"]["tx_packets"] >= 2 and nets["eth0"]["rx_bytes"] > 0
        assert "networks" not in client.api.stats(none, stream=False, one_shot=True)
    finally:
        client.close()
        d.docker("rm", "-f", cid, none)


def test_names_resolve_again_after_daemon_kill9(daemon: ServinDaemon) -> None:
    d = daemon
    with network(d, "crashnet") as prefix:
        out(d, "run", "-d", "--network", "crashnet", "--name", "db", "busybox", "sleep", "120")
        client = out(d, "run", "-d", "--network", "crashnet", "busybox", "sleep", "120").strip()
        db_ip = lookup(d, client, "db")
        assert db_ip and db_ip[0].startswith(prefix + ".")
        d.kill9()
        d.start()  # a new DNS port: the rules are rebuilt for it
        assert lookup(d, client, "db") == db_ip


def test_automatic_subnet_skips_networks_the_host_routes(servin: ServinDaemon) -> None:
    import ipaddress
    import subprocess
    import uuid

    d = servin
    dummy = f"svd{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "link", "add", dummy, "type", "veth", "peer", "name", dummy + "p"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "172.17.0.1/16", "dev", dummy], check=True)
        subprocess.run(["ip", "link", "set", dummy, "up"], check=True)
        d.docker("network", "create", "autonet")
        subnet = json.loads(out(d, "network", "inspect", "autonet"))[0]["IPAM"]["Config"][0]["Subnet"]
        assert not ipaddress.IPv4Network(subnet).overlaps(ipaddress.IPv4Network("172.17.0.0/16"))
    finally:
        d.docker("network", "rm", "autonet", check=False)
        subprocess.run(["ip", "link", "del", dummy], capture_output=True)


def test_legacy_links_on_the_default_bridge(servin: ServinDaemon) -> None:
    d = servin
    db = out(d, "run", "-d", "--name", "legacy-db", "-e", "PASSWORD=x", "--expose", "5432", "busybox",
             "sleep", "120").strip()
    try:
        db_ip = json.loads(out(d, "inspect", db))[0]["NetworkSettings"]["IPAddress"]
        text = out(d, "run", "--rm", "--name", "legacy-app", "--link", "legacy-db:db", "busybox", "sh", "-c",
                   "cat /etc/hosts; env")
        assert f"{db_ip}\tdb {db[:12]} legacy-db" in text
        for var in ("DB_NAME=/legacy-app/db", "DB_ENV_PASSWORD=x", f"DB_PORT=tcp://{db_ip}:5432",
                    f"DB_PORT_5432_TCP_ADDR={db_ip}", "DB_PORT_5432_TCP_PORT=5432"):
            assert var in text.splitlines()
        app = out(d, "create", "--name", "legacy-app2", "--link", "legacy-db", "busybox", "true").strip()
        assert json.loads(out(d, "inspect", app))[0]["HostConfig"]["Links"] == ["/legacy-db:/legacy-app2/legacy-db"]
        d.docker("rm", "--link", "legacy-app2/legacy-db")  # removes the link, not a container
        assert json.loads(out(d, "inspect", app))[0]["HostConfig"]["Links"] is None
        d.docker("rm", app)
        res = d.docker("run", "--rm", "--link", "nobody-here:x", "busybox", "true", check=False)
        assert b"could not get container for nobody-here" in res.stderr
    finally:
        d.docker("rm", "-f", db)


def test_network_driver_options_mtu_and_masquerade(servin: ServinDaemon) -> None:
    import subprocess

    d = servin
    with network(d, "mtunet", "--opt", "com.docker.network.driver.mtu=1400",
                 "--opt", "com.docker.network.bridge.enable_ip_masquerade=false") as prefix:
        text = out(d, "run", "--rm", "--network", "mtunet", "busybox", "ip", "link", "show", "eth0")
        assert "mtu 1400" in text
        rules = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
        assert f"-s {prefix}.0/24" not in rules  # no MASQUERADE of this subnet
    res = d.docker("network", "create", "--opt", "com.docker.network.driver.mtu=abc", "badmtu", check=False)
    assert res.returncode != 0 and b"invalid MTU number: abc" in res.stderr


def test_dns_works_where_the_hosts_input_policy_drops(servin: ServinDaemon) -> None:
    """A host firewall (ufw, firewalld) that drops what it does not know on INPUT: the embedded DNS
    still answers, as Docker's does inside the container."""
    import subprocess

    d = servin
    with network(d, "fwnet"):
        net_id = out(d, "network", "inspect", "-f", "{{.Id}}", "fwnet").strip()
        bridge = f"br-{net_id[:12]}"
        out(d, "run", "-d", "--network", "fwnet", "--name", "fw-db", "busybox", "sleep", "120")
        client = out(d, "run", "-d", "--network", "fwnet", "busybox", "sleep", "120").strip()
        drop = ["INPUT", "2", "-i", bridge, "-j", "DROP"]  # below Servin's jump, as a firewall's rules are
        subprocess.run(["iptables", "-I", *drop], check=True)
        try:
            assert lookup(d, client, "fw-db") != []
        finally:
            subprocess.run(["iptables", "-D", "INPUT", "-i", bridge, "-j", "DROP"], check=True)
