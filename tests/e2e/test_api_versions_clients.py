"""The clients of each API version against one daemon: the docker CLI pinned to 1.41 and 1.44 and at its
own negotiated 1.50, docker-py pinned and `auto` (1.55): the everyday commands work, and each sees its
version's shapes."""

from __future__ import annotations

import json
import subprocess

import docker
import pytest

from tests.support.daemon import ServinDaemon

pytestmark = pytest.mark.e2e
CLI_VERSIONS = ("1.41", "1.44", "")  # "": negotiated (CLI 28.2: 1.50)


def cli(d: ServinDaemon, version: str, *args: str) -> str:
    env = {**d.env, **({"DOCKER_API_VERSION": version} if version else {})}
    res = subprocess.run(["docker", *args], env=env, capture_output=True, timeout=60)
    assert res.returncode == 0, (version, args, res.stderr.decode())
    return res.stdout.decode()


@pytest.mark.parametrize("version", CLI_VERSIONS)
def test_everyday_cli_commands_at_each_version(servin: ServinDaemon, version: str) -> None:
    d = servin
    name = f"ver{version.replace('.', '') or 'neg'}"
    assert cli(d, version, "run", "--rm", "busybox", "echo", "hi") == "hi\n"
    cli(d, version, "run", "-d", "--name", name, "-p", "8080", "busybox", "sh", "-c", "echo up; sleep 60")
    try:
        assert name in cli(d, version, "ps", "--format", "{{.Names}}")
        assert "up" in cli(d, version, "logs", name)
        inspect = json.loads(cli(d, version, "inspect", name))[0]
        assert inspect["State"]["Running"] and list(inspect["NetworkSettings"]["Ports"]) == ["8080/tcp"]
        assert "IPAddress" in inspect["NetworkSettings"]  # the bridge's top-level fields: below 1.52 (the CLI's 1.50)
        assert cli(d, version, "exec", name, "echo", "in").strip() == "in"
        cli(d, version, "stop", "-t", "1", name)
        images = cli(d, version, "images", "--format", "{{.Repository}}:{{.Tag}}")
        assert "busybox:latest" in images
        image = json.loads(cli(d, version, "image", "inspect", "busybox"))[0]
        assert ("VirtualSize" in image) == (version == "1.41")
        assert "Images" in cli(d, version, "system", "df")
        cli(d, version, "volume", "create", f"{name}-vol")
        assert f"{name}-vol" in cli(d, version, "volume", "ls", "--format", "{{.Name}}")
        assert "bridge" in cli(d, version, "network", "ls", "--format", "{{.Name}}")
        assert "Server Version" in cli(d, version, "info")
    finally:
        subprocess.run(["docker", "rm", "-f", name], env=d.env, capture_output=True)
        subprocess.run(["docker", "volume", "rm", f"{name}-vol"], env=d.env, capture_output=True)


@pytest.mark.parametrize("version", ["1.24", "1.41", "1.44", "auto"])
def test_docker_py_at_each_version(servin: ServinDaemon, version: str) -> None:
    client = docker.DockerClient(base_url=servin.host, version=version)
    try:
        assert client.api.api_version == ("1.55" if version == "auto" else version)
        out = client.containers.run("busybox", ["echo", "py"], remove=True)
        assert out == b"py\n"
        c = client.containers.run("busybox", ["sleep", "30"], detach=True, labels={"v": version})
        try:
            assert [x.id for x in client.containers.list(filters={"label": f"v={version}"})] == [c.id]
            assert c.exec_run(["echo", "ex"]).output == b"ex\n"
            image = client.images.get("busybox")
            assert ("VirtualSize" in image.attrs) == (version in ("1.24", "1.41"))
            assert image.id in [i.id for i in client.images.list()]
            settings = client.api.inspect_container(c.id)["NetworkSettings"]
            assert ("IPAddress" in settings) == (version != "auto")  # gone from 1.52
        finally:
            c.remove(force=True)
        if version != "1.24":  # docker-py has df from 1.25 on
            usage = client.df()
            assert "Images" in usage and ("ImageUsage" in usage) == (version == "auto")
    finally:
        client.close()
