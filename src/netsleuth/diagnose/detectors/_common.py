"""Shared vocabulary and helpers for detectors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from ipaddress import ip_network

from netsleuth.datapath.trace import NodeDatapath
from netsleuth.datapath.trace_model import Trace
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine
from netsleuth.model.k8s import ClusterFacts, LogLine
from netsleuth.model.net import IPAddress, IPNetwork
from netsleuth.model.node import NodeState
from netsleuth.model.source import SourceRef

CNI_AGENT = re.compile(r"^(calico-node|kube-flannel|flannel|cilium|weave-net|kube-router|canal|"
                       r"antrea-agent|kube-ovn-cni|aws-node)(-ds)?(-[a-z0-9]{4,10})?$")
DNS_POD = re.compile(r"^(coredns|kube-dns)-")


def line(source: SourceRef | None, text: str) -> EvidenceLine:
    if source is None:
        return EvidenceLine("<derived>", 0, text)
    return EvidenceLine(source.file, source.line, text.rstrip())


def service_cidrs(ev: Evidence) -> list[IPNetwork]:
    return [f.value for f in ev.facts.service_cidrs]


def kubernetes_target(ev: Evidence) -> tuple[IPAddress, int] | None:
    """The `kubernetes` Service (ClusterIP, 443): the apiserver as in-cluster clients see it."""
    ip: IPAddress | None = ClusterFacts.first(ev.facts.kubernetes_service_ips)
    if ip is None:
        cidrs = service_cidrs(ev)
        if not cidrs:
            return None
        # kube-apiserver gives the `kubernetes` Service the first address of the range.
        ip = cidrs[0].network_address + 1
    port = 443
    for svc in ev.objects.services:
        if svc.namespace in (None, "default") and svc.name == "kubernetes" and svc.ports:
            port = svc.ports[0].port
    return ip, port


def is_service_ip(ev: Evidence, ip: IPAddress | None) -> bool:
    if ip is None:
        return False
    if any(ip in c for c in service_cidrs(ev)):
        return True
    return any(ip in s.cluster_ips for s in ev.objects.services)


def node_key(node: str | None) -> str:
    return node or "?"


def cni_agent(pod: str | None) -> bool:
    return bool(pod and CNI_AGENT.match(pod))


def dns_pod(pod: str | None) -> bool:
    return bool(pod and DNS_POD.match(pod))


_DATAPATHS: dict[int, tuple[NodeState, NodeDatapath]] = {}


def _datapath(state: NodeState) -> NodeDatapath:
    """One compiled datapath per node state (detectors trace the same nodes many times)."""
    hit = _DATAPATHS.get(id(state))
    if hit is None or hit[0] is not state:
        if len(_DATAPATHS) > 64:
            _DATAPATHS.clear()
        hit = (state, NodeDatapath(state))
        _DATAPATHS[id(state)] = hit
    return hit[1]


def datapath(state: NodeState) -> NodeDatapath:
    """The node state's compiled datapath, shared by every detector (one per node state)."""
    return _datapath(state)


def trace_from_host(node: NodeEvidence | NodeState, dst: IPAddress, port: int | None,
                    proto: str = "tcp") -> Trace:
    state = node.state if isinstance(node, NodeEvidence) else node
    return _datapath(state).trace(dst=dst, dport=port, proto=proto)


def net_error_lines(ev: Evidence) -> Iterable[LogLine]:
    return (ln for ln in ev.objects.logs if ln.net_error is not None)


def cidr_text(cidrs: list[IPNetwork], ip: IPAddress) -> str:
    for c in cidrs:
        if ip in c:
            return str(c)
    return str(ip_network(ip))


CNI_DEVICES = ("cali", "flannel", "cni", "cilium", "vxlan.calico", "tunl", "weave", "kube-",
               "lxc", "antrea", "ovn", "nodelocaldns")


def looks_like_k8s_node(ev: Evidence, node: NodeEvidence) -> bool:
    """Whether anything says this machine is a Kubernetes node: the cluster knows it, pods run
    on it, kube-proxy programmed it, or a CNI created its devices. Node-level checks that
    only make sense on a node (forwarding, CNI rules) stay silent on any other machine."""
    if any(n.name == node.name for n in ev.objects.nodes):
        return True
    if any(ev.node_for(p.node) == node.name for p in ev.objects.pods):
        return True
    if any(name.startswith("KUBE-") for t in node.state.ruleset.tables.values()
           for name in t.chains):
        return True
    names = {link.name for link in node.state.links} | {a.ifname for a in node.state.addresses}
    names |= {r.dev for r in node.state.routes if r.dev}
    return any(n.startswith(CNI_DEVICES) for n in names)
