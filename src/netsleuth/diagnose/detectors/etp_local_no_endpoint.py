"""Failure mode 26: `externalTrafficPolicy: Local` — NodePorts answer only on nodes that run a
ready endpoint.

With eTP Local kube-proxy keeps the client's source address by never forwarding external
traffic to another node: on a node without a local endpoint the NodePort's packets are dropped
(kube-proxy ≥ 1.26: filter KUBE-EXTERNAL-SERVICES `"ns/svc has no local endpoints" -j DROP`;
before: nat KUBE-XLB-... `-j KUBE-MARK-DROP`, dropped by KUBE-FIREWALL). By design — but a load
balancer or a client that targets every node sees timeouts on the others
(kubernetes/kubernetes#66354, #89831). The proof is an outside client's packet to the NodePort
traced on each node with evidence: dropped where no endpoint is local, DNATed where one is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._blocking import TIMEOUT_ERRNOS
from netsleuth.diagnose.detectors._clients import errors_to
from netsleuth.diagnose.detectors._common import line
from netsleuth.diagnose.detectors._paths import (
    Flow,
    deciding_step,
    ext_client,
    node_ip,
    nodeports_in_rules,
    real_rules,
    trace_flow,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector

KIND = "etp-local-no-local-endpoint"
NO_LOCAL = re.compile(r"has no local endpoints")


@dataclass(frozen=True, slots=True)
class _Np:
    name: str  # ns/svc[:port]
    node_port: int
    proto: str


def _local_services(ev: Evidence) -> dict[str, _Np]:
    """eTP Local NodePorts: from the Service objects, or from kube-proxy's "has no local
    endpoints" / KUBE-XLB / KUBE-SVL rules."""
    out: dict[str, _Np] = {}
    for svc in ev.objects.services:
        if (svc.external_traffic_policy or "").lower() != "local":
            continue
        for p in svc.ports:
            if p.node_port:
                out[f"{svc.namespace}/{svc.name}"] = _Np(f"{svc.namespace}/{svc.name}",
                                                         p.node_port, p.protocol.lower())
    for node in ev.nodes.values():
        rs = node.state.ruleset
        local_names = set()
        for t in rs.tables.values():
            for c in t.chains.values():
                for r in c.rules:
                    if NO_LOCAL.search(r.comment or ""):
                        local_names.add((r.comment or "").split(" has no")[0].strip('"'))
                    if c.name.startswith(("KUBE-SVL-", "KUBE-XLB-")) and r.comment:
                        local_names.add(r.comment.split(" -> ")[0].strip('"'))
        for target in nodeports_in_rules(rs):
            base = target.name
            if base in local_names or base.split(":")[0] in local_names:
                out.setdefault(base.split(":")[0], _Np(base, target.node_port or 0, target.proto))
    return out


@detector("C26", title="externalTrafficPolicy: Local drops NodePort traffic on nodes without a "
                       "local endpoint", needs=("services", "iptables"), mode="26")
def etp_local(ev: Evidence) -> Iterator[Finding]:
    services = _local_services(ev)
    for key, np in sorted(services.items()):
        dropped: list[tuple[NodeEvidence, Trace, EvidenceLine]] = []
        served: list[tuple[NodeEvidence, Trace]] = []
        for node in sorted(ev.nodes.values(), key=lambda n: n.name):
            if not real_rules(node):
                continue
            addr = node_ip(ev, node)
            if addr is None:
                continue
            ip, nic = addr
            client = ext_client(node, nic)
            flow = Flow("nodeport", f"client {client} → {ip}:{np.node_port}", client, ip,
                        np.node_port, np.proto, nic, "", key)
            trace = trace_flow(node, flow)
            main = trace.main
            if main.verdict in (Verdict.DROPPED, Verdict.REJECTED):
                step = deciding_step(main)
                text = step.rule if step is not None else main.verdict.value
                src = step.source if step is not None else None
                dropped.append((node, trace, line(src, f"{node.name}: {text}   → "
                                                       f"{main.verdict.value}")))
            elif any(s.action.startswith("DNAT") for s in main.steps):
                served.append((node, trace))
        if dropped:
            yield _finding(ev, key, np, dropped, served)


def _finding(ev: Evidence, key: str, np: _Np, dropped: list[tuple[NodeEvidence, Trace,
             EvidenceLine]], served: list[tuple[NodeEvidence, Trace]]) -> Finding:
    names = [n.name for n, _t, _e in dropped]
    evidence = [e for _n, _t, e in dropped[:3]]
    for n, t in served[:1]:
        dn = [s for s in t.main.steps if s.action.startswith("DNAT")]
        evidence.append(line(dn[0].source if dn else None,
                             f"{n.name}: {dn[0].rule if dn else ''}   → "
                             f"{dn[0].action if dn else 'served'} (a local endpoint)"))
    ips = set()
    for n, _t, _e in dropped:
        a = node_ip(ev, n)
        if a is not None:
            ips.add(a[0])
    clients = errors_to(ev, ips, set(TIMEOUT_ERRNOS), np.node_port)
    evidence += [c.evidence for c in clients[:2]]
    ns, _, svc = key.partition("/")
    detail = (f"{key} has externalTrafficPolicy: Local. An outside client's packet to NodePort "
              f"{np.node_port} is dropped on {', '.join(names)} (no ready endpoint there) and "
              + (f"DNATed to a local endpoint on {', '.join(n.name for n, _t in served)}. "
                 if served else "")
              + "This preserves client source addresses by design; a load balancer must send "
              "traffic only to nodes whose health-check NodePort answers 200.")
    return Finding(
        detector="C26", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{key}",
        title=f"{key}: externalTrafficPolicy Local — NodePort {np.node_port} is dropped on "
              f"{', '.join(names[:3])} (no local endpoint)",
        node=names[0] if len(names) == 1 else None, confidence=0.88 if served else 0.8,
        why="an outside client's packet to the NodePort traced through each node's rules: "
            "dropped by kube-proxy's \"has no local endpoints\" rule where no endpoint is local",
        evidence=tuple(evidence),
        explains=tuple(dict.fromkeys(k for c in clients for k in c.explain_keys())),
        fix=(Fix(f"kubectl -n {ns} get svc {svc} -o jsonpath='{{.spec.healthCheckNodePort}}'  "
                 "# point the load balancer's health check at this port (it answers 503 on "
                 "nodes without an endpoint)", "now"),
             Fix(f"kubectl -n {ns} patch svc {svc} -p '{{\"spec\":{{\"externalTrafficPolicy\":"
                 "\"Cluster\"}}'", "permanent",
                 "every node forwards to any endpoint (client source IPs are then masqueraded)")),
        detail=detail, trace=dropped[0][1],
    )
