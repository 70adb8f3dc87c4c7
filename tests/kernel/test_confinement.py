"""The supervisor's part of the confinement options, from OCI configs like dockerd's: sysctls written
before /proc/sys goes read-only, oom_score_adj of the init and its execs, device nodes, and the
namespaces (and /dev/shm) of another container joined by path."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import pytest

from tests.kernel.runtime_helpers import Env, cgroup_parent, env, lowerdir, oci_config, read_frames, requires_root

pytestmark = [pytest.mark.kernel, requires_root]
__all__ = ["cgroup_parent", "env", "lowerdir"]  # fixtures


def _config(env: Env, args: list[str], edit=None) -> tuple[str, Path, dict]:  # noqa: ANN001
    cid = uuid.uuid4().hex
    bundle = env.tmp / "bundles" / cid
    bundle.mkdir(parents=True)
    cgpath = f"{env.parent}/{cid[:12]}"
    config = oci_config(args, lowerdir=env.lowerdir, work=bundle, cgroups_path=cgpath)
    if edit:
        edit(config)
    (bundle / "config.json").write_text(json.dumps(config))
    env.created.append((cid, cgpath))
    return cid, bundle, config


async def _run(env: Env, args: list[str], edit=None) -> tuple[int, str, str]:  # noqa: ANN001
    cid, bundle, _ = _config(env, args, edit)
    shim = await env.runtime.spawn(cid, bundle=bundle, log_path=None, exit_path=bundle / "exit.json")
    r, w = await shim.attach(stdin=False, stdout=True, stderr=True)
    try:
        await shim.start()
        frames = await asyncio.wait_for(read_frames(r), 20)
        status = await asyncio.wait_for(shim.wait(), 20)
    finally:
        w.close()
        await shim.close()
    return status.exit_code, frames[1].decode(), frames[2].decode()


async def test_sysctls_are_written_before_proc_sys_is_read_only(env: Env) -> None:
    host = Path("/proc/sys/kernel/shm_rmid_forced").read_text()

    def edit(c: dict) -> None:
        c["linux"]["sysctl"] = {"kernel.shm_rmid_forced": "1", "net.ipv4.ip_unprivileged_port_start": "0"}

    script = ("cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_unprivileged_port_start; "
              "echo 0 > /proc/sys/kernel/shm_rmid_forced || echo read-only")
    code, out, err = await _run(env, ["sh", "-c", script], edit)
    assert code == 0, err
    assert out.split() == ["1", "0", "read-only"]
    assert Path("/proc/sys/kernel/shm_rmid_forced").read_text() == host  # the host's IPC namespace is untouched


async def test_a_sysctl_that_cannot_be_written_fails_the_start(env: Env) -> None:
    from servin.runtime import StartFailed

    def edit(c: dict) -> None:
        c["linux"]["sysctl"] = {"net.ipv4.no_such_knob": "1"}

    with pytest.raises(StartFailed, match="write sysctl net.ipv4.no_such_knob: No such file or directory"):
        await _run(env, ["true"], edit)


async def test_oom_score_adj_of_the_init_and_of_an_exec(env: Env) -> None:
    def edit(c: dict) -> None:
        c["process"]["oomScoreAdj"] = 500

    cid, bundle, _ = _config(env, ["sleep", "30"], edit)
    shim = await env.runtime.spawn(cid, bundle=bundle, log_path=None, exit_path=bundle / "exit.json")
    try:
        pid = await shim.start()
        assert Path(f"/proc/{pid}/oom_score_adj").read_text().strip() == "500"
        session = await shim.exec(args=["cat", "/proc/self/oom_score_adj"])
        frames = await asyncio.wait_for(read_frames(session.reader), 20)
        assert await session.wait() == 0
        await session.close()
        assert frames[1].strip() == b"500"
    finally:
        await shim.kill(9)
        await asyncio.wait_for(shim.wait(), 20)
        await shim.close()


async def test_device_nodes_are_made_with_the_hosts_numbers_and_mode(env: Env) -> None:
    def edit(c: dict) -> None:
        c["linux"]["devices"] = [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 0, "gid": 0},
            {"path": "/dev/deep/er/null2", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 0,
             "gid": 65534},
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666},  # exists: left
        ]

    code, out, err = await _run(env, ["ls", "-ln", "/dev/fuse", "/dev/deep/er/null2", "/dev/null"], edit)
    assert code == 0, err
    lines = [line.split() for line in out.splitlines()]
    assert [(f[0], f[2], f[3], f[4], f[5]) for f in lines] == [
        ("crw-r-----", "0", "65534", "1,", "3"), ("crw-------", "0", "0", "10,", "229"),
        ("crw-rw-rw-", "0", "0", "1,", "3")]


def _ns(pid: int | str, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


async def test_ipc_and_pid_namespaces_and_shm_of_another_container_are_joined(env: Env) -> None:
    cid, bundle, _ = _config(env, ["sh", "-c", "echo from-the-donor > /dev/shm/x; exec sleep 30"])
    donor = await env.runtime.spawn(cid, bundle=bundle, log_path=None, exit_path=bundle / "exit.json")
    try:
        dpid = await donor.start()
        for _ in range(100):
            if _ns(dpid, "ipc") != _ns("self", "ipc"):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)

        def edit(c: dict) -> None:
            for ns in c["linux"]["namespaces"]:
                if ns["type"] in ("ipc", "pid"):
                    ns["path"] = f"/proc/{dpid}/ns/{ns['type']}"
            for m in c["mounts"]:
                if m["destination"] == "/dev/shm":
                    m.update(type="bind", source=f"/proc/{dpid}/root/dev/shm", options=["rbind", "rprivate"])

        script = "ls -l /proc/self/ns/ipc /proc/self/ns/pid; cat /dev/shm/x"
        code, out, err = await _run(env, ["sh", "-c", script], edit)
        assert code == 0, err
        assert _ns(dpid, "ipc") in out and _ns(dpid, "pid") in out
        assert out.splitlines()[-1] == "from-the-donor"
    finally:
        await donor.kill(9)
        await asyncio.wait_for(donor.wait(), 20)
        await donor.close()
