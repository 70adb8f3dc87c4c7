"""Shell-word variable substitution as the Dockerfile builder does it (buildkit's shell lexer).

`expand_word` turns one word into one string: quotes are removed, the escape character escapes the next
character, `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR?msg}`,
`${VAR:?msg}`, `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}` and `${VAR/pat/repl}`,
`${VAR//pat/repl}` are substituted; unset variables become empty. `expand_words` also splits the result
into words the way the builder does for EXPOSE: on white space outside quotes, after the substitution.
Errors carry dockerd's wording: `failed to process "word": <reason>`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from servin.errors import InvalidArgument

_EOF = ""
_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class _LexError(Exception):
    pass


def go_quote(text: str) -> str:
    """Go's %q of a string (strconv.Quote), the quoting dockerd's messages use."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def is_go_space(ch: str) -> bool:
    """Go's unicode.IsSpace."""
    if ch in " \t\n\v\f\r\x85\xa0":
        return True
    return ord(ch) > 0xFF and (unicodedata.category(ch) == "Zs" or ch in "\u2028\u2029")


def go_trim(text: str) -> str:
    """Go's strings.TrimSpace (Python's strip also removes \\x1c-\\x1f)."""
    start, end = 0, len(text)
    while start < end and is_go_space(text[start]):
        start += 1
    while end > start and is_go_space(text[end - 1]):
        end -= 1
    return text[start:end]


@dataclass(slots=True)
class _Words:
    """Word splitting of the expanded text: spaces split words unless they came from quotes."""

    buf: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    in_word: bool = False

    def add_char(self, ch: str) -> None:
        if is_go_space(ch):
            if self.in_word and self.buf:
                self.words.append("".join(self.buf))
                self.buf.clear()
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw(self, text: str) -> None:
        if text:
            self.buf.append(text)
        self.in_word = True

    def result(self) -> list[str]:
        if self.buf:
            self.words.append("".join(self.buf))
            self.buf.clear()
            self.in_word = False
        return self.words


