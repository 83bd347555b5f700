"""Failure mode 5: IP forwarding is disabled on a node.

Every packet a pod sends off its node, and every NodePort/Service packet DNATed to a pod, is a
*forwarded* packet: ip_route_input_slow() finds the route and then, for a device whose
IN_DEV_FORWARD is off, ends in `no_route` (ip_error() drops it silently for such a device).
`net.ipv4.ip_forward` sets the forwarding flag of every device (devinet_sysctl_forward), a
per-device `net.ipv4.conf.DEV.forwarding` overrides it for that device. Host-originated traffic
(kubelet, hostNetwork pods) is not forwarded and keeps working, which is the tell.

The proof is a trace of a packet from a local pod (or to a NodePort) through the node's real
state showing the drop, and the fix is checked by re-tracing with forwarding on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cluster import node_ips, pods_on_node, sysctl_line
from netsleuth.diagnose.detectors._common import dns_pod, looks_like_k8s_node
from netsleuth.diagnose.detectors._nodenet import (
    TIMEOUTS,
    Candidate,
    error_keys,
    iter_nodes,
    local_pod_sources,
    peer_ips,
    remote_pod_targets,
    remote_service_targets,
    scan,
    trace_line,
    with_sysctls,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.net import Sysctls

KIND = "ip-forwarding-disabled"
PREFLIGHT = re.compile(r"\[ERROR FileContent--proc-sys-net-ipv4-ip_forward\][^\n]*")
FORWARD_KEYS = re.compile(r"^net\.ipv4\.(ip_forward|conf\.[^.]+\.forwarding)$")


def _off_keys(sysctls: Sysctls) -> list[str]:
    """Forwarding switches that are off: the global ones, else per-device ones (setting
    ip_forward sets every device's flag too, so with the global switch off the per-device
    zeros add nothing)."""
    off = [k for k, v in sorted(sysctls.values.items())
           if FORWARD_KEYS.match(k) and v.strip() == "0" and ".lo." not in k
           and ".default." not in k]
    global_off = [k for k in off if k in ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding")]
    return global_off or off


def _candidates(ev: Evidence, node: NodeEvidence) -> list[Candidate]:
    """Forwarded packets: a local pod to a pod elsewhere / to a Service with remote endpoints,
    and another node's packet to one of this node's NodePorts."""
    out: list[Candidate] = []
    sources = local_pod_sources(ev, node)
    for src, iif, ref in sources[:2]:
        for dst, dref in remote_pod_targets(ev, node)[:2]:
            out.append(Candidate(f"pod {src} → remote pod {dst}", dst, 8080, src, iif,
                                 source=dref or ref))
        for ip, port, sref in remote_service_targets(ev, node)[:2]:
            out.append(Candidate(f"pod {src} → Service {ip}:{port}", ip, port, src, iif,
                                 source=sref))
    own = node_ips(ev, node.name)
    peers = list(peer_ips(ev, node.name))
    for svc in ev.objects.services:
        for sport in svc.ports:
            if sport.node_port and own and peers:
                out.append(Candidate(f"node {peers[0]} → NodePort {own[0]}:{sport.node_port}",
                                     own[0], sport.node_port, peers[0], _iface_of(node, own[0]),
                                     source=svc.source))
    return out


def _iface_of(node: NodeEvidence, ip: object) -> str | None:
    for a in node.state.addresses:
        if a.ip == ip:
            return a.ifname
    return None


def _forward_drop(t: Trace) -> bool:
    return t.verdict == Verdict.DROPPED and any(
        s.action.startswith("dropped: forwarding is disabled") for s in t.main.steps)


@detector("A05", title="IP forwarding disabled on a node", needs=("sysctl",), mode="5")
def ip_forward_disabled(ev: Evidence) -> Iterator[Finding]:
    preflight = scan(ev, PREFLIGHT)
    for node in iter_nodes(ev):
        sysctls = node.state.sysctls
        off = _off_keys(sysctls)
        # Forwarding off is a fault only on a Kubernetes node: say nothing about a machine
        # that no evidence ties to a cluster.
        cluster = bool(ev.objects.services or ev.objects.pods or ev.objects.nodes)
        if not off or not (cluster or preflight or looks_like_k8s_node(ev, node)):
            continue
        proof: tuple[Candidate, Trace] | None = None
        for cand in _candidates(ev, node):
            if cand.iif is None:
                continue
            t = cand.run(node)
            if _forward_drop(t):
                proof = (cand, t)
                break
        yield _finding(ev, node, off, proof,
                       [h.evidence for h in preflight if h.node in (node.name, None)])


def _finding(ev: Evidence, node: NodeEvidence, off: list[str],
             proof: tuple[Candidate, Trace] | None, preflight: list[EvidenceLine]) -> Finding:
    sysctls = node.state.sysctls
    evidence: list[EvidenceLine] = [sysctl_line(sysctls, k) for k in off]
    fix_values = {k: "1" for k in off}
    fix_values.setdefault("net.ipv4.ip_forward", "1")
    verified = ""
    if proof is not None:
        cand, t = proof
        evidence.insert(0, trace_line(t, cand.what))
        fixed = with_sysctls(node.state, fix_values, "forwarding enabled")
        after = cand.run(fixed)
        if not _forward_drop(after):
            verified = (f" Verified by simulation: with forwarding on, {cand.what} is "
                        f"{after.verdict.value}"
                        + (f" out {after.main.interface}" if after.main.interface else "") + ".")
    evidence.extend(preflight[:2])
    explains = error_keys(ev, node.name, TIMEOUTS | {"EHOSTUNREACH"}, pods_only=True)
    explains.append(f"dns-errors@{node.name}")
    if any(dns_pod(p.name) for p in pods_on_node(ev, node.name)):
        explains.append("dns-down")
    sets = " ".join(f"{k}=1" for k in fix_values)
    fixes = (
        Fix(f"sysctl -w {sets}", "now",
            "re-enable forwarding; pods' traffic and NodePorts work again at once."
            + verified),
        Fix("printf 'net.ipv4.ip_forward = 1\\n' > /etc/sysctl.d/99-zz-kubernetes.conf && "
            "sysctl --system", "permanent",
            "persist it in a sysctl.d file that sorts after any hardening file that sets it "
            "to 0 (files are applied in lexical order, the last one wins); check "
            "`grep -r ip_forward /etc/sysctl.conf /etc/sysctl.d /usr/lib/sysctl.d` and "
            "systemd-networkd's IPForward= / `service network restart` scripts"),
    )
    if proof is not None:
        confidence = 0.95
        why = (f"proven by tracing a forwarded packet ({proof[0].what}) through "
               f"{node.name}'s state: the kernel drops it because forwarding is off")
    else:
        confidence = 0.8
        why = ("the sysctl alone decides it (a device with forwarding off never forwards), "
               "but no forwarded packet could be built from the evidence to trace it")
    detail = (
        f"{', '.join(f'{k} = 0' for k in off)} on {node.name}: the kernel does not forward "
        "packets between interfaces. Pods on this node cannot reach anything off the node "
        "(other pods, Services whose endpoints run elsewhere, DNS), and NodePort traffic "
        "for pods elsewhere is dropped; host-originated traffic (kubelet, hostNetwork pods) "
        "still works, so the node looks healthy and Ready. The drop is silent: clients see "
        "timeouts."
    )
    return Finding(
        detector="A05", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=f"IP forwarding is disabled on {node.name} ({', '.join(off)} = 0)",
        node=node.name, confidence=confidence, why=why, evidence=tuple(evidence),
        explains=tuple(dict.fromkeys(explains)), fix=fixes, detail=detail,
        trace=proof[1] if proof else None,
    )
