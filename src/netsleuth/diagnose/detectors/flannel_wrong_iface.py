"""Failure mode 32: flannel bound its VXLAN endpoint to the wrong interface.

Without `--iface`, flanneld takes the interface of the default route (match.go: "Determining
IP address of default interface") and publishes its address as the node's tunnel endpoint
(annotation `flannel.alpha.coreos.com/public-ip`, the `local` of flannel.1). On Vagrant/
VirtualBox every VM's default route is the NAT NIC with the same address 10.0.2.15, so every
node advertises the same endpoint: a peer's VXLAN packets for another node's pods are addressed
to an address the sender owns itself, are delivered locally, and cross-node pod traffic
silently dies (timeouts, never "refused"). The proof: trace the encapsulated packet
(UDP to the peer's advertised endpoint and VXLAN port) from the node through its own routing
table; the fix (`--iface=<cluster NIC>`) is verified by re-tracing to the peer's address on
that NIC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cluster import POD_IFACE, k8s_nodes, node_ips
from netsleuth.diagnose.detectors._cni_dns import (
    TUNNEL_NAME,
    cni_names,
    deciding_step_lines,
    ev_line,
    find_line,
    links_of,
    matching_logs,
    trace_local,
    trace_summary,
    vxlan_port,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import parse_ip
from netsleuth.model.net import IPAddress

KIND = "flannel-wrong-interface"
USING = re.compile(r"Using interface with name (\S+) and address ([0-9a-fA-F.:]+)")
PUBLIC_IP = "flannel.alpha.coreos.com/public-ip"
OVERLAY_SYMPTOMS = ("conn-error:TIMEOUT@*", "conn-error:ETIMEDOUT@*", "svc-unreachable:TIMEOUT@*",
                    "svc-unreachable:ETIMEDOUT@*", "dns-errors@*")


AUTODETECT = re.compile(r"Determining IP address of default interface|\biface:\[\] ifaceRegex:\[\]")


@dataclass(frozen=True, slots=True)
class _Endpoint:
    node: str
    ip: IPAddress
    iface: str | None
    evidence: EvidenceLine
    assumed: str = ""  # why this endpoint is assumed rather than seen ("" when seen)


def _endpoints(ev: Evidence) -> dict[str, _Endpoint]:
    """Each node's flannel tunnel endpoint: its flanneld log, its node annotation, or the
    `local` address of its flannel.1; for the other nodes, when flannel picks its interface by
    itself, their InternalIP (see `_assumed_peers`)."""
    out = _seen_endpoints(ev)
    out.update(_assumed_peers(ev, out))
    return out


def _seen_endpoints(ev: Evidence) -> dict[str, _Endpoint]:
    out: dict[str, _Endpoint] = {}
    for ln, m in matching_logs(ev, USING):
        if ln.component not in (None, "flannel") and "flannel" not in (ln.pod or ""):
            continue
        node = log_node(ev, ln)
        ip = parse_ip(m.group(2))
        if node and ip is not None and node not in out:
            out[node] = _Endpoint(node, ip, m.group(1), ev_line(ln.source, ln.text))
    for name, k in k8s_nodes(ev).items():
        ip = parse_ip(k.annotations.get(PUBLIC_IP))
        if name in out or ip is None:
            continue
        quote = find_line(ev, re.compile(re.escape(PUBLIC_IP) + r"\W+" + re.escape(str(ip))))
        out[name] = _Endpoint(name, ip, None, quote or ev_line(k.source, f"{name}: {PUBLIC_IP}: {ip}"))
    for name in ev.nodes:
        if name in out:
            continue
        for link in links_of(ev, name).values():
            if link.name.startswith("flannel.") and link.local is not None:
                out[name] = _Endpoint(name, link.local, link.lower,
                                      ev_line(link.detail_source, f"{link.name}: {link.detail}"))
    return out


def _assumed_peers(ev: Evidence, seen: dict[str, _Endpoint]) -> dict[str, _Endpoint]:
    """Endpoints of the nodes whose flannel is not in the evidence, assumed to be their
    InternalIP -- only when flanneld picks its interface by itself and, where it is seen,
    picked its node's InternalIP.

    Without --iface/--public-ip, flanneld takes the interface of the default route (match.go:
    "Determining IP address of default interface") and kubelet without --node-ip reports the
    address of that same interface as InternalIP; the DaemonSet runs the same flags on every
    node, so what one node shows holds for all of them."""
    auto = [ln for ln, _ in matching_logs(ev, AUTODETECT)
            if ln.component in (None, "flannel") or "flannel" in (ln.pod or "")]
    if not auto or not seen:
        return {}
    if not all(ep.ip in node_ips(ev, name) for name, ep in seen.items()):
        return {}
    said = next((ln for ln in auto if "default interface" in ln.message), auto[0])
    how = ("\"Determining IP address of default interface\"" if "default interface" in said.message
           else "no --iface in its flags")
    why = (f"flanneld picks its interface by itself ({how}) and on {', '.join(sorted(seen))} "
           "chose the node's InternalIP; every node runs the same DaemonSet flags")
    out: dict[str, _Endpoint] = {}
    for name in sorted(k8s_nodes(ev)):
        ips = node_ips(ev, name)
        if name in seen or not ips:
            continue
        quote = find_line(ev, re.compile(rf"^{re.escape(name)}\s.*\s{re.escape(str(ips[0]))}\s"))
        out[name] = _Endpoint(name, ips[0], None,
                              quote or ev_line(None, f"{name}: InternalIP {ips[0]}"),
                              why)
    return out


def _flannel_pod(ev: Evidence, node: str | None = None) -> tuple[str, str]:
    """(namespace, DaemonSet name) of flannel, from its pods."""
    for p in ev.objects.pods:
        if p.name and re.match(r"^(kube-)?flannel", p.name):
            if node is not None and p.node and ev.node_for(p.node) != node:
                continue
            ds = p.owner_name or re.sub(r"-[a-z0-9]{5}$", "", p.name)
            return p.namespace or "kube-flannel", ds
    return "kube-flannel", "kube-flannel-ds"


def _right_iface(ev: Evidence, node: NodeEvidence, wrong: str | None, wrong_ip: IPAddress,
                 peers: list[str]) -> tuple[str, dict[str, IPAddress], str] | None:
    """The interface that carries the node-to-node network (the cluster NIC), the peer
    addresses on it, and how it was chosen: the one whose subnet holds an address of every
    peer; else the one holding an address the cluster knows the node by (other than the wrong
    endpoint); else the node's only other NIC with an address."""
    cands = [a for a in node.state.addresses
             if a.ifname not in ("lo", wrong) and a.ip != wrong_ip
             and not TUNNEL_NAME.match(a.ifname) and not POD_IFACE.match(a.ifname)
             and not a.ifname.startswith("docker") and not a.ip.is_loopback
             and not a.ip.is_link_local and a.network.prefixlen < a.network.max_prefixlen - 1]
    for addr in cands:
        found: dict[str, IPAddress] = {}
        for peer in peers:
            ips = list(node_ips(ev, peer))
            if peer in ev.nodes:
                ips += [a.ip for a in ev.nodes[peer].state.addresses]
            for ip in ips:
                if ip.version == addr.ip.version and ip in addr.network and ip != addr.ip:
                    found[peer] = ip
                    break
        if peers and len(found) == len(peers):
            return addr.ifname, found, "its subnet holds every peer's address"
    own = [ip for ip in node_ips(ev, node.name) if ip != wrong_ip]
    for addr in cands:
        if addr.ip in own:
            return addr.ifname, {}, f"it holds {addr.ip}, the address the cluster knows the node by"
    nics = sorted({a.ifname for a in cands})
    if len(nics) == 1:
        addr = next(a for a in cands if a.ifname == nics[0])
        return addr.ifname, {}, (f"it is the node's only other interface with an address "
                                 f"({addr.ip}/{addr.network.prefixlen})")
    return None


