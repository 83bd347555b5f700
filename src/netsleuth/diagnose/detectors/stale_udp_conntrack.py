"""Failure mode 19: a stale UDP conntrack entry keeps sending a Service's traffic to an
endpoint that is gone.

Only the first packet of a connection passes the nat table (nf_nat_inet_fn: later packets
reuse the binding of their conntrack entry). A UDP sender with a fixed source port (syslog,
statsd, DNS forwarders) refreshes its entry with every datagram (udp timeout 30 s, 120 s
once "assured"), so when the Service's endpoint changes its datagrams keep going to the old
pod's address — indefinitely. kube-proxy deletes such entries when endpoints change, with the
`conntrack` binary before 1.32 ("executable file not found in $PATH" when it is missing) —
kubernetes/kubernetes#106274, #66651.

Proof: the `conntrack -L` entry of the flow (original destination the Service, reply source
an address that is no longer an endpoint) set against a new packet traced through the node's
current rules, which kube-proxy now DNATs to the current endpoint(s).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.datapath.trace_model import Trace
from netsleuth.diagnose.detectors._common import datapath, is_service_ip, line
from netsleuth.diagnose.detectors._host_evidence import CtEntry, conntrack_entries, kube_proxy_logs
from netsleuth.diagnose.detectors._paths import probe_nodes
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import LogLine
from netsleuth.model.net import IPAddress

KIND = "stale-udp-conntrack"
CLEANUP_FAILED = re.compile(
    r"Failed to delete (?:stale service IP|endpoint connections|stale service connections)|"
    r"error (?:deleting|looking for path of) conntrack|executable file not found in \$PATH.*"
    r"conntrack|conntrack.*executable file not found")


def _current(ev: Evidence, node: NodeEvidence, entry: CtEntry) -> tuple[set[IPAddress], Trace | None]:
    """Endpoints a new packet of this flow gets now (traced), and the trace."""
    assert entry.orig_dst is not None
    trace = datapath(node.state).trace(dst=entry.orig_dst, dport=entry.orig_dport,
                                       proto=entry.proto, src=entry.orig_src)
    eps = {o.packet.dst for o in trace.outcomes
           if any(s.action.startswith("DNAT") for s in o.steps)}
    return eps, trace


@detector("C19", title="Stale UDP conntrack entry after an endpoint change",
          needs=(), mode="19")
def stale_udp(ev: Evidence) -> Iterator[Finding]:
    logs = [ln for ln in kube_proxy_logs(ev) if CLEANUP_FAILED.search(ln.text)]
    nodes = {n.name: n for n in probe_nodes(ev)}
    done: set[tuple[str | None, IPAddress]] = set()
    for node_name, entry in conntrack_entries(ev):
        if entry.proto != "udp" or entry.orig_dst is None or entry.reply_src is None:
            continue
        if not is_service_ip(ev, entry.orig_dst) or (node_name, entry.orig_dst) in done:
            continue
        node = nodes.get(node_name or "") or next(iter(nodes.values()), None)
        if node is None:
            continue
        eps, trace = _current(ev, node, entry)
        if not eps or entry.reply_src in eps:
            continue
        stale_kind = ("created while the Service had no endpoint (never DNATed)"
                      if entry.reply_src == entry.orig_dst else
                      f"still mapped to {entry.reply_src}, which is no longer an endpoint")
        done.add((node_name, entry.orig_dst))
        yield _finding(ev, node, entry, eps, trace, stale_kind, logs)


def _finding(ev: Evidence, node: NodeEvidence, entry: CtEntry, eps: set[IPAddress],
             trace: Trace | None, stale_kind: str, logs: list[LogLine]) -> Finding:
    svc = f"{entry.orig_dst}:{entry.orig_dport}"
    evidence: list[EvidenceLine] = [entry.evidence]
    if trace is not None:
        dn = [s for o in trace.outcomes for s in o.steps if s.action.startswith("DNAT")]
        if dn:
            evidence.append(line(dn[0].source, f"{dn[0].rule}   → {dn[0].action} (what a new "
                                               "flow gets now)"))
    evidence += [line(ln.source, ln.text) for ln in logs[:2]]
    name = next((f"{s.namespace}/{s.name}" for s in ev.objects.services
                 if entry.orig_dst in s.cluster_ips), svc)
    return Finding(
        detector="C19", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=f"UDP flow {entry.orig_src}:{entry.orig_sport} → {name} ({svc}) is {stale_kind}",
        node=None if node.name == "?" else node.name,
        confidence=0.9 if logs else 0.82,
        why="the conntrack entry decides where every later datagram of the flow goes (nat only "
            "sees the first); a new packet traced through the current rules is DNATed to "
            f"{', '.join(sorted(map(str, eps)))} instead",
        evidence=tuple(evidence),
        explains=(f"svc-unreachable:TIMEOUT@{node.name}",),
        fix=(Fix(f"conntrack -D -p udp --orig-dst {entry.orig_dst} --orig-port-dst "
                 f"{entry.orig_dport}   # on {node.name}", "now",
                 "the next datagram creates a new entry and is DNATed to a live endpoint"),
             Fix("install the conntrack tool on the nodes/in the kube-proxy image (kube-proxy < "
                 "1.32 shells out to it), or upgrade kube-proxy (netlink-based cleanup)",
                 "permanent")),
        detail=f"`conntrack -L` shows {entry.evidence.text.strip()}: the reply side says the "
               f"flow was DNATed to {entry.reply_src}. kube-proxy now sends new flows to "
               f"{', '.join(sorted(map(str, eps)))}; the sender's fixed source port keeps the "
               "old entry alive"
               + (" and kube-proxy failed to delete it (see its log)." if logs else "."),
        trace=trace,
    )
