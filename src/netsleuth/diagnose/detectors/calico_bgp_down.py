"""Failure mode 34: Calico BGP sessions not established.

calico-node's readiness fails with `BIRD is not ready: BGP not established with A,B` and
`calicoctl node status` lists the peers in state start/Connect/Active/Passive. Without the
session, the peers' pod routes (`proto bird`) are missing: pods on the two nodes cannot reach
each other, DNS is the first casualty.

Calico's node-to-node mesh is unidirectional: the node with the higher address opens the TCP
connection to port 179 of the lower one; the lower one is `passive on` for it (bird template
in calico/confd: "Mesh is unidirectional, peer will connect to us"). So for a session that is
down the detector knows which node listens and which connects, traces the connector's SYN as
the listener receives it on its cluster NIC (and as the connector sends it), and names the
rule that rejects or drops it. The socket error BIRD shows must agree with the trace: `No route
to host` (EHOSTUNREACH) for a REJECT with an ICMP host-unreachable/-prohibited, `Connection
refused` for a RST, a bare Connect/Active for a silent DROP. The fix is verified by re-tracing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

from netsleuth.datapath.trace import REJECT_ERRNO
from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cluster import node_ips
from netsleuth.diagnose.detectors._cni_dns import (
    cluster_address,
    deciding_step_lines,
    ev_line,
    event_node,
    event_text,
    host_of,
    matching_events,
    matching_logs,
    node_of_ip,
    passes,
    permanent_allow,
    raw_lines,
    raw_outputs,
    trace_local,
    trace_received,
    trace_summary,
    with_rule_first,
)
from netsleuth.diagnose.detectors._paths import deciding_step
from netsleuth.diagnose.evidence import Evidence, NodeEvidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import parse_ip
from netsleuth.model.net import IPAddress, RouteType
from netsleuth.model.source import SourceRef

KIND = "bgp-port-blocked"
NOT_ESTABLISHED = re.compile(r"BGP not established with ([0-9a-fA-F.:,\s]+)")
ROW = re.compile(r"^\|\s*(?P<peer>[^|]*?)\s*\|\s*(?P<type>[^|]*?)\s*\|\s*(?P<state>[^|]*?)\s*\|"
                 r"\s*(?P<since>[^|]*?)\s*\|\s*(?P<info>[^|]*?)\s*\|\s*$")
SOCKET_ERRNO = (
    (re.compile(r"Connection refused", re.I), "ECONNREFUSED"),
    (re.compile(r"No route to host|Host is unreachable", re.I), "EHOSTUNREACH"),
    (re.compile(r"Network is unreachable", re.I), "ENETUNREACH"),
    (re.compile(r"timed out", re.I), "TIMEOUT"),
)
BGP_PORT = 179


@dataclass(frozen=True, slots=True)
class Session:
    node: str  # the node that reports the session
    peer: IPAddress
    state: str  # up/start/...
    info: str  # Established, Connect, Active Socket: ..., Passive
    evidence: EvidenceLine

    @property
    def established(self) -> bool:
        return self.info.startswith("Established")

    @property
    def errno(self) -> str | None:
        for rx, errno in SOCKET_ERRNO:
            if rx.search(self.info):
                return errno
        if self.info.startswith(("Connect", "Active")):
            return "TIMEOUT"
        return None


def sessions(ev: Evidence) -> list[Session]:
    """BGP sessions as calicoctl node status and calico-node's readiness report them."""
    out: list[Session] = []
    for raw in raw_outputs(ev, "calicoctl-node-status"):
        node = ev.node_for(raw.host)
        if node is None:
            continue
        last: tuple[str, str, str, SourceRef, str] | None = None
        for ref, text in raw_lines(raw):
            m = ROW.match(text.strip())
            if m is None or m["peer"] == "PEER ADDRESS":
                if last is not None:
                    out.extend(x for x in (_session(node, *last),) if x)
                    last = None
                continue
            if not m["peer"] and last is not None:  # INFO wrapped onto the next row
                last = (last[0], last[1], f"{last[2]} {m['info']}".strip(), last[3], last[4])
                continue
            if last is not None:
                out.extend(x for x in (_session(node, *last),) if x)
            last = (m["peer"], m["state"], m["info"], ref, text.strip())
        if last is not None:
            out.extend(x for x in (_session(node, *last),) if x)
    seen = {(s.node, s.peer) for s in out}
    for e, m in matching_events(ev, NOT_ESTABLISHED):
        node = event_node(ev, e)
        for part in m.group(1).split(","):
            ip = parse_ip(part)
            if node and ip is not None and (node, ip) not in seen:
                seen.add((node, ip))
                out.append(Session(node, ip, "start", "not established (readiness)",
                                   ev_line(e.source, event_text(e))))
    for ln, m in matching_logs(ev, NOT_ESTABLISHED):
        node = log_node(ev, ln)
        for part in m.group(1).split(","):
            ip = parse_ip(part)
            if node and ip is not None and (node, ip) not in seen:
                seen.add((node, ip))
                out.append(Session(node, ip, "start", "not established (readiness)",
                                   ev_line(ln.source, ln.text)))
    return out