def _bad(trace: Trace, target: IPAddress) -> str | None:
    """Why an encapsulated packet to a peer's endpoint does not reach the peer, or None."""
    o = trace.main
    if o.verdict == Verdict.DELIVERED_LOCAL:
        return f"{target} is this node's own address: the VXLAN packet is delivered locally"
    if o.verdict in (Verdict.DROPPED, Verdict.REJECTED, Verdict.UNROUTABLE):
        return f"the VXLAN packet is {o.verdict.value}"
    if o.next_hop and o.next_hop != str(target):
        return (f"the VXLAN packet leaves {o.interface} to the gateway {o.next_hop}, not to the "
                "peer itself")
    return None


@detector("D32", title="flannel bound to the wrong interface", needs=("logs", "k8s-nodes", "links"),
          mode="32")
def flannel_wrong_iface(ev: Evidence) -> Iterator[Finding]:
    eps = _endpoints(ev)
    if len(eps) < 2 or all(ep.assumed for ep in eps.values()):
        return
    by_ip: dict[IPAddress, list[str]] = {}
    for ep in eps.values():
        by_ip.setdefault(ep.ip, []).append(ep.node)
    # A shared endpoint counts when flannel is seen using it on at least one of the nodes.
    dup = {ip: nodes for ip, nodes in by_ip.items()
           if len(nodes) > 1 and any(not eps[n].assumed for n in nodes)}
    cnis = cni_names(ev)
    port = 8472
    findings: list[Finding] = []
    done: set[str] = set()
    # Nodes sharing one endpoint are one fault (one DaemonSet setting fixes them all): the
    # finding is about the group, anchored on a node whose routing table proves it.
    for name in sorted(eps, key=lambda n: (eps[n].ip not in dup, n)):
        if name in done:
            continue
        ep = eps[name]
        group = dup.get(ep.ip, [name])
        own_ips = set(node_ips(ev, name))
        mismatch = bool(own_ips) and ep.ip not in own_ips
        proven: list[tuple[str, Trace, str]] = []
        anchor = name
        for member in sorted(group, key=lambda n: (n not in ev.nodes, n)):
            node = ev.nodes.get(member)
            if node is None:
                continue
            for link in links_of(ev, node).values():
                if link.name.startswith("flannel."):
                    port = vxlan_port(link, cnis)[0]
            for peer in sorted(eps):
                if peer == member:
                    continue
                target = eps[peer].ip
                t = trace_local(node.state, target, port, "udp")
                why = _bad(t, target)
                if why is not None:
                    proven.append((peer, t, why))
            if proven:
                anchor = member
                break
        if not (ep.ip in dup or (mismatch and proven)):
            continue
        done.update(group)
        peers = [p for p in sorted(eps) if p != anchor]
        findings.append(_finding(ev, anchor, eps[anchor], eps, dup, proven, port,
                                 ev.nodes.get(anchor), peers))
    yield from findings


