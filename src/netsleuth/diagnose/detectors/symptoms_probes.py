"""Symptom: probes people ran (traceroute) that failed at the source."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_address

from netsleuth.datapath.errnos import MEANING
from netsleuth.diagnose.detectors._common import is_service_ip, line, node_key
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import Finding, Role
from netsleuth.diagnose.registry import detector


@detector("S-PROBE", title="Failed probes (traceroute) from nodes", needs=("probes",))
def probe_failures(ev: Evidence) -> Iterator[Finding]:
    for probe in ev.probes:
        if probe.errno is None or probe.kind != "traceroute":
            continue
        try:
            target = ip_address(probe.target) if probe.target else None
        except ValueError:
            target = None
        node = ev.node_for(probe.host)
        # Only a failure *before the first hop* is about this node: traceroute's UDP probes go
        # to high ports that kube-proxy never DNATs, so hops and !H beyond the node say nothing
        # about the Service itself.
        if "hops" in probe.text:
            continue
        service = is_service_ip(ev, target)
        key = (f"svc-unreachable:{probe.errno}" if service else f"conn-error:{probe.errno}") \
            + f"@{node_key(node)}"
        yield Finding(
            detector="S-PROBE", kind="probe-failed", role=Role.SYMPTOM, key=key,
            title=f"traceroute {probe.target} on {node or '?'} fails at once: {probe.text}",
            node=node, confidence=0.95,
            why=f"{probe.errno}: {MEANING.get(probe.errno, '')}",
            evidence=(line(probe.source, probe.text),),
        )
