"""Failure mode 6: reverse-path filter (rp_filter) conflicts.

Two ways rp_filter breaks a cluster:

* **Strict mode drops asymmetric traffic.** For a received packet, fib_validate_source() looks
  up the route back to the packet's source; with rp_filter=1 (strict) the packet is dropped
  unless that route leaves through the interface the packet came in on, with 2 (loose) it is
  dropped only when there is no route back at all. The effective mode of an interface is
  max(conf.all.rp_filter, conf.IFACE.rp_filter) (IN_DEV_RPFILTER, include/linux/inetdevice.h).
  Multi-NIC nodes (traffic from a peer arriving on one NIC while the route back to the peer
  uses the other) and tunnels whose routes do not match the way packets arrive hit it. The
  drop is silent (only the IPReversePathFilter counter rises): clients time out.
  Proof: the packet is traced *as received* on the node (source, arrival interface) and the
  simulator's reverse-path check drops it; where the sending node's state is known, its own
  trace says which source address the packet carries and that it really leaves towards us.
* **Calico refuses loose mode.** felix exits with "Kernel's RPF check is set to 'loose'" when
  net.ipv4.conf.all.rp_filter is 2 (systemd >= 240 ships 2 in 50-default.conf), so calico-node
  never becomes ready. Proof: the log line and the sysctl.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from netsleuth.datapath.trace_model import Step, Trace, Verdict
from netsleuth.diagnose.detectors._cluster import route_text, sysctl_line
from netsleuth.diagnose.detectors._nodenet import (
    TIMEOUTS,
    Candidate,
    cluster_addresses,
    conf,
    error_keys,
    interface_of,
    is_tunnel,
    iter_nodes,
    local_pod_sources,
    on_node,
    peer_ips,
    remote_pod_targets,
    scan,
    trace,
    trace_line,
    with_sysctls,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector

KIND_DROP = "rp-filter-drop"
KIND_LOOSE = "rp-filter-loose-rejected"
FELIX_LOOSE = re.compile(r"Kernel's RPF check is set to 'loose'(?!\s+and IgnoreLooseRPF)")


@dataclass(frozen=True, slots=True)
class _Drop:
    cand: Candidate
    trace: Trace
    step: Step
    peer: str | None = None  # the node that sent the packet, when known
    sent: Trace | None = None  # the sender's own trace of it


def _rpf_step(t: Trace) -> Step | None:
    if t.verdict != Verdict.DROPPED:
        return None
    for s in t.main.steps:
        if s.action.startswith("dropped by rp_filter"):
            return s
    return None


def _mode(node: NodeEvidence, iif: str) -> int:
    sysctls = node.state.sysctls
    return max(conf(sysctls, "all", "rp_filter") or 0, conf(sysctls, iif, "rp_filter") or 0)


def _from_peer_states(ev: Evidence, node: NodeEvidence) -> Iterator[_Drop]:
    """Packets other nodes (whose state we have) send to this node's addresses: the sender's
    trace gives the source address; the packet arrives on the interface that holds the
    destination (the last router, or the peer itself, delivers it on that segment)."""
    targets = [a for ip, _ in cluster_addresses(ev, node) if ip.version == 4
               and (a := interface_of(node.state, ip)) is not None]
    for peer in iter_nodes(ev):
        if peer.name == node.name or "routes" not in peer.has:
            continue
        for a in targets:
            sent = trace(peer, a.ip, 10250)
            if sent.verdict != Verdict.SENT or sent.main.packet.src is None:
                continue
            src = sent.main.packet.src
            if is_tunnel(peer.state, sent.main.interface):
                continue
            cand = Candidate(f"{peer.name} ({src}) → {node.name} {a.ip} arriving on {a.ifname}",
                             a.ip, 10250, src, a.ifname)
            t = cand.run(node)
            step = _rpf_step(t)
            if step is not None:
                yield _Drop(cand, t, step, peer.name, sent)
        yield from _tunnel_drops(ev, node, peer)


def _tunnel_drops(ev: Evidence, node: NodeEvidence, peer: NodeEvidence) -> Iterator[_Drop]:
    """Pod traffic the peer encapsulates towards this node arrives on this node's tunnel
    device of the same name; the route back to the peer's pods must use that device too."""
    dsts = local_pod_sources(ev, node)
    srcs = local_pod_sources(ev, peer)
    if not dsts or not srcs:
        return
    dst_ip = dsts[0][0]
    src_ip, src_dev, _ = srcs[0]
    sent = trace(peer, dst_ip, 8080, src=src_ip, iif=src_dev)
    dev = sent.main.interface
    if sent.verdict != Verdict.FORWARDED or not is_tunnel(peer.state, dev):
        return
    if not any(link.name == dev for link in node.state.links):
        return
    cand = Candidate(f"pod {src_ip} on {peer.name} → pod {dst_ip}, arriving on {dev}",
                     dst_ip, 8080, src_ip, dev)
    t = cand.run(node)
    step = _rpf_step(t)
    if step is not None:
        yield _Drop(cand, t, step, peer.name, sent)


