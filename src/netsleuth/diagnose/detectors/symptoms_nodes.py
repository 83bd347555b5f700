"""Symptom: Node objects that are NotReady (or whose status is Unknown).

A NotReady node means its kubelet stopped posting status: kubelet down (swap, config, crash),
the node unreachable from the apiserver, or the container runtime/CNI not ready. Which one is
for the cause detectors to prove; this only records the observation under the shared key
`node-not-ready@{node}`.
"""

from __future__ import annotations

from collections.abc import Iterator

from netsleuth.diagnose.detectors._cluster import k8s_nodes
from netsleuth.diagnose.detectors._common import line
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import Finding, Role
from netsleuth.diagnose.registry import detector


@detector("S-NODE", title="Nodes that are NotReady", needs=("k8s-nodes",))
def nodes_not_ready(ev: Evidence) -> Iterator[Finding]:
    for k in k8s_nodes(ev).values():
        if k.ready is not False and not (k.status or "").startswith("Unknown"):
            continue
        cond = k.condition("Ready")
        text = f"node {k.name}: {k.status or ''}".strip()
        if cond is not None:
            text += f" (Ready={cond.status}" + (f", {cond.reason}" if cond.reason else "") + \
                (f": {cond.message}" if cond.message else "") + ")"
        name = ev.node_for(k.name) or k.name
        yield Finding(
            detector="S-NODE", kind="node-not-ready", role=Role.SYMPTOM,
            key=f"node-not-ready@{name}", title=f"Node {name} is NotReady",
            node=name, confidence=0.9,
            why="kubelet has not posted a Ready status: it is down, or the node or its "
                "runtime/network plugin is not ready",
            evidence=(line(cond.source if cond is not None and cond.source.line else k.source,
                           text),),
        )
