"""Failure mode 10: br_netfilter not loaded, or net.bridge.bridge-nf-call-iptables=0.

On a bridge-based CNI (flannel's cni0, kubenet's cbr0, the bridge plugin) a pod's packet to a
Service IP is routed: it gets kube-proxy's DNAT in PREROUTING and is forwarded back onto the
bridge towards the endpoint. When that endpoint sits on the same bridge, its reply to the
client is a plain L2 frame between two bridge ports; it reaches iptables — and conntrack,
which would rewrite the source back to the Service IP — only if br_netfilter hooks bridged
IPv4 frames into netfilter, i.e. the module is loaded and bridge-nf-call-iptables=1
(br_nf_pre_routing in net/bridge/br_netfilter_hooks.c). Otherwise the client gets a reply from
the endpoint's own address, which matches no socket: it is dropped (TCP answers with RST) and
the client times out. Typical: DNS fails only for pods on the node that runs CoreDNS
(kubernetes/kubernetes#38802, kelseyhightower/kubernetes-the-hard-way#561).

Proof: the pod → Service packet traced through the node's rules is DNATed to an endpoint on the
same bridge and forwarded out of it; the endpoint's reply route is the bridge's connected
route, so the reply is bridged, not routed. The state of br_netfilter comes from sysctl,
lsmod, procps' "cannot stat" errors and kube-proxy's own warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._bridge import BridgePath, bridges, same_bridge_paths
from netsleuth.diagnose.detectors._cluster import sysctl_line
from netsleuth.diagnose.detectors._common import datapath, line
from netsleuth.diagnose.detectors._host_evidence import (
    full_sysctl_dump,
    kernel_lines,
    loaded_modules,
    lsmod_grep_empty,
    missing_sysctl_lines,
    sysctl,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector

KIND = "br-netfilter-off"
KEY = "net.bridge.bridge-nf-call-iptables"
WARN = re.compile(r"[Mm]issing br-netfilter module or unset sysctl br-nf-call-iptables|"
                  r"Failed to (?:set sysctl|check br_netfilter).*bridge-nf-call-iptables|"
                  r"/proc/sys/net/bridge/bridge-nf-call-iptables (?:does not exist|contents are "
                  r"not set to 1)")


def bridge_nf_state(ev: Evidence, node: NodeEvidence) -> tuple[str | None, list[EvidenceLine]]:
    """("off" | "not-loaded" | "on" | None, evidence)."""
    value = sysctl(node, KEY)
    if value is not None:
        return ("on" if value == "1" else "off"), [sysctl_line(node, KEY)]
    lines = missing_sysctl_lines(ev, node.name, KEY)
    empty = lsmod_grep_empty(ev, node.name, "br_netfilter")
    if empty is not None:
        lines.append(empty)
    mods = loaded_modules(ev, node.name)
    if mods is not None and "br_netfilter" not in mods.names and "bridge" in mods.names:
        lines.append(line(mods.source, "lsmod: bridge is loaded, br_netfilter is not"))
    if lines:
        return "not-loaded", lines
    if full_sysctl_dump(node) and not any(k.startswith("net.bridge.")
                                          for k in node.state.sysctls.values):
        return "not-loaded", [line(node.state.sysctls.ref(KEY) if hasattr(node.state.sysctls, "ref")
                                   else None, "sysctl -a: no net.bridge.* keys at all "
                                              "(br_netfilter is not loaded)")]
    return None, []


@detector("B10", title="br_netfilter missing / bridge-nf-call-iptables=0 on a bridge CNI",
          needs=("sysctl", "logs"), mode="10")
def br_netfilter_off(ev: Evidence) -> Iterator[Finding]:
    for node in sorted(ev.nodes.values(), key=lambda n: n.name):
        state, lines = bridge_nf_state(ev, node)
        warnings = [e for _n, e, _t in kernel_lines(ev, WARN, node.name)]
        if state == "on" or (state is None and not warnings):
            continue
        if not bridges(node):
            continue
        paths = [p for p in same_bridge_paths(ev, node) if not p.to_self] or \
            same_bridge_paths(ev, node)
        yield _finding(ev, node, state, lines, warnings, paths)


def _finding(ev: Evidence, node: NodeEvidence, state: str | None, lines: list[EvidenceLine],
             warnings: list[EvidenceLine], paths: list[BridgePath]) -> Finding:
    evidence = lines[:3] + warnings[:2]
    confidence = 0.55
    trace = None
    detail: list[str] = []
    explains: list[str] = []
    if paths:
        p = paths[0]
        trace = p.trace
        fib = datapath(node.state).fibs[4]
        back = fib.lookup(p.client, iif="lo")
        route = back.route
        evidence.append(line(None, f"trace on {node.name}: pod {p.client} → {p.target.name} "
                                   f"{p.target.ip}:{p.target.port} is DNATed to {p.endpoint} and "
                                   f"forwarded out {p.bridge}, the bridge it came from"))
        if route is not None:
            evidence.append(line(route.source, f"reply route {p.endpoint} → {p.client}: "
                                               f"{p.client} is on {route.dev} (connected): the "
                                               "reply is bridged, not routed"))
        dnat = [s for s in p.outcome.steps if s.action.startswith("DNAT")]
        if dnat:
            evidence.append(line(dnat[0].source, f"{dnat[0].rule}   → {dnat[0].action}"))
        share = "" if p.share in (None, 1.0) else f" ({p.share:.0%} of connections)"
        detail.append(
            f"A pod on {p.bridge} ({p.client}) connecting to {p.target.name} ({p.target.ip}:"
            f"{p.target.port}) is DNATed to {p.endpoint}, on the same bridge{share}. The "
            f"endpoint's reply goes straight back over {p.bridge} at layer 2; with "
            + ("br_netfilter not loaded" if state == "not-loaded" else f"{node.name}'s {KEY} = 0"
               if state == "off" else "bridge netfilter off")
            + " it never passes conntrack, so its source stays "
            f"{p.endpoint} instead of {p.target.ip}: the client drops it and times out.")
        if p.assumed:
            detail.append(f"Assumed: {p.assumed}.")
        confidence = 0.9 if state in ("off", "not-loaded") else 0.6
        explains = [f"svc-unreachable:TIMEOUT@{node.name}", f"svc-unreachable:ETIMEDOUT@"
                    f"{node.name}", f"dns-errors@{node.name}"]
    else:
        detail.append(f"No Service endpoint on {node.name}'s bridge is in the evidence, so no "
                      "failing path could be traced; every Service whose endpoint lands on this "
                      "node is affected for clients on this node.")
        explains = [f"dns-errors@{node.name}"]
    if state is None:
        detail.append("The node's sysctls are not in the evidence; kube-proxy's warning is.")
    fixes = (
        Fix(f"modprobe br_netfilter && sysctl -w {KEY}=1", "now",
            "load the module first: the sysctl only exists once it is loaded"),
        Fix("echo br_netfilter > /etc/modules-load.d/k8s.conf && echo "
            f"'{KEY} = 1' > /etc/sysctl.d/k8s.conf && sysctl --system", "permanent",
            "survives reboots (the kubeadm prerequisite)"),
    )
    what = {"off": f"{KEY}=0", "not-loaded": "br_netfilter not loaded"}.get(state or "",
                                                                             "bridge netfilter off")
    return Finding(
        detector="B10", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=f"Node {node.name}: {what} — replies between pods on "
              f"{', '.join(sorted(bridges(node)))[:40]} bypass conntrack, Service connections to "
              "local endpoints fail",
        node=node.name, confidence=confidence,
        why=("a pod→Service packet traced through the node's rules is DNATed to an endpoint on "
             "the same bridge; the reply is bridged and, without bridge netfilter, never "
             "un-DNATed" if paths else "bridge netfilter is off on a node whose pods sit on a "
             "bridge"),
        evidence=tuple(evidence), explains=tuple(explains), fix=fixes,
        detail="\n".join(detail), trace=trace,
    )
