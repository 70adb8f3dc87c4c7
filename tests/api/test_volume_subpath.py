"""VolumeOptions.Subpath (API 1.45) at start, as dockerd's MountPoint.Setup: the subpath resolved on
the host as moby's safepath does (404 when missing, 400 when a symlink leads out of the volume), and
local volumes that are mounts (type/device/o) mounted on their _data for their first user and
unmounted when the last one is gone (recorded by a fake mounter; tests/e2e/test_volume_mounts.py
mounts for real)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest



class RecordingMounter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.mounted_now: set[str] = set()

    def mount(self, device: str, target: str, fstype: str, options: str) -> None:
        self.calls.append(("mount", device, target, fstype, options))
        self.mounted_now.add(target)

    def unmount(self, target: str, *, detach: bool = False) -> None:
        self.calls.append(("unmount", target))
        self.mounted_now.discard(target)

    def mounted(self, target: str) -> bool:
        return target in self.mounted_now


@pytest.fixture
def mounter(env) -> RecordingMounter:
    m = RecordingMounter()
    env.engine.volume_mounts.mounter = m
    return m


async def volume(env, name: str, **options: str) -> Path:
    r = await env.client.post("/volumes/create", json={"Name": name, "DriverOpts": options})
    assert r.status == 201, await r.text()
    return Path((await r.json())["Mountpoint"])


async def create(env, sub: str, name: str = "data", cmd: tuple[str, ...] = ("true",)) -> str:
    mount: dict[str, Any] = {"Type": "volume", "Source": name, "Target": "/d", "VolumeOptions": {"Subpath": sub}}
    r = await env.client.post("/v1.45/containers/create",
                              json={"Image": "busybox", "Cmd": list(cmd), "HostConfig": {"Mounts": [mount]}})
    assert r.status == 201, await r.text()
    return (await r.json())["Id"]


async def start(env, cid: str) -> tuple[int, str]:
    r = await env.client.post(f"/containers/{cid}/start")
    return r.status, "" if r.status == 204 else (await r.json())["message"]


def bind_of(env, cid: str) -> dict[str, Any]:
    return next(m for m in env.runtime.specs[cid]["mounts"] if m["destination"] == "/d")


async def test_a_missing_subpath_is_dockerds_404(env) -> None:
    data = await volume(env, "data")
    assert await start(env, await create(env, "sub/dir")) == (
        404, f"cannot access path {data}/sub/dir: lstat {data}/sub: no such file or directory")


async def test_a_symlink_out_of_the_volume_is_dockerds_400(env) -> None:
    data = await volume(env, "data")
    (data / "esc").symlink_to("/etc")
    (data / "up").symlink_to("../..")
    for sub in ("esc", "up"):
        assert await start(env, await create(env, sub)) == (
            400, f"path concatenation escapes the base directory, base: {data}, subpath: {sub}")


async def test_symlinks_inside_the_volume_are_followed_and_files_bound(env) -> None:
    data = await volume(env, "data")
    (data / "real" / "dir").mkdir(parents=True)
    (data / "link").symlink_to("real")
    (data / "abs").symlink_to(data / "real" / "dir")  # absolute, on the host, inside the volume
    (data / "f").write_text("x")
    for sub, resolved in (("link/dir", "real/dir"), ("abs", "real/dir"), ("f", "f"), ("real/..", "")):
        cid = await create(env, sub)
        assert await start(env, cid) == (204, "")
        opts = bind_of(env, cid)["options"]
        assert [o for o in opts if o.startswith("x-servin.subpath=")] == (
            [f"x-servin.subpath={resolved}"] if resolved else [])
        # inspect keeps what the user asked for
        r = await env.client.get(f"/v1.45/containers/{cid}/json")
        info = await r.json()
        assert info["HostConfig"]["Mounts"][0]["VolumeOptions"] == {"Subpath": sub}
        assert info["Mounts"][0]["Source"] == str(data) and info["Mounts"][0]["Name"] == "data"


async def test_a_volume_that_is_a_mount_is_mounted_while_used(env, mounter: RecordingMounter) -> None:
    data = await volume(env, "tv", type="tmpfs", device="tmpfs", o="size=10m,uid=1000")
    (data / "sub").mkdir()  # the fake mounts nothing: _data stays the plain directory
    one = await create(env, "sub", "tv", ("sleep", "100"))
    two = await create(env, "sub", "tv", ("sleep", "100"))
    assert await start(env, one) == (204, "")
    assert await start(env, two) == (204, "")
    assert mounter.calls == [("mount", "tmpfs", str(data), "tmpfs", "size=10m,uid=1000")]
    assert bind_of(env, one) == {"destination": "/d", "type": "bind", "source": str(data),
                                 "options": ["rbind", "rprivate", "x-servin.subpath=sub"]}
    await env.client.post(f"/containers/{one}/kill")
    await env.wait_exited(one)
    assert mounter.mounted_now == {str(data)}  # the other container still uses it
    r = await env.client.delete(f"/containers/{two}?force=1")
    assert r.status == 204
    for _ in range(200):
        if not mounter.mounted_now:
            break
        await asyncio.sleep(0.005)
    assert mounter.calls[1:] == [("unmount", str(data))]


async def test_a_failed_start_unmounts_and_the_daemon_leaves_nothing_mounted(env, mounter: RecordingMounter) -> None:
    data = await volume(env, "tv", type="tmpfs", device="tmpfs")
    assert (await start(env, await create(env, "nope", "tv")))[0] == 404
    assert mounter.calls == [("mount", "tmpfs", str(data), "tmpfs", ""), ("unmount", str(data))]
    (data / "sub").mkdir()
    assert await start(env, await create(env, "sub", "tv", ("sleep", "100"))) == (204, "")
    await env.engine.shutdown()  # the container keeps running, the host keeps nothing mounted
    assert mounter.mounted_now == set()


async def test_daemon_start_unmounts_what_a_killed_daemon_left(env, mounter: RecordingMounter) -> None:
    data = await volume(env, "tv", type="tmpfs", device="tmpfs")
    await volume(env, "plain")
    mounter.mounted_now.add(str(data))
    await env.engine.restore()
    assert mounter.calls == [("unmount", str(data))]


async def test_without_a_mounter_a_mount_volume_is_refused(env) -> None:
    await volume(env, "tv", type="tmpfs", device="tmpfs")
    assert await start(env, await create(env, "sub", "tv")) == (
        501, "volume tv is a mount, and this engine mounts no volumes")


async def test_a_mount_volume_without_a_device_fails_at_start_as_dockerd(env, mounter: RecordingMounter) -> None:
    data = await volume(env, "nodev", type="tmpfs", device="")
    assert await start(env, await create(env, "", "nodev")) == (
        500, f"error while mounting volume '{data}': missing device in volume options")
    assert mounter.calls == []


async def create_image_mount(env, sub: str) -> str:
    mount = {"Type": "image", "Source": "busybox", "Target": "/img", "ImageOptions": {"Subpath": sub}}
    r = await env.client.post("/v1.48/containers/create",
                              json={"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Mounts": [mount]}})
    assert r.status == 201, await r.text()
    return (await r.json())["Id"]


async def test_an_image_subpath_is_resolved_on_the_image_before_start(env) -> None:
    layer = str(env.images.layer_dirs("busybox")[-1])
    cid = await create_image_mount(env, "nosuch/x")
    assert await start(env, cid) == (
        404, f"cannot access path {layer}/nosuch/x: lstat {layer}/nosuch: no such file or directory")
    assert cid not in env.runtime.specs
    cid = await create_image_mount(env, "bin/../bin/")
    assert await start(env, cid) == (204, "")
    m = next(m for m in env.runtime.specs[cid]["mounts"] if m["destination"] == "/img")
    assert "x-servin.subpath=bin" in m["options"]
    r = await env.client.get(f"/v1.48/containers/{cid}/json")  # inspect keeps what the user asked for
    assert (await r.json())["HostConfig"]["Mounts"][0]["ImageOptions"] == {"Subpath": "bin/../bin/"}
