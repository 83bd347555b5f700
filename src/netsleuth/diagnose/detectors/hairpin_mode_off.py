"""Failure mode 25: a pod cannot reach itself through its own Service (hairpin off).

kube-proxy load-balances a Service over all endpoints, the caller included; for that branch
its KUBE-SEP chain matches `-s <endpoint> -j KUBE-MARK-MASQ` (the hairpin masquerade) and DNATs
the packet back to the caller. With br_netfilter the DNAT happens while the frame is being
bridged, and a destination on the same bridge makes br_nf_pre_routing_finish() send the frame
on as a bridged frame ("bridged_dnat") — back out of the very port it came in on. The bridge
refuses that (should_deliver() in net/bridge/br_forward.c) unless the port has hairpin_mode on:
the connection hangs, for about 1/N of the calls (kubernetes/kubernetes#20475, #13375).

Proof: the pod → own Service packet traced through the node's rules: the branch DNATed to the
caller itself, with the KUBE-SEP masquerade rule, forwarded out of the bridge it arrived on;
plus the ports' hairpin flags (`bridge -d link`, sysfs), the CNI's hairpinMode or kubelet's
--hairpin-mode.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._bridge import BridgePath, bridges, same_bridge_paths
from netsleuth.diagnose.detectors._common import line
from netsleuth.diagnose.detectors._host_evidence import numbered, outputs, sysctl
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector

KIND = "hairpin-off"
PORT_LINE = re.compile(r"^\d+:\s+(?P<port>[\w.-]+?)(?:@\S+)?:\s.*\bmaster (?P<br>\S+)")
HAIRPIN = re.compile(r"\bhairpin (?P<v>on|off)\b")
SYSFS = re.compile(r"/brif/(?P<port>[^/]+)/hairpin_mode:?\s*(?P<v>[01])\s*$")


def hairpin_flags(ev: Evidence, node: str) -> dict[str, tuple[bool, EvidenceLine]]:
    """Bridge port → (hairpin on?, evidence), from `bridge -d link` or sysfs listings."""
    out: dict[str, tuple[bool, EvidenceLine]] = {}
    for raw in outputs(ev, "bridge-link", node):
        port = None
        for ref, text in numbered(raw):
            m = PORT_LINE.match(text)
            if m:
                port = m.group("port")
            h = HAIRPIN.search(text)
            if h and port:
                out[port] = (h.group("v") == "on", line(ref, f"{port}: {text.strip()[:40]}"))
                port = None
    for raw in outputs(ev, "hairpin-sysfs", node):
        for ref, text in numbered(raw):
            m = SYSFS.search(text)
            if m:
                out[m.group("port")] = (m.group("v") == "1", line(ref, text.strip()))
    return out


def _cni_hairpin(ev: Evidence, node: str) -> tuple[bool | None, EvidenceLine | None]:
    for raw in outputs(ev, "cni-conf", node):
        text = raw.text
        start = text.find("{")
        try:
            conf = json.loads(text[start:]) if start >= 0 else None
        except ValueError:
            conf = None
        plugins = conf.get("plugins", [conf]) if isinstance(conf, dict) else []
        for plugin in plugins:
            if isinstance(plugin, dict) and plugin.get("type") == "bridge":
                value = bool(plugin.get("hairpinMode", False))
                ref = next((r for r, t in numbered(raw) if "hairpinMode" in t), raw.source)
                said = "hairpinMode: " + ("true" if value else "false" if "hairpinMode" in text
                                          else "not set (the bridge plugin's default is false)")
                return value, line(ref, said)
    return None, None


def _kubelet_mode(ev: Evidence, node: str) -> tuple[str | None, EvidenceLine | None]:
    for proc in ev.objects.processes:
        if proc.program == "kubelet" and ev.node_for(proc.host) in (node, None):
            mode = proc.flag("hairpin-mode")
            if mode:
                return mode, line(proc.source, f"kubelet --hairpin-mode={mode}")
    return None, None


@detector("C25", title="Hairpin off: a pod cannot reach itself through its Service",
          needs=("links", "iptables", "processes"), mode="25")
def hairpin_off(ev: Evidence) -> Iterator[Finding]:
    for node in sorted(ev.nodes.values(), key=lambda n: n.name):
        brs = bridges(node)
        if not brs or sysctl(node, "net.bridge.bridge-nf-call-iptables") == "0":
            continue  # without bridge netfilter the DNAT is routed, not bridged (that is B10)
        paths = [p for p in same_bridge_paths(ev, node, clients=4) if p.to_self]
        if not paths:
            continue
        bridge = paths[0].bridge
        link = next((ln for ln in node.state.links if ln.name == bridge), None)
        if link is not None and "PROMISC" in link.flags:
            continue  # kubelet's promiscuous-bridge hairpin mode
        flags = {p: v for p, v in hairpin_flags(ev, node.name).items()
                 if p in brs.get(bridge, []) or not brs.get(bridge)}
        cni_on, cni_line = _cni_hairpin(ev, node.name)
        mode, mode_line = _kubelet_mode(ev, node.name)
        off_ports = [p for p, (on, _e) in flags.items() if not on]
        evidence_off: list[EvidenceLine] = [e for _p, (on, e) in flags.items() if not on][:3]
        if flags and not off_ports:
            continue
        if not off_ports and cni_on is not False and mode not in ("none",):
            continue
        yield _finding(node, paths[0], flags, off_ports, evidence_off, cni_line, mode_line)


def _finding(node: NodeEvidence, p: BridgePath, flags: dict[str, tuple[bool, EvidenceLine]],
             off_ports: list[str], evidence_off: list[EvidenceLine], cni_line: EvidenceLine | None,
             mode_line: EvidenceLine | None) -> Finding:
    steps = p.outcome.steps
    masq = [s for s in steps if s.chain.startswith("KUBE-SEP-") and "KUBE-MARK-MASQ" in s.action]
    dnat = [s for s in steps if s.action.startswith("DNAT")]
    evidence: list[EvidenceLine] = [line(None, f"trace on {node.name}: pod {p.client} → "
                                               f"{p.target.name} {p.target.ip}:{p.target.port} "
                                               f"→ DNAT back to itself, out {p.bridge} (the "
                                               "port it came in on)")]
    evidence += [line(s.source, f"{s.rule}   ← hairpin masquerade") for s in masq[:1]]
    evidence += [line(s.source, f"{s.rule}   → {s.action}") for s in dnat[:1]]
    evidence += evidence_off
    evidence += [e for e in (cni_line, mode_line) if e is not None]
    all_off = bool(flags) and len(off_ports) == len(flags)
    confidence = 0.88 if all_off else 0.75 if off_ports else 0.65
    share = f"{p.share:.0%}" if p.share is not None else "some"
    detail = (f"{share} of {p.client}'s connections to its own Service {p.target.name} are "
              f"DNATed back to {p.client} (the KUBE-SEP `-s {p.client}/32 -j KUBE-MARK-MASQ` "
              f"branch). br_netfilter turns that DNAT into a bridged frame that must leave "
              f"{p.bridge} through the port it arrived on; with hairpin_mode off "
              + (f"({len(off_ports)} of {len(flags)} ports off) " if flags else "")
              + "the bridge drops it and the call hangs.")
    if p.assumed:
        detail += f" Assumed: {p.assumed}."
    fixes = (
        Fix(f"for f in /sys/class/net/{p.bridge}/brif/*/hairpin_mode; do echo 1 > $f; done",
            "now", "turns hairpin on for the existing pod ports (new pods get the CNI's "
                   "setting); the L2 hairpin itself is not simulated"),
        Fix('set "hairpinMode": true in the bridge plugin of /etc/cni/net.d/*.conflist (or '
            "kubelet --hairpin-mode=hairpin-veth / promiscuous-bridge for kubenet), then "
            "recreate the pods", "permanent"),
    )
    return Finding(
        detector="C25", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=f"Pods on {node.name}'s {p.bridge} cannot reach themselves through their Service "
              f"(hairpin off; e.g. {p.client} via {p.target.name})",
        node=node.name, confidence=confidence,
        why="the traced pod → own Service branch is DNATed back to the caller on the bridge it "
            "came from; the bridge ports' hairpin mode is off",
        evidence=tuple(evidence),
        explains=(f"svc-unreachable:TIMEOUT@{node.name}", f"svc-unreachable:ETIMEDOUT@{node.name}"),
        fix=fixes, detail=detail, trace=p.trace,
    )
