"""Failure mode 49: swap enabled → kubelet refuses to run → the node looks partitioned.

kubelet exits at start when swap is on and `failSwapOn` is true (the default before the
NodeSwap feature; pkg/kubelet/cm: "running with swap on is not supported, please disable
swap!"). The node then stops posting status and turns NotReady, its pods go Unknown and
`kubectl logs/exec` to it fail — all of which look like a network partition, while the node
answers ping and its network is fine.

Proof: kubelet's own log line (or kubeadm's preflight error) on that node, corroborated by the
swap listing (/proc/swaps, `swapon --show`, `free`); where the data path of another node is
known, a trace shows the node's kubelet port is reachable at the network level, so the
network is not what is broken.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.datapath.trace_model import Verdict
from netsleuth.diagnose.detectors._cluster import k8s_nodes, node_ips
from netsleuth.diagnose.detectors._nodenet import (
    Candidate,
    failures,
    scan,
    trace_line,
)
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector

KIND = "swap-kubelet-down"
KUBELET_SWAP = re.compile(r"running with swap on is not supported[,.] please disable swap",
                          re.IGNORECASE)
KUBEADM_SWAP = re.compile(r"\[ERROR Swap\]")
# /proc/swaps and `swapon --show` rows, `free` totals.
SWAP_ROW = re.compile(r"^(/\S+)\s+(partition|file)\s+(\d+\S*)\s+(\d+\S*)\s+(-?\d+)\s*$")
FREE_SWAP = re.compile(r"^Swap:\s+(\S+)\s+(\S+)\s+(\S+)")


@detector("F49", title="Swap enabled: kubelet refuses to run", needs=(), mode="49")
def swap_kubelet(ev: Evidence) -> Iterator[Finding]:
    by_node: dict[str, list[EvidenceLine]] = {}
    for hit in scan(ev, KUBELET_SWAP) + scan(ev, KUBEADM_SWAP):
        by_node.setdefault(hit.node or "?", []).append(hit.evidence)
    swap: dict[str, list[EvidenceLine]] = {}
    for hit in scan(ev, SWAP_ROW):
        swap.setdefault(hit.node or "?", []).append(hit.evidence)
    for hit in scan(ev, FREE_SWAP):
        if hit.match.group(1) not in ("0", "0B", "0.0", "0Gi", "0Mi", "0Ki"):
            swap.setdefault(hit.node or "?", []).append(hit.evidence)
    not_ready = {ev.node_for(k.name) or k.name for k in k8s_nodes(ev).values()
                 if k.ready is False}
    for name, lines in sorted(by_node.items()):
        yield _finding(ev, name, lines, swap.get(name, []), name in not_ready)


def _finding(ev: Evidence, name: str, lines: list[EvidenceLine], swap: list[EvidenceLine],
             not_ready: bool) -> Finding:
    evidence = list(dict.fromkeys(lines))[:3] + swap[:2]
    reachable = ""
    for ip in node_ips(ev, name):
        for peer in ev.nodes.values():
            if peer.name == name or "routes" not in peer.has:
                continue
            t = Candidate("", ip, 10250).run(peer)
            if t.verdict == Verdict.SENT:
                evidence.append(trace_line(t, f"from {peer.name} to {name}'s kubelet port"))
                reachable = (f" The network path is fine: {peer.name} routes to {name}'s "
                             f"kubelet at {ip}:10250 (traced).")
                break
        if reachable:
            break
    where = "?" if name == "?" else name
    explains = [f"node-not-ready@{where}", f"kubelet-unreachable@{where}"]
    # Nothing listens on the kubelet port: dials to it are refused (kubectl logs/exec).
    ips = set(node_ips(ev, name))
    for f in failures(ev):
        if f.errno == "ECONNREFUSED" and f.dst in ips:
            explains.extend(f.keys)
    return Finding(
        detector="F49", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{where}",
        title=f"kubelet on {where} refuses to start because swap is enabled"
              + (" (node NotReady)" if not_ready else ""),
        node=None if name == "?" else name,
        confidence=0.95 if not_ready or swap else 0.9,
        why="kubelet's own error says so" + ("; the node's swap listing shows active swap"
                                             if swap else "")
            + ("; the Node is NotReady" if not_ready else ""),
        evidence=tuple(evidence), explains=tuple(explains),
        fix=(Fix("swapoff -a && systemctl restart kubelet", "now",
                 "kubelet starts and the node returns to Ready within a status period"),
             Fix("sed -i.bak '/\\sswap\\s/ s/^#*/#/' /etc/fstab; systemctl mask swap.target  "
                 "# zram (Fedora): systemctl mask dev-zram0.swap", "permanent",
                 "keep swap off across reboots"),
             Fix("or, on Kubernetes >= 1.28 with NodeSwap: failSwapOn: false and "
                 "memorySwap: {swapBehavior: LimitedSwap} in /var/lib/kubelet/config.yaml",
                 "permanent", "run with swap on purpose instead")),
        detail=("Not a network fault: kubelet exits before it can post status, so the node "
                "turns NotReady, its pods become Unknown and `kubectl logs/exec` to it fail — "
                "the picture of a partition, although the node still answers on the network."
                + reachable),
    )