def _finding(ev: Evidence, name: str, ep: _Endpoint, eps: dict[str, _Endpoint],
             dup: dict[IPAddress, list[str]], bad: list[tuple[str, Trace, str]], port: int,
             node: NodeEvidence | None, peers: list[str]) -> Finding:
    evidence: list[EvidenceLine] = [ep.evidence]
    others = [eps[p].evidence for p in dup.get(ep.ip, []) if p != name]
    evidence.extend(others[:2])
    detail = [f"flanneld on {name} uses {ep.ip}" + (f" on {ep.iface}" if ep.iface else "")
              + " as its VXLAN endpoint."]
    if ep.ip in dup:
        detail.append(f"{len(dup[ep.ip])} nodes advertise the same endpoint {ep.ip} "
                      f"({', '.join(dup[ep.ip])}): a packet for another node's pods is "
                      "encapsulated to an address the sender owns itself.")
    trace = None
    for peer, t, why in bad[:2]:
        if trace is None:
            trace = t
            evidence.extend(deciding_step_lines(t, 1))
        evidence.append(ev_line(None, f"trace of the VXLAN packet to {peer}'s endpoint: "
                                      f"{trace_summary(t)}"))
        detail.append(f"Encapsulated packet {name} → {peer} (UDP {eps[peer].ip}:{port}): {why}.")
    ns, ds = _flannel_pod(ev, name)
    fixes: list[Fix] = []
    right = _right_iface(ev, node, ep.iface, ep.ip, peers) if node is not None else None
    if right is not None:
        assert node is not None
        iface, peer_ips, how = right
        note = f"use the NIC that carries the node-to-node network ({iface}: {how})"
        if peer_ips:
            peer, target = next(iter(peer_ips.items()))
            t = trace_local(node.state, target, port, "udp")
            if t.verdict == Verdict.SENT and t.main.interface == iface and \
                    t.main.next_hop == str(target):
                note = (f"flannel then uses {iface}'s address; verified by simulation: the VXLAN "
                        f"packet to {peer} ({target}:{port}) goes out {iface} straight to {target}")
        else:
            note += ("; the peers' addresses on it are not in the evidence, so the path to "
                     "them could not be re-traced")
        fixes.append(Fix(f"kubectl -n {ns} set env daemonset/{ds} FLANNELD_IFACE={iface}", "now",
                         note))
        if any(p.program == "k3s" for p in ev.objects.processes):
            fixes.append(Fix(f"k3s server/agent --flannel-iface={iface}", "permanent",
                             "k3s runs flannel itself"))
        fixes.append(Fix(f"add `--iface={iface}` (or `--iface-regex`) to the kube-flannel "
                         f"container args of daemonset/{ds} in the manifest you deploy",
                         "permanent", "survives re-applying the flannel manifest"))
    else:
        fixes.append(Fix(f"kubectl -n {ns} set env daemonset/{ds} FLANNELD_IFACE=<NIC of the "
                         "node-to-node network>", "now",
                         "the node snapshot is missing, so the right NIC could not be checked"))
    if len({ip for n in eps for ip in node_ips(ev, n)}) == 1 and len(eps) > 1:
        fixes.append(Fix("set kubelet --node-ip=<address on the cluster NIC> on every node "
                         "(KUBELET_EXTRA_ARGS) and restart kubelet", "permanent",
                         "every node also reports the same InternalIP: kubelet picked the NAT "
                         "NIC too"))
    involved = [eps[n] for n in dup.get(ep.ip, [name])] + [eps[p] for p, _, _ in bad]
    assumed = list(dict.fromkeys(e.node for e in involved if e.assumed))
    if assumed:
        detail.append(f"Assumed: the endpoints of {', '.join(assumed)} are their InternalIPs "
                      f"({', '.join(sorted({str(eps[n].ip) for n in assumed}))}): "
                      f"{eps[assumed[0]].assumed}.")
    proven = bool(bad)
    confidence = 0.95 if proven and ep.ip in dup else 0.85 if proven else 0.7
    if assumed:
        confidence = min(confidence, 0.85 if proven else 0.6)
    why = ("proven by tracing the encapsulated packet to the peers' advertised endpoints "
           f"through {name}'s routing table" if proven else
           "several nodes advertise the same flannel endpoint (annotations/logs); the node's "
           "routing table is not in the evidence to trace it")
    return Finding(
        detector="D32", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{name}",
        title=(f"flannel on {', '.join(dup[ep.ip])} tunnels from the same address {ep.ip}"
           if ep.ip in dup else f"flannel on {name} tunnels from {ep.ip}, not the node's "
           "cluster address") + (f" ({ep.iface})" if ep.iface else ""),
        node=name, confidence=confidence, why=why, evidence=tuple(evidence),
        explains=OVERLAY_SYMPTOMS, fix=tuple(fixes),
        detail="\n".join(detail + ["Timeouts (not 'refused', not 'unreachable') are what a "
                                   "lost tunnel packet looks like to the client."]),
        trace=trace,
    )
