"""Posting a webhook's deliveries: one courier per webhook takes its journal's entries in order, one in
flight at a time, and posts each until the receiver answers 2xx, retrying errors, timeouts and other
statuses with exponential back-off, or gives up once the entry is older than the policy allows.

Every attempt is signed afresh: `X-Servin-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>"
with the webhook's secret>`, so a receiver can refuse a replayed request by its age."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from servin.manage.hookqueue import Entry, Journal

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Servin-Signature"
USER_AGENT = "Servin-Webhooks/1"
ANSWER_READ = 64 << 10


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    first_delay: float = 1.0  # seconds after the first failure, doubling
    max_delay: float = 300.0
    timeout: float = 10.0  # per attempt, connecting to reading the answer
    give_up_after: float = 24 * 3600.0  # from the event: then it is recorded as failed and dropped

    def delay(self, failures: int) -> float:
        """The wait after the `failures`-th failed attempt (1, 2, 4, ... up to max_delay)."""
        return min(self.first_delay * 2 ** min(failures - 1, 62), self.max_delay)


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """What one attempt came to: a status code (any, 2xx is success) or an error without one."""
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """A delivery as the log shows it, after each attempt."""
    entry: Entry
    attempt: Attempt
    attempts: int
    state: str  # delivered, retrying, failed
    at: float  # unix time of the attempt


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, tolerance: float | None = None,
           now: float | None = None) -> bool:
    """A receiver's check of the signature header (the docs show the same in a few lines)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not fields.get("t", "").isdigit() or "v1" not in fields:
        return False
    t = int(fields["t"])
    if tolerance is not None and abs((time.time() if now is None else now) - t) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, t, body), f"t={t},v1={fields['v1']}")


Post = Callable[[str, bytes, dict[str, str], float], Awaitable[Attempt]]


def http_poster(session: aiohttp.ClientSession) -> Post:
    """Posts with aiohttp: no redirects followed (a 3xx is a failure); the answer's first 64 KiB are read
    and dropped (a short answer keeps the connection for the next delivery)."""
    async def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
        try:
            async with session.post(url, data=body, headers=headers, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                await resp.content.read(ANSWER_READ)
                ok = 200 <= resp.status < 300
                return Attempt(status_code=resp.status, error=None if ok else f"HTTP {resp.status} {resp.reason}")
        except asyncio.TimeoutError:
            return Attempt(status_code=None, error=f"timed out after {timeout:g}s")
        except aiohttp.ClientError as exc:
            return Attempt(status_code=None, error=str(exc) or type(exc).__name__)
        except (OSError, ValueError) as exc:
            return Attempt(status_code=None, error=str(exc) or type(exc).__name__)

    return post


class Courier:
    """One webhook's deliveries, in the journal's order. `run()` until cancelled (the webhook removed, the
    daemon stopping); `wake()` when an entry was appended."""

    def __init__(self, *, url: str, secret: str, journal: Journal, post: Post, policy: RetryPolicy,
                 progress: Callable[[Progress], None], clock: Callable[[], float] = time.time) -> None:
        self.url, self.secret, self.journal = url, secret, journal
        self._post, self._policy, self._progress, self._clock = post, policy, progress, clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            entry = self.journal.head()
            if entry is None:
                self._wake.clear()
                if self.journal.head() is None:  # appended in another thread meanwhile: no wait
                    await self._wake.wait()
                continue
            await self._deliver(entry)
            self.journal.done(entry.id)

    async def _deliver(self, entry: Entry) -> None:
        failures = 0
        while True:
            now = self._clock()
            headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                       "X-Servin-Event": entry.event, "X-Servin-Delivery": entry.id,
                       SIGNATURE_HEADER: signature(self.secret, int(now), entry.body)}
            attempt = await self._post(self.url, entry.body, headers, self._policy.timeout)
            attempts = failures + 1
            if attempt.ok:
                self._progress(Progress(entry=entry, attempt=attempt, attempts=attempts, state="delivered", at=now))
                return
            failures += 1
            left = entry.enqueued + self._policy.give_up_after - self._clock()
            if left <= 0:
                log.warning("webhook %s: gave up delivery %s (%s) after %d attempts: %s", self.url, entry.id,
                            entry.event, attempts, attempt.error)
                self._progress(Progress(entry=entry, attempt=attempt, attempts=attempts, state="failed", at=now))
                return
            self._progress(Progress(entry=entry, attempt=attempt, attempts=attempts, state="retrying", at=now))
            await asyncio.sleep(min(self._policy.delay(failures), left))
