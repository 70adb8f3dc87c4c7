"""A daemon started with --experimental as a docker client sees it: the Docker-Experimental header,
/version, /info, and POST /build's squash taken (refused without it)."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace

from multidict import MultiDict

from servin.api.context import SERVICES
from servin.api.wire.build import parse_options
from tests.api.conftest import FACTS


def experimental(env) -> None:
    env.client.server.app[SERVICES].system.reloaded(replace(FACTS, experimental=True))


async def test_headers_version_and_info_follow_the_setting(env):
    r = await env.client.get("/_ping")
    assert r.headers["Docker-Experimental"] == "false"
    experimental(env)
    r = await env.client.get("/_ping")
    assert r.headers["Docker-Experimental"] == "true"
    v = await (await env.client.get("/version")).json()
    assert v["Experimental"] is True
    assert next(c for c in v["Components"] if c["Name"] == "Engine")["Details"]["Experimental"] == "true"
    assert (await (await env.client.get("/info")).json())["ExperimentalBuild"] is True


def test_squash_is_taken_in_experimental_mode() -> None:
    assert parse_options(MultiDict(squash="1"), registry_header=None, experimental=True).squash is True
    assert parse_options(MultiDict(), registry_header=None, experimental=True).squash is False


def _context() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"FROM busybox\n"
        ti = tarfile.TarInfo("Dockerfile")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


async def test_build_squash_refused_without_experimental(env):
    r = await env.client.post("/v1.41/build", params={"squash": "1"}, data=_context(),
                              headers={"Content-Type": "application/x-tar"})
    assert r.status == 400
    assert (await r.json())["message"] == "squash is only supported with experimental mode"
