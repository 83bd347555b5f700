"""Failure mode 43: CoreDNS cannot reach its upstream resolver.

CoreDNS logs each failed forward: `[ERROR] plugin/errors: 2 example.com. A: read udp
10.244.0.5:55742->223.5.5.5:53: i/o timeout`. Cluster names still resolve (the kubernetes
plugin answers them), external names fail. The query leaves from the CoreDNS *pod*, so the
question is the pod's egress path on its node: the node receives the packet from the pod's
interface, forwards it (FORWARD), must SNAT it (MASQUERADE: a pod address is not routable
outside the cluster, the answer would never come back) and sends it out of its uplink.

The detector traces exactly that packet (src = the CoreDNS pod IP from the log line, iif = the
node's interface towards that pod) through the node's state, and the same query from the node
itself. Outcomes:
* dropped/rejected/unroutable on the node → the rule or route that does it (cause on the node);
* forwarded without SNAT to an address outside the cluster → replies cannot return
  (natOutgoing/ip-masq off); the fix (a MASQUERADE rule) is verified by re-tracing;
* the node forwards and masquerades it → the node is not the problem: the upstream (or the
  network beyond the node) drops the queries; forward to a resolver that answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cluster import pod_by_ip
from netsleuth.diagnose.detectors._cni_dns import (
    deciding_step_lines,
    ev_line,
    in_any,
    node_of_ip,
    passes,
    pod_iface,
    slog_key,
    trace_from_pod,
    trace_local,
    trace_received,
    trace_summary,
    with_rule_first,
)
from netsleuth.diagnose.detectors._common import is_service_ip
from netsleuth.diagnose.evidence import Evidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import LogLine, parse_ip
from netsleuth.model.net import IPAddress

FORWARD_ERR = re.compile(r"plugin/errors: \d+ (\S+) (\w+): (?:read|dial|write) udp")


@dataclass(frozen=True, slots=True)
class _Failure:
    node: str
    pod_ip: IPAddress
    upstream: IPAddress
    lines: tuple[LogLine, ...]


def _failures(ev: Evidence) -> list[_Failure]:
    groups: dict[tuple[str, IPAddress, IPAddress], list[LogLine]] = {}
    for ln in ev.objects.logs:
        err = ln.net_error
        if err is None or err.errno not in ("TIMEOUT", "ETIMEDOUT", "ECONNREFUSED",
                                            "ENETUNREACH", "EHOSTUNREACH"):
            continue
        if not FORWARD_ERR.search(ln.message) and ln.component != "coredns":
            continue
        upstream = err.dst_ip
        if upstream is None or err.dst_port not in (53, None) or is_service_ip(ev, upstream):
            continue
        src = parse_ip((err.src or "").rsplit(":", 1)[0]) if err.src else None
        pod = pod_by_ip(ev, src) if src else None
        if src is None:
            p = next((p for p in ev.objects.pods if p.name == ln.pod), None)
            src = p.ip if p else None
        node = log_node(ev, ln) or (ev.node_for(pod.node) if pod and pod.node else None)
        if node is None or src is None:
            continue
        groups.setdefault((node, src, upstream), []).append(ln)
    return [_Failure(n, s, u, tuple(lines)) for (n, s, u), lines in sorted(
        groups.items(), key=lambda kv: (kv[0][0], str(kv[0][2])))]


def _cluster_nets(ev: Evidence) -> list:  # type: ignore[type-arg]
    return [f.value for f in ev.facts.pod_cidrs] + [f.value for f in ev.facts.service_cidrs]


@detector("E43", title="CoreDNS upstream unreachable", needs=("logs",), mode="43")
def coredns_upstream(ev: Evidence) -> Iterator[Finding]:
    done: set[tuple[str, IPAddress]] = set()
    for f in _failures(ev):
        if (f.node, f.upstream) in done:
            continue
        done.add((f.node, f.upstream))
        node = ev.nodes.get(f.node)
        keys = sorted({k for k in (slog_key(ev, ln) for ln in f.lines) if k})
        evidence = [ev_line(ln.source, ln.text) for ln in f.lines[:2]]
        if node is None:
            yield _finding(f, "coredns-upstream-unreachable", None, evidence, keys, 0.55,
                           "CoreDNS's own errors; the node's state is not in the evidence to "
                           "trace its egress", [f"Collect `ip route`, `iptables-save` on {f.node}."],
                           _forward_fix(ev, f))
            continue
        t = trace_from_pod(node, f.pod_ip, f.upstream, 53, "udp")
        host = trace_local(node.state, f.upstream, 53, "udp")
        if t is None:
            yield _finding(f, "coredns-upstream-unreachable", host, evidence, keys, 0.5,
                           f"{f.node} has no route to the CoreDNS pod {f.pod_ip}: its egress "
                           "could not be traced", [], _forward_fix(ev, f))
            continue
        if not passes(t):
            evidence.extend(deciding_step_lines(t, 2))
            evidence.append(ev_line(None, f"trace: {trace_summary(t)}"))
            yield _finding(
                f, "dns-upstream-blocked", t, evidence, keys, 0.9,
                f"proven by tracing the CoreDNS pod's query to {f.upstream}:53 through "
                f"{f.node}'s state: {t.main.verdict.value}",
                [f"The pod's query is {t.main.verdict.value} on {f.node} before it leaves: "
                 "a timeout is what CoreDNS sees."], ())
            continue
        outside = not in_any(f.upstream, _cluster_nets(ev)) and node_of_ip(ev, f.upstream) is None
        if t.verdict == Verdict.FORWARDED and outside and all(
                not o.masquerade and o.packet.src == f.pod_ip for o in t.outcomes):
            yield _no_masq(ev, f, t, evidence, keys)
            continue
        evidence.append(ev_line(None, f"trace: {trace_summary(t)}"))
        evidence.append(ev_line(None, f"trace from the node: {trace_summary(host)}"))
        yield _finding(
            f, "coredns-upstream-unreachable", t, evidence, keys, 0.6,
            f"the pod's query leaves {f.node} correctly ({t.main.verdict.value} out "
            f"{t.main.interface}{', masqueraded' if t.main.masquerade else ''}"
            + ("; whether it is masqueraded depends on ipset membership the evidence does not "
               "show" if len({o.masquerade for o in t.outcomes}) > 1 else "")
            + "): what drops it is beyond the node (the upstream, or a firewall on the way)",
            [f"{f.node} forwards the query; {f.upstream} does not answer it. Check it from the "
             f"node: dig @{f.upstream} example.com; if that fails too, the upstream (or an ACL "
             "in front of it) is the problem. Some resolvers also drop CoreDNS's HINFO probes."],
            _forward_fix(ev, f))


def _forward_fix(ev: Evidence, f: _Failure) -> tuple[Fix, ...]:
    return (Fix(f"kubectl -n kube-system edit configmap coredns  # forward . <a resolver that "
                f"answers from this network> (instead of {f.upstream})", "now",
                "then: kubectl -n kube-system rollout restart deployment coredns"),)


def _finding(f: _Failure, kind: str, trace: Trace | None, evidence: list[EvidenceLine],
             keys: list[str], confidence: float, why: str, detail: list[str],
             fixes: tuple[Fix, ...]) -> Finding:
    return Finding(
        detector="E43", kind=kind, role=Role.CAUSE, key=f"cause:{kind}@{f.node}",
        title=f"CoreDNS on {f.node} cannot reach its upstream {f.upstream}:53", node=f.node,
        confidence=confidence, why=why, evidence=tuple(evidence),
        explains=tuple(keys) + (f"dns-errors@{f.node}",), fix=fixes,
        detail="\n".join(detail), trace=trace,
    )


def _no_masq(ev: Evidence, f: _Failure, t: Trace, evidence: list[EvidenceLine],
             keys: list[str]) -> Finding:
    node = ev.nodes[f.node]
    cidr = next((c for c in (x.value for x in ev.facts.pod_cidrs) if f.pod_ip in c), None)
    if cidr is None:  # the node's own pod block (Calico's blackhole route, a bridge subnet)
        cidr = next((r.dst for r in node.state.routes if r.dst.prefixlen < r.dst.max_prefixlen
                     and f.pod_ip in r.dst and r.dst.prefixlen > 0
                     and (r.type.value == "blackhole" or r.dev in ("cni0", "cbr0"))), None)
    src = str(cidr) if cidr else f"{f.pod_ip}/32"
    rule = f"-s {src} ! -d {src} -j MASQUERADE"
    fixed = with_rule_first(node.state, "nat", "POSTROUTING", rule)
    iface = pod_iface(node.state, f.pod_ip) or ""
    again = trace_received(fixed, src=f.pod_ip, dst=f.upstream, dport=53, proto="udp", iif=iface)
    ok = again.main.masquerade
    evidence.append(ev_line(None, f"trace: {trace_summary(t)} (source still {f.pod_ip})"))
    fixes = [Fix(f"iptables -t nat -I POSTROUTING 1 {rule}", "now",
                 f"on {f.node}. " + ("Verified by simulation: the query then leaves "
                                     f"{again.main.interface} masqueraded" if ok else
                                     "re-trace did not masquerade"))]
    cnis = {x.value for x in ev.facts.cni}
    if "calico" in cnis:
        fixes.append(Fix("kubectl patch ippool default-ipv4-ippool --type merge -p "
                         "'{\"spec\":{\"natOutgoing\":true}}'", "permanent",
                         "Calico SNATs pod traffic leaving the pool"))
    elif "flannel" in cnis:
        fixes.append(Fix("run flanneld with --ip-masq (the kube-flannel manifest's default)",
                         "permanent", "flannel then installs its MASQUERADE rules"))
    else:
        fixes.append(Fix("enable the CNI's outgoing NAT for the pod network", "permanent", ""))
    return Finding(
        detector="E43", kind="pod-egress-not-masqueraded", role=Role.CAUSE,
        key=f"cause:pod-egress-not-masqueraded@{f.node}",
        title=f"{f.node} sends the CoreDNS pod's queries to {f.upstream} without SNAT",
        node=f.node, confidence=0.8,
        why=f"proven by tracing the pod's query: forwarded out {t.main.interface} with the pod "
            f"source {f.pod_ip}; the upstream's answer cannot be routed back to a pod address",
        evidence=tuple(evidence), explains=tuple(keys) + (f"dns-errors@{f.node}",),
        fix=tuple(fixes),
        detail="Unless the network outside routes the pod CIDR back to the nodes (BGP to the "
               "ToR), pod traffic to outside addresses must be masqueraded.",
        trace=t,
    )
