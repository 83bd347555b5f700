"""Helpers shared by the node-addressing/routing (catalog section A) and look-alike (section F)
detectors: which devices belong to the CNI, which addresses are a node's, where a log or
command output line came from, and tracing received packets.

Nothing here decides a diagnosis; it only answers questions about the evidence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from ipaddress import ip_address

from netsleuth.datapath.fib import Fib, table_name
from netsleuth.datapath.trace_model import Outcome, Trace, Verdict
from netsleuth.diagnose.detectors._clients import client_errors
from netsleuth.diagnose.detectors._cluster import (
    node_ips,
    pod_cidr_facts,
    pods_on_node,
    route_text,
)
from netsleuth.diagnose.detectors._common import cni_agent, datapath, is_service_ip, line, node_key
from netsleuth.diagnose.evidence import Evidence, NodeEvidence, log_node
from netsleuth.diagnose.findings import EvidenceLine
from netsleuth.model.net import (
    TABLE_MAIN,
    Address,
    IPAddress,
    IPNetwork,
    PolicyRule,
    Route,
    RouteType,
    RuleAction,
    Sysctls,
)
from netsleuth.model.node import NodeState
from netsleuth.model.source import SourceRef

# Devices a CNI plugin (or kube-proxy, or the container runtime) creates: their addresses and
# routes are the cluster's own plumbing, not the node's LAN.
CNI_DEVICE = re.compile(
    r"^(cali|tunl\d|vxlan[.-]|vxlan\d|flannel|cni\d|cbr\d|cilium_|lxc|weave|vethwe|datapath|"
    r"kube-bridge|kube-ipvs\d|kube-dummy|nodelocaldns|antrea-|genev_sys|ovn-|br-int|ovs-|"
    r"wireguard\.cali|egress\.calico|flannel-wg|veth|docker\d|nodelocal|kube-ovn|mynet|"
    r"azv|eni[0-9a-f]{6,})"
)
# Encapsulating devices of CNIs: a packet routed into one leaves the node inside an outer
# header addressed to another node.
TUNNEL_DEVICE = re.compile(
    r"^(tunl\d|vxlan\.calico|vxlan-v6\.calico|flannel\.\d+|flannel-v6\.\d+|flannel-wg|"
    r"cilium_vxlan|cilium_geneve|cilium_ipip|wireguard\.cali|weave|vxlan\d*|genev_sys|"
    r"antrea-tun0|ipip\d*|gre\d+)"
)
TUNNEL_KINDS = frozenset({"ipip", "vxlan", "geneve", "gre", "gretap", "wireguard", "sit"})
# VPN / overlay-network clients that are not part of the cluster.
VPN_DEVICE = re.compile(
    r"^(tailscale\d*|wg\d+|tun\d+|tap\d+|ppp\d+|zt[a-z0-9]+|nordlynx|proton\d*|ipsec\d*|"
    r"vti\d*|utun\d*|CloudflareWARP|nebula\d*|netbird|wt\d+|nm-|openvpn)",
)


def is_cni_device(name: str | None) -> bool:
    return bool(name and CNI_DEVICE.match(name))


def is_tunnel(state: NodeState, dev: str | None) -> bool:
    if not dev:
        return False
    if is_cni_device(dev) and TUNNEL_DEVICE.match(dev):
        return True
    return any(link.name == dev and (link.kind or "") in TUNNEL_KINDS for link in state.links)


def is_vpn_device(dev: str | None) -> bool:
    return bool(dev and VPN_DEVICE.match(dev))


# -- addresses ---------------------------------------------------------------------------------


def host_addresses(state: NodeState) -> list[Address]:
    """The node's own LAN addresses: not loopback, not link-local, not on a CNI device."""
    return [a for a in state.addresses
            if a.ifname != "lo" and not is_cni_device(a.ifname)
            and not a.ip.is_loopback and not a.ip.is_link_local]


