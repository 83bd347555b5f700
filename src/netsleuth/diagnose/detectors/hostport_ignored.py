"""Failure mode 28: a pod's hostPort is silently ignored (no portmap plugin).

hostPort is not implemented by kube-proxy but by the CNI chain's `portmap` plugin, which
writes nat CNI-HOSTPORT-DNAT / CNI-DN-... rules when the pod starts (it needs
`"capabilities": {"portMappings": true}` in the conflist and the binary in /opt/cni/bin).
Without it kubelet accepts the pod, it runs, and <nodeIP>:<hostPort> reaches the node itself,
where nothing listens: the kernel answers RST, "connection refused"
(projectcalico/kube-controllers#109, containernetworking/plugins#275).

Proof: an outside client's packet to the pod node's address and hostPort traced through the
node's real nat table is not DNATed and is delivered to the node's own (empty) port; the
conflist, when shown, lacks portmap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from netsleuth.datapath.trace_model import Verdict
from netsleuth.diagnose.detectors._clients import errors_to
from netsleuth.diagnose.detectors._cluster import pods_on_node
from netsleuth.diagnose.detectors._common import line
from netsleuth.diagnose.detectors._host_evidence import numbered, outputs
from netsleuth.diagnose.detectors._paths import Flow, ext_client, node_ip, real_rules, trace_flow
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import ContainerStatus

KIND = "hostport-ignored"


def _conflist(ev: Evidence, node: str) -> tuple[list[str] | None, EvidenceLine | None]:
    """Plugin types of the node's CNI conflist, when shown."""
    for raw in outputs(ev, "cni-conf", node):
        start = raw.text.find("{")
        if start < 0:
            continue
        try:
            conf = json.loads(raw.text[start:])
        except ValueError:
            continue
        if not isinstance(conf, dict):
            continue
        plugins = conf.get("plugins", [conf])
        types = [str(p.get("type")) for p in plugins if isinstance(p, dict)]
        ref = next((r for r, t in numbered(raw) if '"plugins"' in t), raw.source)
        return types, line(ref, f"CNI conflist {conf.get('name', '')}: plugins "
                                f"{', '.join(types)}")
    return None, None


@detector("C28", title="hostPort silently ignored (no portmap plugin)",
          needs=("pods", "iptables"), mode="28")
def hostport_ignored(ev: Evidence) -> Iterator[Finding]:
    for node in sorted(ev.nodes.values(), key=lambda n: n.name):
        if not real_rules(node):
            continue
        nat = node.state.ruleset.table("nat")
        chains = set(nat.chains) if nat else set()
        has_portmap_chain = "CNI-HOSTPORT-DNAT" in chains
        for pod in pods_on_node(ev, node.name):
            if pod.host_network:
                continue
            for ctr in pod.containers:
                for hp in ctr.host_ports:
                    num, _, proto = hp.partition("/")
                    if not num.isdigit():
                        continue
                    f = _check(ev, node, pod.name or "?", ctr, int(num), (proto or "TCP").lower(),
                               has_portmap_chain)
                    if f is not None:
                        yield f


def _check(ev: Evidence, node: NodeEvidence, pod_name: str, ctr: ContainerStatus, port: int,
           proto: str, has_chain: bool) -> Finding | None:
    addr = node_ip(ev, node)
    if addr is None:
        return None
    ip, nic = addr
    client = ext_client(node, nic)
    flow = Flow("hostport", f"client {client} → {ip}:{port}", client, ip, port, proto, nic)
    trace = trace_flow(node, flow)
    main = trace.main
    if any(s.action.startswith("DNAT") for s in main.steps):
        return None  # portmap's DNAT is there
    types, conf_line = _conflist(ev, node.name)
    if types is not None and "portmap" in types and has_chain:
        return None
    evidence: list[EvidenceLine] = [line(ctr.source, f"pod {pod_name} container {ctr.name}: "
                                                     f"hostPort {port}/{proto.upper()}")]
    evidence.append(line(None, f"trace on {node.name}: {flow.label} is not DNATed: "
                               f"{main.verdict.value} {main.packet.endpoint('dst')}"
                               + (" (the node's own port)" if main.verdict ==
                                  Verdict.DELIVERED_LOCAL else "")))
    nat = node.state.ruleset.table("nat")
    pre = nat.chains.get("PREROUTING") if nat else None
    if pre is not None:
        evidence.append(line(pre.source, "nat PREROUTING has no CNI-HOSTPORT-DNAT jump"
                         if not has_chain else "CNI-HOSTPORT-DNAT has no rule for this port"))
    if conf_line is not None:
        evidence.append(conf_line)
    clients = errors_to(ev, {ip}, {"ECONNREFUSED"}, port)
    evidence += [c.evidence for c in clients[:2]]
    confidence = 0.85 if types is not None and "portmap" not in types else 0.78
    cni_dir = "/etc/cni/net.d"
    return Finding(
        detector="C28", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=f"hostPort {port} of pod {pod_name} is not mapped on {node.name}: the CNI chain "
              "has no portmap plugin",
        node=node.name, confidence=confidence,
        why="an outside packet to the node's address and the hostPort, traced through the "
            "node's nat table, is not DNATed to the pod (no portmap rules) and reaches the node's "
            "own port, where nothing listens",
        evidence=tuple(evidence),
        explains=tuple(dict.fromkeys(k for c in clients for k in c.explain_keys())),
        fix=(Fix(f"add {{\"type\": \"portmap\", \"capabilities\": {{\"portMappings\": true}}, "
                 f"\"snat\": true}} to the \"plugins\" list of the conflist in {cni_dir}; check "
                 "that /opt/cni/bin/portmap exists", "permanent"),
             Fix(f"kubectl delete pod {pod_name}   # recreated pods get the mapping", "now",
                 "portmap only acts when a pod's sandbox is set up")),
        detail=f"Traced: {flow.label} → {main.verdict.value} at {main.packet.endpoint('dst')}; "
               "kubelet accepted the pod's hostPort, but only the portmap CNI plugin implements "
               "it.",
        trace=trace,
    )
