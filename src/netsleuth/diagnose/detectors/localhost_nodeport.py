"""Failure mode 24: a NodePort reached through localhost does not answer.

In iptables mode kube-proxy's KUBE-NODEPORTS matches `--dst-type LOCAL`, 127.0.0.1 included,
and DNATs the connection to an endpoint — usually on another node. The packet keeps the source
its socket chose, 127.0.0.1, and after the DNAT the kernel re-routes it (ip_route_me_harder):
a route out of a non-loopback device for a loopback source is refused unless
net.ipv4.conf.<dev>.route_localnet=1 (__mkroute_output() in net/ipv4/route.c returns -EINVAL).
The SYN is dropped and the client hangs. kube-proxy turns route_localnet on at start; a
hardening profile or `sysctl --system` that resets it to 0 breaks `curl 127.0.0.1:<nodePort>`
while `<nodeIP>:<nodePort>` works (kubernetes/kubernetes#90259). IPVS mode never serves
localhost NodePorts, nftables mode does not by default, and `--iptables-localhost-nodeports=
false` / nodePortAddresses without 127.0.0.0/8 leave them undNATed: "connection refused".

Proof: host → 127.0.0.1:<nodePort> traced through the node's rules: DNATed to a remote endpoint
and re-routed out of a non-loopback device while route_localnet is 0 (the simulator does not
apply that kernel check itself; it is applied here to the traced packet and verified on the
real kernel by tests/diagnose/test_localhost_nodeport.py's lab test), or not DNATed at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import ip_address

from netsleuth.datapath.hooks import Stage
from netsleuth.datapath.trace_model import Outcome, Trace, Verdict
from netsleuth.diagnose.detectors._clients import ClientError, client_errors
from netsleuth.diagnose.detectors._cluster import sysctl_line
from netsleuth.diagnose.detectors._common import datapath, line
from netsleuth.diagnose.detectors._host_evidence import sysctl
from netsleuth.diagnose.detectors._paths import real_rules, service_targets
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.net import Sysctls

KIND = "localhost-nodeport"
MAX_PORTS = 8
LOOPBACK = ip_address("127.0.0.1")


def localnet_refused(outcome: Outcome) -> tuple[bool, str | None]:
    """Whether the trace shows the kernel refusing the re-route of this loopback-sourced,
    DNATed packet (route_localnet off on the output device): (refused, device)."""
    for step in outcome.steps:
        if step.hook == Stage.REROUTE.value and "route_localnet" in step.action:
            m = _LEAVE_VIA.search(step.action)
            return True, m.group(1) if m else None
    return False, None


_LEAVE_VIA = re.compile(r"may not leave via (\S+):")


def _int(v: str | None) -> int:
    return int(v) if v is not None and v.strip().isdigit() else 0


def _nodeport_clients(ev: Evidence, node: str) -> dict[int, list[ClientError]]:
    out: dict[int, list[ClientError]] = {}
    for e in client_errors(ev):
        if e.node != node or e.dst_port is None:
            continue
        if (e.dst_ip is not None and e.dst_ip.is_loopback) or e.dst_name == "localhost":
            out.setdefault(e.dst_port, []).append(e)
    return out


@detector("C24", title="NodePort via localhost does not answer", needs=("iptables", "sysctl"),
          mode="24")
def localhost_nodeport(ev: Evidence) -> Iterator[Finding]:
    for node in sorted(ev.nodes.values(), key=lambda n: n.name):
        if not real_rules(node):
            continue
        clients = _nodeport_clients(ev, node.name)
        # The NodePorts a failing localhost call names first, then a few others.
        ports = sorted((t for t in service_targets(ev, node) if t.node_port),
                       key=lambda t: t.node_port not in clients)[:MAX_PORTS]
        for t in ports:
            assert t.node_port is not None
            trace = datapath(node.state).trace(dst=LOOPBACK, dport=t.node_port, proto=t.proto)
            main = trace.main
            seen = clients.get(t.node_port, [])
            dnat = [s for s in main.steps if s.action.startswith("DNAT")]
            if dnat and main.verdict == Verdict.DROPPED:
                refused, dev = localnet_refused(main)
                if refused:
                    yield _localnet(ev, node, t.name, t.node_port, trace, main, dev, seen)
                    break
            elif not dnat and seen and main.verdict in (Verdict.DELIVERED_LOCAL,
                                                        Verdict.REJECTED):
                yield _not_served(node, t.name, t.node_port, trace, seen)
                break


def _localnet(ev: Evidence, node: NodeEvidence, name: str, port: int, trace: Trace,
              main: Outcome, dev: str | None, seen: list[ClientError]) -> Finding:
    dnat = [s for s in main.steps if s.action.startswith("DNAT")]
    evidence: list[EvidenceLine] = [line(dnat[0].source, f"{dnat[0].rule}   → {dnat[0].action}")]
    evidence.append(line(None, f"trace on {node.name}: host → 127.0.0.1:{port} is DNATed to "
                               f"{main.packet.endpoint('dst')} and re-routed out {dev} with "
                               "source 127.0.0.1"))
    for key in ("net.ipv4.conf.all.route_localnet", f"net.ipv4.conf.{dev}.route_localnet"):
        if sysctl(node, key) is not None:
            evidence.append(sysctl_line(node, key))
    evidence += [e.evidence for e in seen[:2]]
    values = dict(node.state.sysctls.values)
    values["net.ipv4.conf.all.route_localnet"] = "1"
    fixed = replace(node.state, sysctls=Sysctls(values, node.state.sysctls.source))
    again = datapath(fixed).trace(dst=LOOPBACK, dport=port)
    ok = not localnet_refused(again.main)[0]
    timeouts = [f"svc-unreachable:{e}@{node.name}" for e in ("TIMEOUT", "ETIMEDOUT")] + \
        [f"conn-error:{e}@{node.name}" for e in ("TIMEOUT", "ETIMEDOUT")]
    return Finding(
        detector="C24", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=f"NodePort {port} ({name}) via 127.0.0.1 hangs on {node.name}: "
              "route_localnet is 0",
        node=node.name, confidence=0.9 if seen else 0.7,
        why="host → 127.0.0.1:NodePort traced through the node's rules is DNATed to a remote "
            f"endpoint and re-routed out {dev}; the kernel refuses a loopback source on a "
            "non-loopback device unless route_localnet=1, so the SYN is dropped",
        evidence=tuple(evidence),
        explains=tuple(dict.fromkeys(timeouts if seen else [])),
        fix=(Fix("sysctl -w net.ipv4.conf.all.route_localnet=1", "now",
                 "what kube-proxy sets at start" + ("; with it the re-routed packet is "
                                                    "accepted (checked on the traced packet)"
                                                    if ok else "")),
             Fix("remove the route_localnet=0 line from /etc/sysctl.d (hardening profile), or "
                 f"use the node address instead of localhost: curl <nodeIP>:{port}",
                 "permanent", "kube-proxy only sets it when it starts")),
        detail=f"{name}'s NodePort {port} is DNATed for 127.0.0.1 too; the connection keeps "
               f"source 127.0.0.1 and is re-routed out {dev} towards "
               f"{main.packet.endpoint('dst')}. With net.ipv4.conf.all.route_localnet=0 "
               "(and on the device) __mkroute_output() refuses that route: the SYN is dropped "
               "and the client times out, while <nodeIP>:NodePort works.",
        trace=trace,
    )


def _not_served(node: NodeEvidence, name: str, port: int, trace: Trace,
                seen: list[ClientError]) -> Finding:
    refused = [f"svc-unreachable:ECONNREFUSED@{node.name}", f"conn-error:ECONNREFUSED@{node.name}"]
    return Finding(
        detector="C24", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=f"NodePort {port} ({name}) is not served on 127.0.0.1 on {node.name}",
        node=node.name, confidence=0.8,
        why="host → 127.0.0.1:NodePort traced through the node's rules is not DNATed: "
            "kube-proxy does not serve NodePorts on localhost here (IPVS/nftables mode, "
            "nodePortAddresses, --iptables-localhost-nodeports=false)",
        evidence=tuple(e.evidence for e in seen[:2]),
        explains=tuple(refused),
        fix=(Fix(f"curl <nodeIP>:{port}   # use the node's address", "now"),),
        detail=f"The packet to 127.0.0.1:{port} is {trace.main.verdict.value} on the node "
               "itself: nothing listens there.",
        trace=trace,
    )
