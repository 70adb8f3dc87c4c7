"""The management API's image endpoints (/api/v1/images): one list item per tag with Docker's image filters
and pagination, details, removal (409 in use), pulls with the daemon's credentials against a registry stub
on 127.0.0.1 (404 not there, 502 DOCKER_ERROR for a registry down or failing, 409 for a second pull of the
same reference while one runs)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from servin.manage.images import PULLS
from tests.api.conftest import Env
from tests.api.test_images import rootfs_tar
from tests.api import test_manage
from tests.api.test_manage import Manage, envelope_of

api = test_manage.api  # the fixture: an app with the management API and a write key


async def tag(env: Env, ref: str, repo: str, tag_: str) -> None:
    r = await env.client.post(f"/v1.41/images/{ref}/tag", params={"repo": repo, "tag": tag_})
    assert r.status == 201, await r.text()


async def untagged_image(env: Env) -> str:
    r = await env.client.post("/images/create", params={"fromSrc": "-"}, data=rootfs_tar())
    assert r.status == 200
    return json.loads((await r.read()).splitlines()[0])["status"]


async def get(api: Manage, path: str, *params: tuple[str, str], status: int = 200) -> Any:
    r = await api.client.get(f"/api/v1{path}", params=list(params), headers=api.headers)
    return await envelope_of(r, status)


async def delete(api: Manage, path: str, status: int = 200, **params: str) -> Any:
    r = await api.client.delete(f"/api/v1{path}", params=params, headers=api.headers)
    return await envelope_of(r, status)


async def pull(api: Manage, body: Any, status: int = 200) -> Any:
    r = await api.client.post("/api/v1/images/pull", json=body, headers=api.headers)
    return await envelope_of(r, status)


# ---- list ----------------------------------------------------------------------------------------------

async def test_one_item_per_tag_and_untagged_ones_as_none(api: Manage, env: Env) -> None:
    busybox = env.images.get("busybox").id
    await tag(env, "busybox", "localhost:5000/tools/box", "1.0")
    await tag(env, "busybox", "box", "old")
    loose = await untagged_image(env)
    data = await get(api, "/images")
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 4, "pages": 1}
    items = {(i["repository"], i["tag"]): i for i in data["items"]}
    assert set(items) == {("busybox", "latest"), ("localhost:5000/tools/box", "1.0"), ("box", "old"),
                          ("<none>", "<none>")}
    assert {i["id"] for i in data["items"]} == {busybox, loose}
    item = items[("busybox", "latest")]
    assert set(item) == {"id", "repository", "tag", "created", "size"}
    assert item["created"].endswith("Z") and item["created"][:2] in ("19", "20") and item["size"] > 0
    assert items[("<none>", "<none>")]["id"] == loose


async def test_pagination_edges(api: Manage, env: Env) -> None:
    for n in range(4):
        await tag(env, "busybox", "box", f"t{n}")
    data = await get(api, "/images", ("limit", "2"), ("page", "3"))
    assert data["pagination"] == {"page": 3, "limit": 2, "total": 5, "pages": 3} and len(data["items"]) == 1
    assert (await get(api, "/images", ("page", "4"), ("limit", "2")))["items"] == []
    data = await get(api, "/images", ("limit", "100"))
    assert data["pagination"]["pages"] == 1 and len(data["items"]) == 5
    for bad in (("limit", "101"), ("limit", "0"), ("page", "0"), ("page", "-1"), ("limit", "ten")):
        assert (await get(api, "/images", bad, status=400))["code"] == "INVALID_PARAMETER"


async def test_docker_image_filters(api: Manage, env: Env) -> None:
    await tag(env, "busybox", "box", "one")
    loose = await untagged_image(env)

    async def refs(*filters: str) -> set[tuple[str, str]]:
        data = await get(api, "/images", *(("filter", f) for f in filters))
        return {(i["repository"], i["tag"]) for i in data["items"]}

    assert await refs("reference=box") == {("box", "one")}
    assert await refs("reference=b*") == {("box", "one"), ("busybox", "latest")}
    assert await refs("dangling=true") == {("<none>", "<none>")}
    assert await refs("dangling=false") >= {("box", "one"), ("busybox", "latest")}
    assert await refs("label=nosuch") == set()
    assert await refs(f"since={env.images.get('busybox').id}") == {("<none>", "<none>")}
    assert await refs(f"before={loose}") == {("box", "one"), ("busybox", "latest")}


@pytest.mark.parametrize("bad", ["colour=red", "dangling", "=true", "dangling=maybe", "before=nosuch:1",
                                 "reference=[", "label!=x"])
async def test_a_bad_filter_is_invalid_parameter(api: Manage, bad: str) -> None:
    error = await get(api, "/images", ("filter", bad), status=400)
    assert error["code"] == "INVALID_PARAMETER" and error["message"]


# ---- detail --------------------------------------------------------------------------------------------

async def test_detail_by_id_short_id_and_name(api: Manage, env: Env) -> None:
    img = env.images.get("busybox")
    await tag(env, "busybox", "box", "v1")
    tags = {("busybox", "latest"), ("box", "v1")}
    for ref, named in ((img.id, tags), (img.short_id, tags), ("busybox", {("busybox", "latest")}),
                       ("box:v1", {("box", "v1")})):
        data = await get(api, f"/images/{ref}")
        assert data["id"] == img.id and (data["repository"], data["tag"]) in named, ref
    assert set(data) == {"id", "repository", "tag", "created", "size", "architecture", "os", "author", "config",
                         "history"}
    assert data["os"] == "linux" and data["architecture"] == img.architecture
    assert set(data["config"]) == {"exposed_ports", "env", "cmd"}
    assert data["config"]["cmd"] == list(img.cmd or ()) and data["config"]["env"] == list(img.env)
    assert data["history"] and all(set(h) == {"created", "created_by", "comment"} for h in data["history"])
    assert all(h["created"].endswith("Z") for h in data["history"])


async def test_detail_of_an_image_with_ports_and_no_cmd(api: Manage, env: Env) -> None:
    r = await env.client.post("/images/create", params={"fromSrc": "-", "repo": "web", "tag": "1",
                                                         "changes": ["EXPOSE 80/tcp", "ENV A=b"]},
                              data=rootfs_tar())
    assert r.status == 200
    data = await get(api, "/images/web:1")
    assert data["config"]["exposed_ports"] == {"80/tcp": {}} and "A=b" in data["config"]["env"]
    assert data["config"]["cmd"] is None and data["history"][0]["created_by"] == ""


async def test_unknown_image_is_404(api: Manage) -> None:
    for path in ("/images/nosuch:1", "/images/sha256:" + "0" * 64, "/images/localhost:5000/a/b:c"):
        assert (await get(api, path, status=404))["code"] == "RESOURCE_NOT_FOUND"
    assert (await delete(api, "/images/nosuch", 404))["code"] == "RESOURCE_NOT_FOUND"


# ---- remove --------------------------------------------------------------------------------------------

async def test_remove_a_tag_then_the_image(api: Manage, env: Env) -> None:
    img = env.images.get("busybox")
    await tag(env, "busybox", "box", "v1")
    data = await delete(api, "/images/box:v1")
    assert data == {"id": img.id, "repository": "box", "tag": "v1", "untagged": ["box:v1"], "deleted": []}
    data = await delete(api, f"/images/{img.short_id}")
    assert (data["id"], data["repository"], data["tag"]) == (img.id, "busybox", "latest")
    assert data["untagged"] == ["busybox:latest"] and img.id in data["deleted"]
    assert (await get(api, "/images"))["items"] == []


async def test_remove_an_image_in_use_is_409_unless_forced(api: Manage, env: Env) -> None:
    await env.run("user", Cmd=["sleep", "1"])
    error = await delete(api, "/images/busybox", 409)
    assert error["code"] == "OPERATION_IN_PROGRESS" and "is using its referenced image" in error["message"]
    data = await delete(api, "/images/busybox", force="true")  # as dockerd: untagged, kept for its container
    assert data["untagged"] == ["busybox:latest"] and data["deleted"] == []
    assert (await delete(api, "/images/busybox", 400, force="perhaps"))["code"] == "INVALID_PARAMETER"
    r = await api.client.delete("/api/v1/images/busybox", headers=api.read)
    assert (await envelope_of(r, 403))["code"] == "AUTHORIZATION_FAILED"


async def test_remove_an_untagged_image_by_id(api: Manage, env: Env) -> None:
    loose = await untagged_image(env)
    data = await delete(api, f"/images/{loose}", noprune="true")
    assert (data["id"], data["repository"], data["tag"], data["untagged"]) == (loose, "<none>", "<none>", [])
    assert data["deleted"][0] == loose
    assert (await delete(api, f"/images/{loose}", 404))["code"] == "RESOURCE_NOT_FOUND"


# ---- pull ----------------------------------------------------------------------------------------------

class Registry:
    """A registry stub on 127.0.0.1: every request waits on `gate` and asks for basic credentials; then /v2/
    answers 200 and manifests `manifest` (status, body)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.manifest: tuple[int, dict[str, Any]] = (404, {"errors": [{"code": "MANIFEST_UNKNOWN",
                                                                       "message": "manifest unknown"}]})
        self.authorizations: list[str] = []
        self.port = 0

    async def v2(self, request: web.Request) -> web.Response:
        return await self.answer(request, 200, {})

    async def manifests(self, request: web.Request) -> web.Response:
        return await self.answer(request, *self.manifest)

    async def answer(self, request: web.Request, status: int, body: dict[str, Any]) -> web.Response:
        await self.gate.wait()
        auth = request.headers.get("Authorization", "")
        self.authorizations.append(auth)
        if not auth:
            return web.json_response({}, status=401, headers={"WWW-Authenticate": 'Basic realm="stub"'})
        return web.json_response(body, status=status)


