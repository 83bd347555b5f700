"""Failure mode 18: kube-proxy's clusterCIDR missing, or not the pod range the CNI uses.

kube-proxy decides what to masquerade with its local-traffic detector: in iptables mode,
`! -s <clusterCIDR> -d <ClusterIP> ... -j KUBE-MARK-MASQ` (in KUBE-SERVICES before 1.2x, in
each KUBE-SVC chain after). Without a clusterCIDR that rule is not written
("clusterCIDR not specified, unable to distinguish between internal and external traffic"),
so traffic from outside the pod network to a ClusterIP keeps its source: a host-network client
on a multi-NIC node sends with the address its route to the Service picked (the NAT NIC's
10.0.2.15 on Vagrant), the packet is DNATed to an endpoint on another node and leaves another
interface with that foreign source; the reply cannot come back (kubernetes/kubeadm#102,
kubernetes/kubernetes#43905). With a clusterCIDR that is not the CNI's pool, pod traffic is
masqueraded (source addresses lost for NetworkPolicy) and KUBE-FORWARD's `-s <clusterCIDR>`
accept rules miss the real pods.

Proof: a host → ClusterIP packet traced through the node's real rules is DNATed to another
node and leaves without masquerade with a source that is not the outgoing interface's; when
the endpoint's node is in the evidence, the packet is traced there too (martian source,
reply routed elsewhere). For a wrong CIDR, a real pod's packet to a Service is traced and shown
masqueraded by the `! -s` rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from ipaddress import ip_network

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._clients import errors_to
from netsleuth.diagnose.detectors._cluster import POD_IFACE, pods_on_node
from netsleuth.diagnose.detectors._common import datapath, line
from netsleuth.diagnose.detectors._host_evidence import kube_proxy_config, kube_proxy_logs
from netsleuth.diagnose.detectors._paths import (
    Flow,
    local_pods,
    real_rules,
    route_dev,
    service_targets,
    trace_flow,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import LogLine
from netsleuth.model.net import IPNetwork
from netsleuth.model.netfilter import Rule, Ruleset

KIND = "kube-proxy-cluster-cidr"
NOT_SPECIFIED = re.compile(r"[Cc]lusterCIDR not specified, unable to distinguish between "
                           r"internal and external traffic|detect-local-mode set to ClusterCIDR, "
                           r"but no cluster CIDR defined")


def masq_rules(ruleset: Ruleset) -> list[tuple[Rule, IPNetwork | None]]:
    """kube-proxy's per-Service masquerade rules (`... -j KUBE-MARK-MASQ` matching the cluster
    IP) with the negated source range they carry (None: no source condition)."""
    out: list[tuple[Rule, IPNetwork | None]] = []
    nat = ruleset.table("nat")
    if nat is None:
        return out
    for name, chain in nat.chains.items():
        if name != "KUBE-SERVICES" and not name.startswith("KUBE-SVC-"):
            continue
        for rule in chain.rules:
            if rule.target is None or rule.target.name != "KUBE-MARK-MASQ":
                continue
            if "cluster IP" not in (rule.comment or ""):
                continue
            cidr: IPNetwork | None = None
            for m in rule.matches:
                if m.module == "":
                    o = m.option("-s", "--source")
                    if o is not None and o.negated:
                        cidr = ip_network(o.value, strict=False)
            out.append((rule, cidr))
    return out


def _has_dispatch(ruleset: Ruleset) -> bool:
    nat = ruleset.table("nat")
    return nat is not None and any(n.startswith("KUBE-SVC-") for n in nat.chains)


def _configured(ev: Evidence) -> tuple[str | None, EvidenceLine | None]:
    for key, value, ev_line in kube_proxy_config(ev):
        if key == "clusterCIDR":
            return value, ev_line
    return None, None


def _real_pod_ranges(ev: Evidence) -> list[IPNetwork]:
    """Pod ranges from the CNI/nodes, not from kube-proxy's own config."""
    return [f.value for f in ev.facts.pod_cidrs if "kube-proxy" not in f.how]


@detector("C18", title="kube-proxy clusterCIDR missing or not the pod range",
          needs=("iptables", "logs", "configmaps"), mode="18")
