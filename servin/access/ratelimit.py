"""Token buckets by name (a key's id, a client address): what a request may take, and the
X-RateLimit-* / Retry-After values that say so."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from servin.access.durations import Rate

MAX_BUCKETS = 10_000
_SWEEP = 2  # least recently used buckets looked at per call, dropped when full again
_EPS = 1e-9  # float slack: 0.1 s at 10/s is one whole token, not 0.9999999


@dataclass(frozen=True, slots=True, kw_only=True)
class Allowance:
    allowed: bool
    limit: int  # X-RateLimit-Limit: the bucket's capacity (Rate.count)
    remaining: int  # X-RateLimit-Remaining: whole tokens left after this request
    reset: int  # X-RateLimit-Reset: whole seconds until the bucket is full again
    retry_after: int  # Retry-After when not allowed (>= 1), else 0

    def headers(self) -> dict[str, str]:
        """The response headers that carry this allowance."""
        out = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
               "X-RateLimit-Reset": str(self.reset)}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class _Bucket:
    __slots__ = ("tokens", "stamp", "rate")

    def __init__(self, rate: Rate, now: float) -> None:
        self.tokens, self.stamp, self.rate = float(rate.count), now, rate

    def refill(self, rate: Rate, now: float) -> None:
        """Bring the bucket to `now` at `rate`; a changed rate applies from now on (tokens over its
        capacity are cut)."""
        if now > self.stamp:
            self.tokens = min(float(self.rate.count), self.tokens + (now - self.stamp) * _per_second(self.rate))
            self.stamp = now
        if rate != self.rate:
            self.rate = rate
            self.tokens = min(self.tokens, float(rate.count))

    def full_at(self, now: float) -> bool:
        return self.tokens + max(0.0, now - self.stamp) * _per_second(self.rate) >= self.rate.count - _EPS


class RateLimiter:
    """Buckets of `Rate.count` tokens refilled at `count / per_seconds` a second. Buckets that are full
    again are forgotten (a full bucket and no bucket are the same), and the table never holds more than
    `max_buckets`: beyond that the least recently used is dropped. Used from one event loop."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, max_buckets: int = MAX_BUCKETS) -> None:
        if max_buckets < 1:
            raise ValueError(f"max_buckets must be at least 1, not {max_buckets}")
        self._clock = clock
        self._max = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, bucket: str, rate: Rate) -> Allowance:
        """One request from `bucket`: a token is taken when there is one."""
        now = self._clock()
        b = self._buckets.get(bucket)
        if b is None:
            b = _Bucket(rate, now)
            self._buckets[bucket] = b
        else:
            self._buckets.move_to_end(bucket)
            b.refill(rate, now)
        allowed = b.tokens >= 1.0 - _EPS
        if allowed:
            b.tokens -= 1.0
        self._sweep(now)
        return _allowance(b, allowed)

    def peek(self, bucket: str, rate: Rate) -> Allowance:
        """What `take` would answer, without taking a token (or making a bucket)."""
        b = self._buckets.get(bucket)
        if b is None:
            return _allowance(_Bucket(rate, self._clock()), True)
        b.refill(rate, self._clock())
        return _allowance(b, b.tokens >= 1.0 - _EPS)

    def forget(self, bucket: str) -> None:
        """Drop `bucket` (a revoked key's): if the name comes back it starts full."""
        self._buckets.pop(bucket, None)

    def __len__(self) -> int:
        return len(self._buckets)

    def _sweep(self, now: float) -> None:
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        for _ in range(_SWEEP):
            name, oldest = next(iter(self._buckets.items()), ("", None))
            if oldest is None or not oldest.full_at(now):
                break
            del self._buckets[name]


def _per_second(rate: Rate) -> float:
    return rate.count / rate.per_seconds


def _allowance(b: _Bucket, allowed: bool) -> Allowance:
    per_second = _per_second(b.rate)
    return Allowance(
        allowed=allowed, limit=b.rate.count, remaining=max(0, int(b.tokens + _EPS)),
        reset=max(0, math.ceil((b.rate.count - b.tokens) / per_second - _EPS)),
        retry_after=0 if allowed else max(1, math.ceil((1.0 - b.tokens) / per_second - _EPS)))
