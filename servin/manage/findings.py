"""What the daemon finds about itself for /api/v1/monitoring/troubleshoot/connection: an issue, Servin's own
advice, and whether it keeps clients from using the daemon (daemon/selfcheck.py makes them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    issue: str
    fixes: tuple[str, ...]
    blocking: bool  # True: clients cannot use the daemon until it is fixed (False: a warning)


ConnectionCheck = Callable[[], list[Finding]]  # blocking I/O: called off the event loop


def report(findings: list[Finding]) -> dict[str, object]:
    """`connected` unless an issue blocks use; each fix once, in the order of the issues."""
    fixes: list[str] = []
    for f in findings:
        fixes += [fix for fix in f.fixes if fix not in fixes]
    return {"connected": not any(f.blocking for f in findings), "issues": [f.issue for f in findings],
            "fixes": fixes}
