"""What a container sees at /sys/fs/cgroup: its own cgroup, read-only, as runc shows it.

cgroup v1 (this host's hierarchies, dockerd's default of no cgroup namespace): each hierarchy is
the container's own directory bound read-only, so memory.limit_in_bytes and pids.max are its
limits and a change made from outside shows at once. cgroup v2: the container's cgroup namespace
with cgroup2 mounted, live on this host's cgroup2 mount (the unified hierarchy of a hybrid host,
which holds no controllers here: the test checks the namespace's root is the container's cgroup).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import pytest

from servin.kernel.cgroups import CgroupV2, Resources
from tests.kernel.runtime_helpers import (
    Env,
    cgroup_parent,
    drive,
    env,
    lowerdir,
    oci_config,
    read_frames,
    requires_root,
    run,
)

pytestmark = [pytest.mark.kernel, requires_root]
__all__ = ["cgroup_parent", "env", "lowerdir"]  # fixtures

V1 = Path("/sys/fs/cgroup/memory").is_dir()
UNIFIED = next((p for p in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))
                if (p / "cgroup.procs").exists() and (p / "cgroup.subtree_control").exists()), None)
PATH = "PATH=/bin"


async def exec_out(shim, *args: str) -> str:  # noqa: ANN001
    ex = await shim.exec(args=list(args), env=[PATH])
    frames = await asyncio.wait_for(read_frames(ex.reader), 20)
    assert await asyncio.wait_for(ex.wait(), 20) == 0, frames
    return frames[1].decode()


@pytest.mark.skipif(not V1, reason="no cgroup v1 hierarchies")
async def test_v1_container_sees_its_own_limits_read_only(env: Env) -> None:
    script = (
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
        "ls /sys/fs/cgroup; "
        "echo 1 > /sys/fs/cgroup/pids/pids.max 2>/dev/null && echo writable; "
        "mkdir /sys/fs/cgroup/x 2>/dev/null && echo tmpfs-writable; "
        "grep -c servin-test /proc/self/mountinfo"
    )
    cid, bundle, shim = await env.create(["sh", "-c", script], memory=64 << 20)
    cgpath = env.created[-1][1]
    env.runtime.cgroups.update(cgpath, Resources(pids_limit=42))
    code, out, err = await drive(shim)
    assert code == 0, (out, err)
    lines = out.decode().split()
    assert lines[:2] == [str(64 << 20), "42"]
    # every hierarchy the container is in (no cgroup2 "unified" of the hybrid host, as runc)
    listed = set(lines[2:-1])
    assert {"memory", "pids", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer"} <= listed
    assert "unified" not in listed and "writable" not in listed and "tmpfs-writable" not in listed
    # the bind's root in mountinfo is the container's cgroup (what JVMs match against /proc/self/cgroup)
    assert int(lines[-1]) >= 8


@pytest.mark.skipif(not V1, reason="no cgroup v1 hierarchies")
async def test_v1_update_shows_inside_at_once(env: Env) -> None:
    cid, bundle, shim = await env.create(["sleep", "100"], memory=64 << 20)
    cgpath = env.created[-1][1]
    await shim.start()
    limit = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    assert (await exec_out(shim, "cat", limit)).strip() == str(64 << 20)
    env.runtime.cgroups.update(cgpath, Resources(memory=128 << 20, memory_swap=256 << 20))
    assert (await exec_out(shim, "cat", limit)).strip() == str(128 << 20)
    # /proc/self/cgroup names the container's cgroup, the same directory the mount shows
    own = await exec_out(shim, "cat", "/proc/self/cgroup")
    assert f"memory:{cgpath}" in own
    await shim.kill(9)
    await asyncio.wait_for(shim.wait(), 20)
    await shim.close()


@pytest.mark.skipif(not V1, reason="no cgroup v1 hierarchies")
async def test_v1_private_cgroupns_mounts_the_hierarchies_at_its_root(env: Env) -> None:
    # --cgroupns private on v1: the hierarchies are mounted; the namespace roots them at the container
    script = "cat /proc/self/cgroup | grep memory; cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
    code, out, err, _ = await run(env, ["sh", "-c", script], memory=64 << 20,
                                  namespaces=("pid", "mount", "uts", "ipc", "network", "cgroup"))
    assert code == 0, err
    own, limit = out.decode().split()
    assert own.endswith(":memory:/") and limit == str(64 << 20)


@pytest.mark.skipif(UNIFIED is None, reason="no cgroup2 hierarchy")
async def test_v2_private_cgroupns_shows_its_own_cgroup(tmp_path: Path, lowerdir: Path) -> None:
    from servin.runtime import Runtime

    assert UNIFIED is not None
    mgr = CgroupV2(UNIFIED)
    runtime = Runtime(exec_root=tmp_path / "exec", cgroups=mgr)
    cid = uuid.uuid4().hex
    cgpath = f"/servin-viewtest-{cid[:10]}"
    bundle = tmp_path / "b"
    bundle.mkdir()
    script = ("grep '^0::' /proc/self/cgroup; cat /sys/fs/cgroup/cgroup.procs | wc -l; "
              "ls /sys/fs/cgroup | grep -c servin-; grep cgroup2 /proc/self/mountinfo | cut -d' ' -f4,5")
    config = oci_config(["sh", "-c", script], lowerdir=lowerdir, work=bundle, cgroups_path=cgpath,
                        namespaces=("pid", "mount", "uts", "ipc", "network", "cgroup"))
    (bundle / "config.json").write_text(json.dumps(config))
    try:
        shim = await runtime.spawn(cid, bundle=bundle, log_path=None, exit_path=bundle / "exit.json")
        code, out, err = await drive(shim)
        assert code == 0, (out, err)
    finally:
        await asyncio.wait_for(runtime.delete(cid), 20)
    lines = out.decode().splitlines()
    # its cgroup is the namespace's root; the mount shows that cgroup (sh, cat and wc in it), and
    # none of the host's other cgroups
    assert lines[0] == "0::/"
    assert 1 <= int(lines[1]) <= 4
    assert lines[2] == "0"
    assert lines[3] == "/ /sys/fs/cgroup"
    assert not (UNIFIED / cgpath.strip("/")).exists()
    assert os.path.exists(UNIFIED / "cgroup.procs")


@pytest.mark.skipif(not V1, reason="no cgroup v1 hierarchies")
async def test_v1_symlinks_of_co_mounted_controllers(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # this host mounts each controller apart; a host with cpu,cpuacct gets cpu -> cpu,cpuacct links,
    # which the shim makes from "symlink" plan mounts inside the root, before the tmpfs goes read-only
    from dataclasses import replace

    from servin.runtime import plan as plan_mod
    from servin.runtime import runtime as runtime_mod

    def with_link(*args, **kw):  # noqa: ANN002, ANN003, ANN202
        p = plan_mod.plan_from_oci(*args, **kw)
        last = max(i for i, m in enumerate(p.mounts) if m.target == "/sys/fs/cgroup")  # the ro remount
        link = plan_mod.Mount(source="memory", target="/sys/fs/cgroup/mem", fstype="symlink", flags=0)
        return replace(p, mounts=(*p.mounts[:last], link, *p.mounts[last:]))

    monkeypatch.setattr(runtime_mod, "plan_from_oci", with_link)
    code, out, err, _ = await run(env, ["sh", "-c", "readlink /sys/fs/cgroup/mem; "
                                        "cat /sys/fs/cgroup/mem/memory.limit_in_bytes"], memory=64 << 20)
    assert code == 0, err
    assert out.decode().split() == ["memory", str(64 << 20)]
