"""Failure mode 17: DNS lookups stall for exactly ~5 s (the conntrack insert race).

glibc's resolver sends the A and AAAA queries in parallel from one UDP socket. Both packets
create a conntrack entry for the same tuple at the same moment; when they race through
kube-proxy's DNAT (two CoreDNS endpoints picked by `-m statistic`) or SNAT, one entry fails to
be confirmed (`insert_failed`) and that query is dropped. The resolver waits its timeout —
5 s — and retries (kubernetes/kubernetes#56903, weaveworks/weave#3287).

Evidence: `conntrack -S` insert_failed > 0, lookups timed at ~5 s, the pod's resolv.conf
without `single-request-reopen`/`use-vc`. The DNS path is traced (pod → kube-dns ClusterIP UDP
53) to show the DNAT with its load-balancing branches where the race happens.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._common import datapath, line
from netsleuth.diagnose.detectors._host_evidence import conntrack_stats, numbered
from netsleuth.diagnose.detectors._paths import (
    Flow,
    local_pods,
    probe_nodes,
    route_dev,
    trace_flow,
)
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import ClusterFacts

KIND = "dns-conntrack-race"
RESOLV_OPTS = re.compile(r"^options\s+.*\b(single-request-reopen|single-request|use-vc)\b")


@detector("B17", title="DNS stalls of ~5 s (conntrack insert race)", needs=(), mode="17")
def dns_race(ev: Evidence) -> Iterator[Finding]:
    from netsleuth.diagnose.detectors.symptoms_dns_stall import stalls

    slow = stalls(ev)
    for name in sorted({*ev.nodes, *(s[0] for s in slow if s[0])}):
        stats = conntrack_stats(ev, name)
        failed = stats.get("insert_failed") if stats is not None else 0
        here = [s for s in slow if s[0] in (name, None)]
        if not failed or (not here and failed < 100):
            continue
        evidence: list[EvidenceLine] = []
        assert stats is not None
        evidence += [e for e in stats.lines if "insert_failed=" in e.text
                     and not re.search(r"insert_failed=0\b", e.text)][:2]
        evidence += [s[1] for s in here[:2]]
        resolv_ok = False
        for raw in ev.raw:
            if raw.kind != "resolv-conf":
                continue
            for ref, text in numbered(raw):
                if RESOLV_OPTS.match(text):
                    resolv_ok = True
                elif text.startswith("nameserver"):
                    evidence.append(line(ref, f"{text}   (no single-request-reopen/use-vc "
                                              "option)"))
        trace = None
        dns = ClusterFacts.first(ev.facts.cluster_dns_ips)
        node = ev.nodes.get(name) or next(iter(probe_nodes(ev)), None)
        branches = 0
        if dns is not None and node is not None:
            pods = local_pods(ev, node, limit=1)
            if pods:
                src = pods[0][0]
                flow = Flow("pod-svc", f"pod {src} → {dns}:53/udp", src, dns, 53, "udp",
                            route_dev(node, src))
                trace = trace_flow(node, flow)
            else:
                # No pod address on this node's state: a host client gets the same DNAT.
                flow = Flow("host-svc", f"{dns}:53/udp", dns, dns, 53, "udp", None)
                trace = datapath(node.state).trace(dst=dns, dport=53, proto="udp")
            if trace is not None:
                targets = {o.packet.dst for o in trace.outcomes
                           if any(s.action.startswith("DNAT") for s in o.steps)}
                branches = len(targets)
                evidence.append(line(None, f"trace on {node.name}: {flow.label} is DNATed to "
                                           f"{branches} CoreDNS endpoint(s): "
                                           + ", ".join(sorted(map(str, targets)))))
        yield Finding(
            detector="B17", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{name}",
            title=f"DNS lookups on {name} stall ~5 s: conntrack insert race "
                  f"(insert_failed={failed})",
            node=name, confidence=0.85 if here else 0.65,
            why="conntrack counts failed inserts on the node and lookups take exactly the "
                "resolver's 5 s timeout; parallel A/AAAA queries through kube-proxy's DNAT race",
            evidence=tuple(evidence),
            explains=(f"dns-stall-5s@{name}", f"dns-errors@{name}"),
            fix=(Fix("spec.dnsConfig: {options: [{name: single-request-reopen}]}   # in the pod "
                     "spec (glibc); use-vc for musl/alpine", "now",
                     "A and AAAA go out one after the other (or over TCP)"
                     + ("" if not resolv_ok else "; some pods already have it")),
                 Fix("deploy NodeLocal DNSCache (pods query a link-local address on their own "
                     "node, no DNAT)", "permanent"),
                 Fix("run nodes on a kernel with the conntrack clash fixes (≥ 5.0)",
                     "permanent")),
            detail=f"{len(here)} lookup(s) timed at ~5 s; conntrack -S insert_failed={failed}. "
                   + (f"The kube-dns Service load-balances over {branches} endpoints, the DNAT "
                      "where the two parallel queries race." if branches else ""),
            trace=trace,
        )

