"""Polling for what a daemon does in the background (a reload, a log line)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(read: Callable[[], T], ok: Callable[[T], bool], timeout: float = 10) -> T:
    """`read()` again every 0.1 s until `ok` of it; its last value, asserted ok after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if ok(value) or time.monotonic() > deadline:
            assert ok(value), value
            return value
        time.sleep(0.1)