def _from_facts(ev: Evidence, node: NodeEvidence) -> Iterator[_Drop]:
    """Without the sender's state: other nodes' addresses sending to this node's cluster
    addresses, and this node's pods sending out."""
    with_state = {n for n, p in ev.nodes.items() if "routes" in p.has}
    for ip, _why in cluster_addresses(ev, node):
        a = interface_of(node.state, ip)
        if a is None:
            continue
        for src, peer in peer_ips(ev, node.name).items():
            if peer in with_state or src.version != ip.version:
                continue
            cand = Candidate(f"{peer} ({src}) → {node.name} {ip} arriving on {a.ifname}",
                             ip, 10250, src, a.ifname)
            t = cand.run(node)
            step = _rpf_step(t)
            if step is not None:
                yield _Drop(cand, t, step, peer)
    for src, dev, _ in local_pod_sources(ev, node)[:2]:
        for dst, _ref in remote_pod_targets(ev, node)[:1]:
            cand = Candidate(f"pod {src} on {node.name} → {dst}, arriving on {dev}", dst, 8080,
                             src, dev)
            t = cand.run(node)
            step = _rpf_step(t)
            if step is not None:
                yield _Drop(cand, t, step)


@detector("A06", title="Reverse-path filter (rp_filter) conflicts", needs=("sysctl", "logs"),
          mode="6")
def rp_filter_conflicts(ev: Evidence) -> Iterator[Finding]:
    yield from _felix_loose(ev)
    for node in iter_nodes(ev):
        sysctls = node.state.sysctls
        if not any(k.endswith(".rp_filter") and v.strip() in ("1", "2")
                   for k, v in sysctls.values.items()):
            continue
        drops = list(_from_peer_states(ev, node)) + list(_from_facts(ev, node))
        if drops:
            yield _drop_finding(ev, node, drops)


def _drop_finding(ev: Evidence, node: NodeEvidence, drops: list[_Drop]) -> Finding:
    d = drops[0]
    iif = d.cand.iif or "?"
    mode = _mode(node, iif)
    sysctls = node.state.sysctls
    evidence: list[EvidenceLine] = [trace_line(d.trace, "received packet")]
    if d.sent is not None:
        evidence.append(trace_line(d.sent, f"on {d.peer}, the packet as sent"))
    for key in ("net.ipv4.conf.all.rp_filter", f"net.ipv4.conf.{iif}.rp_filter"):
        if sysctls.get(key) is not None:
            evidence.append(sysctl_line(sysctls, key))
    back = route_text(d.step.rule) if d.step.rule else "none"
    evidence.append(EvidenceLine(d.step.source.file if d.step.source else "<derived>",
                                 d.step.source.line if d.step.source else 0,
                                 f"route back to {d.cand.src}: {back}"))
    loose = with_sysctls(node.state, {f"net.ipv4.conf.{iif}.rp_filter": "2"},
                         f"rp_filter=2 on {iif}")
    after = d.cand.run(loose)
    fixes: list[Fix] = []
    calico = any(f.value in ("calico", "canal") for f in ev.facts.cni)
    if _rpf_step(after) is None:
        fixes.append(Fix(
            f"sysctl -w net.ipv4.conf.{iif}.rp_filter=2", "now",
            f"loose reverse-path filtering on {iif} (the effective mode is the maximum of "
            f"conf.all and conf.{iif}, so this is enough). Verified by simulation: the packet "
            f"is then {after.verdict.value}."
            + (" Calico only requires conf.all.rp_filter to be 0 or 1, a per-interface 2 is "
               "fine." if calico else "")))
    else:
        fixes.append(Fix(f"sysctl -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.{iif}."
                         "rp_filter=0", "now",
                         f"there is no route back to {d.cand.src} at all, so even loose mode "
                         "drops it; turn the check off for this interface, or add the route"))
    fixes.append(Fix(
        f"make the path symmetric: route {d.cand.src}'s network out of {iif} (or make the "
        f"sender use the address on the interface it is routed to); `ip route get "
        f"{d.cand.src} from {d.cand.dst} iif {iif}` shows the reverse lookup", "permanent",
        "asymmetric routing is the real fault; rp_filter only makes it visible"))
    fixes.append(Fix(
        f"echo 'net.ipv4.conf.{iif}.rp_filter = 2' > /etc/sysctl.d/90-rp-filter.conf && "
        "sysctl --system", "permanent",
        "persist the per-interface setting; systemd-sysctl's 50-default.conf re-applies its "
        "defaults at boot, so the drop-in must sort after it"))
    peer_keys: list[str] = []
    if d.peer:
        # The peer's clients time out towards anything that ends on this node.
        peer_keys = error_keys(ev, d.peer, TIMEOUTS, dst=lambda ip: on_node(ev, node.name, ip))
    explains = error_keys(ev, node.name, TIMEOUTS) + peer_keys
    others = [x.cand.what for x in drops[1:4]]
    detail = (
        f"{node.name} receives {d.cand.what}; with rp_filter={mode} on {iif} "
        f"({'strict' if mode == 1 else 'loose'}) the kernel checks the route back to "
        f"{d.cand.src}, which is `{back}` — not {iif} — and drops the packet silently "
        "(fib_validate_source). Replies never leave, so clients time out."
        + (f" Also dropped: {'; '.join(others)}." if others else "")
    )
    return Finding(
        detector="A06", kind=KIND_DROP, role=Role.CAUSE, key=f"cause:{KIND_DROP}@{node.name}",
        title=f"rp_filter={mode} on {node.name} drops packets from {d.cand.src} arriving on "
              f"{iif} (asymmetric route)",
        node=node.name, confidence=0.95 if d.sent is not None else 0.8,
        why=("proven by tracing the received packet through "
             f"{node.name}'s routes and sysctls: the reverse-path check fails"
             + (f"; {d.peer}'s own state shows it sends the packet with source "
                f"{d.cand.src}" if d.sent is not None else
                "; the sender's source address is assumed to be its node address")),
        evidence=tuple(evidence), explains=tuple(dict.fromkeys(explains)), fix=tuple(fixes),
        detail=detail, trace=d.trace,
    )


