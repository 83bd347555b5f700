"""The forwarding information base: policy rules, tables, longest-prefix match, route types.

Mirrors net/ipv4/fib_rules.c and fib_trie.c: rules are tried in priority order; a `lookup`
rule whose table has no covering route (or whose route is `throw`) falls through to the next
rule; the error route types end the lookup with their errno (fib_props[] in fib_semantics.c);
when no rule yields a route the lookup fails with ENETUNREACH (__fib_lookup maps -ESRCH).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from netsleuth.model.net import (
    TABLE_LOCAL,
    Address,
    IPAddress,
    IPNetwork,
    NextHop,
    PolicyRule,
    Route,
    RouteType,
    RuleAction,
    Scope,
)

# fib_props[type].error: what a lookup that lands on such a route returns.
ROUTE_TYPE_ERRNO: dict[RouteType, str] = {
    RouteType.UNREACHABLE: "EHOSTUNREACH",
    RouteType.PROHIBIT: "EACCES",
    RouteType.BLACKHOLE: "EINVAL",
}
# fib4_rule_action(): errors of the rule actions themselves.
RULE_ACTION_ERRNO: dict[RuleAction, str] = {
    RuleAction.UNREACHABLE: "ENETUNREACH",
    RuleAction.PROHIBIT: "EACCES",
    RuleAction.BLACKHOLE: "EINVAL",
}
NO_ROUTE_ERRNO = "ENETUNREACH"


class RouteResult(NamedTuple):
    """The answer of one FIB lookup, with the reasoning that led to it.

    On success `route` is set and `errno` is None. `paths` lists (next hop, share) for
    multipath routes (one entry of share 1.0 otherwise). `considered` says, rule by rule, what
    was tried, so a trace can explain a failure ("no route in table main covers 10.96.0.1").
    """

    route: Route | None
    errno: str | None
    rule: PolicyRule | None
    table: int | None
    paths: tuple[tuple[NextHop, float], ...]
    trail: tuple[tuple[object, ...], ...]  # what each rule did; formatted on demand
    dst: IPAddress | None = None  # the destination looked up

    @property
    def considered(self) -> tuple[str, ...]:
        """The rules tried, in words ("rule 32766: lookup main: no route covers 10.96.0.1")."""
        return tuple(_say(entry, self.dst) for entry in self.trail)

    @property
    def ok(self) -> bool:
        return self.errno is None and self.route is not None

    @property
    def type(self) -> RouteType | None:
        return self.route.type if self.route else None


class _Table:
    """Routes of one table, indexed by prefix length then masked network (as fib_trie does)."""

    def __init__(self, routes: Iterable[Route]) -> None:
        by_len: dict[int, dict[int, list[Route]]] = defaultdict(lambda: defaultdict(list))
        for route in routes:
            by_len[route.dst.prefixlen][int(route.dst.network_address)].append(route)
        for nets in by_len.values():
            for bucket in nets.values():
                # fib_table_lookup takes the first alias in priority (metric) order.
                bucket.sort(key=lambda r: (r.tos == 0, r.metric))
        self._lengths = sorted(by_len, reverse=True)
        self._by_len = {k: dict(v) for k, v in by_len.items()}
        self.size = sum(len(b) for nets in by_len.values() for b in nets.values())

    def lookup(self, dst: IPAddress, tos: int = 0) -> Route | None:
        value = int(dst)
        bits = dst.max_prefixlen
        for length in self._lengths:
            mask = ((1 << length) - 1) << (bits - length) if length else 0
            bucket = self._by_len[length].get(value & mask)
            if bucket:
                for route in bucket:
                    if route.tos == 0 or route.tos == tos:
                        return route
        return None


class Fib:
    """Policy rules + tables of one node and one address family, ready for lookups."""

    def __init__(
        self,
        routes: Sequence[Route],
        rules: Sequence[PolicyRule],
        addresses: Sequence[Address],
        family: int = 4,
    ) -> None:
        self.family = family
        by_table: dict[int, list[Route]] = defaultdict(list)
        for route in routes:
            if route.dst.version == family:
                by_table[route.table].append(route)
        self._tables = {tid: _Table(rs) for tid, rs in by_table.items()}
        self.rules = tuple(sorted(rules, key=lambda r: r.priority))
        # A rule without selectors matches every flow: most nodes have only such rules, and
        # the lookup then needs no flow at all.
        self._selective = tuple(_has_selectors(r) for r in self.rules)
        self.selective = any(self._selective)
        self._paths: dict[int, tuple[tuple[NextHop, float], ...]] = {}
        # Without selective rules a lookup depends only on the destination, and only on which
        # routes cover it: every address between two consecutive route boundaries (a prefix's
        # first address, or the one after its last) is covered by the same routes in every
        # table, so their lookups agree. Results are kept per such interval.
        self._bounds = sorted({b for r in routes if r.dst.version == family
                               for b in (int(r.dst.network_address),
                                         int(r.dst.broadcast_address) + 1)})
        self._memo: dict[tuple[int, int], RouteResult] = {}
        self._addresses = [a for a in addresses if a.ip.version == family]
        self._by_dev: dict[str, list[tuple[Address, IPAddress, IPNetwork]]] = defaultdict(list)
        for addr in self._addresses:
            self._by_dev[addr.ifname].append((addr, addr.ip, addr.network))

    # -- lookups -----------------------------------------------------------------------------

    def lookup(
        self,
        dst: IPAddress,
        *,
        src: IPAddress | None = None,
        iif: str | None = None,
        oif: str | None = None,
        mark: int = 0,
        tos: int = 0,
        proto: int | None = None,
        sport: int | None = None,
        dport: int | None = None,
        uid: int = 0,
    ) -> RouteResult:
        """fib_lookup(): walk the policy rules; `iif` is "lo" for locally generated packets.

        `uid` is the socket owner for uidrange rules (root when unknown, as for packets
        without a socket)."""
        if self.selective:
            return self._lookup(dst, src, iif, oif, mark, tos, proto, sport, dport, uid)
        key = (bisect.bisect_right(self._bounds, int(dst)), tos)
        known = self._memo.get(key)
        if known is None:
            known = self._memo[key] = self._lookup(dst, src, iif, oif, mark, tos, proto, sport,
                                                   dport, uid)
        elif known.dst != dst:
            known = RouteResult(known.route, known.errno, known.rule, known.table, known.paths,
                                known.trail, dst)
        return known

    def _lookup(
        self, dst: IPAddress, src: IPAddress | None, iif: str | None, oif: str | None,
        mark: int, tos: int, proto: int | None, sport: int | None, dport: int | None, uid: int,
    ) -> RouteResult:
        flow: _Flow | None = None
        # The trail is kept as tuples and put into words only when someone reads it: lookups
        # sit on the hot path of every trace.
        trail: list[tuple[object, ...]] = []
        rules = self.rules
        index = 0
        while index < len(rules):
            rule = rules[index]
            if self._selective[index]:
                if flow is None:
                    flow = _Flow(dst, src, iif, oif, mark, tos, proto, sport, dport, uid)
                if not _rule_matches(rule, flow):
                    index += 1
                    continue
            index += 1
            if rule.action == RuleAction.NOP:
                continue
            if rule.action == RuleAction.GOTO:
                target = rule.goto if rule.goto is not None else rule.priority + 1
                index = next((i for i, r in enumerate(self.rules) if r.priority >= target),
                             len(self.rules))
                trail.append(("goto", rule.priority, target))
                continue
            if rule.action in RULE_ACTION_ERRNO:
                errno = RULE_ACTION_ERRNO[rule.action]
                trail.append(("action", rule.priority, rule.action.value, errno))
                return RouteResult(None, errno, rule, None, (), tuple(trail), dst)
            table_id = rule.table if rule.table is not None else 0
            table = self._tables.get(table_id)
            route = table.lookup(dst, tos) if table else None
            if route is None:
                trail.append(("miss", rule.priority, table_id, table is None))
                continue
            if route.type == RouteType.THROW:
                trail.append(("throw", rule.priority, table_id, route))
                continue
            if (
                rule.suppress_prefixlength is not None
                and route.dst.prefixlen <= rule.suppress_prefixlength
            ):
                trail.append(("suppressed", rule.priority, table_id, route,
                              rule.suppress_prefixlength))
                continue
            trail.append(("hit", rule.priority, table_id, route))
            if route.type in ROUTE_TYPE_ERRNO:
                errno = ROUTE_TYPE_ERRNO[route.type]
                return RouteResult(route, errno, rule, table_id, (), tuple(trail), dst)
            # By identity: the tables hold every route as long as this Fib lives.
            paths = self._paths.get(id(route))
            if paths is None:
                paths = self._paths[id(route)] = _paths(route)
            return RouteResult(route, None, rule, table_id, paths, tuple(trail), dst)
        trail.append(("none",))
        return RouteResult(None, NO_ROUTE_ERRNO, None, None, (), tuple(trail), dst)

    def local_type(self, addr: IPAddress, dev: str | None = None) -> RouteType:
        """inet_dev_addr_type(): the address's type per table local (what addrtype tests)."""
        if addr.version == 4:
            if int(addr) == 0 or int(addr) == 0xFFFFFFFF:
                return RouteType.BROADCAST
            if addr.is_multicast:
                return RouteType.MULTICAST
        table = self._tables.get(TABLE_LOCAL)
        route = table.lookup(addr) if table else None
        if route is not None and (dev is None or route.dev == dev):
            return route.type
        return RouteType.UNICAST

    def has_address(self, addr: IPAddress) -> bool:
        """Whether `addr` is configured on one of the node's interfaces."""
        return any(a.ip == addr for a in self._addresses)

    def is_local(self, addr: IPAddress) -> bool:
        return self.local_type(addr) == RouteType.LOCAL

    def select_source(self, dev: str | None, dst: IPAddress | None, scope: Scope) -> IPAddress | None:
        """inet_select_addr(): a primary address on `dev` within `scope`, preferring one whose
        subnet holds `dst`; otherwise the first suitable non-link-scope address of any device."""
        fallback: IPAddress | None = None
        for addr, ip, network in self._by_dev.get(dev or "", ()):
            if addr.secondary or addr.scope > scope:
                continue
            if dst is None or dst in network:
                return ip
            if fallback is None:
                fallback = ip
        if fallback is not None:
            return fallback
        # Kernel order is device order, with lo first; our address list keeps the file order.
        for addr in self._addresses:
            if not addr.secondary and addr.scope != Scope.LINK and addr.scope <= scope:
                return addr.ip
        return None

    def route_source(self, result: RouteResult, dst: IPAddress) -> IPAddress | None:
        """The source address connect() picks for this route (fib_result_prefsrc)."""
        route = result.route
        if route is None:
            return None
        if route.prefsrc is not None:
            return route.prefsrc
        if route.type in (RouteType.LOCAL, RouteType.BROADCAST):
            # ip_route_output_key_hash_rcu: a local destination is its own source.
            return dst
        hop = route.nexthops[0] if route.nexthops else NextHop()
        # fib_check_nh: a gatewayed next hop has scope link, a direct one scope host.
        scope = Scope.LINK if hop.gateway is not None else Scope.HOST
        return self.select_source(hop.dev, hop.gateway, scope)

