"""The builder's ledger: step images made and reused, results, persisted across restarts."""

from __future__ import annotations

from pathlib import Path

from servin.build.ledger import BuildLedger


def test_record_reuse_forget_and_restart(tmp_path: Path) -> None:
    ledger = BuildLedger(tmp_path / "buildcache.json")
    ledger.record(["sha256:a", "sha256:b"], "sha256:b")
    ledger.record(["sha256:a", "sha256:c", "sha256:a"])  # a reused once per build
    steps, results = BuildLedger(tmp_path / "buildcache.json").snapshot()  # as after a restart
    assert {i: u.usage for i, u in steps.items()} == {"sha256:a": 2, "sha256:b": 1, "sha256:c": 1}
    assert steps["sha256:a"].last_used >= steps["sha256:a"].created and results == {"sha256:b"}
    ledger.forget(["sha256:b", "sha256:x"])
    steps, results = BuildLedger(tmp_path / "buildcache.json").snapshot()
    assert set(steps) == {"sha256:a", "sha256:c"} and results == frozenset()


def test_a_damaged_ledger_is_an_empty_one(tmp_path: Path) -> None:
    (tmp_path / "buildcache.json").write_text("{not json")
    assert BuildLedger(tmp_path / "buildcache.json").snapshot() == ({}, frozenset())
