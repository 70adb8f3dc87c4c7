"""The registry endpoints over HTTP with the real app and image store (fake runtime, no root):
pull and push streams, errors before and inside the stream, /auth, search, distribution inspect."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from servin.api.app import build_app
from servin.core.containers import ContainerService
from servin.core.events import EventBus
from servin.core.store import ContainerStore
from servin.core.volumes import VolumeStore
from servin.daemon.wiring import build_services, image_events, image_users
from servin.images.seed import write_busybox_archive
from servin.images.service import ImageService
from servin.runtime.devices import block_numbers
from servin.registry import RegistryService
from tests.api.conftest import FACTS
from tests.registry.server import REGISTRY_BIN, USERS, Registry, running_registry
from tests.support.fakes import FakeRuntime

pytestmark = [pytest.mark.unit,
              pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry is not installed")]


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with running_registry("htpasswd") as reg:
        yield reg


@pytest.fixture(scope="module")
def busybox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seed") / "busybox.tar"
    write_busybox_archive(out)
    return out


@pytest.fixture
async def app(tmp_path: Path, busybox: Path) -> AsyncIterator[tuple[TestClient, ImageService, EventBus]]:
    events = EventBus()
    volumes = VolumeStore(tmp_path / "volumes")
    images = ImageService(tmp_path / "images", events=image_events(events), users=image_users(lambda: engine))
    images.load_archive(busybox)
    engine = ContainerService(store=ContainerStore(tmp_path / "containers"), images=images, runtime=FakeRuntime(),
                              events=events, block_numbers=block_numbers, volumes=volumes)
    (tmp_path / "tmp").mkdir()
    services = build_services(containers=engine, images=images, volumes=volumes, network=None, events=events,
                              host=FACTS, host_cpu_ns=lambda: 0, tmp_dir=tmp_path / "tmp",
                              registry=RegistryService(images, tmp_path / "tmp", events=image_events(events)))
    client = TestClient(TestServer(build_app(services)))
    await client.start_server()
    try:
        yield client, images, events
    finally:
        await client.close()
        await engine.shutdown()


def auth_header(user: str = "alice", password: str = USERS["alice"]) -> dict[str, str]:
    raw = json.dumps({"username": user, "password": password}).encode()
    return {"X-Registry-Auth": base64.urlsafe_b64encode(raw).decode()}


def lines(raw: bytes) -> list[dict]:
    return [json.loads(x) for x in raw.splitlines() if x.strip()]


async def test_push_then_pull_streams_and_events(app, registry: Registry) -> None:
    client, images, events = app
    name = f"{registry.host}/routes/busybox"
    assert (await client.post("/v1.41/images/busybox/tag", params={"repo": name, "tag": "v1"})).status == 201
    r = await client.post(f"/v1.41/images/{name}/push", params={"tag": "v1"}, headers=auth_header())
    assert r.status == 200 and r.headers["Content-Type"] == "application/json"
    pushed = lines(await r.read())
    assert pushed[0] == {"status": f"The push refers to repository [{name}]"}
    digest = pushed[-1]["aux"]["Digest"]
    assert f"{name}@{digest}" in images.get(f"{name}:v1").repo_digests
    image_id = images.get(f"{name}:v1").id
    assert (await client.delete(f"/v1.41/images/{name}:v1")).status == 200
    assert (await client.delete("/v1.41/images/busybox")).status == 200  # the layer goes too

    r = await client.post("/v1.41/images/create", params={"fromImage": name, "tag": "v1"}, headers=auth_header())
    assert r.status == 200
    pulled = lines(await r.read())
    assert pulled[0] == {"status": "Pulling from routes/busybox", "id": "v1"}
    assert pulled[-1] == {"status": f"Status: Downloaded newer image for {name}:v1"}
    assert images.get(f"{name}:v1").id == image_id
    actions = [(e.action, e.actor_id, e.attributes.get("name")) for e in events.history()]
    assert ("push", f"{name}:v1", name) in actions and ("pull", f"{name}:v1", name) in actions
    assert list((images.root.parent / "tmp").iterdir()) == []


async def test_errors_before_and_inside_the_stream(app, registry: Registry) -> None:
    client, _, _ = app
    r = await client.post("/v1.41/images/create", params={"fromImage": f"{registry.host}/routes/none", "tag": "x"},
                          headers=auth_header())
    assert r.status == 404 and r.headers["Content-Type"] == "application/json"
    assert (await r.json()) == {"message": f"manifest for {registry.host}/routes/none:x not found: "
                                           "manifest unknown: manifest unknown",
                                "code": "RESOURCE_NOT_FOUND"}
    r = await client.post("/v1.41/images/create", params={"fromImage": "busybox", "platform": "linux/a/b/c"})
    assert r.status == 400
    r = await client.post("/v1.41/images/create", params={"fromImage": "Upper/Case"})
    assert r.status == 400
    assert (await r.json())["message"] == "invalid reference format: repository name must be lowercase"

    r = await client.post(f"/v1.41/images/{registry.host}/routes/never/push", headers=auth_header())
    assert r.status == 200
    body = lines(await r.read())
    msg = f"An image does not exist locally with the tag: {registry.host}/routes/never"
    assert body == [{"status": f"The push refers to repository [{registry.host}/routes/never]"},
                    {"errorDetail": {"message": msg}, "error": msg}]

    r = await client.post("/v1.41/images/create", params={"fromImage": "127.0.0.1:1/x", "tag": "latest"})
    assert r.status == 500
    assert "connection refused" in (await r.json())["message"]


async def test_auth_endpoint(app, registry: Registry) -> None:
    client, _, _ = app
    r = await client.post("/v1.41/auth", json={"username": "alice", "password": USERS["alice"],
                                               "serveraddress": registry.host})
    assert r.status == 200 and await r.json() == {"Status": "Login Succeeded", "IdentityToken": ""}
    r = await client.post("/v1.41/auth", json={"username": "alice", "password": "bad",
                                               "serveraddress": f"http://{registry.host}"})
    assert r.status == 401
    assert (await r.json())["message"] == (f"login attempt to http://{registry.host}/v2/ failed with status: "
                                           "401 Unauthorized")
    assert (await client.post("/v1.41/auth", data=b"{not json")).status == 400


async def test_search_and_distribution(app, registry: Registry) -> None:
    client, images, _ = app
    assert (await client.get("/v1.41/images/search")).status == 400
    r = await client.get("/v1.41/images/search", params={"term": f"{registry.host}/x"})
    assert r.status == 500 and "no search API" in (await r.json())["message"]
    name = f"{registry.host}/routes/dist"
    assert (await client.post("/v1.41/images/busybox/tag", params={"repo": name})).status == 201
    r = await client.post(f"/v1.41/images/{name}/push", params={"tag": "latest"}, headers=auth_header())
    digest = lines(await r.read())[-1]["aux"]["Digest"]
    r = await client.get(f"/v1.41/distribution/{name}/json", headers=auth_header())
    assert r.status == 200
    got = await r.json()
    assert got["Descriptor"] == {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                                 "digest": digest, "size": got["Descriptor"]["size"]}
    assert got["Platforms"] == [{"architecture": images.get("busybox").architecture, "os": "linux"}]


async def test_client_gone_midway_cancels_the_pull(app) -> None:
    import asyncio

    from servin.registry import manifest as mf
    from tests.registry.fakestore import image_config, layer_tar, sha

    client, images, _ = app
    with running_registry() as reg:
        repo = "routes/big"
        tars = [layer_tar({f"f{i}": os.urandom(24 << 20)}) for i in range(3)]
        cfg = image_config([sha(t) for t in tars])
        doc = {"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
               "config": {"mediaType": mf.OCI_CONFIG, "digest": reg.put_blob(repo, cfg), "size": len(cfg)},
               "layers": [{"mediaType": mf.OCI_LAYER, "digest": reg.put_blob(repo, t), "size": len(t)} for t in tars]}
        reg.put_manifest(repo, "latest", doc, mf.OCI_MANIFEST)
        tmp = images.root.parent / "tmp"
        r = await client.post("/v1.41/images/create", params={"fromImage": f"{reg.host}/{repo}", "tag": "latest"})
        assert r.status == 200
        await r.content.readline()
        r.close()  # the client goes away after the first line
        for _ in range(200):
            await asyncio.sleep(0.05)
            if not any(tmp.iterdir()):
                break
        assert list(tmp.iterdir()) == []
        assert not images.exists(f"{reg.host}/{repo}:latest")


async def test_search_answers_from_a_registry_with_a_search_api(app) -> None:
    """A registry that has the v1 search API (as Docker Hub's index): its results, in Docker's shape,
    limited and filtered as dockerd does (stars, is-official)."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    asked: list[dict[str, str]] = []

    async def search(request: web.Request) -> web.Response:
        asked.append(dict(request.query))
        return web.json_response({"num_results": 2, "query": request.query["q"], "results": [
            {"name": "tools/busybox", "description": "small", "star_count": 12, "is_official": True,
             "is_automated": False},
            {"name": "tools/busybox-extra", "description": "", "star_count": 1, "is_official": False,
             "is_automated": True}]})

    web_app = web.Application()
    web_app.router.add_get("/v1/search", search)
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    client, _, _ = app
    try:
        r = await client.get("/v1.41/images/search", params={"term": f"127.0.0.1:{server.port}/busybox",
                                                             "limit": "5"})
        assert r.status == 200
        assert await r.json() == [
            {"star_count": 12, "is_official": True, "name": "tools/busybox", "is_automated": False,
             "description": "small"},
            {"star_count": 1, "is_official": False, "name": "tools/busybox-extra", "is_automated": True,
             "description": ""}]
        assert asked[0] == {"q": "busybox", "n": "5"}
        r = await client.get("/v1.41/images/search", params={"term": f"127.0.0.1:{server.port}/busybox",
                                                             "filters": '{"stars": ["10"], "is-official": ["true"]}'})
        assert [x["name"] for x in await r.json()] == ["tools/busybox"]
    finally:
        await server.close()