def _felix_loose(ev: Evidence) -> Iterator[Finding]:
    by_node: dict[str, list[EvidenceLine]] = {}
    for hit in scan(ev, FELIX_LOOSE):
        by_node.setdefault(hit.node or "?", []).append(hit.evidence)
    for name, lines in by_node.items():
        node = ev.nodes.get(name)
        evidence = list(lines[:3])
        value = node.state.sysctls.get("net.ipv4.conf.all.rp_filter") if node else None
        if node is not None and value is not None:
            evidence.insert(0, sysctl_line(node.state.sysctls, "net.ipv4.conf.all.rp_filter"))
        proven = value is not None and value.strip() == "2"
        if value is not None and not proven:
            continue  # the sysctl shown is not loose: the log is from an earlier state
        where = "?" if name == "?" else name
        yield Finding(
            detector="A06", kind=KIND_LOOSE, role=Role.CAUSE, key=f"cause:{KIND_LOOSE}@{where}",
            title=f"calico-node on {where} refuses to start: net.ipv4.conf.all.rp_filter is 2 "
                  "(loose)",
            node=None if name == "?" else name, confidence=0.95 if proven else 0.85,
            why=("felix's own fatal log line" + (" and the node's sysctl both say so"
                                                  if proven else "")),
            evidence=tuple(evidence),
            explains=(f"cni-agent-not-ready@{where}", f"sandbox-churn@{where}",
                      f"pod-no-ip@{where}"),
            fix=(Fix("sysctl -w net.ipv4.conf.all.rp_filter=1", "now",
                     "strict (1) or off (0) is what felix accepts; calico-node then starts"),
                 Fix("echo 'net.ipv4.conf.all.rp_filter = 1' > /etc/sysctl.d/90-calico.conf "
                     "&& sysctl --system", "permanent",
                     "systemd >= 240 sets 2 in /usr/lib/sysctl.d/50-default.conf; a later "
                     "drop-in overrides it"),
                 Fix("kubectl -n kube-system set env daemonset/calico-node "
                     "FELIX_IGNORELOOSERPF=true", "permanent",
                     "only if loose mode is needed on purpose: felix then cannot stop "
                     "workloads from spoofing source addresses")),
            detail=("felix checks net.ipv4.conf.all.rp_filter at start and exits when it is "
                    "2: loose mode would let pods spoof their source address. calico-node "
                    "crash-loops, so no pod on the node gets networking."),
        )

