"""Servin's rules in both address families: iptables for IPv4, ip6tables for IPv6.

The rule text is `servin.network.rules`' (the same chains in both; ip6tables' OUTPUT jump skips
::1, `JUMPS6`, and the older jump is removed at start); this pairs the two
`Netfilter`s so the network service adds and deletes a network's or an endpoint's rules of both
families in one call. ip6tables is touched only once there are IPv6 rules: its chains and jumps are
made then (again if they went missing, e.g. removed by another daemon's teardown). On a host whose
ip6tables does not work (no IPv6 in the kernel, no nat table) IPv6 is off: `ipv6` is False after a
failed `setup`, and IPv6 networks are refused by the service.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from servin.kernel.netfilter import Netfilter, NetfilterError, Rule
from servin.network import rules as R

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FamilyRules:
    """A network's or an endpoint's rules: IPv4's and IPv6's."""

    v4: list[Rule] = field(default_factory=list)
    v6: list[Rule] = field(default_factory=list)

    def __add__(self, other: FamilyRules) -> FamilyRules:
        return FamilyRules([*self.v4, *other.v4], [*self.v6, *other.v6])


class DualStackFirewall:
    def __init__(self, v4: Netfilter, v6: Netfilter | None) -> None:
        self.v4 = v4
        self.v6 = v6
        self.ipv6 = v6 is not None

    def setup(self, rules: FamilyRules, *, own: Iterable[str]) -> None:
        """Servin's chains and jumps in both tables, and `rules` (see Netfilter.setup)."""
        owned = list(own)
        self.v4.setup(R.CHAINS, R.JUMPS, [*R.BASE, *rules.v4], own=owned)
        if self.v6 is None:
            return
        try:
            # without IPv6 rules, ip6tables is left alone unless an earlier run left chains to clean
            if rules.v6 or self.v6.lines_mentioning(R.FORWARD_CHAIN):
                self.v6.teardown({}, R.STALE_JUMPS6)
                self.v6.setup(R.CHAINS, R.JUMPS6, [*R.BASE, *rules.v6], own=owned)
        except (NetfilterError, OSError) as exc:
            log.warning("ip6tables does not work here, IPv6 networks are off: %s", exc)
            self.ipv6 = False

    def add(self, rules: FamilyRules) -> None:
        self.v4.add(rules.v4)
        if rules.v6 and self.v6 is not None:
            try:
                try:
                    self.v6.add(rules.v6)
                except NetfilterError:  # the chains are not there (yet, or any more): make them, once
                    self.v6.setup(R.CHAINS, R.JUMPS6, R.BASE)
                    self.v6.add(rules.v6)
            except BaseException:
                self.v4.delete(rules.v4)
                raise

    def delete(self, rules: FamilyRules) -> None:
        self.v4.delete(rules.v4)
        if rules.v6 and self.v6 is not None:
            self.v6.delete(rules.v6)

    def teardown(self) -> None:
        self.v4.teardown(R.CHAINS, R.JUMPS)
        if self.v6 is not None:
            self.v6.teardown(R.CHAINS, (*R.JUMPS6, *R.STALE_JUMPS6))


def ip6tables() -> Netfilter:
    return Netfilter(iptables="ip6tables", iptables_restore="ip6tables-restore", iptables_save="ip6tables-save")


def rules_for(rules: Sequence[Rule], *, ipv6: bool) -> FamilyRules:
    """`rules` as the rules of one family."""
    return FamilyRules([], list(rules)) if ipv6 else FamilyRules(list(rules), [])
