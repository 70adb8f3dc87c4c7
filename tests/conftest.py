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
def _host_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a run with kernel or e2e tests, even one with failures: what the suite's daemons left
    (test bridges, veths, rules, cgroups) is removed, then no network device, cgroup, iptables rule
    or mount may be new. A run of unit tests alone touches none of them, and must not sweep what a
    concurrent kernel or e2e run has up at the time. The folder decides, not the marker: a few
    kernel-marked tests in tests/unit (hostile layers on a real overlay) start no daemon."""
    touches_host = any({"kernel", "e2e"} & set(item.path.parts) for item in request.session.items)
    if os.geteuid() != 0 or not touches_host:
        yield
        return
    from tests.support.hoststate import HostState, sweep

    before = HostState.read()
    yield
    sweep(before)
    left = HostState.read().added_since(before)
    assert not left, "the suite left on the host:\n" + "\n".join(left)
