"""Webhooks without a daemon: the signature, the back-off, the journal on disk (cut at every byte, as a
crash or a power cut may leave it), the event names and payloads, the courier's retries, and the service
resuming a journal after a restart."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from pathlib import Path

import pytest

from servin import errors
from servin.core.events import Event, EventBus, daemon_error
from servin.manage import hookqueue
from servin.manage.delivery import Attempt, Courier, Progress, RetryPolicy, signature, verify
from servin.manage.hookevents import KNOWN_EVENTS, hook_event
from servin.manage.hookqueue import Entry, Journal, parse, record
from servin.manage.hookstore import WebhookStore, checked_events, checked_secret, checked_url
from servin.manage.webhooks import Webhooks

pytestmark = pytest.mark.unit


# ---- signing ---------------------------------------------------------------------------------------

def test_the_signature_is_hmac_sha256_of_time_dot_body() -> None:
    body = b'{"event":"container.start"}'
    expected = hmac.new(b"s3cret-key", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("s3cret-key", 1700000000, body) == f"t=1700000000,v1={expected}"
    header = signature("s3cret-key", 1700000000, body)
    assert verify("s3cret-key", header, body)
    assert not verify("s3cret-key", header, body + b" ")
    assert not verify("other-key", header, body)
    assert not verify("s3cret-key", header.replace("t=1700000000", "t=1700000001"), body)
    assert not verify("s3cret-key", "v1=" + expected, body)
    assert verify("s3cret-key", header, body, tolerance=300, now=1700000100)
    assert not verify("s3cret-key", header, body, tolerance=300, now=1700000400)


def test_backoff_doubles_from_one_second_to_five_minutes() -> None:
    policy = RetryPolicy()
    assert [policy.delay(n) for n in range(1, 12)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert policy.delay(10_000) == 300 and policy.timeout == 10 and policy.give_up_after == 24 * 3600


# ---- the journal -----------------------------------------------------------------------------------

def _entry(n: int, enqueued: float | None = None) -> Entry:
    return Entry(id=f"d{n}", event="container.start", body=b'{"n":%d}' % n,
                 enqueued=1000.0 + n if enqueued is None else enqueued)


def test_journal_keeps_the_undelivered_in_order_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "h.journal"
    j = Journal(path)
    for n in range(4):
        j.append(_entry(n))
    j.done("d0")
    j.done("d2")  # out of order: only the courier's head is ever done, but the journal does not care
    j.sync()
    j.close()
    j = Journal(path)
    assert [e.id for e in j.pending()] == ["d1", "d3"]
    assert j.head() == _entry(1)
    assert path.stat().st_mode & 0o777 == 0o600
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2  # reopened: the delivered ones compacted away
    j.done("d1")
    j.done("d3")
    assert path.stat().st_size == 0  # nothing pending: truncated
    j.append(_entry(9))
    j.close()
    assert [e.id for e in Journal(path).pending()] == ["d9"]


def test_a_journal_cut_at_any_byte_loses_only_the_torn_record(tmp_path: Path) -> None:
    """A crash leaves a prefix of what was written: every prefix loads, with exactly the complete records."""
    ops: list[tuple[str, int]] = [("add", 0), ("add", 1), ("done", 0), ("add", 2), ("add", 3), ("done", 1),
                                  ("add", 4)]
    data = b""
    expected_at: list[tuple[int, list[str]]] = [(0, [])]
    pending: list[str] = []
    for op, n in ops:
        if op == "add":
            e = _entry(n)
            data += record({"id": e.id, "event": e.event, "body": e.body.decode(), "t": e.enqueued})
            pending.append(e.id)
        else:
            data += record({"done": f"d{n}"})
            pending.remove(f"d{n}")
        expected_at.append((len(data), list(pending)))
    for cut in range(len(data) + 1):
        complete = max(i for i, (end, _p) in enumerate(expected_at) if end <= cut)
        path = tmp_path / f"cut{cut}.journal"
        path.write_bytes(data[:cut])
        j = Journal(path)
        assert [e.id for e in j.pending()] == expected_at[complete][1], cut
        j.append(_entry(99))  # appends after the repair are intact
        j.close()
        assert [e.id for e in Journal(path).pending()] == [*expected_at[complete][1], "d99"], cut


def test_a_damaged_record_is_skipped_not_the_rest(tmp_path: Path) -> None:
    good = [_entry(n) for n in range(3)]
    lines = [record({"id": e.id, "event": e.event, "body": e.body.decode(), "t": e.enqueued}) for e in good]
    lines[1] = lines[1].replace(b'"d1"', b'"dX"')  # the checksum no longer matches
    entries, clean = parse(b"".join(lines))
    assert [e.id for e in entries] == ["d0", "d2"] and not clean


def test_a_long_journal_is_compacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hookqueue, "COMPACT_BYTES", 2000)
    path = tmp_path / "h.journal"
    j = Journal(path)
    j.append(_entry(0))  # stays pending: the file is never empty
    for n in range(1, 200):
        j.append(_entry(n))
        j.done(f"d{n}")
    assert path.stat().st_size < 4000
    j.close()
    assert [e.id for e in Journal(path).pending()] == ["d0"]


# ---- events ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, action, name", [
    ("container", "create", "container.create"), ("container", "start", "container.start"),
    ("container", "stop", "container.stop"), ("container", "die", "container.die"),
    ("container", "destroy", "container.destroy"), ("image", "pull", "image.pull"),
    ("image", "delete", "image.remove"), ("volume", "create", "volume.create"),
    ("volume", "destroy", "volume.remove"), ("network", "create", "network.create"),
    ("network", "destroy", "network.remove"), ("daemon", "error", "system.error"),
])
def test_engine_events_by_the_references_names(kind: str, action: str, name: str) -> None:
    he = hook_event(Event(type=kind, action=action, actor_id="abc", attributes={"name": "web"},
                          time_nano=1_700_000_000_123_000_000))
    assert he is not None and he.name == name and name in KNOWN_EVENTS
    payload = json.loads(he.body)
    assert payload["event"] == name and payload["timestamp"] == "2023-11-14T22:13:20.123Z"
    assert payload["data"]["id"] == "abc" and payload["data"]["name"] == "web" and payload["data"]["status"]


def test_payload_data_and_events_no_webhook_hears() -> None:
    die = hook_event(Event(type="container", action="die", actor_id="c1",
                           attributes={"name": "web", "image": "busybox", "exitCode": "3", "tier": "front"}))
    assert die is not None
    assert json.loads(die.body)["data"] == {"id": "c1", "name": "web", "status": "exited", "image": "busybox",
                                            "exit_code": 3, "attributes": {"name": "web", "image": "busybox",
                                                                           "exitCode": "3", "tier": "front"}}
    err = hook_event(daemon_error("restart_failed", "restarting c1: no such image", actor_id="c1", name="web"))
    assert err is not None and err.name == "system.error"
    data = json.loads(err.body)["data"]
    assert data["error"] == "restart_failed" and data["message"] == "restarting c1: no such image"
    for kind, action in (("container", "pause"), ("image", "untag"), ("network", "connect"), ("daemon", "reload")):
        assert hook_event(Event(type=kind, action=action, actor_id="x")) is None


# ---- validation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["", "ftp://h/x", "http://", "http:///path", "example.com/hook", "http://h:99999/",
                                 "http://h/a b", 7])
def test_bad_urls_are_refused(url: object) -> None:
    with pytest.raises(errors.InvalidArgument, match="url"):
        checked_url(url)


def test_good_input_and_unknown_events_named() -> None:
    assert checked_url("https://hooks.example.com:8443/x?y=1") == "https://hooks.example.com:8443/x?y=1"
    assert checked_events(["container.start", "container.stop", "container.start"]) == ("container.start",
                                                                                       "container.stop")
    with pytest.raises(errors.InvalidArgument, match=r"unknown event\(s\): container\.explode, disk\.full"):
        checked_events(["container.start", "container.explode", "disk.full"])
    for bad in ([], "container.start", None, [1]):
        with pytest.raises(errors.InvalidArgument, match="events"):
            checked_events(bad)
    assert checked_secret(None) is None and checked_secret("12345678") == "12345678"
    with pytest.raises(errors.InvalidArgument, match="secret"):
        checked_secret("short")


def test_the_store_persists_with_mode_0600_and_generates_secrets(tmp_path: Path) -> None:
    store = WebhookStore(tmp_path / "webhooks")
    a = store.add(url="http://127.0.0.1:9/a", events=("container.start",), secret=None)
    b = store.add(url="http://127.0.0.1:9/b", events=("image.pull",), secret="given-secret")
    assert a.secret.startswith("whsec_") and len(a.secret) > 40 and b.secret == "given-secret"
    assert (tmp_path / "webhooks" / "hooks.json").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "webhooks").stat().st_mode & 0o777 == 0o700
    again = WebhookStore(tmp_path / "webhooks")
    assert again.list() == store.list()
    assert [h.id for h in again.hearing("image.pull")] == [b.id]
    again.remove(a.id)
    with pytest.raises(errors.NotFound, match="No such webhook"):
        WebhookStore(tmp_path / "webhooks").get(a.id)


# ---- the courier and the service -------------------------------------------------------------------

class Receiver:
    """A fake post: answers from `statuses` in turn (then 200), recording (delivery id, body, headers)."""

    def __init__(self, statuses: list[int | None] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.got: list[tuple[str, bytes, dict[str, str]]] = []
        self.arrived = asyncio.Event()

    async def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
        self.got.append((headers["X-Servin-Delivery"], body, headers))
        self.arrived.set()
        status = self.statuses.pop(0) if self.statuses else 200
        return Attempt(status_code=status, error=None if status == 200 else f"HTTP {status}" if status else "refused")


async def test_the_courier_retries_until_2xx_with_the_same_id(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "h.journal")
    journal.append(_entry(1, time.time()))
    journal.append(_entry(2, time.time()))
    receiver = Receiver([503, None, 500])
    progress: list[Progress] = []
    courier = Courier(url="http://x/", secret="k" * 8, journal=journal, post=receiver,
                      policy=RetryPolicy(first_delay=0.01), progress=progress.append)
    task = asyncio.create_task(courier.run())
    for _ in range(200):
        if journal.head() is None:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert [g[0] for g in receiver.got] == ["d1", "d1", "d1", "d1", "d2"]
    for _delivery, body, headers in receiver.got:
        assert verify("k" * 8, headers["X-Servin-Signature"], body)
        assert headers["X-Servin-Event"] == "container.start" and headers["Content-Type"] == "application/json"
    assert [(p.entry.id, p.state, p.attempts) for p in progress] == [
        ("d1", "retrying", 1), ("d1", "retrying", 2), ("d1", "retrying", 3), ("d1", "delivered", 4),
        ("d2", "delivered", 1)]


async def test_the_courier_gives_up_when_the_entry_is_too_old(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "h.journal")
    journal.append(Entry(id="old", event="container.stop", body=b"{}", enqueued=0.0))
    journal.append(_entry(5))
    progress: list[Progress] = []
    courier = Courier(url="http://x/", secret="k" * 8, journal=journal, post=Receiver([500]),
                      policy=RetryPolicy(give_up_after=1500), progress=progress.append, clock=lambda: 2000.0)
    task = asyncio.create_task(courier.run())
    for _ in range(100):
        if journal.head() is None:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert [(p.entry.id, p.state) for p in progress] == [("old", "failed"), ("d5", "delivered")]


async def test_the_service_delivers_events_from_any_thread_in_order(tmp_path: Path) -> None:
    bus = EventBus()
    receiver = Receiver()
    hooks = Webhooks(tmp_path / "webhooks", bus, post=receiver)
    await hooks.start()
    try:
        hook = await hooks.add(url="http://127.0.0.1:9/", events=("container.start", "image.pull"), secret=None)
        await hooks.add(url="http://127.0.0.1:9/other", events=("volume.create",), secret=None)
        bus.publish(Event(type="container", action="start", actor_id="c1", attributes={"name": "a"}))
        bus.publish(Event(type="container", action="pause", actor_id="c1"))  # nobody hears it
        worker = threading.Thread(target=bus.publish, args=(Event(type="image", action="pull", actor_id="b:1"),))
        worker.start()
        worker.join()
        bus.publish(Event(type="container", action="start", actor_id="c2", attributes={"name": "b"}))
        for _ in range(200):
            if [d.state for d in hooks.store.deliveries(hook.id)] == ["delivered"] * 3:
                break
            await asyncio.sleep(0.01)
        bodies = [json.loads(b) for _id, b, _h in receiver.got]
        assert [(b["event"], b["data"]["id"]) for b in bodies] == [("container.start", "c1"), ("image.pull", "b:1"),
                                                                    ("container.start", "c2")]
        assert all(verify(hook.secret, h["X-Servin-Signature"], b) for _i, b, h in receiver.got)
        log = hooks.store.deliveries(hook.id)
        assert [d.state for d in log] == ["delivered"] * 3 and log[0].id == receiver.got[-1][0]
        await hooks.remove(hook.id)
        assert not (hooks.queue_dir / f"{hook.id}.journal").exists()
        with pytest.raises(errors.NotFound):
            hooks.store.get(hook.id)
    finally:
        await hooks.close()


async def test_a_restarted_service_resumes_the_journal(tmp_path: Path) -> None:
    bus = EventBus()
    down = Receiver([None] * 1000)
    hooks = Webhooks(tmp_path / "webhooks", bus, post=down, policy=RetryPolicy(first_delay=0.01))
    await hooks.start()
    hook = await hooks.add(url="http://127.0.0.1:9/", events=("container.die",), secret="shared-secret")
    for n in range(5):
        bus.publish(Event(type="container", action="die", actor_id=f"c{n}", attributes={"exitCode": "0"}))
    await asyncio.wait_for(down.arrived.wait(), 5)
    await hooks.close()
    tried = {g[0] for g in down.got}
    up = Receiver()
    again = Webhooks(tmp_path / "webhooks", EventBus(), post=up)
    await again.start()
    try:
        for _ in range(200):
            if len(up.got) == 5:
                break
            await asyncio.sleep(0.01)
        assert [json.loads(b)["data"]["id"] for _i, b, _h in up.got] == [f"c{n}" for n in range(5)]
        assert tried <= {g[0] for g in up.got}  # the same delivery ids as before the restart
        assert all(verify("shared-secret", h["X-Servin-Signature"], b) for _i, b, h in up.got)
        assert again.store.deliveries(hook.id)[0].state == "delivered"
    finally:
        await again.close()
