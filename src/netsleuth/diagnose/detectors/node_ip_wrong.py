"""Failure mode 2: wrong node InternalIP on multi-NIC hosts (kubelet `--node-ip` not set).

Without `--node-ip`, kubelet reports the address of the interface that holds the default route
(pkg/kubelet/nodestatus: the first address of the default-route interface when the hostname
does not resolve). On VirtualBox/Vagrant hosts that is the NAT NIC, and every VM has the same
10.0.2.15; on cloud hosts it may be a public or management NIC. The apiserver then dials each
kubelet (logs, exec, port-forward, metrics) at that address: with a duplicate it reaches the
wrong kubelet — often its own node — hence `error dialing backend: dial tcp X:10250` or a
`NotFound ... pods/log` for a pod that kubelet does not have.

Proof: duplicate InternalIPs across Node objects, or an InternalIP on a node interface that
the other nodes do not share; then a trace from a node's own state towards another node's
InternalIP, which is delivered locally (a duplicate) or leaves through the default gateway
instead of the cluster network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cluster import k8s_nodes, route_text
from netsleuth.diagnose.detectors._common import line
from netsleuth.diagnose.detectors._nodenet import (
    Candidate,
    connected_interface,
    default_routes,
    host_addresses,
    interface_of,
    scan,
    trace_line,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import K8sNode
from netsleuth.model.net import Address, IPAddress

KIND = "node-ip-wrong"
KUBELET_PORT = 10250
# `kubectl logs/exec` failing at the apiserver → kubelet hop.
DIAL_BACKEND = re.compile(r"error dialing backend: dial tcp \[?([0-9a-fA-F.:]+?)\]?:(\d+)")


def _right_address(ev: Evidence, node: NodeEvidence, wrong: IPAddress,
                   peers: list[IPAddress]) -> Address | None:
    """The address kubelet should report: on another LAN interface, preferably one whose
    subnet holds other nodes' addresses, else one that does not carry the default route."""
    state = node.state
    wrong_if = interface_of(state, wrong)
    candidates = [a for a in host_addresses(state) if a.ip.version == wrong.version
                  and a.ip != wrong and (wrong_if is None or a.ifname != wrong_if.ifname)]
    for a in candidates:
        if any(p in a.network for p in peers if p.version == a.ip.version):
            return a
    default_devs = {r.dev for r in default_routes(state)}
    for a in candidates:
        if a.ifname not in default_devs:
            return a
    return None


def _fix_for(node: str, ip: IPAddress | str) -> str:
    return (f"on {node}: echo 'KUBELET_EXTRA_ARGS=--node-ip={ip}' > /etc/default/kubelet "
            "&& systemctl restart kubelet   # /etc/sysconfig/kubelet on RHEL-likes")


@detector("A02", title="Wrong node InternalIP on multi-NIC hosts", needs=("k8s-nodes",), mode="2")
def node_ip_wrong(ev: Evidence) -> Iterator[Finding]:
    nodes = k8s_nodes(ev)
    owners: dict[IPAddress, list[K8sNode]] = {}
    for k in nodes.values():
        for ip in k.internal_ips:
            owners.setdefault(ip, []).append(k)
    reported: set[str] = set()
    for ip, group in sorted(owners.items(), key=lambda x: (x[0].version, int(x[0]))):
        if len(group) < 2:
            continue
        reported.update(k.name for k in group)
        yield _duplicate(ev, ip, group)
    for k in nodes.values():
        if k.name in reported or k.name not in ev.nodes:
            continue
        finding = _off_network(ev, k, nodes)
        if finding is not None:
            yield finding


def _symptom_keys(names: list[str]) -> list[str]:
    return [f"kubelet-unreachable@{n}" for n in names] + ["kubelet-unreachable@?"]