class Lexer:
    """One pass over one word. `raw_quotes`/`raw_escapes` keep quotes and escapes in the output and
    `skip_unset` leaves unset references as written: the parser uses them to find heredoc words."""

    def __init__(
        self,
        word: str,
        env: Mapping[str, str],
        *,
        escape: str = "\\",
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_unset: bool = False,
    ) -> None:
        self._src = word
        self._pos = 0
        self._env = env
        self._escape = escape
        self._raw_quotes = raw_quotes
        self._raw_escapes = raw_escapes
        self._skip_unset = skip_unset

    def run(self) -> tuple[str, list[str]]:
        try:
            return self._until(_EOF, self._raw_escapes)
        except _LexError as err:
            raise InvalidArgument(f"failed to process {go_quote(self._src)}: {err}") from None

    # -- the scanner

    def _peek(self) -> str:
        return self._src[self._pos] if self._pos < len(self._src) else _EOF

    def _next(self) -> str:
        ch = self._peek()
        if ch:
            self._pos += 1
        return ch

    # -- the grammar

    def _until(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        """Process up to `stop` (consumed) or the end of the word when stop is empty."""
        saved, self._raw_escapes = self._raw_escapes, raw_escapes
        try:
            return self._scan(stop)
        finally:
            self._raw_escapes = saved

    def _scan(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while (ch := self._peek()) != _EOF:
            if stop and ch == stop:
                self._next()
                return "".join(result), words.result()
            if ch == "$":
                text = self._dollar()
                result.append(text)
                words.add_string(text)
            elif ch in "'\"<":
                text = self._single() if ch == "'" else self._double() if ch == '"' else self._angle()
                result.append(text)
                words.add_raw(text)
            else:
                ch = self._next()
                if ch == self._escape:
                    if self._raw_escapes:
                        words.add_raw(ch)
                        result.append(ch)
                    ch = self._next()
                    if ch == _EOF:
                        break
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def _single(self) -> str:
        opening = self._next()
        out = [opening] if self._raw_quotes else []
        while True:
            ch = self._next()
            if ch == _EOF:
                raise _LexError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self._raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def _double(self) -> str:
        opening = self._next()
        out = [opening] if self._raw_quotes else []
        while True:
            ch = self._peek()
            if ch == _EOF:
                raise _LexError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self._next()
                if self._raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
                continue
            ch = self._next()
            if ch == self._escape:
                if self._raw_escapes:
                    out.append(ch)
                nxt = self._peek()
                if nxt == _EOF:
                    continue
                if nxt in ('"', "$", self._escape):
                    ch = self._next()
            out.append(ch)

    def _angle(self) -> str:
        """`<<` and the blanks after it stay glued to the heredoc word that follows."""
        self._next()
        if self._peek() != "<":
            return "<"
        self._next()
        spaces = []
        while self._peek() in ("\t", "\r", " ") and self._peek():
            spaces.append(self._next())
        return "<<" + "".join(spaces)

    def _name(self) -> str:
        ch = self._peek()
        if ch and ch.isdecimal():
            start = self._pos
            while self._peek() and self._peek().isdecimal():
                self._next()
            return self._src[start : self._pos]
        if ch and ch in _SPECIAL_PARAMS:
            return self._next()
        start = self._pos
        while (ch := self._peek()) and (ch.isalpha() or ch.isdecimal() or ch == "_"):
            self._next()
        return self._src[start : self._pos]

    def _lookup(self, name: str) -> str | None:
        return self._env.get(name)

    def _dollar(self) -> str:
        self._next()
        if self._peek() != "{":
            name = self._name()
            if not name:
                return "$"
            value = self._lookup(name)
            if value is None:
                return "$" + name if self._skip_unset else ""
            return value
        self._next()
        if self._peek() == _EOF:
            raise _LexError("syntax error: missing '}'")
        if self._peek() in "{}:":
            raise _LexError("syntax error: bad substitution")
        name = self._name()
        ch = self._next()
        if ch == _EOF:
            raise _LexError("syntax error: missing '}'")
        if ch == "}":
            value = self._lookup(name)
            if value is None:
                return "${" + name + "}" if self._skip_unset else ""
            return value
        if ch == "/":
            return self._replace(name)
        if ch not in ":+-?#%":
            raise _LexError(f"unsupported modifier ({ch}) in substitution")
        modifier = ch
        null_is_unset = ch == ":"
        if null_is_unset:
            ch = self._next()
            modifier += ch
        raw = ch != _EOF and ch in "#%"
        if null_is_unset and raw:
            raise _LexError(f"unsupported modifier ({modifier}) in substitution")
        word = self._closing(raw)
        value = self._lookup(name)
        if value is None and self._skip_unset:
            return "${" + name + modifier + word + "}"
        return self._modify(name, ch, modifier, word, value, null_is_unset)

    def _closing(self, raw: bool) -> str:
        try:
            return self._until("}", raw)[0]
        except _LexError:
            if self._peek() == _EOF:
                raise _LexError("syntax error: missing '}'") from None
            raise

    def _modify(self, name: str, op: str, modifier: str, word: str, value: str | None, null_is_unset: bool) -> str:
        unset = value is None or (null_is_unset and value == "")
        if op == "-":
            return word if unset else (value or "")
        if op == "+":
            return "" if unset else word
        if op == "?":
            if value is None:
                raise _LexError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _LexError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if op in "#%":
            greedy = word[:1] == op
            pattern = word[1:] if greedy else word
            if op == "%":
                return _trim_suffix(pattern, value or "", greedy)
            return _trim_prefix(pattern, value or "", greedy)
        raise _LexError(f"unsupported modifier ({modifier}) in substitution")

    def _replace(self, name: str) -> str:
        replace_all = self._peek() == "/"
        if replace_all:
            self._next()
        try:
            pattern = self._until("/", True)[0]
        except _LexError:
            if self._peek() == _EOF:
                raise _LexError("syntax error: missing '/' in ${}") from None
            raise
        replacement = self._closing(True)
        value = self._lookup(name)
        if value is None and self._skip_unset:
            return "${%s/%s/%s}" % (name, pattern, replacement)
        regex = _shell_pattern(pattern, greedy=True, anchored=False)
        value = value or ""
        if replace_all:
            return regex.sub(lambda _m: replacement, value)
        found = regex.search(value)
        if found is None:
            return value
        return value[: found.start()] + replacement + value[found.end() :]


def _shell_pattern(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell wildcard (`*`, `?`, `\\` escapes; no bracket expressions) as a regular expression."""
    out = ["^"] if anchored else []
    i = 0
    while i < len(pattern):
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(".*" if greedy else ".*?")
            continue
        if tok == "?":
            out.append(".")
            continue
        if tok == "\\":
            nxt = pattern[i] if i < len(pattern) else ""
            if nxt in ("}", "/") and nxt:
                continue
            i += 1
            if nxt not in ("*", "?", "\\") or not nxt:
                raise _LexError(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{nxt}'")
            out.append("\\" + nxt)
            continue
        out.append(re.escape(tok) if tok in "[]{}.+()|^$" else tok)
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    found = _shell_pattern(pattern, greedy=greedy, anchored=True).search(value)
    return value[found.end() :] if found else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern keeping each escape before the character it escapes."""
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i != len(pattern) - 1:
            tokens.append(pattern[i : i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # the shortest rightmost match is the shortest leftmost match of the reversed pattern and text
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def expand_word(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """One word with its variables substituted and its quotes and escapes removed (ProcessWord)."""
    return Lexer(word, env, escape=escape).run()[0]


def expand_words(word: str, env: Mapping[str, str], *, escape: str = "\\") -> list[str]:
    """The words of `word` after substitution, split on unquoted white space (ProcessWords)."""
    return Lexer(word, env, escape=escape).run()[1]


def env_from_list(env: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`KEY=value` strings as a mapping (a later KEY wins, as in the builder's lookup)."""
    out: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out
