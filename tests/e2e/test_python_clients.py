"""`servin.APIClient` and `servin.ManagementClient` against a real daemon on a TCP listener that requires a
key: the reference's examples, the error codes a user catches, and the examples of docs/python-client.md,
run as written."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

import servin
from tests.e2e.test_access import Listener
from tests.support.daemon import running_daemon
from tests.support.listeners import free_port

pytestmark = pytest.mark.e2e
DOC = Path(__file__).resolve().parents[2] / "docs" / "python-client.md"


@pytest.fixture(scope="module")
def tcp() -> Iterator[Listener]:
    port = free_port()
    with running_daemon(("-H", f"tcp://127.0.0.1:{port}")) as d:
        yield Listener(d, port)


@pytest.fixture(scope="module")
def keys(tcp: Listener) -> dict[str, str]:
    """A read and a write key, made with ManagementClient on the unix socket (trusted without a key)."""
    local = servin.ManagementClient(base_url=f"unix://{tcp.d.socket}")
    made = {scope: local.keys.create(f"py-{scope}", scope=scope)["key"] for scope in ("read", "write")}
    assert {k["name"] for k in local.keys.list()} >= {"py-read", "py-write"}
    return made


def test_the_reference_example_with_docker_py(tcp: Listener, keys: dict[str, str]) -> None:
    client = servin.APIClient(base_url=f"http://127.0.0.1:{tcp.port}", api_key=keys["write"])
    published = free_port()
    try:
        assert "py-ref" not in [c.name for c in client.containers.list(all=True)]
        container = client.containers.create(image="busybox", name="py-ref", ports={"80/tcp": published},
                                             command=["sh", "-c", "echo hello from py-ref; sleep 1"])
        container.start()
        assert container.logs(follow=True) == b"hello from py-ref\n"  # returns when the container stops
        container.reload()
        assert container.attrs["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": str(published)}]}
        assert container.status == "exited"
    finally:
        tcp.d.docker("rm", "-f", "py-ref", check=False)
    anonymous = servin.APIClient(base_url=f"tcp://127.0.0.1:{tcp.port}", version="1.41")
    with pytest.raises(docker.errors.APIError) as caught:
        anonymous.containers.list()
    assert caught.value.response.status_code == 401
    with pytest.raises(docker.errors.APIError) as caught:  # a read key may look, not create
        servin.APIClient(base_url=f"tcp://127.0.0.1:{tcp.port}", api_key=keys["read"]).containers.create("busybox")
    assert caught.value.response.status_code == 403


def test_the_management_client(tcp: Listener, keys: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{tcp.port}/api/v1"
    mgmt = servin.ManagementClient(api_key=keys["write"], base_url=url)
    reader = servin.ManagementClient(keys["read"], url)
    tcp.d.docker("run", "-d", "--name", "py-mgmt", "busybox", "sh", "-c", "echo up; exec sleep 300")
    try:
        page = reader.containers.list(filters={"name": "py-mgmt"})
        assert [c["name"] for c in page] == ["py-mgmt"] and page.pagination["total"] == 1
        assert reader.containers.get("py-mgmt")["status"] == "running"
        with pytest.raises(servin.ManagementError) as caught:
            reader.containers.stop("py-mgmt")
        err = caught.value
        assert (err.code, err.status, err.details) == ("AUTHORIZATION_FAILED", 403, {"scope": "read",
                                                                                    "required": "write"})
        assert mgmt.containers.stop("py-mgmt", timeout=1) == {"id": page[0]["id"], "name": "py-mgmt",
                                                              "status": "stopped"}
        with pytest.raises(servin.ManagementError) as caught:
            reader.containers.start("py-mgmt")
        assert caught.value.code == "AUTHORIZATION_FAILED"
        assert mgmt.containers.start("py-mgmt")["status"] == "running"
        assert [e["message"] for e in reader.containers.logs("py-mgmt", tail=1)] == ["up"]
        followed = reader.containers.logs("py-mgmt", tail="all", follow=True)
        assert [next(followed)["message"], next(followed)["message"]] == ["up", "up"]  # started twice
        followed.close()
        with pytest.raises(servin.ManagementError) as caught:
            reader.containers.get("py-no-such")
        assert (caught.value.code, caught.value.status) == ("RESOURCE_NOT_FOUND", 404)
        with pytest.raises(servin.ManagementError) as caught:
            servin.ManagementClient("svk_000000000000_wrong", url).system.status()
        assert (caught.value.code, caught.value.status) == ("AUTHENTICATION_FAILED", 401)
    finally:
        tcp.d.docker("rm", "-f", "py-mgmt", check=False)


def test_the_documented_examples_run_as_written(tcp: Listener, keys: dict[str, str]) -> None:
    text = DOC.read_text()
    published = free_port()
    for placeholder, value in (("http://localhost:8080/api/v1", f"http://127.0.0.1:{tcp.port}/api/v1"),
                               ("tcp://localhost:2375", f"tcp://127.0.0.1:{tcp.port}"),
                               ("svk_your_key", keys["write"]), ('"80/tcp": 8080', f'"80/tcp": {published}')):
        assert placeholder in text
        text = text.replace(placeholder, value)
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    out = io.StringIO()
    namespace: dict[str, object] = {}
    try:
        with contextlib.redirect_stdout(out):
            for block in blocks:
                exec(compile(block, str(DOC), "exec"), namespace)
    finally:
        tcp.d.docker("rm", "-f", "web-server", check=False)
    printed = out.getvalue()
    assert "listening on 80\nhealthy\n['web-server'] {'page': 1, 'limit': 20, 'total': 1, 'pages': 1}\n" in printed
    assert f"running [{{'internal': 80, 'external': {published}, 'protocol': 'tcp'}}]\nstopped\nrunning\n" in printed
    assert "RESOURCE_NOT_FOUND 404 No such container: no-such-container" in printed
    assert "web-server" not in tcp.d.docker("ps", "-a", "--format", "{{.Names}}").stdout.decode()


def test_the_management_client_over_images_stats_webhooks_and_troubleshooting(tcp: Listener) -> None:
    admin = servin.ManagementClient(base_url=f"unix://{tcp.d.socket}")  # the socket's group: full scope
    tcp.d.docker("tag", "busybox", "py-img:1")
    tcp.d.docker("run", "-d", "--name", "py-stats", "busybox", "sleep", "300")
    hook = admin.webhooks.add("http://127.0.0.1:9/hook", ["container.start", "image.remove"])
    try:
        tags = {(i["repository"], i["tag"]) for i in admin.images.list(limit=100)}
        assert {("busybox", "latest"), ("py-img", "1")} <= tags
        detail = admin.images.get("py-img:1")
        assert detail["os"] == "linux" and detail["history"] and "config" in detail
        stats = admin.containers.stats("py-stats")
        assert stats["name"] == "py-stats" and stats["memory_stats"]["usage"] > 0
        assert admin.images.remove("py-img:1")["tag"] == "1"
        with pytest.raises(servin.ManagementError) as caught:
            admin.images.remove("busybox")  # in use by py-stats
        assert (caught.value.code, caught.value.status) == ("OPERATION_IN_PROGRESS", 409)
        with pytest.raises(servin.ManagementError) as caught:
            admin.images.pull("127.0.0.1:9/nothing-listens", "1")
        assert (caught.value.code, caught.value.status) == ("DOCKER_ERROR", 502)
        mine = {h["id"]: h for h in admin.webhooks.list()}[hook["id"]]
        assert mine["events"] == ["container.start", "image.remove"] and "secret" not in mine
        report = admin.troubleshoot.connection()
        assert report["connected"] is True and isinstance(report["issues"], list)
    finally:
        admin.webhooks.remove(hook["id"])
        tcp.d.docker("rm", "-f", "py-stats", check=False)
        tcp.d.docker("rmi", "py-img:1", check=False)
    assert hook["id"] not in {h["id"] for h in admin.webhooks.list()}
