"""The supervisor makes and mounts every target inside the container's root: an image whose
directories are symlinks to host paths (absolute, relative with `..`, dangling) cannot make it
create, write or mount anything on the host, at start or at a restart after the container planted
more links. Each case runs with openat2(RESOLVE_IN_ROOT) and with the fallback walk."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from tests.kernel.runtime_helpers import (
    APPLETS,
    BUSYBOX,
    Env,
    cgroup_parent,
    oci_config,
    drive,
    requires_root,
)
from tests.support.marker import HostMarker

pytestmark = [pytest.mark.kernel, requires_root]
__all__ = ["cgroup_parent"]  # fixtures


@pytest.fixture(params=["openat2", "walk"])
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "walk":
        monkeypatch.setenv("SERVIN_SHIM_NO_OPENAT2", "1")
    return request.param


def hostile_lower(base: Path, lower: Path, marker: Path) -> Path:
    """A copy of the busybox root whose /etc, /dev, /data and /work are links into the host marker."""
    root = base / "lower"
    shutil.copytree(lower, root, symlinks=True)
    shutil.rmtree(root / "etc")
    (root / "etc").symlink_to(marker)  # absolute: /etc/hosts would be <marker>/hosts on the host
    shutil.rmtree(root / "dev")
    (root / "dev").symlink_to("../../../../../../../.." + str(marker / "sub"))  # climbs with ..
    (root / "data").symlink_to(marker / "tool")  # a volume target onto a host file
    (root / "work").symlink_to(marker / "newdir")  # dangling: the cwd
    (root / "tmp" / "file").symlink_to(marker / "secret")  # a file bind target
    return root


async def start(env: Env, args: list[str], *, mounts: list[dict], cwd: str = "/", bundle: Path | None = None):
    cid = uuid.uuid4().hex
    bundle = bundle or env.tmp / "bundles" / cid
    bundle.mkdir(parents=True, exist_ok=True)
    cgpath = f"{env.parent}/{cid[:12]}"
    config = oci_config(args, lowerdir=env.lowerdir, work=bundle, cgroups_path=cgpath)
    config["mounts"] += mounts
    config["process"]["cwd"] = cwd
    (bundle / "config.json").write_text(json.dumps(config))
    env.created.append((cid, cgpath))
    shim = await env.runtime.spawn(cid, bundle=bundle, log_path=None, exit_path=bundle / "exit.json")
    code, out, err = await drive(shim)
    return code, out.decode(), err.decode(), bundle


def files(tmp: Path) -> dict[str, Path]:
    src = tmp / "src"
    src.mkdir()
    (src / "hosts").write_text("127.0.0.1 from-the-bundle\n")
    (src / "vol").mkdir()
    (src / "vol" / "in-volume").write_text("volume\n")
    return {"hosts": src / "hosts", "vol": src / "vol"}


def bind(source: Path, target: str) -> dict:
    return {"destination": target, "type": "bind", "source": str(source), "options": ["rbind", "rw"]}


@pytest.mark.asyncio
async def test_symlinked_targets_stay_in_the_root(tmp_path: Path, cgroup_parent: str, resolver: str) -> None:
    base_lower = tmp_path / "busybox"
    (base_lower / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, base_lower / "bin" / "busybox")
    for a in APPLETS:
        (base_lower / "bin" / a).symlink_to("busybox")
    for d in ("etc", "proc", "sys", "dev", "tmp"):
        (base_lower / d).mkdir()
    marker = HostMarker(tmp_path / "host")
    lower = hostile_lower(tmp_path, base_lower, marker.path)
    src = files(tmp_path)
    env = Env(tmp_path, lower, cgroup_parent)
    mounts = [
        bind(src["hosts"], "/etc/hosts"),
        bind(src["hosts"], "/etc/resolv.conf"),
        bind(src["vol"], "/data"),
        bind(src["hosts"], "/tmp/file"),
        {"destination": "/../../..//etc/shm", "type": "tmpfs", "source": "shm", "options": ["mode=1777"]},
    ]
    script = ("cat /etc/hosts; cat /etc/resolv.conf; ls /data; cat /tmp/file; pwd; "
              f"ls /dev/null >/dev/null && echo dev-ok; grep -c ' {marker.path}/shm tmpfs' /proc/mounts; "
              # the container plants another link for its next start
              f"rm -f /tmp/file; ln -s /proc/1/root{marker.path}/secret /tmp/file")
    try:
        code, out, err, bundle = await start(env, ["sh", "-c", script], mounts=mounts, cwd="/work")
        assert code == 0, err
        assert out.splitlines() == ["127.0.0.1 from-the-bundle", "127.0.0.1 from-the-bundle", "in-volume",
                                    "127.0.0.1 from-the-bundle", f"{marker.path}/newdir", "dev-ok", "1"]
        marker.assert_unchanged()
        # what the links pointed at was made inside the container's own layer
        upper = bundle / "upper"
        assert (upper / str(marker.path).lstrip("/") / "hosts").is_file()
        assert (upper / str(marker.path).lstrip("/") / "newdir").is_dir()

        code, out, err, _ = await start(env, ["cat", "/tmp/file"], mounts=mounts, bundle=bundle)
        assert (code, out) == (0, "127.0.0.1 from-the-bundle\n"), err
        marker.assert_unchanged()
    finally:
        await env.cleanup()


@pytest.mark.asyncio
async def test_a_target_through_a_file_fails_the_start(tmp_path: Path, cgroup_parent: str, resolver: str) -> None:
    from servin.runtime import StartFailed

    lower = tmp_path / "lower"
    (lower / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, lower / "bin" / "sh")
    (lower / "etc").mkdir()
    (lower / "etc" / "notadir").write_text("x")
    env = Env(tmp_path, lower, cgroup_parent)
    src = files(tmp_path)
    try:
        with pytest.raises(StartFailed, match="mount point /etc/notadir/x in the container: Not a directory"):
            await start(env, ["sh", "-c", "true"], mounts=[bind(src["vol"], "/etc/notadir/x")])
    finally:
        await env.cleanup()


KEYRING_PROBE = r"""
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/keyctl.h>
int main(void) {
    char d[256] = {0};
    long id = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    if (id < 0 || syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, d, sizeof d - 1) < 0) return 1;
    printf("%ld %s\n", id, d);
    return 0;
}
"""


def session_keyring() -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(250, 0, -3, 0)  # keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING)


@pytest.mark.asyncio
async def test_each_container_has_its_own_session_keyring(tmp_path: Path, cgroup_parent: str) -> None:
    import subprocess

    lower = tmp_path / "lower"
    (lower / "bin").mkdir(parents=True)
    (tmp_path / "probe.c").write_text(KEYRING_PROBE)
    subprocess.run(["cc", "-static", "-o", str(lower / "bin" / "probe"), str(tmp_path / "probe.c")], check=True)
    env = Env(tmp_path, lower, cgroup_parent)
    try:
        code, out, err, bundle = await start(env, ["/bin/probe"], mounts=[])
        assert code == 0, err
        ring_id, description = out.split(" ", 1)
        assert int(ring_id) != session_keyring()  # not the daemon's
        cid = env.created[-1][0]
        assert description.strip().endswith(f";_ses.{cid}")
    finally:
        await env.cleanup()