def cluster_cidr(ev: Evidence) -> Iterator[Finding]:
    logs = [ln for ln in kube_proxy_logs(ev) if NOT_SPECIFIED.search(ln.text)]
    value, cfg_line = _configured(ev)
    for node in sorted(ev.nodes.values(), key=lambda n: n.name):
        if not real_rules(node) or not _has_dispatch(node.state.ruleset):
            continue
        rules = masq_rules(node.state.ruleset)
        cidrs = {c for _r, c in rules if c is not None}
        if not rules:
            f = _missing(ev, node, logs, cfg_line if value == "" else None)
            if f is not None:
                yield f
            continue
        f = _wrong(ev, node, rules, cidrs)
        if f is not None:
            yield f


def _missing(ev: Evidence, node: NodeEvidence, logs: list[LogLine],
             cfg_line: EvidenceLine | None) -> Finding | None:
    proofs: list[tuple[Flow, Trace, str]] = []
    for t in service_targets(ev, node):
        if not t.port:
            continue
        trace = datapath(node.state).trace(dst=t.ip, dport=t.port, proto=t.proto)
        main = trace.main
        if main.verdict != Verdict.SENT or main.masquerade or main.packet.src is None:
            continue
        if not any(s.action.startswith("DNAT") for s in main.steps):
            continue
        oif = main.interface
        src = main.packet.src
        if oif is None or (POD_IFACE.match(oif) and main.next_hop == str(main.packet.dst)):
            continue  # an endpoint on this node: its reply comes straight back
        on_oif = any(a.ifname == oif and src in a.network for a in node.state.addresses)
        if on_oif:
            continue
        flow = Flow("host-svc", f"host → {t.name} {t.ip}:{t.port}", src, t.ip, t.port, t.proto,
                    None, service=t.name)
        far = _far_side(ev, main.packet.dst, src, main.packet.dport, t.proto)
        proofs.append((flow, trace, far))
    if not proofs:
        return None
    flow, trace, far = proofs[0]
    main = trace.main
    evidence: list[EvidenceLine] = []
    evidence += [line(ln.source, ln.text) for ln in logs[:1]]
    if cfg_line is not None:
        evidence.append(cfg_line)
    dn = [s for s in main.steps if s.action.startswith("DNAT")]
    evidence += [line(s.source, f"{s.rule}   → {s.action}") for s in dn[:1]]
    evidence.append(line(None, f"trace on {node.name}: {flow.label}: DNATed to "
                               f"{main.packet.endpoint('dst')}, leaves {main.interface} with source "
                               f"{main.packet.src} (not masqueraded: no KUBE-MARK-MASQ rule "
                               "matched)"))
    clients = errors_to(ev, {flow.dst}, {"TIMEOUT", "ETIMEDOUT"})
    evidence += [c.evidence for c in clients[:2]]
    real = _real_pod_ranges(ev)
    cidr = str(real[0]) if real else "<the pod range>"
    detail = (f"kube-proxy on {node.name} has no clusterCIDR, so its nat rules have no "
              "`! -s <clusterCIDR> ... -j KUBE-MARK-MASQ`: host-network clients are not "
              f"masqueraded. {flow.label} picks source {main.packet.src} (the route to the "
              f"Service), is DNATed to {main.packet.endpoint('dst')} and leaves "
              f"{main.interface} still carrying {main.packet.src}. " + far)
    confidence = 0.9 if far.startswith("Traced") else 0.8
    if logs or cfg_line is not None:
        confidence = min(0.95, confidence + 0.05)
    explains = {k for c in clients for k in c.explain_keys()}
    explains |= {f"svc-unreachable:TIMEOUT@{node.name}", f"svc-unreachable:ETIMEDOUT@{node.name}"}
    return Finding(
        detector="C18", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=f"kube-proxy on {node.name} runs without clusterCIDR: host traffic to "
              f"{flow.service} leaves {main.interface} un-masqueraded with source "
              f"{main.packet.src}",
        node=node.name, confidence=confidence,
        why="traced host → ClusterIP through the node's rules: DNATed to another node and sent "
            "without masquerade from an address the other side cannot answer",
        evidence=tuple(evidence), explains=tuple(sorted(explains)),
        fix=(Fix(f"kubectl -n kube-system edit configmap kube-proxy   # set clusterCIDR: "
                 f"\"{cidr}\", then: kubectl -n kube-system rollout restart daemonset kube-proxy",
                 "permanent", "kube-proxy then masquerades traffic from outside the pod range"),),
        detail=detail, trace=trace,
    )


