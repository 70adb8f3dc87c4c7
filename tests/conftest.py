"""Markers by folder: tests/unit → unit, tests/api → unit, tests/kernel → kernel, tests/e2e → e2e."""

from __future__ import annotations

import os

import pytest

GROUPS = {"unit": "unit", "api": "unit", "kernel": "kernel", "e2e": "e2e"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.parts
        group = next((GROUPS[p] for p in reversed(parts) if p in GROUPS), None)
        if group and group not in {m.name for m in item.iter_markers()}:
            item.add_marker(getattr(pytest.mark, group))
        if group in ("kernel", "e2e") and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="needs root"))
