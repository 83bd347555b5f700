"""Failure mode 1: a node has no route covering the Service CIDR.

For a locally generated packet the kernel looks up the route when the socket connects, before
the nat OUTPUT hook where kube-proxy's DNAT lives (ip_route_connect, then NF_INET_LOCAL_OUT).
With no default route and no route covering the Service CIDR, every host-network client on
the node (the CNI agent, kubelet's probes, anything using the in-cluster apiserver address)
gets ENETUNREACH, even though the DNAT rule is there and would send the packet somewhere
perfectly reachable. The proof is a trace through the node's own routing table; each fix is
checked by re-tracing with the fix applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._common import (
    cidr_text,
    is_service_ip,
    kubernetes_target,
    line,
    net_error_lines,
    service_cidrs,
    trace_from_host,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.errors import NetsleuthError
from netsleuth.model.net import TABLE_MAIN, IPAddress, IPNetwork, Route, RouteType
from netsleuth.parse.node_snapshot import with_extra_routes

KIND = "service-cidr-unroutable"


@dataclass(frozen=True, slots=True)
class _Failure:
    node: NodeEvidence
    trace: Trace
    target: tuple[IPAddress, int]


def _targets(ev: Evidence) -> list[tuple[IPAddress, int]]:
    """Service addresses host-network clients use: the kubernetes Service, and any Service
    IP:port that a log shows failing."""
    out: list[tuple[IPAddress, int]] = []
    k = kubernetes_target(ev)
    if k is not None:
        out.append(k)
    for ln in net_error_lines(ev):
        err = ln.net_error
        assert err is not None
        ip, port = err.dst_ip, err.dst_port
        if ip is not None and is_service_ip(ev, ip) and (ip, port or 443) not in out:
            out.append((ip, port or 443))
    return out


def _enetunreach_nodes(ev: Evidence, targets: list[tuple[IPAddress, int]]) -> dict[str, list[EvidenceLine]]:
    """Nodes whose logs show ENETUNREACH towards a Service address."""
    out: dict[str, list[EvidenceLine]] = {}
    ips = {ip for ip, _ in targets}
    for ln in net_error_lines(ev):
        err = ln.net_error
        assert err is not None
        if err.errno == "ENETUNREACH" and err.dst_ip in ips:
            node = log_node(ev, ln) or "?"
            out.setdefault(node, []).append(line(ln.source, ln.text))
    for probe in ev.probes:
        if probe.errno == "ENETUNREACH" and probe.target and any(str(ip) == probe.target for ip in ips):
            out.setdefault(ev.node_for(probe.host) or "?", []).append(line(probe.source, probe.text))
    return out


def _cluster_interface(ev: Evidence, node: NodeEvidence) -> str | None:
    """The interface that carries the node's cluster address (its InternalIP, or the
    address the apiserver endpoint or the other nodes share a subnet with)."""
    state = node.state
    wanted = set(node.ips) | set(ev.facts.node_ips.get(node.name, ()))
    for addr in state.addresses:
        if addr.ip in wanted and addr.ifname != "lo":
            return addr.ifname
    peers = {ip for name, ips in ev.facts.node_ips.items() if name != node.name for ip in ips}
    for other in ev.nodes.values():
        if other.name != node.name:
            peers.update(a.ip for a in other.state.addresses if a.ifname != "lo")
            peers.update(other.ips)
    for addr in state.addresses:
        if addr.ifname in ("lo", "docker0") or addr.ifname.startswith(("cali", "tunl", "flannel",
                                                                       "cni", "vxlan", "cilium")):
            continue
        if any(p in addr.network for p in peers if p.version == addr.ip.version):
            return addr.ifname
    return None


def _reachable_peer(ev: Evidence, node: NodeEvidence, iface: str | None) -> IPAddress | None:
    """Another node's address on the subnet of `iface` (directly reachable)."""
    if iface is None:
        return None
    nets = [a.network for a in node.state.addresses if a.ifname == iface]
    own = {a.ip for a in node.state.addresses}
    candidates = {ip for name, ips in ev.facts.node_ips.items() if name != node.name for ip in ips}
    for other in ev.nodes.values():
        if other.name != node.name:
            candidates.update(other.ips)
            candidates.update(a.ip for a in other.state.addresses)
    for ip in sorted(candidates, key=lambda a: (a.version, int(a))):
        if ip not in own and any(ip in n for n in nets if n.prefixlen < n.max_prefixlen):
            return ip
    return None


def _peer_default_routes(ev: Evidence, node: NodeEvidence) -> list[tuple[str, Route]]:
    out = []
    for other in ev.nodes.values():
        if other.name == node.name:
            continue
        for r in other.state.routes:
            if r.table == TABLE_MAIN and r.dst.prefixlen == 0 and r.type == RouteType.UNICAST:
                out.append((other.name, r))
    return out


