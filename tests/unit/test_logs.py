"""core/logs.read_log on a json-file log as the supervisor writes it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from servin.core.logs import LogQuery, parse_time_ns, read_log

T0 = "2024-05-01T10:00:00.000000001Z"
T1 = "2024-05-01T10:00:01.500000000Z"
T2 = "2024-05-01T10:00:02Z"
T3 = "2024-05-01T10:00:03.25Z"


def entry(stream: str, time: str, text: str) -> bytes:
    return json.dumps({"log": text, "stream": stream, "time": time}).encode() + b"\n"


SAMPLE = [
    entry("stdout", T0, "one\n"),
    entry("stderr", T1, "oops\n"),
    entry("stdout", T2, "two\n"),
    entry("stdout", T3, "three\n"),
]


def write_log(tmp_path: Path, lines=SAMPLE, tail: bytes = b"") -> Path:
    p = tmp_path / "c-json.log"
    p.write_bytes(b"".join(lines) + tail)
    return p


async def collect(path: Path, q: LogQuery, running=lambda: False) -> list[tuple[str, bytes]]:
    return [(line.stream, line.data) async for batch in read_log(path, q, running) for line in batch]


def test_parse_time_ns():
    assert parse_time_ns("1970-01-01T00:00:01Z") == 1_000_000_000
    assert parse_time_ns(T0) % 1_000_000_000 == 1
    assert parse_time_ns(T1) - parse_time_ns("2024-05-01T10:00:00Z") == 1_500_000_000
    assert parse_time_ns(T3) % 1_000_000_000 == 250_000_000


async def test_everything(tmp_path):
    assert await collect(write_log(tmp_path), LogQuery()) == [
        ("stdout", b"one\n"), ("stderr", b"oops\n"), ("stdout", b"two\n"), ("stdout", b"three\n")]


async def test_stdout_only(tmp_path):
    out = await collect(write_log(tmp_path), LogQuery(stderr=False))
    assert [d for _, d in out] == [b"one\n", b"two\n", b"three\n"]


async def test_stderr_only(tmp_path):
    assert await collect(write_log(tmp_path), LogQuery(stdout=False)) == [("stderr", b"oops\n")]


async def test_tail(tmp_path):
    out = await collect(write_log(tmp_path), LogQuery(tail=2))
    assert [d for _, d in out] == [b"two\n", b"three\n"]
    assert await collect(write_log(tmp_path), LogQuery(tail=0)) == []
    assert len(await collect(write_log(tmp_path), LogQuery(tail=100))) == 4


async def test_tail_counts_selected_stream_only(tmp_path):
    out = await collect(write_log(tmp_path), LogQuery(tail=1, stdout=False))
    assert out == [("stderr", b"oops\n")]


async def test_since_and_until(tmp_path):
    since = parse_time_ns(T1)
    out = await collect(write_log(tmp_path), LogQuery(since_ns=since))
    assert [d for _, d in out] == [b"oops\n", b"two\n", b"three\n"]
    out = await collect(write_log(tmp_path), LogQuery(until_ns=parse_time_ns(T2)))
    assert [d for _, d in out] == [b"one\n", b"oops\n", b"two\n"]
    out = await collect(write_log(tmp_path), LogQuery(since_ns=since, until_ns=parse_time_ns(T2)))
    assert [d for _, d in out] == [b"oops\n", b"two\n"]


async def test_partial_last_line_is_not_returned(tmp_path):
    path = write_log(tmp_path, tail=b'{"log":"half')
    out = await collect(path, LogQuery())
    assert [d for _, d in out] == [b"one\n", b"oops\n", b"two\n", b"three\n"]


async def test_garbage_lines_are_skipped(tmp_path):
    path = write_log(tmp_path, [b"not json\n", SAMPLE[0], b'{"stream":"stdout"}\n'])
    assert await collect(path, LogQuery()) == [("stdout", b"one\n")]


async def test_missing_log_is_empty(tmp_path):
    assert await collect(tmp_path / "nope.log", LogQuery(follow=True)) == []


async def test_non_utf8_bytes_round_trip(tmp_path):
    raw = json.dumps({"log": "caf\udce9\n", "stream": "stdout", "time": T0}).encode() + b"\n"
    path = write_log(tmp_path, [raw])
    assert await collect(path, LogQuery()) == [("stdout", b"caf\xe9\n")]


async def test_follow_reads_new_lines_and_ends_when_the_container_stops(tmp_path):
    path = write_log(tmp_path, SAMPLE[:1], tail=b'{"log":"par')  # a line being written
    running = True
    got: list[bytes] = []

    async def reader() -> None:
        async for batch in read_log(path, LogQuery(follow=True), lambda: running):
            got.extend(line.data for line in batch)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.02)
    assert got == [b"one\n"]
    with open(path, "ab") as f:  # the rest of the partial line, then one more
        f.write(b'tial\\n","stream":"stdout","time":"' + T1.encode() + b'"}\n')
        f.write(entry("stderr", T2, "late\n"))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(got) == 3:
            break
    assert got == [b"one\n", b"partial\n", b"late\n"]
    assert not task.done()
    with open(path, "ab") as f:
        f.write(entry("stdout", T3, "last words\n"))
    running = False  # the container stopped: whatever it wrote is still delivered, then the end
    await asyncio.wait_for(task, 2)
    assert got[-1] == b"last words\n"


async def test_follow_with_tail_zero_only_shows_new_lines(tmp_path):
    path = write_log(tmp_path)
    state = {"running": True}
    got: list[bytes] = []

    async def reader() -> None:
        async for batch in read_log(path, LogQuery(follow=True, tail=0), lambda: state["running"]):
            got.extend(line.data for line in batch)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.02)
    with open(path, "ab") as f:
        f.write(entry("stdout", T3, "new\n"))
    state["running"] = False
    await asyncio.wait_for(task, 2)
    assert got == [b"new\n"]


async def test_follow_stops_at_the_first_line_after_until(tmp_path):
    future = "2100-01-01T00:00:00Z"  # `until` still ahead of the wall clock
    path = write_log(tmp_path, SAMPLE[:1])
    got: list[bytes] = []

    async def reader() -> None:
        q = LogQuery(follow=True, stderr=False, until_ns=parse_time_ns(future))
        async for batch in read_log(path, q, lambda: True):
            got.extend(line.data for line in batch)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.02)
    with open(path, "ab") as f:  # a line of a stream not asked for still tells the time
        f.write(entry("stderr", "2100-01-01T00:00:01Z", "after until\n"))
    await asyncio.wait_for(task, 2)  # ends although the container still runs
    assert got == [b"one\n"]


async def test_follow_ends_once_until_has_passed(tmp_path):
    path = write_log(tmp_path, SAMPLE[:1])
    q = LogQuery(follow=True, until_ns=parse_time_ns(T2))
    out = await asyncio.wait_for(collect(path, q, running=lambda: True), 2)
    assert out == [("stdout", b"one\n")]


async def test_rotated_files_are_read_oldest_first(tmp_path):
    path = write_log(tmp_path, SAMPLE[:1])
    (tmp_path / (path.name + ".2")).write_bytes(entry("stdout", T1, "oldest\n"))
    (tmp_path / (path.name + ".1")).write_bytes(entry("stdout", T2, "older\n"))
    got = await collect(path, LogQuery())
    assert [d for _, d in got] == [b"oldest\n", b"older\n", b"one\n"]
    tail = await collect(path, LogQuery(tail=2))
    assert [d for _, d in tail] == [b"older\n", b"one\n"]


async def test_follow_goes_on_after_a_rotation(tmp_path):
    path = write_log(tmp_path, SAMPLE[:1])
    state = {"running": True}
    got: list[bytes] = []

    async def reader() -> None:
        async for batch in read_log(path, LogQuery(follow=True), lambda: state["running"]):
            got.extend(line.data for line in batch)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    path.rename(tmp_path / (path.name + ".1"))  # what the shim does at max-size
    path.write_bytes(entry("stdout", T3, "after rotation\n"))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(got) == 2:
            break
    state["running"] = False
    await asyncio.wait_for(task, 2)
    assert got == [b"one\n", b"after rotation\n"]