def _paths(route: Route) -> tuple[tuple[NextHop, float], ...]:
    if not route.nexthops:
        return ((NextHop(), 1.0),)
    total = sum(max(h.weight, 1) for h in route.nexthops)
    return tuple((h, max(h.weight, 1) / total) for h in route.nexthops)


def _has_selectors(rule: PolicyRule) -> bool:
    return (rule.src is not None or rule.dst is not None or rule.iif is not None
            or rule.oif is not None or rule.fwmark is not None or rule.tos != 0
            or rule.ipproto is not None or rule.sport is not None or rule.dport is not None
            or rule.uidrange is not None or rule.l3mdev or rule.invert)


def _in(net: IPNetwork | None, addr: IPAddress | None) -> bool:
    if net is None:
        return True
    if addr is None:
        # An unbound socket looks up with saddr 0.0.0.0: only a /0 selector covers it.
        return net.prefixlen == 0
    return addr.version == net.version and addr in net


class _Flow(NamedTuple):
    """The flowi fields policy rules select on."""

    dst: IPAddress
    src: IPAddress | None
    iif: str | None
    oif: str | None
    mark: int
    tos: int
    proto: int | None
    sport: int | None
    dport: int | None
    uid: int


def _in_range(bounds: tuple[int, int] | None, value: int | None) -> bool:
    return bounds is None or (value is not None and bounds[0] <= value <= bounds[1])


