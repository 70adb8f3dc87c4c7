"""dockerd's populateVolumes at create (daemon/create_unix.go): the image's files at a volume's
destination copied into the volume, or into its subpath, while that is empty and `nocopy` is not
set; a volume that is a mount is mounted for the copy and unmounted after it (a fake mounter
records it; tests/e2e/test_volume_mounts.py mounts for real)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from servin import errors
from tests.api.test_volume_subpath import RecordingMounter, volume


@pytest.fixture
def mounter(env) -> RecordingMounter:
    m = RecordingMounter()
    env.engine.volume_mounts.mounter = m
    return m


async def create(env, source: str, target: str = "/etc", status: int = 201, **options: Any) -> str:
    mount: dict[str, Any] = {"Type": "volume", "Source": source, "Target": target}
    if options:
        mount["VolumeOptions"] = options
    r = await env.client.post("/v1.45/containers/create",
                              json={"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Mounts": [mount]}})
    body = await r.json()
    assert r.status == status, body
    return body["Id"] if status == 201 else body["message"]


async def test_a_plain_volume_is_populated_at_create(env) -> None:
    data = await volume(env, "plain")
    await create(env, "plain")
    assert (data / "passwd").is_file()  # before any start
    (data / "passwd").unlink()
    await create(env, "plain")  # not empty: left as it is
    assert not (data / "passwd").exists()


async def test_a_mount_volume_is_mounted_for_the_copy(env, mounter: RecordingMounter) -> None:
    data = await volume(env, "tv", type="tmpfs", device="tmpfs", o="size=1m")
    await create(env, "tv")
    assert mounter.calls == [("mount", "tmpfs", str(data), "tmpfs", "size=1m"), ("unmount", str(data))]
    assert (data / "passwd").is_file()  # the fake mounted nothing: the copy is in the plain directory
    mounter.calls.clear()
    await create(env, "tv", target="/nosuch")  # nothing of the image there: no mount
    await create(env, "tv", NoCopy=True)
    assert mounter.calls == []


async def test_a_subpath_is_populated_while_empty(env) -> None:
    data = await volume(env, "sv")
    (data / "empty").mkdir()
    (data / "full").mkdir()
    (data / "full" / "mine").write_text("x")
    (data / "esc").symlink_to("/")
    await create(env, "sv", Subpath="empty")
    await create(env, "sv", Subpath="full")
    await create(env, "sv", Subpath="missing")  # as dockerd: nothing to copy into, the start will tell
    assert (data / "empty" / "passwd").is_file()
    assert [p.name for p in (data / "full").iterdir()] == ["mine"]
    assert not (data / "passwd").exists()
    assert await create(env, "sv", status=400, Subpath="esc") == (
        f"failed to populate volume: path concatenation escapes the base directory, base: {data}, subpath: esc")


class FailingMounter(RecordingMounter):
    def mount(self, device: str, target: str, fstype: str, options: str) -> None:
        raise errors.SystemError_(f"failed to mount local volume: mount {device}:{target}: no such file or directory")


async def test_a_mount_that_fails_fails_the_create(env, tmp_path: Path) -> None:
    env.engine.volume_mounts.mounter = FailingMounter()
    data = await volume(env, "bv", type="none", o="bind", device=str(tmp_path / "gone"))
    assert await create(env, "bv", status=500) == (
        f"failed to populate volume: error while mounting volume '{data}': failed to mount local volume: "
        f"mount {tmp_path}/gone:{data}: no such file or directory")
    r = await env.client.get("/containers/json?all=1")
    assert await r.json() == []


async def test_a_failed_create_removes_the_anonymous_volumes_it_made(env, tmp_path: Path) -> None:
    """As dockerd's cleanup of a failed create: its anonymous volumes go (with their destroy events), named
    ones stay."""
    mounts = [{"Type": "volume", "Target": "/anon"}, {"Type": "volume", "Source": "kept", "Target": "/named"},
              {"Type": "bind", "Source": str(tmp_path / "nosuch"), "Target": "/b"}]
    r = await env.client.post("/v1.45/containers/create",
                              json={"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Mounts": mounts}})
    assert r.status == 400 and "bind source path does not exist" in (await r.json())["message"]
    assert [v["Name"] for v in (await (await env.client.get("/volumes")).json())["Volumes"]] == ["kept"]
    r = await env.client.get("/events", params={"since": "0", "until": f"{time.time():.9f}",
                                                "filters": '{"type":["volume"]}'})
    actions = [(e["Action"], e["Actor"]["ID"] == "kept") for e in map(json.loads, (await r.text()).splitlines())]
    assert actions == [("create", False), ("create", True), ("destroy", False)]