def peer_ips(ev: Evidence, node: str) -> dict[IPAddress, str]:
    """Addresses of the other nodes (InternalIPs, and host addresses from their state)."""
    out: dict[IPAddress, str] = {}
    names = set(ev.facts.node_ips) | set(ev.nodes) | {k.name for k in ev.objects.nodes}
    for name in sorted(names):
        if ev.node_for(name) == node:
            continue
        for ip in node_ips(ev, name):
            out.setdefault(ip, name)
        other = ev.nodes.get(name)
        if other is not None:
            for a in host_addresses(other.state):
                out.setdefault(a.ip, name)
    own = {a.ip for a in ev.nodes[node].state.addresses} if node in ev.nodes else set()
    return {ip: n for ip, n in out.items() if ip not in own}


def interface_of(state: NodeState, ip: IPAddress) -> Address | None:
    for a in state.addresses:
        if a.ip == ip:
            return a
    return None


def connected_interface(state: NodeState, ip: IPAddress) -> Address | None:
    """The node's (non-CNI) address whose subnet holds `ip`, most specific first."""
    best: Address | None = None
    for a in host_addresses(state):
        if a.ip.version != ip.version or ip not in a.network:
            continue
        if a.network.prefixlen < a.network.max_prefixlen and (
                best is None or a.network.prefixlen > best.network.prefixlen):
            best = a
    return best


def default_routes(state: NodeState) -> list[Route]:
    return [r for r in state.routes if r.table == TABLE_MAIN and r.dst.prefixlen == 0
            and r.type == RouteType.UNICAST and r.dst.version == 4]


def service_cidr_facts(ev: Evidence) -> list[tuple[IPNetwork, str, SourceRef | None]]:
    return [(f.value, f.how, f.sources[0] if f.sources else None) for f in ev.facts.service_cidrs]


# -- sysctls -----------------------------------------------------------------------------------


def conf(sysctls: Sysctls, dev: str, key: str) -> int | None:
    """`net.ipv4.conf.DEV.KEY` as an int, None when not in the evidence."""
    value = sysctls.get(f"net.ipv4.conf.{dev.replace('.', '/')}.{key}")
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def with_sysctls(state: NodeState, changes: dict[str, str], why: str) -> NodeState:
    """The node with some sysctls changed (a what-if for a proposed fix)."""
    values = dict(state.sysctls.values)
    values.update(changes)
    return replace(state, sysctls=replace(state.sysctls, values=values),
                   assumptions=state.assumptions + (f"what-if: {why}",))


# -- tracing -----------------------------------------------------------------------------------

def trace(state: NodeState | NodeEvidence, dst: IPAddress, dport: int | None = None, *,
          proto: str = "tcp", src: IPAddress | None = None, iif: str | None = None) -> Trace:
    st = state.state if isinstance(state, NodeEvidence) else state
    return datapath(st).trace(dst=dst, dport=dport, proto=proto, src=src, iif=iif)


def rule_text(rule: PolicyRule) -> str:
    """A policy rule as `ip rule` prints it (JSON evidence is reformatted)."""
    if rule.raw and not rule.raw.startswith("{"):
        return rule.raw
    sel = ["not"] if rule.invert else []
    sel.append(f"from {rule.src or 'all'}")
    if rule.dst is not None:
        sel.append(f"to {rule.dst}")
    if rule.fwmark is not None:
        sel.append(f"fwmark {rule.fwmark:#x}" + (f"/{rule.fwmask:#x}"
                                                  if rule.fwmask != 0xFFFFFFFF else ""))
    if rule.iif:
        sel.append(f"iif {rule.iif}")
    if rule.oif:
        sel.append(f"oif {rule.oif}")
    if rule.action == RuleAction.LOOKUP:
        act = f"lookup {table_name(rule.table or 0)}"
        if rule.suppress_prefixlength is not None:
            act += f" suppress_prefixlength {rule.suppress_prefixlength}"
    elif rule.action == RuleAction.GOTO:
        act = f"goto {rule.goto}"
    else:
        act = rule.action.value
    return f"{rule.priority}:\t{' '.join(sel)} {act}"


