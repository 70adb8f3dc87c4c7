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


Rule = Since | Until | Before | Needs | EmptyOmitted


@dataclass(frozen=True, slots=True)
class FilterBefore:
    """Requests below `version` filter as if they had `key=value` in their `filters` parameter (for a
    default a newer version changed: volume prune's all=true)."""
    key: str
    value: str
    version: Version