def _far_side(ev: Evidence, dst: object, src: object, dport: int | None, proto: str) -> str:
    """Trace the un-masqueraded packet on the endpoint's node when it is in the evidence."""
    from ipaddress import ip_address
    try:
        dst_ip = ip_address(str(dst))
        src_ip = ip_address(str(src))
    except ValueError:
        return ""
    for other in ev.nodes.values():
        fib = datapath(other.state).fibs[dst_ip.version]
        if not fib.is_local(dst_ip):
            continue
        iif = next((a.ifname for a in other.state.addresses
                    if dst_ip == a.ip), None)
        t = datapath(other.state).trace(dst=dst_ip, dport=dport, proto=proto, src=src_ip, iif=iif)
        m = t.main
        if m.verdict in (Verdict.DROPPED, Verdict.REJECTED, Verdict.UNROUTABLE):
            why = next((s.action for s in m.steps if s.action.startswith("dropped")), m.verdict.value)
            return (f"Traced on {other.name}: the packet from {src_ip} arriving on {iif} is "
                    f"{why}.")
        back = route_dev(other, src_ip)
        if back is not None and back != iif:
            return (f"On {other.name} the reply to {src_ip} would leave via {back}, not {iif}: "
                    "it never returns to the client.")
        return ""
    return ("The endpoint's node must route the reply to that address back through this node, "
            "which it normally cannot.")


def _wrong(ev: Evidence, node: NodeEvidence, rules: list[tuple[Rule, IPNetwork | None]],
           cidrs: set[IPNetwork]) -> Finding | None:
    if not cidrs:
        return None
    for ip, pod, assumed in local_pods(ev, node, limit=3):
        if assumed or any(ip in c for c in cidrs):
            continue
        targets = [t for t in service_targets(ev, node) if t.port]
        for t in targets:
            flow = Flow("pod-svc", f"pod {ip} ({pod.name if pod else '?'}) → {t.name}", ip, t.ip,
                        t.port, t.proto, route_dev(node, ip), service=t.name)
            trace = trace_flow(node, flow)
            masq = [s for s in trace.main.steps if "KUBE-MARK-MASQ" in s.action
                    and "cluster IP" in s.rule]
            if not masq:
                continue
            real = _real_pod_ranges(ev)
            cidr_text = ", ".join(str(c) for c in sorted(cidrs, key=str))
            evidence = [line(masq[0].source, f"{masq[0].rule}   ← matches pod {ip}"),
                        line(pod.source if pod else None, f"pod {pod.name if pod else ip} has "
                                                          f"address {ip}, outside {cidr_text}")]
            value, cfg_line = _configured(ev)
            if cfg_line is not None:
                evidence.append(cfg_line)
            fwd = node.state.ruleset.chain("filter", "KUBE-FORWARD")
            if fwd is not None:
                for r in fwd.rules:
                    if any(str(c) in r.raw for c in cidrs):
                        evidence.append(line(r.source, f"{r.raw}   ← does not cover {ip}"))
                        break
            n_pods = len([p for p in pods_on_node(ev, node.name) if p.ips and not p.host_network])
            return Finding(
                detector="C18", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
                title=f"kube-proxy's clusterCIDR ({cidr_text}) does not contain the pods' "
                      f"addresses ({ip} on {node.name}): pod traffic to Services is masqueraded",
                node=node.name, confidence=0.8,
                why="a real pod's packet to a Service traced through the node's rules matches "
                    f"`! -s {cidr_text}` and is marked for masquerade",
                evidence=tuple(evidence),
                explains=(),
                fix=(Fix("kubectl -n kube-system edit configmap kube-proxy   # clusterCIDR: "
                         f"\"{real[0] if real else '<the CNI pool>'}\"; then restart kube-proxy",
                         "permanent",
                         "match the range the CNI allocates from (Calico IPPool, flannel "
                         "Network, the nodes' podCIDRs)"),),
                detail=(f"{flow.label} is masqueraded to the node's address: the endpoint sees "
                        "the node, not the pod (NetworkPolicies by pod source stop matching), "
                        "and KUBE-FORWARD's clusterCIDR accept rules do not cover the real pods "
                        f"({n_pods} pod(s) with addresses on {node.name}). Pod range from the "
                        "cluster: " + (", ".join(map(str, real)) or "unknown")
                        + (f"; kube-proxy configured with {value!r}" if value else "")),
                trace=trace,
            )
    return None