def _session(node: str, peer: str, state: str, info: str, ref: SourceRef,
             text: str) -> Session | None:
    ip = parse_ip(peer)
    return Session(node, ip, state, info, ev_line(ref, text)) if ip is not None else None


def _own_ip(ev: Evidence, node: str) -> IPAddress | None:
    ips = node_ips(ev, node)
    if ips:
        return ips[0]
    n = ev.nodes.get(node)
    addr = cluster_address(ev, n) if n is not None else None
    return addr.ip if addr else None


def _node_addresses_known(ev: Evidence) -> bool:
    return bool(ev.facts.node_ips) or any(k.internal_ips for k in ev.objects.nodes)


def _bird_owner(ev: Evidence, ip: IPAddress) -> str | None:
    """The node `ip` belongs to, as the BIRD routes show it: BIRD routes a node's block (the
    `blackhole BLOCK proto bird` on its owner) via the owner's BGP address."""
    owners = {_block(n): n.name for n in ev.nodes.values() if _block(n) is not None}
    found = {owners[r.dst] for n in ev.nodes.values() for r in n.state.routes
             if r.dst in owners and r.gateway == ip and r.protocol in ("bird", "80")}
    return next(iter(found)) if len(found) == 1 else None


Missing = tuple[str, IPv4Network | IPv6Network, IPAddress, str, EvidenceLine]


def _missing_routes(ev: Evidence) -> list[Missing]:
    """(node, block, next hop, who routes it, that route) for pod blocks that another node
    routes via BIRD but this node does not route at all: its session with that next hop is
    down too."""
    routed: dict[IPv4Network | IPv6Network, tuple[IPAddress, str, EvidenceLine]] = {}
    for n in ev.nodes.values():
        for r in n.state.routes:
            if r.protocol in ("bird", "80") and r.gateway is not None and r.dst not in routed:
                routed[r.dst] = (r.gateway, n.name, ev_line(r.source, r.raw or str(r.dst)))
    out: list[Missing] = []
    for n in ev.nodes.values():
        if _block(n) is None:
            continue  # not a Calico node's full table (or not shown)
        dsts = {r.dst for r in n.state.routes}
        for block, (hop, who, quote) in routed.items():
            if who != n.name and block not in dsts and block != _block(n) and \
                    all(a.ip != hop for a in n.state.addresses):
                out.append((n.name, block, hop, who, quote))
    return out


def _bird_listening(ev: Evidence, node: str | None) -> EvidenceLine | None:
    """An `ss -ltnp` line of `node` showing BIRD listening on TCP 179."""
    if node is None:
        return None
    for raw in raw_outputs(ev, "ss", command=re.compile(r"\bss\b"), node=node):
        for ref, text in raw_lines(raw):
            if re.search(r":179\s", text) and "bird" in text and "LISTEN" in text:
                return ev_line(ref, text)
    return None


