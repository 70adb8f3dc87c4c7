"""A volume in use is never removed under its user, and the host's mount calls never run on the event
loop: a create counts as a user of its volumes from their lookup until its record is saved (the
populate copy runs in between), removal refuses a volume that is still mounted and never deletes
across a mount, and the mounts that follow containers' exits run in threads, one lock per volume."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from pathlib import Path

import pytest

from servin import errors, safefs
from servin.core import creation
from servin.core.model import MountPoint
from servin.core.volumemounts import VolumeMounts
from servin.core.volumes import VolumeStore
from tests.api.test_volume_populate import create
from tests.api.test_volume_subpath import RecordingMounter, mounter, start, volume

__all__ = ["mounter"]  # fixtures


async def test_a_volume_is_in_use_while_a_create_copies_into_it(env, monkeypatch: pytest.MonkeyPatch) -> None:
    data = await volume(env, "vv")
    copying, go = threading.Event(), threading.Event()
    real = creation.copy_image_content

    def slow_copy(*args: object) -> None:
        copying.set()
        go.wait(10)
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(creation, "copy_image_content", slow_copy)
    made = asyncio.create_task(create(env, "vv"))
    assert await asyncio.to_thread(copying.wait, 10)
    try:
        r = await env.client.delete("/volumes/vv")
        assert r.status == 409, await r.text()
        assert "remove vv: volume is in use - [" in (await r.json())["message"]
        r = await env.client.post("/volumes/prune", params={"filters": '{"all": ["true"]}'})
        assert (await r.json())["VolumesDeleted"] in (None, [])
    finally:
        go.set()
        cid = await made
    assert (data / "passwd").is_file()
    r = await env.client.delete("/volumes/vv")
    assert r.status == 409 and cid in (await r.json())["message"]  # now the record says who


async def test_a_populate_that_fails_with_an_os_error_is_dockerds_message(
        env, monkeypatch: pytest.MonkeyPatch) -> None:
    await volume(env, "vv")

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/v/_data/passwd")

    monkeypatch.setattr(creation, "copy_image_content", full)
    message = await create(env, "vv", status=500)
    assert message == "failed to populate volume: /v/_data/passwd: no space left on device"
    assert (await env.client.delete("/volumes/vv")).status == 204  # the failed create no longer uses it


async def test_an_exit_unmounts_in_a_thread(env, mounter: RecordingMounter) -> None:
    data = await volume(env, "tv", type="tmpfs", device="tmpfs")
    (data / "sub").mkdir()
    loop_thread = threading.current_thread()
    where: list[threading.Thread] = []
    unmount = mounter.unmount

    def watched(target: str, *, detach: bool = False) -> None:
        where.append(threading.current_thread())
        unmount(target, detach=detach)

    mounter.unmount = watched  # type: ignore[method-assign]
    r = await env.client.post("/v1.45/containers/create", json={
        "Image": "busybox", "Cmd": ["sleep", "100"],
        "HostConfig": {"Mounts": [{"Type": "volume", "Source": "tv", "Target": "/d", "NoCopy": True,
                                   "VolumeOptions": {"NoCopy": True}}]}})
    cid = (await r.json())["Id"]
    assert await start(env, cid) == (204, "")
    await env.client.post(f"/containers/{cid}/kill")
    await env.wait_exited(cid)
    for _ in range(400):
        if where:
            break
        await asyncio.sleep(0.005)
    assert where and loop_thread not in where
    assert mounter.mounted_now == set()


# ---- the books of VolumeMounts, and removal ---------------------------------------------------


class StuckMounter(RecordingMounter):
    """mount(2) on `slow` blocks until `go`; unmount fails while `busy`."""

    def __init__(self, slow: str = "") -> None:
        super().__init__()
        self.slow, self.go, self.busy = slow, threading.Event(), False

    def mount(self, device: str, target: str, fstype: str, options: str) -> None:
        if target == self.slow:
            self.go.wait(10)
        super().mount(device, target, fstype, options)

    def unmount(self, target: str, *, detach: bool = False) -> None:
        if self.busy:
            raise errors.SystemError_(f"unmount {target}: device or resource busy")
        super().unmount(target, detach=detach)


def vol(name: str) -> MountPoint:
    return MountPoint(type="volume", name=name, source=f"/v/{name}/_data", destination="/d", fstype="tmpfs",
                      device="tmpfs")


def test_a_mount_that_blocks_holds_up_no_other_volume() -> None:
    m = StuckMounter(slow="/v/a/_data")
    books = VolumeMounts(m)
    t = threading.Thread(target=books.lend, args=("one", [vol("a")]))
    t.start()
    try:
        done = threading.Thread(target=books.lend, args=("two", [vol("b")]))
        done.start()
        done.join(2)
        assert not done.is_alive()  # b mounted while a's server hangs
        assert books.users_of("b") == ["two"]
    finally:
        m.go.set()
        t.join(10)
    assert books.users_of("a") == ["one"]


def test_a_failed_unmount_stays_counted_as_mounted() -> None:
    m = StuckMounter()
    books = VolumeMounts(m)
    books.lend("one", [vol("a")])
    m.busy = True
    books.release("one")
    assert m.mounted_now == {"/v/a/_data"}
    m.busy = False
    books.lend("two", [vol("a")])  # still mounted: taken as it is, not mounted on top
    assert [c[0] for c in m.calls] == ["mount"]
    books.release("two")
    assert m.mounted_now == set()


def test_a_claimed_volume_is_in_use_until_unclaimed() -> None:
    books = VolumeMounts(None)
    books.claim("c1", "a")
    assert books.users_of("a") == ["c1"] and books.users_of("b") == []
    books.unclaim("c1")
    assert books.users_of("a") == []


def test_a_volume_still_mounted_is_not_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = VolumeStore(tmp_path / "volumes")
    v, _ = store.create("vv")
    (Path(v.mountpoint) / "host-file").write_text("x")
    monkeypatch.setattr(safefs, "is_mount_point", lambda p: Path(p) == Path(v.mountpoint))
    with pytest.raises(errors.Conflict) as ei:
        store.remove("vv", users=[])
    assert ei.value.message.startswith("remove vv: volume is in use")
    assert (Path(v.mountpoint) / "host-file").exists()


def test_tree_removal_never_enters_another_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    top = tmp_path / "vol"
    (top / "_data" / "deep").mkdir(parents=True)
    (top / "_data" / "deep" / "host-file").write_text("x")
    (top / "volume.json").write_text("{}")
    mounted = os.stat(top / "_data").st_ino
    real = safefs.mount_of

    def mount_of(fd: int) -> tuple[int, int]:
        dev, mnt = real(fd)
        return (dev, mnt + 1) if os.fstat(fd).st_ino == mounted else (dev, mnt)

    monkeypatch.setattr(safefs, "mount_of", mount_of)
    with pytest.raises(OSError) as ei:
        safefs.remove_tree(top)
    assert ei.value.errno in (errno.EBUSY, errno.ENOTEMPTY)
    assert (top / "_data" / "deep" / "host-file").exists() and not (top / "volume.json").exists()


def test_a_real_mount_point_is_seen() -> None:
    assert safefs.is_mount_point("/proc") and not safefs.is_mount_point("/proc/self/fdinfo")


# ---- the scratch directory of an image mount's lookup ---------------------------------------


class FailingMounter(RecordingMounter):
    def mount(self, device: str, target: str, fstype: str, options: str) -> None:
        raise errors.SystemError_("failed to mount overlay: invalid argument")


def image(tmp_path: Path) -> MountPoint:
    layers = []
    for n in ("l1", "l2"):
        (tmp_path / n / "sub").mkdir(parents=True, exist_ok=True)
        layers.append(str(tmp_path / n))
    return MountPoint(type="image", source="busybox", destination="/img", subpath="sub", layers=tuple(layers))


def test_what_a_killed_daemon_left_on_the_scratch_is_detached_first(tmp_path: Path) -> None:
    m = RecordingMounter()
    scratch = str(tmp_path / "image-root")
    os.mkdir(scratch)
    m.mounted_now.add(scratch)  # an overlay a killed daemon left
    books = VolumeMounts(m)
    try:
        books._image_subpath(image(tmp_path), scratch)
    except errors.NotFound:
        pass  # the fake mounts nothing: the plain directory has no "sub"
    assert m.calls[0] == ("unmount", scratch)
    assert m.calls[1][0] == "mount"


def test_a_failed_lookup_mount_is_an_engine_error_never_an_os_error(tmp_path: Path) -> None:
    scratch = tmp_path / "image-root"
    scratch.mkdir()
    (scratch / "left").write_text("x")  # rmdir fails: ENOTEMPTY
    with pytest.raises(errors.SystemError_) as ei:
        VolumeMounts(FailingMounter())._image_subpath(image(tmp_path), str(scratch))
    assert ei.value.message == "mounting image busybox: failed to mount overlay: invalid argument"
    (tmp_path / "file").write_text("x")
    with pytest.raises(errors.SystemError_) as ei:
        VolumeMounts(RecordingMounter())._image_subpath(image(tmp_path), str(tmp_path / "file" / "image-root"))
    assert ei.value.message == "mounting image busybox: not a directory"
