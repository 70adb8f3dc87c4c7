"""The classic builder's cache through GET /system/df and POST /build/prune: the untagged step
images as dockerd's BuildCache records, what a prune removes (with its delete events) and keeps,
its parameters honoured or refused by name, and a cached build rebuilding what was pruned."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.api.test_build import post

MULTI = ("FROM busybox AS tool\nENV T=1\nLABEL tool=yes\n"
         "FROM busybox\nENV A=1\nCOPY --from=tool /bin/sh /sh\n")


async def df(env: Any) -> dict[str, Any]:
    r = await env.client.get("/v1.41/system/df")
    assert r.status == 200
    return await r.json()


async def prune(env: Any, **params: str) -> tuple[int, dict[str, Any]]:
    r = await env.client.post("/v1.41/build/prune", params=params)
    return r.status, await r.json()


def by_description(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["Description"]: r for r in records}


async def test_step_images_are_build_cache_records(env: Any) -> None:
    status, _ = await post(env, {"Dockerfile": MULTI}, t="app:1")
    assert status == 200
    usage = await df(env)
    records = by_description(usage["BuildCache"])
    assert set(records) == {"ENV T=1", "LABEL tool=yes", "ENV A=1"}  # the result is tagged: an image
    tool, label, env_a = records["ENV T=1"], records["LABEL tool=yes"], records["ENV A=1"]
    assert tool["Shared"] is False and label["Shared"] is False and env_a["Shared"] is True  # app:1's parent
    assert label["Parent"] == tool["ID"] and label["Parents"] == [tool["ID"]] and tool["Parent"] == ""
    assert all(r["Type"] == "regular" and r["InUse"] is False and r["UsageCount"] == 1 for r in records.values())
    assert re.fullmatch(r"[0-9a-f]{64}", tool["ID"]) and tool["CreatedAt"].endswith("Z") and tool["LastUsedAt"]
    assert usage["BuilderSize"] == sum(r["Size"] for r in usage["BuildCache"])
    await post(env, {"Dockerfile": MULTI}, t="app:1")  # all cached: used again
    assert all(r["UsageCount"] == 2 for r in (await df(env))["BuildCache"])


async def test_prune_removes_what_is_not_shared_and_a_build_rebuilds_it(env: Any) -> None:
    await post(env, {"Dockerfile": MULTI}, t="app:1")
    before = by_description((await df(env))["BuildCache"])
    status, report = await prune(env)
    assert status == 200
    assert sorted(report["CachesDeleted"]) == sorted([before["ENV T=1"]["ID"], before["LABEL tool=yes"]["ID"]])
    deleted = [e.actor_id for e in env.events.history() if e.type == "image" and e.action == "delete"]
    assert sorted(deleted) == sorted(f"sha256:{i}" for i in report["CachesDeleted"])
    assert set(by_description((await df(env))["BuildCache"])) == {"ENV A=1"}
    assert env.images.exists("app:1")
    _, lines = await post(env, {"Dockerfile": MULTI}, t="app:1")
    streams = "".join(line.get("stream", "") for line in lines)
    assert streams.count(" ---> Using cache\n") == 2  # ENV A=1 and the COPY; the tool stage is made again
    assert set(by_description((await df(env))["BuildCache"])) == {"ENV T=1", "LABEL tool=yes", "ENV A=1"}


async def test_prune_all_keeps_what_the_store_cannot_delete(env: Any) -> None:
    await post(env, {"Dockerfile": MULTI}, t="app:1")
    status, report = await prune(env, all="1")
    assert status == 200 and len(report["CachesDeleted"]) == 2  # ENV A=1 is app:1's parent: the store keeps it
    assert [r["Description"] for r in (await df(env))["BuildCache"]] == ["ENV A=1"]


async def test_prune_filters_and_keep_storage(env: Any) -> None:
    await post(env, {"Dockerfile": MULTI}, t="app:1")
    records = by_description((await df(env))["BuildCache"])
    _, report = await prune(env, filters=json.dumps({"description": ["ENV T=1"]}))
    assert report == {"CachesDeleted": None, "SpaceReclaimed": 0}  # LABEL tool=yes (its child) stays, so must it
    _, report = await prune(env, filters=json.dumps({"id": [records["LABEL tool=yes"]["ID"][:12]]}))
    assert report["CachesDeleted"] == [records["LABEL tool=yes"]["ID"]]
    _, report = await prune(env, filters=json.dumps({"until": ["1h"]}))  # used within the hour: kept
    assert report["CachesDeleted"] is None
    _, report = await prune(env, **{"keep-storage": str(10**12)})  # far below the limit already
    assert report["CachesDeleted"] is None
    _, report = await prune(env, filters=json.dumps({"shared": ["false"], "type": ["regular"]}))
    assert report["CachesDeleted"] == [records["ENV T=1"]["ID"]]


async def test_prune_by_label_as_docker_system_prune_filters(env: Any) -> None:
    """`docker system prune --filter label=...` sends its filters to the build cache too: a step
    image's labels decide (a work directory has none)."""
    await post(env, {"Dockerfile": MULTI}, t="app:1")
    records = by_description((await df(env))["BuildCache"])
    _, report = await prune(env, filters=json.dumps({"label": ["tool=no"]}))
    assert report["CachesDeleted"] is None
    _, report = await prune(env, filters=json.dumps({"label": ["tool=yes"]}))
    assert report["CachesDeleted"] == [records["LABEL tool=yes"]["ID"]]
    _, report = await prune(env, filters=json.dumps({"label!": ["tool"]}))
    assert report["CachesDeleted"] == [records["ENV T=1"]["ID"]]


