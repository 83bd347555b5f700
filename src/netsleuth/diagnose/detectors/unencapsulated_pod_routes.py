"""Failure mode 7: pod traffic leaves the node un-encapsulated where the fabric cannot carry it.

With Calico `ipipMode/vxlanMode: Never` (or `CrossSubnet` between nodes it believes share a
subnet), flannel host-gw or kube-router direct routing, pod-addressed packets go onto the
wire as they are: source and destination are pod IPs. Two things then drop them silently:
* the next hop is a router (another subnet's nodes are reached via a gateway) that has no
  routes for the pod CIDRs: the packet goes to its default route and dies;
* a cloud fabric's anti-spoofing (AWS source/destination check, GCP/Azure IP forwarding
  off) drops packets whose addresses are not the instance's own, even between nodes of the
  same subnet.
Same-node pod traffic works, cross-node pod traffic times out.

What can be proven from inside the nodes: the trace of a pod's packet to a pod on another
node, through the node's own routes, shows it leaving a LAN interface un-encapsulated (no
tunnel device, pod source address kept) towards a gateway that is not a cluster node, or,
on a cloud instance, directly to another node. What cannot be proven from inside: whether the
router has routes for the pod CIDRs, or whether the cloud's source/destination check is on —
the detector says which command would show it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cluster import k8s_nodes, pod_cidr_facts, route_text
from netsleuth.diagnose.detectors._common import line
from netsleuth.diagnose.detectors._nodenet import (
    TIMEOUTS,
    Candidate,
    error_keys,
    is_cni_device,
    is_tunnel,
    iter_nodes,
    local_pod_sources,
    peer_ips,
    scan,
    trace_line,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.net import TABLE_MAIN, Route, RouteType

KIND = "unencapsulated-pod-traffic"
ENCAP_SETTING = re.compile(
    r"CALICO_IPV4POOL_(?:IPIP|VXLAN)\S*\s*[:=]\s*\"?(Never|CrossSubnet|Off)\"?|"
    r"(?:ipipMode|vxlanMode)\"?:\s*\"?(Never|CrossSubnet)\"?|"
    r"^\S+\s+\d+\.\d+\.\d+\.\d+/\d+\s+\S+\s+(Never|CrossSubnet)\s+(Never|CrossSubnet)\b|"
    r"\"Type\":\s*\"host-gw\"|\"Backend\":\s*\{\s*\"Type\":\s*\"host-gw\"", re.IGNORECASE)
CLOUD_HOST = re.compile(r"^ip-\d+-\d+-\d+-\d+(\.[\w.-]+)?$|\.(ec2|compute)\.internal$")


@dataclass(frozen=True, slots=True)
class _Leak:
    route: Route
    cand: Candidate
    trace: Trace
    via_router: bool  # next hop is not a cluster node


def _cloud(ev: Evidence) -> str | None:
    for k in k8s_nodes(ev).values():
        provider = k.annotations.get("providerID") or k.labels.get("providerID") or ""
        for prefix, name in (("aws://", "AWS"), ("gce://", "GCP"), ("azure://", "Azure")):
            if provider.startswith(prefix):
                return name
        if CLOUD_HOST.search(k.name):
            return "AWS"
        if any(key.startswith(("eks.amazonaws.com", "topology.ebs.csi.aws.com"))
               for key in k.labels):
            return "AWS"
    return None


def _pod_routes(ev: Evidence, node: NodeEvidence) -> list[tuple[Route, bool]]:
    """Routes to other nodes' pod blocks that leave through a LAN interface with a gateway,
    and whether that gateway is a router (not one of the cluster's nodes)."""
    state = node.state
    cidrs = [c for c, _, _ in pod_cidr_facts(ev) if c.version == 4]
    peers = peer_ips(ev, node.name)
    out: list[tuple[Route, bool]] = []
    for r in state.routes:
        if r.table != TABLE_MAIN or r.type != RouteType.UNICAST or r.dst.version != 4:
            continue
        if r.dst.prefixlen == 0 or r.gateway is None or r.dev is None:
            continue
        if is_cni_device(r.dev) or is_tunnel(state, r.dev):
            continue
        in_pods = any(r.dst.subnet_of(c) for c in cidrs)
        if not in_pods and r.protocol not in ("bird", "bgp"):
            continue
        out.append((r, r.gateway not in peers))
    return out


@detector("A07", title="Pod traffic leaves un-encapsulated where the fabric cannot carry it",
          needs=("routes",), mode="7")
def unencapsulated_pod_routes(ev: Evidence) -> Iterator[Finding]:
    cloud = _cloud(ev)
    settings = scan(ev, ENCAP_SETTING)
    for node in iter_nodes(ev):
        leaks: list[_Leak] = []
        sources = local_pod_sources(ev, node)
        for r, via_router in _pod_routes(ev, node):
            if not via_router and cloud is None:
                continue  # direct routing between nodes on one L2 segment: fine on-prem
            dst = r.dst.network_address + 2
            if sources:
                src, dev, _ = sources[0]
                cand = Candidate(f"pod {src} on {node.name} → pod {dst} ({r.dst})", dst, 8080,
                                 src, dev)
            else:
                cand = Candidate(f"{node.name} → pod {dst} ({r.dst})", dst, 8080)
            t = cand.run(node)
            if t.verdict not in (Verdict.FORWARDED, Verdict.SENT) or t.main.masquerade:
                continue
            if is_tunnel(node.state, t.main.interface):
                continue
            leaks.append(_Leak(r, cand, t, via_router))
        if leaks:
            yield _finding(ev, node, leaks, cloud, [h.evidence for h in settings[:2]])


def _finding(ev: Evidence, node: NodeEvidence, leaks: list[_Leak], cloud: str | None,
             settings: list[EvidenceLine]) -> Finding:
    x = leaks[0]
    gw = x.route.gateway
    evidence: list[EvidenceLine] = [trace_line(x.trace, x.cand.what)]
    evidence += [line(lk.route.source, route_text(lk.route))
                 for lk in leaks[:3]]
    evidence += settings
    routers = [lk for lk in leaks if lk.via_router]
    if routers:
        title = (f"Pod traffic from {node.name} to other nodes' pods goes un-encapsulated to "
                 f"the router {routers[0].route.gateway}")
        cannot = (f"Whether {routers[0].route.gateway} has routes for the pod CIDRs (and "
                  "whether the fabric accepts pod-addressed packets) cannot be seen from the "
                  "node: check the router's table, or capture on the peer "
                  f"(tcpdump -ni any host {x.cand.dst}).")
    else:
        title = (f"Pod traffic from {node.name} leaves un-encapsulated on {cloud}: the "
                 "source/destination check drops pod-addressed packets")
        cannot = ("Whether the instance's source/destination check is enabled cannot be seen "
                  "from inside: `aws ec2 describe-instance-attribute --instance-id <id> "
                  "--attribute sourceDestCheck`.")
    fixes = (
        Fix("calicoctl patch ippool default-ipv4-ippool -p "
            "'{\"spec\":{\"vxlanMode\":\"Always\",\"ipipMode\":\"Never\"}}'   # or ipipMode: "
            "Always; flannel: Backend Type vxlan instead of host-gw", "now",
            "encapsulate pod traffic between nodes: the fabric then only sees node addresses. "
            "Not verifiable by simulation: it changes the CNI's routes and the fabric."),
        Fix("aws ec2 modify-instance-attribute --instance-id <id> --no-source-dest-check; "
            "kubectl -n kube-system set env daemonset/calico-node FELIX_AWSSRCDSTCHECK=Disable"
            if cloud == "AWS" else
            f"add routes for each node's pod CIDR on the router {gw} (next hop: that node)",
            "permanent", "let the fabric carry pod addresses natively instead"),
    )
    explains = error_keys(ev, node.name, TIMEOUTS | {"EHOSTUNREACH"}, pods_only=True)
    explains.append(f"dns-errors@{node.name}")
    detail = (
        f"{node.name} routes other nodes' pod blocks ({', '.join(str(lk.route.dst) for lk in leaks[:3])}) "
        f"out of {x.trace.main.interface} via {gw}, without a tunnel: packets keep pod source "
        f"and destination addresses on the wire (traced: {x.cand.what} leaves "
        f"{x.trace.main.interface} to next hop {x.trace.main.next_hop}, source "
        f"{x.trace.main.packet.src}). " + cannot
    )
    return Finding(
        detector="A07", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=title, node=node.name, confidence=0.7 if routers else 0.6,
        why=("traced through the node's routes: pod packets leave un-encapsulated "
             + ("to a gateway that is not a cluster node" if routers else
                f"on a {cloud} instance") + "; the fabric's behaviour itself cannot be proven "
             "from inside the node"),
        evidence=tuple(evidence), explains=tuple(dict.fromkeys(explains)), fix=fixes,
        detail=detail, trace=x.trace,
    )
