from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.daemon import ServinDaemon, load_busybox


@pytest.fixture(scope="module")
def servin() -> Iterator[ServinDaemon]:
    d = ServinDaemon()
    try:
        d.start()
        load_busybox(d)
        yield d
    finally:
        d.cleanup()
