"""A node snapshot (docs/node-snapshot.md) as file texts → NodeState (pure).

Missing files are normal: each one is replaced by what the kernel would have by default or by
an empty table, and the replacement is recorded in `NodeState.assumptions` so that every trace
and report can say what it rests on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from netsleuth.errors import ParseError
from netsleuth.model.net import TABLE_LOCAL, Address, Link, Route, Sysctls, default_policy_rules
from netsleuth.model.netfilter import Ruleset
from netsleuth.model.node import NodeState
from netsleuth.parse.iproute2 import (
    kernel_routes_for_addresses,
    parse_ip_addr,
    parse_ip_link,
    parse_ip_route,
    parse_ip_rule,
)
from netsleuth.parse.iptables_list import parse_iptables_list
from netsleuth.parse.iptables_save import parse_iptables_save
from netsleuth.parse.sysctl import parse_sysctl

KNOWN_FILES = (
    "hostname", "ip-addr.json", "ip-addr.txt", "ip-link.json", "ip-link.txt", "ip-route.json",
    "ip-route.txt", "ip6-route.json", "ip6-route.txt", "ip-rule.json", "ip-rule.txt",
    "ip6-rule.json", "ip6-rule.txt", "ip6-addr.json", "ip6-addr.txt",
    "iptables-save.txt", "iptables-nvL.txt", "iptables-list.txt", "ip6tables-save.txt",
    "sysctl.txt",
)


def node_from_files(
    files: Mapping[str, str],
    *,
    name: str,
    origin: str,
    sources: Mapping[str, str] | None = None,
) -> NodeState:
    """Build a NodeState from snapshot file texts (file name → text); pure.

    `name` is used when there is no `hostname` file; `origin` prefixes the source names
    that evidence lines quote (e.g. `incident/nodes/admin`), unless `sources` names the
    source of a file directly (a transcript: every "file" is a block of the same text)."""
    assumptions: list[str] = []
    used: list[str] = []

    def read(*names: str) -> tuple[str, str] | None:
        for n in names:
            if n in files:
                used.append(n)
                return files[n], (sources or {}).get(n, f"{origin}/{n}")
        return None

    hostname = read("hostname")
    first_line = hostname[0].strip().splitlines()[0] if hostname and hostname[0].strip() else ""
    node_name = first_line or name

    links: tuple[Link, ...] = ()
    addresses: tuple[Address, ...] = ()
    got = read("ip-addr.json", "ip-addr.txt")
    if got:
        links, addresses = parse_ip_addr(*got)
    else:
        assumptions.append("no ip-addr: the node's addresses are unknown (source address "
                           "selection and addrtype LOCAL cannot be evaluated)")
    got = read("ip6-addr.json", "ip6-addr.txt")
    if got:
        # `ip -6 addr` beside `ip addr` (or `ip -4 addr`): the same links, other addresses.
        links6, addresses6 = parse_ip_addr(*got)
        known = {(a.ifname, a.interface) for a in addresses}
        addresses = (*addresses, *(a for a in addresses6 if (a.ifname, a.interface) not in known))
        names = {link.name for link in links}
        links = (*links, *(link for link in links6 if link.name not in names))
    got = read("ip-link.json", "ip-link.txt")
    if got:
        links = parse_ip_link(*got)

    routes: list[Route] = []
    got = read("ip-route.json", "ip-route.txt")
    if got:
        routes.extend(parse_ip_route(*got, family=4))
    else:
        assumptions.append("no ip-route: the routing tables are unknown, every lookup fails")
    got = read("ip6-route.json", "ip6-route.txt")
    if got:
        routes.extend(parse_ip_route(*got, family=6))
    if addresses and not any(r.table == TABLE_LOCAL for r in routes):
        kernel = [r for r in kernel_routes_for_addresses(addresses) if r.table == TABLE_LOCAL]
        routes.extend(kernel)
        assumptions.append(
            "ip-route has no local table (only `ip route` was given): rebuilt table local "
            f"from the addresses as the kernel does ({len(kernel)} routes)"
        )

    got = read("ip-rule.json", "ip-rule.txt")
    if got:
        rules = parse_ip_rule(*got)
    else:
        rules = default_policy_rules()
        assumptions.append("no ip-rule: assuming the default rules 0/32766/32767 "
                           "(lookup local, main, default)")

    got = read("iptables-save.txt")
    if got:
        ruleset = parse_iptables_save(*got)
    else:
        got = read("iptables-nvL.txt", "iptables-list.txt")
        if got:
            ruleset = parse_iptables_list(*got)
            assumptions.append("iptables rules come from an `iptables -nvL` listing, not "
                               "iptables-save: columns it does not show are not known")
        else:
            ruleset = Ruleset()
            assumptions.append("no iptables-save: no netfilter rules known, every built-in "
                               "chain policy assumed ACCEPT")

    got = read("ip6-rule.json", "ip6-rule.txt")
    rules6 = parse_ip_rule(*got) if got else None

    got = read("ip6tables-save.txt")
    ruleset6 = parse_iptables_save(*got, family=6) if got else None

    got = read("sysctl.txt")
    if got:
        sysctls = parse_sysctl(*got)
    else:
        sysctls = Sysctls()
        assumptions.append("no sysctl: kernel settings unknown (forwarding assumed enabled, "
                           "rp_filter assumed off)")

    return NodeState(
        name=node_name,
        links=tuple(links),
        addresses=tuple(addresses),
        routes=tuple(routes),
        rules=tuple(rules),
        rules6=rules6,
        sysctls=sysctls,
        ruleset=ruleset,
        ruleset6=ruleset6,
        assumptions=tuple(assumptions),
        files=tuple(used),
    )


def with_extra_routes(node: NodeState, spec: str, source: str = "--route-add") -> NodeState:
    """The node with routes added from `ip route` text (a what-if, e.g. a proposed fix).

    Refuses what `ip route add` itself would refuse on that node, so a what-if never proves a
    fix that cannot be applied: an unknown device ("Cannot find device"), and a gateway that
    no connected route of that device reaches without `onlink` ("Nexthop has invalid
    gateway", fib_check_nh)."""
    extra = parse_ip_route(spec, source)
    if not extra:
        raise ParseError(source, 1, spec, "a route in `ip route` words, e.g. "
                         "'default via 192.168.56.4 dev enp0s8'")
    devices = {link.name for link in node.links} | {a.ifname for a in node.addresses}
    for route in extra:
        for hop in route.nexthops:
            if hop.dev and devices and hop.dev not in devices:
                raise ParseError(source, 1, spec, f"a device of node {node.name} (Cannot find "
                                 f"device {hop.dev!r}; it has {', '.join(sorted(devices))})")
            if hop.gateway is None or hop.onlink:
                continue
            if not any(hop.gateway in a.network and (hop.dev in (None, a.ifname))
                       for a in node.addresses if a.ip.version == hop.gateway.version):
                raise ParseError(source, 1, spec, f"a gateway on a connected subnet of "
                                 f"{hop.dev or 'the node'} (Nexthop has invalid gateway "
                                 f"{hop.gateway}; add `onlink` if it is reachable anyway)")
    return replace(node, routes=node.routes + tuple(extra),
                   assumptions=node.assumptions + (f"what-if: added route {spec!r}",))
