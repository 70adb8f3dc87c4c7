"""The audit log as an operator reads it: one JSON line per request with Docker's time format, files
0600, rotation to audit.log.1..N with the right lines in each, no credentials in it, and a writer
that neither blocks the caller nor loses what was queued when the daemon stops."""

from __future__ import annotations

import datetime
import json
import logging
import os
import stat
import time

import pytest

from servin.access.audit import AuditEntry, AuditLog, redact

pytestmark = pytest.mark.unit

T0 = datetime.datetime(2026, 12, 6, 9, 20, 54, 123456, tzinfo=datetime.UTC)


def entry(i: int = 0, *, path: str = "/v1.47/containers/json", principal: str = "key:0123456789ab",
          when: datetime.datetime = T0) -> AuditEntry:
    return AuditEntry(time=when, principal=principal, method="GET", path=f"{path}?n={i}" if i else path,
                      status=200, remote="10.0.0.7:51234")


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_one_json_line_per_request(tmp_path):
    log = AuditLog(tmp_path / "access" / "audit.log", max_bytes=1 << 20, max_files=3)
    log.record(entry())
    log.record(AuditEntry(time=T0.astimezone(datetime.timezone(datetime.timedelta(hours=2))), principal="unix",
                          method="POST", path="/containers/create", status=201, remote=""))
    log.close()
    raw = (tmp_path / "access" / "audit.log").read_text()
    assert raw.splitlines()[0] == (
        '{"time":"2026-12-06T09:20:54.123456000Z","principal":"key:0123456789ab","method":"GET",'
        '"path":"/v1.47/containers/json","status":200,"remote":"10.0.0.7:51234"}')
    assert lines(tmp_path / "access" / "audit.log")[1] == {
        "time": "2026-12-06T09:20:54.123456000Z", "principal": "unix", "method": "POST",
        "path": "/containers/create", "status": 201, "remote": ""}


def test_files_are_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        log = AuditLog(tmp_path / "audit.log", max_bytes=200, max_files=3)
        for i in range(1, 6):
            log.record(entry(i))
        log.close()
    finally:
        os.umask(old)
    files = sorted(tmp_path.iterdir())
    assert [p.name for p in files] == ["audit.log", "audit.log.1", "audit.log.2"]
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}


def test_rotation_keeps_max_files_with_the_newest_lines(tmp_path):
    one = AuditLog(tmp_path / "probe" / "audit.log", max_bytes=1 << 20, max_files=1)
    one.record(entry(1))
    one.close()
    size = len((tmp_path / "probe" / "audit.log").read_bytes())  # every entry(i) for i in 1..9 has this size
    log = AuditLog(tmp_path / "audit.log", max_bytes=2 * size, max_files=4)  # two lines a file
    for i in range(1, 10):
        log.record(entry(i))
    log.close()
    numbers = {name: [int(e["path"].rsplit("=", 1)[1]) for e in lines(tmp_path / name)]
               for name in ("audit.log", "audit.log.1", "audit.log.2", "audit.log.3")}
    assert numbers == {"audit.log": [9], "audit.log.1": [7, 8], "audit.log.2": [5, 6], "audit.log.3": [3, 4]}
    assert not (tmp_path / "audit.log.4").exists()


def test_rotation_with_one_file_starts_it_again(tmp_path):
    log = AuditLog(tmp_path / "audit.log", max_bytes=10, max_files=1)  # every line is over 10 bytes
    for i in range(1, 4):
        log.record(entry(i))
    log.close()
    assert [e["path"] for e in lines(tmp_path / "audit.log")] == ["/v1.47/containers/json?n=3"]
    assert [p.name for p in tmp_path.iterdir()] == ["audit.log"]


def test_the_log_continues_an_existing_file(tmp_path):
    for i in (1, 2):
        log = AuditLog(tmp_path / "audit.log", max_bytes=1 << 20, max_files=2)
        log.record(entry(i))
        log.close()
    assert [e["path"] for e in lines(tmp_path / "audit.log")] == [
        "/v1.47/containers/json?n=1", "/v1.47/containers/json?n=2"]


