"""Failure mode 35: the node's firewall drops the overlay's encapsulated traffic.

VXLAN (UDP 8472 for flannel/Cilium, 4789 for Calico) and IPIP (IP protocol 4) packets between
nodes are ordinary packets to the host: they arrive on the underlay NIC addressed to the node
and go through PREROUTING and INPUT before the kernel's tunnel driver decapsulates them (the
vxlan UDP socket / the ipip protocol handler sit behind LOCAL_IN). A host firewall that only
opens TCP ports (iptables-services' `-A INPUT -j REJECT --reject-with icmp-host-prohibited`,
firewalld's public zone, ufw's default deny) therefore kills every cross-node pod packet while
same-node traffic works: clients see timeouts (the ICMP error goes to the peer's kernel, not to
the pod's socket). The proof: trace the encapsulated packet from each peer's tunnel endpoint
as this node receives it on its underlay NIC; the fix (an ACCEPT before the blocking rule) is
verified by re-tracing.

IPIP is traced as IP protocol 4 (`-p ipencap`/`-p 4` rules match it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from netsleuth.datapath.trace_model import Outcome, Trace, Verdict
from netsleuth.diagnose.detectors._cluster import node_ips
from netsleuth.diagnose.detectors._cni_dns import (
    LinkInfo,
    cluster_address,
    cni_names,
    deciding_step_lines,
    ev_line,
    fdb_entries,
    links_of,
    passes,
    permanent_allow,
    trace_local,
    trace_received,
    trace_summary,
    tunnel_kind,
    vxlan_port,
    with_rule_first,
)
from netsleuth.diagnose.detectors._paths import deciding_step
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.net import IPAddress

KIND = "encapsulation-blocked"
OVERLAY_SYMPTOMS = ("conn-error:TIMEOUT@*", "conn-error:ETIMEDOUT@*", "svc-unreachable:TIMEOUT@*",
                    "svc-unreachable:ETIMEDOUT@*", "dns-errors@*", "dns-down")


@dataclass(frozen=True, slots=True)
class _Tunnel:
    link: LinkInfo
    encap: str  # vxlan, ipip, geneve
    proto: str  # udp or ipip
    port: int | None
    port_how: str
    endpoint: IPAddress  # this node's tunnel address (where peers send)
    iface: str  # underlay interface packets arrive on


def _tunnel(ev: Evidence, node: NodeEvidence) -> _Tunnel | None:
    addr = cluster_address(ev, node)
    for link in links_of(ev, node).values():
        encap = tunnel_kind(link)
        if encap not in ("vxlan", "ipip", "geneve") or link.name == "kube-ipvs0":
            continue
        endpoint = link.local or (addr.ip if addr else None)
        if endpoint is None:
            continue
        iface = link.lower
        if iface is None:
            iface = next((a.ifname for a in node.state.addresses if a.ip == endpoint),
                         addr.ifname if addr else None)
        if iface is None:
            continue
        if encap == "vxlan":
            port, how = vxlan_port(link, cni_names(ev))
            return _Tunnel(link, encap, "udp", port, how, endpoint, iface)
        if encap == "geneve":
            return _Tunnel(link, encap, "udp", 6081, "the Geneve port", endpoint, iface)
        return _Tunnel(link, encap, "ipip", None, "IP protocol 4", endpoint, iface)
    return None


def _peer_endpoints(ev: Evidence, name: str, tunnels: dict[str, _Tunnel]) -> list[tuple[str, IPAddress]]:
    """Where encapsulated packets to this node come from: the other nodes' tunnel endpoints
    (their vxlan `local`, FDB destinations, else their InternalIPs or cluster addresses)."""
    out: list[tuple[str, IPAddress]] = []
    seen: set[IPAddress] = set()
    for other in sorted(set(ev.nodes) | set(ev.facts.node_ips)):
        if other == name:
            continue
        ip: IPAddress | None = tunnels[other].endpoint if other in tunnels else None
        if ip is None:
            ips = node_ips(ev, other)
            ip = ips[0] if ips else None
        if ip is None and other in ev.nodes:
            addr = cluster_address(ev, ev.nodes[other])
            ip = addr.ip if addr is not None else None
        if ip is not None and ip not in seen:
            seen.add(ip)
            out.append((other, ip))
    for entry in fdb_entries(ev, name):
        if entry.dst is not None and entry.dst not in seen and not entry.mac.startswith("00:00:00"):
            seen.add(entry.dst)
            out.append((f"FDB peer {entry.dst}", entry.dst))
    return out


def _blocked(trace: Trace) -> bool:
    """Every way the packet can go ends in a drop or reject by a netfilter rule or chain
    policy (an uncertain match that could let it through is not proof, and a drop the kernel
    makes elsewhere -- rp_filter, a martian source -- is no firewall's: see A06)."""
    return bool(trace.outcomes) and all(
        o.verdict in (Verdict.DROPPED, Verdict.REJECTED) and deciding_step(o) is not None
        for o in trace.outcomes)


def _ending(o: Outcome) -> str:
    if o.verdict == Verdict.REJECTED:
        return f"rejected ({o.icmp or 'REJECT'})"
    return "dropped"


@detector("D35", title="Encapsulated overlay traffic blocked by a node firewall",
          needs=("iptables",), mode="35")
def encap_blocked(ev: Evidence) -> Iterator[Finding]:
    tunnels: dict[str, _Tunnel] = {}
    for node in ev.nodes.values():
        tun = _tunnel(ev, node)
        if tun is not None:
            tunnels[node.name] = tun
    for name in sorted(tunnels):
        node = ev.nodes[name]
        if "iptables" not in node.has or node.state.ruleset.origin == "rebuilt":
            continue
        tun = tunnels[name]
        blocked_in: list[tuple[str, IPAddress, Trace]] = []
        blocked_out: list[tuple[str, IPAddress, Trace]] = []
        own = {a.ip for a in node.state.addresses}
        for peer, src in _peer_endpoints(ev, name, tunnels):
            if src in own:
                continue  # a "peer" with this node's own address: a martian, not a peer
            t = trace_received(node.state, src=src, dst=tun.endpoint, dport=tun.port,
                               proto=tun.proto, iif=tun.iface)
            if _blocked(t):
                blocked_in.append((peer, src, t))
            o = trace_local(node.state, src, tun.port, tun.proto)
            if _blocked(o):
                blocked_out.append((peer, src, o))
        if blocked_in or blocked_out:
            yield _finding(ev, node, tun, blocked_in, blocked_out)


def _finding(ev: Evidence, node: NodeEvidence, tun: _Tunnel,
             blocked_in: list[tuple[str, IPAddress, Trace]],
             blocked_out: list[tuple[str, IPAddress, Trace]]) -> Finding:
    name = node.name
    what = (f"{tun.encap.upper()} UDP {tun.port}" if tun.proto == "udp" else "IPIP (protocol 4)")
    first = (blocked_in or blocked_out)[0][2]
    evidence: list[EvidenceLine] = []
    if tun.link.detail_source is not None:
        evidence.append(ev_line(tun.link.detail_source, f"{tun.link.name}: {tun.link.detail}"))
    evidence.extend(deciding_step_lines(first, 2))
    for peer, _, t in (blocked_in + blocked_out)[:3]:
        evidence.append(ev_line(None, f"trace ({peer}): {trace_summary(t)}"))
    peers_in = sorted({str(s) for _, s, _ in blocked_in})
    detail = [f"{name} terminates the overlay on {tun.link.name} ({what}, port from "
              f"{tun.port_how}); encapsulated packets arrive on {tun.iface} addressed to "
              f"{tun.endpoint} and must pass INPUT before the tunnel driver sees them."]
    if blocked_in:
        detail.append(f"From {', '.join(peers_in)} they are {_ending(blocked_in[0][2].main)} "
                      f"in INPUT, so pods on {name} get nothing from other nodes.")
    if blocked_out:
        detail.append(f"{name}'s own encapsulated packets are {_ending(blocked_out[0][2].main)} "
                      "in OUTPUT.")
    detail.append("Same-node traffic never leaves the node, so it keeps working; cross-node "
                  "clients see timeouts (the ICMP error, if any, reaches the peer's kernel, not "
                  "the pod's socket).")
    fixes: list[Fix] = []
    subnet = None
    addr = next((a for a in node.state.addresses if a.ip == tun.endpoint), None)
    if addr is not None and addr.network.prefixlen < addr.network.max_prefixlen:
        subnet = str(addr.network)
    match = (f"-p udp -m udp --dport {tun.port}" if tun.proto == "udp" else "-p 4")
    src_part = f"-s {subnet} " if subnet else ""
    if blocked_in:
        rule = f"{src_part}{match} -j ACCEPT"
        fixed = with_rule_first(node.state, "filter", "INPUT", rule)
        _, src, _ = blocked_in[0]
        t = trace_received(fixed, src=src, dst=tun.endpoint, dport=tun.port, proto=tun.proto,
                           iif=tun.iface)
        if passes(t):
            note = f"Verified by simulation: the packet from {src} is then {t.verdict.value}"
        else:
            note = "re-trace did not pass: more than one rule blocks it, see the trace"
        fixes.append(Fix(f"iptables -I INPUT 1 {rule}", "now", note))
        if tun.proto == "udp":
            fixes.append(Fix(permanent_allow(node.state, "udp", tun.port or 0, subnet),
                             "permanent", "keep the overlay port open across firewall reloads"))
    if blocked_out:
        rule = f"{('-d ' + subnet + ' ') if subnet else ''}{match} -j ACCEPT"
        fixed = with_rule_first(node.state, "filter", "OUTPUT", rule)
        t = trace_local(fixed, blocked_out[0][1], tun.port, tun.proto)
        fixes.append(Fix(f"iptables -I OUTPUT 1 {rule}", "now",
                         f"Verified by simulation: then {t.verdict.value}" if passes(t) else
                         "re-trace did not pass"))
    n_peers = len({s for _, s, _ in blocked_in + blocked_out})
    return Finding(
        detector="D35", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{name}",
        title=f"{name}'s firewall blocks the overlay's {what} from {n_peers} peer(s)",
        node=name, confidence=0.95 if node.state.ruleset.origin != "rebuilt" else 0.6,
        why=f"proven by tracing encapsulated packets from the peers' tunnel endpoints through "
            f"{name}'s own iptables rules",
        evidence=tuple(evidence), explains=OVERLAY_SYMPTOMS, fix=tuple(fixes),
        detail="\n".join(detail), trace=first,
    )
