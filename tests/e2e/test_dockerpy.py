"""The same engine through docker-py, the Python client most tools build on."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from tests.support.daemon import ServinDaemon


@pytest.fixture(scope="module")
def client(servin: ServinDaemon) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=servin.host, version="auto", timeout=60)
    yield c
    c.close()


def test_run_returns_output(client: docker.DockerClient) -> None:
    assert client.containers.run("busybox", "echo hello", remove=True) == b"hello\n"


def test_nonzero_exit_raises_container_error(client: docker.DockerClient) -> None:
    with pytest.raises(docker.errors.ContainerError) as err:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 4"], remove=True)
    assert err.value.exit_status == 4


def test_missing_image_and_container_are_404(client: docker.DockerClient) -> None:
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create("no-such-image:1")
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("no-such-container")


def test_detached_container_wait_logs_inspect(client: docker.DockerClient) -> None:
    ct = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo l$i; done; exit 2"],
                               detach=True, labels={"suite": "py"}, environment={"X": "1"})
    try:
        assert ct.wait(timeout=30) == {"Error": None, "StatusCode": 2}
        assert ct.logs() == b"l1\nl2\nl3\n"
        assert ct.logs(tail=1) == b"l3\n"
        assert ct.logs(stdout=False, stderr=True) == b""
        ct.reload()
        assert ct.status == "exited"
        assert ct.attrs["State"]["ExitCode"] == 2
        assert "X=1" in ct.attrs["Config"]["Env"]
        assert ct.attrs["Config"]["Labels"] == {"suite": "py"}
        assert ct.attrs["Mounts"] == [] and ct.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""
        listed = client.containers.list(all=True, filters={"label": "suite=py"})
        assert [c.id for c in listed] == [ct.id]
        assert client.containers.list(filters={"label": "suite=py"}) == []  # not running
    finally:
        ct.remove(force=True)


def test_wait_conditions(client: docker.DockerClient) -> None:
    ct = client.containers.create("busybox", ["sleep", "0.3"])
    try:
        # not-running answers at once for a created container
        assert ct.wait(condition="not-running", timeout=5)["StatusCode"] == 0
        ct.start()
        started = time.monotonic()
        assert ct.wait(condition="next-exit", timeout=10)["StatusCode"] == 0
        assert time.monotonic() - started >= 0.2
    finally:
        ct.remove(force=True)


def test_follow_logs_stream(client: docker.DockerClient) -> None:
    ct = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo f$i; sleep 0.2; done"],
                               detach=True)
    try:
        lines = [chunk for chunk in ct.logs(stream=True, follow=True)]
        assert b"".join(lines) == b"f1\nf2\nf3\n"
    finally:
        ct.remove(force=True)


def test_attach_socket_with_stdin(client: docker.DockerClient) -> None:
    ct = client.containers.create("busybox", "cat", stdin_open=True)  # docker-py sets StdinOnce
    try:
        sock = ct.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        ct.start()
        raw = sock._sock
        raw.sendall(b"ping\n")
        raw.shutdown(1)  # half-close: the container's stdin ends, output keeps flowing
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = raw.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data == b"\x01\x00\x00\x00\x00\x00\x00\x05ping\n"
        assert ct.wait(timeout=10)["StatusCode"] == 0
        sock.close()
    finally:
        ct.remove(force=True)


def test_stop_kill_restart_remove(client: docker.DockerClient) -> None:
    ct = client.containers.run("busybox", ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"],
                               detach=True)
    try:
        time.sleep(0.3)
        ct.stop(timeout=5)  # the trap answers SIGTERM
        ct.reload()
        assert ct.attrs["State"]["ExitCode"] == 0
        ct.restart(timeout=1)
        ct.reload()
        assert ct.status == "running"
        ct.kill(signal="SIGKILL")
        assert ct.wait(timeout=10)["StatusCode"] == 137
        with pytest.raises(docker.errors.APIError) as err:
            ct.kill()
        assert err.value.status_code == 409
    finally:
        ct.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(ct.id)


def test_images_api(client: docker.DockerClient) -> None:
    img = client.images.get("busybox")
    assert "busybox:latest" in img.tags
    assert img.attrs["Config"]["Cmd"] == ["sh"]
    img.tag("pybox", "t1")
    assert "pybox:t1" in client.images.get("pybox:t1").tags
    client.images.remove("pybox:t1")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("pybox:t1")
    assert client.version()["ApiVersion"] == "1.55"
    assert client.ping() is True
