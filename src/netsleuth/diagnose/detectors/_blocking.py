"""Shared by the host-firewall detectors (B11-B14): which flows a node's filter rules stop,
the evidence lines of the deciding steps, the symptom keys a silent drop or a REJECT explains,
and fix verification by re-tracing with a modified ruleset."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from netsleuth.datapath.trace_model import Verdict
from netsleuth.diagnose.detectors._clients import ClientError, client_errors
from netsleuth.diagnose.detectors._common import line
from netsleuth.diagnose.detectors._paths import (
    Blocked,
    Flow,
    blocked,
    forward_flows,
    peer_flows,
    route_dev,
    trace_flow,
    with_ruleset,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine
from netsleuth.model.netfilter import Ruleset

TIMEOUT_ERRNOS = ("TIMEOUT", "ETIMEDOUT")


@dataclass(frozen=True, slots=True)
class NodeBlocks:
    node: NodeEvidence
    hits: tuple[Blocked, ...]
    flows: tuple[Flow, ...]
    observed: tuple[str, ...] = ()  # symptom keys of client errors whose own path is blocked


def observed_flows(ev: Evidence, node: NodeEvidence) -> list[tuple[Flow, ClientError]]:
    """The failing client calls made from pods on this node, as flows to trace."""
    out: list[tuple[Flow, ClientError]] = []
    for e in client_errors(ev):
        if e.node != node.name or e.src_ip is None or e.dst_ip is None:
            continue
        iif = route_dev(node, e.src_ip)
        if iif is None:
            continue
        out.append((Flow("observed", f"pod {e.src_ip} → {e.dst_ip}:{e.dst_port or '?'} (the "
                         "failing call)", e.src_ip, e.dst_ip, e.dst_port or 80,
                         "tcp", iif), e))
    return out


def node_blocks(ev: Evidence, node: NodeEvidence, decides: Callable[[Blocked], bool], *,
                peers: bool = False) -> NodeBlocks:
    """Trace the node's forwarded (and, with `peers`, peer→node) flows; keep those whose
    deciding step `decides` accepts."""
    flows = list(forward_flows(ev, node))
    if peers:
        flows += peer_flows(ev, node)
    hits: list[Blocked] = []
    for flow in flows:
        b = blocked(flow, trace_flow(node, flow))
        if b is not None and decides(b):
            hits.append(b)
    observed: list[str] = []
    for flow, err in observed_flows(ev, node):
        b = blocked(flow, trace_flow(node, flow))
        if b is not None and decides(b):
            observed += err.explain_keys()
            if not hits:
                hits.append(b)
    return NodeBlocks(node, tuple(hits), tuple(flows), tuple(dict.fromkeys(observed)))


def chain_steps(b: Blocked, table: str = "filter", hooks: Iterable[str] = ("FORWARD",)
                ) -> list[EvidenceLine]:
    """The rules the blocked packet walked in `table` at `hooks` (the last one decided)."""
    wanted = set(hooks)
    out: list[EvidenceLine] = []
    for s in b.outcome.steps:
        if s.table == table and s.hook in wanted and not s.rule.startswith("policy "):
            out.append(line(s.source, f"{s.rule}   → {s.action}"))
        if s is b.step:
            break
    return out


def symptom_keys(ev: Evidence, hits: Iterable[Blocked], node: str, errnos: Iterable[str]
                 ) -> list[str]:
    """Symptom keys a block explains: clients on `node` (its pods, Service clients) and, for
    packets from other nodes' pods, clients on those nodes."""
    keys: list[str] = []
    errs = list(errnos)
    nodes = {node}
    for b in hits:
        if b.flow.kind in ("pod-pod-in", "peer-in"):
            src_node = ev.node_of_ip(b.flow.src)
            if src_node is None:
                from netsleuth.diagnose.detectors._host_evidence import node_of_pod_ip
                src_node = node_of_pod_ip(ev, b.flow.src)
            if src_node:
                nodes.add(src_node)
    for n in sorted(nodes):
        for e in errs:
            keys += [f"svc-unreachable:{e}@{n}", f"conn-error:{e}@{n}"]
    if any(b.flow.service and "dns" in b.flow.service for b in hits):
        keys += [f"dns-errors@{n}" for n in sorted(nodes)]
    return list(dict.fromkeys(keys))


def verify(node: NodeEvidence, ruleset: Ruleset, note: str, hits: Iterable[Blocked]
           ) -> tuple[bool, list[str]]:
    """Re-trace every blocked flow with `ruleset`: True when none is dropped or rejected by
    netfilter any more. Also returns one line per flow saying where it goes now."""
    state = with_ruleset(node, ruleset, note)
    ok = True
    said: list[str] = []
    for b in hits:
        trace = trace_flow(state, b.flow)
        again = blocked(b.flow, trace)
        if again is not None:
            ok = False
            said.append(f"{b.flow.label}: still {again.outcome.verdict.value} by "
                        f"`{again.step.rule}` ({again.step.table} {again.step.chain})")
            continue
        main = trace.main
        where = main.packet.endpoint("dst")
        verb = {Verdict.FORWARDED: "forwarded", Verdict.DELIVERED_LOCAL: "delivered locally",
                Verdict.SENT: "sent"}.get(main.verdict, main.verdict.value)
        said.append(f"{b.flow.label}: {verb} to {where}"
                    + (f" via {main.interface}" if main.interface else ""))
    return ok, said


def describe_hits(hits: Iterable[Blocked], limit: int = 4) -> list[str]:
    out: list[str] = []
    for b in list(hits)[:limit]:
        share = "" if b.share in (None, 1.0) else f" ({b.share:.0%} of new connections)"
        out.append(f"{b.flow.label}: {b.outcome.verdict.value} at {b.step.table} "
                   f"{b.step.chain} `{b.step.rule}`{share}")
    return out


def assumptions(hits: Iterable[Blocked]) -> str:
    """What was assumed to build the traced flows, said once."""
    said = list(dict.fromkeys(a.strip() for b in hits for a in b.flow.assumed.split(";")
                              if a.strip()))
    return ("Assumed: " + "; ".join(said) + ".") if said else ""


def assumed_any(hits: Iterable[Blocked]) -> bool:
    return any(b.flow.assumed for b in hits)


# The most a block proven only for assumed pod addresses may claim: the trace proves what the
# node's rules do to its pod subnet, not that a pod anyone runs is behind it. Counters or
# kernel log lines of the deciding rule show real packets dying there, and lift the cap.
ASSUMED_CAP = 0.75
CORROBORATED_CAP = 0.85


def capped(confidence: float, hits: Iterable[Blocked], *, corroborated: bool = False) -> float:
    """`confidence`, capped when every blocked pod flow used an assumed pod address (NodePort
    flows assume only the outside client, and do not count)."""
    pod = [b for b in hits if b.flow.kind != "nodeport"]
    if pod and all(b.flow.assumed for b in pod):
        return min(confidence, CORROBORATED_CAP if corroborated else ASSUMED_CAP)
    return confidence
