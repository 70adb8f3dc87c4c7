"""A Dockerfile's text as a list of instruction nodes (buildkit's dockerfile/parser, which dockerd's classic
builder uses).

Parser directives (`# escape=`, `# syntax=`, `# check=`) are read only at the very top. Comment lines
go, also inside a continuation; a line ending with the escape character continues on the next one (an
empty continuation line is skipped with a warning). Each instruction's arguments are split by the rules
of its command: JSON (exec) form or shell form, `KEY value` or `KEY=value ...`, `--flags` in front.
Heredoc bodies (`RUN <<EOF`) are read so that their lines are not taken as instructions; the builder
refuses them (they need BuildKit). Nothing is expanded or unquoted here: that happens at dispatch.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass

from servin.build.expand import Lexer, go_quote, go_trim, is_go_space
from servin.errors import InvalidArgument

MAX_LINE = 64 * 1024 - 1
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_HEREDOC = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_KNOWN_DIRECTIVES = ("syntax", "escape", "check")


class SyntaxFault(Exception):
    """A Dockerfile that cannot be split into instructions (dockerd: "failed to parse Dockerfile: ...")."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True, kw_only=True)
class Heredoc:
    name: str
    content: str
    fd: int
    expand: bool
    chomp: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One instruction as written: its command word, flags and unprocessed arguments."""

    command: str  # as written ("run", "RUN", "Run")
    original: str  # the whole instruction, continuation lines joined
    flags: tuple[str, ...]
    args: tuple[str, ...]  # for ENV and LABEL: key, value, "=" or "" for each pair
    json: bool  # the arguments were a JSON array (exec form)
    line: int
    end_line: int
    inner: Node | None = None  # the instruction an ONBUILD carries
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed:
    nodes: tuple[Node, ...]
    escape: str
    directives: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]


def _lstrip(text: str) -> str:
    i = 0
    while i < len(text) and is_go_space(text[i]):
        i += 1
    return text[i:]


def _is_comment(line: str) -> bool:
    return _lstrip(line).startswith("#")


class _Directives:
    """The directives at the top of the file; the first line that is not one ends them."""

    def __init__(self) -> None:
        self.escape = "\\"
        self.found: dict[str, str] = {}
        self.done = False
        self._continuation = self._continuation_regex("\\")

    @staticmethod
    def _continuation_regex(escape: str) -> re.Pattern[str]:
        e = re.escape(escape)
        return re.compile(rf"([^{e}]){e}[ \t]*\Z|\A{e}[ \t]*\Z")

    def look(self, line: str) -> None:
        if self.done:
            return
        if not line.startswith("#"):
            self.done = True
            return
        found = _DIRECTIVE.match(_lstrip(line[1:]))
        if not found or found.group(1).lower() not in _KNOWN_DIRECTIVES:
            self.done = True
            return
        name, value = found.group(1).lower(), found.group(2)
        if name in self.found:
            raise ValueError(f"only one {name} parser directive can be used")
        self.found[name] = value
        if name == "escape":
            if value not in ("`", "\\"):
                raise ValueError(f"invalid escape token '{value}' does not match ` or \\")
            self.escape = value
            self._continuation = self._continuation_regex(value)

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        """The line without its trailing escape character, and whether the instruction ends here."""
        found = self._continuation.search(line)
        if found is None:
            return line, True
        return line[: found.start()] + (found.group(1) or ""), False


def _process(directives: _Directives, raw: str, strip_left: bool, line: int) -> str:
    text = raw.rstrip("\r\n")
    if strip_left:
        text = _lstrip(text)
    try:
        directives.look(text)
    except ValueError as err:
        raise SyntaxFault(str(err), line) from None
    return "" if _is_comment(text) else text


def parse(text: str) -> Parsed:
    """Split a Dockerfile into instruction nodes."""
    lines = _split_lf(text)
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    directives = _Directives()
    nodes: list[Node] = []
    warnings: list[str] = []
    current = 0
    i = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        _check_length(raw, current + 1)
        first = _process(directives, raw, True, current)
        current += 1
        start = current
        first, done = directives.trim_continuation(first)
        if done and not first:
            continue
        parts = [first]
        empty_continuation = False
        while not done and i < len(lines):
            raw = lines[i]
            i += 1
            _check_length(raw, current + 1)
            more = _process(directives, raw, False, current)
            current += 1
            if _is_comment(raw):
                continue
            if not _lstrip(more):
                empty_continuation = True
                continue
            more, done = directives.trim_continuation(more)
            parts.append(more)
        line = "".join(parts)
        if empty_continuation:
            warnings.append("Empty continuation line found in: " + line)
        try:
            node = _node(line, directives.escape, start, current)
        except ValueError as err:
            raise SyntaxFault(str(err), start) from None
        if _can_contain_heredoc(node) and "<<" in line:
            heredocs = []
            for doc in _heredocs_in(line, start):
                content, i, current = _read_heredoc(doc, lines, i, current, start)
                heredocs.append(Heredoc(name=doc.name, content=content, fd=doc.fd, expand=doc.expand, chomp=doc.chomp))
            node = dataclasses.replace(node, heredocs=tuple(heredocs), end_line=current)
        nodes.append(node)
    if not nodes:
        raise SyntaxFault("file with no instructions", current)
    return Parsed(
        nodes=tuple(nodes),
        escape=directives.escape,
        directives=tuple(directives.found.items()),
        warnings=tuple(warnings),
    )


def _split_lf(text: str) -> list[str]:
    """The lines with their "\\n" (str.splitlines also breaks at "\\r", "\\f" and more; Go does not)."""
    out = text.split("\n")
    return [s + "\n" for s in out[:-1]] + ([out[-1]] if out[-1] else [])


def _check_length(raw: str, line: int) -> None:
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_LINE + 1:
        raise SyntaxFault(f"dockerfile line greater than max allowed size of {MAX_LINE}", line)


def _read_heredoc(doc: Heredoc, lines: list[str], i: int, current: int, start: int) -> tuple[str, int, int]:
    content = [doc.content]
    while i < len(lines):
        raw = lines[i]
        i += 1
        current += 1
        candidate = raw.rstrip("\r\n")
        if doc.chomp:
            candidate = candidate.lstrip("\t")
        if candidate == doc.name:
            return "".join(content), i, current
        content.append(raw)
    raise SyntaxFault("unterminated heredoc", start)


def _can_contain_heredoc(node: Node) -> bool:
    if node.command.lower() == "onbuild" and node.inner is not None:
        node = node.inner
    return node.command.lower() in ("add", "copy", "run") and not node.json


def _heredocs_in(line: str, start: int) -> list[Heredoc]:
    try:
        words = Lexer(line, {}, raw_quotes=True, raw_escapes=True, skip_unset=True).run()[1]
    except InvalidArgument:
        return []
    out = []
    for word in words:
        try:
            doc = parse_heredoc(word)
        except InvalidArgument as err:
            raise SyntaxFault(err.message, start) from None
        if doc is not None:
            out.append(doc)
    return out


def parse_heredoc(word: str) -> Heredoc | None:
    """The heredoc a word like `<<EOF`, `<<-"EOF"` or `3<<EOF` opens, or None."""
    found = _HEREDOC.match(word)
    if not found or not found.group(3):
        return None
    rest = found.group(3)
    words = Lexer(rest, {}, skip_unset=True).run()[1]
    if len(words) != 1:
        return None
    raw = Lexer(rest, {}, raw_quotes=True, skip_unset=True).run()[1]
    quotes = sum(words[0].count(q) for q in "'\"")
    raw_quotes = sum(raw[0].count(q) for q in "'\"") if raw else 0
    return Heredoc(
        name=words[0], content="", fd=int(found.group(1) or 0), expand=quotes == raw_quotes, chomp=found.group(2) == "-"
    )


# -- one instruction


def _node(line: str, escape: str, start: int, end: int) -> Node:
    command, flags, rest = _split_command(line, escape)
    args: list[str] = []
    is_json = False
    inner = None
    kind = command.lower()
    if kind in ("add", "copy", "volume"):
        args, is_json = _maybe_json(rest, to_list=True)
    elif kind in ("cmd", "entrypoint", "run", "shell"):
        args, is_json = _maybe_json(rest, to_list=False)
    elif kind in ("env", "label"):
        args = _name_values(rest, kind.upper(), escape)
    elif kind == "arg":
        args = _words(rest, escape)
    elif kind in ("expose", "from"):
        args = _WHITESPACE.split(rest) if rest else []
    elif kind in ("maintainer", "stopsignal", "user", "workdir"):
        args = [rest] if rest else []
    elif kind == "healthcheck":
        args, is_json = _health(rest)
    elif kind == "onbuild" and rest:
        inner = _node(rest, escape, start, end)
        args = [inner.command, *inner.args]
    return Node(
        command=command, original=line, flags=tuple(flags), args=tuple(args), json=is_json,
        line=start, end_line=end, inner=inner,
    )  # fmt: skip


def _split_command(line: str, escape: str) -> tuple[str, list[str], str]:
    parts = _WHITESPACE.split(go_trim(line), maxsplit=1)
    if len(parts) < 2:
        return parts[0], [], ""
    rest, flags = _builder_flags(parts[1], escape)
    return parts[0], flags, go_trim(rest)


def _builder_flags(line: str, escape: str) -> tuple[str, list[str]]:
    """The leading `--flag[=value]` words of the arguments (quotes and escapes removed), and the rest.
    A bare `--` ends the flags."""
    flags: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and is_go_space(line[i]):
            i += 1
        if i == n:
            return "", flags
        if not line.startswith("--", i):
            return line[i:], flags
        word: list[str] = []
        quote = ""
        quoted = False
        while i < n and (quote or not is_go_space(line[i])):
            ch = line[i]
            i += 1
            if quote:
                if ch == quote:
                    quote = ""
                    continue
            elif ch in "'\"":
                quote, quoted = ch, True
                continue
            if ch == escape:
                if i == n:
                    quote = ""
                    continue
                ch = line[i]
                i += 1
            word.append(ch)
        text = "".join(word)
        if text == "--":
            return line[i:], flags
        if quoted or text:
            flags.append(text)


def _maybe_json(rest: str, *, to_list: bool) -> tuple[list[str], bool]:
    """A JSON array of strings (exec form), else the text (or, for ADD/COPY/VOLUME, its words)."""
    stripped = _lstrip(rest)
    if stripped.startswith("["):
        try:
            value = json.loads(stripped, parse_constant=_reject_constant)
        except ValueError:
            value = None
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise ValueError("when using JSON array syntax, arrays must be comprised of strings only")
            return value, True
    if not rest:
        return [], False
    return (_WHITESPACE.split(rest) if to_list else [rest]), False


def _reject_constant(name: str) -> object:
    raise ValueError(name)  # NaN and Infinity are not JSON to Go


def _health(rest: str) -> tuple[list[str], bool]:
    sep = 0
    while sep < len(rest) and not is_go_space(rest[sep]):
        sep += 1
    if sep == 0:
        return [], False
    after = sep
    while after < len(rest) and is_go_space(rest[after]):
        after += 1
    args, is_json = _maybe_json(rest[after:], to_list=False)
    return [rest[:sep], *args], is_json


def _name_values(rest: str, command: str, escape: str) -> list[str]:
    """`KEY value` (one pair, the value is the rest of the line) or `KEY=value ...`, as
    key, value, separator triples."""
    words = _words(rest, escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise ValueError(f"{command} must have two arguments")
        return [parts[0], parts[1], ""]
    out = []
    for word in words:
        if "=" not in word:
            raise ValueError(f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value")
        key, _, value = word.partition("=")
        out += [key, value, "="]
    return out


def _words(rest: str, escape: str) -> list[str]:
    """Space-separated words; quotes and escapes are kept (they are removed at expansion)."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    quote = ""
    blank_ok = False
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        i += 1
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i == n:
                    quote = ""
                    continue
                word.append(ch)
                ch = rest[i]
                i += 1
            word.append(ch)
            continue
        if is_go_space(ch):
            if in_word and (blank_ok or word):
                words.append("".join(word))
            word, in_word, blank_ok = [], False, False
            continue
        in_word = True
        if ch in "'\"":
            quote, blank_ok = ch, True
        if ch == escape:
            if i == n:
                continue
            word.append(ch)
            ch = rest[i]
            i += 1
        word.append(ch)
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words
