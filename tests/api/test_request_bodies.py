"""What a JSON route accepts: dockerd's Content-Type rule (so a web page cannot post to a TCP
listener) and a size cap that refuses an oversized body without holding it in memory."""

from __future__ import annotations

import io
import tarfile

import pytest

from servin.api.context import JSON_BODY_LIMIT
from tests.api.helpers import error

CREATE = b'{"Image": "busybox"}'
ROUTES = ["/v1.41/containers/create", "/v1.41/volumes/create", "/v1.41/networks/create",
          "/v1.41/containers/{cid}/exec", "/v1.41/containers/{cid}/update", "/v1.41/commit?container={cid}",
          "/v1.41/auth", "/v1.41/networks/bridge/connect"]


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonx", "not a type"])
async def test_a_json_route_refuses_another_content_type_as_dockerd(env, path, content_type):
    cid = await env.create()
    r = await env.client.post(path.format(cid=cid), data=CREATE, headers={"Content-Type": content_type})
    assert await error(r, 400) == f"Content-Type specified ({content_type}) must be 'application/json'"


async def test_a_browser_text_plain_post_creates_nothing(env):
    r = await env.client.post("/v1.41/containers/create?name=csrf", data=CREATE,
                              headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert await error(r, 400) == "Content-Type specified (text/plain;charset=UTF-8) must be 'application/json'"
    r = await env.client.get("/v1.41/containers/json", params={"all": "1"})
    assert await r.json() == []


async def test_a_body_without_content_type_is_refused_but_no_body_is_fine(env):
    r = await env.client.post("/v1.41/containers/create", data=CREATE, skip_auto_headers=["Content-Type"])
    assert await error(r, 400) == "Content-Type specified () must be 'application/json'"
    cid = await env.create()
    r = await env.client.post(f"/v1.41/containers/{cid}/exec", skip_auto_headers=["Content-Type"])
    assert await error(r, 400) != "Content-Type specified () must be 'application/json'"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
async def test_application_json_with_parameters_or_any_case_is_accepted(env, content_type):
    r = await env.client.post("/v1.41/containers/create", data=CREATE, headers={"Content-Type": content_type})
    assert r.status == 201, await r.text()


async def test_a_json_body_over_the_limit_is_413_naming_the_limit(env):
    body = b'{"Image": "busybox", "Env": ["A=' + b"x" * JSON_BODY_LIMIT + b'"]}'
    r = await env.client.post("/v1.41/containers/create", data=body, headers={"Content-Type": "application/json"})
    assert await error(r, 413) == (f"request body too large ({len(body)} bytes): "
                                   f"a JSON body is limited to {JSON_BODY_LIMIT >> 20} MiB")


async def test_a_chunked_json_body_over_the_limit_is_413(env):
    async def chunks():
        for _ in range(4 * (JSON_BODY_LIMIT >> 16)):  # 4 times the limit, 64 KiB at a time
            yield b" " * (1 << 16)

    r = await env.client.post("/v1.41/networks/create", data=chunks(), headers={"Content-Type": "application/json"})
    assert await error(r, 413) == f"request body too large: a JSON body is limited to {JSON_BODY_LIMIT >> 20} MiB"


async def test_a_json_body_just_under_the_limit_is_read(env):
    body = b'{"Image": "busybox", "Labels": {"pad": "' + b"x" * (JSON_BODY_LIMIT - 100) + b'"}}'
    assert len(body) <= JSON_BODY_LIMIT
    r = await env.client.post("/v1.41/containers/create", data=body, headers={"Content-Type": "application/json"})
    assert r.status == 201, await r.text()


async def test_a_tar_upload_past_the_json_limit_still_streams(env, busybox_archive):
    cid = await env.create()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = 2 * JSON_BODY_LIMIT
        tar.addfile(info, io.BytesIO(b"\0" * info.size))
    r = await env.client.put(f"/v1.41/containers/{cid}/archive", params={"path": "/"}, data=buf.getvalue(),
                             headers={"Content-Type": "application/x-tar"})
    assert r.status == 200, await r.text()
    r = await env.client.post("/v1.41/images/load", data=busybox_archive.read_bytes() + b"\0" * (2 * JSON_BODY_LIMIT),
                              headers={"Content-Type": "application/x-tar"})
    assert r.status == 200, await r.text()


async def test_field_names_match_in_any_case_as_gos_decoder(env):
    # dockerd (Go's encoding/json) matches field names case-insensitively at every level
    r = await env.client.post("/v1.41/containers/create", params={"name": "folded"},
                              json={"image": "busybox", "cmd": ["true"], "LABELS": {"a": "b"},
                                    "hostconfig": {"TmpFs": {"/t": ""}, "restartpolicy": {"NAME": "always"}}})
    assert r.status == 201, await r.text()
    shown = await (await env.client.get("/v1.41/containers/folded/json")).json()
    assert shown["Config"]["Image"] == "busybox" and shown["Config"]["Cmd"] == ["true"]
    assert shown["Config"]["Labels"] == {"a": "b"} and shown["HostConfig"]["Tmpfs"] == {"/t": ""}
    assert shown["HostConfig"]["RestartPolicy"]["Name"] == "always"
    r = await env.client.post("/v1.41/containers/folded/update", json={"memory": 64 << 20, "MEMORYSWAP": -1})
    assert r.status == 200, await r.text()
    shown = await (await env.client.get("/v1.41/containers/folded/json")).json()
    assert shown["HostConfig"]["Memory"] == 64 << 20
