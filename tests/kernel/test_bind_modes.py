"""Binds of API 1.44 and 1.45 for real: recursively read-only binds (rro: mount_setattr with
AT_RECURSIVE, a submount read-only too) against the old read-only ones (the submount stays writable),
and a volume's subpath resolved inside it by the supervisor."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin.runtime import StartFailed

from tests.kernel.runtime_helpers import Env, cgroup_parent, env, lowerdir, requires_root, run

pytestmark = [pytest.mark.kernel, requires_root]
__all__ = ["cgroup_parent", "env", "lowerdir"]  # fixtures

WRITE = ("touch /m/top 2>/dev/null && echo top-rw || echo top-ro;"
         " touch /m/sub/x 2>/dev/null && echo sub-rw || echo sub-ro")


@pytest.fixture
def with_submount(tmp_path: Path) -> Iterator[Path]:
    """A host directory with a tmpfs mounted below it (unmounted afterwards)."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(src / "sub")], check=True)
    try:
        yield src
    finally:
        subprocess.run(["umount", "-l", str(src / "sub")], check=False)


def bind(src: Path, *options: str, dest: str = "/m") -> dict:
    return {"destination": dest, "type": "bind", "source": str(src), "options": ["rbind", *options]}


async def test_rro_makes_the_submounts_read_only_too(env: Env, with_submount: Path) -> None:
    code, out, err, _ = await run(env, ["sh", "-c", WRITE], mounts=(bind(with_submount, "rro", "rprivate"),))
    assert (code, out, err) == (0, b"top-ro\nsub-ro\n", b"")
    assert not (with_submount / "sub" / "x").exists()


async def test_ro_leaves_the_submounts_writable(env: Env, with_submount: Path) -> None:
    code, out, err, _ = await run(env, ["sh", "-c", WRITE], mounts=(bind(with_submount, "ro", "rprivate"),))
    assert (code, out, err) == (0, b"top-ro\nsub-rw\n", b"")


async def test_subpath_is_resolved_inside_the_source(env: Env, tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    (vol / "a" / "b").mkdir(parents=True)
    (vol / "a" / "b" / "f").write_text("inside\n")
    (vol / "etc").mkdir()
    (vol / "etc" / "hostname").write_text("the volume's\n")
    (vol / "esc").symlink_to("/etc")  # in the volume: /etc is the volume's etc
    (vol / "up").symlink_to("../../..")
    mounts = (bind(vol, "rprivate", "x-servin.subpath=a/b", dest="/d"),
              bind(vol, "rprivate", "x-servin.subpath=esc", dest="/e"),
              bind(vol, "rprivate", "x-servin.subpath=up", dest="/u"))
    code, out, err, _ = await run(env, ["sh", "-c", "cat /d/f /e/hostname; ls /u"], mounts=mounts)
    assert (code, err) == (0, b"")
    assert out == b"inside\nthe volume's\na\nesc\netc\nup\n"


async def test_missing_subpath_fails_the_start(env: Env, tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    with pytest.raises(StartFailed) as ei:
        await run(env, ["true"], mounts=(bind(vol, "rprivate", "x-servin.subpath=nope", dest="/d"),))
    assert "subpath nope of" in ei.value.message and "No such file or directory" in ei.value.message


async def test_overlay_narrowed_to_a_subpath_inside_it(env: Env, tmp_path: Path) -> None:
    low, high = tmp_path / "low", tmp_path / "high"
    (low / "data").mkdir(parents=True)
    (low / "data" / "f").write_text("low\n")
    high.mkdir()
    (high / "up").symlink_to("../../../..")  # inside the image: its root
    image = {"destination": "/img", "type": "overlay", "source": "overlay",
             "options": ["ro", "nosuid", "nodev", f"lowerdir={high}:{low}", "x-servin.subpath=up/data"]}
    code, out, err, _ = await run(env, ["sh", "-c", "cat /img/f; touch /img/g 2>/dev/null || echo ro"],
                                  mounts=(image,))
    assert (code, out, err) == (0, b"low\nro\n", b"")
