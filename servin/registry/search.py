"""``docker search``: the v1 search API's results, typed, and dockerd's filters on them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from servin import errors

FILTERS = frozenset({"is-automated", "is-official", "stars"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResult:
    name: str
    description: str
    star_count: int
    is_official: bool
    is_automated: bool


def parse_results(raw: list[Any]) -> list[SearchResult]:
    """The entries of a search answer's ``results`` (what is not an object is skipped)."""
    return [SearchResult(star_count=int(r.get("star_count") or 0), is_official=bool(r.get("is_official")),
                         name=str(r.get("name") or ""), is_automated=bool(r.get("is_automated")),
                         description=str(r.get("description") or "")) for r in raw if isinstance(r, dict)]


def select(results: list[SearchResult], filters: Mapping[str, Sequence[str]]) -> list[SearchResult]:
    """dockerd's search filters: is-automated, is-official (true/1 or not), stars (at least)."""
    def keep(r: SearchResult) -> bool:
        for key, value in (("is-automated", r.is_automated), ("is-official", r.is_official)):
            if key in filters and value != (filters[key][0].lower() in ("1", "true")):
                return False
        if "stars" in filters:
            try:
                if r.star_count < int(filters["stars"][0]):
                    return False
            except ValueError:
                raise errors.InvalidArgument(f"invalid filter 'stars={filters['stars'][0]}'") from None
        return True

    return [r for r in results if keep(r)]
