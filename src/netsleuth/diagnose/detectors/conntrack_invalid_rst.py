"""Failure mode 16: conntrack marks out-of-window packets INVALID; they escape un-DNAT and the
client answers them with RST ("connection reset by peer").

Under load (large windows, retransmissions, tcp_be_liberal=0) conntrack's TCP window tracking
declares some packets of a DNATed connection INVALID (nf_conntrack_proto_tcp.c tcp_in_window).
An INVALID packet has no conntrack entry to use, so NAT leaves it alone: a reply from the
Service's endpoint keeps the endpoint's own address, is forwarded to the client pod, matches no
socket there, and the client's kernel sends a RST that kills the real connection
(kubernetes/kubernetes#74839). kube-proxy ≥ 1.15 drops such packets in KUBE-FORWARD
(`-m conntrack --ctstate INVALID -j DROP`, #74840); setting nf_conntrack_tcp_be_liberal=1 stops
conntrack from marking them.

Proof: such a packet (conntrack state INVALID, from an endpoint to a client pod) is walked
through the node's filter FORWARD chain with the simulator's netfilter engine: it is accepted
(no INVALID drop) while be_liberal is 0; the fix is re-walked with the drop rule inserted.
`conntrack -S` invalid counters and ECONNRESET errors corroborate.
"""

from __future__ import annotations

from collections.abc import Iterator

from netsleuth.datapath.hooks import Hook
from netsleuth.datapath.netfilter import CompiledRuleset, EvalContext
from netsleuth.datapath.packet import ConnState, Packet
from netsleuth.datapath.trace_model import Step
from netsleuth.diagnose.detectors._cluster import sysctl_line
from netsleuth.diagnose.detectors._common import datapath, line
from netsleuth.diagnose.detectors._host_evidence import conntrack_stats, sysctl
from netsleuth.diagnose.detectors._paths import (
    local_pods,
    real_rules,
    remote_pods,
    route_dev,
    with_rules,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.net import IPAddress
from netsleuth.model.netfilter import Ruleset

KIND = "conntrack-invalid-rst"


def _forward_verdict(node: NodeEvidence, ruleset: Ruleset, src: IPAddress, dst: IPAddress,
                     iif: str | None, oif: str | None) -> tuple[str, list[Step]]:
    """Walk filter FORWARD for an INVALID packet: (verdict, rules that decided)."""
    packet = Packet(src=src, dst=dst, proto="tcp", sport=8080, dport=41000, iif=iif, oif=oif,
                    ct_state=ConnState.INVALID)
    fib = datapath(node.state).fibs[dst.version]
    verdicts = CompiledRuleset(ruleset).walk("filter", Hook.FORWARD.value, packet,
                                             EvalContext(Hook.FORWARD.value, fib))
    if not verdicts:
        return "ACCEPT", []
    v = max(verdicts, key=lambda x: -1.0 if x.weight is None else x.weight)
    return v.verdict, list(v.steps)


@detector("B16", title="conntrack INVALID packets escape NAT and cause spurious RSTs",
          needs=("iptables", "sysctl"), mode="16")
def invalid_rst(ev: Evidence) -> Iterator[Finding]:
    for node in sorted(ev.nodes.values(), key=lambda n: n.name):
        if not real_rules(node):
            continue
        liberal = sysctl(node, "net.netfilter.nf_conntrack_tcp_be_liberal")
        if liberal == "1":
            continue
        stats = conntrack_stats(ev, node.name)
        resets = [ln for ln in ev.objects.logs if ln.net_error is not None
                  and ln.net_error.errno == "ECONNRESET"]
        invalid = stats.get("invalid") if stats is not None else 0
        if not invalid and not resets:
            continue  # the rule gap alone is latent; wait for a sign it bites
        clients = local_pods(ev, node, limit=1)
        servers = remote_pods(ev, node, limit=1)
        if not clients or not servers:
            continue
        client, _cp, _ca = clients[0]
        server = servers[0][0]
        iif, oif = route_dev(node, server), route_dev(node, client)
        verdict, steps = _forward_verdict(node, node.state.ruleset, server, client, iif, oif)
        if verdict != "ACCEPT":
            continue
        fixed = with_rules(node.state.ruleset, "filter", "FORWARD",
                           ["-A FORWARD -m conntrack --ctstate INVALID -j DROP"])
        after, _steps = _forward_verdict(node, fixed, server, client, iif, oif)
        evidence: list[EvidenceLine] = []
        if liberal is not None:
            evidence.append(sysctl_line(node, "net.netfilter.nf_conntrack_tcp_be_liberal"))
        fwd = node.state.ruleset.chain("filter", "KUBE-FORWARD")
        if fwd is not None:
            evidence.append(line(fwd.source, "KUBE-FORWARD has no `--ctstate INVALID -j DROP` "
                                             "(kube-proxy < 1.15)"))
        evidence.append(line(None, f"walk of filter FORWARD on {node.name} for an INVALID packet "
                                   f"{server}:8080 → {client} ({iif} → {oif}): {verdict}"))
        evidence += [line(st.source, f"{st.rule}   → {st.action}") for st in steps
                     if st.source is not None and st.action.startswith("ACCEPT")][:1]
        if stats is not None:
            evidence += [e for e in stats.lines if "invalid=" in e.text][:2]
        evidence += [line(ln.source, ln.text) for ln in resets[:2]]
        yield Finding(
            detector="B16", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
            title=f"{node.name} forwards conntrack-INVALID packets un-NATed "
                  f"(be_liberal={liberal or '0'}, no INVALID drop): spurious RSTs"
                  + (f", {invalid} invalid so far" if invalid else ""),
            node=node.name, confidence=0.85 if invalid and resets else 0.7,
            why="an INVALID packet walked through the node's filter FORWARD chain is accepted; "
                "without its conntrack entry it is not un-DNATed and the client resets the "
                "connection",
            evidence=tuple(evidence),
            explains=(f"svc-unreachable:ECONNRESET@{node.name}",
                      f"conn-error:ECONNRESET@{node.name}", "svc-unreachable:ECONNRESET@?",
                      "conn-error:ECONNRESET@?"),
            fix=(Fix("sysctl -w net.netfilter.nf_conntrack_tcp_be_liberal=1", "now",
                     "conntrack stops marking out-of-window packets INVALID"),
                 Fix("iptables -I FORWARD 1 -m conntrack --ctstate INVALID -j DROP", "now",
                     f"re-walked with it: {after}" if after == "DROP" else ""),
                 Fix("upgrade kube-proxy to ≥ 1.15 (it installs the INVALID drop)",
                     "permanent")),
            detail="Out-of-window packets of DNATed connections are INVALID to conntrack; "
                   f"{node.name} accepts them in FORWARD without reverse NAT, the client pod "
                   "sees a segment from the endpoint's own address and answers RST.",
        )
