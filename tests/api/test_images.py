"""/images/... as a docker client sees them: list, inspect, tag, delete, load, import."""

from __future__ import annotations

import io
import json
import tarfile

JSON = "application/json"


async def error(r, status: int) -> str:
    assert r.status == status, await r.text()
    assert r.headers["Content-Type"] == JSON
    body = await r.json()
    assert list(body) == ["message"]
    return body["message"]


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
    r = await env.client.post("/images/load", data=busybox_archive.read_bytes(),
                              headers={"Content-Type": "application/x-tar"})
    assert r.status == 200
    assert r.headers["Content-Type"] == JSON
    assert json_lines(await r.read()) == [{"stream": "Loaded image: busybox:latest\n"}]
    assert (await env.client.get("/images/busybox/json")).status == 200


async def test_load_garbage_reports_the_error_in_the_stream(env):
    # as dockerd: 200, then an errorDetail message (docker-py raises ImageLoadError on it)
    r = await env.client.post("/images/load", data=b"this is not a tar archive" * 100)
    assert r.status == 200
    [line] = json_lines(await r.read())
    assert "invalid image archive" in line["error"] and line["errorDetail"]["message"] == line["error"]


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
