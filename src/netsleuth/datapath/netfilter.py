"""iptables semantics: rules compiled once into evaluators, chains walked with forks.

A rule's matches are compiled into one yes/no test (addresses, ports, marks, conntrack state,
...) and, where needed, a *weight*: a probability (`-m statistic`), or UNKNOWN when the
simulator cannot evaluate a match (an ipset without its contents, `-m owner`, an unparsed
listing column). Targets are compiled into functions returning what happens next, or, when they
leave the packet alone (verdicts, jumps, LOG), into their effect itself. The walker keeps an
explicit call stack (jump pushes, goto does not, RETURN and the end of a user chain pop:
ipt_do_table in net/ipv4/netfilter/ip_tables.c) and forks the walk wherever a weight is not
0 or 1. Steps are recorded as a trail and worded only when read (trace_model.Trail).

Long dispatch chains (kube-proxy's KUBE-SERVICES with 10k+ rules) are indexed by exact
destination address and by destination port; rules that fit neither index stay in an ordered
fallback list, and the walk visits the merge of both in rule order, so first-match semantics are
exactly those of a linear scan.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Any, NamedTuple

from netsleuth.datapath.fib import Fib
from netsleuth.datapath.packet import PROTO_NUMBERS, ConnState, Packet
from netsleuth.datapath.trace_model import Step, Trail, trail_steps
from netsleuth.model.net import IPAddress, RouteType, Scope
from netsleuth.model.netfilter import Chain, Match, Option, Rule, Ruleset, Target

UNKNOWN = -1.0  # a match weight the simulator cannot decide
MAX_DEPTH = 64  # chain nesting: the kernel refuses loops; this bounds a broken ruleset
MAX_BRANCHES = 256  # forks per table walk before the rest is reported as truncated
INDEX_THRESHOLD = 24  # chains shorter than this are scanned

BoolFn = Callable[[Packet, "EvalContext"], bool]
MatchFn = Callable[[Packet, "EvalContext"], float]


@dataclass(frozen=True, slots=True)
class EvalContext:
    """What a match may consult besides the packet: the hook and the node's local addresses."""

    hook: str
    fib: Fib | None


class Weighed(NamedTuple):
    """A match whose answer is not yes/no: a probability (`-m statistic`) or UNKNOWN."""

    fn: MatchFn
    label: str = ""  # what to name when the answer is UNKNOWN


# -- target results ----------------------------------------------------------------------------


class TargetResult:
    """`kind`: verdict (ACCEPT/DROP/REJECT/QUEUE in `name`), jump, goto, return, continue.

    For NAT targets `nat` says which binding was made and `note` holds only the caveats (an
    address range); the words of the step are made from the rewritten packet when read.
    A plain class, not a NamedTuple: compiled (see setup.py), it is built several times faster.
    """

    __slots__ = ("kind", "name", "nat", "note", "packet", "uncertain")

    def __init__(self, kind: str, packet: Packet, name: str = "", note: str = "", nat: str = "",
                 uncertain: bool = False) -> None:
        self.kind = kind
        self.packet = packet
        self.name = name
        self.note = note
        self.nat = nat  # "dnat", "snat", "masquerade", "redirect" when a NAT binding was made
        self.uncertain = uncertain


TargetFn = Callable[[Packet, "EvalContext"], TargetResult]
# (kind, name, note, uncertain) of a target that leaves the packet as it is: a verdict, jump,
# goto, RETURN, LOG...
Static = tuple[str, str, str, bool]


class CompiledRule(NamedTuple):
    rule: Rule
    test: BoolFn | None  # the yes/no matches together; None: no such match
    weigh: MatchFn | None  # the weighed matches' product (or UNKNOWN); None: none
    unknown: tuple[str, ...]  # labels of the matches that can answer UNKNOWN
    target: TargetFn | None
    static: Static | None  # the target's effect when it does not touch the packet


class TableVerdict:
    """The end of one table walk on one branch. `trail` continues the trail the walk was
    given (see trace_model.Trail); `steps` are this walk's own steps when it was given none.
    A value (nothing changes it once made); a plain class for the reason TargetResult is."""

    __slots__ = ("assumptions", "nat", "packet", "reject_with", "trail", "verdict", "weight")

    def __init__(self, verdict: str, packet: Packet, weight: float | None, trail: Trail,
                 assumptions: tuple[str, ...], reject_with: str | None = None,
                 nat: tuple[str, ...] = ()) -> None:
        self.verdict = verdict  # ACCEPT, DROP, REJECT, QUEUE
        self.packet = packet
        self.weight = weight  # None = depends on an unevaluable match
        self.trail = trail
        self.assumptions = assumptions
        self.reject_with = reject_with
        self.nat = nat

    @property
    def steps(self) -> tuple[Step, ...]:
        return trail_steps(self.trail)


