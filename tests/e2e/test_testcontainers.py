"""testcontainers-python (docker-py at the version the server declares: 1.55) against Servin: what a test suite does
with it (a container with a published port and a log wait, exec, copy in and out, a network with aliases)."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network
from testcontainers.core.wait_strategies import LogMessageWaitStrategy

from tests.support.daemon import ServinDaemon

pytestmark = pytest.mark.e2e


@pytest.fixture
def tc_env(servin: ServinDaemon, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServinDaemon]:
    monkeypatch.setenv("DOCKER_HOST", servin.host)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")  # Ryuk's image is on Docker Hub
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.delenv("TESTCONTAINERS_HOST_OVERRIDE", raising=False)
    yield servin


def test_a_served_port_exec_and_copies(tc_env: ServinDaemon, tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text("served by busybox\n")
    container = (DockerContainer("busybox")
                 .with_command(["sh", "-c", "mkdir -p /www && echo ready && httpd -f -p 80 -h /www"])
                 .with_exposed_ports(80)
                 .waiting_for(LogMessageWaitStrategy("ready")))
    with container:
        container.copy_into_container(page, "/www/index.html")
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(80)}/index.html"
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.read() == b"served by busybox\n"
        code, out = container.exec(["cat", "/www/index.html"])
        assert (code, out) == (0, b"served by busybox\n")
        container.copy_from_container("/www/index.html", tmp_path / "back.html")
        assert (tmp_path / "back.html").read_text() == "served by busybox\n"
        cid = container.get_wrapped_container().id
        assert container.get_docker_client().client.api.inspect_container(cid)["State"]["Running"]
    assert cid not in tc_env.docker("ps", "-aq", "--no-trunc").stdout.decode()


def test_a_network_with_aliases(tc_env: ServinDaemon) -> None:
    with Network() as net:
        server = (DockerContainer("busybox").with_command(["httpd", "-f", "-p", "8000", "-h", "/etc"])
                  .with_network(net).with_network_aliases("web"))
        with server:
            client = DockerContainer("busybox").with_network(net).with_command(["sleep", "30"])
            with client:
                code, out = client.exec(["wget", "-qO-", "http://web:8000/hostname"])
                assert code == 0, out
                assert out.decode().strip() == server.get_wrapped_container().id[:12]
    assert os.path.basename(net.name) not in tc_env.docker("network", "ls").stdout.decode()
