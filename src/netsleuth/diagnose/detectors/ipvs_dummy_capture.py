"""Failure mode 22: IPVS mode's kube-ipvs0 holds an address that belongs to a real host.

In IPVS mode kube-proxy binds every ClusterIP, externalIP and load-balancer IP to the dummy
interface kube-ipvs0 so that IPVS sees the packets (LOCAL_IN). Each address gets a `local`
route in table local, which is looked up before main: once a Service's externalIPs (or a
MetalLB/LB address) names a node or another machine on the LAN, every packet from this node to
that machine is delivered to itself — to IPVS for the Service's port, to nothing (refused /
kube-proxy's KUBE-IPVS-FILTER REJECT) for any other (kubernetes/kubernetes#93175). iptables
mode is not affected (it DNATs without binding the address).

Proof: a packet from the node to the captured address traced through the node's tables:
the route lookup picks `local <ip> dev kube-ipvs0` and the packet never leaves; re-traced with
the address removed it goes out to the real host.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._clients import errors_to
from netsleuth.diagnose.detectors._common import datapath, line, service_cidrs
from netsleuth.diagnose.detectors._host_evidence import numbered, outputs
from netsleuth.diagnose.detectors._paths import node_ip
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.net import TABLE_LOCAL, Address, IPAddress
from netsleuth.model.node import NodeState

KIND = "ipvs-captures-address"
DUMMY = "kube-ipvs0"


def _owner(ev: Evidence, node: NodeEvidence, ip: IPAddress) -> tuple[str, list[EvidenceLine]] | None:
    """Why `ip` is a real host's address: another node's, or an address on one of this node's
    own LAN subnets (other than the node's)."""
    for name, ips in ev.facts.node_ips.items():
        if name != node.name and ip in ips:
            return f"the InternalIP of node {name}", []
    for addr in node.state.addresses:
        if addr.ifname in (DUMMY, "lo") or addr.ip == ip or addr.network.prefixlen >= 31:
            continue
        if addr.ip.version == ip.version and ip in addr.network:
            return (f"an address on {addr.ifname}'s subnet {addr.network} (the node's LAN)",
                    [line(addr.source, f"{addr.ip}/{addr.network.prefixlen} on {addr.ifname}")])
    for r in node.state.routes:
        if r.gateway == ip:
            return "the node's own gateway", [line(r.source, f"route via {ip}")]
    return None


def _services_claiming(ev: Evidence, ip: IPAddress) -> list[str]:
    out: list[str] = []
    for svc in ev.objects.services:
        if str(ip) in svc.external_ips:
            out.append(f"{svc.namespace}/{svc.name}")
    return out


def _without(state: NodeState, ip: IPAddress) -> NodeState:
    addrs = tuple(a for a in state.addresses if not (a.ifname == DUMMY and a.ip == ip))
    routes = tuple(r for r in state.routes if not (r.table == TABLE_LOCAL and r.dst.prefixlen ==
                                                  r.dst.max_prefixlen and r.dst.network_address
                                                  == ip))
    return replace(state, addresses=addrs, routes=routes,
                   assumptions=state.assumptions + (f"what-if: {ip} removed from {DUMMY}",))


@detector("C22", title="IPVS kube-ipvs0 captures an address in use elsewhere",
          needs=("addresses",), mode="22")
def ipvs_capture(ev: Evidence) -> Iterator[Finding]:
    cidrs = service_cidrs(ev)
    for node in sorted(ev.nodes.values(), key=lambda n: n.name):
        own = {a.ip for a in node.state.addresses if a.ifname != DUMMY}
        for addr in node.state.addresses:
            if addr.ifname != DUMMY or addr.ip in own:
                continue
            if any(addr.ip in c for c in cidrs if c.prefixlen < c.max_prefixlen - 1):
                continue  # a ClusterIP: expected there
            owner = _owner(ev, node, addr.ip)
            if owner is None:
                continue
            f = _finding(ev, node, addr, owner)
            if f is not None:
                yield f


def _finding(ev: Evidence, node: NodeEvidence, addr: Address,
             owner: tuple[str, list[EvidenceLine]]) -> Finding | None:
    ip = addr.ip
    clients = errors_to(ev, {ip})
    port = next((c.dst_port for c in clients if c.dst_port), None) or 80
    trace: Trace = datapath(node.state).trace(dst=ip, dport=port)
    first = trace.main.steps[0] if trace.main.steps else None
    if first is None or "local" not in first.action or DUMMY not in first.rule:
        return None
    fixed = datapath(_without(node.state, ip)).trace(dst=ip, dport=port)
    evidence: list[EvidenceLine] = [line(addr.source, f"{ip}/{addr.network.prefixlen} on {DUMMY}"),
                                    line(first.source, f"route lookup for {ip}: local {ip} dev "
                                                       f"{DUMMY} table local   → delivered to this "
                                                       "node")]
    evidence += owner[1]
    for raw in outputs(ev, "ipvsadm", node.name):
        for ref, text in numbered(raw):
            if f"{ip}:" in text:
                evidence.append(line(ref, text.strip()))
                break
    evidence += [c.evidence for c in clients[:2]]
    claimers = _services_claiming(ev, ip)
    names = ", ".join(claimers) or "a Service (externalIPs / load-balancer IP)"
    verified = fixed.main.verdict == Verdict.SENT
    fixes = []
    for svc in claimers[:1]:
        ns, _, name = svc.partition("/")
        fixes.append(Fix(f"kubectl -n {ns} patch svc {name} --type=json -p "
                         "'[{\"op\":\"remove\",\"path\":\"/spec/externalIPs\"}]'", "now",
                         f"kube-proxy then removes {ip} from {DUMMY}"
                         + (f". Verified by simulation: without it, the packet to {ip} goes out "
                            f"{fixed.main.interface} to {fixed.main.next_hop}" if verified else "")))
    fixes.append(Fix(f"ip addr del {ip}/32 dev {DUMMY}   # on {node.name}; kube-proxy re-adds it "
                     "while a Service still claims it", "now" if not claimers else "permanent",
                     ("Verified by simulation: the packet then leaves via "
                      f"{fixed.main.interface}") if verified else ""))
    fixes.append(Fix("use externalIPs / LB addresses no host uses (and ipvs.strictARP: true with "
                     "MetalLB)", "permanent"))
    n_ip = node_ip(ev, node)
    return Finding(
        detector="C22", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=f"{DUMMY} on {node.name} holds {ip}, {owner[0]}: the node can no longer reach "
              "that host",
        node=node.name, confidence=0.9 if claimers or clients else 0.8,
        why=f"traced from {node.name} to {ip}: table local's route for the {DUMMY} address wins, "
            "the packet is delivered to the node itself",
        evidence=tuple(evidence),
        explains=tuple(dict.fromkeys(k for c in clients for k in c.explain_keys())),
        fix=tuple(fixes),
        detail=f"{names} put {ip} on {DUMMY} (IPVS mode binds every Service address there). "
               f"{ip} is {owner[0]}; from {node.name}"
               + (f" ({n_ip[0]})" if n_ip else "") + " every connection to it now ends on the node "
               f"itself: {trace.main.verdict.value}"
               + (f" ({trace.main.errno})" if trace.main.errno else "") + ".",
        trace=trace,
    )
