"""The rate limiter as a client sees it: X-RateLimit-* headers request after request, 429's Retry-After,
refill over time (a fake clock), a key whose rate changes, and a table an attacker cannot grow."""

from __future__ import annotations

import pytest

from servin.access.durations import Rate
from servin.access.ratelimit import RateLimiter

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def test_headers_count_down_then_429_with_retry_after(clock):
    limiter, rate = RateLimiter(clock), Rate.parse("3/s")
    seen = [limiter.take("key:a", rate).headers() for _ in range(4)]
    assert seen[:3] == [
        {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "1"},
        {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "1"},
        {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"},
    ]
    assert seen[3] == {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1",
                       "Retry-After": "1"}


def test_the_bucket_refills_over_time(clock):
    limiter, rate = RateLimiter(clock), Rate.parse("60/min")  # one token a second
    for _ in range(60):
        assert limiter.take("key:a", rate).allowed
    refused = limiter.take("key:a", rate)
    assert (refused.allowed, refused.remaining, refused.reset, refused.retry_after) == (False, 0, 60, 1)
    clock.now += 0.5
    assert limiter.take("key:a", rate).retry_after == 1  # half a token: still refused
    clock.now += 0.5
    ok = limiter.take("key:a", rate)
    assert (ok.allowed, ok.remaining, ok.reset, ok.retry_after) == (True, 0, 60, 0)
    clock.now += 30
    assert limiter.peek("key:a", rate).headers() == {
        "X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "30", "X-RateLimit-Reset": "30"}
    clock.now += 1000
    assert limiter.take("key:a", rate).remaining == 59  # never over the capacity


def test_retry_after_is_the_wait_for_one_token(clock):
    limiter, rate = RateLimiter(clock), Rate.parse("2/h")  # one token every 30 minutes
    limiter.take("k", rate)
    limiter.take("k", rate)
    refused = limiter.take("k", rate)
    assert (refused.allowed, refused.retry_after, refused.reset) == (False, 1800, 3600)
    clock.now += 1799
    assert limiter.take("k", rate).retry_after == 1
    clock.now += 1
    assert limiter.take("k", rate).allowed


def test_peek_takes_nothing(clock):
    limiter, rate = RateLimiter(clock), Rate.parse("2/s")
    for _ in range(5):
        a = limiter.peek("k", rate)
        assert (a.allowed, a.remaining, a.reset, a.retry_after) == (True, 2, 0, 0)
    assert len(limiter) == 0  # peeking at an unknown name makes no bucket
    limiter.take("k", rate)
    limiter.take("k", rate)
    a = limiter.peek("k", rate)
    assert (a.allowed, a.remaining, a.retry_after) == (False, 0, 1)
    assert limiter.peek("k", rate) == a


def test_buckets_are_separate(clock):
    limiter, rate = RateLimiter(clock), Rate.parse("1/s")
    assert limiter.take("key:a", rate).allowed
    assert not limiter.take("key:a", rate).allowed
    assert limiter.take("key:b", rate).allowed
    assert limiter.take("addr:10.0.0.1", rate).allowed


def test_a_changed_rate_applies_at_once(clock):
    limiter = RateLimiter(clock)
    for _ in range(10):
        limiter.take("k", Rate.parse("100/s"))
    lowered = limiter.take("k", Rate.parse("5/s"))  # 90 tokens left, cut to the new capacity of 5
    assert (lowered.limit, lowered.remaining) == (5, 4)
    raised = limiter.take("k", Rate.parse("50/s"))  # the tokens carry over, the capacity grows
    assert (raised.limit, raised.remaining, raised.reset) == (50, 3, 1)


def test_forget_starts_a_name_afresh(clock):
    limiter, rate = RateLimiter(clock), Rate.parse("1/min")
    limiter.take("key:a", rate)
    assert not limiter.take("key:a", rate).allowed
    limiter.forget("key:a")
    limiter.forget("key:never-seen")
    assert limiter.take("key:a", rate).allowed


def test_full_buckets_are_dropped(clock):
    limiter, rate = RateLimiter(clock), Rate.parse("10/s")
    for i in range(100):
        limiter.take(f"addr:{i}", rate)
    assert len(limiter) == 100
    clock.now += 1  # all full again
    for i in range(60):
        limiter.take(f"other:{i}", rate)
    assert len(limiter) <= 61


def test_the_table_is_bounded_and_drops_the_least_recently_used(clock):
    limiter, rate = RateLimiter(clock, max_buckets=100), Rate.parse("1/h")
    limiter.take("victim", rate)
    for i in range(10_000):  # an attacker cycling addresses, no bucket ever refills
        limiter.take(f"addr:{i}", rate)
        if i % 10 == 0:
            limiter.take("busy", rate)  # a name in use stays
    assert len(limiter) == 100
    assert not limiter.take("busy", rate).allowed
    assert limiter.take("victim", rate).allowed  # dropped long ago: it starts full


def test_max_buckets_must_be_positive():
    with pytest.raises(ValueError, match="max_buckets"):
        RateLimiter(max_buckets=0)
