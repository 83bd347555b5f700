"""Failure mode 42: CoreDNS forwards to itself (the loop plugin kills it).

CoreDNS runs with `dnsPolicy: Default`, so its /etc/resolv.conf is the one kubelet hands it:
the node's (`--resolv-conf`, default /etc/resolv.conf). On hosts with systemd-resolved (or
dnsmasq) that file names a loopback stub (`nameserver 127.0.0.53`), and `forward .
/etc/resolv.conf` sends queries to 127.0.0.53:53 *inside the CoreDNS pod's network namespace*:
127.0.0.0/8 is local to every namespace (a `local` route on lo), CoreDNS listens on :53 on all
its addresses, so the query comes back to CoreDNS itself. The loop plugin notices its own
HINFO probe and exits: `[FATAL] plugin/loop: Loop (127.0.0.1:N -> :53) detected for zone "."`.

The proof: the node's resolv.conf (loopback nameserver), kubelet's resolv-conf setting, and a
trace, in a model of the CoreDNS pod's namespace, of its query to that nameserver: delivered
locally via lo.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_interface

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cni_dns import (
    ev_line,
    matching_logs,
    raw_lines,
    raw_outputs,
    route_lines,
    trace_local,
    trace_summary,
)
from netsleuth.diagnose.detectors._common import dns_pod
from netsleuth.diagnose.evidence import Evidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import parse_ip
from netsleuth.model.net import Address, IPAddress, Scope, default_policy_rules
from netsleuth.model.node import NodeState
from netsleuth.parse.iproute2 import kernel_routes_for_addresses

KIND = "coredns-forward-loop"
LOOP = re.compile(r"plugin/loop: Loop \((\S+) -> (\S+)\) detected for zone \"([^\"]*)\"|"
                  r"Seen \"HINFO IN \S+\" more than twice, loop detected")
RESOLV_FLAG = re.compile(r"--resolv-conf=\"?([^\"\s]+)\"?|resolvConf:\s*\"?([^\"\s]+)")
NAMESERVER = re.compile(r"^\s*nameserver\s+(\S+)")


@dataclass(frozen=True, slots=True)
class _Nameserver:
    ip: IPAddress
    line: EvidenceLine
    node: str | None
    path: str | None


def _resolv(ev: Evidence) -> list[_Nameserver]:
    out: list[_Nameserver] = []
    for raw in raw_outputs(ev, "resolv-conf", "resolv"):
        path = None
        if raw.command:
            m = re.search(r"(/\S*resolv\.conf)", raw.command)
            path = m.group(1) if m else None
        for ref, text in raw_lines(raw):
            ns = NAMESERVER.match(text)
            ip = parse_ip(ns.group(1)) if ns else None
            if ip is not None:
                out.append(_Nameserver(ip, ev_line(ref, text), ev.node_for(raw.host), path))
    return out


def _kubelet_resolv(ev: Evidence) -> tuple[str, EvidenceLine] | None:
    for proc in ev.objects.processes:
        if proc.program == "kubelet" and proc.flag("resolv-conf"):
            return proc.flag("resolv-conf") or "", ev_line(proc.source, proc.cmdline[:200])
    for ln, m in matching_logs(ev, RESOLV_FLAG):
        if ln.component in (None, "kubelet") or "kubelet" in ln.text:
            return (m.group(1) or m.group(2)), ev_line(ln.source, ln.text)
    for cm in ev.objects.configmaps:
        for text in cm.data.values():
            found = re.search(r"^\s*resolvConf:\s*(\S+)", text, re.M)
            if found:
                return found.group(1), ev_line(cm.source, f"{cm.name}: resolvConf: {found.group(1)}")
    return None


def _pod_netns(pod_ip: IPAddress | None, name: str) -> NodeState:
    """A pod's network namespace as the CNI builds it: lo 127.0.0.1/8 and eth0 with the pod IP
    (the kernel's local routes follow from the addresses: 127.0.0.0/8 is `local` on lo)."""
    addrs = [Address("lo", ip_interface("127.0.0.1/8"), Scope.HOST)]
    if pod_ip is not None and pod_ip.version == 4:
        addrs.append(Address("eth0", ip_interface(f"{pod_ip}/32"), Scope.UNIVERSE))
    return NodeState(name=name, addresses=tuple(addrs),
                     routes=tuple(kernel_routes_for_addresses(tuple(addrs))),
                     rules=default_policy_rules(),
                     assumptions=("the pod's namespace as a CNI sets it up (lo + eth0); only "
                                  "the loopback part matters here",))


@detector("E42", title="CoreDNS forwarding loop", needs=("logs",), mode="42")
def coredns_loop(ev: Evidence) -> Iterator[Finding]:
    hits = list(matching_logs(ev, LOOP))
    if not hits:
        return
    ln, m = hits[0]
    nodes = sorted({n for n in (log_node(ev, x) for x, _ in hits) if n})
    servers = _resolv(ev)
    loopback = [s for s in servers if s.ip.is_loopback]
    upstream = [s for s in servers if not s.ip.is_loopback]
    kubelet = _kubelet_resolv(ev)
    evidence: list[EvidenceLine] = [ev_line(x.source, x.text) for x, _ in hits[:2]]
    evidence.extend(s.line for s in loopback[:2])
    if kubelet is not None:
        evidence.append(kubelet[1])
    pod = next((p for p in ev.objects.pods if dns_pod(p.name) and p.name == ln.pod), None) or \
        next((p for p in ev.objects.pods if dns_pod(p.name)), None)
    trace: Trace | None = None
    target = loopback[0].ip if loopback else None
    if target is not None:
        state = _pod_netns(pod.ip if pod else None, f"{pod.name if pod else 'coredns'} (pod netns)")
        t = trace_local(state, target, 53, "udp")
        if t.verdict == Verdict.DELIVERED_LOCAL:
            trace = t
            evidence.extend(route_lines(t))
            evidence.append(ev_line(None, f"trace: {trace_summary(t)}"))
    detail = [f"CoreDNS detected its own probe coming back ({m.group(0)[:80]})."]
    if loopback:
        detail.append(f"The resolv.conf it inherits names {loopback[0].ip}, a loopback address: "
                      "inside the CoreDNS pod that is CoreDNS itself"
                      + (" (traced: delivered locally via lo)." if trace else "."))
    if kubelet is not None:
        detail.append(f"kubelet gives pods with dnsPolicy Default the file {kubelet[0]}.")
    real = [s for s in upstream if s.path and "systemd/resolve/resolv.conf" in s.path] or upstream
    fixes = [
        Fix("set `resolvConf: /run/systemd/resolve/resolv.conf` in /var/lib/kubelet/config.yaml "
            "(or kubelet --resolv-conf=/run/systemd/resolve/resolv.conf), then systemctl restart "
            "kubelet", "permanent",
            "systemd-resolved's real upstream list, not its 127.0.0.53 stub"),
        Fix("kubectl -n kube-system rollout restart deployment coredns", "now",
            "CoreDNS re-reads the resolv.conf kubelet now gives it"),
    ]
    if real:
        ups = " ".join(str(s.ip) for s in real[:3])
        fixes.insert(0, Fix(f"kubectl -n kube-system edit configmap coredns  # forward . {ups}",
                            "now", "forward to the real upstreams instead of /etc/resolv.conf"))
    confidence = 0.95 if loopback and trace is not None else 0.85 if loopback else 0.75
    yield Finding(
        detector="E42", kind=KIND, role=Role.CAUSE,
        key=f"cause:{KIND}@{nodes[0] if nodes else '?'}",
        title="CoreDNS forwards to itself: the node's resolv.conf names "
              + (f"{loopback[0].ip}" if loopback else "a local stub resolver"),
        node=nodes[0] if len(nodes) == 1 else None, confidence=confidence,
        why="CoreDNS's loop plugin reports it" + (
            "; the node's resolv.conf names a loopback nameserver, which the trace in the pod's "
            "namespace delivers back to CoreDNS" if trace else
            "; the resolv.conf CoreDNS inherits is not in the evidence" if not loopback else ""),
        evidence=tuple(evidence), explains=("dns-down", "dns-errors@*"), fix=tuple(fixes),
        detail="\n".join(detail), trace=trace,
    )
