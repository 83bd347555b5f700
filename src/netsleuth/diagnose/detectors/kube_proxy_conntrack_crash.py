"""Failure mode 20: kube-proxy crash-loops on a containerized node (kind, LXC/LXD, Docker)
because it cannot raise the conntrack limits.

At start kube-proxy sets nf_conntrack_max (from conntrack.maxPerCore x CPUs) and the module's
hashsize; inside a container /proc/sys/net/netfilter/nf_conntrack_max and
/sys/module/nf_conntrack/parameters/hashsize are read-only or not per-namespace, so it exits
("write /sys/module/nf_conntrack/parameters/hashsize: operation not supported", "open
/proc/sys/net/netfilter/nf_conntrack_max: permission denied") — kubernetes/kubernetes#34820,
canonical/microk8s#119. With kube-proxy down no Service rule is programmed on the node.

Proof: the node's real iptables has no KUBE-SERVICES dispatch, and a connection to a ClusterIP
traced through it is not DNATed (it leaves for the default gateway, where nothing answers).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.datapath.trace_model import Verdict
from netsleuth.diagnose.detectors._common import datapath, kubernetes_target, line
from netsleuth.diagnose.detectors._host_evidence import kube_proxy_logs, kube_proxy_pods
from netsleuth.diagnose.detectors._paths import real_rules
from netsleuth.diagnose.evidence import Evidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import LogLine

KIND = "kube-proxy-conntrack-sysctl"
FATAL = re.compile(r"(?:write|open) (?:/sys/module/nf_conntrack/parameters/hashsize|"
                   r"/proc/sys/net/netfilter/nf_conntrack_max)[^\n]*?: (?:operation not supported"
                   r"|permission denied|read-only file system)")
SET_LINE = re.compile(r"Setting (?:nf_conntrack_max|conntrack hashsize)|Set sysctl "
                      r"'net/netfilter/nf_conntrack_max'")


@detector("C20", title="kube-proxy crashes on containerized nodes (conntrack sysctls)",
          needs=("logs",), mode="20")
def kube_proxy_conntrack(ev: Evidence) -> Iterator[Finding]:
    by_node: dict[str, list[LogLine]] = {}
    for ln in ev.objects.logs:
        if FATAL.search(ln.text):
            by_node.setdefault(log_node(ev, ln) or "?", []).append(ln)
    for node_name, lines in sorted(by_node.items()):
        yield _finding(ev, node_name, lines)


def _finding(ev: Evidence, node_name: str, lines: list[LogLine]) -> Finding:
    evidence: list[EvidenceLine] = []
    ctx = [ln for ln in kube_proxy_logs(ev) if SET_LINE.search(ln.text)
           and (log_node(ev, ln) or "?") == node_name]
    evidence += [line(ln.source, ln.text) for ln in ctx[-1:]]
    evidence += [line(ln.source, ln.text) for ln in lines[:2]]
    crash = [p for p in kube_proxy_pods(ev) if (p.status or "").startswith("CrashLoop")
             or any(c.reason == "CrashLoopBackOff" for c in p.containers)]
    crash_here = [p for p in crash if ev.node_for(p.node) == node_name] or crash
    evidence += [line(p.source, f"pod {p.name}: {p.status or 'CrashLoopBackOff'} "
                                f"restarts={p.restarts}") for p in crash_here[:1]]
    node = ev.nodes.get(node_name)
    trace = None
    confidence = 0.8
    detail = [f"kube-proxy on {node_name} exits while setting the conntrack limits: the "
              "container cannot write them."]
    explains = [f"svc-unreachable:TIMEOUT@{node_name}", f"svc-unreachable:ETIMEDOUT@{node_name}",
                f"dns-errors@{node_name}", f"cni-agent-not-ready@{node_name}"]
    if any(p.name and p.name.startswith(("coredns", "kube-dns")) and ev.node_for(p.node) ==
           node_name for p in ev.objects.pods):
        # CoreDNS on this node reaches the apiserver through the kubernetes Service.
        explains.append("dns-down")
    if node is not None and real_rules(node):
        nat = node.state.ruleset.table("nat")
        has = nat is not None and any(c.startswith("KUBE-SVC-") for c in nat.chains)
        target = kubernetes_target(ev)
        if target is not None and not has:
            trace = datapath(node.state).trace(dst=target[0], dport=target[1])
            main = trace.main
            if not any(s.action.startswith("DNAT") for s in main.steps):
                confidence = 0.93
                where = (f"leaves {main.interface} for {main.next_hop} un-DNATed"
                         if main.verdict == Verdict.SENT else main.verdict.value)
                evidence.append(line(None, f"trace on {node_name}: {target[0]}:{target[1]} "
                                           f"is not DNATed (no KUBE-SERVICES rules): {where}"))
                detail.append(f"{node_name}'s iptables has no KUBE-SERVICES/KUBE-SVC rules; a "
                              f"connection to the kubernetes Service {target[0]}:{target[1]} "
                              f"{where} — every ClusterIP is dead on this node.")
    return Finding(
        detector="C20", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node_name}",
        title=f"kube-proxy on {node_name} crashes setting conntrack limits (containerized "
              "node): no Service rules",
        node=None if node_name == "?" else node_name, confidence=confidence,
        why="kube-proxy's own fatal error names the read-only conntrack setting"
            + ("; the node's rules, traced, do not DNAT Service traffic" if trace else ""),
        evidence=tuple(evidence), explains=tuple(explains),
        fix=(Fix("kubectl -n kube-system edit configmap kube-proxy   # conntrack: {maxPerCore: 0,"
                 " min: null} leaves the limits alone; then kubectl -n kube-system rollout "
                 "restart daemonset kube-proxy", "now"),
             Fix("on the real host: sysctl -w net.netfilter.nf_conntrack_max=<the value in the "
                 "log> and echo <hashsize> > /sys/module/nf_conntrack/parameters/hashsize",
                 "permanent", "so kube-proxy finds them already high enough")),
        detail="\n".join(detail), trace=trace,
    )