@pytest.fixture
async def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Registry]:
    reg = Registry()
    app = web.Application()
    app.router.add_get("/v2/", reg.v2)
    app.router.add_route("*", "/v2/{name:.+}/manifests/{ref}", reg.manifests)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    reg.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = tmp_path / "docker-config"
    config.mkdir()
    userpass = base64.b64encode(b"robot:s3cret").decode()
    (config / "config.json").write_text(json.dumps({"auths": {f"127.0.0.1:{reg.port}": {"auth": userpass}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    try:
        yield reg
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("body,message", [
    ({}, "repository is required"),
    ({"repository": "busybox", "platform": "linux"}, "unknown field(s): platform"),
    ({"repository": "busybox:1"}, "carries a tag or digest"),
    ({"repository": "busybox", "tag": 5}, "tag must be a string"),
    ({"repository": "BusyBox"}, "must be lowercase"),
    ({"repository": "busybox", "tag": "no spaces"}, "invalid tag format"),
])
async def test_pull_refuses_a_bad_body(api: Manage, body: dict[str, Any], message: str) -> None:
    error = await pull(api, body, 400)
    assert error["code"] == "VALIDATION_ERROR" and message in error["message"], error


async def test_pull_of_an_image_the_registry_does_not_have_is_404(api: Manage, registry: Registry) -> None:
    error = await pull(api, {"repository": f"127.0.0.1:{registry.port}/team/app", "tag": "v9"}, 404)
    assert error["code"] == "RESOURCE_NOT_FOUND" and "manifest unknown" in error["message"]
    expected = "Basic " + base64.b64encode(b"robot:s3cret").decode()
    assert expected in registry.authorizations  # the daemon's own credentials, asked for by the registry


async def test_a_registry_error_is_502_docker_error_with_its_message(api: Manage, registry: Registry) -> None:
    registry.manifest = (400, {"errors": [{"code": "UNSUPPORTED", "message": "the registry is read-only today"}]})
    error = await pull(api, {"repository": f"127.0.0.1:{registry.port}/app"}, 502)
    assert error["code"] == "DOCKER_ERROR" and "the registry is read-only today" in error["message"]
    registry.manifest = (500, {"errors": [{"code": "UNKNOWN", "message": "disk full"}]})
    error = await pull(api, {"repository": f"127.0.0.1:{registry.port}/app"}, 502)
    assert error == {"code": "DOCKER_ERROR", "message": "received unexpected HTTP status: 500 Internal Server Error"}


async def test_a_registry_that_cannot_be_reached_is_502_docker_error(api: Manage) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    error = await pull(api, {"repository": f"127.0.0.1:{port}/app", "tag": "1"}, 502)
    assert error["code"] == "DOCKER_ERROR" and f"127.0.0.1:{port}" in error["message"]


async def test_a_second_pull_of_the_same_reference_is_409_while_one_runs(api: Manage, registry: Registry) -> None:
    registry.gate.clear()  # the registry holds the first pull
    name = f"127.0.0.1:{registry.port}/app"
    first = asyncio.ensure_future(pull(api, {"repository": name, "tag": "1"}, 404))
    for _ in range(500):
        await asyncio.sleep(0.01)
        if api.client.app is not None and any(name in ref for ref in api.client.app[PULLS]):
            break
    error = await pull(api, {"repository": name, "tag": "1"}, 409)
    assert error["code"] == "OPERATION_IN_PROGRESS" and "already in progress" in error["message"]
    other = asyncio.ensure_future(pull(api, {"repository": name, "tag": "2"}, 404))  # another tag may go on
    await asyncio.sleep(0.1)
    assert not other.done()
    registry.gate.set()
    assert (await asyncio.wait_for(first, 20))["code"] == "RESOURCE_NOT_FOUND"
    await asyncio.wait_for(other, 20)
    assert (await pull(api, {"repository": name, "tag": "1"}, 404))["code"] == "RESOURCE_NOT_FOUND"  # free again


async def test_pull_needs_a_write_key(api: Manage) -> None:
    r = await api.client.post("/api/v1/images/pull", json={"repository": "busybox"}, headers=api.read)
    assert (await envelope_of(r, 403))["code"] == "AUTHORIZATION_FAILED"
