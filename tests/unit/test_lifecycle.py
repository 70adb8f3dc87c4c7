"""core/lifecycle: the transition table, the verbs' checks in dockerd's words, and the records."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from servin import errors
from servin.core import lifecycle
from servin.core.lifecycle import TRANSITIONS, Records, may_move
from servin.core.model import State, Status
from servin.core.store import ContainerStore
from tests.unit.test_container_store import make

pytestmark = pytest.mark.unit

CID = "a" * 64


def in_status(status: Status, **state: object):  # noqa: ANN201
    return make(CID).with_state(status=status, **state)


def test_every_status_has_its_transitions_and_staying_put_is_allowed() -> None:
    assert set(TRANSITIONS) == set(Status)
    for frm in Status:
        assert may_move(frm, frm)
    assert may_move(Status.EXITED, Status.REMOVING) and may_move(Status.REMOVING, Status.DEAD)
    assert may_move(Status.DEAD, Status.REMOVING)  # a failed removal can be tried again
    assert not may_move(Status.RUNNING, Status.REMOVING)  # a running container is stopped first
    assert not may_move(Status.REMOVING, Status.RUNNING) and not may_move(Status.DEAD, Status.RUNNING)
    assert not may_move(Status.CREATED, Status.PAUSED)


@pytest.mark.parametrize(("status", "kind", "message"), [
    (Status.RUNNING, errors.NotModified, "container already started"),
    (Status.RESTARTING, errors.NotModified, "container already started"),
    (Status.PAUSED, errors.Conflict, "cannot start a paused container, try unpause instead"),
    (Status.REMOVING, errors.Conflict, f"container {CID} is marked for removal and cannot be started"),
    (Status.DEAD, errors.Conflict, f"container {CID} is marked for removal and cannot be started"),
])
def test_can_start(status: Status, kind: type[errors.ServinError], message: str) -> None:
    with pytest.raises(kind) as exc:
        lifecycle.can_start(in_status(status))
    assert exc.value.message == message


def test_can_start_created_and_exited() -> None:
    lifecycle.can_start(in_status(Status.CREATED))
    lifecycle.can_start(in_status(Status.EXITED))


def test_stop_kill_pause_unpause_words() -> None:
    with pytest.raises(errors.NotModified, match="^container already stopped$"):
        lifecycle.can_stop(in_status(Status.EXITED), supervised=False)
    with pytest.raises(errors.NotModified):
        lifecycle.can_stop(in_status(Status.RUNNING), supervised=False)  # its exit is being recorded
    lifecycle.can_stop(in_status(Status.PAUSED), supervised=True)
    with pytest.raises(errors.Conflict, match=f"^Container {CID} is not running$"):
        lifecycle.can_kill(in_status(Status.CREATED), supervised=False)
    with pytest.raises(errors.Conflict, match=f"^Container {CID} is already paused$"):
        lifecycle.can_pause(in_status(Status.PAUSED))
    with pytest.raises(errors.Conflict, match=f"^Container {CID} is not running$"):
        lifecycle.can_pause(in_status(Status.RESTARTING))
    with pytest.raises(errors.Conflict, match=f"^Container {CID} is not paused$"):
        lifecycle.can_unpause(in_status(Status.RUNNING))
    with pytest.raises(errors.Conflict, match="unpause the container before exec$"):
        lifecycle.can_exec(in_status(Status.PAUSED))


def test_can_remove() -> None:
    with pytest.raises(errors.Conflict, match="^You cannot remove a running container"):
        lifecycle.can_remove(in_status(Status.RUNNING), force=False)
    lifecycle.can_remove(in_status(Status.RUNNING), force=True)
    lifecycle.can_remove(in_status(Status.DEAD), force=False)
    with pytest.raises(errors.Conflict, match=f"^removal of container {CID} is already in progress$"):
        lifecycle.can_remove(in_status(Status.REMOVING), force=True)


def test_records_move_through_the_table_only(tmp_path: Path) -> None:
    records = Records(ContainerStore(tmp_path))
    c = make(CID).with_state(status=Status.CREATED)
    records.create(c).result()
    saved = records.move(c, Status.RUNNING, pid=7)
    assert saved.record is not None and records.get(CID) == saved.record  # in memory at the call
    saved.result()
    assert ContainerStore(tmp_path).get(CID) == saved.record  # and on disk once it is done
    with pytest.raises(errors.SystemError_):
        records.move(saved.record, Status.REMOVING)
    assert records.get(CID) == saved.record


def test_amend_never_changes_the_status(tmp_path: Path) -> None:
    records = Records(ContainerStore(tmp_path))
    records.create(make(CID).with_state(status=Status.CREATED)).result()
    records.amend(CID, lambda cur: cur.with_state(restart_count=3)).result()
    assert records.get(CID).state.restart_count == 3  # type: ignore[union-attr]
    with pytest.raises(errors.SystemError_):
        records.amend(CID, lambda cur: cur.with_state(status=Status.RUNNING))
    assert records.amend("b" * 64, lambda cur: cur).record is None  # gone: nothing to do


async def test_writes_land_in_call_order_off_the_loop(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    c = make(CID).with_state(status=Status.CREATED)
    pending = [store.save(c.with_state(restart_count=i)) for i in range(50)]
    assert store.get(CID).state.restart_count == 49  # type: ignore[union-attr]
    await asyncio.gather(*pending)
    assert ContainerStore(tmp_path).get(CID).state.restart_count == 49  # type: ignore[union-attr]
    await store.delete(CID)
    store.close()
    assert ContainerStore(tmp_path).all() == []


def test_state_default_is_created() -> None:
    assert State().status == Status.CREATED