class CompiledChain:
    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.name = chain.name
        self.size = len(chain.rules)
        # Rules compile on first evaluation: a trace touches a handful of a dump's 100k rules.
        self._compiled: list[CompiledRule | None] = [None] * self.size
        self._all = list(range(self.size))
        self._indexed = self.size >= INDEX_THRESHOLD
        self._by_dst: dict[int, list[int]] = defaultdict(list)
        self._by_dport: dict[int, list[int]] = defaultdict(list)
        self._fallback: list[int] = []
        if self._indexed:
            for i, rule in enumerate(chain.rules):
                dst = _exact_dst(rule)
                dport = _exact_dport(rule)
                if dst is not None:
                    self._by_dst[dst].append(i)
                elif dport is not None:
                    self._by_dport[dport].append(i)
                else:
                    self._fallback.append(i)
        self._cache: dict[tuple[int, int | None], list[int]] = {}

    def rule(self, index: int) -> CompiledRule:
        crule = self._compiled[index]
        if crule is None:
            crule = self._compiled[index] = compile_rule(self.chain.rules[index])
        return crule

    def candidates(self, packet: Packet) -> list[int]:
        """Indices of the rules that may match this packet, in rule order."""
        if not self._indexed:
            return self._all
        dst = int(packet.dst)
        by_dst = self._by_dst.get(dst)
        by_dport = self._by_dport.get(packet.dport) if packet.dport is not None else None
        if by_dport is None:
            if by_dst is None:
                return self._fallback  # most packets: no rule names their address or port
            if not self._fallback:
                return by_dst
        key = (dst, packet.dport)
        hit = self._cache.get(key)
        if hit is None:
            hit = list(heapq.merge(self._fallback, by_dst or (), by_dport or ()))
            if len(self._cache) > 65536:
                self._cache.clear()
            self._cache[key] = hit
        return hit


def _exact_dst(rule: Rule) -> int | None:
    for m in rule.matches:
        if m.module == "":
            opt = m.option("-d", "--destination", "--dst")
            if opt is not None and not opt.negated:
                try:
                    net = ip_network(opt.value, strict=False)
                except ValueError:
                    return None  # a dotted or invalid mask: the rule stays in the scan list
                if net.prefixlen == net.max_prefixlen:
                    return int(net.network_address)
    return None


def _exact_dport(rule: Rule) -> int | None:
    for m in rule.matches:
        if m.module in ("tcp", "udp", "sctp"):
            opt = m.option("--dport", "--destination-port")
            if opt is not None and not opt.negated and opt.value.isdigit():
                return int(opt.value)
    return None