async def test_prune_refuses_by_name(env: Any) -> None:
    cases = [
        ({"filters": json.dumps({"dangling": ["true"]})}, "invalid filter 'dangling'"),
        ({"filters": json.dumps({"until": ["soon"]})},
         "\"until\" filter expects a duration (e.g., '24h'): time: invalid duration \"soon\""),
        ({"filters": json.dumps({"until": ["1h"], "unused-for": ["2h"]})},
         'conflicting filters: "until" and "unused-for"'),
        ({"filters": json.dumps({"type": ["a", "b"]})}, "filters expect only one value"),
        ({"keep-storage": "lots"},
         'keep-storage is in bytes and expects an integer, got lots: strconv.Atoi: parsing "lots": invalid syntax'),
    ]
    for params, message in cases:
        status, body = await prune(env, **params)
        assert (status, body["message"]) == (400, message)


async def test_a_used_step_image_is_in_use_and_stays(env: Any) -> None:
    await post(env, {"Dockerfile": MULTI}, t="app:1")
    tool = by_description((await df(env))["BuildCache"])["LABEL tool=yes"]
    r = await env.client.post("/v1.41/containers/create", json={"Image": tool["ID"], "Cmd": ["true"]})
    assert r.status == 201, await r.text()
    assert by_description((await df(env))["BuildCache"])["LABEL tool=yes"]["InUse"] is True
    _, report = await prune(env, all="true")
    assert report["CachesDeleted"] is None  # LABEL is in use, ENV T=1 its parent, ENV A=1 app:1's


async def test_prune_space_parameters_of_1_48(env: Any) -> None:
    sized = {"Dockerfile": "FROM busybox AS tool\nLABEL tool=yes\nCOPY f /f\n"
                           "FROM busybox\nENV A=1\nCOPY --from=tool /f /f\n", "f": "x" * 4096}
    await post(env, sized, t="app:1")

    async def prune_at(v: str, **params: str) -> Any:
        r = await env.client.post(f"/v{v}/build/prune", params=params)
        assert r.status == 200, await r.text()
        return (await r.json())["CachesDeleted"]

    assert await prune_at("1.48", **{"max-used-space": str(10**15)}) is None  # already under the cap
    assert await prune_at("1.48", **{"min-free-space": "1"}) is None  # a byte is free already
    assert await prune_at("1.48", **{"reserved-space": str(10**15), "max-used-space": "1"}) is None  # reserved
    r = await env.client.post("/v1.48/build/prune", params={"max-used-space": "lots"})
    assert r.status == 400 and "max-used-space is in bytes and expects an integer" in (await r.json())["message"]
    assert len(await prune_at("1.47", **{"max-used-space": "lots"})) == 2  # not read before 1.48: prunes all
    await post(env, sized, t="app:1")
    assert await prune_at("1.48", **{"max-used-space": "1"})  # pruned, least recently used first, to the cap:
    assert sum(r["Size"] for r in (await df(env))["BuildCache"] if not r["Shared"]) <= 1
