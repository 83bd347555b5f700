"""A node cannot resolve a peer's link-layer address: the peer is gone from the node network.

Not in the failure-mode catalog (it is below Kubernetes), but it is what an expert concludes
from a node's own "Destination Host Unreachable". When the next hop of a packet is on a
directly connected network, the kernel asks for its MAC address (ARP, or ND for IPv6); when
no answer comes after `mcast_solicit` probes the neighbour entry turns FAILED and every packet
queued for it is answered by the sending node itself with an ICMP host unreachable
(neigh_invalidate() → ipv4_link_failure() → icmp_send(ICMP_HOST_UNREACH), net/core/neighbour.c,
net/ipv4/route.c). iputils ping prints it as `From <own address> icmp_seq=N Destination Host
Unreachable`, traceroute as `!H` at the first hop from the node itself, `ip neigh` as FAILED or
INCOMPLETE, and clients get EHOSTUNREACH ("no route to host") after ~3 s.

So when the error comes from the node's own address, nothing on the far side refused anything:
the peer did not answer ARP at all. It is down, or its NIC, switch port, VLAN or cable no
longer puts it on this segment. Where the node's routes are known the packet is traced to
show which neighbour is asked (the peer itself on a connected subnet, else the gateway) and
that no rule or route on the node stops it first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cluster import k8s_nodes, node_ips
from netsleuth.diagnose.detectors._cni_dns import (
    ev_line,
    host_of_exec,
    neighbours,
    raw_lines,
    raw_outputs,
    route_lines,
    trace_summary,
)
from netsleuth.diagnose.detectors._nodenet import trace, unique_node_of_ip
from netsleuth.diagnose.evidence import Evidence, RawOutput
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import parse_ip
from netsleuth.model.net import IPAddress
from netsleuth.parse.transcript import parse_command

KIND = "neighbour-unreachable"
FROM_UNREACH = re.compile(r"^From (?P<a>[^\s(]+)(?: \((?P<b>[^)]+)\))?:? icmp_seq=\d+ "
                          r"Destination Host Unreachable")
FIRST_HOP_H = re.compile(r"^\s*1\s+(?:\S+\s+\()?(?P<ip>[0-9a-fA-F.:]+)\)?\s.*!H")
PING = re.compile(r"(?:^|\s|/)ping6?(?:\s|$)")
TRACEROUTE = re.compile(r"(?:^|\s|/)traceroute6?(?:\s|$)")
PING_VALUE_FLAGS = {"-c", "-i", "-W", "-w", "-s", "-I", "-t", "-M", "-Q", "-l", "-p", "-S"}


@dataclass(frozen=True, slots=True)
class _Failure:
    node: str
    target: IPAddress
    lines: tuple[EvidenceLine, ...]


def _target(raw: RawOutput) -> IPAddress | None:
    argv = list(parse_command(raw.command or "").argv)
    words: list[str] = []
    skip = False
    for w in argv[1:]:
        if skip:
            skip = False
            continue
        if w in PING_VALUE_FLAGS:
            skip = True
            continue
        if not w.startswith("-"):
            words.append(w)
    return parse_ip(words[-1]) if words else None


def _own(ev: Evidence, node: str, ip: IPAddress | None) -> bool:
    """Whether `ip` is one of the node's own addresses (the error came from its own kernel)."""
    if ip is None:
        return False
    here = ev.nodes.get(node)
    if here is not None and any(a.ip == ip for a in here.state.addresses):
        return True
    return ip in node_ips(ev, node) or ev.node_of_ip(ip) == node


def _failures(ev: Evidence) -> list[_Failure]:
    """Pings answered "Destination Host Unreachable" by the pinging node itself."""
    out: list[_Failure] = []
    for raw in raw_outputs(ev, "ping", command=PING):
        node, pod = host_of_exec(raw, ev)
        target = _target(raw)
        if node is None or pod is not None or target is None:
            continue  # in a pod the "own address" would be the pod's: not the node network
        lines: list[EvidenceLine] = []
        for ref, text in raw_lines(raw):
            m = FROM_UNREACH.match(text.strip())
            if m is not None and _own(ev, node, parse_ip(m.group("b") or m.group("a"))):
                lines.append(ev_line(ref, text))
        if lines:
            out.append(_Failure(node, target, tuple(lines[:2])))
    return out


def _first_hop_h(ev: Evidence, node: str) -> list[EvidenceLine]:
    """traceroutes on the node whose first hop is the node itself answering !H."""
    out: list[EvidenceLine] = []
    for raw in raw_outputs(ev, "traceroute", command=TRACEROUTE, node=node):
        for ref, text in raw_lines(raw):
            m = FIRST_HOP_H.match(text)
            if m is not None and _own(ev, node, parse_ip(m.group("ip"))):
                out.append(ev_line(ref, text))
    return out


