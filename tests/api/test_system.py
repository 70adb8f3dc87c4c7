"""/_ping, versioned paths, errors, /version, /info as a docker client sees them."""

from __future__ import annotations

import pytest

from servin.api.wire.system import API_VERSION, ENGINE_VERSION

NOT_FOUND = {"message": "page not found", "code": "RESOURCE_NOT_FOUND"}


async def test_ping_get(env):
    r = await env.client.get("/_ping")
    assert r.status == 200
    assert await r.text() == "OK"
    assert r.headers["Api-Version"] == "1.55"
    assert r.headers["Ostype"] == "linux"
    assert r.headers["Docker-Experimental"] == "false"
    assert r.headers["Builder-Version"] == "1"
    assert r.headers["Swarm"] == "inactive"
    assert r.headers["Server"] == f"Docker/{ENGINE_VERSION} (linux)"
    assert r.headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    assert r.headers["Pragma"] == "no-cache"


async def test_ping_head(env):
    r = await env.client.head("/_ping")
    assert r.status == 200
    assert r.headers["Api-Version"] == "1.55"
    assert r.headers["Ostype"] == "linux"
    assert r.headers["Content-Length"] == "0"
    assert await r.read() == b""


@pytest.mark.parametrize("path", ["/v1.41/_ping", "/v1.24/_ping", "/v1.30/version", "/v1.24/version"])
async def test_versioned_paths(env, path):
    r = await env.client.get(path)
    assert r.status == 200
    assert r.headers["Api-Version"] == API_VERSION


async def test_too_new_version(env):
    r = await env.client.get("/v1.99/version")
    assert r.status == 400
    assert r.headers["Content-Type"] == "application/json"
    assert await r.json() == {"message": "client version 1.99 is too new. Maximum supported API version is 1.55",
                              "code": "VALIDATION_ERROR"}


async def test_too_old_version(env):
    r = await env.client.get("/v1.12/version")
    assert r.status == 400
    assert await r.json() == {"message": "client version 1.12 is too old. Minimum supported API version is 1.24, "
                                         "please upgrade your client to a newer version",
                              "code": "VALIDATION_ERROR"}


@pytest.mark.parametrize("method, path", [("GET", "/nope"), ("GET", "/v1.41/nope"), ("POST", "/containers/x/y/z")])
async def test_unknown_path(env, method, path):
    r = await env.client.request(method, path)
    assert r.status == 404
    assert r.headers["Content-Type"] == "application/json"
    assert await r.json() == NOT_FOUND
    assert r.headers["Api-Version"] == "1.55"  # on every response, errors too


async def test_error_body_is_message_and_code(env):
    r = await env.client.get("/containers/nope/json")
    assert r.status == 404
    assert r.headers["Content-Type"] == "application/json"
    assert await r.read() == b'{"message": "No such container: nope", "code": "RESOURCE_NOT_FOUND"}'


async def test_swarm_is_unavailable(env):
    r = await env.client.get("/swarm")
    assert r.status == 503
    assert "not a swarm manager" in (await r.json())["message"]


async def test_swarm_leave_and_lists_answer_as_dockerd_off_swarm(env):
    r = await env.client.post("/v1.41/swarm/leave?force=1")
    assert r.status == 503 and (await r.json())["message"] == "This node is not part of a swarm"
    r = await env.client.get("/v1.41/services")
    assert r.status == 503 and "not a swarm manager" in (await r.json())["message"]


async def test_build_of_an_empty_context_and_an_empty_build_cache(env):
    r = await env.client.post("/v1.41/build?t=x", data=b"")  # the body is the Dockerfile: an empty one
    assert r.status == 400
    assert (await r.json())["message"] == "the Dockerfile (Dockerfile) cannot be empty"
    r = await env.client.post("/v1.41/build/prune")  # docker system prune asks for it
    assert r.status == 200 and await r.json() == {"CachesDeleted": None, "SpaceReclaimed": 0}
    r = await env.client.get("/v1.41/plugins")  # no plugin system: none installed
    assert r.status == 200 and await r.json() == []


async def test_version(env):
    r = await env.client.get("/v1.41/version")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json"
    v = await r.json()
    assert v["Version"] == ENGINE_VERSION
    assert v["ApiVersion"] == "1.55" and v["MinAPIVersion"] == "1.24"
    assert v["Os"] == "linux" and v["Arch"] == "amd64" and v["KernelVersion"] == "6.1.0-test"
    assert v["Experimental"] is False
    for key in ("GitCommit", "GoVersion", "BuildTime", "Platform"):
        assert key in v
    engine = next(c for c in v["Components"] if c["Name"] == "Engine")
    assert engine["Version"] == ENGINE_VERSION
    d = engine["Details"]
    assert d["ApiVersion"] == "1.55" and d["MinAPIVersion"] == "1.24" and d["Os"] == "linux"
    assert d["Arch"] == "amd64" and d["Experimental"] == "false" and d["KernelVersion"] == "6.1.0-test"


async def test_info_counts(env):
    running = await env.run(Cmd=["sleep", "inf"])
    await env.create()
    await env.wait_exited(await env.run(Cmd=["sh", "-c", "exit 1"]))
    r = await env.client.get("/info")
    info = await r.json()
    assert r.status == 200
    assert info["Containers"] == 3
    assert info["ContainersRunning"] == 1
    assert info["ContainersPaused"] == 0
    assert info["ContainersStopped"] == 2
    assert info["Images"] == 1
    assert info["OSType"] == "linux" and info["NCPU"] == 4 and info["Name"] == "testhost"
    assert info["CgroupVersion"] == "2" and info["ServerVersion"] == ENGINE_VERSION
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    assert info["ID"] == "0123456789abcdef0123456789abcdef"
    await env.client.post(f"/containers/{running}/kill")
