"""Failure mode 8: foreign policy routing (VPN, Tailscale, WireGuard) captures cluster traffic.

A VPN client adds `ip rule`s that send traffic into its own routing table before the main
table is consulted (Tailscale: `5270: from all lookup 52`; wg-quick: `not from all fwmark
0xca6c lookup 51820` after `lookup main suppress_prefixlength 0`). When that table holds a
default route or routes covering the pod or Service CIDRs (an exit node, an accepted subnet
route, AllowedIPs 0.0.0.0/0) and no `throw` entries for the cluster ranges, packets to pods on
other nodes, to Service IPs or to the other nodes leave through the VPN device instead of the
cluster network (fib_rules_lookup: the first rule whose table yields a route wins). Even when
DNAT re-routes a Service packet correctly afterwards, the source address chosen at connect()
time stays the VPN address (ip_route_me_harder keeps saddr), so replies go astray.

The proof is the route lookup of the trace: which rule, which table, which device.
Each fix (throw routes for the cluster CIDRs in the foreign table) is checked by re-tracing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from ipaddress import ip_network

from netsleuth.datapath.trace_model import Step, Trace
from netsleuth.diagnose.detectors._cluster import pod_cidr_facts, route_text
from netsleuth.diagnose.detectors._common import (
    cni_agent,
    datapath,
    kubernetes_target,
    line,
)
from netsleuth.diagnose.detectors._nodenet import (
    Candidate,
    failures,
    first_ip,
    is_cni_device,
    is_vpn_device,
    iter_nodes,
    local_pod_sources,
    outcome_summary,
    passes,
    peer_ips,
    remote_pod_targets,
    route_step_text,
    rule_text,
    service_cidr_facts,
    trace_line,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.errors import NetsleuthError
from netsleuth.model.net import (
    TABLE_DEFAULT,
    TABLE_LOCAL,
    TABLE_MAIN,
    IPAddress,
    IPNetwork,
    PolicyRule,
    Route,
    RuleAction,
)
from netsleuth.model.node import NodeState
from netsleuth.parse.node_snapshot import with_extra_routes

KIND = "foreign-policy-routing"
STANDARD = (TABLE_LOCAL, TABLE_MAIN, TABLE_DEFAULT)


@dataclass(frozen=True, slots=True)
class _Capture:
    cand: Candidate
    trace: Trace
    step: Step  # the route lookup that used the foreign table
    rule: PolicyRule
    table: int
    alone: Trace | None = None  # the same packet without the foreign rules


def _foreign_rules(state: NodeState) -> list[PolicyRule]:
    """`lookup N` rules with a non-standard table, tried before the main table."""
    main_prio = min((r.priority for r in state.rules
                     if r.action == RuleAction.LOOKUP and r.table == TABLE_MAIN
                     and r.src is None and r.dst is None and r.fwmark is None and not r.invert
                     and r.iif is None and r.suppress_prefixlength is None), default=32766)
    return [r for r in state.rules if r.action == RuleAction.LOOKUP and r.table is not None
            and r.table not in STANDARD and r.priority < main_prio]


def _targets(ev: Evidence, node: NodeEvidence) -> list[Candidate]:
    """Cluster destinations: the apiserver Service, cluster DNS, pods on other nodes, the
    other nodes, and whatever the node's logs and probes show failing."""
    out: list[Candidate] = []
    k = kubernetes_target(ev)
    if k is not None:
        out.append(Candidate(f"host → kubernetes Service {k[0]}:{k[1]}", k[0], k[1]))
    for f in ev.facts.cluster_dns_ips[:1]:
        out.append(Candidate(f"host → cluster DNS {f.value}:53", f.value, 53, proto="udp"))
    pods = remote_pod_targets(ev, node)
    for ip, ref in pods[:2]:
        out.append(Candidate(f"host → pod {ip} on another node", ip, 8080, source=ref))
    for src, dev, _ref in local_pod_sources(ev, node)[:1]:
        for ip, ref in pods[:1]:
            out.append(Candidate(f"pod {src} → pod {ip} on another node", ip, 8080, src, dev,
                                 source=ref))
    for ip, name in list(peer_ips(ev, node.name).items())[:3]:
        out.append(Candidate(f"host → node {name} ({ip})", ip, 10250))
    for ln in ev.objects.logs:
        err = ln.net_error
        if err is None or err.dst_ip is None or log_node(ev, ln) != node.name:
            continue
        if err.errno in ("TLS", "NXDOMAIN", "SERVFAIL") or err.dst_ip.is_loopback:
            continue
        out.append(Candidate(f"host → {err.dst} (failing in {ln.pod or ln.component or 'a log'})",
                             err.dst_ip, err.dst_port or 443, source=ln.source))
    for probe in ev.probes:
        pip = first_ip(probe.target)
        if ev.node_for(probe.host) == node.name and pip is not None:
            out.append(Candidate(f"host → {pip} ({probe.kind})", pip, 33434, proto="udp",
                                 source=probe.source))
    seen: set[tuple[IPAddress, str | None]] = set()
    unique: list[Candidate] = []
    for c in out:
        if (c.dst, c.iif) not in seen and c.dst.version == 4:
            seen.add((c.dst, c.iif))
            unique.append(c)
    return unique


