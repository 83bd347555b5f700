"""Route lookup equals a brute-force oracle over random tables and policy rules."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st

from netsleuth.datapath.fib import NO_ROUTE_ERRNO, ROUTE_TYPE_ERRNO, RULE_ACTION_ERRNO, Fib
from netsleuth.model.net import (
    NextHop,
    PolicyRule,
    Route,
    RouteType,
    RuleAction,
    default_policy_rules,
)

# A small address space makes overlaps (the interesting cases) frequent.
BASE = int(IPv4Address("10.0.0.0"))
addresses = st.integers(0, 255).map(lambda n: IPv4Address(BASE + n))
TABLES = (254, 255, 100, 200)


@st.composite
def networks(draw: st.DrawFn) -> IPv4Network:
    length = draw(st.sampled_from([0, 24, 25, 26, 28, 30, 32]))
    addr = draw(addresses)
    return IPv4Network(f"{addr}/{length}", strict=False)


@st.composite
def routes(draw: st.DrawFn) -> Route:
    rtype = draw(st.sampled_from([RouteType.UNICAST] * 4 + [
        RouteType.LOCAL, RouteType.BLACKHOLE, RouteType.UNREACHABLE, RouteType.PROHIBIT,
        RouteType.THROW]))
    hops = (NextHop(dev=draw(st.sampled_from(["eth0", "eth1"]))),) \
        if rtype == RouteType.UNICAST else ()
    return Route(dst=draw(networks()), type=rtype, table=draw(st.sampled_from(TABLES)),
                 nexthops=hops, metric=draw(st.integers(0, 3)))


@st.composite
def rules(draw: st.DrawFn) -> PolicyRule:
    action = draw(st.sampled_from([RuleAction.LOOKUP] * 5 + [
        RuleAction.UNREACHABLE, RuleAction.PROHIBIT, RuleAction.BLACKHOLE, RuleAction.NOP]))
    return PolicyRule(
        priority=draw(st.integers(1, 40000)),
        action=action,
        table=draw(st.sampled_from(TABLES)) if action == RuleAction.LOOKUP else None,
        dst=draw(st.none() | networks()),
        fwmark=draw(st.none() | st.sampled_from([1, 2])),
        invert=draw(st.booleans()),
    )


def oracle(rts: list[Route], rls: list[PolicyRule], dst: IPv4Address, mark: int) -> tuple[
        str | None, Route | None]:
    for rule in sorted(rls, key=lambda r: r.priority):
        selected = (rule.dst is None or dst in rule.dst) and (
            rule.fwmark is None or mark == rule.fwmark)
        if selected == rule.invert:
            continue
        if rule.action == RuleAction.NOP:
            continue
        if rule.action != RuleAction.LOOKUP:
            return RULE_ACTION_ERRNO[rule.action], None
        covering = [r for r in rts if r.table == rule.table and dst in r.dst]
        if not covering:
            continue
        longest = max(r.dst.prefixlen for r in covering)
        best = min((r for r in covering if r.dst.prefixlen == longest), key=lambda r: r.metric)
        if best.type == RouteType.THROW:
            continue
        return ROUTE_TYPE_ERRNO.get(best.type), best
    return NO_ROUTE_ERRNO, None


@settings(max_examples=400, deadline=None)
@given(st.lists(routes(), max_size=25), st.lists(rules(), max_size=6), addresses,
       st.sampled_from([0, 1, 2]))
def test_lookup_matches_oracle(rts: list[Route], rls: list[PolicyRule], dst: IPv4Address,
                               mark: int) -> None:
    # Priorities must be unique for a deterministic order (the kernel orders equal priorities
    # by insertion, which the model keeps as list order; the oracle sorts stably too).
    fib = Fib(rts, rls, [], 4)
    result = fib.lookup(dst, mark=mark, iif="lo")
    errno, route = oracle(rts, rls, dst, mark)
    assert result.errno == errno
    if route is not None:
        assert result.route is not None
        assert (result.route.dst, result.route.metric, result.route.type) == (
            route.dst, route.metric, route.type)


@settings(max_examples=300, deadline=None)
@given(st.lists(routes(), max_size=25), st.lists(addresses, min_size=1, max_size=12))
def test_repeated_lookups_on_one_fib_match_oracle(rts: list[Route],
                                                  dsts: list[IPv4Address]) -> None:
    # Without selective rules the FIB keeps one result per interval between route boundaries;
    # every lookup on the same Fib, in any order, must still agree with the oracle and speak
    # of its own destination.
    rls = list(default_policy_rules())
    fib = Fib(rts, rls, [], 4)
    for dst in dsts + dsts[::-1]:
        result = fib.lookup(dst, iif="lo")
        errno, route = oracle(rts, rls, dst, 0)
        assert result.errno == errno
        assert result.dst == dst
        if route is None:
            assert result.route is None
        else:
            assert result.route is not None
            assert (result.route.dst, result.route.metric, result.route.type) == (
                route.dst, route.metric, route.type)
        if errno == NO_ROUTE_ERRNO:
            assert any(f"no route covers {dst}" in line or "table is empty" in line
                       for line in result.considered)