def _rule_matches(rule: PolicyRule, f: _Flow) -> bool:
    """fib_rule_match() + fib4_rule_match(): every selector must hold; `not` inverts the
    result. An `l3mdev` rule needs a VRF device, which is not modelled: it never matches."""
    ok = (
        _in(rule.src, f.src)
        and _in(rule.dst, f.dst)
        and (rule.iif is None or rule.iif == f.iif)
        and (rule.oif is None or rule.oif == f.oif)
        and (rule.fwmark is None or (f.mark & rule.fwmask) == rule.fwmark)
        and (rule.tos == 0 or rule.tos == f.tos)
        and (rule.ipproto is None or rule.ipproto == f.proto)
        and _in_range(rule.sport, f.sport)
        and _in_range(rule.dport, f.dport)
        and _in_range(rule.uidrange, f.uid)
        and not rule.l3mdev
    )
    return ok != rule.invert


def _say(entry: tuple[object, ...], dst: IPAddress | None) -> str:
    kind = entry[0]
    if kind == "none":
        return f"no rule produced a route → {NO_ROUTE_ERRNO}"
    prio = entry[1]
    if kind == "goto":
        return f"rule {prio}: goto {entry[2]}"
    if kind == "action":
        return f"rule {prio}: {entry[2]} → {entry[3]}"
    table = table_name(int(str(entry[2])))
    if kind == "miss":
        return f"rule {prio}: lookup {table}: " + (
            "table is empty" if entry[3] else f"no route covers {dst}")
    route = entry[3]
    assert isinstance(route, Route)
    if kind == "throw":
        return f"rule {prio}: lookup {table}: throw {route.dst}"
    if kind == "suppressed":
        return (f"rule {prio}: lookup {table}: {route.dst} suppressed (prefix length <= "
                f"{entry[4]})")
    return f"rule {prio}: lookup {table}: {describe_route(route)}"


def table_name(table_id: int) -> str:
    return {255: "local", 254: "main", 253: "default"}.get(table_id, str(table_id))


def describe_route(route: Route) -> str:
    """A route in `ip route` words, for explanations (`ip -j` input keeps JSON as raw)."""
    if route.raw and not route.raw.lstrip().startswith("{"):
        return route.raw
    parts: list[str] = []
    if route.type != RouteType.UNICAST:
        parts.append(route.type.value)
    parts.append("default" if route.dst.prefixlen == 0 else str(route.dst))
    for hop in route.nexthops[:1]:
        if hop.gateway is not None:
            parts.append(f"via {hop.gateway}")
        if hop.dev:
            parts.append(f"dev {hop.dev}")
    if route.prefsrc is not None:
        parts.append(f"src {route.prefsrc}")
    if route.metric:
        parts.append(f"metric {route.metric}")
    return " ".join(parts)