def _control_plane(ev: Evidence, node: str | None) -> bool:
    if node is None:
        return False
    k = k8s_nodes(ev).get(node)
    if k is not None and any(r in ("control-plane", "master") for r in k.roles):
        return True
    return any(p.program in ("kube-apiserver", "k3s") and "server" in p.argv and
               ev.node_for(p.host) == node for p in ev.objects.processes)


@detector("A51", title="A peer does not answer ARP on the node network (neighbour unreachable)",
          needs=(), mode="")
def neighbour_unreachable(ev: Evidence) -> Iterator[Finding]:
    seen: set[tuple[str, IPAddress]] = set()
    for f in _failures(ev):
        here = ev.nodes.get(f.node)
        t: Trace | None = None
        neighbour, dev = f.target, None
        if here is not None and "routes" in here.has:
            t = trace(here, f.target, None, proto="icmp")
            if t.verdict != Verdict.SENT or t.main.next_hop is None:
                continue  # a rule or a route stops it on the node: not a neighbour failure
            neighbour = parse_ip(t.main.next_hop) or f.target
            dev = t.main.interface
        if (f.node, neighbour) in seen:
            continue
        seen.add((f.node, neighbour))
        yield _finding(ev, f, neighbour, dev, t)


def _finding(ev: Evidence, f: _Failure, neighbour: IPAddress, dev: str | None,
             t: Trace | None) -> Finding:
    peer = unique_node_of_ip(ev, neighbour)
    who = f"{peer} ({neighbour})" if peer else str(neighbour)
    evidence: list[EvidenceLine] = list(f.lines)
    failed = [n for n in neighbours(ev, f.node) if n.ip == neighbour
              and n.state in ("FAILED", "INCOMPLETE")]
    evidence += [ev_line(n.source, n.text) for n in failed[:1]]
    hops = _first_hop_h(ev, f.node)
    evidence += hops[:1]
    detail = [f"{f.node} answers its own pings to {f.target} with \"Destination Host "
              f"Unreachable\": its kernel asked for {neighbour}'s MAC address and got no reply, "
              "so it fails every packet for it with an ICMP host unreachable (EHOSTUNREACH, "
              "\"no route to host\", for clients)."]
    if t is not None:
        evidence += route_lines(t)[:1]
        evidence.append(ev_line(None, f"trace: {trace_summary(t)}"))
        detail.append(f"Traced through {f.node}'s own routes and rules: the packet leaves "
                      f"{dev} for {'the on-link peer' if neighbour == f.target else 'the gateway'} "
                      f"{neighbour}; nothing on {f.node} stops it, the neighbour never answers.")
    if failed:
        detail.append(f"{f.node}'s neighbour table holds {neighbour} as {failed[0].state}.")
    if hops:
        detail.append(f"A traceroute from {f.node} also ends at its own address with !H.")
    detail.append(f"{who} is down, or no longer on {f.node}'s segment: check its NIC, switch "
                  "port (VLAN), cabling. No Kubernetes setting fixes this.")
    explains = [f"conn-error:EHOSTUNREACH@{f.node}", f"svc-unreachable:EHOSTUNREACH@{f.node}"]
    if _control_plane(ev, peer):
        # The node's kubelet cannot reach the apiserver behind that peer: its Node goes
        # NotReady, and pods there cannot reach the `kubernetes` Service.
        explains += [f"node-not-ready@{f.node}", f"conn-error:TIMEOUT@{f.node}",
                     f"svc-unreachable:TIMEOUT@{f.node}"]
    arping = f"arping -I {dev} -c 3 {neighbour}" if dev else f"arping -c 3 {neighbour}"
    fixes = [
        Fix(f"on {f.node}: {arping}; ip neigh show {neighbour}", "now",
            "no reply (neighbour FAILED) confirms the peer is not on this segment"),
        Fix((f"on {peer}: " if peer else "on the peer: ") + "ip -br link; ip -br addr  "
            f"# is the NIC up and still {neighbour}?", "now",
            "from the peer's console: a link down or a changed address shows here"),
        Fix(f"put {who} back on {f.node}'s network segment (switch port VLAN, cabling, or "
            "the NIC's link)", "permanent", "the peer must answer ARP on the node network"),
    ]
    confidence = 0.8
    if t is not None:
        confidence += 0.07
    if failed:
        confidence += 0.05
    if hops:
        confidence += 0.02
    return Finding(
        detector="A51", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{peer or f.node}",
        title=f"{f.node} gets no ARP reply from {who}: the peer is off the node network",
        node=peer or f.node, confidence=min(confidence, 0.95),
        why=("\"Destination Host Unreachable\" from the node's own address is its own kernel "
             "failing neighbour resolution" + ("; the trace shows nothing on the node stops "
                                               "the packet first" if t is not None else "")),
        evidence=tuple(evidence), explains=tuple(dict.fromkeys(explains)), fix=tuple(fixes),
        detail="\n".join(detail), trace=t,
    )
