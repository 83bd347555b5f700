"""Failure mode 36: MTU mismatch on the overlay.

An encapsulated packet is the inner packet plus the tunnel's headers (VXLAN/Geneve 50 bytes
over IPv4, IPIP 20, WireGuard 60). The tunnel device's MTU must leave room for them on the
underlay NIC, and everything that feeds the tunnel (the pods' veths, the cni0 bridge, routes
with an `mtu` attribute) must not exceed the tunnel's MTU. When it does, full-size packets
either get dropped (DF set, the ICMP "fragmentation needed" is lost or filtered: a PMTU black
hole) or never fit: ping and small requests work, TLS handshakes and large bodies hang.

The detector finds the path pod traffic takes to other nodes by tracing it (route to a remote
pod subnet → tunnel device) and the path the encapsulated packet takes (route to the peer's
endpoint → underlay NIC), then compares the MTUs of those devices with the overhead. The
simulator does not model sizes, so the numbers come from `ip link`; the trace proves which
devices are on the path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cluster import POD_IFACE
from netsleuth.diagnose.detectors._cni_dns import (
    ENCAP_OVERHEAD,
    LinkInfo,
    cluster_address,
    cni_names,
    ev_line,
    fdb_entries,
    host_of,
    links_of,
    route_mtu,
    trace_local,
    trace_summary,
    tunnel_kind,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.net import IPAddress, RouteType

KIND = "overlay-mtu-mismatch"


@dataclass(frozen=True, slots=True)
class _Problem:
    what: str
    device: LinkInfo
    mtu: int
    limit: int
    why: str


def _remote_pod_ip(node: NodeEvidence, tunnel: str) -> IPAddress | None:
    """An address behind the tunnel: the first host of a route that leaves via it."""
    for r in node.state.routes:
        if r.dev == tunnel and r.type == RouteType.UNICAST and r.dst.prefixlen < r.dst.max_prefixlen:
            return host_of(r.dst)
    return None


def _underlay(ev: Evidence, node: NodeEvidence, tunnel: LinkInfo,
              links: dict[str, LinkInfo]) -> tuple[LinkInfo, Trace | None] | None:
    """The underlay device: traced from the tunnel's `local`/FDB peers, else its `dev`, else
    the NIC of the node's cluster address."""
    peer = next((e.dst for e in fdb_entries(ev, node.name) if e.dev in (tunnel.name, None)
                 and e.dst is not None), None)
    if peer is None:
        for r in node.state.routes:
            if r.dev == tunnel.name and r.gateway is not None and not any(
                    r.gateway in a.network for a in node.state.addresses if a.ifname == tunnel.name):
                peer = r.gateway
                break
    if peer is not None:
        t = trace_local(node.state, peer, None, "udp")
        out_dev = t.main.interface
        if t.verdict == Verdict.SENT and out_dev in links and out_dev != tunnel.name \
                and tunnel_kind(links[out_dev]) is None:
            return links[out_dev], t
    if tunnel.lower and tunnel.lower in links:
        return links[tunnel.lower], None
    addr = cluster_address(ev, node)
    if addr is not None and addr.ifname in links:
        return links[addr.ifname], None
    return None


def _metadata_tunnel(node: NodeEvidence, tunnel: LinkInfo, overhead: int,
                     under: tuple[LinkInfo, Trace | None] | None) -> list[_Problem]:
    if under is None or under[0].mtu is None:
        return []
    nic = under[0]
    assert nic.mtu is not None
    out: list[_Problem] = []
    for r in node.state.routes:
        mtu = route_mtu(r)
        if mtu is not None and r.dev and r.dev.startswith("cilium_") and mtu + overhead > nic.mtu:
            out.append(_Problem("route", tunnel, mtu, nic.mtu - overhead,
                                f"route `{r.raw.strip()}` lets {mtu}-byte packets into "
                                f"{tunnel.name}; + {overhead} = {mtu + overhead} > {nic.name} "
                                f"mtu {nic.mtu}"))
            break
    return out


@detector("D36", title="MTU mismatch on the overlay", needs=("links", "addresses"), mode="36")
def overlay_mtu(ev: Evidence) -> Iterator[Finding]:
    for name in sorted(ev.nodes):
        node = ev.nodes[name]
        links = links_of(ev, node)
        for tunnel in links.values():
            encap = tunnel_kind(tunnel)
            if encap is None or tunnel.mtu is None or tunnel.name == "kube-ipvs0":
                continue
            overhead = ENCAP_OVERHEAD[encap]
            under = _underlay(ev, node, tunnel, links)
            problems: list[_Problem] = []
            under_trace = None
            if " external " in f" {tunnel.detail} " or tunnel.name.startswith("cilium_"):
                # Collect-metadata tunnels (Cilium) keep the device at 1500 and cap the inner
                # size with the `mtu` of the routes to the other nodes' pod CIDRs instead.
                problems = _metadata_tunnel(node, tunnel, overhead, under)
                if problems:
                    yield _finding(ev, node, tunnel, encap, overhead, under, problems, None,
                                   under[1] if under else None)
                continue
            if under is not None:
                nic, under_trace = under
                if nic.mtu is not None and tunnel.mtu + overhead > nic.mtu:
                    problems.append(_Problem(
                        "tunnel", tunnel, tunnel.mtu, nic.mtu - overhead,
                        f"{tunnel.name} (mtu {tunnel.mtu}) + {overhead} bytes of {encap} "
                        f"headers = {tunnel.mtu + overhead} > {nic.name} mtu {nic.mtu}"))
            limit = min([tunnel.mtu] + [p.limit for p in problems])
            feeders = [link for link in links.values()
                       if link.mtu is not None and link.name != tunnel.name
                       and (POD_IFACE.match(link.name) or link.master in ("cni0", "cbr0"))
                       and not link.name.startswith("cilium_host")]
            big = [link for link in feeders if link.mtu is not None and link.mtu > limit]
            if big:
                worst = max(big, key=lambda link: link.mtu or 0)
                problems.append(_Problem(
                    "pods", worst, worst.mtu or 0, limit,
                    f"{len(big)} pod-side interface(s) ({', '.join(x.name for x in big[:3])}"
                    f"{'…' if len(big) > 3 else ''}) have mtu {worst.mtu} > the {limit} bytes "
                    f"{tunnel.name} can carry"))
            if not problems:
                continue
            remote = _remote_pod_ip(node, tunnel.name)
            pod_trace = trace_local(node.state, remote, None, "tcp") if remote else None
            if pod_trace is not None and pod_trace.main.interface != tunnel.name:
                pod_trace = None
            yield _finding(ev, node, tunnel, encap, overhead, under, problems, pod_trace,
                           under_trace)


