"""Failure mode 38: VTEP MAC mismatch (flannel.1 got a new MAC after flannel published it).

flanneld publishes its flannel.1 MAC in the node annotation
`flannel.alpha.coreos.com/backend-data` ({"VtepMAC": ...}); every other node programs a
permanent neighbour entry (node's flannel address → that MAC) and an FDB entry (that MAC → the
node's public IP) on its own flannel.1. If the MAC changes afterwards (systemd ≥242
`MACAddressPolicy=persistent` re-applying a MAC to the re-created device, flannel-io/flannel#1155),
peers keep sending inner frames to the old MAC; the receiving vxlan device drops frames not
addressed to it (PACKET_OTHERHOST), so traffic *to* pods on that node dies from all other
nodes, and restarting flannel there (re-publishing the MAC) fixes it.

The proof: the node's `ip link` MAC vs the MAC its peers use for it, and a trace on a peer of
a packet to a pod on that node: the route's next hop is the node's flannel address on
flannel.1, whose neighbour entry holds the stale MAC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from netsleuth.datapath.trace_model import Trace
from netsleuth.diagnose.detectors._cluster import k8s_nodes
from netsleuth.diagnose.detectors._cni_dns import (
    KUBECTL_KINDS,
    Neigh,
    ev_line,
    fdb_entries,
    find_line,
    host_of,
    links_of,
    neighbours,
    route_lines,
    trace_local,
    trace_summary,
)
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.net import IPAddress, RouteType
from netsleuth.model.source import SourceRef

KIND = "vtep-mac-mismatch"
BACKEND_DATA = "flannel.alpha.coreos.com/backend-data"


def _published(ev: Evidence, node: str) -> tuple[str | None, EvidenceLine | None]:
    k = k8s_nodes(ev).get(node)
    if k is None or BACKEND_DATA not in k.annotations:
        return None, None
    try:
        mac = json.loads(k.annotations[BACKEND_DATA]).get("VtepMAC")
    except (ValueError, AttributeError):
        return None, None
    if not isinstance(mac, str):
        return None, None
    quote = find_line(ev, re.compile(re.escape(mac), re.I), kinds=KUBECTL_KINDS)
    return mac.lower(), quote or ev_line(k.source, f"{node}: {BACKEND_DATA}: {k.annotations[BACKEND_DATA]}")


def _vtep_address(ev: Evidence, node: str) -> IPAddress | None:
    state = ev.nodes[node].state
    for a in state.addresses:
        if a.ifname.startswith("flannel.") and a.ip.version == 4:
            return a.ip
    return None


@detector("D38", title="VTEP MAC mismatch after a reboot/re-creation of flannel.1",
          needs=("links", "k8s-nodes"), mode="38")
def vtep_mac_mismatch(ev: Evidence) -> Iterator[Finding]:
    for name in sorted(ev.nodes):
        link = next((x for x in links_of(ev, name).values() if x.name.startswith("flannel.")), None)
        if link is None or link.mac is None:
            continue
        real = link.mac.lower()
        published, pub_line = _published(ev, name)
        vtep = _vtep_address(ev, name)
        stale: list[tuple[str, Neigh, Trace | None]] = []
        for peer in sorted(ev.nodes):
            if peer == name or vtep is None:
                continue
            for n in neighbours(ev, peer):
                if n.ip == vtep and n.mac and n.mac.lower() != real:
                    stale.append((peer, n, _trace_to_pods(ev, peer, name, vtep)))
        stale_fdb = [(peer, e) for peer in ev.nodes if peer != name for e in fdb_entries(ev, peer)
                     if published and e.mac.lower() == published and published != real]
        if not stale and not (published and published != real):
            continue
        yield _finding(ev, name, link.name, real, link.source, link.text, published, pub_line,
                       stale, len(stale_fdb))


def _trace_to_pods(ev: Evidence, peer: str, node: str, vtep: IPAddress) -> Trace | None:
    """A peer's packet to a pod on `node`: the route via the node's flannel address."""
    state = ev.nodes[peer].state
    for r in state.routes:
        if r.type == RouteType.UNICAST and r.gateway == vtep and r.dst.prefixlen < 32:
            return trace_local(state, host_of(r.dst), None, "tcp")
    return None


def _finding(ev: Evidence, name: str, dev: str, real: str, src: SourceRef, text: str,
             published: str | None, pub_line: EvidenceLine | None,
             stale: list[tuple[str, Neigh, Trace | None]], fdb_count: int) -> Finding:
    evidence: list[EvidenceLine] = [ev_line(src, f"{text}  (link/ether {real})")]
    if pub_line is not None:
        evidence.append(pub_line)
    trace = None
    for peer, n, t in stale[:3]:
        evidence.append(ev_line(n.source, f"{peer}: {n.text}"))
        if t is not None and trace is None:
            trace = t
            evidence.extend(route_lines(t))
            evidence.append(ev_line(None, f"trace on {peer}: {trace_summary(t)}"))
    old = stale[0][1].mac if stale else published
    detail = [f"{name}'s {dev} has MAC {real}, but "
              + (f"its peers still address it as {old}" if stale else
                 f"flannel published {published}") + "."]
    if stale:
        detail.append(f"{len(stale)} peer neighbour entr{'y' if len(stale) == 1 else 'ies'} "
                      f"(and {fdb_count} FDB entr{'y' if fdb_count == 1 else 'ies'}) point at the "
                      f"old MAC: inner frames reach {name} with a destination MAC its {dev} does "
                      "not own and are dropped, so traffic to pods on it dies from every other "
                      "node while its own pods can still send.")
    pods_ns = next((p.namespace for p in ev.objects.pods if (p.name or "").startswith(
        ("kube-flannel", "flannel"))), None) or "kube-flannel"
    return Finding(
        detector="D38", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{name}",
        title=f"{name}'s {dev} MAC {real} differs from the MAC its peers use ({old})",
        node=name, confidence=0.95 if stale and trace is not None else 0.85 if stale else 0.7,
        why="the MAC in the node's `ip link` against its peers' neighbour entries"
            + (" and a peer's trace to its pods (next hop on flannel.1 resolved by the stale "
               "entry)" if trace is not None else "") if stale else
            "the MAC in the node's `ip link` against the VtepMAC flannel published",
        evidence=tuple(evidence),
        explains=("svc-unreachable:TIMEOUT@*", "conn-error:TIMEOUT@*", "conn-error:ETIMEDOUT@*",
                  "dns-errors@*"),
        fix=(Fix(f"kubectl -n {pods_ns} delete pod --field-selector spec.nodeName={name} "
                 "-l app=flannel", "now",
                 f"flanneld on {name} re-publishes {real}; the peers reprogram their entries"),
             Fix("printf '[Match]\\nOriginalName=flannel*\\n\\n[Link]\\nMACAddressPolicy=none\\n' "
                 "> /etc/systemd/network/50-flannel.link", "permanent",
                 "on every node: systemd must not assign MACs to flannel's devices")),
        detail="\n".join(detail), trace=trace,
    )