class CompiledRuleset:
    """A ruleset compiled for tracing: chains by (table, name)."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        # Per table, chains by name (string keys: this is looked up at every jump).
        self._chains: dict[str, dict[str, CompiledChain | None]] = {
            name: {} for name in ruleset.tables}

    def chain(self, table: str, name: str) -> CompiledChain | None:
        chains = self._chains.get(table)
        if chains is None:
            return None
        try:
            return chains[name]
        except KeyError:
            raw = self.ruleset.chain(table, name)
            compiled = chains[name] = CompiledChain(raw) if raw is not None else None
            return compiled

    def has_table(self, name: str) -> bool:
        return name in self.ruleset.tables

    def walk(
        self, table: str, chain: str, packet: Packet, ctx: EvalContext, trail: Trail = None
    ) -> list[TableVerdict]:
        """Run built-in `chain` of `table` and return every way it can end, in depth-first
        order (where a rule forks, the branch that took it comes first)."""
        start = self.chain(table, chain)
        if start is None:
            return [TableVerdict("ACCEPT", packet, 1.0, trail, ())]
        return _walk(self, table, start, ctx, packet, trail)


# -- the walker --------------------------------------------------------------------------------

# A caller's frame: (chain, its candidate rules, position after the jump, the caller's own).
_Stack = tuple[Any, ...] | None
# A branch waiting to be walked: (chain, candidates, position, call stack, depth, packet,
# weight, trail, assumptions, NAT bindings).
_Branch = tuple[CompiledChain, list[int], int, _Stack, int, Packet, "float | None", Trail,
                tuple[str, ...], tuple[str, ...]]


def _walk(rs: CompiledRuleset, table: str, start: CompiledChain, ctx: EvalContext,
          packet: Packet, trail: Trail) -> list[TableVerdict]:
    """One table walk at one hook, as ipt_do_table (net/ipv4/netfilter/ip_tables.c) runs it:
    a jump pushes the return position, goto does not; RETURN or the end of a user chain pops;
    RETURN or the end of a built-in chain applies its policy. Where a rule forks, the branch
    that took it runs first; the other waits in `work` (depth first)."""
    hook = ctx.hook
    policy = start.chain.policy or "ACCEPT"
    policy_rule = f"policy {policy}"
    results: list[TableVerdict] = []
    forks = 0
    work: list[_Branch] = []
    chain = start
    # The packet's destination changes inside a walk only by DNAT/REDIRECT, which end it, so
    # a chain's candidate rules are chosen once, when the walk enters it.
    cands = start.candidates(packet) if start._indexed else start._all
    pos = 0
    # The call stack as a linked list: (chain, candidates, position, caller's stack).
    stack: _Stack = None
    depth = 0
    weight: float | None = 1.0
    notes: tuple[str, ...] = ()
    nat: tuple[str, ...] = ()
    while True:
        if pos >= len(cands):
            if stack is not None:  # the end of a user chain returns to its caller
                chain, cands, pos, stack = stack
                depth -= 1
                continue
            trail = (trail, Step, hook, table, start.name, policy_rule, policy, packet)
            results.append(TableVerdict(policy, packet, weight, trail, notes, None, nat))
            if not work:
                break
            chain, cands, pos, stack, depth, packet, weight, trail, notes, nat = work.pop()
            continue
        index = cands[pos]
        pos += 1
        crule = chain._compiled[index] or chain.rule(index)
        _rule, test, weigh, _unknown, target, static = crule
        if target is None:
            continue  # a rule without a target only counts packets
        if test is not None and not test(packet, ctx):
            continue
        w = 1.0
        if weigh is not None:
            w = weigh(packet, ctx)
            if w == 0.0:
                continue
            if w != 1.0:
                forks += 1
                if w == UNKNOWN:
                    if forks <= MAX_BRANCHES:
                        work.append((chain, cands, pos, stack, depth, packet, None, trail,
                                     notes + _unknown_notes(crule, matched=False), nat))
                    weight = None
                    notes = notes + _unknown_notes(crule, matched=True)
                else:
                    if forks <= MAX_BRANCHES:
                        # The branch where this rule did not match goes on with the next rule.
                        work.append((chain, cands, pos, stack, depth, packet,
                                     None if weight is None else weight * (1.0 - w),
                                     trail, notes, nat))
                    if weight is not None:
                        weight *= w
        if static is not None:
            # A target that leaves the packet alone: its effect is known at compile time.
            kind, name, note, uncertain = static
            trail = (trail, _static_step, hook, table, chain.name, crule, w, packet)
        else:
            res = target(packet, ctx)
            trail = (trail, _rule_step, hook, table, chain.name, crule, res, w)
            packet = res.packet
            kind, name, note, uncertain = res.kind, res.name, res.note, res.uncertain
            if res.nat:
                nat = (*nat, res.nat)
        if uncertain:
            weight = None
            notes = (*notes, note)
        if kind == "continue":
            continue
        if kind == "jump" or kind == "goto":
            sub = rs.chain(table, name)
            if sub is None:
                notes = (*notes, f"chain {name} ({table}) is not in the evidence; treated as empty")
                continue
            if depth < MAX_DEPTH:
                if kind == "jump":
                    stack = (chain, cands, pos, stack)
                    depth += 1
                chain, pos = sub, 0
                cands = sub.candidates(packet) if sub._indexed else sub._all
                continue
            results.append(TableVerdict("DROP", packet, weight, trail,
                                        (*notes, "chain nesting too deep"), None, nat))
        elif kind == "return":
            if stack is not None:
                chain, cands, pos, stack = stack
                depth -= 1
                continue
            trail = (trail, Step, hook, table, start.name, policy_rule, policy, packet)
            results.append(TableVerdict(policy, packet, weight, trail, notes, None, nat))
        else:
            results.append(TableVerdict(name, packet, weight, trail, notes, note or None, nat))
        if not work:
            break
        chain, cands, pos, stack, depth, packet, weight, trail, notes, nat = work.pop()
    if forks > MAX_BRANCHES:
        more = f"more than {MAX_BRANCHES} paths; the rest were not followed"
        return [TableVerdict(r.verdict, r.packet, None, r.trail, (*r.assumptions, more),
                             r.reject_with, r.nat) for r in results]
    return results


def _static_step(hook: str, table: str, chain: str, crule: CompiledRule, weight: float,
                 packet: Packet) -> Step:
    assert crule.static is not None
    kind, name, note, uncertain = crule.static
    return _rule_step(hook, table, chain, crule,
                      TargetResult(kind, packet, name, note, "", uncertain), weight)


def _rule_step(hook: str, table: str, chain: str, crule: CompiledRule, res: TargetResult,
               weight: float) -> Step:
    rule = crule.rule
    detail = (f"probability {weight:.6g}",) if 0.0 < weight < 1.0 else ()
    return Step(hook, table, chain, rule.raw, _action(res), res.packet, rule.source, detail)


def _unknown_notes(crule: CompiledRule, *, matched: bool) -> tuple[str, ...]:
    what = ", ".join(crule.unknown) or "a match"
    verb = "matched" if matched else "did not match"
    return (f"{crule.rule.source}: {what} cannot be evaluated from the evidence; assumed it {verb}",)


def _action(res: TargetResult) -> str:
    if res.nat:
        return _nat_action(res)
    if res.kind in ("jump", "goto"):
        return f"{res.kind} {res.name}"
    if res.kind == "verdict":
        return res.name + (f" ({res.note})" if res.note else "")
    if res.kind == "return":
        return "RETURN"
    return res.note or "continue"


def _nat_action(res: TargetResult) -> str:
    p = res.packet
    caveat = f" ({res.note})" if res.note else ""
    if res.nat == "dnat":
        return f"DNAT to {p.endpoint('dst')}{caveat}"
    if res.nat == "snat":
        return f"SNAT to {p.endpoint('src')}{caveat}"
    if res.nat == "masquerade":
        return f"MASQUERADE to {p.src} (address of {p.oif})"
    return f"REDIRECT to {p.endpoint('dst')}"


# -- compiling matches -------------------------------------------------------------------------


def compile_rule(rule: Rule) -> CompiledRule:
    preds: list[BoolFn] = []
    weighed: list[Weighed] = []
    for match in rule.matches:
        try:
            for fn in _compile_match(match, rule):
                if isinstance(fn, Weighed):
                    weighed.append(fn)
                else:
                    preds.append(fn)
        except (ValueError, TypeError, IndexError):
            # iptables-restore would have refused the value; a trace that reaches the rule
            # says so instead of guessing (or failing).
            weighed.append(Weighed(_unknown, f"an invalid value in -m {match.module or 'builtin'} "
                                   f"{' '.join(o.name + ' ' + o.value for o in match.options)}"))
    target: TargetFn | None = None
    static: Static | None = None
    if rule.target is not None:
        static = _static_action(rule.target)
        try:
            target = _compile_target(rule.target, rule)
        except (ValueError, TypeError, IndexError):
            target = _invalid_target(rule.target)
    return CompiledRule(rule, _all_of(preds), _product(weighed),
                        tuple(w.label for w in weighed if w.label), target, static)


def _all_of(preds: list[BoolFn]) -> BoolFn | None:
    """One function for a rule's yes/no matches (one call per rule on the hot path)."""
    if not preds:
        return None
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda p, c: a(p, c) and b(p, c)
    if len(preds) == 3:
        a, b, d = preds
        return lambda p, c: a(p, c) and b(p, c) and d(p, c)
    if len(preds) == 4:
        a, b, d, e = preds
        return lambda p, c: a(p, c) and b(p, c) and d(p, c) and e(p, c)
    fns = tuple(preds)
    return lambda p, c: all(f(p, c) for f in fns)