def _captured(state: NodeState, rules: list[PolicyRule], t: Trace) -> tuple[Step, PolicyRule, int] | None:
    """The route lookup of the trace that a foreign rule decided, with a non-CNI device."""
    by_prio = {r.priority: r for r in rules}
    for step in t.main.steps:
        if step.hook not in ("route", "reroute") or not step.chain.startswith("rule "):
            continue
        try:
            prio = int(step.chain.split()[1])
        except (IndexError, ValueError):
            continue
        rule = by_prio.get(prio)
        if rule is None or rule.table is None:
            continue
        dev = step.packet.oif
        if is_cni_device(dev) and not is_vpn_device(dev):
            continue  # a CNI's own table (Calico WireGuard, AWS VPC CNI, Cilium ENI)
        return step, rule, rule.table
    return None


def _cluster_cidrs(ev: Evidence) -> list[IPNetwork]:
    nets = [c for c, _, _ in pod_cidr_facts(ev)] + [c for c, _, _ in service_cidr_facts(ev)]
    out: list[IPNetwork] = []
    for n in nets:
        if n.version == 4 and n.prefixlen < 32 and not any(n.subnet_of(o) for o in out
                                                            if o.version == 4):
            out.append(n)
    return out


@detector("A08", title="Foreign policy routing (VPN) captures cluster traffic",
          needs=("rules",), mode="8")
def foreign_policy_routing(ev: Evidence) -> Iterator[Finding]:
    for node in iter_nodes(ev):
        if "rules" not in node.has:
            continue
        rules = _foreign_rules(node.state)
        if not rules:
            continue
        without = replace(node.state, rules=tuple(r for r in node.state.rules
                                                  if r not in rules))
        captures: list[_Capture] = []
        for cand in _targets(ev, node):
            t = cand.run(node)
            hit = _captured(node.state, rules, t)
            if hit is None:
                continue
            step = hit[0]
            alone = cand.run(without)
            main_route = _main_route(without, cand)
            if main_route is not None and main_route.dst.prefixlen > 0:
                pass  # the foreign table overrides a specific (cluster) route of main
            elif not _vpn(node.state, step.packet.oif):
                continue  # main would only have used its default route: a deliberate split
            captures.append(_Capture(cand, t, *hit, alone=alone))
        if captures:
            yield _finding(ev, node, captures)


def _main_route(state: NodeState, cand: Candidate) -> Route | None:
    """The route the lookup would pick without the foreign rules (None: no route)."""
    res = datapath(state).fibs[cand.dst.version].lookup(cand.dst, src=cand.src,
                                                        iif=cand.iif or "lo")
    return res.route if res.ok else None


def _vpn(state: NodeState, dev: str | None) -> bool:
    if is_vpn_device(dev):
        return True
    return any(link.name == dev and (link.kind or "") in ("tun", "wireguard", "tap")
               for link in state.links)


def _throw_fix(node: NodeEvidence, captures: list[_Capture], cidrs: list[IPNetwork]
               ) -> tuple[list[str], Trace | None]:
    """`throw` routes for the cluster ranges in the foreign table (and for captured
    destinations outside them): the lookup then ends in that table and goes on with the next
    rules. A route of the same prefix already there is replaced (`add` would fail, EEXIST)."""
    c = captures[0]
    table = [r for r in node.state.routes if r.table == c.table]
    nets: list[IPNetwork] = [n for n in cidrs if any(r.dst.version == n.version
                                                      and r.dst.overlaps(n) for r in table)]
    for x in captures:
        dst = x.step.packet.dst
        if not any(dst.version == n.version and dst in n for n in nets):
            nets.append(ip_network(dst))
    specs: list[str] = []
    state = node.state
    try:
        for n in dict.fromkeys(nets):
            same = [r for r in table if r.dst == n]
            verb = "replace" if same else "add"
            specs.append(f"{verb} throw {n} table {c.table}")
            state = replace(state, routes=tuple(r for r in state.routes if r not in same))
            state = with_extra_routes(state, f"throw {n} table {c.table}", source="fix")
    except NetsleuthError:
        return specs, None
    return specs, c.cand.run(state)


