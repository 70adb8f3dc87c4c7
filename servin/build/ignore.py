""".dockerignore: reading the file and matching context paths with Docker's rules (moby/patternmatcher).

- `read_patterns` reads the file as the CLI and dockerd do: a BOM is dropped, lines starting with `#` are
  comments, each pattern is trimmed and path-cleaned, a leading `/` is dropped, `!` marks an exception.
- `IgnoreMatcher.excluded(path)` tells whether a context path is excluded: a path is excluded when it or
  one of its parent directories matches a pattern, and a later `!` pattern can take it back.
- `IgnoreMatcher.walk(root)` lists what the CLI sends: an excluded directory is still walked when an
  exception could bring back something under it.
- The Dockerfile and `.dockerignore` are always sent (`sent_patterns`), and the daemon removes them from
  the context when they are ignored (`removed_by_daemon`), so `COPY . /x` does not copy them.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from servin.build.expand import go_trim
from servin.errors import InvalidArgument

_BOM = "\ufeff"
BAD_PATTERN = "syntax error in pattern"


def clean_path(path: str) -> str:
    """Go's path.Clean: the shortest equivalent slash path, lexically."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def read_patterns(content: str | bytes) -> list[str]:
    """The patterns of a .dockerignore file (ignorefile.ReadAll)."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    text = text.removeprefix(_BOM)
    out = []
    for line in text.split("\n"):  # Go's line scanner: "\n" ends a line, a "\r" before it goes
        line = line.removesuffix("\r")
        if line.startswith("#"):
            continue
        pattern = go_trim(line)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = go_trim(pattern[1:])
        if pattern:
            pattern = clean_path(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


def _check_glob(pattern: str) -> None:
    """Reject what Go's filepath.Match calls a malformed pattern."""
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "\\":
            if i >= n:
                raise InvalidArgument(BAD_PATTERN)
            i += 1
        elif ch == "[":
            i = _check_class(pattern, i)


