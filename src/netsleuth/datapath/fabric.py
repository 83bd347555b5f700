"""Across nodes: follow a packet from node to node over the segments and tunnels between them.

Each node's part of the path is an ordinary single-node trace. Where a node sends the packet
out, the next hop's address says where it goes next: a node that owns that address (received
there on the interface of that subnet), a pod behind a host route to a veth (delivered to the
pod), or nothing known (the packet leaves the evidence). An IPIP tunnel device (`ipip` links,
Calico's `tunl0`) wraps the packet: the outer packet (IP protocol 4, to the route's gateway)
is itself traced out of the node, and the node that owns the gateway unwraps it and receives
the inner packet on its own tunnel device. Other tunnels (VXLAN) are followed to the node that
owns the gateway address, without an outer-packet trace (the FDB is not in node snapshots);
this is said in the path's assumptions.

Only the forward direction is traced; the reply path is not (conntrack's reverse NAT on the
way back is not simulated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from netsleuth.datapath.packet import Packet
from netsleuth.datapath.trace import NodeDatapath
from netsleuth.datapath.trace_model import Outcome, Trace, Verdict
from netsleuth.model.net import IPAddress, RouteType
from netsleuth.model.node import NodeState

MAX_HOPS = 8
TUNNEL_PREFIXES = ("tunl", "vxlan", "flannel", "cilium_vxlan", "cilium_geneve", "genev")
VETH_PREFIXES = ("cali", "veth", "lxc", "cni", "azv", "eni", "gke", "vnet")


@dataclass(frozen=True, slots=True)
class Hop:
    node: str
    trace: Trace
    outcome: Outcome
    how: str  # how the packet got to this node ("start", "via enp0s8 from node1", ...)


@dataclass(frozen=True, slots=True)
class FabricOutcome:
    probability: float | None
    hops: tuple[Hop, ...]
    end: str  # delivered-local | delivered-pod | left-evidence | dropped | rejected | unroutable
    where: str  # node (and pod) where it ended
    assumptions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        last = self.hops[-1].outcome
        return {
            "probability": None if self.probability is None else round(self.probability, 6),
            "end": self.end,
            "where": self.where,
            "errno": self.hops[0].outcome.errno if len(self.hops) == 1 else None,
            "destination": last.packet.endpoint("dst"),
            "source": last.packet.endpoint("src"),
            "hops": [{"node": h.node, "how": h.how, "verdict": h.outcome.verdict.value,
                      "interface": h.outcome.interface, "next_hop": h.outcome.next_hop,
                      "steps": [s.to_dict() for s in h.outcome.steps]} for h in self.hops],
            "assumptions": list(self.assumptions),
        }


@dataclass(frozen=True, slots=True)
class FabricTrace:
    start: str
    packet: Packet
    outcomes: tuple[FabricOutcome, ...]

    @property
    def main(self) -> FabricOutcome:
        return max(self.outcomes, key=lambda o: -1.0 if o.probability is None else o.probability)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "netsleuth.fabric-trace/1", "start": self.start,
                "end": self.main.end, "where": self.main.where,
                "outcomes": [o.to_dict() for o in self.outcomes]}


class Fabric:
    """The nodes of one cluster, with an index from address to owning node and interface."""

    def __init__(self, nodes: Mapping[str, NodeState]) -> None:
        self.nodes = dict(nodes)
        self.datapaths = {name: NodeDatapath(state) for name, state in self.nodes.items()}
        owners: dict[IPAddress, set[tuple[str, str]]] = {}
        for name, state in self.nodes.items():
            for addr in state.addresses:
                if addr.ifname != "lo" and not addr.ip.is_loopback:
                    owners.setdefault(addr.ip, set()).add((name, addr.ifname))
        # An address on several nodes (docker0's 172.17.0.1) identifies none of them.
        self.owner = {ip: next(iter(o)) for ip, o in owners.items() if len(o) == 1}

    def trace(self, node: str, *, dst: IPAddress, dport: int | None = None, proto: str = "tcp",
              src: IPAddress | None = None, iif: str | None = None) -> FabricTrace:
        packet = Packet(src=src, dst=dst, proto=proto, dport=dport, iif=iif)
        outcomes: list[FabricOutcome] = []
        self._walk(node, packet, (), 1.0, "start", (), outcomes)
        return FabricTrace(node, packet, tuple(outcomes))

    def _walk(self, node: str, packet: Packet, hops: tuple[Hop, ...], weight: float | None,
              how: str, assumptions: tuple[str, ...], out: list[FabricOutcome]) -> None:
        trace = self.datapaths[node].trace(dst=packet.dst, dport=packet.dport, proto=packet.proto,
                                           src=packet.src, iif=packet.iif, sport=packet.sport)
        for o in trace.outcomes:
            w = None if weight is None or o.probability is None else weight * o.probability
            path = (*hops, Hop(node, trace, o, how))
            if o.verdict == Verdict.DELIVERED_LOCAL:
                out.append(FabricOutcome(w, path, "delivered-local", node, assumptions))
            elif o.verdict in (Verdict.SENT, Verdict.FORWARDED):
                self._next(node, o, path, w, assumptions, out)
            else:
                out.append(FabricOutcome(w, path, o.verdict.value, node, assumptions))

    def _next(self, node: str, o: Outcome, path: tuple[Hop, ...], weight: float | None,
              assumptions: tuple[str, ...], out: list[FabricOutcome]) -> None:
        p = o.packet
        oif = o.interface or ""
        nh = _ip(o.next_hop)
        if len(path) >= MAX_HOPS:
            out.append(FabricOutcome(weight, path, "dropped", node,
                                     (*assumptions, f"more than {MAX_HOPS} hops: a loop?")))
            return
        if oif.startswith(VETH_PREFIXES) and nh == p.dst and self._pod_route(node, p.dst, oif):
            out.append(FabricOutcome(weight, path, "delivered-pod", f"{node} pod {p.dst} "
                                     f"behind {oif}", assumptions))
            return
        if nh is None or nh not in self.owner:
            out.append(FabricOutcome(weight, path, "left-evidence",
                                     f"{node} → {o.next_hop} via {oif}", assumptions))
            return
        peer, peer_if = self.owner[nh]
        tunnel = self._tunnel_kind(node, oif)
        inner = p._replace(iif=None, oif=None, orig_dst=None, orig_src=None, orig_sport=None,
                           orig_dport=None, dnat=False, snat=False, tracked=False, mark=0,
                           ct_mark=0)
        if tunnel == "ipip":
            lost = self._ipip_outer(node, peer, peer_if, nh)
            if lost is not None:
                where, text = lost
                out.append(FabricOutcome(weight, path, "dropped", where, (*assumptions, text)))
                return
            recv_if = self._tunnel_device(peer, "ipip") or peer_if
            how = f"IPIP from {node} (outer packet to {nh}), unwrapped on {recv_if}"
        elif tunnel is not None:
            recv_if = self._tunnel_device(peer, tunnel) or peer_if
            how = f"{tunnel} tunnel from {node} to {nh}"
            assumptions = (*assumptions, f"{tunnel} outer packet {node} → {peer} not traced "
                           "(the VTEP forwarding table is not in the evidence)")
        else:
            recv_if = self._receiving_interface(peer, p.src, nh) or peer_if
            how = f"via {oif} from {node}, received on {recv_if}"
        self._walk(peer, inner._replace(iif=recv_if), path, weight, how, assumptions, out)

    def _pod_route(self, node: str, dst: IPAddress, dev: str) -> bool:
        return any(r.dev == dev and dst in r.dst and r.type == RouteType.UNICAST
                   for r in self.nodes[node].routes)

    def _tunnel_kind(self, node: str, dev: str) -> str | None:
        for link in self.nodes[node].links:
            if link.name == dev and link.kind in ("ipip", "vxlan", "geneve", "gre"):
                return link.kind
        if dev.startswith("tunl"):
            return "ipip"
        if dev.startswith(TUNNEL_PREFIXES):
            return "vxlan"
        return None

    def _tunnel_device(self, node: str, kind: str) -> str | None:
        for link in self.nodes[node].links:
            if link.kind == kind or (kind == "ipip" and link.name.startswith("tunl")):
                return link.name
        return None

    def _ipip_outer(self, node: str, peer: str, peer_if: str,
                    gateway: IPAddress) -> tuple[str, str] | None:
        """The outer IPIP packet (IP protocol 4) is locally generated on `node` and must be
        accepted by `peer`'s INPUT before it is unwrapped. Returns (where, why) if it is lost."""
        out = self.datapaths[node].trace(dst=gateway, proto="ipip")
        if out.verdict != Verdict.SENT:
            return node, (f"the IPIP outer packet from {node} to {gateway} is "
                          f"{out.verdict.value}" + (f" ({out.errno})" if out.errno else ""))
        inbound = self.datapaths[peer].trace(dst=gateway, proto="ipip", src=out.main.packet.src,
                                             iif=peer_if)
        if inbound.verdict != Verdict.DELIVERED_LOCAL:
            return peer, (f"{peer} does not accept the IPIP outer packet from "
                          f"{out.main.packet.src} on {peer_if}: {inbound.verdict.value}")
        return None

    def _receiving_interface(self, node: str, src: IPAddress | None, nh: IPAddress) -> str | None:
        for addr in self.nodes[node].addresses:
            if addr.ip == nh:
                return addr.ifname
        if src is not None:
            for addr in self.nodes[node].addresses:
                if src in addr.network and addr.ifname != "lo":
                    return addr.ifname
        return None


def _ip(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        return ip_address(text)
    except ValueError:
        return None
