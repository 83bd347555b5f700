"""Symptom: clients logging connection errors (Go dial errors and the like), per node."""

from __future__ import annotations

from collections.abc import Iterator

from netsleuth.datapath.errnos import MEANING
from netsleuth.diagnose.detectors._common import (
    cni_agent,
    is_service_ip,
    line,
    net_error_lines,
    node_key,
)
from netsleuth.diagnose.evidence import Evidence, log_node
from netsleuth.diagnose.findings import Finding, Role
from netsleuth.diagnose.registry import detector


@detector("S-LOG", title="Connection errors in component logs", needs=("logs",))
def connection_errors(ev: Evidence) -> Iterator[Finding]:
    for ln in net_error_lines(ev):
        err = ln.net_error
        assert err is not None
        node = log_node(ev, ln)
        service = is_service_ip(ev, err.dst_ip)
        where = f"@{node_key(node)}"
        key = (f"svc-unreachable:{err.errno}" if service else f"conn-error:{err.errno}") + where
        who = ln.pod or ln.component or "a client"
        times = f" (x{ln.count})" if ln.count > 1 else ""
        target = err.dst or "?"
        title = f"{who}{' on ' + node if node else ''} cannot reach {target}: {err.text}{times}"
        explains: list[str] = []
        if cni_agent(ln.pod) and service:
            # A CNI agent that cannot reach the apiserver cannot start: felix's health port
            # refuses, readiness fails, the pod crash-loops.
            explains.append(f"cni-agent-not-ready{where}")
        evidence = [line(ln.source, ln.text)]
        if ln.last_source is not None and ln.count > 1:
            evidence.append(line(ln.last_source, f"… repeated {ln.count} times, last at "
                                 f"{ln.last_timestamp or '?'}"))
        meaning = MEANING.get(err.errno, "")
        yield Finding(
            detector="S-LOG", kind="connection-error", role=Role.SYMPTOM, key=key, title=title,
            node=node, confidence=0.9, why=f"{err.errno}: {meaning}" if meaning else err.errno,
            evidence=tuple(evidence), explains=tuple(explains),
        )