def _product(weighed: list[Weighed]) -> MatchFn | None:
    """The weight of a rule's weighed matches: 0 as soon as one says no, UNKNOWN if one cannot
    tell (and none says no), else the product of the probabilities."""
    if not weighed:
        return None
    if len(weighed) == 1:
        return weighed[0].fn
    fns = tuple(w.fn for w in weighed)

    def product(p: Packet, c: EvalContext) -> float:
        weight = 1.0
        unknown = False
        for fn in fns:
            w = fn(p, c)
            if w == 0.0:
                return 0.0
            if w == UNKNOWN:
                unknown = True
            else:
                weight *= w
        return UNKNOWN if unknown else weight

    return product


def _invalid_target(target: Target) -> TargetFn:
    note = (f"-j {target.name} {' '.join(o.name + ' ' + o.value for o in target.options)}: "
            "an invalid value; its effect is unknown")
    return lambda p, c: TargetResult("continue", p, note=note, uncertain=True)


def _compile_match(match: Match, rule: Rule) -> Iterator[BoolFn | Weighed]:
    compiler = _MATCH_COMPILERS.get(match.module)
    if compiler is None:
        label = f"-m {match.module}" if match.module != "?" else _unparsed_label(match)
        yield Weighed(_unknown, label)
        return
    for opt in match.options:
        fn = compiler(opt, match, rule)
        if fn is None:
            continue
        if fn is _UNKNOWN:
            yield Weighed(_unknown, f"-m {match.module} {opt.name}")
        else:
            yield fn


def _unparsed_label(match: Match) -> str:
    opt = match.option("--unparsed")
    return f"'{opt.value}'" if opt else "an unparsed column"


def _unknown(packet: Packet, ctx: EvalContext) -> float:
    return UNKNOWN


_UNKNOWN = Weighed(_unknown)  # what an option compiler returns for an option it cannot decide


def _neg(fn: BoolFn, negated: bool) -> BoolFn:
    if negated:
        return lambda p, c: not fn(p, c)
    return fn


OptCompiler = Callable[[Option, Match, Rule], BoolFn | Weighed | None]


def _masked(text: str) -> tuple[int, int, int] | None:
    """`a.b.c.d/w.x.y.z` with a mask iptables-save prints in dotted form because it is not
    contiguous (ip_network refuses those): (version, address & mask, mask)."""
    addr, sep, mask = text.partition("/")
    if not sep or "." not in mask:
        return None
    a, m = ip_address(addr), ip_address(mask)
    return a.version, int(a) & int(m), int(m)


