"""Go's ``%q``, ``%v`` and ``time.Duration`` text, as dockerd writes them into the history of CMD,
ENTRYPOINT, HEALTHCHECK (``/bin/sh -c #(nop)  CMD ["sh" "-c" "x"]``), SHELL and VOLUME (``[/v]``)."""

from __future__ import annotations

from collections.abc import Sequence

from servin.build.expand import go_quote

_RUNE_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v", 39: "\\'", 92: "\\\\"}


def quote_list(items: Sequence[str] | None) -> str:
    """``fmt.Sprintf("%q", []string{...})``."""
    return "[" + " ".join(go_quote(s) for s in items or ()) + "]"


def plain_list(items: Sequence[str] | None) -> str:
    """``fmt.Sprintf("%v", []string{...})`` (dockerd's VOLUME and SHELL history)."""
    return "[" + " ".join(items or ()) + "]"


def quote_rune(n: int) -> str:
    """``%q`` of an integer: Go's strconv.QuoteRune."""
    if n in _RUNE_ESCAPES:
        return f"'{_RUNE_ESCAPES[n]}'"
    if 0x20 <= n < 0x7F:
        return f"'{chr(n)}'"
    if n < 0x80:
        return f"'\\x{n:02x}'"
    if n < 0x10000:
        return f"'\\u{n:04x}'"
    return f"'\\U{n:08x}'"


def _frac(v: int, prec: int) -> str:
    whole, part = divmod(v, 10**prec)
    digits = f"{part:0{prec}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def duration(ns: int) -> str:
    """Go's Duration.String: ``0s``, ``1.5s``, ``5m0s``, ``1h0m0s``, ``100ms``, ``2µs``."""
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < 1000:
        return f"{sign}{u}ns"
    if u < 10**6:
        return f"{sign}{_frac(u, 3)}µs"
    if u < 10**9:
        return f"{sign}{_frac(u, 6)}ms"
    out = _frac(u % (60 * 10**9), 9) + "s"
    minutes = u // (60 * 10**9)
    if minutes:
        out = f"{minutes % 60}m{out}"
        if minutes // 60:
            out = f"{minutes // 60}h{out}"
    return sign + out


def healthcheck(h: dict[str, object]) -> str:
    """``%q`` of dockerd 20.10's *HealthConfig: ``&{["CMD-SHELL" "x"] "5s" "0s" "0s" '\\x03'}``."""
    test = h.get("Test")
    parts = [quote_list(test if isinstance(test, list) else [])]
    for key in ("Interval", "Timeout", "StartPeriod"):
        v = h.get(key)
        parts.append('"' + duration(v if isinstance(v, int) else 0) + '"')
    retries = h.get("Retries")
    parts.append(quote_rune(retries if isinstance(retries, int) else 0))
    return "&{" + " ".join(parts) + "}"