def route_step_text(t: Trace) -> str:
    """The route decisions of a trace in words: `rule 5270 table 52: 10.42.0.0/16 dev x`
    (the re-route after DNAT too, when there was one)."""
    parts: list[str] = []
    for step in t.main.steps:
        if step.hook in ("route", "reroute"):
            where = " ".join(x for x in (step.hook, step.chain,
                                         f"table {step.table}" if step.table else "") if x)
            parts.append(f"{where}: {route_text(step.rule) if step.rule else step.action}")
    return "; ".join(parts) or t.main.verdict.value


def first_route_step(t: Trace) -> tuple[str, str, SourceRef | None] | None:
    """(table, route text, source) of the first route lookup in the trace's main outcome."""
    for step in t.main.steps:
        if step.hook == "route":
            return step.table, step.rule, step.source
    return None


def passes(t: Trace) -> bool:
    return t.verdict in (Verdict.SENT, Verdict.FORWARDED, Verdict.DELIVERED_LOCAL)


def outcome_summary(o: Outcome) -> str:
    where = f" out {o.interface}" if o.interface else ""
    nh = f" to {o.next_hop}" if o.next_hop else ""
    err = f" ({o.errno})" if o.errno else ""
    return f"{o.verdict.value}{where}{nh}{err}"


def trace_line(t: Trace, what: str) -> EvidenceLine:
    return EvidenceLine("trace", 0, f"{what}: {t.packet.endpoint('src') if t.packet.src else t.origin}"
                        f" → {t.packet.endpoint('dst')} on {t.node}: {route_step_text(t)} → "
                        f"{outcome_summary(t.main)}")


# -- text evidence -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    """One line of a log or of a command's output that matched a pattern."""

    node: str | None  # where it was written / where the command ran
    text: str
    source: SourceRef
    match: re.Match[str]
    pod: str | None = None
    kind: str = "output"  # "log" or the transcript block kind
    command: str | None = None

    @property
    def evidence(self) -> EvidenceLine:
        return line(self.source, self.text)


def scan(ev: Evidence, pattern: re.Pattern[str]) -> list[Hit]:
    """Every log line and command-output line matching `pattern`, each once, in input order.

    Log lines keep their pod and node; output lines of a transcript block carry the block's
    host (where the command ran)."""
    out: list[Hit] = []
    seen: set[tuple[str, int]] = set()
    for ln in ev.objects.logs:
        m = pattern.search(ln.text)
        if m is None:
            continue
        seen.add((ln.source.file, ln.source.line))
        out.append(Hit(log_node(ev, ln), ln.text, ln.source, m, ln.pod, "log"))
    events = {(e.source.file, e.source.line): e for e in ev.objects.events}
    for raw in ev.raw:
        for i, text in enumerate(raw.text.split("\n")):
            m = pattern.search(text)
            if m is None:
                continue
            ref = SourceRef(raw.source.file, raw.source.line + i if raw.source.line else i + 1)
            if (ref.file, ref.line) in seen:
                continue
            seen.add((ref.file, ref.line))
            node = ev.node_for(raw.host)
            event = events.get((ref.file, ref.line))
            pod = None
            if event is not None:
                # An event is about its object's node, not the host kubectl ran on.
                pod = (event.object or "").split("/")[-1] or None
                node = (ev.pod_node(event.namespace, pod) if pod else None) \
                    or ev.node_for(event.source_host)
            out.append(Hit(node, text, ref, m, pod, raw.kind, raw.command))
    return out


def cluster_node(ev: Evidence, name: str | None) -> bool:
    """Whether `name` is one of the cluster's nodes (not a laptop or a bastion)."""
    return name is not None and (name in ev.nodes or name in ev.facts.node_ips
                                 or any(k.name == name for k in ev.objects.nodes))


