"""Trace one packet through one node, in the kernel's order (see `hooks.py`).

The walk is a list of *paths*; a path forks where the kernel's choice is not determined by the
packet (multipath next hops, `-m statistic`, matches that cannot be evaluated). Every path ends
in one Outcome. The errno a local client sees comes from tables taken from the kernel source
and checked against the real kernel by the lab tests (tests/lab/test_kernel_facts.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from ipaddress import IPv4Address, ip_address
from operator import attrgetter
from typing import Final, NamedTuple

from netsleuth.datapath.fib import Fib, RouteResult, describe_route, table_name
from netsleuth.datapath.hooks import (
    CONNTRACK,
    HOOK_TABLES,
    NAT_TABLE,
    REROUTE_AFTER,
    Hook,
    Stage,
)
from netsleuth.datapath.netfilter import CompiledRuleset, EvalContext, TableVerdict
from netsleuth.datapath.packet import PROTO_NUMBERS, ConnState, Packet
from netsleuth.datapath.trace_model import (
    Outcome,
    Step,
    Trace,
    Trail,
    Verdict,
    ready_step,
    trail_steps,
)
from netsleuth.model.net import IPAddress, RouteType, RuleAction, default_policy_rules
from netsleuth.model.netfilter import Ruleset
from netsleuth.model.node import NodeState

# What connect()/sendmsg() of a local client gets back when its packet meets REJECT: the ICMP
# error is delivered to the local socket and converted by icmp_err_convert[] (net/ipv4/icmp.c);
# tcp-reset arrives as a RST. Verified on the real kernel in tests/lab/test_kernel_facts.py.
REJECT_ERRNO: dict[str, str] = {
    "icmp-port-unreachable": "ECONNREFUSED",
    "port-unreach": "ECONNREFUSED",
    "tcp-reset": "ECONNREFUSED",
    "icmp-net-unreachable": "ENETUNREACH",
    "net-unreach": "ENETUNREACH",
    "icmp-host-unreachable": "EHOSTUNREACH",
    "host-unreach": "EHOSTUNREACH",
    "icmp-proto-unreachable": "ENOPROTOOPT",
    "proto-unreach": "ENOPROTOOPT",
    "icmp-net-prohibited": "ENETUNREACH",
    "net-prohib": "ENETUNREACH",
    "icmp-host-prohibited": "EHOSTUNREACH",
    "host-prohib": "EHOSTUNREACH",
    "icmp-admin-prohibited": "EHOSTUNREACH",
    "admin-prohib": "EHOSTUNREACH",
    "icmp6-port-unreachable": "ECONNREFUSED",
    "icmp6-adm-prohibited": "EACCES",
    "icmp6-no-route": "ENETUNREACH",
    "icmp6-addr-unreachable": "EHOSTUNREACH",
}

# ip_error(): the ICMP error a router sends for a received packet it cannot route.
ROUTE_ERRNO_ICMP: dict[str, str | None] = {
    "ENETUNREACH": "icmp-net-unreachable",
    "EHOSTUNREACH": "icmp-host-unreachable",
    "EACCES": "icmp-admin-prohibited",
    "EINVAL": None,  # blackhole: dropped silently
}
# IPv6 (net/ipv6/route.c): no route or an `unreachable` route → ip6_pkt_discard (no-route),
# `prohibit` → ip6_pkt_prohibit (administratively prohibited), `blackhole` → silently.
ROUTE6_ERRNO_ICMP: dict[str, str | None] = {
    "ENETUNREACH": "icmp6-no-route",
    "EHOSTUNREACH": "icmp6-no-route",
    "EACCES": "icmp6-adm-prohibited",
    "EINVAL": None,
}

NO_IP6_RULE = "no ip6-rule (`ip -6 rule`): assuming IPv6's default rules 0/32766 (local, main)"
NO_IP6TABLES = ("no ip6tables-save: no IPv6 netfilter rules known, every built-in chain policy "
                "assumed ACCEPT (IPv6 packets never meet iptables' IPv4 rules)")
CONNTRACK_ASSUMPTION = (
    "first packet of a new connection (ctstate NEW, no conntrack entry yet); "
    "later packets follow the conntrack entry and skip the nat table"
)


# Route types whose packets stay on this host (delivered through lo).
_LOCAL_TYPES: Final = (RouteType.LOCAL, RouteType.BROADCAST)


class _Path(NamedTuple):
    packet: Packet
    weight: float | None
    trail: Trail
    assumptions: tuple[str, ...] = ()
    route: RouteResult | None = None
    next_hop: str | None = None
    masquerade: bool = False

    def add(self, *steps: Step) -> _Path:
        trail = self.trail
        for step in steps:
            trail = (trail, ready_step, step)
        return self.with_(trail=trail)

    def with_(self, **changes: object) -> _Path:
        # Cheaper than NamedTuple._replace (see Packet.with_): paths are copied at every hop.
        values: list[object] = list(self)
        for name, value in changes.items():
            values[_PATH_FIELDS[name]] = value
        return tuple.__new__(_Path, values)


_PATH_FIELDS = {name: i for i, name in enumerate(_Path._fields)}


# What ip_route_me_harder() compares after each table that may re-route (see REROUTE_AFTER):
# a field's value, or a tuple of them.
_REROUTE_TEST: dict[str, Callable[[Packet], object]] = {
    table: attrgetter(*fields) for table, fields in REROUTE_AFTER.items()
}


@lru_cache(maxsize=4096)
def _is_loopback(addr: IPAddress) -> bool:
    return addr.is_loopback  # a property that builds a network test each time


@lru_cache(maxsize=4096)
def _text(addr: IPAddress) -> str:
    return str(addr)  # next hops repeat from trace to trace; str() of an address is slow


def _times(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a * b


class NodeDatapath:
    """A node's FIB and compiled ruleset, built once and reused for many traces."""

    def __init__(self, node: NodeState) -> None:
        self.node = node
        # IPv4 and IPv6 each have their own policy rules (net/ipv4/fib_rules.c,
        # net/ipv6/fib6_rules.c).
        rules6 = node.rules6 if node.rules6 is not None else default_policy_rules(6)
        self.fibs = {4: Fib(node.routes, node.rules, node.addresses, 4),
                     6: Fib(node.routes, rules6, node.addresses, 6)}
        # iptables' rules for IPv4 packets, ip6tables' for IPv6 ones (by `is IPv6` index).
        self._rulesets = (CompiledRuleset(node.ruleset),
                          CompiledRuleset(node.ruleset6 or Ruleset(family=6)))
        # The tables each hook runs, without those neither ruleset has (they accept everything).
        self._tables = {hook: tuple(t for t in HOOK_TABLES[hook] if t == CONNTRACK or any(
            rules.has_table(t) for rules in self._rulesets)) for hook in Hook}
        self._output_tables = self._tables[Hook.OUTPUT]
        self._postrouting_tables = self._tables[Hook.POSTROUTING]
        # Per hook, the evaluation context for IPv4 and for IPv6 packets.
        self._contexts = {hook: (EvalContext(hook.value, self.fibs[4]),
                                 EvalContext(hook.value, self.fibs[6])) for hook in Hook}
        self._has_sysctls = bool(node.sysctls.values)
        # fib4_has_custom_rules(): any policy rule beyond the three defaults turns on the
        # full source validation even with rp_filter off.
        defaults = {(r.priority, r.table) for r in default_policy_rules()}
        self._custom_rules = any((r.priority, r.table) not in defaults
                                 or r.action != RuleAction.LOOKUP for r in node.rules)

    # -- public -----------------------------------------------------------------------------

    def trace(
        self,
        *,
        dst: IPAddress,
        dport: int | None = None,
        proto: str = "tcp",
        src: IPAddress | None = None,
        iif: str | None = None,
        sport: int | None = None,
        mark: int = 0,
    ) -> Trace:
        proto = proto.lower()
        packet = Packet(src=src, dst=dst, proto=proto, sport=sport, dport=dport, iif=iif, mark=mark)
        fib = self.fibs[dst.version]
        assumptions = [CONNTRACK_ASSUMPTION, *self.node.assumptions]
        if dst.version == 6:
            if self.node.rules6 is None:
                assumptions.append(NO_IP6_RULE)
            if self.node.ruleset6 is None:
                assumptions.append(NO_IP6TABLES)
        unreached: tuple[Step, ...] = ()
        if iif is None:
            outcomes, unreached = self._local_out(packet, fib)
            origin = "host" if src is None else f"host ({src})"
        else:
            outcomes = self._received(packet, fib)
            origin = f"{src}@{iif}"
        extra = sorted({a for o in outcomes for a in o.assumptions if a not in assumptions})
        return Trace(self.node.name, origin, packet, tuple(outcomes),
                     tuple(assumptions + extra), unreached)

    # -- locally generated -------------------------------------------------------------------

    def _local_out(self, packet: Packet, fib: Fib) -> tuple[list[Outcome], tuple[Step, ...]]:
        # ip_route_connect(): the route is chosen when the socket connects, before OUTPUT.
        result = _lookup(fib, packet, "lo")
        if not result.ok:
            path = _Path(packet, 1.0, (None, _route_step, Stage.ROUTE, result, packet))
            unreached = self._never_reached(packet)
            return [_end(path, Verdict.UNROUTABLE, result.errno)], unreached
        src = packet.src or fib.route_source(result, packet.dst)
        if packet.src is None and src is not None and fib.selective:
            # ip_route_connect(): with the source now chosen, the route is looked up again;
            # policy rules on that source (`from`) apply to this second lookup (without
            # selective rules it finds the same route).
            again = _lookup(fib, packet.with_(src=src), "lo")
            if again.route != result.route or not again.ok:
                if not again.ok:
                    path = _Path(packet.with_(src=src), 1.0,
                                 (None, _route_step, Stage.ROUTE, again, packet.with_(src=src)))
                    return [_end(path, Verdict.UNROUTABLE, again.errno)], ()
                result = again
        outcomes: list[Outcome] = []
        for path in self._routed(_Path(packet.with_(src=src), 1.0, None), result, Stage.ROUTE):
            outcomes.extend(self._output(path, fib))
        return outcomes, ()

    def _routed(self, path: _Path, result: RouteResult, stage: Stage) -> list[_Path]:
        """One path per next hop of the chosen route (multipath splits by weight)."""
        route = result.route
        assert route is not None
        local = route.type in _LOCAL_TYPES
        multipath = len(result.paths) > 1
        paths = []
        for hop, share in result.paths:
            packet = path.packet.with_(oif="lo" if local else hop.dev)
            nh = None if local else _text(hop.gateway or packet.dst)
            note = f"multipath: next hop {nh} share {share:.3g}" if multipath else ""
            paths.append(tuple.__new__(_Path, (
                packet, _times(path.weight, share),
                (path.trail, _route_step, stage, result, packet, note),
                path.assumptions, result, nh, path.masquerade)))
        return paths

    def _output(self, path: _Path, fib: Fib, start: int = 0) -> list[Outcome]:
        """OUTPUT tables from `start` on, then POSTROUTING and delivery."""
        tables = self._output_tables
        if start == len(tables):
            return self._postrouting(path, fib)
        table = tables[start]
        outcomes: list[Outcome] = []
        changed = _REROUTE_TEST.get(table)
        for p in self._run_table(Hook.OUTPUT, table, path, outcomes):
            # ip_route_me_harder(): some tables re-route the packet when they changed it; the
            # source address chosen at connect time stays.
            if changed is not None and changed(p.packet) != changed(path.packet):
                for q in self._reroute(p, fib, outcomes):
                    outcomes.extend(self._output(q, fib, start + 1))
            else:
                outcomes.extend(self._output(p, fib, start + 1))
        return outcomes

    def _reroute(self, path: _Path, fib: Fib, outcomes: list[Outcome]) -> list[_Path]:
        p = path.packet
        result = _lookup(fib, p, "lo")
        refused = self._loopback_source_refused(p, result)
        if not result.ok or refused:
            step = _route_step(Stage.REROUTE, result, p)
            if refused:
                step = step._replace(action=refused)
            # The packet is dropped in the hook (NF_DROP_ERR). TCP ignores that transmit error
            # and retransmits the SYN until connect() times out; UDP's sendmsg() returns it.
            errno = None if p.proto == "tcp" else (result.errno or "EINVAL")
            outcomes.append(_end(path.add(step), Verdict.DROPPED, errno))
            return []
        return self._routed(path, result, Stage.REROUTE)

    def _loopback_source_refused(self, p: Packet, result: RouteResult) -> str:
        """__mkroute_output(): a loopback source may leave only through a loopback device,
        unless route_localnet is set on the output device (what kube-proxy relies on for
        NodePorts on 127.0.0.1). The lookup fails with EINVAL."""
        route = result.route
        if p.src is None or route is None or route.type in _LOCAL_TYPES:
            return ""
        dev = route.dev or ""
        if dev == "lo" or not _is_loopback(p.src):
            return ""
        if self._conf("all", "route_localnet", 0) or self._conf(dev, "route_localnet", 0):
            return ""
        return (f"no usable route: EINVAL (source {p.src} may not leave via {dev}: "
                f"net.ipv4.conf.{dev}.route_localnet=0)")

    def _postrouting(self, path: _Path, fib: Fib) -> list[Outcome]:
        outcomes: list[Outcome] = []
        paths = [path]
        for table in self._postrouting_tables:
            paths = [q for p in paths for q in self._run_table(Hook.POSTROUTING, table, p, outcomes)]
        for p in paths:
            route = p.route
            if route is not None and route.type in _LOCAL_TYPES:
                outcomes.extend(self._loopback_in(p, fib))
            else:
                outcomes.append(self._transmit(p, Verdict.SENT))
        return outcomes

    def _loopback_in(self, path: _Path, fib: Fib) -> list[Outcome]:
        """A locally addressed packet loops back through lo: PREROUTING and INPUT again, but
        the nat table is not consulted, because the connection's NAT bindings were made on the
        way out (nf_nat_inet_fn skips a conntrack whose manip for that hook is initialized)."""
        packet = path.packet.with_(iif="lo")
        note = Step(Stage.TRANSMIT, "", "", "", "looped back via lo", packet,
                    detail=("nat PREROUTING/INPUT are skipped: the NAT bindings already exist",))
        paths = [path.add(note).with_(packet=packet)]
        outcomes: list[Outcome] = []
        for hook in (Hook.PREROUTING, Hook.INPUT):
            for table in self._tables[hook]:
                if table == NAT_TABLE:
                    continue
                paths = [q for p in paths for q in self._run_table(hook, table, p, outcomes)]
        for p in paths:
            outcomes.append(self._deliver(p))
        return outcomes

    def _never_reached(self, packet: Packet) -> tuple[Step, ...]:
        """What nat OUTPUT would have done had the route lookup succeeded."""
        is6 = type(packet.dst) is not IPv4Address
        ctx = self._contexts[Hook.OUTPUT][is6]
        seen: dict[tuple[str, str], Step] = {}
        rules = self._rulesets[is6]
        for verdict in rules.walk(NAT_TABLE, ctx.hook, packet.with_(tracked=True), ctx):
            for step in verdict.steps:
                if not step.rule.startswith("policy "):
                    seen.setdefault((step.chain, step.rule), step)
        return tuple(seen.values())

    # -- received on an interface ------------------------------------------------------------

    def _received(self, packet: Packet, fib: Fib) -> list[Outcome]:
        outcomes: list[Outcome] = []
        paths = [_Path(packet, 1.0, None)]
        for table in self._tables[Hook.PREROUTING]:
            paths = [q for p in paths for q in self._run_table(Hook.PREROUTING, table, p, outcomes)]
        for path in paths:
            outcomes.extend(self._route_input(path, fib))
        return outcomes

    def _route_input(self, path: _Path, fib: Fib) -> list[Outcome]:
        p = path.packet
        iif = p.iif or ""
        result = _lookup(fib, p, iif)
        step = _route_step(Stage.ROUTE, result, p)
        forwarding, assumed = self._forwarding(iif, p.dst.version)
        assumptions = path.assumptions + ((assumed,) if assumed else ())
        if not result.ok:
            if p.dst.version == 6:
                # ip6_pkt_drop() sends its error whether the node forwards or not (checked in
                # tests/lab/test_ipv6.py).
                icmp = ROUTE6_ERRNO_ICMP.get(result.errno or "")
            else:
                icmp = ROUTE_ERRNO_ICMP.get(result.errno or "")
                if not forwarding:
                    # ip_error(): a device that does not forward sends no ICMP error.
                    icmp = None
            path = path.add(step).with_(assumptions=assumptions)
            if icmp is not None:
                reached, steps = self._error_reply(p, icmp)
                path = path.add(*steps)
                if not reached:
                    icmp = None
            return [_end(path, Verdict.UNROUTABLE, None, icmp=icmp)]
        route = result.route
        assert route is not None
        local_in = route.type in _LOCAL_TYPES
        # fib_validate_source(): the reverse lookup runs "from" the forward route's output
        # device, or from lo for local delivery.
        rpf = self._validate_source(p, fib, iif, "lo" if local_in else (route.dev or "lo"))
        if rpf is not None:
            return [_end(path.add(step, rpf), Verdict.DROPPED, None)]
        if local_in:
            local = path.add(step).with_(route=result)
            outcomes: list[Outcome] = []
            paths = [local]
            for table in self._tables[Hook.INPUT]:
                paths = [q for x in paths for q in self._run_table(Hook.INPUT, table, x, outcomes)]
            return outcomes + [self._deliver(x) for x in paths]
        if not forwarding:
            # ip_route_input_slow(): !IN_DEV_FORWARD → no_route; ip_error() then drops it
            # without an ICMP error because the device does not forward. IPv6: ip6_forward()
            # drops it silently too.
            switch = ("net.ipv6.conf.all.forwarding=0" if p.dst.version == 6
                      else "net.ipv4.ip_forward=0")
            dropped = Step(Stage.ROUTE, "", "", "",
                           f"dropped: forwarding is disabled on {iif} ({switch})", p)
            return [_end(path.add(step, dropped).with_(assumptions=assumptions),
                         Verdict.DROPPED, None)]
        outcomes = []
        for fpath in self._routed(path.with_(assumptions=assumptions), result, Stage.ROUTE):
            paths = [fpath]
            for table in self._tables[Hook.FORWARD]:
                paths = [q for x in paths for q in self._run_table(Hook.FORWARD, table, x, outcomes)]
            for table in self._tables[Hook.POSTROUTING]:
                paths = [
                    q for x in paths for q in self._run_table(Hook.POSTROUTING, table, x, outcomes)
                ]
            outcomes.extend(self._transmit(x, Verdict.FORWARDED) for x in paths)
        return outcomes

    def _validate_source(self, p: Packet, fib: Fib, iif: str, reverse_iif: str) -> Step | None:
        """fib_validate_source() (net/ipv4/fib_frontend.c): martian sources and reverse-path
        filtering. Returns the step that drops the packet, or None."""
        if p.src is None or p.src.version == 6:
            # IPv6 routing has neither rp_filter nor this source validation: reverse-path
            # checks for IPv6 are netfilter's (the rpfilter match, nft `fib`) alone.
            return None
        rpf = max(self._conf("all", "rp_filter", 0), self._conf(iif, "rp_filter", 0))
        accept_local = bool(self._conf("all", "accept_local", 0)
                            or self._conf(iif, "accept_local", 0))
        if rpf == 0 and not self._custom_rules:
            # The fast path: only a source that is one of this host's own addresses is
            # refused (inet_lookup_ifaddr_rcu), unless accept_local.
            if not accept_local and fib.has_address(p.src):
                return Step(Stage.ROUTE, "", "", "", f"dropped: martian source {p.src} (an "
                            "address of this host)", p)
            return None
        src_mark = self._conf("all", "src_valid_mark", 0) or self._conf(iif, "src_valid_mark", 0)
        back = fib.lookup(p.src, src=p.dst, iif=reverse_iif, mark=p.mark if src_mark else 0)
        if not back.ok or back.route is None:
            if rpf:
                return Step(Stage.ROUTE, "", "", "", f"dropped by rp_filter={rpf}: no route "
                            f"back to {p.src}", p, detail=back.considered)
            return None
        route = back.route
        if route.type != RouteType.UNICAST and not (route.type == RouteType.LOCAL and accept_local):
            return Step(Stage.ROUTE, table_name(back.table or 0), "", describe_route(route),
                        f"dropped: martian source {p.src} (its route is {route.type.value})", p,
                        route.source)
        if iif in {h.dev for h, _ in back.paths}:
            return None
        if rpf == 1:
            return Step(Stage.ROUTE, table_name(back.table or 0), "", describe_route(route),
                        f"dropped by rp_filter=1: the route back to {p.src} leaves via "
                        f"{route.dev}, not {iif}", p, route.source)
        return None

    def _forwarding(self, iif: str, family: int) -> tuple[bool, str]:
        if not self._has_sysctls:
            return True, "no sysctl evidence: assuming IP forwarding is enabled (as Kubernetes requires)"
        if family == 6:
            # ip6_forward(): one switch for the whole namespace, off by default, and independent
            # of IPv4's (a dual-stack node needs both).
            value = self.node.sysctls.get("net.ipv6.conf.all.forwarding")
            if value is None:
                return True, ("net.ipv6.conf.all.forwarding not in the sysctl evidence: assuming "
                              "enabled (as dual-stack Kubernetes requires)")
            return value.strip() != "0", ""
        key = f"net.ipv4.conf.{iif.replace('.', '/')}.forwarding"
        value = self.node.sysctls.get(key)
        if value is None:
            value = self.node.sysctls.get("net.ipv4.ip_forward") or self.node.sysctls.get(
                "net.ipv4.conf.all.forwarding")
        if value is None:
            return True, "net.ipv4.ip_forward not in the sysctl evidence: assuming enabled"
        return value.strip() != "0", ""

    def _conf(self, dev: str, key: str, default: int) -> int:
        return self.node.sysctls.get_int(f"net.ipv4.conf.{dev.replace('.', '/')}.{key}", default)

    # -- shared ------------------------------------------------------------------------------

    def _run_table(self, hook: Hook, table: str, path: _Path, ended: list[Outcome]) -> list[_Path]:
        """Run one table at one hook; verdicts that end the packet go to `ended`. `table` is
        one the ruleset has (see `self._tables`)."""
        packet = path.packet
        if table == CONNTRACK:
            return [path.with_(packet=packet.with_(tracked=True))]
        if table == NAT_TABLE and (packet.ct_state == ConnState.UNTRACKED or packet.is_error):
            # Untracked packets skip NAT; an error about an existing connection is translated
            # by that connection's bindings (nf_nat_icmp_reply_translation), not by the chains.
            return [path]
        is6 = type(packet.dst) is not IPv4Address
        ctx = self._contexts[hook][is6]
        go_on: list[_Path] = []
        for v in self._rulesets[is6].walk(table, ctx.hook, packet, ctx, path.trail):
            p = _after(path, v)
            if v.verdict == "ACCEPT":
                go_on.append(p)
            elif v.verdict == "REJECT":
                ended.append(self._rejected(p, v))
            elif v.verdict == "DROP":
                ended.append(self._dropped(p))
            else:  # QUEUE/NFQUEUE: a userspace program decides
                note = f"{v.verdict}: a userspace program decides the packet's fate"
                ended.append(_end(p.with_(weight=None, assumptions=p.assumptions + (note,)),
                                  Verdict.DROPPED, None))
        return go_on

    def _rejected(self, p: _Path, v: TableVerdict) -> Outcome:
        kind = v.reject_with or "icmp-port-unreachable"
        local = p.packet.iif is None
        if p.packet.is_error:
            # REJECT never answers an ICMP error or a RST (icmp_send, nf_send_reset).
            return _end(p, Verdict.DROPPED, None)
        # REJECT drops the packet (NF_DROP) after sending the error: a local UDP/ICMP
        # sendmsg() fails with EPERM at once; the ICMP error only reaches the socket later.
        immediate = "EPERM" if local and p.packet.proto != "tcp" else None
        reached, steps = self._error_reply(p.packet, kind)
        p = p.add(*steps)
        if not reached:
            return _end(p, Verdict.DROPPED, immediate)
        errno = immediate or (REJECT_ERRNO.get(kind) if local else None)
        return _end(p, Verdict.REJECTED, errno, icmp=kind)

    def _error_reply(self, orig: Packet, kind: str) -> tuple[bool, tuple[Step, ...]]:
        """Follow the ICMP error (or TCP RST) the node sends back about `orig`: it is a
        locally generated packet, routed and filtered by OUTPUT like any other (icmp_send,
        nf_send_reset). Returns whether it reaches the client, and the steps that decide."""
        if orig.src is None:
            return True, ()
        fib = self.fibs[orig.src.version]
        rst = kind == "tcp-reset"
        # icmp_send(): answer from the original destination when it is a local address,
        # otherwise from what the route back chooses.
        err = Packet(
            src=orig.dst if fib.is_local(orig.dst) else None, dst=orig.src,
            proto="tcp" if rst else ("icmpv6" if orig.dst.version == 6 else "icmp"),
            sport=orig.dport if rst else None,
            dport=orig.sport if rst else None, ct_state=ConnState.RELATED, is_error=True,
        )
        result = _lookup(fib, err, "lo")
        step = _route_step(Stage.ROUTE, result, err)
        label = f"{kind} back to {orig.src}"
        if not result.ok or result.route is None:
            return False, (step._replace(action=f"{label}: no route ({result.errno})"),)
        local = result.route.type in _LOCAL_TYPES
        hop = result.paths[0][0]
        err = err.with_(src=err.src or fib.route_source(result, err.dst),
                        oif="lo" if local else hop.dev)
        hooks = [Hook.OUTPUT, Hook.POSTROUTING] + ([Hook.PREROUTING, Hook.INPUT] if local else [])
        paths = [_Path(err, 1.0, (None, ready_step, step._replace(action=f"{label}: route found")))]
        lost: list[Outcome] = []
        for hook in hooks:
            if hook == Hook.PREROUTING:
                paths = [x.with_(packet=x.packet.with_(iif="lo")) for x in paths]
            for table in self._tables[hook]:
                paths = [q for x in paths for q in self._run_table(hook, table, x, lost)]
        if paths:
            return True, trail_steps(paths[0].trail)
        blocked = lost[0].steps if lost else ()
        note = Step(Stage.TRANSMIT, "", "", "", f"{label} is dropped on its way: the client "
                    "never hears of the REJECT", err)
        return False, (*blocked, note)

    def _dropped(self, p: _Path) -> Outcome:
        # A locally generated TCP SYN dropped by OUTPUT is retransmitted until connect() times
        # out; for UDP/ICMP, sendmsg() itself returns the hook's error, EPERM.
        local = p.packet.iif is None
        errno = "EPERM" if local and p.packet.proto != "tcp" else None
        return _end(p, Verdict.DROPPED, errno)

    def _deliver(self, p: _Path) -> Outcome:
        return _end(p.with_(trail=(p.trail, _deliver_step, p.packet)), Verdict.DELIVERED_LOCAL,
                    None)

    def _transmit(self, p: _Path, verdict: Verdict) -> Outcome:
        return _end(p.with_(trail=(p.trail, _transmit_step, p.packet, p.next_hop)), verdict,
                    None, interface=p.packet.oif, next_hop=p.next_hop)


