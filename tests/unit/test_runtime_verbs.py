"""The runtime's verbs by container id that need no supervisor: the cgroup it owns, over a recording
cgroup manager (no root, no processes)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from servin import errors
from servin.kernel.cgroups import CgroupStats, Features, Resources
from servin.runtime import Runtime
from servin.runtime.api import ExitStatus


class RecordingCgroups:
    version = 2
    driver = "cgroupfs"
    features = Features()

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.gone: set[str] = set()

    def _do(self, *call: Any) -> None:
        self.calls.append(call)
        if call[1] in self.gone:
            raise FileNotFoundError(call[1])

    def create(self, path: str, resources: Resources) -> list[Path]:
        self._do("create", path, resources)
        return []

    def update(self, path: str, resources: Resources) -> None:
        self._do("update", path, resources)

    def stats(self, path: str) -> CgroupStats:
        self._do("stats", path)
        return CgroupStats(cpu_usage_ns=1, memory_usage=2, memory_limit=None, pids_current=3, oom_kills=0)

    def oom_killed(self, path: str) -> bool:
        return path == "/oom/c1"

    def pids(self, path: str) -> list[int]:
        self._do("pids", path)
        return [1]

    def freeze(self, path: str) -> None:
        self._do("freeze", path)

    def thaw(self, path: str) -> None:
        self._do("thaw", path)

    def destroy(self, path: str) -> None:
        self._do("destroy", path)


class StubShim:
    def __init__(self) -> None:
        self.signals: list[int] = []

    async def kill(self, signum: int) -> None:
        self.signals.append(signum)

    async def close(self) -> None:
        pass


@pytest.fixture
def rt(tmp_path: Path) -> Runtime:
    return Runtime(exec_root=tmp_path / "exec", cgroups=RecordingCgroups(), cgroup_parent="servin/")


def test_the_cgroup_is_parent_slash_id_unless_create_recorded_another(rt: Runtime) -> None:
    assert rt.cgroups_path("c1") == "/servin/c1"
    assert (rt.cgroup_version, rt.features) == (2, Features())
    state = rt.state_dir("c2")
    state.mkdir(parents=True)
    (state / "meta.json").write_text(json.dumps({"cgroups_path": "/elsewhere/c2", "exit_path": "/x/exit.json"}))
    assert rt.stats("c2") is not None
    assert rt.cgroups.calls[-1] == ("stats", "/elsewhere/c2")  # type: ignore[attr-defined]


async def test_pause_resume_update_pids(rt: Runtime) -> None:
    cg: RecordingCgroups = rt.cgroups  # type: ignore[assignment]
    await rt.pause("c1")
    await rt.resume("c1")
    await rt.update("c1", {"memory": {"limit": 1 << 20}, "devices": [{"allow": False, "access": "rwm"}]})
    assert await rt.pids("c1") == [1]
    assert cg.calls == [("freeze", "/servin/c1"), ("thaw", "/servin/c1"),
                        ("update", "/servin/c1", Resources(memory=1 << 20)), ("pids", "/servin/c1")]


async def test_a_gone_cgroup_is_a_container_not_running(rt: Runtime) -> None:
    rt.cgroups.gone.add("/servin/c1")  # type: ignore[attr-defined]
    with pytest.raises(errors.Conflict, match="Container c1 is not running"):
        await rt.pause("c1")
    with pytest.raises(errors.Conflict, match="Container c1 is not running"):
        await rt.resume("c1")
    assert rt.stats("c1") is None


async def test_sigkill_and_stop_signals_thaw_a_paused_container(rt: Runtime) -> None:
    cg: RecordingCgroups = rt.cgroups  # type: ignore[assignment]
    shim = StubShim()
    rt._shims["c1"] = shim  # type: ignore[assignment]
    await rt.signal("c1", signal.SIGTERM, thaw=True)  # not paused: nothing to thaw
    await rt.pause("c1")
    await rt.signal("c1", signal.SIGTERM)  # docker kill -s TERM: stays frozen
    await rt.signal("c1", signal.SIGKILL)
    await rt.pause("c1")
    await rt.signal("c1", signal.SIGQUIT, thaw=True)  # docker stop's signal
    assert shim.signals == [signal.SIGTERM, signal.SIGTERM, signal.SIGKILL, signal.SIGQUIT]
    assert [c[0] for c in cg.calls] == ["freeze", "thaw", "freeze", "thaw"]


async def test_verbs_that_need_the_supervisor_refuse_without_it(rt: Runtime) -> None:
    for verb in (rt.start("c1"), rt.signal("c1", 9), rt.resize("c1", 1, 1),
                 rt.attach("c1", stdin=False, stdout=True, stderr=True)):
        with pytest.raises(errors.Conflict):
            await verb


async def test_read_exit_and_wait_without_a_supervisor(rt: Runtime, tmp_path: Path) -> None:
    assert rt.read_exit("c1") is None
    assert await rt.wait("c1") == ExitStatus(exit_code=255)
    exit_file = tmp_path / "exit.json"
    exit_file.write_text(json.dumps({"exit_code": 3, "started_at": "a", "finished_at": "b"}))
    assert rt.read_exit("c1", exit_path=exit_file) == ExitStatus(exit_code=3, started_at="a", finished_at="b")
    state = rt.state_dir("c1")
    state.mkdir(parents=True)
    (state / "meta.json").write_text(json.dumps({"cgroups_path": "/oom/c1", "exit_path": str(exit_file)}))
    assert rt.read_exit("c1") == ExitStatus(exit_code=3, started_at="a", finished_at="b", oom_killed=True)


async def test_delete_destroys_the_recorded_cgroup_and_the_state(rt: Runtime) -> None:
    state = rt.state_dir("c1")
    (state / "sub").mkdir(parents=True)
    (state / "meta.json").write_text(json.dumps({"cgroups_path": "/elsewhere/c1", "exit_path": ""}))
    await rt.delete("c1")
    assert rt.cgroups.calls == [("destroy", "/elsewhere/c1")]  # type: ignore[attr-defined]
    assert not state.exists()
    await rt.delete("c2")
    assert rt.cgroups.calls[-1] == ("destroy", "/servin/c2")  # type: ignore[attr-defined]
