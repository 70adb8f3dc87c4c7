"""Selecting images as dockerd does (pure): for ``GET /images/json`` (Images()) and for
``docker image prune`` (the prune filters)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from servin.errors import InvalidArgument
from servin.images.model import Image, parse_rfc3339

_EPOCH0 = datetime(1, 1, 1, tzinfo=timezone.utc)


def _go_path_regex(pattern: str) -> re.Pattern[str]:
    """Go's path.Match as a regex: ``*`` and ``?`` stop at ``/``; ``[...]`` classes, ``\\`` escapes."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i >= n:
                raise InvalidArgument("syntax error in pattern")
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("^", "]") else i + 1)
            if j < 0:
                raise InvalidArgument("syntax error in pattern")
            body = pattern[i + 1 : j]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            if not body:
                raise InvalidArgument("syntax error in pattern")
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def familiar_match(pattern: str, ref: str) -> bool:
    """reference.FamiliarMatch on a familiar string (``busybox:latest``, ``x@sha256:...``)."""
    rx = _go_path_regex(pattern)
    if rx.match(ref):
        return True
    name = ref.split("@", 1)[0]
    if "@" not in ref:
        head, sep, tail = name.rpartition(":")
        if sep and "/" not in tail:
            name = head
    return bool(rx.match(name))


def created_at(img: Image) -> datetime:
    return parse_rfc3339(img.created) or _EPOCH0


def select_images(
    images: Sequence[Image],
    filters: dict[str, list[str]],
    *,
    all_: bool,
    resolve: Callable[[str], Image],
    label_matches: Callable[[dict[str, str], Sequence[str]], bool],
) -> list[Image]:
    """The images ``docker images`` shows, with RepoTags/RepoDigests narrowed by ``reference``."""
    dangling_only = False
    if "dangling" in filters:
        values = set(filters["dangling"])
        if "true" in values:
            dangling_only = True
        elif "false" not in values:
            raise InvalidArgument(f"Invalid filter 'dangling=[{' '.join(filters['dangling'])}]'")
    before = created_at(resolve(filters["before"][-1])) if filters.get("before") else None
    since = created_at(resolve(filters["since"][-1])) if filters.get("since") else None
    until = float(filters["until"][-1]) if filters.get("until") else None  # unix seconds (the API converts)
    parents = {i.parent for i in images if i.parent}
    patterns = filters.get("reference")
    out = []
    for img in images:
        if dangling_only and img.id in parents:
            continue
        created = created_at(img)
        if before is not None and created >= before:
            continue
        if since is not None and created <= since:
            continue
        if until is not None and created.timestamp() >= until:
            continue
        if "label" in filters and not label_matches(img.labels, filters["label"]):
            continue
        tags, digests = img.repo_tags, img.repo_digests
        if patterns is not None:
            tags = tuple(t for t in tags if any(familiar_match(p, t) for p in patterns))
            digests = tuple(d for d in digests if any(familiar_match(p, d) for p in patterns))
        if not tags and not digests:
            if not all_ and img.id in parents:
                continue  # an intermediate image
            if "dangling" in filters and not dangling_only:
                continue
            if patterns is not None:
                continue
        elif dangling_only and tags:
            continue
        out.append(replace(img, repo_tags=tags, repo_digests=digests))
    out.sort(key=lambda i: (created_at(i), i.id), reverse=True)
    return out


def label_matches(labels: Mapping[str, str], wanted: Sequence[str]) -> bool:
    """Docker's label filter: every ``key`` present, every ``key=value`` equal."""
    for w in wanted:
        key, eq, value = w.partition("=")
        if key not in labels or eq and labels[key] != value:
            return False
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class PrunePolicy:
    """What ``docker image prune`` may remove: dangling images only, or all unused ones; of
    those, the ones created before ``until`` (unix seconds) with and without the labels."""

    dangling_only: bool = True
    until: float | None = None
    labels: tuple[str, ...] | None = None
    not_labels: tuple[str, ...] | None = None

    def keeps(self, img: Image) -> bool:
        if self.until is not None and created_at(img).timestamp() > self.until:
            return False
        if self.labels is not None and not label_matches(img.labels, self.labels):
            return False
        return not (self.not_labels is not None and label_matches(img.labels, self.not_labels))


def prune_policy(filters: dict[str, list[str]], parse_until: Callable[[str], int]) -> PrunePolicy:
    """The policy of the prune filters (dangling, until, label, label!); ``parse_until`` reads
    an ``until`` value as unix nanoseconds."""
    dangling_only = True
    if "dangling" in filters:
        values = set(filters["dangling"])
        if values & {"false", "0"}:
            dangling_only = False
        elif not values & {"true", "1"}:
            raise InvalidArgument(f"Invalid filter 'dangling=[{' '.join(filters['dangling'])}]'")
    until = parse_until(filters["until"][0]) / 1e9 if filters.get("until") else None
    labels = tuple(filters["label"]) if "label" in filters else None
    not_labels = tuple(filters["label!"]) if "label!" in filters else None
    return PrunePolicy(dangling_only=dangling_only, until=until, labels=labels, not_labels=not_labels)