def _verified(node: NodeEvidence, spec: str, target: tuple[IPAddress, int]) -> Trace | None:
    """Re-trace with the route added; the fix counts only if the packet now gets through."""
    try:
        fixed = with_extra_routes(node.state, spec, source="fix")
    except NetsleuthError:
        return None
    trace = trace_from_host(fixed, target[0], target[1])
    return trace if trace.verdict in (Verdict.DELIVERED_LOCAL, Verdict.SENT) else None


def _fixes(ev: Evidence, f: _Failure, cidr: str) -> tuple[tuple[Fix, ...], list[str]]:
    fixes: list[Fix] = []
    notes: list[str] = []
    iface = _cluster_interface(ev, f.node)
    candidates: list[tuple[str, str]] = []
    if iface:
        candidates.append((f"ip route add {cidr} dev {iface}",
                           f"route the Service CIDR out of {iface}, the interface of the "
                           "node's cluster address; kube-proxy's DNAT then picks the real "
                           "destination and the packet is re-routed"))
    peer_ip = _reachable_peer(ev, f.node, iface)
    if iface and peer_ip is not None:
        candidates.append((f"ip route add default via {peer_ip} dev {iface}",
                           f"any reachable gateway makes the route lookup succeed ({peer_ip} is "
                           f"another node on {iface}'s subnet); note that it also sends the "
                           "node's other traffic there, so prefer the Service CIDR route"))
    peers = _peer_default_routes(ev, f.node)
    own_ifaces = {a.ifname for a in f.node.state.addresses}
    for peer, r in peers:
        gw, dev = r.gateway, r.dev
        if gw is None or dev is None:
            continue
        has_subnet = any(gw in a.network for a in f.node.state.addresses)
        if has_subnet:
            candidates.append((f"ip route add default via {gw} dev {dev}",
                               f"restore the default route the other nodes have ({peer})"))
            break
        links = {link.name for link in f.node.state.links}
        if dev in links and dev not in own_ifaces:
            notes.append(
                f"{peer} has `default via {gw} dev {dev}`; on {f.node.name} {dev} exists but "
                "has no IPv4 address — its DHCP lease (and with it the default route) is "
                "missing")
            break
    for spec, why in candidates:
        trace = _verified(f.node, spec.removeprefix("ip route add "), f.target)
        if trace is None:
            continue
        outcome = trace.main
        fixes.append(Fix(spec, "now", f"{why}. Verified by simulation: {f.target[0]}:"
                                      f"{f.target[1]} then goes {outcome.verdict.value} to "
                                      f"{outcome.packet.endpoint('dst')}"))
    if iface:
        fixes.append(Fix(
            f"nmcli connection modify <connection of {iface}> +ipv4.routes \"{cidr}\"  "
            f"# or: echo '{cidr} dev {iface}' >> /etc/sysconfig/network-scripts/route-{iface}"
            f"  # or netplan: routes: [{{to: {cidr}, scope: link}}] under {iface}",
            "permanent",
            "persist the route in the node's network configuration so a reboot or a DHCP "
            "change cannot remove it"))
    fixes.append(Fix(
        "give the node a static default gateway (or fix the DHCP lease of the interface that "
        "carried it)", "permanent",
        "host-network clients must never depend on a route that comes and goes"))
    return tuple(fixes), notes


@detector("A01", title="Host-network clients cannot route to the Service CIDR",
          needs=("routes", "logs", "probes"), mode="1")
def service_cidr_unroutable(ev: Evidence) -> Iterator[Finding]:
    targets = _targets(ev)
    if not targets:
        return
    cidrs = service_cidrs(ev)
    failures: list[_Failure] = []
    for node in sorted(ev.nodes.values(), key=lambda n: n.name):
        if "routes" not in node.has:
            continue
        for target in targets:
            trace = trace_from_host(node, target[0], target[1])
            if trace.verdict == Verdict.UNROUTABLE and trace.errno == "ENETUNREACH":
                failures.append(_Failure(node, trace, target))
                break
    logged = _enetunreach_nodes(ev, targets)
    proven = {f.node.name for f in failures}
    # Nodes whose logs show ENETUNREACH but whose current table routes the Service: the same
    # fault at the time of the log (a route that comes and goes), attached to the proven cause.
    transient = {n: lines for n, lines in logged.items() if n not in proven}
    for i, f in enumerate(failures):
        yield _finding(ev, f, cidrs, logged.get(f.node.name, []),
                       transient if i == 0 else {})
    if not failures:
        for name, lines in logged.items():
            yield _from_logs_only(ev, name, lines, cidrs, targets)


