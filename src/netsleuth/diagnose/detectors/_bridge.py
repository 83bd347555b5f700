"""Pods on a Linux bridge (flannel's cni0, kubenet's cbr0, the bridge plugin, docker0): which
node interfaces are bridges, and the Service paths that leave through the bridge they came in
on — the paths that depend on br_netfilter (B10) and on hairpin mode (C25).

The simulator traces the routed part (PREROUTING DNAT, route, FORWARD); what happens on the
bridge itself (L2 delivery of the reply, a frame sent back out of the port it arrived on) is
reasoned here from the routes and link masters, with the kernel behaviour cited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import ip_address

from netsleuth.datapath.trace_model import Outcome, Trace, Verdict
from netsleuth.diagnose.detectors._common import datapath
from netsleuth.diagnose.detectors._paths import (
    Flow,
    ServiceTarget,
    local_pods,
    route_dev,
    service_endpoints,
    service_targets,
    trace_flow,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.model.k8s import Pod
from netsleuth.model.net import IPAddress, RouteType

MAX_TARGETS = 12  # Services traced per client: enough to show the path, bounded for big clusters
BRIDGE_NAMES = re.compile(r"^(cni\d*|cnio\d*|cbr\d*|docker\d*|kube-bridge|br-\w+|weave|mybridge)$")


def bridges(node: NodeEvidence) -> dict[str, list[str]]:
    """Bridge device → its ports (links whose master it is); bridges named like a CNI bridge
    count even when the link list does not show their ports."""
    out: dict[str, list[str]] = {}
    for link in node.state.links:
        if link.master:
            out.setdefault(link.master, []).append(link.name)
    for link in node.state.links:
        if link.kind == "bridge" or BRIDGE_NAMES.match(link.name):
            out.setdefault(link.name, [])
    for addr in node.state.addresses:
        if BRIDGE_NAMES.match(addr.ifname):
            out.setdefault(addr.ifname, [])
    return {b: ports for b, ports in out.items() if not b.startswith("bond")}


def bridge_of(node: NodeEvidence, ip: IPAddress) -> str | None:
    """The bridge `ip` is directly reachable on (a connected route through a bridge)."""
    result = datapath(node.state).fibs[ip.version].lookup(ip, iif="lo")
    if not result.ok or result.route is None or result.route.type != RouteType.UNICAST:
        return None
    if result.route.gateway is not None:
        return None
    dev = result.route.dev
    return dev if dev is not None and dev in bridges(node) else None


@dataclass(frozen=True, slots=True)
class BridgePath:
    """A pod's Service connection that kube-proxy DNATs to an endpoint on the same bridge."""

    client: IPAddress
    pod: Pod | None
    assumed: str
    target: ServiceTarget
    bridge: str
    trace: Trace
    outcome: Outcome  # the branch DNATed to `endpoint`
    endpoint: IPAddress
    share: float | None

    @property
    def to_self(self) -> bool:
        return self.endpoint == self.client


def same_bridge_paths(ev: Evidence, node: NodeEvidence, *, clients: int = 2,
                      include_self: bool = True) -> list[BridgePath]:
    """Pod → Service connections whose DNATed packet goes back out the bridge it came from."""
    out: list[BridgePath] = []
    # Only Services with an endpoint on one of the node's bridges can take such a path.
    brs = bridges(node)
    nets = [a.network for a in node.state.addresses if a.ifname in brs]

    def local(ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in nets) and \
            bridge_of(node, ip) is not None

    eps = service_endpoints(node.state.ruleset)
    on_bridge = {key for key, ips in eps.items() if any(local(ip) for ip in ips)}
    for e in ev.objects.endpoints:
        for a in e.ready_addresses:
            if a.ip is not None and local(a.ip):
                for svc in ev.objects.services:
                    if svc.name == (e.service or e.name) and svc.cluster_ip is not None:
                        on_bridge |= {(svc.cluster_ip, p.port) for p in svc.ports}
    targets = [t for t in service_targets(ev, node) if t.port and (t.ip, t.port) in on_bridge]
    targets = targets[:MAX_TARGETS]
    cands = local_pods(ev, node, limit=clients)
    if include_self:
        known = {c for c, _p, _a in cands}
        for ep in dnat_endpoints(node):
            if len(cands) >= clients + 4:
                break
            if ep not in known and bridge_of(node, ep) is not None:
                cands.append((ep, pod_for(ev, ep), ""))
                known.add(ep)
    for client, pod, assumed in cands:
        bridge = bridge_of(node, client)
        if bridge is None:
            continue
        for t in targets:
            flow = Flow("pod-svc", f"pod {client} → {t.name} {t.ip}:{t.port}", client, t.ip,
                        t.port, t.proto, route_dev(node, client) or bridge, assumed, t.name)
            trace = trace_flow(node, flow)
            for o in trace.outcomes:
                if o.verdict != Verdict.FORWARDED or o.interface != bridge:
                    continue
                dst = o.packet.dst
                if dst == t.ip or bridge_of(node, dst) != bridge:
                    continue
                if dst == client and not include_self:
                    continue
                out.append(BridgePath(client, pod, assumed, t, bridge, trace, o, dst,
                                      o.probability))
    return out


def dnat_endpoints(node: NodeEvidence) -> list[IPAddress]:
    """Endpoint addresses of kube-proxy's KUBE-SEP DNAT rules on the node."""
    out: dict[IPAddress, None] = {}  # ordered set
    table = node.state.ruleset.table("nat")
    if table is None:
        return []
    for name, chain in table.chains.items():
        if not name.startswith("KUBE-SEP-"):
            continue
        for rule in chain.rules:
            opt = rule.target.option("--to-destination") if rule.target else None
            if opt is None:
                continue
            host = opt.value.rsplit(":", 1)[0].strip("[]")
            try:
                ip = ip_address(host)
            except ValueError:
                continue
            out[ip] = None
    return list(out)


def pod_for(ev: Evidence, ip: IPAddress) -> Pod | None:
    for pod in ev.objects.pods:
        if ip in pod.ips:
            return pod
    return None