def _duplicate(ev: Evidence, ip: IPAddress, group: list[K8sNode]) -> Finding:
    names = [k.name for k in group]
    evidence: list[EvidenceLine] = [line(k.source, f"node {k.name}: InternalIP {ip}")
                                    for k in group[:4]]
    proof: Trace | None = None
    prover: NodeEvidence | None = None
    # Prefer tracing on a control-plane node: that is where the apiserver dials kubelets from.
    ordered = sorted(group, key=lambda k: (not any("control-plane" in r or "master" in r
                                                   for r in k.roles), k.name))
    for k in ordered:
        node = ev.nodes.get(k.name)
        if node is None or interface_of(node.state, ip) is None:
            continue
        other = next((n for n in names if n != k.name), "?")
        t = Candidate(f"{k.name} → {other}'s kubelet at {ip}:{KUBELET_PORT}", ip,
                      KUBELET_PORT).run(node)
        if t.verdict == Verdict.DELIVERED_LOCAL:
            proof, prover = t, node
            a = interface_of(node.state, ip)
            assert a is not None
            evidence.append(trace_line(t, f"from {k.name} to {other}'s kubelet at {ip}"))
            evidence.append(line(a.source, f"{ip} is {k.name}'s own address on {a.ifname}"))
            for r in default_routes(node.state):
                if r.dev == a.ifname:
                    text = route_text(r)
                    evidence.append(line(r.source, text))
            break
    peers = [x for k in group for x in k.internal_ips if x != ip]
    fixes: list[Fix] = []
    per_node: list[str] = []
    for k in group:
        node = ev.nodes.get(k.name)
        right = _right_address(ev, node, ip, peers) if node is not None else None
        if right is not None:
            fixes.append(Fix(_fix_for(k.name, right.ip), "now",
                             f"{right.ip} is {k.name}'s address on {right.ifname}, the interface "
                             "that does not carry the NAT/default route"))
            per_node.append(f"{k.name} → {right.ip} ({right.ifname})")
        else:
            fixes.append(Fix(_fix_for(k.name, f"<{k.name}'s address on the cluster network>"),
                             "now"))
    fixes.append(Fix("Vagrant: set `--node-ip` from the private_network address in the "
                     "provisioning script; kubeadm: nodeRegistration.kubeletExtraArgs.node-ip "
                     "in the join/init configuration", "permanent",
                     "so that re-provisioned nodes register with the right address"))
    evidence.extend(h.evidence for h in scan(ev, DIAL_BACKEND)[:4] if h.match.group(1) == str(ip))
    detail = (
        f"{len(group)} nodes ({', '.join(names)}) report the same InternalIP {ip}. kubelet "
        "took the address of the interface with the default route (typically a NAT NIC that "
        "every VM has with the same address). The apiserver reaches kubelets at their "
        f"InternalIP, so `kubectl logs/exec/port-forward` for pods on these nodes go to "
        f"whichever host answers {ip} — "
        + ("as the trace shows, a node reaches itself there" if proof else "not the right one")
        + ". Node-to-node traffic of components that use InternalIPs (CNI tunnel endpoints, "
        "metrics) is misdirected too."
        + (" Correct addresses: " + "; ".join(per_node) + "." if per_node else "")
    )
    node_name = prover.name if prover is not None else group[0].name
    return Finding(
        detector="A02", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node_name}",
        title=f"Nodes {', '.join(names)} all report InternalIP {ip} (kubelet --node-ip not set)",
        node=node_name, confidence=0.95 if proof else 0.85,
        why=("duplicate InternalIP in the Node objects"
             + (f"; tracing from {prover.name} to that address is delivered to {prover.name} "
                "itself" if prover else "")),
        evidence=tuple(evidence), explains=tuple(_symptom_keys(names)), fix=tuple(fixes),
        detail=detail, trace=proof,
    )


def _off_network(ev: Evidence, k: K8sNode, nodes: dict[str, K8sNode]) -> Finding | None:
    """A unique InternalIP that sits on a NIC the other nodes do not share, while another NIC
    of the node is on their network."""
    node = ev.nodes[k.name]
    peers = [ip for other in nodes.values() if other.name != k.name for ip in other.internal_ips]
    for ip in k.internal_ips:
        a = interface_of(node.state, ip)
        if a is None or not peers:
            continue
        if any(p in a.network for p in peers if p.version == ip.version):
            continue  # on the same network as other nodes
        right = _right_address(ev, node, ip, peers)
        if right is None or not any(p in right.network for p in peers if p.version == ip.version):
            continue
        evidence: list[EvidenceLine] = [
            line(k.source, f"node {k.name}: InternalIP {ip}"),
            line(a.source, f"{ip}/{a.network.prefixlen} on {a.ifname}"),
            line(right.source, f"{right.interface} on {right.ifname} — the other nodes' network"),
        ]
        proof: Trace | None = None
        for peer in ev.nodes.values():
            if peer.name == k.name or connected_interface(peer.state, ip) is not None:
                continue
            t = Candidate(f"{peer.name} → {k.name}'s kubelet", ip, KUBELET_PORT).run(peer)
            if t.verdict == Verdict.SENT and t.main.next_hop != str(ip):
                proof = t
                evidence.append(trace_line(t, f"from {peer.name} to {k.name}'s InternalIP "
                                              "(not on a shared network: via the gateway)"))
                break
        return Finding(
            detector="A02", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{k.name}",
            title=f"Node {k.name} reports InternalIP {ip} ({a.ifname}), not its cluster "
                  f"address {right.ip} ({right.ifname})",
            node=k.name, confidence=0.9 if proof else 0.75,
            why=(f"{ip} is on {a.ifname}, a network no other node is on; {right.ifname} "
                 f"({right.network}) holds the other nodes' InternalIPs"
                 + ("; the trace from another node goes via its gateway" if proof else "")),
            evidence=tuple(evidence), explains=tuple(_symptom_keys([k.name])),
            fix=(Fix(_fix_for(k.name, right.ip), "now"),),
            detail=(f"kubelet on {k.name} registered the address of {a.ifname}; the apiserver "
                    f"and other nodes reach it there instead of on {right.ifname}."),
            trace=proof,
        )
    return None

