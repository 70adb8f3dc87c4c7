"""Instruction flags (`COPY --from=x`) and the value formats they take, with dockerd's error wording:
buildkit's BFlags, its "did you mean" suggestions, Go's time.ParseDuration and strconv.ParseInt."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from servin.build.expand import go_quote

FlagKind = Literal["bool", "string", "strings"]


class FlagError(ValueError):
    pass


@dataclass(slots=True)
class Flags:
    """The flags one instruction was written with, parsed against the ones it accepts."""

    spec: dict[str, FlagKind]
    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)  # in the order written

    def parse(self, args: Iterable[str]) -> Flags:
        for arg in args:
            if arg == "--":
                break
            if not arg.startswith("--"):
                raise FlagError(f"arg should start with -- : {arg}")
            flag, has_value, value = arg.partition("=")
            name = flag[2:]
            kind = self.spec.get(name)
            if kind is None:
                raise FlagError(suggest(f"unknown flag: {flag}", name, self.spec, case_sensitive=True))
            if name in self.used and kind != "strings":
                raise FlagError(f"duplicate flag specified: {flag}")
            if name not in self.used:
                self.used.append(name)
            if kind == "bool":
                if has_value and not value:
                    raise FlagError(f"missing a value on flag: {flag}")
                if value.lower() not in ("", "true", "false"):
                    raise FlagError(f"expecting boolean value for flag {flag}, not: {value}")
                self.values[name] = "false" if value.lower() == "false" else "true"
            elif not has_value:
                raise FlagError(f"missing a value on flag: {flag}")
            elif kind == "string":
                self.values[name] = value
            else:
                self.lists.setdefault(name, []).append(value)
        return self

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)


def levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def suggest(message: str, value: str, options: Iterable[str], *, case_sensitive: bool) -> str:
    """The message with buildkit's " (did you mean x?)" when an option is within two edits of value."""
    needle = value if case_sensitive else value.lower()
    best, best_distance = "", 3
    for option in options:
        candidate = option if case_sensitive else option.lower()
        if candidate == needle:
            return message
        distance = levenshtein(needle, candidate)
        if distance < best_distance:
            best, best_distance = candidate, distance
    if not best:
        return message
    if not case_sensitive:
        best = best.lower() if value == value.lower() else best.upper() if value == value.upper() else best
    return f"{message} (did you mean {best}?)"


_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000, "s": 10**9}
_UNITS |= {"m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION_PART = re.compile(r"([0-9]*)(\.[0-9]*)?([^0-9.]*)")  # number, fraction, unit
_MAX_DURATION = 2**63 - 1


def go_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds ("1m30s", "1.5h", "300ms")."""
    invalid = FlagError(f"time: invalid duration {go_quote(text)}")
    rest = text
    negative = rest[:1] == "-"
    rest = rest[1:] if rest[:1] in "+-" and rest else rest
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        found = _DURATION_PART.match(rest)
        assert found is not None
        whole, fraction, unit = found.group(1), found.group(2) or "", found.group(3)
        if not whole and len(fraction) <= 1:
            raise invalid
        if not unit:
            raise FlagError(f"time: missing unit in duration {go_quote(text)}")
        if unit not in _UNITS:
            raise FlagError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        scale = _UNITS[unit]
        value = int(whole or "0") * scale
        if len(fraction) > 1:
            value += int(fraction[1:]) * scale // 10 ** (len(fraction) - 1)
        total += value
        if total > _MAX_DURATION + (1 if negative else 0):
            raise invalid
        rest = rest[found.end() :]
    return -total if negative else total


def go_int32(text: str) -> int:
    """Go's strconv.ParseInt(text, 10, 32)."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise FlagError(f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not -(2**31) <= value < 2**31:
        raise FlagError(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    return value
