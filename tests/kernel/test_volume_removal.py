"""A volume's tree is never removed through a mount: a bind-type volume (`-o bind -o device=/srv/x`)
mounted on its _data, on the same filesystem (same st_dev), is seen as a mount point; the volume's
removal is refused and a tree removal leaves what is mounted in it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin import errors, safefs
from servin.core.volumes import VolumeStore
from tests.kernel.runtime_helpers import requires_root

pytestmark = [pytest.mark.kernel, requires_root]


@pytest.fixture
def bound(tmp_path: Path) -> Iterator[tuple[VolumeStore, Path]]:
    host = tmp_path / "srv"
    host.mkdir()
    (host / "host-file").write_text("keep me")
    store = VolumeStore(tmp_path / "volumes")
    vol, _ = store.create("bound")
    subprocess.run(["mount", "--bind", str(host), vol.mountpoint], check=True)
    try:
        yield store, host
    finally:
        subprocess.run(["umount", "-l", vol.mountpoint], check=False)


def test_a_same_filesystem_bind_is_a_mount_point(bound: tuple[VolumeStore, Path]) -> None:
    store, _ = bound
    assert safefs.is_mount_point(store.data_dir("bound"))
    assert not safefs.is_mount_point(store.root / "bound")


def test_removal_through_a_bind_is_refused(bound: tuple[VolumeStore, Path]) -> None:
    store, host = bound
    with pytest.raises(errors.Conflict) as ei:
        store.remove("bound", users=[])
    assert ei.value.message.startswith("remove bound: volume is in use")
    assert (host / "host-file").read_text() == "keep me"


def test_a_tree_removal_never_crosses_into_a_mount(bound: tuple[VolumeStore, Path]) -> None:
    store, host = bound
    with pytest.raises(OSError):
        safefs.remove_tree(store.root / "bound")
    assert (host / "host-file").read_text() == "keep me"
