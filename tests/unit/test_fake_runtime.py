"""tests/support/fakes.py's FakeRuntime speaks the verbs of runtime/api.py by container id."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from servin.runtime.api import ProcessSpec

from tests.support.fakes import FakeRuntime


async def created(rt: FakeRuntime, tmp_path: Path, args: list[str]) -> str:
    bundle = tmp_path / "b"
    bundle.mkdir(exist_ok=True)
    (bundle / "config.json").write_text(json.dumps({"process": {"args": args}}))
    await rt.create("c1", bundle=bundle, log_path=bundle / "log", exit_path=bundle / "exit.json")
    return "c1"


async def test_lifecycle_by_id(tmp_path: Path) -> None:
    rt = FakeRuntime()
    cid = await created(rt, tmp_path, ["sh", "-c", "echo hi; sleep"])
    assert rt.cgroups_path(cid) == "/servin-test/c1" and rt.cgroup_version == 2
    stream = await rt.attach(cid, stdin=False, stdout=True, stderr=True)
    pid = await rt.start(cid)
    assert await rt.pids(cid) == [pid]
    titles, rows = await rt.top(cid, "")
    assert rows[0][titles.index("PID")] == str(pid)
    assert rt.stats(cid) is not None
    await rt.update(cid, {"memory": {"limit": 5}})
    ex = await rt.exec(cid, ProcessSpec(args=["sh", "-c", "echo x; exit 3"]))
    assert await ex.reader.read() == b"\x01\x00\x00\x00\x00\x00\x00\x02x\n" and await ex.wait() == 3
    await rt.pause(cid)
    await rt.signal(cid, signal.SIGKILL)
    status = await asyncio.wait_for(rt.wait(cid), 5)
    assert status.exit_code == 137
    assert await stream.reader.read() == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert rt.read_exit(cid).exit_code == 137
    await rt.delete(cid)
    assert rt.actions(cid) == ["create", "attach", "start", "top", "update", "exec", "pause", "kill", "thaw",
                               "exit", "read_exit", "delete"]