def _unresolved(ev: Evidence, s: Session, peer_node: str | None) -> Finding:
    """The session is reported down, but which side connects is unknown: a weak cause that
    names the pair and what to check."""
    who = f"{peer_node} ({s.peer})" if peer_node else str(s.peer)
    evidence: list[EvidenceLine] = [s.evidence]
    detail = [f"{s.node} reports its BGP session with {who} as {s.state} / {s.info}: "
              f"the TCP connection to port {BGP_PORT} never completes."]
    if peer_node is not None and node_of_ip(ev, s.peer) is None:
        detail.append(f"{s.peer} is {peer_node}'s address: BIRD on another node routes "
                      f"{peer_node}'s pod block via it.")
    listening = _bird_listening(ev, peer_node)
    if listening is not None:
        evidence.append(listening)
        detail.append(f"BIRD listens on {BGP_PORT} on {peer_node}: the SYNs are lost on the "
                      "way (a host firewall, a security group), BIRD itself is up.")
    for node, block, hop, who_routes, quote in _missing_routes(ev)[:2]:
        evidence.append(quote)
        detail.append(f"{node} has no route to {block}, which {who_routes} routes via {hop}: "
                      f"{node}'s session with {hop} is down as well.")
    errnos = [s.errno] if s.errno else []
    explains: list[str] = []
    for n in sorted({s.node} | ({peer_node} if peer_node else set())):
        explains += [f"bgp-not-established@{n}", f"cni-agent-not-ready@{n}", f"dns-errors@{n}",
                     f"svc-unreachable:TIMEOUT@{n}", f"conn-error:TIMEOUT@{n}",
                     f"conn-error:ETIMEDOUT@{n}"]
    return Finding(
        detector="D34", kind="bgp-session-down", role=Role.CAUSE,
        key=f"cause:bgp-session-down@{s.node}",
        title=f"Calico BGP session {s.node} ↔ {who} (TCP {BGP_PORT}) is down",
        node=s.node, confidence=0.55 if listening is not None else 0.5,
        why="calicoctl reports the session down" + (f" ({', '.join(errnos)})" if errnos else "")
            + "; the nodes' addresses and firewall rules are not in the evidence to trace it",
        evidence=tuple(evidence), explains=tuple(explains),
        fix=(Fix(f"on {s.node}: nc -zv -w 3 {s.peer} {BGP_PORT}; and from {who} to {s.node}",
                 "now", f"a timeout is a firewall/security group dropping TCP {BGP_PORT}; open "
                        f"it between all nodes"),
             Fix(f"allow TCP {BGP_PORT} between all nodes (host firewall and cloud security "
                 "groups), or run Calico with VXLAN and without BGP", "permanent",
                 "Calico's node-to-node mesh needs TCP 179 between every pair of nodes")),
        detail="\n".join(detail),
    )


def _block(state_node: NodeEvidence) -> IPv4Network | IPv6Network | None:
    """The node's own Calico block: its `blackhole ... proto bird` route."""
    for r in state_node.state.routes:
        if r.type == RouteType.BLACKHOLE and r.protocol in ("bird", "80"):
            return r.dst
    return None


@dataclass(frozen=True, slots=True)
class _Proof:
    listener: str
    connector: str
    l_ip: IPAddress
    c_ip: IPAddress
    at: str  # node whose rules block it
    trace: Trace
    direction: str  # "in" (listener INPUT) or "out" (connector OUTPUT)


@detector("D34", title="Calico BGP sessions not established", needs=("events", "logs", "iptables"),
          mode="34")
def calico_bgp_down(ev: Evidence) -> Iterator[Finding]:
    down = [s for s in sessions(ev) if not s.established]
    if not down:
        return
    by_node: dict[str, list[Session]] = {}
    for s in down:
        by_node.setdefault(s.node, []).append(s)
    for node, ss in sorted(by_node.items()):
        peers = ", ".join(str(s.peer) for s in ss)
        yield Finding(
            detector="D34", kind="bgp-not-established", role=Role.SYMPTOM,
            key=f"bgp-not-established@{node}",
            title=f"BGP sessions of {node} not established with {peers}", node=node,
            confidence=0.9, why="calico-node's BIRD has no session with these peers, so their "
                                "pod routes are missing",
            evidence=tuple(s.evidence for s in ss[:4]),
            explains=(f"cni-agent-not-ready@{node}",),
        )
    done: set[tuple[str, str]] = set()
    for s in down:
        peer_node = node_of_ip(ev, s.peer) or _bird_owner(ev, s.peer)
        own = _own_ip(ev, s.node)
        if peer_node == s.node:
            continue
        if peer_node is None and _node_addresses_known(ev):
            continue  # a peer that is no node's address: see D33 (autodetection)
        if peer_node is None or own is None:
            # Who connects to whom is unknown (the node's own address is not in the evidence),
            # so nothing can be traced: the session is down, between these two.
            pair = (s.node, str(s.peer))
            if pair not in done:
                done.add(pair)
                yield _unresolved(ev, s, peer_node)
            continue
        if "Passive" in s.info or (s.errno is None and int(s.peer) > int(own)):
            listener, connector, l_ip, c_ip = s.node, peer_node, own, s.peer
        elif s.errno is not None:
            listener, connector, l_ip, c_ip = peer_node, s.node, s.peer, own
        else:
            listener, connector, l_ip, c_ip = ((s.node, peer_node, own, s.peer)
                                               if int(s.peer) > int(own)
                                               else (peer_node, s.node, s.peer, own))
        pair = (listener, connector)
        if pair in done:
            continue
        done.add(pair)
        reports = [x for x in down if {x.node, node_of_ip(ev, x.peer)} == {listener, connector}]
        proof = _prove(ev, listener, connector, l_ip, c_ip)
        yield _finding(ev, listener, connector, l_ip, c_ip, proof, reports)


