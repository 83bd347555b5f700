"""Symptom: name lookups that take ~5 s (the resolver's timeout) and then succeed.

A lookup timed at 5.0x s (`time nslookup …`, `time getent hosts …`, curl's
`time_namelookup`) is the glibc/musl resolver giving up on a lost query and retrying: the
query — not the server — was dropped. Keys: `dns-stall-5s@{node}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._common import line, node_key
from netsleuth.diagnose.detectors._host_evidence import numbered
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Role
from netsleuth.diagnose.registry import detector

REAL = re.compile(r"^real\s+0m ?(?P<s>\d+\.\d+)s\s*$")
NAMELOOKUP = re.compile(r"(?:time_)?namelookup[:=\s]+(?P<s>\d+\.\d+)")
DNS_CMD = re.compile(r"\b(nslookup|dig|getent|host|curl|wget|ping)\b")


def _is_stall(seconds: float) -> bool:
    return 4.9 <= seconds <= 5.4 or 9.9 <= seconds <= 10.4


def stalls(ev: Evidence) -> list[tuple[str | None, EvidenceLine, float]]:
    """(node, evidence, seconds) of lookups that took the resolver's 5 s timeout."""
    out: list[tuple[str | None, EvidenceLine, float]] = []
    for raw in ev.raw:
        if not raw.command or not DNS_CMD.search(raw.command):
            continue
        node = ev.node_for(raw.host)
        if raw.pod:
            ns, _, name = raw.pod.partition("/")
            node = ev.pod_node(ns, name) or node
        for ref, text in numbered(raw):
            m = REAL.match(text.strip()) or NAMELOOKUP.search(text)
            if m and _is_stall(float(m.group("s"))):
                out.append((node, line(ref, text.strip()), float(m.group("s"))))
    return out


@detector("S-DNS5", title="Name lookups stalling ~5 s", needs=())
def dns_stalls(ev: Evidence) -> Iterator[Finding]:
    by_node: dict[str, list[tuple[EvidenceLine, float]]] = {}
    for node, ev_line, secs in stalls(ev):
        by_node.setdefault(node_key(node), []).append((ev_line, secs))
    for node, items in sorted(by_node.items()):
        yield Finding(
            detector="S-DNS5", kind="dns-stall-5s", role=Role.SYMPTOM,
            key=f"dns-stall-5s@{node}",
            title=f"{len(items)} lookup(s) on {node} took ~5 s "
                  f"({', '.join(f'{s:.2f} s' for _e, s in items[:3])})",
            node=None if node == "?" else node, confidence=0.85,
            why="5 s is the resolver's timeout: a query was lost and retried",
            evidence=tuple(e for e, _s in items[:4]),
        )