def _finding(ev: Evidence, f: _Failure, cidrs: list[IPNetwork], logs: list[EvidenceLine],
             transient: dict[str, list[EvidenceLine]]) -> Finding:
    node = f.node
    ip, port = f.target
    cidr = cidr_text(cidrs, ip) if cidrs else f"{ip}/32"
    main = [r for r in node.state.routes if r.table == TABLE_MAIN]
    has_default = any(r.dst.prefixlen == 0 for r in main)
    lookup = f.trace.main.steps[0]
    evidence: list[EvidenceLine] = [
        EvidenceLine("trace", 0, f"route lookup on {node.name} for {ip}: "
                     + "; ".join(lookup.detail)),
    ]
    first = main[0].source if main else None
    evidence.append(line(first, f"routing table of {node.name} ({len(main)} routes in main): "
                     + ("no default route, " if not has_default else "")
                     + f"none covers {ip}"))
    dnat = [s for s in f.trace.unreached if s.action.startswith("DNAT")]
    for s in dnat[:3]:
        evidence.append(line(s.source, f"{s.rule}   ← kube-proxy's {s.action}, never reached"))
    evidence.extend(logs[:3])
    fixes, notes = _fixes(ev, f, cidr)
    # The CNI agent programs the rules that let pod traffic through FORWARD (felix's
    # cali-FORWARD, flanneld's pod-CIDR ACCEPTs); without the apiserver it never does, so a
    # FORWARD policy DROP on this node is a consequence here, not a second root cause.
    explains = [f"svc-unreachable:ENETUNREACH@{node.name}", f"cni-agent-not-ready@{node.name}",
                f"sandbox-churn@{node.name}", f"pod-no-ip@{node.name}",
                f"cause:forward-policy-drop@{node.name}"]
    detail_parts = [
        f"A host-network connect() to {ip}:{port} on {node.name} looks up the route first; "
        f"no table has a route for {ip}, so the kernel fails it with ENETUNREACH "
        "(\"network is unreachable\") before the nat OUTPUT hook runs."
        + (f" kube-proxy's rule {dnat[0].action} exists but never gets the packet." if dnat
           else "")
        + " Every host-network client on this node is affected: the CNI agent cannot reach "
        "the apiserver, so it never becomes ready, pods get no IP and their sandboxes are "
        "recreated over and over; cluster DNS goes down with them.",
        *notes,
    ]
    for other, lines in transient.items():
        explains.extend([f"svc-unreachable:ENETUNREACH@{other}", f"cni-agent-not-ready@{other}",
                         f"sandbox-churn@{other}", f"pod-no-ip@{other}"])
        detail_parts.append(
            f"{other} logged the same ENETUNREACH for {ip}, but the routing table shown for "
            f"{other} now routes it: it had the same fault when that log was written (a "
            "default route that comes and goes, e.g. with a DHCP lease).")
        evidence.extend(lines[:2])
    guessed = node.host_guessed
    confidence = 0.8 if guessed else 0.95
    what = f"the Service CIDR {cidr}" if cidrs else f"the Service IP {ip} (Service CIDR unknown)"
    title = (f"Node {node.name} has no route covering {what}"
             + (" (no default route)" if not has_default else ""))
    return Finding(
        detector="A01", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=title, node=node.name, confidence=confidence,
        why=("proven by tracing host → " + f"{ip}:{port} through {node.name}'s own routing "
             "table" + (" (which node the routes belong to was guessed)" if guessed else "")),
        evidence=tuple(evidence), explains=tuple(dict.fromkeys(explains)), fix=fixes,
        detail="\n".join(detail_parts), trace=f.trace,
    )


def _from_logs_only(ev: Evidence, node: str, lines: list[EvidenceLine], cidrs: list[IPNetwork],
                    targets: list[tuple[IPAddress, int]]) -> Finding:
    ip = targets[0][0]
    cidr = cidr_text(cidrs, ip) if cidrs else f"{ip}/32"
    return Finding(
        detector="A01", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node}",
        title=f"Node {node} has no route covering "
              + (f"the Service CIDR {cidr}" if cidrs else f"the Service IP {ip}")
              + " (from its errors)",
        node=None if node == "?" else node, confidence=0.6,
        why="ENETUNREACH towards a Service IP is a routing-table verdict on the client's node; "
            "the node's routing table is not in the evidence to prove it",
        evidence=tuple(lines[:4]),
        explains=(f"svc-unreachable:ENETUNREACH@{node}", f"cni-agent-not-ready@{node}",
                  f"sandbox-churn@{node}", f"pod-no-ip@{node}"),
        fix=(Fix(f"on {node}: ip route get {ip}  # confirm, then: ip route add {cidr} dev "
                 "<interface of the node's InternalIP>", "now"),),
        detail=f"Collect `ip route show table all` on {node} to prove it.",
    )