def first_ip(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        return ip_address(text.strip("[]"))
    except ValueError:
        return None


def unique_node_of_ip(ev: Evidence, ip: IPAddress) -> str | None:
    """The node that has `ip` as its address, when exactly one does (duplicates say None)."""
    owners = {name for name in set(ev.facts.node_ips) | set(ev.nodes)
              if ip in node_ips(ev, name)
              or (name in ev.nodes and interface_of(ev.nodes[name].state, ip) is not None)}
    if len(owners) == 1:
        return next(iter(owners))
    if not owners:
        return ev.node_of_ip(ip)
    return None


def short(items: Iterable[str], n: int = 4) -> str:
    lst = list(items)
    return ", ".join(lst[:n]) + (f" (+{len(lst) - n} more)" if len(lst) > n else "")


def iter_nodes(ev: Evidence) -> Iterator[NodeEvidence]:
    for name in sorted(ev.nodes):
        yield ev.nodes[name]



# -- symptom keys ------------------------------------------------------------------------------

TIMEOUTS = frozenset({"TIMEOUT", "ETIMEDOUT"})


def error_keys(ev: Evidence, node: str, errnos: Iterable[str], *,
               pods_only: bool = False,
               dst: Callable[[IPAddress | None], bool] | None = None) -> list[str]:
    """The symptom keys the log/client/probe detectors give to errors seen on `node` with one
    of `errnos`.

    With `pods_only`, errors of host clients (commands at the node's prompt, hostNetwork
    pods such as the CNI agent or kube-proxy) are left out: their packets are locally
    generated, not forwarded. `dst` keeps only errors towards destinations it accepts."""
    wanted = set(errnos)
    host_pods = {p.name for p in ev.objects.pods if p.host_network}
    keys: list[str] = []
    for f in failures(ev, node):
        if f.errno not in wanted or (dst is not None and not dst(f.dst)):
            continue
        if pods_only:
            name = (f.pod or "").split("/")[-1]
            if not name or name in host_pods or cni_agent(name) or name.startswith(
                    ("kube-proxy", "kube-apiserver", "etcd")):
                continue
        keys.extend(f.keys)
    return list(dict.fromkeys(keys))


# -- packets worth tracing ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """A packet a detector traces: from `src` arriving on `iif` (None: the host itself)."""

    what: str
    dst: IPAddress
    dport: int | None = None
    src: IPAddress | None = None
    iif: str | None = None
    proto: str = "tcp"
    source: SourceRef | None = None  # the evidence line the packet's addresses come from

    def run(self, state: NodeState | NodeEvidence) -> Trace:
        return trace(state, self.dst, self.dport, proto=self.proto, src=self.src, iif=self.iif)


_MAIN_ONLY: dict[int, tuple[NodeState, Fib]] = {}


def _route_dev(state: NodeState, ip: IPAddress) -> str | None:
    """The device the main table attaches `ip` to: where a pod with that address is plugged
    in (policy rules are left out on purpose: they may send even local pods elsewhere)."""
    hit = _MAIN_ONLY.get(id(state))
    if hit is None or hit[0] is not state:
        if len(_MAIN_ONLY) > 64:
            _MAIN_ONLY.clear()
        hit = (state, Fib(state.routes, (PolicyRule(priority=0, table=TABLE_MAIN),),
                          state.addresses, ip.version))
        _MAIN_ONLY[id(state)] = hit
    result = hit[1].lookup(ip)
    return result.route.dev if result.ok and result.route is not None else None


def local_pod_sources(ev: Evidence, node: NodeEvidence) -> list[tuple[IPAddress, str, SourceRef | None]]:
    """(pod IP, the device its packets arrive on, evidence) for pods running on `node`: from
    the pod list, else from the node's own per-pod (`/32 dev caliX`) or bridge routes."""
    state = node.state
    own = {a.ip for a in state.addresses}
    out: list[tuple[IPAddress, str, SourceRef | None]] = []
    for pod in pods_on_node(ev, node.name):
        if pod.host_network:
            continue
        for ip in pod.ips:
            if ip.version != 4 or ip in own:
                continue
            dev = _route_dev(state, ip)
            if dev and is_cni_device(dev) and not is_tunnel(state, dev):
                out.append((ip, dev, pod.source))
    if out:
        return out
    for r in state.routes:
        if (r.table != TABLE_MAIN or r.type != RouteType.UNICAST or r.gateway is not None
                or r.dst.version != 4 or r.dst.prefixlen < 16 or not is_cni_device(r.dev)
                or is_tunnel(state, r.dev) or r.dev is None):
            continue
        if r.dst.prefixlen == 32:
            out.append((r.dst.network_address, r.dev, r.source))
            continue
        hosts = [h for h in (r.dst.network_address + 2, r.dst.network_address + 3)
                 if h not in own and h != r.prefsrc]
        if hosts:
            out.append((hosts[0], r.dev, r.source))
    return out


def remote_pod_targets(ev: Evidence, node: NodeEvidence) -> list[tuple[IPAddress, SourceRef | None]]:
    """Pod addresses on other nodes: from the pod list, else from the node's routes to other
    nodes' pod blocks (via a tunnel device, or via another node's address)."""
    state = node.state
    out: list[tuple[IPAddress, SourceRef | None]] = []
    shared: dict[IPAddress, int] = {}
    for pod in ev.objects.pods:
        for ip in pod.ips:
            shared[ip] = shared.get(ip, 0) + 1
    for pod in ev.objects.pods:
        if pod.host_network or not pod.node or ev.node_for(pod.node) == node.name:
            continue
        if cni_agent(pod.name) or (pod.name or "").startswith(("kube-proxy", "kube-apiserver",
                                                               "etcd", "kube-scheduler",
                                                               "kube-controller-manager")):
            continue  # hostNetwork pods: their IP is their node's
        # An address several pods share is a node address (hostNetwork pods).
        out.extend((ip, pod.source) for ip in pod.ips if ip.version == 4
                   and shared.get(ip, 0) == 1 and unique_node_of_ip(ev, ip) is None)
    if out:
        return out[:4]
    peers = peer_ips(ev, node.name)
    cidrs = [c for c, _, _ in pod_cidr_facts(ev)]
    for r in state.routes:
        if r.table != TABLE_MAIN or r.type != RouteType.UNICAST or r.dst.version != 4:
            continue
        if r.dst.prefixlen == 0 or r.dst.prefixlen == 32:
            continue
        if is_cni_device(r.dev) and not is_tunnel(state, r.dev):
            continue  # this node's own pods (bridge or veth)
        in_pods = any(r.dst.subnet_of(c) for c in cidrs if c.version == 4)
        via_peer = r.gateway is not None and r.gateway in peers
        if in_pods or via_peer or is_tunnel(state, r.dev) or r.protocol in ("bird", "bgp"):
            out.append((r.dst.network_address + 1, r.source))
    return out[:4]


def remote_service_targets(ev: Evidence, node: NodeEvidence) -> list[tuple[IPAddress, int, SourceRef | None]]:
    """Service ClusterIP:port whose endpoints are all elsewhere (a pod client's packet to it is
    DNATed and forwarded)."""
    own = {a.ip for a in node.state.addresses}
    out: list[tuple[IPAddress, int, SourceRef | None]] = []
    for svc in ev.objects.services:
        if svc.cluster_ip is None or not svc.ports:
            continue
        eps = [e for e in ev.objects.endpoints if e.service == svc.name
               and e.namespace in (svc.namespace, None)]
        ips = [a.ip for e in eps for a in e.ready_addresses if a.ip is not None]
        if not ips:
            shown = [first_ip(x.rsplit(":", 1)[0]) for x in svc.endpoints]
            ips = [ip for ip in shown if ip is not None]
        if ips and not any(ip in own for ip in ips):
            out.append((svc.cluster_ip, svc.ports[0].port, svc.source))
    return out[:4]


def cluster_addresses(ev: Evidence, node: NodeEvidence) -> list[tuple[IPAddress, str]]:
    """Addresses of `node` that other nodes actually send to, and why we think so: its
    InternalIP / --node-ip, the CNI's tunnel endpoint annotations, next hops of the other
    nodes' routes."""
    own = {a.ip for a in node.state.addresses}
    out: dict[IPAddress, str] = {}
    for ip in node_ips(ev, node.name):
        if ip in own:
            out.setdefault(ip, "the node's InternalIP")
    for k in ev.objects.nodes:
        if ev.node_for(k.name) != node.name:
            continue
        for key, value in k.annotations.items():
            if key in ("projectcalico.org/IPv4Address", "flannel.alpha.coreos.com/public-ip",
                       "projectcalico.org/IPv6Address", "io.cilium.network.ipv4-cilium-host"):
                found = first_ip(value.split("/")[0])
                if found is not None and found in own:
                    out.setdefault(found, f"annotation {key}")
    for peer in ev.nodes.values():
        if peer.name == node.name:
            continue
        for r in peer.state.routes:
            for hop in r.nexthops:
                if hop.gateway is not None and hop.gateway in own:
                    out.setdefault(hop.gateway, f"next hop of {peer.name}'s route {r.dst}")
    return list(out.items())


def on_node(ev: Evidence, node: str, ip: IPAddress | None) -> bool:
    """Whether traffic to `ip` ends on `node`: one of its addresses, a pod running there, or a
    Service IP with an endpoint there."""
    if ip is None:
        return False
    st = ev.nodes.get(node)
    if ip in node_ips(ev, node) or (st is not None and interface_of(st.state, ip) is not None):
        return True
    pods = {p_ip for p in pods_on_node(ev, node) for p_ip in p.ips}
    if ip in pods:
        return True
    for svc in ev.objects.services:
        if ip not in svc.cluster_ips:
            continue
        for e in ev.objects.endpoints:
            if e.service == svc.name and e.namespace in (svc.namespace, None) and any(
                    a.ip in pods or (a.node and ev.node_for(a.node) == node)
                    for a in e.ready_addresses):
                return True
    return False


@dataclass(frozen=True, slots=True)
class Failure:
    """A client error seen on a node, with the destination it was for and the symptom keys the
    log/client/probe symptom detectors give it."""

    node: str
    dst: IPAddress | None
    errno: str
    keys: tuple[str, ...]
    evidence: EvidenceLine
    pod: str | None = None


def failures(ev: Evidence, node: str | None = None) -> list[Failure]:
    """Every client error of the logs, the client commands (curl, nc, dig, ...) and the
    probes (on `node` when given), with its destination."""
    out: list[Failure] = []
    for e in client_errors(ev):
        where = node_key(e.node)
        if node is not None and where != node:
            continue
        keys = (f"{'svc-unreachable' if is_service_ip(ev, e.dst_ip) else 'conn-error'}:"
                f"{e.errno}@{where}",) + tuple(e.keys())
        out.append(Failure(where, e.dst_ip, e.errno, tuple(dict.fromkeys(keys)), e.evidence,
                           e.pod))
    for probe in ev.probes:
        if probe.errno is None:
            continue
        where = ev.node_for(probe.host) or "?"
        if node is not None and where != node:
            continue
        dst = first_ip(probe.target)
        key = "svc-unreachable" if is_service_ip(ev, dst) else "conn-error"
        out.append(Failure(where, dst, probe.errno, (f"{key}:{probe.errno}@{where}",),
                           line(probe.source, probe.text)))
    return out
