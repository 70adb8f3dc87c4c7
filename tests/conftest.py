"""Markers by folder: tests/unit → unit, tests/api → unit, tests/kernel → kernel, tests/e2e → e2e."""

from __future__ import annotations

import os
from collections.abc import Iterator

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


@pytest.fixture(scope="session", autouse=True)
def _no_test_network_left() -> Iterator[None]:
    """After the run: no device, veth or iptables rule of a test daemon's bridge (svt*) may remain."""
    yield
    if os.geteuid() != 0:
        return
    from tests.support.daemon import BRIDGES_MADE, leftover_test_network

    left = leftover_test_network(BRIDGES_MADE)
    assert not left, f"test network left behind: {left}"
