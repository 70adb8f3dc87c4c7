"""/events: a streamed JSON line per action, with filters and since-replay."""

from __future__ import annotations

import asyncio
import json
import time


async def read_events(resp, n: int) -> list[dict]:
    out = []
    while len(out) < n:
        line = await asyncio.wait_for(resp.content.readline(), 2)
        assert line, "stream ended early"
        out.append(json.loads(line))
    return out


async def test_container_lifecycle_is_streamed(env):
    r = await env.client.get("/v1.41/events")
    assert r.status == 200 and r.headers["Content-Type"] == "application/json"
    cid = await env.run("ev", Cmd=["sh", "-c", "exit 5"], Labels={"team": "a"})
    await env.wait_exited(cid)
    assert (await env.client.delete(f"/containers/{cid}")).status == 204
    evs = await read_events(r, 4)
    assert [e["Action"] for e in evs] == ["create", "start", "die", "destroy"]
    for e in evs:
        assert e["Type"] == "container" and e["Actor"]["ID"] == cid
        assert e["status"] == e["Action"] and e["id"] == cid and e["from"] == "busybox"
        assert e["Actor"]["Attributes"]["name"] == "ev" and e["Actor"]["Attributes"]["team"] == "a"
        assert e["scope"] == "local" and e["time"] == e["timeNano"] // 1_000_000_000
    assert evs[2]["Actor"]["Attributes"]["exitCode"] == "5"
    r.close()


async def test_filters(env):
    params = {"filters": json.dumps({"event": ["start", "destroy"], "container": ["wanted"]})}
    r = await env.client.get("/events", params=params)
    other = await env.run("other", Cmd=["sh", "-c", "exit 0"])
    wanted = await env.run("wanted", Cmd=["sh", "-c", "exit 0"])
    await env.wait_exited(wanted)
    await env.client.delete(f"/containers/{wanted}")
    evs = await read_events(r, 2)
    assert [(e["Action"], e["Actor"]["ID"]) for e in evs] == [("start", wanted), ("destroy", wanted)]
    assert other != wanted
    r.close()


async def test_label_and_type_filters(env):
    filters = {"label": ["team=b"], "type": ["container"]}
    r = await env.client.get("/events", params={"filters": json.dumps(filters)})
    await env.create(Labels={"team": "a"})
    cid = await env.create(Labels={"team": "b"})
    [e] = await read_events(r, 1)
    assert e["Actor"]["ID"] == cid and e["Action"] == "create"
    r.close()


async def test_since_until_replays_history(env):
    start = time.time()
    cid = await env.create("old")
    await asyncio.sleep(0.01)
    r = await asyncio.wait_for(env.client.get("/events", params={"since": f"{start - 1:.3f}",
                                                               "until": f"{time.time():.3f}"}), 2)
    evs = [json.loads(line) for line in (await asyncio.wait_for(r.read(), 2)).splitlines()]
    assert [(e["Action"], e["Actor"]["ID"]) for e in evs] == [("create", cid)]


async def test_image_delete_events(env):
    # dockerd (daemon/containerd/image_delete.go) logs untag and delete with the image ID as the actor,
    # untag named by the familiar reference removed, and no event for the layers it removes
    image_id = env.images.get("busybox").id
    start = time.time()
    await env.client.delete("/images/busybox")
    r = await env.client.get("/events", params={"filters": json.dumps({"type": ["image"]}),
                                                "since": f"{start - 1:.3f}", "until": f"{time.time() + 0.05:.3f}"})
    evs = [json.loads(line) for line in (await asyncio.wait_for(r.read(), 2)).splitlines()]
    assert [(e["Action"], e["Actor"]["ID"]) for e in evs] == [("untag", image_id), ("delete", image_id)]
    assert evs[0]["Actor"]["Attributes"]["name"] == "busybox:latest"


async def test_bad_filter(env):
    r = await env.client.get("/events", params={"filters": json.dumps({"colour": ["red"]})})
    assert r.status == 400
    assert await r.json() == {"message": "invalid filter 'colour'", "code": "VALIDATION_ERROR"}
