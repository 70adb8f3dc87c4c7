"""core/store.ContainerStore: records survive a restart; leftovers are dropped or skipped."""

from __future__ import annotations

import json

from servin.core.model import Container, ContainerConfig, HostConfig, RestartPolicy, State, Status
from servin.core.store import RECORD, ContainerStore


def make(cid: str = "a" * 64) -> Container:
    return Container(
        id=cid, name="web", created="2024-01-01T00:00:00.000000000Z", image_id="sha256:" + "b" * 64,
        config=ContainerConfig(image="busybox", cmd=("sh", "-c", "true"), entrypoint=(), env=("A=1",),
                               labels={"k": "v"}, tty=True, stop_timeout=3, exposed_ports=("80/tcp",),
                               volumes=("/data",)),
        host_config=HostConfig(memory=64 << 20, pids_limit=10,
                               restart_policy=RestartPolicy(name="on-failure", maximum_retry_count=2),
                               log_config={"max-size": "1m"}),
        state=State(status=Status.EXITED, exit_code=3, started_at="2024-01-01T00:00:01Z"),
        path="sh", args=("-c", "true"), resolved_env=("PATH=/bin", "A=1"), resolved_user="1000",
        resolved_workdir="/w", resolved_hostname="aaaaaaaaaaaa",
    )


def test_round_trip(tmp_path):
    c = make()
    store = ContainerStore(tmp_path)
    store.save(c).result()
    assert store.get(c.id) == c
    again = ContainerStore(tmp_path)
    assert again.get(c.id) == c  # tuples, enums and nested dataclasses come back equal
    assert again.all() == [c]


def test_none_cmd_stays_none(tmp_path):
    from dataclasses import replace

    c = replace(make(), config=ContainerConfig(image="busybox"))
    ContainerStore(tmp_path).save(c).result()
    got = ContainerStore(tmp_path).get(c.id)
    assert got is not None and got.config.cmd is None and got.config.entrypoint is None


def test_delete(tmp_path):
    store = ContainerStore(tmp_path)
    store.save(make()).result()
    (store.dir("a" * 64) / "upper").mkdir()
    store.delete("a" * 64).result()
    assert store.get("a" * 64) is None
    assert not (tmp_path / ("a" * 64)).exists()
    assert ContainerStore(tmp_path).all() == []


def test_a_dir_without_a_record_is_dropped_at_open(tmp_path):
    store = ContainerStore(tmp_path)
    store.save(make()).result()
    half = tmp_path / ("c" * 64)
    (half / "rootfs").mkdir(parents=True)  # a create that crashed before its record landed
    again = ContainerStore(tmp_path)
    assert [c.id for c in again.all()] == ["a" * 64]
    assert not half.exists()


def test_an_unreadable_record_is_skipped_and_kept(tmp_path):
    store = ContainerStore(tmp_path)
    store.save(make()).result()
    for cid, text in (("d" * 64, "{not json"), ("e" * 64, json.dumps({"id": "x"}))):
        bad = tmp_path / cid
        bad.mkdir()
        (bad / RECORD).write_text(text)
    again = ContainerStore(tmp_path)
    assert [c.id for c in again.all()] == ["a" * 64]
    assert (tmp_path / ("d" * 64) / RECORD).exists()  # left for a human to look at


def test_save_replaces(tmp_path):
    store = ContainerStore(tmp_path)
    c = make()
    store.save(c).result()
    store.save(c.with_state(status=Status.RUNNING, pid=42)).result()
    got = ContainerStore(tmp_path).get(c.id)
    assert got is not None and got.state.status == Status.RUNNING and got.state.pid == 42
