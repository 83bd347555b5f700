"""Failure mode 9: the pod or Service CIDR overlaps the nodes' own (LAN) addressing.

Kubernetes requires the pod range, the Service range and the node network to be disjoint
(kubeadm `--pod-network-cidr`/`--service-cidr`, Calico's default pool 192.168.0.0/16, k3s'
10.42.0.0/16). When they overlap, the longest-prefix match decides per address which of two
meanings wins: a Calico /26 block routed into the tunnel is more specific than the LAN's /24,
so the node's gateway or a LAN host inside that block becomes unreachable (the node "goes
unreachable right after the CNI install"); a LAN route more specific than a pod block sends
pod traffic out of the LAN interface instead of the overlay.

Proof: the overlap itself is computed from the cluster facts and the nodes' addresses and
routes; each affected address is then traced through the node's real routing table, and a
fix that pins the LAN address is re-traced.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_network

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cluster import node_ips, pod_cidr_facts, route_text
from netsleuth.diagnose.detectors._common import cni_agent, line
from netsleuth.diagnose.detectors._nodenet import (
    Candidate,
    failures,
    host_addresses,
    is_cni_device,
    is_tunnel,
    iter_nodes,
    outcome_summary,
    passes,
    peer_ips,
    route_step_text,
    scan,
    service_cidr_facts,
    trace_line,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.errors import NetsleuthError
from netsleuth.model.net import TABLE_MAIN, IPAddress, IPNetwork, RouteType
from netsleuth.model.source import SourceRef
from netsleuth.parse.node_snapshot import with_extra_routes

KIND = "cidr-overlap"
# Private ranges to suggest instead, in order of preference.
SUGGEST = ("10.244.0.0/16", "10.42.0.0/16", "172.20.0.0/16", "10.100.0.0/16", "172.30.0.0/16",
           "10.200.0.0/16", "100.64.0.0/16", "10.96.0.0/16", "10.43.0.0/16", "172.21.0.0/16")


@dataclass(frozen=True, slots=True)
class _Overlap:
    cluster: IPNetwork
    what: str  # "pod CIDR" / "Service CIDR"
    how: str
    cluster_ref: SourceRef | None
    lan: IPNetwork
    lan_what: str  # "address 192.168.1.23/24 on eth0", "route ...", "InternalIP"
    lan_ref: SourceRef | None


@dataclass(frozen=True, slots=True)
class _Victim:
    cand: Candidate
    trace: Trace
    why: str


# Ranges people paste that the object parsers do not turn into facts: env of a `describe`
# cut with sed, calicoctl/IPPool listings, kubeadm configuration, k3s/kubeadm flags.
POD_RANGE_TEXT = re.compile(
    r"CALICO_IPV4POOL_CIDR\"?[:=\s]+\"?(\d+\.\d+\.\d+\.\d+/\d+)|"
    r"(?:--pod-network-cidr|--cluster-cidr|podSubnet:|clusterCIDR:)[=\s]*\"?(\d+\.\d+\.\d+\.\d+/\d+)|"
    r"^(?:default-ipv4-ippool|[\w.-]*pool[\w.-]*)\s+(\d+\.\d+\.\d+\.\d+/\d+)\s")
SVC_RANGE_TEXT = re.compile(
    r"(?:--service-cidr|--service-cluster-ip-range|serviceSubnet:)[=\s]*\"?"
    r"(\d+\.\d+\.\d+\.\d+/\d+)")


def _cluster_ranges(ev: Evidence) -> list[tuple[IPNetwork, str, str, SourceRef | None]]:
    out = [(c, "pod CIDR", how, ref) for c, how, ref in pod_cidr_facts(ev)]
    out += [(c, "Service CIDR", how, ref) for c, how, ref in service_cidr_facts(ev)
            if c.prefixlen < c.max_prefixlen]  # a lone kubernetes IP says nothing about size
    known = {c for c, _, _, _ in out}
    for rx, what in ((POD_RANGE_TEXT, "pod CIDR"), (SVC_RANGE_TEXT, "Service CIDR")):
        for hit in scan(ev, rx):
            text = next(g for g in hit.match.groups() if g)
            try:
                net = ip_network(text, strict=False)
            except ValueError:
                continue
            if net not in known:
                known.add(net)
                out.append((net, what, hit.text.strip()[:80], hit.source))
    return out


def _lan(ev: Evidence, node: NodeEvidence) -> list[tuple[IPNetwork, str, SourceRef | None]]:
    """The node's own networks: addresses and routes that are not the CNI's, InternalIPs."""
    state = node.state
    out: list[tuple[IPNetwork, str, SourceRef | None]] = []
    for a in host_addresses(state):
        out.append((a.network, f"address {a.interface} on {a.ifname}", a.source))
    for r in state.routes:
        if (r.table != TABLE_MAIN or r.dst.prefixlen == 0 or r.type != RouteType.UNICAST
                or is_cni_device(r.dev) or r.protocol in ("bird", "bgp")):
            continue
        if r.gateway is not None and any(r.gateway == ip for ip in peer_ips(ev, node.name)):
            continue  # a route to another node's pods (host-gw, direct routing)
        out.append((r.dst, f"route `{route_text(r)}`", r.source))
    for ip in node_ips(ev, node.name):
        out.append((ip_network(ip), f"InternalIP {ip}", None))
    return out


def _overlaps(ev: Evidence, node: NodeEvidence) -> list[_Overlap]:
    out: list[_Overlap] = []
    seen: set[tuple[IPNetwork, IPNetwork]] = set()
    for c, what, how, cref in _cluster_ranges(ev):
        for lan, lwhat, lref in _lan(ev, node):
            if lan.version != c.version or not lan.overlaps(c) or (c, lan) in seen:
                continue
            if lan.prefixlen == lan.max_prefixlen and any(
                    lan.network_address in o.lan for o in out if o.cluster == c):
                continue  # an address already covered by its own subnet's overlap
            seen.add((c, lan))
            out.append(_Overlap(c, what, how, cref, lan, lwhat, lref))
    return out


def _lan_hosts(ev: Evidence, node: NodeEvidence, ov: _Overlap) -> list[tuple[IPAddress, str]]:
    """LAN addresses inside the cluster range: gateways, other nodes, this node's own
    neighbours; a packet to them must stay on the LAN."""
    state = node.state
    out: list[tuple[IPAddress, str]] = []
    for r in state.routes:
        if r.table == TABLE_MAIN and r.gateway is not None and not is_cni_device(r.dev) \
                and r.gateway in ov.cluster and r.gateway in ov.lan:
            out.append((r.gateway, f"gateway of `{route_text(r)}`"))
    for ip, name in peer_ips(ev, node.name).items():
        if ip in ov.cluster and ip in ov.lan:
            out.append((ip, f"node {name}"))
    return list(dict.fromkeys(out))


def _pod_hosts(ev: Evidence, node: NodeEvidence, ov: _Overlap) -> list[tuple[IPAddress, str]]:
    """Pod addresses (on other nodes) inside the LAN network: they must go to their node."""
    out: list[tuple[IPAddress, str]] = []
    for pod in ev.objects.pods:
        if pod.host_network or cni_agent(pod.name) or not pod.node \
                or ev.node_for(pod.node) == node.name:
            continue
        for ip in pod.ips:
            if ip in ov.lan and ip in ov.cluster and ip not in peer_ips(ev, node.name):
                out.append((ip, f"pod {pod.key} on {pod.node}"))
    return out[:2]


def _misrouted(node: NodeEvidence, ip: IPAddress, lan_host: bool) -> tuple[Trace, str] | None:
    t = Candidate("", ip, 443).run(node)
    dev = t.main.interface or (t.main.packet.oif if t.main.packet else None)
    if lan_host:
        if t.verdict == Verdict.UNROUTABLE or (t.main.steps and "blackhole" in t.main.steps[0].rule):
            return t, "the pod network's route has no way to it"
        if dev and is_cni_device(dev) and dev != "lo":
            return t, f"it goes into the pod network ({dev})"
        return None
    if passes(t) and dev and not is_cni_device(dev) and not is_tunnel(node.state, dev) \
            and t.verdict != Verdict.DELIVERED_LOCAL:
        return t, f"it leaves through the LAN interface {dev} instead of the pod network"
    return None


@detector("A09", title="Pod or Service CIDR overlaps node/LAN addressing",
          needs=("addresses", "routes", "k8s-nodes"), mode="9")
def cidr_overlap(ev: Evidence) -> Iterator[Finding]:
    if not _cluster_ranges(ev):
        return
    found: list[Finding] = []
    for node in iter_nodes(ev):
        overlaps = _overlaps(ev, node)
        if not overlaps:
            continue
        victims: list[_Victim] = []
        for ov in overlaps:
            for ip, why in _lan_hosts(ev, node, ov):
                hit = _misrouted(node, ip, True)
                if hit:
                    victims.append(_Victim(Candidate(f"{node.name} → {why} {ip}", ip, 443),
                                           hit[0], hit[1]))
            for ip, why in _pod_hosts(ev, node, ov):
                hit = _misrouted(node, ip, False)
                if hit:
                    victims.append(_Victim(Candidate(f"{node.name} → {why} {ip}", ip, 443),
                                           hit[0], hit[1]))
        found.append(_finding(ev, node, overlaps, victims, _others(ev, overlaps)))
    yield from found
    if found:
        return  # nodes without state are listed in the finding of a node with state
    # Nodes known only from Node objects (no data-path state): their InternalIPs.
    for name, ips in sorted(ev.facts.node_ips.items()):
        if name in ev.nodes:
            continue
        for ip in ips:
            for c, what, how, cref in _cluster_ranges(ev):
                if ip.version == c.version and ip in c:
                    yield _address_only(name, ip, c, what, how, cref)


def _others(ev: Evidence, overlaps: list[_Overlap]) -> list[str]:
    """Nodes without data-path state whose InternalIP is in an overlapping range too."""
    ranges = {o.cluster for o in overlaps}
    return [f"{name} ({ip})" for name, ips in sorted(ev.facts.node_ips.items())
            if name not in ev.nodes for ip in ips
            if any(ip.version == c.version and ip in c for c in ranges)]


def _free_range(ev: Evidence, taken: list[IPNetwork]) -> str | None:
    for text in SUGGEST:
        n = ip_network(text)
        if not any(n.overlaps(t) for t in taken if t.version == n.version):
            return text
    return None


def _finding(ev: Evidence, node: NodeEvidence, overlaps: list[_Overlap],
             victims: list[_Victim], others: list[str]) -> Finding:
    ov = overlaps[0]
    evidence: list[EvidenceLine] = []
    for o in overlaps[:3]:
        evidence.append(line(o.cluster_ref, f"{o.what} {o.cluster} ({o.how})"))
        evidence.append(line(o.lan_ref, f"{o.lan_what} overlaps it"))
    for v in victims[:3]:
        evidence.append(trace_line(v.trace, f"{v.cand.what}: {v.why}"))
    taken = [o.lan for o in overlaps] + [lan for lan, _, _ in _lan(ev, node)] + \
            [c for c, _, _, _ in _cluster_ranges(ev)]
    free = _free_range(ev, taken)
    fixes: list[Fix] = []
    if victims:
        v = victims[0]
        a = next((x for x in host_addresses(node.state) if v.cand.dst in x.network), None)
        if a is not None and "LAN" not in v.why:
            spec = f"{v.cand.dst}/32 dev {a.ifname}"
            try:
                after = Candidate("", v.cand.dst, 443).run(
                    with_extra_routes(node.state, spec, source="fix"))
            except NetsleuthError:
                after = None
            if after is not None and passes(after) and after.main.interface == a.ifname:
                fixes.append(Fix(f"ip route add {spec}", "now",
                                 f"pin {v.cand.dst} to the LAN again (a /32 beats the pod "
                                 f"block). Verified by simulation: {route_step_text(after)} → "
                                 f"{outcome_summary(after.main)}. Only a stop-gap: every other "
                                 "LAN address in the range stays ambiguous."))
    target = free or "<a range that overlaps nothing on your network>"
    if ov.what == "pod CIDR":
        fixes.append(Fix(
            f"use a non-overlapping pod range, e.g. {target}: kubeadm init "
            f"--pod-network-cidr={target} / Calico: create an IPPool with cidr {target} and "
            f"disable the old one (calicoctl patch ippool <old> -p "
            "'{\"spec\":{\"disabled\":true}}', then recreate the pods) / k3s: "
            f"--cluster-cidr={target}", "permanent",
            "the pod range must not contain any address of the node network"))
    else:
        fixes.append(Fix(
            f"use a non-overlapping Service range, e.g. {target} (kube-apiserver "
            f"--service-cluster-ip-range, kube-controller-manager --service-cluster-ip-range; "
            "k3s --service-cidr); on Kubernetes >= 1.33 a new ServiceCIDR object can be "
            "added and the old one removed", "permanent",
            "the Service range must not contain any address of the node network"))
    explains: list[str] = []
    bad = {v.cand.dst for v in victims}
    for f in failures(ev, node.name):
        if f.errno == "TLS" or f.dst is None:
            continue
        if f.dst in bad or any(f.dst.version == o.cluster.version and f.dst in o.cluster
                               and f.dst in o.lan for o in overlaps):
            explains.extend(f.keys)
            if cni_agent(f.pod):
                explains.append(f"cni-agent-not-ready@{node.name}")
    if victims:
        explains.append(f"node-not-ready@{node.name}")
    detail = (
        f"The {ov.what} {ov.cluster} overlaps {node.name}'s network ({ov.lan_what}). "
        "Addresses in the overlap have two meanings and the longest-prefix match picks one per "
        "address: LAN hosts inside a pod block become unreachable, or pod traffic leaks onto "
        "the LAN."
        + (" Traced: " + "; ".join(f"{v.cand.dst}: {v.why}" for v in victims[:3]) + "."
           if victims else
           " No affected address could be traced from the evidence; the overlap alone is a "
           "misconfiguration that breaks as soon as such an address is used.")
        + (f" Other nodes inside the range: {', '.join(others)}." if others else "")
    )
    return Finding(
        detector="A09", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=f"The {ov.what} {ov.cluster} overlaps {node.name}'s network {ov.lan}",
        node=node.name, confidence=0.95 if victims else 0.7,
        why=("overlap computed from the cluster's ranges and the node's addresses/routes"
             + (f"; tracing {victims[0].cand.dst} through {node.name}'s routing table shows "
                f"{victims[0].why}" if victims else "")),
        evidence=tuple(evidence), explains=tuple(dict.fromkeys(explains)), fix=tuple(fixes),
        detail=detail, trace=victims[0].trace if victims else None,
    )


def _address_only(name: str, ip: IPAddress, c: IPNetwork, what: str, how: str,
                  cref: SourceRef | None) -> Finding:
    return Finding(
        detector="A09", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{name}",
        title=f"Node {name}'s address {ip} lies inside the {what} {c}",
        node=name, confidence=0.75,
        why="overlap computed from the cluster's ranges and the node's InternalIP (its "
            "routing table is not in the evidence to trace the effect)",
        evidence=(line(cref, f"{what} {c} ({how})"), EvidenceLine("<derived>", 0,
                                                                  f"InternalIP of {name}: {ip}")),
        fix=(Fix(f"use a {what} that does not contain {ip} (see `kubeadm init "
                 "--pod-network-cidr/--service-cidr`, CALICO_IPV4POOL_CIDR, k3s "
                 "--cluster-cidr/--service-cidr)", "permanent"),),
        detail=f"Collect `ip route show table all` and `ip addr` on {name} to trace the effect.",
    )