def _check_class(pattern: str, i: int) -> int:
    n = len(pattern)
    if i < n and pattern[i] == "^":
        i += 1
    ranges = 0
    while True:
        if i < n and pattern[i] == "]" and ranges > 0:
            return i + 1
        low, i = _class_char(pattern, i)
        if i < n and pattern[i] == "-":
            high, i = _class_char(pattern, i + 1)
            if high < low:
                raise InvalidArgument(BAD_PATTERN)
        ranges += 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        raise InvalidArgument(BAD_PATTERN)
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise InvalidArgument(BAD_PATTERN)
    return pattern[i], i + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Pattern:
    text: str  # cleaned, without the leading "!"
    exception: bool
    kind: str  # exact, prefix, suffix or regexp
    regexp: re.Pattern[str] | None

    def matches(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regexp is not None
        return self.regexp.match(path) is not None


def compile_pattern(raw: str) -> Pattern | None:
    """One pattern as patternmatcher compiles it; None for a blank one."""
    text = go_trim(raw)
    if not text:
        return None
    text = clean_path(text)
    exception = text.startswith("!")
    if exception:
        if len(text) == 1:
            raise InvalidArgument('illegal exclusion pattern: "!"')
        text = text[1:]
    _check_glob(text)
    kind, source = _translate(text)
    regexp = None
    if kind == "regexp":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                regexp = re.compile(source)
        except re.error:
            raise InvalidArgument(BAD_PATTERN) from None
    return Pattern(text=text, exception=exception, kind=kind, regexp=regexp)


def _translate(text: str) -> tuple[str, str]:
    """The match kind of a pattern and, for "regexp", its regular expression."""
    out = ["^"]
    kind = "exact"
    i, step, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        i += 1
        if ch == "*" and i < n and text[i] == "*":
            i += 1
            if i < n and text[i] == "/":
                i += 1
            if i >= n:  # a trailing ** takes everything, as in .gitignore
                if kind == "exact":
                    kind = "prefix"
                else:
                    out.append(".*")
                    kind = "regexp"
            else:
                out.append("(.*/)?")
                kind = "regexp"
            if step == 0:
                kind = "suffix"
        elif ch == "*":
            out.append("[^/]*")
            kind = "regexp"
        elif ch == "?":
            out.append("[^/]")
            kind = "regexp"
        elif ch in ".+()|{}$":
            out.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                out.append("\\" + text[i])
                i += 1
                kind = "regexp"
            else:
                out.append("\\\\")
        elif ch in "[]":
            out.append(ch)
            kind = "regexp"
        else:
            out.append(ch)
        step += 1
    return kind, "".join(out) + r"\Z"  # Go's $ (no multi-line): the very end


class IgnoreMatcher:
    """The compiled patterns of one .dockerignore."""

    def __init__(self, patterns: Sequence[str]) -> None:
        compiled = (compile_pattern(p) for p in patterns)
        self.patterns: tuple[Pattern, ...] = tuple(p for p in compiled if p is not None)
        self.has_exceptions = any(p.exception for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether a context path (slash-separated, relative) is left out (MatchesOrParentMatches)."""
        path = clean_path(path)
        if path == ".":
            return False
        parents = path.split("/")[:-1]
        matched = False
        for pattern in self.patterns:
            if pattern.exception != matched:
                continue
            hit = pattern.matches(path) or any(
                pattern.matches("/".join(parents[: i + 1])) for i in range(len(parents))
            )
            if hit:
                matched = not pattern.exception
        return matched

    def _excluded_below(self, path: str, parent: tuple[bool, ...] | None) -> tuple[bool, tuple[bool, ...]]:
        """MatchesUsingParentResults: the walk's variant, carrying per-pattern results of the parent."""
        matched = False
        results = []
        for i, pattern in enumerate(self.patterns):
            hit = parent[i] if parent is not None else False
            if not hit:
                if pattern.exception != matched:
                    results.append(False)
                    continue
                hit = pattern.matches(path)
                if not hit and parent is None and "/" in path:
                    parts = path.split("/")[:-1]
                    hit = any(pattern.matches("/".join(parts[: j + 1])) for j in range(len(parts)))
            results.append(hit)
            if hit:
                matched = not pattern.exception
        return matched, tuple(results)

    def _may_take_back(self, directory: str) -> bool:
        """Whether an exception names something under an excluded directory, so it must be walked."""
        prefix = directory + "/"
        return any(p.exception and (p.text + "/").startswith(prefix) for p in self.patterns)

    def walk(self, root: str) -> Iterator[str]:
        """The relative paths under root the CLI puts in the context, parents before children (with the
        patterns of `sent_patterns`, so the Dockerfile and .dockerignore are in)."""
        yield from self._walk(root, "", None)

    def _walk(self, root: str, rel: str, parent: tuple[bool, ...] | None) -> Iterator[str]:
        with os.scandir(os.path.join(root, rel) if rel else root) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            skip, results = self._excluded_below(path, parent)
            if skip and not (is_dir and self.has_exceptions and self._may_take_back(path)):
                continue
            if not skip:
                yield path
            if is_dir:
                yield from self._walk(root, path, results)


def sent_patterns(patterns: Sequence[str], dockerfile: str) -> list[str]:
    """The patterns the CLI applies to the context: the Dockerfile and .dockerignore are always sent
    (exceptions are appended for them), the daemon removes them afterwards."""
    out = list(patterns)
    try:
        matcher = IgnoreMatcher(patterns)
    except InvalidArgument:  # the CLI ignores the error here; the walk reports it
        return out
    if matcher.excluded(".dockerignore"):
        out.append("!.dockerignore")
    dockerfile = dockerfile.replace(os.sep, "/")
    if matcher.excluded(dockerfile):
        out.append("!" + dockerfile)
    return out


def removed_by_daemon(patterns: Sequence[str], dockerfile: str) -> list[str]:
    """Which of .dockerignore and the Dockerfile dockerd deletes from the received context before the
    build (so `COPY . /x` leaves them out when they are ignored). A bad pattern removes nothing."""
    try:
        matcher = IgnoreMatcher(patterns)
    except InvalidArgument:
        return []
    return [name for name in (".dockerignore", dockerfile) if matcher.excluded(name)]