def _finding(ev: Evidence, node: NodeEvidence, tunnel: LinkInfo, encap: str, overhead: int,
             under: tuple[LinkInfo, Trace | None] | None, problems: list[_Problem],
             pod_trace: Trace | None, under_trace: Trace | None) -> Finding:
    name = node.name
    nic = under[0] if under else None
    evidence: list[EvidenceLine] = [ev_line(tunnel.source, tunnel.text)]
    if nic is not None:
        evidence.append(ev_line(nic.source, nic.text))
    for p in problems:
        if p.device is not tunnel:
            evidence.append(ev_line(p.device.source, p.device.text))
    for t in (pod_trace, under_trace):
        if t is not None:
            evidence.append(ev_line(None, f"trace: {trace_summary(t)}"))
    correct = min([tunnel.mtu or 0] + ([nic.mtu - overhead] if nic and nic.mtu else []))
    detail = [p.why + "." for p in problems]
    if pod_trace is not None:
        detail.append(f"Pod traffic to other nodes enters {tunnel.name} (traced to "
                      f"{pod_trace.packet.dst}); the encapsulated packet leaves "
                      f"{nic.name if nic else '?'}.")
    detail.append(f"The largest packet that fits end to end is {correct} bytes: anything bigger "
                  "needs the ICMP 'fragmentation needed' to come back, and when it does not "
                  "(filtered, or generated inside the tunnel), large transfers and TLS "
                  "handshakes hang while ping and small requests work.")
    cnis = cni_names(ev)
    fixes: list[Fix] = []
    for p in problems:
        if p.what == "tunnel":
            fixes.append(Fix(f"ip link set {tunnel.name} mtu {p.limit}", "now",
                             f"on {name}: {p.limit} + {overhead} = {p.limit + overhead} fits "
                             f"{nic.name if nic else 'the NIC'}'s {nic.mtu if nic else '?'}"))
        if p.what == "pods":
            bridge = p.device.master or (p.device.name if p.device.name in ("cni0", "cbr0")
                                         else None)
            if bridge:
                cmd = (f"ip link set {bridge} mtu {p.limit}; for i in $(ip -o link show master "
                       f"{bridge} | awk -F': ' '{{sub(/@.*/,\"\",$2); print $2}}'); do ip link "
                       f"set $i mtu {p.limit}; done")
            else:
                prefix = p.device.name[:4] if p.device.name.startswith("cali") else p.device.name[:3]
                cmd = (f"for i in $(ip -o link show | awk -F': ' '$2 ~ /^{prefix}/ "
                       f"{{sub(/@.*/,\"\",$2); print $2}}'); do ip link set $i mtu {p.limit}; "
                       "done")
            fixes.append(Fix(cmd, "now", f"on {name}: shrinks the host side; pods keep their "
                                         "eth0 mtu until recreated"))
    if "calico" in cnis or tunnel.name.endswith(".calico") or tunnel.name == "tunl0":
        fixes.append(Fix("kubectl patch installation.operator.tigera.io default --type merge "
                         f"-p '{{\"spec\":{{\"calicoNetwork\":{{\"mtu\":{correct}}}}}}}'  # or, "
                         "manifest installs: kubectl -n kube-system patch configmap calico-config"
                         f" --type merge -p '{{\"data\":{{\"veth_mtu\":\"{correct}\"}}}}'",
                         "permanent", "then restart calico-node and recreate the pods so their "
                         "veths get the new MTU"))
    elif "flannel" in cnis or tunnel.name.startswith("flannel."):
        fixes.append(Fix("kubectl -n kube-flannel rollout restart daemonset/kube-flannel-ds",
                         "permanent", f"flannel derives flannel.1's MTU ({correct}) from the "
                         "NIC's at startup; restart it after any NIC MTU change, then recreate "
                         "the pods"))
    elif "cilium" in cnis or tunnel.name.startswith("cilium"):
        fixes.append(Fix(f"helm upgrade cilium cilium/cilium -n kube-system --reuse-values "
                         f"--set MTU={correct + overhead}", "permanent",
                         "Cilium subtracts the tunnel overhead from this value itself"))
    return Finding(
        detector="D36", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{name}",
        title=f"Overlay MTU on {name}: {problems[0].why}",
        node=name, confidence=0.9 if pod_trace is not None else 0.8,
        why="interface MTUs from `ip link` compared along the path the trace takes (pod → "
            f"{tunnel.name} → {nic.name if nic else 'underlay'}); the simulator proves the path, "
            "not the sizes",
        evidence=tuple(evidence),
        explains=(f"large-packets-lost@{name}", "large-packets-lost@*", f"conn-error:TLS@{name}",
                  f"svc-unreachable:TLS@{name}"),
        fix=tuple(fixes), detail="\n".join(detail), trace=pod_trace or under_trace,
    )