def test_a_file_moved_away_by_logrotate_is_made_again(tmp_path):
    log = AuditLog(tmp_path / "audit.log", max_bytes=1 << 20, max_files=2)
    log.record(entry(1))
    deadline = time.monotonic() + 5
    while not (tmp_path / "audit.log").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    os.rename(tmp_path / "audit.log", tmp_path / "audit.log-20261206")
    log.record(entry(2))
    log.close()
    assert [e["path"] for e in lines(tmp_path / "audit.log")] == ["/v1.47/containers/json?n=2"]


def test_record_does_not_wait_for_the_disk_and_close_drains(tmp_path):
    log = AuditLog(tmp_path / "audit.log", max_bytes=1 << 20, max_files=2)
    with log._lock:  # the writer is stuck (a slow disk)
        started = time.monotonic()
        for i in range(1, 1001):
            log.record(entry(i))
        assert time.monotonic() - started < 1.0
    log.close()
    assert len(lines(tmp_path / "audit.log")) == 1000
    log.record(entry(1001))  # after close (a late request at shutdown): written at once
    assert len(lines(tmp_path / "audit.log")) == 1001
    log.close()


def test_a_link_planted_at_the_path_is_not_followed(tmp_path, caplog):
    target = tmp_path / "elsewhere"
    target.write_text("untouched\n")
    (tmp_path / "audit.log").symlink_to(target)
    log = AuditLog(tmp_path / "audit.log", max_bytes=1 << 20, max_files=2)
    with caplog.at_level(logging.ERROR, logger="servin.access.audit"):
        log.record(entry())
        log.close()
    assert target.read_text() == "untouched\n"
    assert "audit log" in caplog.text and "1 entries not written" in caplog.text


def test_secrets_never_reach_the_file(tmp_path):
    secret = "svk_0123456789ab_" + "S3cr3t-" * 6
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    log = AuditLog(tmp_path / "audit.log", max_bytes=1 << 20, max_files=2)
    log.record(entry(path=f"/containers/json?all=1&api_key={secret}&access_token={jwt}&token=abc"))
    log.close()
    text = (tmp_path / "audit.log").read_text()
    assert secret not in text and jwt not in text and "abc" not in text
    assert lines(tmp_path / "audit.log")[0]["path"] == (
        "/containers/json?all=1&api_key=REDACTED&access_token=REDACTED&token=REDACTED")


@pytest.mark.parametrize(("raw", "shown"), [
    ("/_ping", "/_ping"),
    ("/containers/json?all=1&filters=%7B%7D", "/containers/json?all=1&filters=%7B%7D"),
    ("/info?api_key=svk_0123456789ab_c2VjcmV0", "/info?api_key=REDACTED"),
    ("/info?API_KEY=x&Token=y", "/info?API_KEY=REDACTED&Token=REDACTED"),
    ("/info?api%5Fkey=x", "/info?api%5Fkey=REDACTED"),
    ("/info?api_key=", "/info?api_key=REDACTED"),
    ("/info?tokens=1&api_key", "/info?tokens=1&api_key"),  # no value, nothing to hide
    ("/info?filters=svk_0123456789ab_c2VjcmV0", "/info?filters=svk_0123456789ab_REDACTED"),
    ("/containers/svk_0123456789ab_c2VjcmV0/json", "/containers/svk_0123456789ab_REDACTED/json"),
    ("/events?x=eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.", "/events?x=REDACTED"),
])
def test_redact(raw, shown):
    assert redact(raw) == shown


def test_bad_limits_are_refused(tmp_path):
    with pytest.raises(ValueError, match="max_bytes and max_files"):
        AuditLog(tmp_path / "audit.log", max_bytes=0, max_files=1)
    with pytest.raises(ValueError, match="max_bytes and max_files"):
        AuditLog(tmp_path / "audit.log", max_bytes=10, max_files=0)
