"""/images/... as a docker client sees them: list, inspect, tag, delete, load, import."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
import time

from tests.api.helpers import JSON, error


def json_lines(raw: bytes) -> list[dict]:
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def rootfs_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("etc/hello", b"hi\n"), ("bin/true", b"#!/bin/sh\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def test_list(env):
    r = await env.client.get("/v1.41/images/json")
    assert r.status == 200 and r.headers["Content-Type"] == JSON
    [img] = await r.json()
    assert img["Id"] == env.images.get("busybox").id
    assert img["RepoTags"] == ["busybox:latest"]
    for key in ("Created", "Size", "Labels", "ParentId", "RepoDigests", "Containers", "VirtualSize"):
        assert key in img, key


async def test_list_filters(env):
    assert len(await (await env.client.get("/images/json", params={
        "filters": json.dumps({"reference": ["busy*"]})})).json()) == 1
    assert await (await env.client.get("/images/json", params={
        "filters": json.dumps({"reference": {"alpine": True}})})).json() == []
    assert await (await env.client.get("/images/json", params={
        "filters": json.dumps({"dangling": ["true"]})})).json() == []
    r = await env.client.get("/images/json", params={"filters": json.dumps({"nope": ["x"]})})
    assert await error(r, 400) == "invalid filter 'nope'"


async def test_inspect(env):
    r = await env.client.get("/images/busybox/json")
    assert r.status == 200
    img = await r.json()
    assert img["Id"] == env.images.get("busybox").id
    assert img["RepoTags"] == ["busybox:latest"]
    assert img["Os"] == "linux"
    assert img["Config"]["Cmd"] == ["sh"]
    assert img["RootFS"]["Type"] == "layers" and len(img["RootFS"]["Layers"]) == 1
    # by id and by short id
    assert (await env.client.get(f"/images/{img['Id']}/json")).status == 200
    assert (await env.client.get(f"/images/{img['Id'][7:19]}/json")).status == 200


async def test_inspect_unknown(env):
    assert await error(await env.client.get("/images/nope/json"), 404) == "No such image: nope:latest"


async def test_tag_and_untag(env):
    r = await env.client.post("/images/busybox/tag", params={"repo": "example.com/me/box", "tag": "v1"})
    assert r.status == 201
    r = await env.client.post("/images/busybox:latest/tag", params={"repo": "mybox"})
    assert r.status == 201
    tags = (await (await env.client.get("/images/busybox/json")).json())["RepoTags"]
    assert sorted(tags) == ["busybox:latest", "example.com/me/box:v1", "mybox:latest"]
    assert (await env.client.get("/images/example.com/me/box:v1/json")).status == 200
    r = await env.client.delete("/images/mybox")
    assert r.status == 200
    assert await r.json() == [{"Untagged": "mybox:latest"}]


async def test_tag_errors(env):
    assert "repository name" in await error(await env.client.post("/images/busybox/tag"), 400)
    r = await env.client.post("/images/nope/tag", params={"repo": "x"})
    assert await error(r, 404) == "No such image: nope:latest"


async def test_delete(env):
    image_id = env.images.get("busybox").id
    r = await env.client.delete("/images/busybox")
    assert r.status == 200
    items = await r.json()
    assert items[0] == {"Untagged": "busybox:latest"}
    assert {"Deleted": image_id} in items
    assert await (await env.client.get("/images/json")).json() == []
    assert await error(await env.client.delete("/images/busybox"), 404) == "No such image: busybox:latest"


async def test_delete_in_use_is_409(env):
    image_id = env.images.get("busybox").id
    cid = await env.create()
    r = await env.client.delete("/images/busybox")
    assert await error(r, 409) == (
        f'conflict: unable to remove repository reference "busybox" (must force) - container {cid[:12]} '
        f"is using its referenced image {image_id[7:19]}")
    r = await env.client.delete(f"/images/{image_id}")
    msg = await error(r, 409)
    assert msg == (f"conflict: unable to delete {image_id[7:19]} (must be forced) - image is being used by "
                   f"stopped container {cid[:12]}")
    running = await env.run(Cmd=["sleep", "inf"])
    r = await env.client.delete(f"/images/{image_id}", params={"force": "1"})
    assert await error(r, 409) == (f"conflict: unable to delete {image_id[7:19]} (cannot be forced) - image is "
                                   f"being used by running container {running[:12]}")
    await env.client.post(f"/containers/{running}/kill")


async def test_load(env, busybox_archive):
    assert (await env.client.delete("/images/busybox")).status == 200
    r = await env.client.post("/images/load", params={"quiet": "1"}, data=busybox_archive.read_bytes(),
                              headers={"Content-Type": "application/x-tar"})
    assert r.status == 200
    assert r.headers["Content-Type"] == JSON
    assert json_lines(await r.read()) == [{"stream": "Loaded image: busybox:latest\n"}]
    assert (await env.client.get("/images/busybox/json")).status == 200


async def test_load_progress_when_not_quiet(env, busybox_archive):
    diff_id = env.images.get("busybox").diff_ids[0]
    assert (await env.client.delete("/images/busybox")).status == 200
    r = await env.client.post("/images/load", data=busybox_archive.read_bytes())
    lines = json_lines(await r.read())
    assert lines[-1] == {"stream": "Loaded image: busybox:latest\n"}
    progress = lines[:-1]
    assert progress, "a progress line per 512 KiB read and one at the end"
    for p in progress:
        assert list(p) == ["status", "progressDetail", "progress", "id"]
        assert p["status"] == "Loading layer" and p["id"] == diff_id[7:19]
    last = progress[-1]
    assert last["progressDetail"]["current"] == last["progressDetail"]["total"] > 0
    assert last["progress"].startswith("[" + "=" * 50 + ">] ")
    # loaded again: the layer is there already, so no progress, as dockerd
    r = await env.client.post("/images/load", data=busybox_archive.read_bytes())
    assert json_lines(await r.read()) == [{"stream": "Loaded image: busybox:latest\n"}]


async def test_load_garbage_reports_the_error_in_the_stream(env):
    # as dockerd: 200, then an errorDetail message (docker-py raises ImageLoadError on it)
    r = await env.client.post("/images/load", data=b"this is not a tar archive" * 100)
    assert r.status == 200
    [line] = json_lines(await r.read())
    assert line["error"] == "Error processing tar file(exit status 1): archive/tar: invalid tar header"
    assert line["errorDetail"]["message"] == line["error"]


async def test_import_from_stdin(env):
    r = await env.client.post("/images/create", params={"fromSrc": "-", "repo": "imported", "tag": "v2",
                                                         "changes": 'CMD ["/bin/true"]'},
                              data=rootfs_tar())
    assert r.status == 200
    [line] = json_lines(await r.read())
    assert line["status"].startswith("sha256:")
    img = await (await env.client.get("/images/imported:v2/json")).json()
    assert img["Id"] == line["status"]
    assert img["Config"]["Cmd"] == ["/bin/true"]
    assert len(await (await env.client.get("/images/json")).json()) == 2


async def test_create_needs_a_source(env):
    await error(await env.client.post("/images/create"), 400)


# ---------------------------------------------------------------------- save


def tar_members(raw: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        return {m.name.rstrip("/"): m for m in tf.getmembers()}


def tar_read(raw: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()


async def test_save_one_image_is_a_docker_archive(env):
    img = env.images.get("busybox")
    r = await env.client.get("/images/busybox/get")
    assert r.status == 200 and r.headers["Content-Type"] == "application/x-tar"
    raw = await r.read()
    names = list(tar_members(raw))
    assert names == sorted(names), "entries in lexical order, as dockerd's walk"
    manifest = json.loads(tar_read(raw, "manifest.json"))
    [entry] = manifest
    assert entry["Config"] == img.id[7:] + ".json" and entry["RepoTags"] == ["busybox:latest"]
    [layer] = entry["Layers"]
    v1 = layer.split("/")[0]
    assert set(names) == {v1, f"{v1}/VERSION", f"{v1}/json", f"{v1}/layer.tar", entry["Config"], "manifest.json",
                          "repositories"}
    assert tar_read(raw, entry["Config"]) == env.images.config_raw(img.id)
    layer_tar = tar_read(raw, layer)
    assert "sha256:" + hashlib.sha256(layer_tar).hexdigest() == img.diff_ids[0]
    assert tar_read(raw, f"{v1}/VERSION") == b"1.0"
    v1_json = json.loads(tar_read(raw, f"{v1}/json"))
    assert v1_json["id"] == v1 and v1_json["os"] == "linux" and v1_json["config"]["Cmd"] == ["sh"]
    assert json.loads(tar_read(raw, "repositories")) == {"busybox": {"latest": v1}}
    # the same bytes again (deterministic), and by the other route
    again = await (await env.client.get("/images/get", params={"names": "busybox"})).read()
    assert again == raw


async def test_save_several_and_by_id_and_load_back(env):
    img = env.images.get("busybox")
    env.images.tag("busybox", "other", "v1")
    child = env.images.commit_layer(img.id, None, config={"Cmd": ["true"]}, container_config={},
                                    container_id="c" * 64, repo="child", tag="1")
    r = await env.client.get("/images/get", params=[("names", "child:1"), ("names", "busybox:latest"),
                                                   ("names", img.id)])
    raw = await r.read()
    manifest = json.loads(tar_read(raw, "manifest.json"))
    assert [m["RepoTags"] for m in manifest] == [["child:1"], ["busybox:latest"]]  # "other:v1" not asked for
    assert manifest[0]["Parent"] == img.id
    layer_tars = [m for n, m in tar_members(raw).items() if n.endswith("layer.tar")]
    assert sorted(m.type for m in layer_tars) == [tarfile.REGTYPE, tarfile.SYMTYPE]  # the shared layer once
    # a bare repository name saves all of its tags
    raw2 = await (await env.client.get("/images/get", params={"names": "other"})).read()
    assert json.loads(tar_read(raw2, "manifest.json"))[0]["RepoTags"] == ["other:v1"]
    # a bare ID: no tags
    raw3 = await (await env.client.get(f"/images/{img.id[7:19]}/get")).read()
    assert json.loads(tar_read(raw3, "manifest.json"))[0]["RepoTags"] is None
    # round trip
    for ref in ("child:1", "other:v1"):
        assert (await env.client.delete(f"/images/{ref}")).status == 200
    assert (await env.client.delete("/images/busybox", params={"force": "1"})).status == 200
    assert env.images.list() == []
    r = await env.client.post("/images/load", params={"quiet": "1"}, data=raw)
    assert json_lines(await r.read()) == [{"stream": "Loaded image: child:1\n"},
                                          {"stream": "Loaded image: busybox:latest\n"}]
    assert env.images.get("child:1").id == child.id and env.images.get("busybox").id == img.id


async def test_save_unknown(env):
    assert await error(await env.client.get("/images/nope/get"), 404) == "No such image: nope"
    assert await error(await env.client.get("/images/busybox:9/get"), 404) == "reference does not exist"
    r = await env.client.get("/images/get", params=[("names", "busybox"), ("names", "nope:1")])
    assert await error(r, 404) == "reference does not exist"
    assert await error(await env.client.get("/images/get"), 400)
    assert await error(await env.client.get("/images/Bad/get"), 400)


# ---------------------------------------------------------------------- history


async def test_history(env):
    img = env.images.get("busybox")
    child = env.images.commit_layer(img.id, None, config={"Cmd": ["true"]}, container_config={"Cmd": ["echo", "hi"]},
                                    container_id="c" * 64, repo="child", tag="1", comment="msg")
    r = await env.client.get("/images/child:1/history")
    assert r.status == 200
    steps = await r.json()
    assert list(steps[0]) == ["Comment", "Created", "CreatedBy", "Id", "Size", "Tags"]
    assert steps[0]["Id"] == child.id and steps[0]["Tags"] == ["child:1"]
    assert steps[0]["CreatedBy"] == "echo hi" and steps[0]["Comment"] == "msg" and steps[0]["Size"] == 0
    assert steps[1]["Id"] == img.id and steps[1]["Tags"] == ["busybox:latest"]
    assert steps[1]["CreatedBy"] == '/bin/sh -c #(nop)  CMD ["sh"]' and steps[1]["Size"] == 0  # an empty layer
    assert steps[2]["Id"] == "<missing>" and steps[2]["Tags"] is None and steps[2]["Size"] == img.size
    assert len(steps) == len(img.config["history"]) + 1
    assert await error(await env.client.get("/images/nope/history"), 404) == "No such image: nope:latest"


# ---------------------------------------------------------------------- list filters


async def ids(env, **params) -> list[str]:
    r = await env.client.get("/images/json", params=params)
    assert r.status == 200, await r.text()
    return [i["Id"] for i in await r.json()]


async def test_list_before_since_dangling_reference_all(env):
    base = env.images.get("busybox")
    mid = env.images.commit_layer(base.id, None, config={}, container_config={}, container_id="c" * 64)  # untagged
    top = env.images.commit_layer(mid.id, None, config={}, container_config={}, container_id="c" * 64,
                                  repo="example.com/team/app", tag="v1")
    dangling = env.images.commit_layer(base.id, None, config={"Cmd": ["x"]}, container_config={}, container_id="d")
    assert await ids(env) == [dangling.id, top.id, base.id]  # the intermediate "mid" is hidden
    assert await ids(env, all="1") == [dangling.id, top.id, mid.id, base.id]
    f = json.dumps
    assert await ids(env, filters=f({"dangling": ["true"]})) == [dangling.id]
    assert await ids(env, filters=f({"dangling": ["false"]})) == [top.id, base.id]
    assert await ids(env, filters=f({"since": ["busybox"]})) == [dangling.id, top.id]
    assert await ids(env, filters=f({"before": [top.id[7:19]]}), all="1") == [mid.id, base.id]
    assert await ids(env, filters=f({"reference": ["example.com/*/app"]})) == [top.id]
    assert await ids(env, filters=f({"reference": ["*/app"]})) == []  # '*' stops at '/', as path.Match
    assert await ids(env, filters=f({"reference": ["busybox:lat*"]})) == [base.id]
    env.images.tag("busybox", "busybox", "other")
    r = await env.client.get("/images/json", params={"filters": f({"reference": ["*:other"]})})
    [only] = await r.json()
    assert only["RepoTags"] == ["busybox:other"]  # only the matching tags are listed
    r = await env.client.get("/images/json", params={"filters": f({"dangling": ["maybe"]})})
    assert await error(r, 400) == "Invalid filter 'dangling=[maybe]'"
    r = await env.client.get("/images/json", params={"filters": f({"since": ["nope"]})})
    assert await error(r, 404) == "No such image: nope:latest"


# ---------------------------------------------------------------------- prune, noprune


async def test_prune_dangling_and_all(env):
    base = env.images.get("busybox")
    dangling = env.images.commit_layer(base.id, None, config={"Labels": {"k": "v"}}, container_config={},
                                       container_id="d")
    tagged = env.images.commit_layer(base.id, None, config={"Cmd": ["t"]}, container_config={},
                                     container_id="d", repo="keep", tag="1")
    r = await env.client.post("/images/prune")
    assert r.status == 200
    body = await r.json()
    assert body == {"ImagesDeleted": [{"Deleted": dangling.id}], "SpaceReclaimed": 0}
    assert not env.images.exists(dangling.id) and env.images.exists("keep:1")
    r = await env.client.post("/images/prune")
    assert await r.json() == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    # all unused images; one used by a container is kept
    cid = await env.create(Image="keep:1")
    r = await env.client.post("/images/prune", params={"filters": json.dumps({"dangling": ["false"]})})
    body = await r.json()
    assert body["ImagesDeleted"] == [{"Untagged": "busybox:latest"}]  # busybox is keep:1's parent
    assert env.images.exists(tagged.id) and env.images.exists(base.id)
    await env.client.delete(f"/containers/{cid}")
    r = await env.client.post("/images/prune", params={"filters": json.dumps({"dangling": ["false"]})})
    body = await r.json()
    deleted = [i["Deleted"] for i in body["ImagesDeleted"] if "Deleted" in i]
    assert tagged.id in deleted and base.id in deleted and base.diff_ids[0] in deleted
    assert body["SpaceReclaimed"] == base.size > 0
    assert env.images.list() == []


async def test_prune_filters(env):
    base = env.images.get("busybox")
    a = env.images.commit_layer(base.id, None, config={"Labels": {"team": "a"}}, container_config={},
                                container_id="d")
    b = env.images.commit_layer(base.id, None, config={"Labels": {"team": "b"}, "Cmd": ["b"]},
                                container_config={}, container_id="d")
    f = json.dumps
    r = await env.client.post("/images/prune", params={"filters": f({"label": ["team=a"]})})
    assert (await r.json())["ImagesDeleted"] == [{"Deleted": a.id}]
    r = await env.client.post("/images/prune", params={"filters": f({"until": ["2000-01-01T00:00:00Z"]})})
    assert (await r.json())["ImagesDeleted"] is None
    r = await env.client.post("/images/prune", params={"filters": f({"label!": ["team=b"]})})
    assert (await r.json())["ImagesDeleted"] is None
    r = await env.client.post("/images/prune", params={"filters": f({"until": ["4000000000"], "label!": ["team=a"]})})
    assert (await r.json())["ImagesDeleted"] == [{"Deleted": b.id}]
    r = await env.client.post("/images/prune", params={"filters": f({"dangling": ["x"]})})
    assert await error(r, 400) == "Invalid filter 'dangling=[x]'"
    r = await env.client.post("/images/prune", params={"filters": f({"reference": ["x"]})})
    assert await error(r, 400) == "invalid filter 'reference'"
    r = await env.client.post("/images/prune", params={"filters": f({"until": ["soon"]})})
    await error(r, 400)


async def test_delete_prunes_untagged_parents_unless_noprune(env):
    base = env.images.get("busybox")
    mid = env.images.commit_layer(base.id, None, config={}, container_config={}, container_id="c" * 64)
    top = env.images.commit_layer(mid.id, None, config={}, container_config={}, container_id="c" * 64,
                                  repo="top", tag="1")
    r = await env.client.delete("/images/top:1", params={"noprune": "1"})
    assert await r.json() == [{"Untagged": "top:1"}, {"Deleted": top.id}]
    assert env.images.exists(mid.id)
    top2 = env.images.commit_layer(mid.id, None, config={"Cmd": ["2"]}, container_config={}, container_id="c",
                                   repo="top", tag="2")
    r = await env.client.delete("/images/top:2")
    assert await r.json() == [{"Untagged": "top:2"}, {"Deleted": top2.id}, {"Deleted": mid.id}]
    assert env.images.exists("busybox")  # tagged: kept


async def test_save_load_prune_events(env, busybox_archive):
    image_id = env.images.get("busybox").id
    dangling = env.images.commit_layer(image_id, None, config={"Cmd": ["x"]}, container_config={}, container_id="d")
    start = time.time()
    await (await env.client.get("/images/busybox/get")).read()
    await (await env.client.post("/images/load", params={"quiet": "1"}, data=busybox_archive.read_bytes())).read()
    await (await env.client.post("/images/prune")).read()
    r = await env.client.get("/events", params={"filters": json.dumps({"type": ["image"]}),
                                                "since": f"{start - 1:.3f}", "until": f"{time.time() + 0.05:.3f}"})
    evs = [json.loads(line) for line in (await asyncio.wait_for(r.read(), 2)).splitlines()]
    assert [(e["Action"], e["Actor"]["ID"]) for e in evs] == [
        ("save", image_id), ("load", image_id), ("delete", dangling.id), ("prune", "")]
    assert evs[-1]["Actor"]["Attributes"] == {"reclaimed": "0"}


async def test_list_filter_until(env):
    # images created before the time (a timestamp or a duration back from now) are listed
    r = await env.client.get("/images/json", params={"filters": json.dumps({"until": ["1h"]})})
    assert r.status == 200 and await r.json() != []  # the busybox seed is years old
    r = await env.client.get("/images/json", params={"filters": json.dumps({"until": ["2000-01-01T00:00:00Z"]})})
    assert await r.json() == []
    r = await env.client.get("/images/json", params={"filters": json.dumps({"until": ["soon"]})})
    assert r.status == 400 and "failed to parse value soon as a time" in (await r.json())["message"]
