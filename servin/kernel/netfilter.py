"""Applies iptables rules (made by servin.network.rules) with iptables-restore --noflush and iptables -C/-I/-D.

Works in the namespace of the calling process. `iptables` is whatever `iptables -V` says (the nft
backend here); only Servin's own chains are created, flushed and deleted, and the built-in chains
get one jump each, removed again by `teardown`. Blocking: the engine calls via to_thread.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    table: str
    chain: str
    spec: str  # the match and target, as iptables arguments (no quoting needed: no spaces inside)

    def line(self, op: str = "-A") -> str:
        return f"{op} {self.chain} {self.spec}"


def restore_text(rules: Iterable[Rule], op: str = "-A", *, declare: Mapping[str, Sequence[str]] | None = None) -> str:
    """iptables-restore input (for --noflush) for `rules`, grouped by table. `declare` maps
    tables to chains declared first (created, or flushed when they exist)."""
    by_table: dict[str, list[str]] = {}
    for table, chains in (declare or {}).items():
        by_table.setdefault(table, []).extend(f":{c} - [0:0]" for c in chains)
    for r in rules:
        by_table.setdefault(r.table, []).append(r.line(op))
    out = []
    for table in sorted(by_table):
        out.append(f"*{table}")
        out.extend(by_table[table])
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def parse_rules(saved: str, chains: Mapping[str, Sequence[str]]) -> list[Rule]:
    """The rules of `chains` in iptables-save output."""
    out: list[Rule] = []
    table = ""
    for line in saved.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A "):
            _, chain, *spec = line.split()
            if chain in chains.get(table, ()):
                out.append(Rule(table, chain, " ".join(spec)))
    return out


class NetfilterError(RuntimeError):
    pass


class Netfilter:
    def __init__(self, *, iptables: str = "iptables", iptables_restore: str = "iptables-restore",
                 iptables_save: str = "iptables-save", prefix: Sequence[str] = ()) -> None:
        self.iptables = [*prefix, iptables, "-w"]
        self.restore = [*prefix, iptables_restore, "-w", "--noflush"]
        self.save = [*prefix, iptables_save]

    def _run(self, argv: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise NetfilterError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")
        return proc

    def _exists(self, r: Rule) -> bool:
        return self._run([*self.iptables, "-t", r.table, "-C", r.chain, *r.spec.split()], check=False).returncode == 0

    def setup(self, chains: Mapping[str, Sequence[str]], jumps: Sequence[Rule], rules: Iterable[Rule] = (),
              *, own: Iterable[str] = ()) -> None:
        """(Re)build this daemon's part of the shared ruleset, at daemon start (so also after a
        crash): create the `chains` that are missing (never flush them: other daemons on the host
        keep their rules there), delete the rules that mention one of the `own` words (this
        daemon's bridges), add `rules` (those already there are kept once), and make sure `jumps`
        from the built-in chains exist, at their top."""
        saved = self._run(self.save).stdout
        existing: dict[str, set[str]] = {}
        table = ""
        for line in saved.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":"):
                existing.setdefault(table, set()).add(line[1:].split()[0])
        missing = {t: [c for c in names if c not in existing.get(t, set())] for t, names in chains.items()}
        present = parse_rules(saved, chains)
        stale = [r for r in present if any(w in r.spec.split() for w in own)]
        kept = set(present) - set(stale)
        wanted = [r for r in dict.fromkeys(rules) if r not in kept]
        self._run(self.restore, restore_text(stale, "-D", declare={t: c for t, c in missing.items() if c}))
        self._run(self.restore, restore_text(wanted))
        for j in reversed(jumps):
            if not self._exists(j):
                self._run([*self.iptables, "-t", j.table, "-I", j.chain, "1", *j.spec.split()])

    def add(self, rules: Sequence[Rule]) -> None:
        if rules:
            self._run(self.restore, restore_text(rules))

    def delete(self, rules: Sequence[Rule]) -> None:
        """Delete rules; ones already gone are skipped."""
        if not rules:
            return
        if self._run(self.restore, restore_text(rules, "-D"), check=False).returncode == 0:
            return
        for r in rules:
            while self._exists(r):
                self._run([*self.iptables, "-t", r.table, "-D", r.chain, *r.spec.split()])

    def teardown(self, chains: Mapping[str, Sequence[str]], jumps: Sequence[Rule]) -> None:
        """Remove `jumps` and then `chains`."""
        for j in jumps:
            while self._exists(j):
                self._run([*self.iptables, "-t", j.table, "-D", j.chain, *j.spec.split()])
        for table, names in chains.items():
            for c in names:
                self._run([*self.iptables, "-t", table, "-F", c], check=False)
            for c in names:
                self._run([*self.iptables, "-t", table, "-X", c], check=False)

    def lines_mentioning(self, word: str) -> list[str]:
        """Every line of iptables-save that mentions `word` (e.g. "SERVIN": empty when all is removed)."""
        out = self._run(self.save).stdout
        return [line for line in out.splitlines() if word in line]
