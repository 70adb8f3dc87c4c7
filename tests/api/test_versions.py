"""Each request answered in the shape of the API version it asks for (wire/versions.py): a 1.41 client
sees what it always saw, a newer one what dockerd of that version sends."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from servin.api.wire import versions

NEWEST = (1, 55)


@pytest.fixture(autouse=True)
def widest_window(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(versions, "MAX_VERSION", NEWEST)
    yield


async def get(env, path: str) -> object:
    r = await env.client.get(path)
    assert r.status == 200, await r.text()
    return await r.json()


async def test_the_window_and_unversioned_requests_as_the_newest(env):
    for v in ("1.24", "1.41", "1.44", "1.55"):
        r = await env.client.get(f"/v{v}/_ping")
        assert r.status == 200 and r.headers["Api-Version"] == "1.55"
    r = await env.client.get("/v1.56/_ping")
    assert (await r.json())["message"] == "client version 1.56 is too new. Maximum supported API version is 1.55"
    assert (await get(env, "/version"))["ApiVersion"] == "1.55"


async def test_image_list_and_inspect_by_version(env):
    await env.create("user")  # busybox is used by one container
    old, mid, new = [await get(env, f"/v{v}/images/json") for v in ("1.41", "1.44", "1.55")]
    [o], [m], [n] = old, mid, new
    assert o["VirtualSize"] == o["Size"] and o["Containers"] == -1
    assert "VirtualSize" not in m and m["Containers"] == -1
    assert "VirtualSize" not in n and n["Containers"] == 1
    old, new = [await get(env, f"/v{v}/images/busybox/json") for v in ("1.41", "1.55")]
    assert {"Container", "ContainerConfig", "VirtualSize"} <= set(old)
    assert not {"Container", "ContainerConfig", "VirtualSize"} & set(new)
    assert {"Hostname", "AttachStdin", "Image"} <= set(old["Config"])
    assert not {"Hostname", "AttachStdin", "Image", "OnBuild"} & set(new["Config"])
    assert "Comment" in old and "Comment" not in new  # empty: omitted from 1.52 on


async def test_untagged_images_show_placeholders_below_1_43(env):
    cid = await env.create("committed")
    r = await env.client.post("/commit", params={"container": cid})  # no repo: an untagged image
    assert r.status == 201, await r.text()
    image_id = (await r.json())["Id"]
    listed = {v: {i["Id"]: i for i in await get(env, f"/v{v}/images/json")} for v in ("1.42", "1.43")}
    assert listed["1.42"][image_id]["RepoTags"] == ["<none>:<none>"]
    assert listed["1.42"][image_id]["RepoDigests"] == ["<none>@<none>"]
    assert listed["1.43"][image_id]["RepoTags"] == [] and listed["1.43"][image_id]["RepoDigests"] == []


async def test_container_inspect_and_list_by_version(env):
    cid = await env.create("shaped")
    old, new = [await get(env, f"/v{v}/containers/{cid}/json") for v in ("1.41", "1.52")]
    assert {"IPAddress", "Gateway", "Bridge", "MacAddress"} <= set(old["NetworkSettings"])
    assert not {"IPAddress", "Gateway", "Bridge", "MacAddress"} & set(new["NetworkSettings"])
    assert "KernelMemoryTCP" in old["HostConfig"] and "KernelMemoryTCP" not in new["HostConfig"]
    old, new = [await get(env, f"/v{v}/containers/json?all=1") for v in ("1.51", "1.52")]
    assert "Health" not in old[0] and new[0]["Health"] == {"Status": "none", "FailingStreak": 0}


async def test_system_df_types_and_usage_blocks(env):
    await env.create("dfuser")
    old = await get(env, "/v1.41/system/df?type=image")  # type is read from 1.42 on: everything
    assert {"LayersSize", "Images", "Containers", "Volumes", "BuilderSize"} <= set(old)
    assert "ImageUsage" not in old and old["Images"][0]["VirtualSize"] > 0
    only = await get(env, "/v1.44/system/df?type=image")
    assert set(only) == {"LayersSize", "Images"} and "VirtualSize" not in only["Images"][0]
    new = await get(env, "/v1.52/system/df")
    assert new["ImageUsage"] == {"ActiveCount": 1, "TotalCount": 1, "Reclaimable": 0,
                                 "TotalSize": new["LayersSize"]}
    assert new["ContainerUsage"]["TotalCount"] == 1 and "Items" not in new["ContainerUsage"]
    verbose = await get(env, "/v1.52/system/df?verbose=1")
    assert "Images" not in verbose and len(verbose["ImageUsage"]["Items"]) == 1
    r = await env.client.get("/v1.44/system/df?type=bogus")
    assert r.status == 400 and (await r.json())["message"] == "unknown object type: bogus"


async def test_events_legacy_fields_and_media_types(env):
    await env.create("evented")
    path = f"/events?since=0&until={int(time.time()) + 1}"
    r = await env.client.get("/v1.41" + path)
    assert r.headers["Content-Type"] == "application/json"
    [ev] = [json.loads(line) for line in (await r.read()).splitlines() if b'"container"' in line][:1]
    assert ev["status"] == "create" and ev["id"] == ev["Actor"]["ID"] and ev["from"] == "busybox"
    r = await env.client.get("/v1.52" + path)
    assert r.headers["Content-Type"] == "application/jsonl"
    [ev] = [json.loads(line) for line in (await r.read()).splitlines() if b'"container"' in line][:1]
    assert not {"status", "id", "from"} & set(ev)
    r = await env.client.get("/v1.52" + path, headers={"Accept": "application/json-seq"})
    assert r.headers["Content-Type"] == "application/json-seq" and (await r.read()).startswith(b"\x1e{")


async def test_routes_and_query_parameters_of_newer_versions(env):
    r = await env.client.get("/v1.54/images/busybox/attestations")
    assert r.status == 400
    assert (await r.json())["message"] == "GET /images/{name}/attestations requires minimum API version 1.55"
    assert await get(env, "/v1.55/images/busybox/attestations") == []
    r = await env.client.get("/v1.55/images/nosuch/attestations")
    assert r.status == 404


async def test_info_by_version(env):
    old, new = [await get(env, f"/v{v}/info") for v in ("1.41", "1.55")]
    assert "BridgeNfIptables" in old and "BridgeNfIptables" not in new
    assert old["RuncCommit"] == {"ID": "", "Expected": ""} and new["RuncCommit"] == {"ID": ""}
    assert "CDISpecDirs" not in old and new["CDISpecDirs"] == []
    assert "FirewallBackend" not in old and new["FirewallBackend"]["Driver"] == "iptables"