def _finding(ev: Evidence, node: NodeEvidence, captures: list[_Capture]) -> Finding:
    c = captures[0]
    dev = c.step.packet.oif or "?"
    cidrs = _cluster_cidrs(ev)
    evidence: list[EvidenceLine] = [trace_line(c.trace, c.cand.what)]
    evidence.append(line(c.rule.source, rule_text(c.rule)))
    evidence.append(line(c.step.source, f"{route_text(c.step.rule)}   (table {c.step.table})"))
    if c.alone is not None:
        evidence.append(trace_line(c.alone, "without the foreign rules (main table)"))
    for x in captures[1:4]:
        evidence.append(trace_line(x.trace, x.cand.what))
    specs, after = _throw_fix(node, captures, cidrs)
    fixes: list[Fix] = []
    note = ""
    if after is not None and passes(after):
        note = (f" Verified by simulation: {c.cand.what} then uses "
                f"{route_step_text(after)} → {outcome_summary(after.main)}.")
    elif after is not None and not any(r.table == TABLE_MAIN for r in node.state.routes):
        note = (" With them the lookup falls through to the main table, which is not in the "
                "evidence: run `ip route get "
                f"{c.cand.dst}` afterwards to check it takes the cluster interface.")
    elif after is not None:
        note = (f" With them the lookup falls through to the next rules, but the main table "
                f"shown has no route for {c.cand.dst} either ({outcome_summary(after.main)}): "
                "check `ip route` on the node too.")
    fixes.append(Fix("; ".join(f"ip route {s}" for s in specs), "now",
                     f"exclude the cluster ranges from table {c.table}: a `throw` route ends "
                     "the lookup in that table and the kernel goes on with the next rules "
                     "(main)." + note))
    vpn_fix = _vpn_fix(dev, cidrs)
    if vpn_fix:
        fixes.append(Fix(vpn_fix, "permanent",
                         "stop the VPN from claiming cluster ranges on cluster nodes"))
    fixes.append(Fix(
        "make the throw routes persistent in the VPN's up-hook (wg-quick PostUp=, "
        "NetworkManager dispatcher, systemd-networkd [Route] Type=throw Table=...)",
        "permanent", "the VPN re-creates its table on every reconnect"))
    dsts = {x.cand.dst for x in captures} | {x.step.packet.dst for x in captures}
    explains: list[str] = []
    for f in failures(ev, node.name):
        if f.errno == "TLS" or f.dst is None:
            continue
        if f.dst in dsts or any(f.dst.version == n.version and f.dst in n for n in cidrs):
            explains.extend(f.keys)
            if cni_agent(f.pod):
                explains += [f"cni-agent-not-ready@{node.name}", f"sandbox-churn@{node.name}",
                             f"pod-no-ip@{node.name}"]
    explains.append(f"dns-errors@{node.name}")
    what = ", ".join(x.cand.what.split("→", 1)[-1].strip() for x in captures[:3])
    detail = (
        f"On {node.name}, `{rule_text(c.rule)}` is tried before the main table "
        f"and table {c.table} has `{route_text(c.step.rule)}`: {what} leave through {dev} (a VPN/overlay "
        "device that is not part of the cluster network) instead of the node's cluster "
        f"interface. Pod-to-pod traffic across nodes, Services and the apiserver are "
        f"affected; the rest of the node's traffic looks normal."
    )
    return Finding(
        detector="A08", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=f"Policy routing on {node.name} sends cluster traffic into table {c.table} "
              f"(via {dev})",
        node=node.name, confidence=0.9 if "routes" in node.has else 0.75,
        why=(f"proven by tracing {len(captures)} cluster destination(s) through "
             f"{node.name}'s rules and tables: rule {c.rule.priority} picks table {c.table}"),
        evidence=tuple(evidence), explains=tuple(dict.fromkeys(explains)), fix=tuple(fixes),
        detail=detail, trace=c.trace,
    )


def _vpn_fix(dev: str, cidrs: list[IPNetwork]) -> str:
    ranges = ",".join(str(n) for n in cidrs) or "<pod CIDR>,<service CIDR>"
    if dev.startswith("tailscale"):
        return ("tailscale set --accept-routes=false --exit-node=   # or drop the subnet "
                f"routes overlapping {ranges} on the subnet router")
    if dev.startswith(("wg", "nordlynx")):
        return (f"remove {ranges} (or 0.0.0.0/0) from the peer's AllowedIPs in "
                f"/etc/wireguard/{dev}.conf, or set `Table = off` and add routes yourself")
    return ""
