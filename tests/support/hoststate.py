"""What the suite may change on the host, before and after: network devices, top-level cgroups of
every hierarchy, iptables rules and chains, mounts. The run must leave the host as it found it, also
when tests fail: what is left of ours is swept away first, then anything still new fails the run."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.daemon import CGROUP_ROOT, TEST_BRIDGE_PREFIX, remove_bridge, remove_cgroup_tree

OUR_CGROUPS = "servin-test-"  # the parents of tests/support/daemon.py and tests/kernel/runtime_helpers.py
BUILTIN_CHAINS = tuple(f":{c} " for c in ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"))


@dataclass(frozen=True)
class HostState:
    links: frozenset[str]
    cgroups: frozenset[str]  # "<hierarchy>/<name>" one level below each hierarchy's root
    iptables: frozenset[str]  # rules and chain declarations, counters dropped
    mounts: frozenset[str]

    @classmethod
    def read(cls) -> HostState:
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
        cgroups = [f"{h.name}/{d.name}" for h in CGROUP_ROOT.iterdir() if h.is_dir()
                   for d in h.iterdir() if d.is_dir()] if CGROUP_ROOT.exists() else []
        rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.splitlines()
        # ip6tables' too, but not the built-in chains' policies: the first ip6tables call (nft backend)
        # makes the empty tables they belong to, which change nothing
        rules += ["ip6tables " + r for r in
                  subprocess.run(["ip6tables-save"], capture_output=True, text=True).stdout.splitlines()
                  if not r.startswith(BUILTIN_CHAINS)]
        return cls(
            links=frozenset(line.split(":")[1].strip().split("@")[0] for line in links),
            cgroups=frozenset(cgroups),
            iptables=frozenset(re.sub(r" \[\d+:\d+\]$", "", r) for r in rules
                               if r.removeprefix("ip6tables ").startswith(("-A ", ":"))),
            mounts=frozenset(line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()),
        )

    def added_since(self, before: HostState) -> list[str]:
        return ([f"network device {x}" for x in sorted(self.links - before.links)]
                + [f"cgroup {CGROUP_ROOT}/{x}" for x in sorted(self.cgroups - before.cgroups)]
                + [f"iptables {x}" for x in sorted(self.iptables - before.iptables)]
                + [f"mount {x}" for x in sorted(self.mounts - before.mounts)])


def sweep(before: HostState) -> None:
    """Remove what the suite's daemons and containers left behind: test bridges (with their veths
    and rules, and Servin's chains once empty) and test cgroups."""
    now = HostState.read()
    for link in now.links - before.links:
        if link.startswith(TEST_BRIDGE_PREFIX):
            remove_bridge(link)
    for name in {c.split("/", 1)[1] for c in now.cgroups - before.cgroups}:
        if name.startswith(OUR_CGROUPS):
            remove_cgroup_tree(name)
