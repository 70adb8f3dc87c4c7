"""A container joins a network namespace file (plan tag netns_path, setns in the shim's child)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from servin.kernel import netns
from tests.kernel.runtime_helpers import Env, cgroup_parent, drive, env, lowerdir, oci_config, requires_root

pytestmark = [pytest.mark.kernel, requires_root]
__all__ = ["cgroup_parent", "env", "lowerdir"]  # fixtures


async def test_container_joins_netns_file(env: Env, tmp_path: Path) -> None:
    path = tmp_path / "netns" / "c1"
    sock = await asyncio.to_thread(netns.create, path)
    try:
        def add_probe() -> None:  # sync pyroute2 cannot run on a thread with a running event loop
            with IPRoute(fileno=sock.detach()) as ipr:
                ipr.link("add", ifname="probe0", kind="veth", peer={"ifname": "probe1"})

        await asyncio.to_thread(add_probe)
        cid = uuid.uuid4().hex
        bundle = env.tmp / "bundles" / cid
        bundle.mkdir(parents=True)
        cgpath = f"{env.parent}/{cid[:12]}"
        config = oci_config(["sh", "-c", "cat /proc/net/dev"], lowerdir=env.lowerdir, work=bundle,
                            cgroups_path=cgpath, namespaces=("pid", "mount", "uts", "ipc"))
        config["linux"]["namespaces"].append({"type": "network", "path": str(path)})
        (bundle / "config.json").write_text(json.dumps(config))
        env.created.append((cid, cgpath))
        shim = await env.runtime.spawn(cid, bundle=bundle, log_path=None, exit_path=bundle / "exit.json")
        code, out, err = await drive(shim)
        assert code == 0, (out, err)
        assert b"probe0" in out, (out, err)
    finally:
        netns.delete(path)
    assert not path.exists() and not netns.is_netns_file(path)


def test_missing_netns_file_fails_start_cleanly(tmp_path: Path) -> None:
    assert netns.cleanup(tmp_path / "nothing", ()) == []
    with pytest.raises(OSError):
        netns.open_netlink(tmp_path / "absent")
