"""Failure mode 44: the pod → Service path is broken on some nodes; DNS is the first casualty.

DNS timeouts from pods on only some nodes (`dial udp 10.96.0.10:53: i/o timeout`, dig's
`connection timed out; no servers could be reached`) are rarely a CoreDNS problem: the query is
the first packet every pod sends to a Service, and on the affected node it never reaches a
CoreDNS endpoint. The detector correlates DNS failures by node and, for every node with data-
path state, traces a pod's query to the kube-dns ClusterIP:53/UDP as the node receives it from
the pod: it must be DNATed to a CoreDNS endpoint (kube-proxy's rules) and forwarded towards it.
Nodes whose trace is not DNATed (kube-proxy's rules missing there) or ends in a drop/reject are
named with the step that decides it; nodes whose trace passes are the contrast. The fix for a
missing-rules node is verified by re-tracing with kube-proxy's rules (rebuilt from the Service
objects) merged into that node's ruleset.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cluster import pods_on_node
from netsleuth.diagnose.detectors._cni_dns import (
    deciding_step_lines,
    ev_line,
    host_of,
    route_lines,
    slog_key,
    trace_from_pod,
    trace_received,
    trace_summary,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence, log_node, merge_rulesets
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.kube_proxy_rules import kube_proxy_rules, service_port_views
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import ClusterFacts
from netsleuth.model.net import IPAddress, RouteType
from netsleuth.parse.iptables_save import parse_iptables_save

KIND = "pod-service-path-broken"
DNS_ERR = re.compile(r"lookup \S+ on ([0-9a-fA-F.:\[\]]+):53|dial udp ([0-9a-fA-F.:\[\]]+):53|"
                     r"read udp \S+->([0-9a-fA-F.:\[\]]+):53")


def _pod_source(ev: Evidence, node: NodeEvidence) -> IPAddress | None:
    """A pod address on the node: a real pod, else the first host of the node's local pod
    subnet route (cni0/cbr0 bridge, or a Calico/Cilium per-pod route)."""
    for p in pods_on_node(ev, node.name):
        if p.host_network is not True and p.ip is not None and p.ip.version == 4:
            return p.ip
    for r in node.state.routes:
        if r.type != RouteType.UNICAST or r.gateway is not None or r.dev is None:
            continue
        if r.dev in ("cni0", "cbr0") or r.dev.startswith(("cali", "lxc")):
            return host_of(r.dst, 1)
    return None


def _dns_failures(ev: Evidence, dns: IPAddress) -> dict[str, list[tuple[str, EvidenceLine]]]:
    """node → (symptom key, evidence) of DNS failures of pods/clients on that node."""
    out: dict[str, list[tuple[str, EvidenceLine]]] = {}
    for ln in ev.objects.logs:
        err = ln.net_error
        if err is None or err.errno not in ("TIMEOUT", "ETIMEDOUT", "ECONNREFUSED"):
            continue
        m = DNS_ERR.search(ln.message)
        target = next((g for g in (m.groups() if m else ()) if g), None)
        if target is None or target.strip("[]") != str(dns):
            continue
        node = log_node(ev, ln)
        key = slog_key(ev, ln)
        if node and key:
            out.setdefault(node, []).append((key, ev_line(ln.source, ln.text)))
    return out


def _service_ok(t: Trace) -> bool:
    return t.main.packet.dnat and t.verdict in (Verdict.FORWARDED, Verdict.DELIVERED_LOCAL,
                                                Verdict.SENT)


@detector("E44", title="Pod → Service path broken on some nodes (DNS first)",
          needs=("iptables", "routes"), mode="44")
def dns_node_path(ev: Evidence) -> Iterator[Finding]:
    dns = ClusterFacts.first(ev.facts.cluster_dns_ips)
    if dns is None:
        return
    failures = _dns_failures(ev, dns)
    broken: list[tuple[NodeEvidence, Trace, IPAddress]] = []
    fine: list[str] = []
    for name in sorted(ev.nodes):
        node = ev.nodes[name]
        if "nat" not in node.state.ruleset.tables or "routes" not in node.has:
            continue  # without the nat table a missing DNAT proves nothing
        src = _pod_source(ev, node)
        if src is None:
            continue
        t = trace_from_pod(node, src, dns, 53, "udp")
        if t is None:
            continue
        if _service_ok(t):
            fine.append(name)
        else:
            broken.append((node, t, src))
    for node, t, src in broken:
        symptoms = failures.get(node.name, [])
        if not symptoms and not fine:
            continue  # broken everywhere and no DNS complaint: not this mode's pattern
        yield _finding(ev, node, t, src, dns, symptoms, fine)


def _finding(ev: Evidence, node: NodeEvidence, t: Trace, src: IPAddress, dns: IPAddress,
             symptoms: list[tuple[str, EvidenceLine]], fine: list[str]) -> Finding:
    name = node.name
    evidence: list[EvidenceLine] = [line for _, line in symptoms[:2]]
    natted = t.main.packet.dnat
    if not natted and passes_out(t):
        evidence.extend(route_lines(t))
        why_path = (f"the query to {dns}:53 is not DNATed on {name} (no kube-proxy rule for the "
                    f"kube-dns ClusterIP in its ruleset) and leaves {t.main.interface} towards "
                    f"{t.main.next_hop}: nothing beyond the node knows a ClusterIP")
    else:
        evidence.extend(deciding_step_lines(t, 2))
        why_path = f"the query is {t.main.verdict.value} on {name}"
    evidence.append(ev_line(None, f"trace: {trace_summary(t)}"))
    detail = [f"A pod on {name} ({src}) asks {dns}:53/UDP: {why_path}."]
    if fine:
        detail.append(f"The same query is DNATed to a CoreDNS endpoint and forwarded on "
                      f"{', '.join(fine)}.")
    fixes: list[Fix] = []
    if not natted:
        proxy = next((p for p in ev.objects.pods if (p.name or "").startswith("kube-proxy")
                      and p.node and ev.node_for(p.node) == name), None)
        views = service_port_views(ev.objects.services, ev.objects.endpoints)
        note = ""
        if views:
            cidr = ClusterFacts.first(ev.facts.pod_cidrs)
            rebuilt = parse_iptables_save(kube_proxy_rules(views, str(cidr) if cidr else None),
                                          "<kube-proxy rules rebuilt from Services>")
            state = replace(node.state, ruleset=merge_rulesets(node.state.ruleset, rebuilt))
            again = trace_received(state, src=src, dst=dns, dport=53, proto="udp",
                                   iif=t.packet.iif or "")
            if _service_ok(again):
                note = (f" Verified by simulation: with kube-proxy's rules the query is DNATed "
                        f"to {again.main.packet.endpoint('dst')} and {again.verdict.value}.")
        fixes.append(Fix(
            f"kubectl -n kube-system delete pod {proxy.name}" if proxy is not None else
            f"kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide --field-selector "
            f"spec.nodeName={name}", "now",
            f"kube-proxy is not programming {name}: restart it and read its log." + note))
        fixes.append(Fix(f"kubectl -n kube-system logs -l k8s-app=kube-proxy --prefix | grep {name}",
                         "permanent", "find why kube-proxy stopped syncing there (crash, "
                                      "iptables backend mismatch, missing kernel modules)"))
    else:
        fixes.append(Fix(f"repair {name}'s data path at the step the trace names", "now",
                         "see the quoted rule/route"))
    keys = sorted({k for k, _ in symptoms})
    return Finding(
        detector="E44", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{name}",
        title=f"Pods on {name} cannot reach the kube-dns Service {dns}: "
              + ("not DNATed there" if not natted else t.main.verdict.value),
        node=name, confidence=0.9 if symptoms else 0.7,
        why=f"proven by tracing a pod's DNS query through {name}'s state"
            + (f", against {', '.join(fine)} where it works" if fine else "")
            + ("; DNS fails from pods on this node" if symptoms else ""),
        evidence=tuple(evidence),
        explains=tuple(dict.fromkeys(tuple(keys) + (f"dns-errors@{name}",
                                                    f"svc-unreachable:TIMEOUT@{name}"))),
        fix=tuple(fixes), detail="\n".join(detail), trace=t,
    )


def passes_out(t: Trace) -> bool:
    return t.verdict in (Verdict.FORWARDED, Verdict.SENT)
