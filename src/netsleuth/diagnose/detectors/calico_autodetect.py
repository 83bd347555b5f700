"""Failure mode 33: Calico's IP autodetection chose the wrong (or no) interface.

calico-node picks the node's address once at startup (default method `first-found`: the first
valid address of the first interface not on its exclude list) and publishes it (Calico Node
`spec.bgp.ipv4Address`, annotation `projectcalico.org/IPv4Address`); BGP peers and VXLAN/IPIP
tunnels use it. On multi-NIC hosts the first interface is often the wrong one: a NAT NIC with
the same address on every VM, a docker-compose bridge (`br-…`, 172.18.0.1 on every host), a
management network. A peer then sends its BGP SYNs and encapsulated packets to an address that
is its own (delivered locally) or that leaves through its default gateway, and cross-node pod
traffic dies while same-node traffic works. The proof traces the peers' packets to the chosen
address through their routing tables; the fix (`IP_AUTODETECTION_METHOD`) is verified by
re-tracing to the node's InternalIP.

When no interface matches a configured regex, calico-node exits: `Unable to auto-detect an
IPv4 address using interface regexes [...]: no valid host interfaces found`; the node's real
interface names (from `ip addr`) show what the regex should have been.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cluster import POD_IFACE, k8s_nodes, node_ips
from netsleuth.diagnose.detectors._cni_dns import (
    TUNNEL_NAME,
    cluster_address,
    deciding_step_lines,
    ev_line,
    find_line,
    links_of,
    matching_logs,
    trace_local,
    trace_summary,
)
from netsleuth.diagnose.evidence import Evidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import parse_ip
from netsleuth.model.net import IPAddress

KIND = "calico-autodetect-wrong-address"
AUTODETECTED = re.compile(r"Using autodetected IPv4 address on interface (\S+): ([0-9.]+)/(\d+)")
NO_IFACE = re.compile(r"Unable to auto-detect an IPv4 address(?: using interface regexes "
                      r"\[([^\]]*)\])?: (?:no valid host interfaces found|no valid IPv4 addresses "
                      r"found on the host interfaces)")
ANNOTATION = "projectcalico.org/IPv4Address"
# Interfaces that never carry node-to-node traffic (container bridges, VPNs, virtualisation).
NOT_CLUSTER = re.compile(r"^(docker\d*|br-[0-9a-f]{12}|virbr\d+|lxcbr\d+|podman\d+|cni\d+|"
                         r"wg\d+|tun\d+|tailscale\d+|zt\w+|kube-ipvs0|nodelocaldns)$")


@dataclass(frozen=True, slots=True)
class _Chosen:
    node: str
    ip: IPAddress
    iface: str | None
    evidence: EvidenceLine


def _chosen(ev: Evidence) -> dict[str, _Chosen]:
    out: dict[str, _Chosen] = {}
    for ln, m in matching_logs(ev, AUTODETECTED):
        node = log_node(ev, ln)
        ip = parse_ip(m.group(2))
        if node and ip is not None:
            out[node] = _Chosen(node, ip, m.group(1), ev_line(ln.source, ln.text))
    for name, k in k8s_nodes(ev).items():
        value = k.annotations.get(ANNOTATION)
        ip = parse_ip((value or "").split("/")[0])
        if name in out or ip is None:
            continue
        quote = find_line(ev, re.compile(re.escape(ANNOTATION) + r"\W+" + re.escape(str(ip))))
        out[name] = _Chosen(name, ip, None, quote or ev_line(k.source, f"{ANNOTATION}: {value}"))
    for name in ev.nodes:
        if name in out:
            continue
        for link in links_of(ev, name).values():
            if link.name == "vxlan.calico" and link.local is not None:
                out[name] = _Chosen(name, link.local, link.lower,
                                    ev_line(link.detail_source, f"{link.name}: {link.detail}"))
    for c in list(out.values()):
        if c.iface is None and c.node in ev.nodes:
            iface = next((a.ifname for a in ev.nodes[c.node].state.addresses if a.ip == c.ip), None)
            out[c.node] = _Chosen(c.node, c.ip, iface, c.evidence)
    return out


def _encap(ev: Evidence) -> tuple[str, int]:
    """What peers send to the chosen address: VXLAN (UDP 4789) or BGP (TCP 179)."""
    for name in ev.nodes:
        if "vxlan.calico" in links_of(ev, name):
            return "udp", 4789
    return "tcp", 179


def _unreached(t: Trace, target: IPAddress) -> str | None:
    o = t.main
    if o.verdict == Verdict.DELIVERED_LOCAL:
        return f"{target} is the peer's own address too: delivered locally"
    if o.verdict in (Verdict.UNROUTABLE, Verdict.DROPPED, Verdict.REJECTED):
        return o.verdict.value
    if o.next_hop and o.next_hop != str(target):
        return f"leaves {o.interface} via the gateway {o.next_hop}"
    return None


def _calico_ds(ev: Evidence) -> tuple[str, bool]:
    """(namespace of calico-node, installed by the tigera operator?)."""
    for p in ev.objects.pods:
        if p.name and p.name.startswith("calico-node"):
            ns = p.namespace or "kube-system"
            return ns, ns == "calico-system"
    return "kube-system", False


@detector("D33", title="Calico IP autodetection chose the wrong (or no) interface",
          needs=("logs", "k8s-nodes", "links"), mode="33")
def calico_autodetect(ev: Evidence) -> Iterator[Finding]:
    yield from _no_interface(ev)
    chosen = _chosen(ev)
    if not chosen:
        return
    by_ip: dict[IPAddress, list[str]] = {}
    for c in chosen.values():
        by_ip.setdefault(c.ip, []).append(c.node)
    proto, port = _encap(ev)
    done: set[str] = set()
    for name in sorted(chosen, key=lambda n: (len(by_ip[chosen[n].ip]) == 1, n)):
        if name in done:
            continue
        c = chosen[name]
        group = by_ip[c.ip]
        internal = node_ips(ev, name)
        wrong_iface = bool(c.iface and NOT_CLUSTER.match(c.iface))
        mismatch = bool(internal) and c.ip not in internal
        if not (mismatch or len(group) > 1):
            continue
        # Peers' view: trace what they send to the chosen address.
        bad: list[tuple[str, Trace, str]] = []
        for peer in sorted(ev.nodes):
            if peer in group and len(group) == 1:
                continue
            if peer == name:
                continue
            t = trace_local(ev.nodes[peer].state, c.ip, port, proto)
            why = _unreached(t, c.ip)
            if why is not None:
                bad.append((peer, t, why))
        if not (bad or wrong_iface or len(group) > 1):
            continue
        done.update(group)
        yield _finding(ev, name, c, group, internal, bad, proto, port, wrong_iface)


def _finding(ev: Evidence, name: str, c: _Chosen, group: list[str],
             internal: list[IPAddress], bad: list[tuple[str, Trace, str]], proto: str,
             port: int, wrong_iface: bool) -> Finding:
    ns, operator = _calico_ds(ev)
    evidence: list[EvidenceLine] = [c.evidence]
    detail = [f"calico-node on {name} uses {c.ip}" + (f" ({c.iface})" if c.iface else "")
              + " as the node's address" + (f"; its InternalIP is {internal[0]}." if internal
                                              else ".")]
    if len(group) > 1:
        detail.append(f"{len(group)} nodes publish the same address ({', '.join(group)}).")
    if wrong_iface:
        detail.append(f"{c.iface} is a container/virtual bridge, never the node-to-node network.")
    trace = None
    for peer, t, why in bad[:2]:
        if trace is None:
            trace = t
            evidence.extend(deciding_step_lines(t, 1))
        evidence.append(ev_line(None, f"trace from {peer}: {trace_summary(t)}"))
        detail.append(f"{peer} → {c.ip} ({proto.upper()} {port}): {why}.")
    # The right interface: the one holding the InternalIP.
    iface = None
    node = ev.nodes.get(name)
    if node is not None:
        addr = cluster_address(ev, node)
        if addr is not None and addr.ip != c.ip:
            iface = addr.ifname
    fixes: list[Fix] = []
    method = f"interface={iface}" if iface else "kubernetes-internal-ip"
    verified = ""
    if internal and bad:
        peer = bad[0][0]
        t = trace_local(ev.nodes[peer].state, internal[0], port, proto)
        if t.verdict == Verdict.SENT and t.main.next_hop == str(internal[0]):
            verified = (f" Verified by simulation: {peer} then reaches {internal[0]}:{port} "
                        f"directly out {t.main.interface}.")
    if operator:
        spec = ('{"spec":{"calicoNetwork":{"nodeAddressAutodetectionV4":{"interface":"' + iface + '"}}}}'
                if iface else
                '{"spec":{"calicoNetwork":{"nodeAddressAutodetectionV4":{"kubernetes":"NodeInternalIP"}}}}')
        fixes.append(Fix(f"kubectl patch installation.operator.tigera.io default --type merge -p '{spec}'",
                         "now", "the operator rolls calico-node out again with the new method."
                         + verified))
    else:
        fixes.append(Fix(f"kubectl -n {ns} set env daemonset/calico-node "
                         f"IP_AUTODETECTION_METHOD={method}", "now",
                         "calico-node re-detects on restart and republishes the address."
                         + verified))
        fixes.append(Fix(f"set IP_AUTODETECTION_METHOD={method} (or kubernetes-internal-ip) in "
                         "the calico-node env of the manifest you deploy", "permanent",
                         "survives re-applying the Calico manifest"))
    proven = bool(bad)
    return Finding(
        detector="D33", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{name}",
        title=(f"Calico on {', '.join(group)} autodetected the same address {c.ip}"
               if len(group) > 1 else f"Calico on {name} autodetected {c.ip}, not its InternalIP")
              + (f" ({c.iface})" if c.iface else ""),
        node=name, confidence=0.95 if proven else 0.75,
        why=("proven by tracing the peers' " + ("VXLAN packets" if proto == "udp" else "BGP SYNs")
             + f" to {c.ip} through their routing tables") if proven else
            "the published address differs from the InternalIP / is shared by several nodes; no "
            "peer's routing table is in the evidence to trace it",
        evidence=tuple(evidence),
        explains=tuple(x for n in group for x in (
            f"bgp-not-established@{n}", f"cni-agent-not-ready@{n}")) + (
            "conn-error:TIMEOUT@*", "conn-error:ETIMEDOUT@*", "svc-unreachable:TIMEOUT@*",
            "svc-unreachable:ETIMEDOUT@*", "dns-errors@*"),
        fix=tuple(fixes), detail="\n".join(detail), trace=trace,
    )


def _no_interface(ev: Evidence) -> Iterator[Finding]:
    seen: set[str] = set()
    for ln, m in matching_logs(ev, NO_IFACE):
        node = log_node(ev, ln) or "?"
        if node in seen:
            continue
        seen.add(node)
        regexes = m.group(1)
        names = []
        if node in ev.nodes:
            names = sorted({a.ifname for a in ev.nodes[node].state.addresses
                            if a.ifname != "lo" and not TUNNEL_NAME.match(a.ifname)
                            and not POD_IFACE.match(a.ifname) and a.ip.version == 4})
        evidence = [ev_line(ln.source, ln.text)]
        detail = f"calico-node exits at startup: no interface matches {regexes or 'its method'}."
        if names:
            detail += f" {node}'s interfaces with an IPv4 address: {', '.join(names)}."
        ns, _ = _calico_ds(ev)
        target = next((n for n in names if not NOT_CLUSTER.match(n)), None)
        yield Finding(
            detector="D33", kind="calico-autodetect-failed", role=Role.CAUSE,
            key=f"cause:calico-autodetect-failed@{node}",
            title=f"calico-node on {node} cannot autodetect its address"
                  + (f" (regexes [{regexes}])" if regexes else ""),
            node=None if node == "?" else node, confidence=0.9,
            why="calico-node's own startup error: the autodetection method matches no interface",
            evidence=tuple(evidence),
            explains=(f"cni-agent-not-ready@{node}", f"pod-no-ip@{node}", f"sandbox-churn@{node}"),
            fix=(Fix(f"kubectl -n {ns} set env daemonset/calico-node IP_AUTODETECTION_METHOD="
                     + (f"interface={target}" if target else "kubernetes-internal-ip"), "now",
                     "a method that matches the node's real NIC"),),
            detail=detail,
        )
