"""The kinds of difference between two API versions (the rows of version_table.py): a field that
comes or goes, a value shaped otherwise before a version, a request field that needs a version, a
default that changed. versions.py applies them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Version = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Since:
    """A field that exists from `version` on: left out of older answers, dropped from older requests
    (dockerd ignores what an older client could not have meant)."""
    path: str
    version: Version


@dataclass(frozen=True, slots=True)
class Until:
    """A field that exists below `version` only: left out of answers at `version` and newer, ignored in
    requests of those versions."""
    path: str
    version: Version


@dataclass(frozen=True, slots=True)
class Before:
    """Answers below `version` are `change`d (the object at `path`, "" for the whole), for a value that
    was shaped otherwise then."""
    version: Version
    change: Callable[[Any], Any]
    path: str = ""


@dataclass(frozen=True, slots=True)
class Needs:
    """A request field that needs `version`: present (not empty) below it, dockerd's 400."""
    path: str
    version: Version
    name: str = ""  # how dockerd's message names it, when not its path


@dataclass(frozen=True, slots=True)
class EmptyOmitted:
    """From `version` on the field is left out when empty (Go's omitempty came in then)."""
    path: str
    version: Version


@dataclass(frozen=True, slots=True)
class Changed:
    """A value that is `old` below `version` and `new` from it on (a media type, a default)."""
    version: Version
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class Gone:
    """A request field refused from `version` on: present (not empty) there, dockerd's 400 `message`."""
    path: str
    version: Version
    message: str


@dataclass(frozen=True, slots=True)
class OneEntry:
    """A request map that holds one entry at most below `version`: more is dockerd's 400 `message`
    with `{}` replaced by its keys joined by ", "."""
    path: str
    version: Version
    message: str


@dataclass(frozen=True, slots=True)
class Adapt:
    """Request bodies of a version in [since, until) are `change`d: `change(body, warn)` returns the
    body as the engine reads it (or raises dockerd's error), and may `warn(text)` for the answer's
    Warnings. For what an older version meant by a field that moved (Config.MacAddress, Sysctls)."""
    change: Callable[[Any, Callable[[str], None]], Any]
    since: Version = (1, 24)
    until: Version = (99, 0)


Rule = Since | Until | Before | Needs | EmptyOmitted | Gone | OneEntry | Adapt


@dataclass(frozen=True, slots=True)
class FilterBefore:
    """Requests below `version` filter as if they had `key=value` in their `filters` parameter (for a
    default a newer version changed: volume prune's all=true)."""
    key: str
    value: str
    version: Version