def _prove(ev: Evidence, listener: str, connector: str, l_ip: IPAddress,
           c_ip: IPAddress) -> _Proof | None:
    ln = ev.nodes.get(listener)
    if ln is not None and "iptables" in ln.has and ln.state.ruleset.origin != "rebuilt":
        addr = next((a for a in ln.state.addresses if a.ip == l_ip), None) or cluster_address(ev, ln)
        if addr is not None:
            t = trace_received(ln.state, src=c_ip, dst=l_ip, dport=BGP_PORT, proto="tcp",
                               iif=addr.ifname)
            if _firewalled(t):
                return _Proof(listener, connector, l_ip, c_ip, listener, t, "in")
    cn = ev.nodes.get(connector)
    if cn is not None and "iptables" in cn.has and cn.state.ruleset.origin != "rebuilt":
        t = trace_local(cn.state, l_ip, BGP_PORT, "tcp")
        if _firewalled(t):
            return _Proof(listener, connector, l_ip, c_ip, connector, t, "out")
    return None


def _firewalled(t: Trace) -> bool:
    """Every way the SYN can go ends at a netfilter rule or chain policy that drops or rejects
    it (an rp_filter or martian drop, or a missing route, is no firewall's doing)."""
    return bool(t.outcomes) and all(
        o.verdict in (Verdict.DROPPED, Verdict.REJECTED) and deciding_step(o) is not None
        for o in t.outcomes)


def _trace_errno(t: Trace) -> str:
    o = t.main
    if o.verdict == Verdict.REJECTED:
        return REJECT_ERRNO.get(o.icmp or "", "ECONNREFUSED")
    if o.verdict == Verdict.UNROUTABLE:
        return o.errno or "ENETUNREACH"
    return "TIMEOUT"


