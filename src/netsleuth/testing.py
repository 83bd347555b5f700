"""Builders for tests and benchmarks: a NodeState from the same texts a node snapshot holds."""

from __future__ import annotations

from netsleuth.model.net import TABLE_LOCAL, Sysctls, default_policy_rules
from netsleuth.model.netfilter import Ruleset
from netsleuth.model.node import NodeState
from netsleuth.parse.iproute2 import (
    kernel_routes_for_addresses,
    parse_ip_addr,
    parse_ip_route,
    parse_ip_rule,
)
from netsleuth.parse.iptables_save import parse_iptables_save
from netsleuth.parse.sysctl import parse_sysctl


def build_node(
    name: str = "node",
    *,
    addr: str = "",
    routes: str = "",
    rules: str = "",
    iptables: str = "",
    ip6tables: str | None = None,
    sysctl: str = "",
) -> NodeState:
    """`addr` is `ip addr` text, `routes` `ip route` text (main table; table local and the
    prefix routes are added from the addresses as the kernel does unless `routes` has a
    `table local` line), `rules` `ip rule` text, `iptables` iptables-save text, `ip6tables`
    ip6tables-save text (None: no IPv6 netfilter evidence)."""
    links, addresses = parse_ip_addr(addr, f"{name}/ip-addr.txt") if addr else ((), ())
    route_list = list(parse_ip_route(routes, f"{name}/ip-route.txt")) if routes else []
    if not any(r.table == TABLE_LOCAL for r in route_list):
        known = {(r.dst, r.table, r.type) for r in route_list}
        route_list.extend(r for r in kernel_routes_for_addresses(addresses)
                          if (r.dst, r.table, r.type) not in known)
    return NodeState(
        name=name,
        links=links,
        addresses=addresses,
        routes=tuple(route_list),
        rules=parse_ip_rule(rules, f"{name}/ip-rule.txt") if rules else default_policy_rules(),
        sysctls=parse_sysctl(sysctl, f"{name}/sysctl.txt") if sysctl else Sysctls(),
        ruleset=parse_iptables_save(iptables, f"{name}/iptables-save.txt") if iptables
        else Ruleset(),
        ruleset6=None if ip6tables is None
        else parse_iptables_save(ip6tables, f"{name}/ip6tables-save.txt", family=6),
    )
