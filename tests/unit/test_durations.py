"""Durations and rates as a user writes them (--expires 30d, --ttl 1h, --rate-limit 10/s) and as
Servin prints them back; bad text is a ValueError that quotes it."""

from __future__ import annotations

import datetime

import pytest

from servin.access.durations import Rate, format_duration, parse_duration

pytestmark = pytest.mark.unit

td = datetime.timedelta


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", td(seconds=90)), ("15m", td(minutes=15)), ("1h", td(hours=1)), ("1h30m", td(minutes=90)),
    ("30d", td(days=30)), ("2w", td(weeks=2)), ("1w2d3h4m5s", td(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("d", "text"), [
    (td(minutes=90), "1h30m"), (td(seconds=90), "1m30s"), (td(hours=1), "1h"), (td(days=30), "30d"),
    (td(days=14), "2w"), (td(hours=36), "1d12h"), (td(0), "0s"), (td(seconds=59, milliseconds=900), "59s"),
])
def test_format_duration_largest_units_first(d, text):
    assert format_duration(d) == text


@pytest.mark.parametrize("text", ["90s", "1h30m", "30d", "2w", "8d", "1d12h", "45m10s"])
def test_format_is_the_inverse_of_parse(text):
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


@pytest.mark.parametrize("text", ["", "0s", "10", "h", "1x", "1.5h", "-1h", " 1h", "1H", "30m1h", "1h1h",
                                  "99999999999999w", "999999999w"])
def test_bad_duration_is_a_value_error_naming_it(text):
    with pytest.raises(ValueError, match=r"invalid duration " + repr(text).replace(".", r"\.")):
        parse_duration(text)


@pytest.mark.parametrize(("text", "count", "per", "shown"), [
    ("100/s", 100, 1, "100/s"), ("5/sec", 5, 1, "5/s"), ("600/min", 600, 60, "600/min"),
    ("30/m", 30, 60, "30/min"), ("1000/h", 1000, 3600, "1000/h"), ("5/30s", 5, 30, "5/30s"),
])
def test_rate_parse_and_str(text, count, per, shown):
    rate = Rate.parse(text)
    assert (rate.count, rate.per_seconds, str(rate)) == (count, per, shown)
    assert Rate.parse(str(rate)) == rate


@pytest.mark.parametrize("text", ["", "10", "10/", "/s", "0/s", "-1/s", "1.5/s", "x/s", "10/d", "10/0s",
                                  "10/ s", "10/S", "9999999999/s"])
def test_bad_rate_is_a_value_error_naming_it(text):
    with pytest.raises(ValueError, match=r"invalid rate " + repr(text).replace(".", r"\.")):
        Rate.parse(text)


def test_rate_must_be_positive():
    with pytest.raises(ValueError, match="invalid rate"):
        Rate(count=0, per_seconds=1)
    with pytest.raises(ValueError, match="invalid rate"):
        Rate(count=1, per_seconds=0.5)
