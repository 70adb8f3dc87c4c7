"""Each request answered in the shape of the API version it asks for (wire/versions.py): a 1.41 client
sees what it always saw, a newer one what dockerd of that version sends."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from servin.api.wire import create_warnings, versions

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


async def test_kernel_memory_is_ignored_from_1_42(env):
    body = {"Image": "busybox", "HostConfig": {"KernelMemory": 64 << 20}}
    old = await env.client.post("/v1.41/containers/create", json=body)
    new = await env.client.post("/v1.42/containers/create", json=body)
    assert old.status == new.status == 201
    assert any("kernel memory" in w for w in (await old.json())["Warnings"])
    assert (await new.json())["Warnings"] == []


async def test_platform_parameters_of_the_image_routes(env):
    arch = env.images.get("busybox").architecture
    mine = json.dumps({"os": "linux", "architecture": arch})
    other = json.dumps({"os": "linux", "architecture": "s390x"})
    for path in ("/v1.49/images/busybox/json", "/v1.48/images/busybox/history", "/v1.48/images/busybox/get"):
        assert (await env.client.get(path, params={"platform": mine})).status == 200, path
        r = await env.client.get(path, params={"platform": other})
        assert r.status == 404, path
        assert (await r.json())["message"] == (
            f"image with reference busybox was found but its platform (linux/{arch}) "
            "does not match the specified platform (linux/s390x)")
    r = await env.client.get("/v1.48/images/busybox/json", params={"platform": other})  # read from 1.49 on
    assert r.status == 200
    r = await env.client.get("/v1.51/images/busybox/get", params=[("platform", mine), ("platform", other)])
    assert r.status == 400 and "use API version 1.52 or later" in (await r.json())["message"]
    r = await env.client.get("/v1.52/images/busybox/get", params=[("platform", mine), ("platform", other)])
    assert r.status == 200
    r = await env.client.get("/v1.49/images/busybox/json", params={"platform": "{bad"})
    assert r.status == 400
    r = await env.client.delete("/v1.50/images/busybox", params={"platforms": other})
    assert r.status == 404 and env.images.get("busybox")


async def test_shared_size_from_1_42(env):
    cid = await env.create("committed")
    r = await env.client.post("/commit", params={"container": cid, "repo": "child"})  # busybox's layers + one
    assert r.status == 201
    busybox = env.images.get("busybox")
    base = sum(env.images.layers.size(d) for d in set(busybox.diff_ids))
    old = {i["Id"]: i for i in await get(env, "/v1.41/images/json?shared-size=1")}
    new = {i["Id"]: i for i in await get(env, "/v1.42/images/json?shared-size=1")}
    assert old[busybox.id]["SharedSize"] == -1  # not read before 1.42
    assert new[busybox.id]["SharedSize"] == base > 0
    assert {i["SharedSize"] for i in await get(env, "/v1.42/images/json")} == {-1}


async def test_a_commit_logs_an_image_create_event_from_1_46(env):
    cid = await env.create("made")
    since = time.time() - 1
    r = await env.client.post("/commit", params={"container": cid, "repo": "made"})
    image_id = (await r.json())["Id"]
    path = f"/events?since={since}&until={int(time.time()) + 1}&filters=" + json.dumps({"type": ["image"]})
    seen = {}
    for v in ("1.45", "1.46"):
        r = await env.client.get(f"/v{v}{path}")
        seen[v] = [(e["Action"], e["Actor"]["ID"]) for e in map(json.loads, (await r.read()).splitlines())]
    assert ("create", image_id) in seen["1.46"] and ("tag", image_id) in seen["1.46"]
    assert ("create", image_id) not in seen["1.45"] and ("tag", image_id) in seen["1.45"]


async def test_create_warnings_of_1_48_and_1_52(env):
    body = {"Image": "busybox", "HostConfig": {"PortBindings": {"80/tcp": []}, "VolumeDriver": "local",
                                               "Mounts": [{"Type": "volume", "Target": "/data"}]}}
    said = {}
    for v in ("1.47", "1.48", "1.52"):
        r = await env.client.post(f"/v{v}/containers/create", json=body)
        assert r.status == 201, await r.text()
        said[v] = (await r.json())["Warnings"]
    assert said["1.47"] == []
    assert said["1.48"] == [create_warnings.VOLUME_DRIVER]
    assert said["1.52"] == [create_warnings.VOLUME_DRIVER, "Following container port(s) have an empty list of "
                            "port-bindings: 80/tcp. Such bindings will be discarded in a future version."]


async def test_enable_ipv4_is_read_from_1_48(env):
    # the api env has no networking: the decoded request is what the version reads
    from servin.api.wire import networks as wire_networks

    body = {"Name": "n4", "EnableIPv4": False, "EnableIPv6": True}
    for v, expected in (((1, 47), True), ((1, 48), False)):  # below 1.48 the field is not read: both families
        token = versions.use(v)
        try:
            spec = wire_networks.parse_create(dict(body))
        finally:
            versions.reset(token)
        assert spec["enable_ipv4"] is expected, v
