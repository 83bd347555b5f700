"""Failure mode 39: cni0 keeps the address of an old pod subnet after a re-join/CIDR change.

The bridge plugin sets the gateway address of the node's current subnet (flannel's
FLANNEL_SUBNET, i.e. the Node's podCIDR) on cni0; if cni0 still carries the address of a
previous subnet (the node was reset and re-joined, or got a new podCIDR), every CNI ADD fails
with `failed to set bridge addr: "cni0" already has an IP address different from 10.244.1.1/24`
and all new pods stay in ContainerCreating.

The proof: the node's `ip addr` shows cni0's address outside the node's podCIDR, and a trace
of a packet to an address of the new subnet shows the node has no route for it through cni0
(it leaves by flannel.1 or the default route): the bridge belongs to the old subnet. The fix
(delete cni0, let the plugin recreate it) is verified by re-tracing with cni0 re-addressed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import ip_interface

from netsleuth.datapath.trace_model import Verdict
from netsleuth.diagnose.detectors._cluster import k8s_nodes
from netsleuth.diagnose.detectors._cni_dns import (
    all_events,
    ev_line,
    event_node,
    event_text,
    host_of,
    matching_logs,
    route_lines,
    trace_local,
    trace_summary,
)
from netsleuth.diagnose.evidence import Evidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.net import Address, IPInterface, IPNetwork, Scope
from netsleuth.model.node import NodeState
from netsleuth.parse.iproute2 import kernel_routes_for_addresses

KIND = "stale-cni-bridge-address"
SET_ADDR = re.compile(r'failed to set bridge addr: \\?"(\w+)\\?" already has an IP address '
                      r'different from ([0-9a-fA-F.:]+/\d+)')
BRIDGES = ("cni0", "cbr0")


def _expected(ev: Evidence) -> dict[str, tuple[str, IPInterface, EvidenceLine]]:
    """node → (bridge, expected gateway address, evidence) from the plugin's own error."""
    out: dict[str, tuple[str, IPInterface, EvidenceLine]] = {}
    for e in all_events(ev):
        m = SET_ADDR.search(e.message)
        node = event_node(ev, e) if m else None
        if m and node and node not in out:
            out[node] = (m.group(1), ip_interface(m.group(2)), ev_line(e.source, event_text(e)))
    for ln, m in matching_logs(ev, SET_ADDR):
        node = log_node(ev, ln)
        if node and node not in out:
            out[node] = (m.group(1), ip_interface(m.group(2)), ev_line(ln.source, ln.text))
    return out


def _rebridged(state: NodeState, bridge: str, addr: IPInterface) -> NodeState:
    """The node after `ip link del cni0` and the plugin re-creating it with `addr`."""
    keep = tuple(a for a in state.addresses if a.ifname != bridge)
    new = Address(bridge, addr, Scope.UNIVERSE)
    routes = tuple(r for r in state.routes if r.dev != bridge)
    routes += tuple(kernel_routes_for_addresses((new,)))
    return replace(state, addresses=keep + (new,), routes=routes,
                   assumptions=state.assumptions + (f"what-if: {bridge} re-created with {addr}",))


@detector("D39", title="Stale cni0 bridge address after re-join or CIDR change",
          needs=("events", "logs", "addresses", "k8s-nodes"), mode="39")
def stale_cni_bridge(ev: Evidence) -> Iterator[Finding]:
    expected = _expected(ev)
    nodes = k8s_nodes(ev)
    for name in sorted(set(expected) | set(ev.nodes)):
        node = ev.nodes.get(name)
        bridge, want, err = expected.get(name, ("cni0", None, None))
        cidrs: tuple[IPNetwork, ...] = nodes[name].pod_cidrs if name in nodes else ()
        if want is None and cidrs:
            net = cidrs[0]
            want = ip_interface(f"{next(iter(net.hosts()))}/{net.prefixlen}")
        if want is None:
            continue
        have = [a for a in node.state.addresses if a.ifname == bridge] if node else []
        wrong = [a for a in have if a.ip.version == want.version and a.interface != want]
        if node is not None and not wrong:
            continue  # the bridge has the right address (or none yet)
        if node is None and err is None:
            continue
        yield _finding(ev, name, bridge, want, wrong, err, cidrs)


def _finding(ev: Evidence, name: str, bridge: str, want: IPInterface, wrong: list[Address],
             err: EvidenceLine | None, cidrs: tuple[IPNetwork, ...]) -> Finding:
    evidence: list[EvidenceLine] = [err] if err else []
    for a in wrong:
        evidence.append(ev_line(a.source, f"{bridge}: inet {a.interface}"))
    detail = [f"The CNI wants {bridge} = {want} (the gateway of {want.network}"
              + (f", {name}'s podCIDR {cidrs[0]}" if cidrs else "") + ")"
              + (f", but {bridge} has {', '.join(str(a.interface) for a in wrong)}." if wrong
                 else "; the bridge plugin reports a different address on it.")]
    trace = None
    fixes: list[Fix] = []
    node = ev.nodes.get(name)
    if node is not None:
        # A new pod's address: the second host of the subnet (the first is the gateway).
        pod_ip = host_of(want.network, 1)
        t = trace_local(node.state, pod_ip, None, "tcp")
        if t.main.interface != bridge:
            trace = t
            evidence.extend(route_lines(t))
            evidence.append(ev_line(None, f"trace: {trace_summary(t)}"))
            how = f"out {t.main.interface}" if t.main.interface else t.main.verdict.value
            detail.append(f"A pod of the current subnet ({pod_ip}) is not even routed to {bridge}: "
                          f"{name} sends it {how}"
                          + (f" via {t.main.next_hop}" if t.main.next_hop else "") + ".")
        fixed = _rebridged(node.state, bridge, want)
        again = trace_local(fixed, pod_ip, None, "tcp")
        ok = again.verdict == Verdict.SENT and again.main.interface == bridge
        note = (f"Verified by simulation: {pod_ip} is then sent out {bridge}" if ok else
                "re-trace did not reach the bridge")
    else:
        note = "the bridge plugin re-creates it with the current subnet's gateway"
    fixes.append(Fix(f"ip link set {bridge} down && ip link delete {bridge}", "now",
                     f"on {name}; the next pod's CNI ADD re-creates it with {want}. " + note))
    fixes.append(Fix("rm -rf /var/lib/cni/networks/cbr0 /var/lib/cni/flannel && systemctl "
                     "restart containerd kubelet", "now",
                     f"on {name}: drop host-local reservations of the old subnet"))
    fixes.append(Fix("before re-joining a node: kubeadm reset, then ip link delete cni0; "
                     "ip link delete flannel.1; rm -rf /var/lib/cni/ /etc/cni/net.d/*",
                     "permanent", "a reset leaves the CNI's devices and state behind"))
    return Finding(
        detector="D39", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{name}",
        title=f"{bridge} on {name} has a stale address "
              + (f"{wrong[0].interface} " if wrong else "") + f"(expected {want})",
        node=name, confidence=0.95 if wrong and err else 0.85 if wrong else 0.7,
        why=("the bridge plugin's own error plus the node's `ip addr`" if wrong and err else
             "the node's `ip addr` against its podCIDR" if wrong else
             "the bridge plugin's own error (the node's `ip addr` is not in the evidence)")
            + ("; traced: the current subnet is not routed to the bridge" if trace else ""),
        evidence=tuple(evidence),
        explains=(f"sandbox-churn@{name}", f"pod-no-ip@{name}", "dns-down"),
        fix=tuple(fixes), detail="\n".join(detail), trace=trace,
    )
