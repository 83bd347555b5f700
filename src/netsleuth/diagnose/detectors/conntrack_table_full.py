"""Failure mode 15: the conntrack table is full and the kernel drops new connections.

Every new flow through a node with conntrack (all of them: kube-proxy's NAT needs it) takes an
entry; when nf_conntrack_count reaches nf_conntrack_max and no entry can be early-dropped, the
packet is dropped and the kernel logs "nf_conntrack: table full, dropping packet"
(__nf_conntrack_alloc in net/netfilter/nf_conntrack_core.c). Clients see random timeouts,
probes fail, busy ingress pods restart (kubernetes/kubernetes#71261, #18604).

Evidence: the kernel message, count vs max (sysctl, `conntrack -C`), `conntrack -S` drop /
early_drop counters. Table capacity is state the simulator does not model (a trace shows the
path a packet would take, not whether an entry can be allocated), so this is not traced.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._cluster import sysctl_line
from netsleuth.diagnose.detectors._common import line
from netsleuth.diagnose.detectors._host_evidence import (
    conntrack_stats,
    kernel_lines,
    outputs,
    sysctl,
)
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector

KIND = "conntrack-table-full"
FULL = re.compile(r"nf_conntrack: (?:nf_conntrack: )?table full, dropping packet")


def _count_max(ev: Evidence, node: str) -> tuple[int | None, int | None, list[EvidenceLine]]:
    n = ev.nodes.get(node)
    lines: list[EvidenceLine] = []
    count = maxv = None
    if n is not None:
        c = sysctl(n, "net.netfilter.nf_conntrack_count")
        m = sysctl(n, "net.netfilter.nf_conntrack_max") or sysctl(n, "net.nf_conntrack_max")
        if c is not None and c.isdigit():
            count = int(c)
            lines.append(sysctl_line(n, "net.netfilter.nf_conntrack_count"))
        if m is not None and m.isdigit():
            maxv = int(m)
            lines.append(sysctl_line(n, "net.netfilter.nf_conntrack_max"))
    for raw in ev.outputs(node=node):
        if not raw.command:
            continue
        for path, which in (("nf_conntrack_count", "count"), ("nf_conntrack_max", "max")):
            if path in raw.command and raw.text.strip().isdigit():
                value = int(raw.text.strip())
                if which == "count":
                    count = value
                else:
                    maxv = value
                lines.append(line(raw.source, f"{path}: {value}"))
    for raw in outputs(ev, "conntrack-list", node):
        if raw.command and "-C" in raw.command and raw.text.strip().isdigit():
            count = int(raw.text.strip())
            lines.append(line(raw.source, f"conntrack -C: {count}"))
    return count, maxv, lines


@detector("B15", title="conntrack table full: new connections dropped",
          needs=(), mode="15")
def conntrack_full(ev: Evidence) -> Iterator[Finding]:
    hits = kernel_lines(ev, FULL)
    nodes: dict[str, list[EvidenceLine]] = {}
    for node, ev_line, _t in hits:
        nodes.setdefault(node or "?", []).append(ev_line)
    for name in ev.nodes:
        count, maxv, _l = _count_max(ev, name)
        if count is not None and maxv and count >= 0.95 * maxv:
            nodes.setdefault(name, [])
    for name, logged in sorted(nodes.items()):
        count, maxv, lines = _count_max(ev, name)
        stats = conntrack_stats(ev, name)
        evidence = logged[:2] + lines[:2]
        drops = 0
        if stats is not None:
            drops = stats.get("drop") + stats.get("early_drop")
            if drops:
                evidence += [e for e in stats.lines if "drop=" in e.text][:2]
        ratio = f"{count}/{maxv} ({count / maxv:.0%})" if count is not None and maxv else None
        confidence = 0.6 + (0.2 if logged else 0) + (0.1 if ratio and count and maxv and
                                                     count >= 0.9 * maxv else 0) + \
            (0.05 if drops else 0)
        new_max = max((maxv or 131072) * 2, 262144)
        yield Finding(
            detector="B15", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{name}",
            title=f"conntrack table full on {name}" + (f": {ratio}" if ratio else "")
                  + ", new connections are dropped",
            node=None if name == "?" else name, confidence=min(confidence, 0.95),
            why="the kernel reports it drops packets because the conntrack table is full"
                if logged else "nf_conntrack_count is at nf_conntrack_max",
            evidence=tuple(evidence),
            explains=(f"svc-unreachable:TIMEOUT@{name}", f"svc-unreachable:ETIMEDOUT@{name}",
                      f"conn-error:TIMEOUT@{name}", f"conn-error:ETIMEDOUT@{name}",
                      f"dns-errors@{name}"),
            fix=(Fix(f"sysctl -w net.netfilter.nf_conntrack_max={new_max}", "now",
                     "kube-proxy may lower it again at restart"),
                 Fix("kubectl -n kube-system edit configmap kube-proxy   # conntrack: "
                     "{maxPerCore: 65536, min: 524288}; and persist net.netfilter."
                     "nf_conntrack_max in /etc/sysctl.d", "permanent",
                     "kube-proxy sets nf_conntrack_max = maxPerCore x CPUs (at least min) at "
                     "start"),
                 Fix("reduce churn: keep-alive for HTTP clients, NodeLocal DNSCache for DNS, "
                     "lower net.netfilter.nf_conntrack_tcp_timeout_time_wait", "permanent")),
            detail=(f"{name}: " + (f"{len(logged)} kernel message(s) 'table full, dropping "
                                   "packet'. " if logged else "")
                    + (f"Table usage {ratio}. " if ratio else "")
                    + (f"conntrack -S: drop+early_drop = {drops}. " if stats else "")
                    + "New flows (including DNS queries and kube-proxy's DNATed connections) "
                    "fail at random while the table is full: clients time out."),
        )