def _addr_pred(text: str) -> Callable[[IPAddress | None], bool]:
    dotted = [_masked(part) for part in text.split(",")]
    if all(d is not None for d in dotted):
        pairs = [d for d in dotted if d is not None]
        return lambda a: a is not None and any(
            a.version == v and (int(a) & m) == n for v, n, m in pairs)
    nets = [ip_network(part, strict=False) for part in text.split(",")]
    if len(nets) == 1:
        net = nets[0]
        if net.prefixlen == 0:
            return lambda a: a is not None and a.version == net.version
        lo = int(net.network_address)
        mask = int(net.netmask)
        version = net.version
        return lambda a: a is not None and a.version == version and (int(a) & mask) == lo
    return lambda a: a is not None and any(a.version == n.version and a in n for n in nets)


def _iface_pred(name: str) -> Callable[[str | None], bool]:
    # xt ifname matching: a trailing '+' matches any name with that prefix (even empty).
    if name.endswith("+"):
        prefix = name[:-1]
        return lambda n: (n or "").startswith(prefix)
    return lambda n: n == name


def _proto_num(text: str) -> int | None:
    t = text.lower()
    if t in ("all", "0"):
        return None
    if t.isdigit():
        return int(t)
    if t in ("ipv6-icmp", "icmp6"):
        return 58
    return PROTO_NUMBERS.get(t, -1)


def _addr_test(text: str, field: str) -> BoolFn:
    """The packet's `field` ("src" or "dst") is in one of `text`'s networks."""
    if "," not in text and "/" in text and _masked(text) is None:
        net = ip_network(text, strict=False)
        cls = type(net.network_address)
        lo, mask = int(net.network_address), int(net.netmask)
        # One closure per rule, no nested calls: this runs for nearly every rule a walk visits.
        if field == "src":
            return lambda p, c: type(a := p.src) is cls and (int(a) & mask) == lo
        return lambda p, c: type(a := p.dst) is cls and (int(a) & mask) == lo
    pred = _addr_pred(text)
    if field == "src":
        return lambda p, c: pred(p.src)
    return lambda p, c: pred(p.dst)


def _builtin(opt: Option, match: Match, rule: Rule) -> BoolFn | Weighed | None:
    name = opt.name
    if name in ("-s", "--source", "--src"):
        return _neg(_addr_test(opt.value, "src"), opt.negated)
    if name in ("-d", "--destination", "--dst"):
        return _neg(_addr_test(opt.value, "dst"), opt.negated)
    if name in ("-p", "--protocol"):
        want = _proto_num(opt.value)
        if want is None:
            return _neg(lambda p, c: True, opt.negated)
        names = frozenset(n for n, number in PROTO_NUMBERS.items() if number == want)
        return _neg(lambda p, c: p.proto in names, opt.negated)
    if name in ("-i", "--in-interface"):
        ipred = _iface_pred(opt.value)
        return _neg(lambda p, c: ipred(p.iif), opt.negated)
    if name in ("-o", "--out-interface"):
        opred = _iface_pred(opt.value)
        return _neg(lambda p, c: opred(p.oif), opt.negated)
    if name in ("-f", "--fragment"):
        # A connection's first packet is never a non-first fragment.
        return _neg(lambda p, c: False, opt.negated)
    return _UNKNOWN


