"""The iptables rules of Servin's networks, as text. Pure: golden-tested, applied by
`servin.kernel.netfilter` with iptables-restore.

Chains (all Servin's own; the built-in chains only get one jump each):
    nat    SERVIN              <- PREROUTING and OUTPUT, for destinations of type LOCAL: DNAT of
                                  published ports (OUTPUT covers 127.0.0.1, see below)
    nat    SERVIN-POSTROUTING  <- POSTROUTING: MASQUERADE of each bridge subnet going elsewhere,
                                  and of locally sourced traffic into a bridge
    filter SERVIN-FORWARD      <- FORWARD (inserted first): isolation, then per-bridge accepts
    filter SERVIN-ISOLATION, SERVIN-ISOLATION-2: no traffic between different bridges; internal
                                  networks reach nothing but themselves

Published ports from the host's loopback (127.0.0.1:8080) work without a userland proxy: the
OUTPUT jump DNATs them, `route_localnet=1` on the bridge lets a 127.0.0.0/8 source leave through
it, and `-o <bridge> -m addrtype --src-type LOCAL -j MASQUERADE` rewrites that source to the
gateway so the container can answer. No process per port, no copy through userspace.

IPv6 (networks with EnableIPv6) takes the same chains and rules in ip6tables (`network_rules`
with the IPv6 subnet, `port_rules` with the IPv6 addresses). IPv6 has no `route_localnet`: a DNAT
from ::1 could not leave lo, so ip6tables' OUTPUT jump skips ::1 (`JUMPS6`, as dockerd's) and the
daemon's userland proxy (`servin.network.proxy`) serves [::1]:P. It also serves a host address
of a family the container has no address of (host IPv6 to an IPv4-only container, as docker-proxy;
host IPv4 to an IPv6-only one), where no DNAT can go. Those proxied paths are served by the daemon:
down while it is down, where the DNAT paths (all the others) survive a daemon crash.
"""

from __future__ import annotations

from servin.kernel.netfilter import Rule

NAT_CHAIN = "SERVIN"
POST_CHAIN = "SERVIN-POSTROUTING"
FORWARD_CHAIN = "SERVIN-FORWARD"
ISOLATION_CHAIN = "SERVIN-ISOLATION"
ISOLATION2_CHAIN = "SERVIN-ISOLATION-2"
INPUT_CHAIN = "SERVIN-INPUT"

CHAINS: dict[str, tuple[str, ...]] = {
    "nat": (NAT_CHAIN, POST_CHAIN),
    "filter": (FORWARD_CHAIN, ISOLATION_CHAIN, ISOLATION2_CHAIN, INPUT_CHAIN),
}


# jumps from the built-in chains: (table, chain, spec); inserted at the top, one each
JUMPS: tuple[Rule, ...] = (
    Rule("nat", "PREROUTING", f"-m addrtype --dst-type LOCAL -j {NAT_CHAIN}"),
    Rule("nat", "OUTPUT", f"-m addrtype --dst-type LOCAL -j {NAT_CHAIN}"),
    Rule("nat", "POSTROUTING", f"-j {POST_CHAIN}"),
    Rule("filter", "FORWARD", f"-j {FORWARD_CHAIN}"),
    Rule("filter", "INPUT", f"-j {INPUT_CHAIN}"),
)

# ip6tables': OUTPUT skips ::1 (no DNAT can take it out of lo; the userland proxy serves it)
JUMPS6: tuple[Rule, ...] = tuple(
    Rule("nat", "OUTPUT", f"! -d ::1/128 -m addrtype --dst-type LOCAL -j {NAT_CHAIN}") if j.chain == "OUTPUT" else j
    for j in JUMPS)
# jumps of older versions, removed at start
STALE_JUMPS6: tuple[Rule, ...] = tuple(j for j in JUMPS if j not in JUMPS6)

# the first rule of SERVIN-FORWARD, before any network's
BASE: tuple[Rule, ...] = (Rule("filter", FORWARD_CHAIN, f"-j {ISOLATION_CHAIN}"),)


def network_rules(*, bridge: str, subnet: str, internal: bool = False, icc: bool = True,
                  masquerade: bool = True) -> list[Rule]:
    """The rules of one bridge network."""
    rules: list[Rule] = []
    if internal:
        rules += [
            Rule("filter", ISOLATION_CHAIN, f"-i {bridge} ! -o {bridge} -j DROP"),
            Rule("filter", ISOLATION_CHAIN, f"! -i {bridge} -o {bridge} -j DROP"),
        ]
    else:
        rules += [
            Rule("filter", ISOLATION_CHAIN, f"-i {bridge} ! -o {bridge} -j {ISOLATION2_CHAIN}"),
            Rule("filter", ISOLATION2_CHAIN, f"-o {bridge} -j DROP"),
            *([Rule("nat", POST_CHAIN, f"-s {subnet} ! -o {bridge} -j MASQUERADE")] if masquerade else []),
            Rule("nat", POST_CHAIN, f"-o {bridge} -m addrtype --src-type LOCAL -j MASQUERADE"),
            Rule("filter", FORWARD_CHAIN,
                 f"-o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
            Rule("filter", FORWARD_CHAIN, f"-i {bridge} ! -o {bridge} -j ACCEPT"),
        ]
    rules.append(Rule("filter", FORWARD_CHAIN, f"-i {bridge} -o {bridge} -j {'ACCEPT' if icc else 'DROP'}"))
    return rules


def port_rules(*, bridge: str, container_ip: str, proto: str, container_port: int, host_ip: str,
               host_port: int) -> list[Rule]:
    """DNAT of one published port and the forward accept for it (iptables' or, for an IPv6
    `container_ip`, ip6tables')."""
    v6 = ":" in container_ip
    host = 128 if v6 else 32
    dst = f"-d {host_ip}/{host} " if host_ip and host_ip not in ("0.0.0.0", "::") else ""
    to = f"[{container_ip}]:{container_port}" if v6 else f"{container_ip}:{container_port}"
    return [
        Rule("nat", NAT_CHAIN,
             f"{dst}! -i {bridge} -p {proto} -m {proto} --dport {host_port} -j DNAT --to-destination {to}"),
        Rule("filter", FORWARD_CHAIN,
             f"-d {container_ip}/{host} ! -i {bridge} -o {bridge} -p {proto} -m {proto} "
             f"--dport {container_port} -j ACCEPT"),
    ]


def dns_rules(*, bridge: str, gateway: str, udp_port: int, tcp_port: int) -> list[Rule]:
    """What containers ask the gateway on port 53 goes to the daemon's DNS server: for an IPv4
    gateway on 127.0.0.1 (`route_localnet` on the bridge lets it), for an IPv6 one (ip6tables') on
    the gateway address itself, where a listener bound to the bridge waits. Conntrack rewrites the
    answers back."""
    v6 = ":" in gateway
    host, to = (f"{gateway}/128", f"[{gateway}]") if v6 else (f"{gateway}/32", "127.0.0.1")
    out = []
    for proto, port in (("udp", udp_port), ("tcp", tcp_port)):
        out += [
            Rule("nat", NAT_CHAIN, f"-d {host} -i {bridge} -p {proto} -m {proto} --dport 53 "
                                   f"-j DNAT --to-destination {to}:{port}"),
            # let it in even where the host's INPUT policy drops (ufw, firewalld)
            Rule("filter", INPUT_CHAIN, f"-d {host if v6 else '127.0.0.1/32'} -i {bridge} -p {proto} -m {proto} "
                                        f"--dport {port} -j ACCEPT"),
        ]
    return out
