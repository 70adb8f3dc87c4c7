"""The words for time that keys, tokens and rate limits share: durations ("90s", "1h30m", "30d", "2w")
and rates ("100/s", "600/min", "10/h")."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

# unit → seconds, largest first: a duration names each unit at most once, in this order ("1h30m", not "30m1h")
_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_RE = re.compile("".join(rf"(?:(?P<{u}>\d{{1,9}}){u})?" for u in _UNITS))
_RATE_RE = re.compile(r"(?P<count>\d{1,9})/(?P<per>[0-9a-z]+)")
# the rate units; anything else after the slash must be a duration ("5/30s", "100/1h30m")
_PER = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
_PER_NAMES = {1.0: "s", 60.0: "min", 3600.0: "h"}  # how __str__ writes them back


def parse_duration(text: str) -> datetime.timedelta:
    """A positive duration in whole units: s, m, h, d (24h), w (7d)."""
    m = _DURATION_RE.fullmatch(text)
    if not text or m is None:
        raise ValueError(f"invalid duration {text!r}: expected a number and a unit (s, m, h, d, w), "
                         'largest first, e.g. "90s", "15m", "1h30m", "30d", "2w"')
    seconds = sum(int(v) * _UNITS[u] for u, v in m.groupdict().items() if v is not None)
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be longer than zero")
    try:
        return datetime.timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"invalid duration {text!r}: too long") from None


def format_duration(d: datetime.timedelta) -> str:
    """The largest units first ("1h30m", "2d12h", "0s"); fractions of a second are dropped. Weeks are
    used only for whole weeks, so 30 days reads "30d", not "4w2d"."""
    seconds = int(d.total_seconds())
    if seconds < 0:
        return "-" + format_duration(-datetime.timedelta(seconds=seconds))
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS.items():
        if unit == "w" and (seconds % size) // 86400:
            continue
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rate:
    """`count` requests per `per_seconds`: a token bucket of `count` tokens refilled over `per_seconds`."""
    count: int
    per_seconds: float

    def __post_init__(self) -> None:
        if self.count <= 0 or self.per_seconds <= 0 or self.per_seconds != int(self.per_seconds):
            raise ValueError(f"invalid rate {self.count}/{self.per_seconds}s: a positive count per a positive "
                             "whole number of seconds")

    @classmethod
    def parse(cls, text: str) -> Rate:
        """"N/s", "N/sec", "N/m", "N/min", "N/h", or N per a duration ("N/30s"); N a positive integer."""
        m = _RATE_RE.fullmatch(text)
        count = int(m["count"]) if m else 0
        per: float | None = None
        if m and m["per"] in _PER:
            per = _PER[m["per"]]
        elif m and m["per"][0].isdigit():
            try:
                per = parse_duration(m["per"]).total_seconds()
            except ValueError:
                per = None
        if per is None or count <= 0:
            raise ValueError(f"invalid rate {text!r}: expected N/s, N/min or N/h with N a positive integer, "
                             'e.g. "10/s", "600/min"')
        return cls(count=count, per_seconds=per)

    def __str__(self) -> str:
        name = _PER_NAMES.get(float(self.per_seconds)) or format_duration(datetime.timedelta(seconds=self.per_seconds))
        return f"{self.count}/{name}"
