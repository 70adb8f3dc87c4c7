from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.daemon import ServinDaemon, running_daemon


@pytest.fixture(scope="module")
def servin() -> Iterator[ServinDaemon]:
    with running_daemon() as d:
        yield d


@pytest.fixture
def daemon() -> Iterator[ServinDaemon]:
    """A daemon of the test's own, for tests that stop, kill or reconfigure it."""
    with running_daemon() as d:
        yield d
