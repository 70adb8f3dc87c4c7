"""runtime/volumemount.py: a volume's `o` as moby/sys/mount reads it, and a failed mount in dockerd's
words (its password hidden)."""

from __future__ import annotations

import errno

import pytest

from servin import errors
from servin.runtime import volumemount
from servin.runtime.linux import MS_BIND, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    seen: list[tuple] = []
    monkeypatch.setattr(volumemount.kmounts, "mount", lambda *a: seen.append(a))
    return seen


def test_filesystem_options_are_flags_and_data(calls: list[tuple]) -> None:
    volumemount.LocalVolumeMounter().mount("tmpfs", "/v/_data", "tmpfs", "size=10m,nosuid,uid=1000")
    assert calls == [("tmpfs", "/v/_data", "tmpfs", MS_NOSUID, "size=10m,uid=1000")]


def test_a_read_only_bind_is_remounted(calls: list[tuple]) -> None:
    volumemount.LocalVolumeMounter().mount("/srv/x", "/v/_data", "none", "rbind,ro")
    assert calls == [("/srv/x", "/v/_data", "none", MS_BIND | MS_REC, None),
                     (None, "/v/_data", None, MS_BIND | MS_REC | MS_RDONLY | MS_REMOUNT, None)]


def test_a_failed_mount_is_dockerds_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(volumemount.kmounts, "mount", refuse)
    with pytest.raises(errors.SystemError_) as ei:
        volumemount.LocalVolumeMounter().mount("//srv/share", "/v/_data", "cifs", "username=u,password=s3cret")
    assert ei.value.message == ("failed to mount local volume: mount //srv/share:/v/_data, "
                                "data: username=u,password=********: invalid argument")


def test_a_bind_whose_remount_fails_is_unmounted(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple] = []
    unmounted: list[tuple] = []

    def mount(*a: object) -> None:
        seen.append(a)
        if len(seen) == 2:
            raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(volumemount.kmounts, "mount", mount)
    monkeypatch.setattr(volumemount.kmounts, "umount", lambda *a: unmounted.append(a))
    with pytest.raises(errors.SystemError_) as ei:
        volumemount.LocalVolumeMounter().mount("/srv/x", "/v/_data", "none", "bind,ro")
    assert "failed to mount local volume" in ei.value.message
    assert unmounted == [("/v/_data", volumemount.MNT_DETACH)]
