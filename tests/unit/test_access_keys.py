"""API keys: shown once, stored hashed and atomically, surviving a restart; expired and revoked keys
refused at once; last use kept in memory until flushed."""

from __future__ import annotations

import datetime
import json
import os
import stat
from pathlib import Path

import pytest

from servin import errors
from servin.access.durations import Rate
from servin.access.keys import KeyStore
from servin.access.scopes import Scope

pytestmark = pytest.mark.unit

T0 = datetime.datetime(2026, 12, 6, 9, 0, tzinfo=datetime.timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now


def store(tmp_path: Path, clock: Clock | None = None) -> KeyStore:
    return KeyStore(tmp_path / "access" / "keys.json", clock=clock or Clock())


def test_generate_shows_the_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    keys = store(tmp_path)
    key, text = keys.generate(name="ci", scope=Scope.WRITE, rate_limit=Rate.parse("10/s"))
    assert text.startswith(f"svk_{key.id}_") and len(key.id) == 12
    path = tmp_path / "access" / "keys.json"
    raw = path.read_text()
    assert text.split("_", 2)[2] not in raw and text not in raw
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    entry = json.loads(raw)["keys"][0]
    assert entry["name"] == "ci" and entry["scope"] == "write" and entry["rate_limit"] == "10/s"
    assert entry["created"] == "2026-12-06T09:00:00Z" and entry["expires"] is None
    assert keys.verify(text).id == key.id


def test_a_key_survives_a_restart(tmp_path: Path) -> None:
    key, text = store(tmp_path).generate(name="a", expires=datetime.timedelta(days=30))
    again = store(tmp_path)
    assert again.verify(text).id == key.id
    listed = again.list()[0]
    assert listed.expires == T0 + datetime.timedelta(days=30) and listed.scope == Scope.READ


@pytest.mark.parametrize("text", ["", "svk_", "nope", "svk_000000000000_" + "A" * 43, "Bearer x"])
def test_unknown_or_malformed_keys_are_refused(tmp_path: Path, text: str) -> None:
    keys = store(tmp_path)
    keys.generate(name="a")
    with pytest.raises(errors.AuthenticationFailed, match="invalid API key"):
        keys.verify(text)


def test_a_wrong_secret_for_a_known_id_is_refused(tmp_path: Path) -> None:
    keys = store(tmp_path)
    _key, text = keys.generate(name="a")
    forged = text[:-4] + ("AAAA" if not text.endswith("AAAA") else "BBBB")
    with pytest.raises(errors.AuthenticationFailed):
        keys.verify(forged)


def test_an_expired_key_is_refused_at_once(tmp_path: Path) -> None:
    clock = Clock()
    keys = store(tmp_path, clock)
    key, text = keys.generate(name="a", expires=datetime.timedelta(hours=1))
    keys.verify(text)
    clock.now = T0 + datetime.timedelta(hours=1)
    with pytest.raises(errors.AuthenticationFailed, match=f"API key {key.id} expired at 2026-12-06T10:00:00Z"):
        keys.verify(text)


def test_a_revoked_key_is_refused_at_once_and_after_a_restart(tmp_path: Path) -> None:
    keys = store(tmp_path)
    key, text = keys.generate(name="a")
    other, other_text = keys.generate(name="b")
    keys.revoke(key.id)
    with pytest.raises(errors.AuthenticationFailed):
        keys.verify(text)
    with pytest.raises(errors.AuthenticationFailed):
        store(tmp_path).verify(text)
    assert store(tmp_path).verify(other_text).id == other.id
    with pytest.raises(errors.NotFound, match="no such API key: " + key.id):
        keys.revoke(key.id)
    with pytest.raises(errors.NotFound):
        keys.revoke("../../etc")


def test_last_use_is_kept_in_memory_and_written_by_flush(tmp_path: Path) -> None:
    clock = Clock()
    keys = store(tmp_path, clock)
    key, text = keys.generate(name="a")
    path = tmp_path / "access" / "keys.json"
    before = path.stat().st_mtime_ns, path.read_text()
    clock.now = T0 + datetime.timedelta(minutes=5)
    for _ in range(100):
        keys.verify(text)
    assert (path.stat().st_mtime_ns, path.read_text()) == before  # no write per request
    assert keys.list()[0].last_used == clock.now
    keys.flush()
    assert json.loads(path.read_text())["keys"][0]["last_used"] == "2026-12-06T09:05:00Z"
    assert store(tmp_path).list()[0].last_used == clock.now


def test_reload_reads_the_file_again_and_keeps_unwritten_uses(tmp_path: Path) -> None:
    keys = store(tmp_path)
    _a, text_a = keys.generate(name="a")
    other = store(tmp_path)  # another writer of the same file (an operator's edit, a restore)
    b, text_b = other.generate(name="b")
    keys.verify(text_a)
    keys.reload()
    assert keys.verify(text_b).id == b.id and keys.list()[0].last_used is not None


def test_a_broken_file_is_refused_by_name_and_reload_keeps_the_running_keys(tmp_path: Path) -> None:
    keys = store(tmp_path)
    _key, text = keys.generate(name="a")
    path = tmp_path / "access" / "keys.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=str(path)):
        keys.reload()
    keys.verify(text)
    with pytest.raises(ValueError, match="cannot read the API keys"):
        store(tmp_path)


@pytest.mark.parametrize("name", ["", "x" * 101, "a\nb"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="invalid key name"):
        store(tmp_path).generate(name=name)