def _port_range(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition(":")
    low = int(lo) if lo else 0
    return low, int(hi) if hi else (low if _ == "" else 65535)


def _ports_pred(text: str) -> Callable[[int | None], bool]:
    ranges = [_port_range(part) for part in text.split(",")]
    if len(ranges) == 1:
        low, high = ranges[0]
        return lambda port: port is not None and low <= port <= high
    return lambda port: port is not None and any(lo <= port <= hi for lo, hi in ranges)


def _l4(opt: Option, match: Match, rule: Rule) -> BoolFn | Weighed | None:
    name = opt.name
    if name in ("--dport", "--destination-port", "--dports", "--destination-ports"):
        pred = _ports_pred(opt.value)
        return _neg(lambda p, c: pred(p.dport), opt.negated)
    if name in ("--sport", "--source-port", "--sports", "--source-ports"):
        pred = _ports_pred(opt.value)
        return _neg(lambda p, c: pred(p.sport), opt.negated)
    if name in ("--ports",):
        pred = _ports_pred(opt.value)
        return _neg(lambda p, c: pred(p.sport) or pred(p.dport), opt.negated)
    if name == "--syn":
        # The first packet of a TCP connection is a SYN.
        return _neg(lambda p, c: p.proto == "tcp", opt.negated)
    if name == "--tcp-flags" and len(opt.args) == 2:
        mask = set(opt.args[0].upper().split(","))
        comp = set(opt.args[1].upper().split(","))
        if "ALL" in mask:
            mask = {"SYN", "ACK", "FIN", "RST", "URG", "PSH"}
        syn_only = {"SYN"} & mask
        return _neg(lambda p, c: syn_only == (comp & mask), opt.negated)
    if name in ("--icmp-type", "--icmpv6-type"):
        return _neg(lambda p, c: opt.value in ("echo-request", "8", "any", "128"), opt.negated)
    return _UNKNOWN


def _mark_pred(text: str) -> tuple[int, int]:
    value, _, mask = text.partition("/")
    return int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF


def _mark(opt: Option, match: Match, rule: Rule) -> BoolFn | Weighed | None:
    if opt.name == "--mark":
        value, mask = _mark_pred(opt.value)
        if match.module == "connmark":
            return _neg(lambda p, c: (p.ct_mark & mask) == value, opt.negated)
        return _neg(lambda p, c: (p.mark & mask) == value, opt.negated)
    return _UNKNOWN


ADDRTYPES = {t.value.upper(): t for t in RouteType}


def _addrtype(opt: Option, match: Match, rule: Rule) -> BoolFn | Weighed | None:
    if opt.name in ("--limit-iface-in", "--limit-iface-out"):
        return None  # consulted by the type tests below
    if opt.name not in ("--src-type", "--dst-type"):
        return _UNKNOWN
    types = {ADDRTYPES.get(t.upper()) for t in opt.value.split(",")}
    field = "src" if opt.name == "--src-type" else "dst"
    limit_in = match.option("--limit-iface-in") is not None
    limit_out = match.option("--limit-iface-out") is not None

    def test(p: Packet, c: EvalContext) -> float:
        if c.fib is None:
            return UNKNOWN
        addr = p.src if field == "src" else p.dst
        if addr is None:
            return UNKNOWN
        dev = p.iif if limit_in else p.oif if limit_out else None
        hit = c.fib.local_type(addr, dev) in types
        return 1.0 if hit != opt.negated else 0.0

    # Weighed: without the node's addresses the answer is UNKNOWN.
    return Weighed(test)


def _conntrack(opt: Option, match: Match, rule: Rule) -> BoolFn | Weighed | None:
    name = opt.name
    if name in ("--ctstate", "--state"):
        states = {s.upper() for s in opt.value.split(",")}

        def state_test(p: Packet, c: EvalContext) -> bool:
            if p.ct_state == ConnState.UNTRACKED:
                return "UNTRACKED" in states
            if not p.tracked:
                # Before nf_conntrack_in (the raw table) the skb has no conntrack: xt_conntrack
                # then reports INVALID.
                return "INVALID" in states
            # ctstate DNAT/SNAT test the connection's NAT status bits (IPS_DST_NAT/SRC_NAT).
            return (p.ct_state in states or (p.dnat and "DNAT" in states)
                    or (p.snat and "SNAT" in states))

        return _neg(state_test, opt.negated)
    if name == "--ctdir":
        return _neg(lambda p, c: opt.value.upper() == "ORIGINAL", opt.negated)
    if name == "--ctproto":
        want = _proto_num(opt.value)
        return _neg(lambda p, c: want is None or PROTO_NUMBERS.get(p.proto) == want, opt.negated)
    if name in ("--ctorigdst", "--ctorigsrc"):
        pred = _addr_pred(opt.value)
        if name == "--ctorigdst":
            return _neg(lambda p, c: pred(p.orig_dst or p.dst), opt.negated)
        return _neg(lambda p, c: pred(p.orig_src or p.src), opt.negated)
    if name == "--ctorigdstport":
        pports = _ports_pred(opt.value)
        return _neg(
            lambda p, c: pports(p.orig_dport if p.orig_dport is not None else p.dport),
            opt.negated,
        )
    if name == "--ctstatus":
        # A first packet's connection is unconfirmed, not ASSURED, not SEEN_REPLY.
        statuses = {s.upper() for s in opt.value.split(",")}
        return _neg(lambda p, c: "NONE" in statuses, opt.negated)
    return _UNKNOWN


def _statistic(opt: Option, match: Match, rule: Rule) -> BoolFn | Weighed | None:
    mode = match.option("--mode")
    if opt.name == "--mode":
        return None
    if mode is not None and mode.value == "random" and opt.name == "--probability":
        prob = float(opt.value)
        weight = 1.0 - prob if opt.negated else prob
        return Weighed(lambda p, c: weight)
    if mode is not None and mode.value == "nth" and opt.name == "--every":
        every = int(opt.value)
        weight = 1.0 / every if every > 0 else 0.0
        nth = (1.0 - weight) if opt.negated else weight
        return Weighed(lambda p, c: nth)
    if opt.name == "--packet":
        return None  # which of the n packets: the fork above covers one in n
    return _UNKNOWN


def _always(opt: Option, match: Match, rule: Rule) -> BoolFn | Weighed | None:
    return None


def _recent(opt: Option, match: Match, rule: Rule) -> BoolFn | Weighed | None:
    if opt.name in ("--rcheck", "--update"):
        # A new client has no entry in the recent list (no session-affinity history).
        return _neg(lambda p, c: False, opt.negated)
    if opt.name == "--remove":
        return _neg(lambda p, c: False, opt.negated)
    if opt.name == "--set":
        return _neg(lambda p, c: True, opt.negated)
    return None


def _physdev(opt: Option, match: Match, rule: Rule) -> BoolFn | Weighed | None:
    # A routed packet carries no bridge-port information (no nf_bridge in the skb), so every
    # physdev test fails on it (physdev_mt); bridged paths are not simulated yet.
    return _neg(lambda p, c: False, opt.negated)


def _iprange(opt: Option, match: Match, rule: Rule) -> BoolFn | Weighed | None:
    if opt.name not in ("--src-range", "--dst-range"):
        return _UNKNOWN
    lo_text, _, hi_text = opt.value.partition("-")
    lo, hi = ip_address(lo_text), ip_address(hi_text or lo_text)
    if opt.name == "--src-range":
        return _neg(lambda p, c: p.src is not None and lo <= p.src <= hi, opt.negated)  # type: ignore[operator]
    return _neg(lambda p, c: lo <= p.dst <= hi, opt.negated)  # type: ignore[operator]


def _pkttype(opt: Option, match: Match, rule: Rule) -> BoolFn | Weighed | None:
    if opt.name != "--pkt-type":
        return _UNKNOWN
    want = opt.value.lower()
    return _neg(
        lambda p, c: want == ("multicast" if p.dst.is_multicast else "unicast"), opt.negated
    )


_MATCH_COMPILERS: dict[str, OptCompiler] = {
    "": _builtin,
    "tcp": _l4,
    "udp": _l4,
    "sctp": _l4,
    "icmp": _l4,
    "icmp6": _l4,
    "multiport": _l4,
    "mark": _mark,
    "connmark": _mark,
    "addrtype": _addrtype,
    "conntrack": _conntrack,
    "state": _conntrack,
    "statistic": _statistic,
    "comment": _always,
    "limit": _always,  # first packet: assumed under the limit
    "hashlimit": _always,
    "connlimit": _always,
    "recent": _recent,
    "physdev": _physdev,
    "iprange": _iprange,
    "pkttype": _pkttype,
    "nfacct": _always,
}


# -- compiling targets -------------------------------------------------------------------------

VERDICTS = {"ACCEPT", "DROP", "REJECT", "QUEUE", "NFQUEUE"}
NON_TERMINAL = {
    "LOG", "NFLOG", "ULOG", "TRACE", "AUDIT", "TCPMSS", "CHECKSUM", "DSCP", "TOS", "TTL", "HL",
    "CLASSIFY", "SET", "TEE", "IDLETIMER", "LED", "SECMARK", "CONNSECMARK", "RATEEST",
}


def _static_action(target: Target) -> Static | None:
    """What a target that does not change the packet does; None for those that do."""
    name = target.name
    if name in ("ACCEPT", "DROP", "QUEUE", "NFQUEUE"):
        return ("verdict", name, "", False)
    if name == "REJECT":
        opt = target.option("--reject-with")
        return ("verdict", "REJECT", opt.value if opt else "icmp-port-unreachable", False)
    if name == "RETURN":
        return ("return", "", "", False)
    if name in _PACKET_TARGETS or (name == "CT" and target.option("--notrack") is not None):
        return None
    if name == "CT" or name in NON_TERMINAL:
        return ("continue", "", name, False)
    if name in _UNSIMULATED_TARGETS:
        return ("continue", "", f"{name} not simulated", True)
    return ("goto" if target.goto else "jump", name, "", False)


_PACKET_TARGETS = {"DNAT", "SNAT", "MASQUERADE", "REDIRECT", "MARK", "CONNMARK", "NOTRACK"}


def _compile_target(target: Target, rule: Rule) -> TargetFn:
    name = target.name
    static = _static_action(target)
    if static is not None:
        kind, verdict, note, uncertain = static
        return lambda p, c: TargetResult(kind, p, verdict, note, "", uncertain)
    if name == "DNAT":
        return _dnat(target)
    if name == "SNAT":
        return _snat(target)
    if name == "MASQUERADE":
        return _masquerade(target)
    if name == "REDIRECT":
        return _redirect(target)
    if name == "MARK":
        return _mark_target(target, ct=False)
    if name == "CONNMARK":
        return _connmark(target)
    # NOTRACK, or CT --notrack
    return lambda p, c: TargetResult(
        "continue", p.with_(ct_state=ConnState.UNTRACKED), note="NOTRACK: untracked"
    )


_UNSIMULATED_TARGETS = {"TPROXY", "CLUSTERIP", "HMARK", "JOOL"}


def _split_hostport(text: str) -> tuple[str, str]:
    """`1.2.3.4:80`, `1.2.3.4-1.2.3.9:80-90`, `[fd00::1]:80`, `:80` → (address part, ports)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, rest.lstrip(":")
    if text.count(":") > 1:  # a bare IPv6 address
        return text, ""
    host, _, ports = text.partition(":")
    return host, ports


def _nat_fields(text: str) -> tuple[IPAddress | None, int | None, str]:
    host, ports = _split_hostport(text)
    note = ""
    first = host.split("-")[0] if host else ""
    if "-" in host:
        note = f"address range {host}: the first address is shown"
    port_first = ports.split("-")[0] if ports else ""
    if "-" in ports:
        note = (note + "; " if note else "") + f"port range {ports}: the first port is shown"
    return (ip_address(first) if first else None), (int(port_first) if port_first else None), note


def _dnat(target: Target) -> TargetFn:
    opt = target.option("--to-destination", "--to")
    addr, port, note = _nat_fields(opt.value if opt else "")

    def apply(p: Packet, c: EvalContext) -> TargetResult:
        new = p.with_(
            dst=addr or p.dst,
            dport=port if port is not None and p.proto in ("tcp", "udp", "sctp") else p.dport,
            orig_dst=p.orig_dst or p.dst,
            orig_dport=p.orig_dport if p.orig_dport is not None else p.dport,
            dnat=True,
        )
        return TargetResult("verdict", new, "ACCEPT", note=note, nat="dnat")

    return apply


def _snat(target: Target) -> TargetFn:
    opt = target.option("--to-source", "--to")
    addr, port, note = _nat_fields(opt.value if opt else "")

    def apply(p: Packet, c: EvalContext) -> TargetResult:
        new = p.with_(
            src=addr or p.src,
            sport=port if port is not None else p.sport,
            orig_src=p.orig_src or p.src,
            snat=True,
        )
        return TargetResult("verdict", new, "ACCEPT", note=note, nat="snat")

    return apply


def _masquerade(target: Target) -> TargetFn:
    def apply(p: Packet, c: EvalContext) -> TargetResult:
        # nf_nat_masquerade_ipv4: the source becomes inet_select_addr(out, nexthop, UNIVERSE).
        new_src = None
        if c.fib is not None and p.oif is not None:
            new_src = c.fib.select_source(p.oif, p.dst, Scope.UNIVERSE)
        if new_src is None:
            return TargetResult("verdict", p, "DROP",
                                note=f"MASQUERADE: no address on {p.oif} (packet dropped)")
        new = p.with_(src=new_src, orig_src=p.orig_src or p.src, snat=True)
        return TargetResult("verdict", new, "ACCEPT", nat="masquerade")

    return apply


def _redirect(target: Target) -> TargetFn:
    opt = target.option("--to-ports")
    port = int(opt.value.split("-")[0]) if opt else None

    def apply(p: Packet, c: EvalContext) -> TargetResult:
        # nf_nat_redirect_ipv4: locally generated → 127.0.0.1; else the in-device's address.
        if p.iif is None:
            dst: IPAddress | None = ip_address("127.0.0.1") if p.dst.version == 4 else ip_address("::1")
        else:
            dst = c.fib.select_source(p.iif, None, Scope.HOST) if c.fib else None
        if dst is None:
            return TargetResult("verdict", p, "DROP", note="REDIRECT: no address on the in-device")
        new = p.with_(
            dst=dst,
            dport=port if port is not None else p.dport,
            orig_dst=p.orig_dst or p.dst,
            orig_dport=p.orig_dport if p.orig_dport is not None else p.dport,
            dnat=True,
        )
        return TargetResult("verdict", new, "ACCEPT", nat="redirect")

    return apply


def _mark_ops(target: Target) -> Callable[[int], int]:
    for opt in target.options:
        if opt.name in ("--set-xmark", "--set-mark"):
            value, mask = _mark_pred(opt.value)
            if opt.name == "--set-xmark":
                return lambda m: (m & ~mask & 0xFFFFFFFF) ^ value
            return lambda m: (m & ~mask & 0xFFFFFFFF) | value
        if opt.name == "--or-mark":
            v = int(opt.value, 0)
            return lambda m: m | v
        if opt.name == "--and-mark":
            v = int(opt.value, 0)
            return lambda m: m & v
        if opt.name == "--xor-mark":
            v = int(opt.value, 0)
            return lambda m: m ^ v
    return lambda m: m


def _mark_target(target: Target, *, ct: bool) -> TargetFn:
    op = _mark_ops(target)

    def apply(p: Packet, c: EvalContext) -> TargetResult:
        new = p.with_(mark=op(p.mark))
        return TargetResult("continue", new, note=f"MARK {hex(p.mark)} → {hex(new.mark)}")

    return apply


def _connmark(target: Target) -> TargetFn:
    # xt_CONNMARK: --save-mark copies the packet mark into the connection mark, --restore-mark
    # the other way round, each through its mask (--nfmask/--ctmask, or --mask for both).
    nf = target.option("--nfmask", "--mask")
    ct = target.option("--ctmask", "--mask")
    nfmask = int(nf.value, 0) if nf else 0xFFFFFFFF
    ctmask = int(ct.value, 0) if ct else 0xFFFFFFFF
    if target.option("--save-mark") is not None:
        return lambda p, c: TargetResult(
            "continue", p.with_(ct_mark=(p.ct_mark & ~ctmask & 0xFFFFFFFF) ^ (p.mark & nfmask)),
            note="CONNMARK save",
        )
    if target.option("--restore-mark") is not None:
        return lambda p, c: TargetResult(
            "continue", p.with_(mark=(p.mark & ~nfmask & 0xFFFFFFFF) ^ (p.ct_mark & ctmask)),
            note="CONNMARK restore",
        )
    op = _mark_ops(target)
    return lambda p, c: TargetResult("continue", p.with_(ct_mark=op(p.ct_mark)),
                                     note="CONNMARK set")
