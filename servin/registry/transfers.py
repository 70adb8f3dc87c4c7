"""Layer transfers at once, daemon-wide, as dockerd's transfer manager (daemon/internal/distribution/
xfer/transfer.go): every pull shares one limit for downloads and every push one for uploads; a new
limit (a reload of max-concurrent-downloads/uploads) applies to the next transfer to start."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class TransferLimit:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._waiters: list[asyncio.Future[None]] = []

    def set_limit(self, limit: int) -> None:
        self.limit = limit
        self._wake()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot, hold it for the transfer."""
        while self.active >= self.limit:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self._wake()

    def _wake(self) -> None:
        """Let as many waiters re-check as there are free slots (first come, first served)."""
        for waiter in self._waiters[:max(self.limit - self.active, 0)]:
            self._waiters.remove(waiter)
            if not waiter.done():
                waiter.set_result(None)