def _deliver_step(packet: Packet) -> Step:
    return Step(Stage.DELIVER, "", "", "", f"delivered to a local socket on "
                f"{packet.endpoint('dst')}", packet)


def _transmit_step(packet: Packet, next_hop: str | None) -> Step:
    return Step(Stage.TRANSMIT, "", "", "", f"sent out {packet.oif} to next hop {next_hop}",
                packet)


def _after(path: _Path, v: TableVerdict) -> _Path:
    weight = path.weight
    return tuple.__new__(_Path, (
        v.packet, None if weight is None or v.weight is None else weight * v.weight, v.trail,
        path.assumptions + v.assumptions if v.assumptions else path.assumptions,
        path.route, path.next_hop, path.masquerade or "masquerade" in v.nat))


def _end(
    p: _Path,
    verdict: Verdict,
    errno: str | None,
    *,
    icmp: str | None = None,
    interface: str | None = None,
    next_hop: str | None = None,
) -> Outcome:
    return Outcome(p.weight, verdict, errno, p.packet, p.trail, p.masquerade, interface,
                   next_hop, icmp, p.assumptions)


def _lookup(fib: Fib, p: Packet, iif: str) -> RouteResult:
    return fib.lookup(p.dst, src=p.src, iif=iif, mark=p.mark, proto=PROTO_NUMBERS.get(p.proto),
                      sport=p.sport, dport=p.dport)


