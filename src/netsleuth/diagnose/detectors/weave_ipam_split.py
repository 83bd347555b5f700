"""Failure mode 41: Weave Net IPAM split-brain.

Weave's IPAM ring is seeded once by the peers present at bootstrap; peers that bootstrapped
separately (joined while partitioned, or after their persisted state was lost) have a ring
seeded by different peers and refuse each other: `connection shutting down due to error: IP
allocation was seeded by different peers (received: [...], ours: [...])`. Pods on the two sides
get addresses from overlapping ranges and cannot reach each other (weaveworks/weave#3908).

The detector groups the nodes by the seed set they report as `ours`: the smaller group is the
side to reset.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._cni_dns import ev_line, matching_logs
from netsleuth.diagnose.evidence import Evidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector

KIND = "weave-ipam-split"
SEEDED = re.compile(r"IP allocation was seeded by different peers \(received: \[([^\]]*)\], "
                    r"ours: \[([^\]]*)\]\)")
REMOTE = re.compile(r"->\[([0-9a-fA-F.:]+):6783\|[0-9a-f:]+\(([^)]+)\)\]")
PEER_NAME = re.compile(r"\(([^)]+)\)")


def _names(seeds: str) -> frozenset[str]:
    names = PEER_NAME.findall(seeds)
    return frozenset(names or [s.strip() for s in seeds.split() if s.strip()])


@detector("D41", title="Weave IPAM split-brain", needs=("logs",), mode="41")
def weave_ipam_split(ev: Evidence) -> Iterator[Finding]:
    groups: dict[frozenset[str], set[str]] = {}
    lines: dict[str, EvidenceLine] = {}
    for ln, m in matching_logs(ev, SEEDED):
        node = log_node(ev, ln)
        ours, received = _names(m.group(2)), _names(m.group(1))
        if node:
            groups.setdefault(ours, set()).add(node)
            lines.setdefault(node, ev_line(ln.source, ln.text))
        remote = REMOTE.search(ln.message)
        if remote is not None:
            peer = ev.node_for(remote.group(2)) or ev.node_of_ip(remote.group(1)) or remote.group(2)
            groups.setdefault(received, set()).add(peer)
    if not groups:
        return
    ordered = sorted(groups.items(), key=lambda kv: (len(kv[1]), sorted(kv[1])))
    minority_seeds, minority = ordered[0]
    majority = set().union(*(nodes for seeds, nodes in ordered[1:])) if len(ordered) > 1 else set()
    nodes = sorted(minority)
    weave_pods = {ev.node_for(p.node): p.name for p in ev.objects.pods
                  if (p.name or "").startswith("weave-net") and p.node}
    fixes = []
    for n in nodes:
        pod = weave_pods.get(n, "<weave-net pod on " + n + ">")
        fixes.append(Fix(f"on {n}: rm /var/lib/weave/weave-netdata.db && kubectl -n kube-system "
                         f"delete pod {pod}", "now",
                         f"{n} re-joins the majority's ring and takes addresses from it"))
    fixes.append(Fix("kubectl -n kube-system exec <weave-net pod> -c weave -- /home/weave/weave "
                     "--local status ipam", "permanent",
                     "check that every peer reports the same ring before adding nodes"))
    return_lines = [lines[n] for n in nodes if n in lines] or list(lines.values())
    yield Finding(
        detector="D41", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{nodes[0]}",
        title=f"Weave IPAM split: {', '.join(nodes)} seeded by {', '.join(sorted(minority_seeds))}"
              + (f", the rest ({', '.join(sorted(majority))}) by others" if majority else ""),
        node=nodes[0], confidence=0.9,
        why="weave's own connection errors name two different seed sets; the smaller group is "
            "the side to reset",
        evidence=tuple(return_lines[:4]),
        explains=tuple(x for n in sorted(minority | majority) for x in (
            f"conn-error:TIMEOUT@{n}", f"conn-error:ETIMEDOUT@{n}", f"svc-unreachable:TIMEOUT@{n}",
            f"dns-errors@{n}")),
        fix=tuple(fixes),
        detail="Nodes on different rings hand out addresses from overlapping ranges and do not "
               "route to each other's pods.",
    )