def _finding(ev: Evidence, listener: str, connector: str, l_ip: IPAddress, c_ip: IPAddress,
             proof: _Proof | None, reports: list[Session]) -> Finding:
    evidence: list[EvidenceLine] = [s.evidence for s in reports[:3]]
    detail = [f"Calico's mesh is unidirectional: {connector} ({c_ip}, the higher address) opens "
              f"TCP {BGP_PORT} to {listener} ({l_ip})."]
    nodes = {listener, connector}
    explains: list[str] = []
    for n in sorted(nodes):
        explains += [f"bgp-not-established@{n}", f"cni-agent-not-ready@{n}", f"dns-errors@{n}",
                     f"svc-unreachable:TIMEOUT@{n}", f"conn-error:TIMEOUT@{n}",
                     f"conn-error:ETIMEDOUT@{n}"]
    # Corroboration: the connector has no BGP route to the listener's pod block (and back).
    for a, b in ((connector, listener), (listener, connector)):
        na, nb = ev.nodes.get(a), ev.nodes.get(b)
        block = _block(nb) if nb is not None else None
        if na is None or block is None:
            continue
        t = trace_local(na.state, host_of(block), None, "tcp")
        peer_ip = c_ip if b == connector else l_ip
        if t.main.next_hop != str(peer_ip):
            evidence.extend(deciding_step_lines(t, 1))
            detail.append(f"{a} has no route to {b}'s pod block {block} via {peer_ip}: pods "
                          f"there are reached via {t.main.next_hop or t.main.verdict.value} "
                          "instead, and time out.")
    if proof is None:
        errnos = sorted({s.errno for s in reports if s.errno})
        detail.append("No firewall evidence of either node could be traced; "
                      + (f"BIRD's socket error says {', '.join(errnos)}. " if errnos else "")
                      + f"Check TCP {BGP_PORT} from {c_ip} to {l_ip} (host firewall, cloud "
                      "security group, a router that filters BGP).")
        return Finding(
            detector="D34", kind="bgp-session-down", role=Role.CAUSE,
            key=f"cause:bgp-session-down@{listener}",
            title=f"Calico BGP session {connector} → {listener} (TCP {BGP_PORT}) is down",
            node=listener, confidence=0.5,
            why="the sessions are reported down on both sides' status, but no rule could be "
                "traced: what blocks TCP 179 is not in the evidence",
            evidence=tuple(evidence), explains=tuple(explains),
            fix=(Fix(f"on {connector}: nc -zv -w 3 {l_ip} {BGP_PORT}  # then open TCP {BGP_PORT} "
                     f"from {c_ip} on {listener}'s firewall / security group", "now"),),
            detail="\n".join(detail),
        )
    t = proof.trace
    blocker = proof.at
    evidence = deciding_step_lines(t, 2) + evidence
    evidence.append(ev_line(None, f"trace: {trace_summary(t)}"))
    seen = {s.errno for s in reports if s.errno}
    traced = _trace_errno(t)
    agree = traced in seen
    if proof.direction == "in":
        verb = "rejects" if t.main.verdict == Verdict.REJECTED else "drops"
        detail.append(f"{listener}'s INPUT {verb} the SYN from {c_ip}: "
                      f"{connector} sees {traced}." + (" That is the socket error BIRD reports."
                                                        if agree else ""))
    else:
        detail.append(f"{connector}'s OUTPUT stops its own SYN to {l_ip} "
                      f"({t.main.verdict.value}).")
    node_ev = ev.nodes[blocker]
    addr = next((a for a in node_ev.state.addresses if a.ip in (l_ip, c_ip)), None)
    subnet = str(addr.network) if addr is not None and addr.network.prefixlen < 32 else f"{c_ip}/32"
    fixes: list[Fix] = []
    if proof.direction == "in":
        rule = f"-s {subnet} -p tcp -m tcp --dport {BGP_PORT} -j ACCEPT"
        fixed = with_rule_first(node_ev.state, "filter", "INPUT", rule)
        iif = addr.ifname if addr is not None else t.packet.iif or ""
        again = trace_received(fixed, src=c_ip, dst=l_ip, dport=BGP_PORT, proto="tcp", iif=iif)
        fixes.append(Fix(f"iptables -I INPUT 1 {rule}", "now",
                         f"on {blocker}. Verified by simulation: the SYN from {c_ip} is then "
                         f"{again.verdict.value}" if passes(again) else
                         f"on {blocker}; re-trace still blocked: see the trace"))
        fixes.append(Fix(permanent_allow(node_ev.state, "tcp", BGP_PORT, subnet), "permanent",
                         f"on {blocker}: Calico needs TCP {BGP_PORT} between all nodes"))
    else:
        rule = f"-d {subnet} -p tcp -m tcp --dport {BGP_PORT} -j ACCEPT"
        fixed = with_rule_first(node_ev.state, "filter", "OUTPUT", rule)
        again = trace_local(fixed, l_ip, BGP_PORT, "tcp")
        fixes.append(Fix(f"iptables -I OUTPUT 1 {rule}", "now",
                         f"on {blocker}. Verified by simulation: then {again.verdict.value}"
                         if passes(again) else f"on {blocker}; re-trace still blocked"))
    return Finding(
        detector="D34", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{blocker}",
        title=f"{blocker}'s firewall blocks Calico BGP (TCP {BGP_PORT}) from {connector} to "
              f"{listener}",
        node=blocker, confidence=0.95 if agree else 0.8,
        why=f"proven by tracing {connector}'s BGP SYN through {blocker}'s iptables rules"
            + (f"; the {traced} it yields is the socket error BIRD reports" if agree else
               f"; BIRD reports {', '.join(sorted(seen)) or 'no socket error'}, the trace "
               f"gives {traced}"),
        evidence=tuple(evidence), explains=tuple(explains), fix=tuple(fixes),
        detail="\n".join(detail), trace=t,
    )