def _route_step(stage: Stage, result: RouteResult, packet: Packet, note: str = "") -> Step:
    if result.ok:
        route = result.route
        assert route is not None
        kind = route.type.value
        # A route that was found speaks for itself (its table and rule are named); the rules
        # tried are spelled out only when the lookup fails.
        return Step(stage, table_name(result.table or 0),
                    f"rule {result.rule.priority}" if result.rule else "",
                    describe_route(route), f"route found ({kind})", packet, route.source,
                    (note,) if note else ())
    route = result.route
    return Step(stage, table_name(result.table) if result.table is not None else "",
                "", describe_route(route) if route else "",
                f"no usable route: {result.errno}", packet,
                route.source if route else None, result.considered)


def trace_packet(
    node: NodeState,
    *,
    dst: IPAddress | str,
    dport: int | None = None,
    proto: str = "tcp",
    src: IPAddress | str | None = None,
    iif: str | None = None,
    sport: int | None = None,
    mark: int = 0,
) -> Trace:
    """Trace one packet on `node`: `iif=None` means locally generated (the host itself)."""
    return NodeDatapath(node).trace(
        dst=ip_address(dst) if isinstance(dst, str) else dst,
        dport=dport,
        proto=proto,
        src=ip_address(src) if isinstance(src, str) else src,
        iif=iif,
        sport=sport,
        mark=mark,
    )
