"""The packets the netfilter detectors (B11-B14, C18) trace through a node's real state.

A node forwards pod traffic: from its own pods to pods on other nodes, from other nodes to
its pods, from its pods to Services (DNATed in PREROUTING, then forwarded), and from outside
to a NodePort whose endpoint is elsewhere. It also receives the overlay and control-plane
traffic of its peers (VXLAN, BGP, kubelet). Each of those is a `Flow`; `trace_flow` runs it
through the simulator, and `blocked` says which step of the trace stopped it.

Which interface a packet arrives on is taken from the node's own routes: the route back to
the packet's source (the kernel's reverse-path view; a pod's packets come in on the device of
the route to that pod). Pod addresses come from the Pod objects, else from the node's per-pod
routes (`POD_IP dev caliXXXX`: a pod with that address is plugged in there); only when neither
shows one is an address picked inside a pod subnet the node routes directly onto a pod bridge,
and the flow says it was assumed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from netsleuth.datapath.hooks import Hook
from netsleuth.datapath.trace_model import Outcome, Step, Trace, Verdict
from netsleuth.diagnose.detectors._cluster import (
    POD_BRIDGE,
    POD_IFACE,
    VETH_IFACE,
    pod_cidrs,
    pods_on_node,
    route_text,
)
from netsleuth.diagnose.detectors._common import datapath
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.model.k8s import ClusterFacts, Pod
from netsleuth.model.net import (
    TABLE_MAIN,
    IPAddress,
    IPNetwork,
    Route,
    RouteType,
    default_policy_rules,
)
from netsleuth.model.netfilter import Rule, Ruleset
from netsleuth.model.node import NodeState

OVERLAY_IFACE = re.compile(r"^(flannel\.\d+|flannel-wg|vxlan\.calico|vxlan-v6\.calico|tunl\d+|"
                           r"cilium_vxlan|cilium_geneve|weave|wireguard\.cali|antrea-gw0|"
                           r"genev_sys_\d+|kube-ipvs0|nodelocaldns)$")
HOOKS = {h.value for h in Hook}
NETFILTER_TABLES = frozenset({"raw", "mangle", "filter", "security", "nat"})


def real_rules(node: NodeEvidence) -> bool:
    """The node's own iptables evidence (not kube-proxy rules rebuilt or shared)."""
    return "iptables" in node.has and bool(node.state.ruleset.tables)


@dataclass(frozen=True, slots=True)
class Flow:
    kind: str  # pod-pod-out, pod-pod-in, pod-svc, nodeport, peer-in
    label: str
    src: IPAddress
    dst: IPAddress
    dport: int | None
    proto: str
    iif: str | None
    assumed: str = ""  # what was assumed to build the flow (a synthetic pod address)
    service: str | None = None  # "ns/name" for Service flows


def route_dev(node: NodeEvidence, ip: IPAddress) -> str | None:
    """The device of the route the node uses towards `ip` (table main and its rules)."""
    result = datapath(node.state).fibs[ip.version].lookup(ip, iif="lo")
    if not result.ok or result.route is None:
        return None
    if result.route.type != RouteType.UNICAST:
        return None
    return result.route.dev


def trace_flow(node: NodeEvidence | NodeState, flow: Flow) -> Trace:
    state = node.state if isinstance(node, NodeEvidence) else node
    return datapath(state).trace(dst=flow.dst, dport=flow.dport, proto=flow.proto, src=flow.src,
                                 iif=flow.iif)


# -- where pods are ------------------------------------------------------------------------


def _pod_port(pod: Pod | None, default: int = 80) -> int:
    if pod is not None:
        for ctr in pod.containers:
            for spec in ctr.ports:
                num = spec.split("/", 1)[0]
                if num.isdigit():
                    return int(num)
    return default


def _k8s_pod_cidrs(ev: Evidence, node: str) -> list[IPNetwork]:
    for k8s in ev.objects.nodes:
        if ev.node_for(k8s.name) == node:
            return list(k8s.pod_cidrs)
    return []


def _in_any(ip: IPAddress, nets: Iterable[IPNetwork]) -> bool:
    return any(ip.version == n.version and ip in n for n in nets)


def _assumed_host(net: IPNetwork, avoid: set[IPAddress]) -> IPAddress | None:
    if net.prefixlen >= net.max_prefixlen - 1:
        return net.network_address if net.prefixlen == net.max_prefixlen else None
    for offset in (10, 20, 2, 3):
        if offset < net.num_addresses - 1:
            cand = net.network_address + offset
            if cand not in avoid:
                return cand
    return None


def pod_route(node: NodeEvidence, ip: IPAddress) -> Route | None:
    """The route to `ip` when a pod with that address could be plugged into this node: a
    directly connected route (no gateway) on a pod interface or bridge. A route out of a NIC or
    a tunnel, or via a gateway, leads away from the node: no local pod sits behind it."""
    result = datapath(node.state).fibs[ip.version].lookup(ip, iif="lo")
    r = result.route
    if not result.ok or r is None or r.type != RouteType.UNICAST or r.gateway is not None:
        return None
    return r if r.dev is not None and POD_IFACE.match(r.dev) else None


def local_pods(ev: Evidence, node: NodeEvidence, limit: int = 2) -> list[tuple[IPAddress, Pod | None, str]]:
    """(address, pod, assumption) of pods on `node` with a pod-network address: the Pod
    objects', else the addresses of the node's per-pod routes (seen: the assumption is ""),
    else one address picked in the node's pod subnet (assumed, and said so)."""
    own = {a.ip for a in node.state.addresses}
    out: list[tuple[IPAddress, Pod | None, str]] = []
    node_addrs = {ip for ips in ev.facts.node_ips.values() for ip in ips}
    for pod in pods_on_node(ev, node.name):
        if pod.host_network or not pod.ips:
            continue
        ip = pod.ips[0]
        if ip in own or ip.version != 4 or ip in node_addrs or ev.node_of_ip(ip) is not None:
            continue
        if pod_route(node, ip) is None:
            continue
        out.append((ip, pod, ""))
        if len(out) >= limit:
            return out
    if out:
        return out
    for net, route in _local_pod_routes(ev, node):
        if net.prefixlen == net.max_prefixlen:
            ip = net.network_address
            if ip not in own and ip not in node_addrs and ev.node_of_ip(ip) is None:
                out.append((ip, None, ""))
                if len(out) >= limit:
                    return out
            continue
        if out:
            break  # addresses the node routes to one pod each beat picked ones
        cand = _assumed_host(net, own)
        if cand is not None:
            out.append((cand, None, f"a pod address in {net} (the node's pod subnet, "
                                    f"`{route_text(route)}`) was assumed: {cand}"))
            break
    return out


def _local_pod_subnets(ev: Evidence, node: NodeEvidence) -> list[IPNetwork]:
    return [net for net, _ in _local_pod_routes(ev, node)]


def _local_pod_routes(ev: Evidence, node: NodeEvidence) -> list[tuple[IPNetwork, Route]]:
    """The node's own pod addresses and subnets with the route that shows each, as its main
    table holds them: per-pod host routes on veth-like devices first (Calico/Cilium/routed
    CNIs install `POD_IP dev caliXXXX scope link` only while a pod with that address is
    plugged in), then directly connected subnets on a pod bridge (`10.244.1.0/24 dev cni0`),
    the Node's podCIDR first among them. A podCIDR the node routes elsewhere (the default
    route's NIC, a gateway) is not where its pods are: Calico's IPAM, for one, ignores it."""
    cidrs = pod_cidrs(ev)
    hosts: list[tuple[IPNetwork, Route]] = []
    subnets: list[tuple[IPNetwork, Route]] = []
    for net in _k8s_pod_cidrs(ev, node.name):
        if net.version != 4 or net.prefixlen == net.max_prefixlen:
            continue
        r = pod_route(node, net.network_address + 1)
        if r is not None and r.dst.prefixlen <= net.prefixlen and POD_BRIDGE.match(r.dev or ""):
            subnets.append((net, r))
    for r in node.state.routes:
        if r.table != TABLE_MAIN or r.type != RouteType.UNICAST or r.dev is None:
            continue
        if r.dst.version != 4 or r.dst.prefixlen < 8 or r.gateway is not None:
            continue
        if not POD_IFACE.match(r.dev):
            continue
        if cidrs and not any(r.dst.subnet_of(c) for c in cidrs if
                             c.version == r.dst.version):
            continue
        if r.dst.prefixlen == r.dst.max_prefixlen:
            if VETH_IFACE.match(r.dev) and all(r.dst != n for n, _ in hosts):
                hosts.append((r.dst, r))
        elif POD_BRIDGE.match(r.dev) and all(r.dst != n for n, _ in subnets):
            subnets.append((r.dst, r))
    return hosts + subnets


def _supernets(nets: list[IPNetwork]) -> list[IPNetwork]:
    """Without a known pod range, sibling subnets of the node's own pod subnet (same /16) are
    taken as other nodes' pod subnets (host-gw, static routes, BGP)."""
    out: list[IPNetwork] = []
    for n in nets:
        if n.version == 4 and n.prefixlen >= 16:
            sup = n.supernet(new_prefix=16)
            if sup not in out:
                out.append(sup)
    return out


def remote_pods(ev: Evidence, node: NodeEvidence, limit: int = 2
                ) -> list[tuple[IPAddress, str | None, Pod | None, str]]:
    """(address, node, pod, assumption) of pods on other nodes that this node routes."""
    own = {a.ip for a in node.state.addresses}
    local_nets = _local_pod_subnets(ev, node)
    out: list[tuple[IPAddress, str | None, Pod | None, str]] = []
    seen_nodes: set[str | None] = set()
    node_addrs = {ip for ips in ev.facts.node_ips.values() for ip in ips}
    ranges = pod_cidrs(ev) or _supernets(local_nets)
    for pod in ev.objects.pods:
        other = ev.node_for(pod.node) if pod.node else None
        if other == node.name or pod.host_network or not pod.ips:
            continue
        ip = pod.ips[0]
        if ip in own or ip.version != 4 or _in_any(ip, local_nets):
            continue
        if ip in node_addrs or ev.node_of_ip(ip) is not None or (
                ranges and not _in_any(ip, ranges)):
            continue  # a hostNetwork pod (tables do not say so): it has its node's address
        if other in seen_nodes:
            continue
        if route_dev(node, ip) is None:
            continue
        seen_nodes.add(other)
        out.append((ip, other, pod, ""))
        if len(out) >= limit:
            return out
    if out:
        return out
    cidrs = pod_cidrs(ev) or _supernets(local_nets)
    for r in node.state.routes:
        if r.table != TABLE_MAIN or r.type != RouteType.UNICAST or r.dst.prefixlen == 0:
            continue
        if r.dst.version != 4 or any(r.dst == n for n in local_nets):
            continue
        if r.dev is None or (POD_IFACE.match(r.dev) and r.gateway is None):
            continue
        overlay = OVERLAY_IFACE.match(r.dev) is not None
        in_cidr = bool(cidrs) and any(r.dst.subnet_of(c) for c in cidrs
                                      if c.version == r.dst.version)
        if not (in_cidr or (overlay and not cidrs)):
            continue
        cand = _assumed_host(r.dst, own)
        if cand is None:
            continue
        out.append((cand, None, None, f"a pod address in {r.dst} (routed {route_text(r)}) was "
                                       f"assumed: {cand}"))
        if len(out) >= limit:
            break
    return out


# -- Services as kube-proxy programs them --------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceTarget:
    name: str  # "ns/name" or "ns/name:port"
    ip: IPAddress
    port: int
    proto: str
    node_port: int | None = None


_COMMENT_SVC = re.compile(r"^\"?(?P<name>[\w.-]+/[\w.-]+(?::[\w.-]+)?) cluster IP\"?$")


def services_in_rules(ruleset: Ruleset) -> list[ServiceTarget]:
    """ClusterIP dispatch rules of kube-proxy's nat KUBE-SERVICES chain."""
    chain = ruleset.chain("nat", "KUBE-SERVICES")
    out: list[ServiceTarget] = []
    if chain is None:
        return out
    for rule in chain.rules:
        m = _COMMENT_SVC.match(rule.comment or "")
        target = rule.target.name if rule.target else ""
        if m is None or not target.startswith("KUBE-SVC-"):
            continue
        dst = _opt(rule, "", "-d", "--destination")
        dport = _opt(rule, "tcp", "--dport") or _opt(rule, "udp", "--dport") or \
            _opt(rule, "sctp", "--dport")
        proto = _opt(rule, "", "-p", "--protocol") or "tcp"
        if dst is None or dport is None or not dport.isdigit():
            continue
        try:
            ip = ip_network(dst, strict=False).network_address
        except ValueError:
            continue
        out.append(ServiceTarget(m.group("name"), ip, int(dport), proto))
    return out


_COMMENT_NP = re.compile(r"^\"?(?P<name>[\w.-]+/[\w.-]+(?::[\w.-]+)?)\"?$")


def nodeports_in_rules(ruleset: Ruleset) -> list[ServiceTarget]:
    """NodePorts of kube-proxy's nat KUBE-NODEPORTS chain (the ClusterIP is not shown there)."""
    chain = ruleset.chain("nat", "KUBE-NODEPORTS")
    out: list[ServiceTarget] = []
    if chain is None:
        return out
    seen: set[int] = set()
    for rule in chain.rules:
        m = _COMMENT_NP.match(rule.comment or "")
        dport = _opt(rule, "tcp", "--dport") or _opt(rule, "udp", "--dport")
        proto = _opt(rule, "", "-p", "--protocol") or "tcp"
        if m is None or dport is None or not dport.isdigit() or int(dport) in seen:
            continue
        seen.add(int(dport))
        out.append(ServiceTarget(m.group("name"), ip_address("0.0.0.0"), 0, proto, int(dport)))
    return out


def _opt(rule: Rule, module: str, *names: str) -> str | None:
    for m in rule.matches:
        if m.module == module:
            o = m.option(*names)
            if o is not None and not o.negated:
                return o.value
    return None


def service_endpoints(ruleset: Ruleset) -> dict[tuple[IPAddress, int], list[IPAddress]]:
    """(ClusterIP, port) → the endpoint addresses kube-proxy's rules DNAT to."""
    nat = ruleset.table("nat")
    if nat is None:
        return {}
    svc_of: dict[str, tuple[IPAddress, int]] = {}
    chain = nat.chains.get("KUBE-SERVICES")
    for rule in chain.rules if chain is not None else ():
        target = rule.target.name if rule.target is not None else ""
        if not target.startswith("KUBE-SVC-") or target in svc_of:
            continue
        dst = _opt(rule, "", "-d", "--destination")
        dport = _opt(rule, "tcp", "--dport") or _opt(rule, "udp", "--dport") or \
            _opt(rule, "sctp", "--dport")
        if dst is None or dport is None or not dport.isdigit():
            continue
        try:
            svc_of[target] = (ip_network(dst, strict=False).network_address, int(dport))
        except ValueError:
            continue
    out: dict[tuple[IPAddress, int], list[IPAddress]] = {}
    for name, key in svc_of.items():
        svc_chain = nat.chains.get(name)
        if svc_chain is None:
            continue
        for rule in svc_chain.rules:
            sep = nat.chains.get(rule.target.name) if rule.target is not None else None
            if sep is None:
                continue
            for r in sep.rules:
                opt = r.target.option("--to-destination") if r.target is not None else None
                if opt is None:
                    continue
                try:
                    ip = ip_address(opt.value.rsplit(":", 1)[0].strip("[]"))
                except ValueError:
                    continue
                out.setdefault(key, []).append(ip)
    return out


def service_targets(ev: Evidence, node: NodeEvidence) -> list[ServiceTarget]:
    """Services with endpoints: from the objects, else from the node's kube-proxy rules."""
    out: list[ServiceTarget] = []
    seen: set[tuple[IPAddress, int]] = set()
    for svc in ev.objects.services:
        ip = svc.cluster_ip
        if ip is None or svc.headless or ip.version != 4:
            continue
        for port in svc.ports:
            key = (ip, port.port)
            if key in seen:
                continue
            seen.add(key)
            out.append(ServiceTarget(f"{svc.namespace or 'default'}/{svc.name}", ip, port.port,
                                     port.protocol.lower(), port.node_port))
    for t in services_in_rules(node.state.ruleset):
        if (t.ip, t.port) not in seen:
            seen.add((t.ip, t.port))
            out.append(t)
    known_np = {t.node_port for t in out if t.node_port}
    for t in nodeports_in_rules(node.state.ruleset):
        if t.node_port not in known_np:
            out.append(t)
    return out


# -- flows -----------------------------------------------------------------------------------


def ext_client(node: NodeEvidence, nic: str) -> IPAddress:
    """A client outside the cluster, as it reaches the node's NIC."""
    fib = datapath(node.state).fibs[4]
    cand = ip_address("203.0.113.10")
    res = fib.lookup(cand, iif="lo")
    if res.ok and res.route is not None and res.route.dev == nic:
        return cand
    for a in node.state.addresses:
        if a.ifname == nic and a.ip.version == 4 and a.network.prefixlen < 31:
            host = _assumed_host(a.network, {a.ip})
            if host is not None:
                return host
    return cand


def node_ip(ev: Evidence, node: NodeEvidence) -> tuple[IPAddress, str] | None:
    """The node's cluster address and its interface."""
    wanted = list(node.ips) + list(ev.facts.node_ips.get(node.name, ()))
    for ip in wanted:
        for a in node.state.addresses:
            if a.ip == ip and a.ifname != "lo":
                return a.ip, a.ifname
    for a in node.state.addresses:
        if a.ip.version != 4 or a.ifname == "lo" or a.ip.is_loopback:
            continue
        if POD_IFACE.match(a.ifname) or OVERLAY_IFACE.match(a.ifname) or a.network.prefixlen == 32 \
                or a.ifname.startswith("docker"):
            continue
        return a.ip, a.ifname
    return None


def forward_flows(ev: Evidence, node: NodeEvidence, *, services: int = 3) -> list[Flow]:
    """Forwarded packets every Kubernetes node must pass (see the module docstring)."""
    flows: list[Flow] = []
    locals_ = local_pods(ev, node)
    remotes = remote_pods(ev, node)
    for src, spod, s_assumed in locals_[:1]:
        iif = route_dev(node, src)
        for dst, dnode, dpod, d_assumed in remotes:
            flows.append(Flow(
                "pod-pod-out",
                f"pod {src}{_pn(spod)} on {node.name} → pod {dst}{_pn(dpod)}"
                + (f" on {dnode}" if dnode else ""),
                src, dst, _pod_port(dpod), "tcp", iif,
                "; ".join(a for a in (s_assumed, d_assumed) if a)))
    for dst, dpod, d_assumed in locals_[:1]:
        for src, snode, spod, s_assumed in remotes[:1]:
            iif = route_dev(node, src)
            flows.append(Flow(
                "pod-pod-in",
                f"pod {src}{_pn(spod)}" + (f" on {snode}" if snode else "")
                + f" → pod {dst}{_pn(dpod)} on {node.name}",
                src, dst, _pod_port(dpod), "tcp", iif,
                "; ".join(a for a in (s_assumed, d_assumed) if a)))
    targets = service_targets(ev, node)
    for src, spod, s_assumed in locals_[:1]:
        iif = route_dev(node, src)
        for t in [t for t in targets if t.port][:services]:
            flows.append(Flow("pod-svc", f"pod {src}{_pn(spod)} on {node.name} → Service "
                              f"{t.name} {t.ip}:{t.port}/{t.proto}", src, t.ip, t.port, t.proto,
                              iif, s_assumed, t.name))
    addr = node_ip(ev, node)
    if addr is not None:
        ip, nic = addr
        client = ext_client(node, nic)
        for t in [t for t in targets if t.node_port][:services]:
            if t.node_port:
                flows.append(Flow("nodeport", f"client {client} → NodePort {ip}:{t.node_port} "
                                  f"({t.name}) on {node.name}", client, ip, t.node_port, t.proto,
                                  nic, f"an outside client {client} was assumed", t.name))
    return flows


def _pn(pod: Pod | None) -> str:
    return f" ({pod.name})" if pod is not None and pod.name else ""


# Overlay and control-plane ports a node must accept from its peers (by CNI).
PEER_PORTS: dict[str, tuple[tuple[str, int, str], ...]] = {
    "flannel": (("udp", 8472, "flannel VXLAN"),),
    "canal": (("udp", 8472, "flannel VXLAN"),),
    "calico": (("tcp", 179, "Calico BGP"), ("udp", 4789, "Calico VXLAN")),
    "cilium": (("udp", 8472, "Cilium VXLAN"), ("tcp", 4240, "Cilium health")),
    "weave": (("tcp", 6783, "Weave control"), ("udp", 6784, "Weave data")),
}


def peer_flows(ev: Evidence, node: NodeEvidence) -> list[Flow]:
    """Packets other nodes send to this node: the CNI's overlay/BGP port and kubelet's 10250."""
    addr = node_ip(ev, node)
    if addr is None:
        return []
    ip, nic = addr
    peer: IPAddress | None = None
    for name, ips in sorted(ev.facts.node_ips.items()):
        if name == node.name:
            continue
        for cand in ips:
            if cand != ip and cand.version == ip.version:
                peer = cand
                break
        if peer is not None:
            break
    if peer is None:
        for a in node.state.addresses:
            if a.ifname == nic and a.ip == ip:
                peer = _assumed_host(a.network, {ip})
    if peer is None:
        return []
    cni = ClusterFacts.first(ev.facts.cni) or ""
    ports = list(PEER_PORTS.get(cni, ()))
    ports.append(("tcp", 10250, "kubelet API"))
    return [Flow("peer-in", f"{what} {peer} → {ip}:{port}/{proto} on {node.name}", peer, ip,
                 port, proto, nic) for proto, port, what in ports]


# -- verdicts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Blocked:
    flow: Flow
    trace: Trace
    outcome: Outcome
    step: Step  # the netfilter step that decided (a rule, or "policy DROP")
    share: float | None  # probability of the blocked outcomes (None: depends on unknowns)

    @property
    def unknown_chains(self) -> list[str]:
        return [a for a in self.outcome.assumptions if "is not in the evidence" in a]


def blocked(flow: Flow, trace: Trace) -> Blocked | None:
    """The outcome that stops the packet in netfilter (DROP/REJECT), with its deciding step."""
    bad = [(o, s) for o in trace.outcomes if o.verdict in (Verdict.DROPPED, Verdict.REJECTED)
           for s in [deciding_step(o)] if s is not None]
    if not bad:
        return None
    share: float | None = 0.0
    for o, _s in bad:
        share = None if share is None or o.probability is None else share + o.probability
    first, step = max(bad, key=lambda b: -1.0 if b[0].probability is None else b[0].probability)
    return Blocked(flow, trace, first, step, share)


def deciding_step(outcome: Outcome) -> Step | None:
    """The netfilter step that ended the packet: the first DROP/REJECT verdict of a rule or a
    chain policy (steps after it follow the ICMP error or RST the node sends back). Drops the
    kernel makes outside the rule tables (rp_filter, a martian source, conntrack's INVALID
    handling, a failed route lookup) have no deciding step: no firewall rule change fixes
    them."""
    for s in outcome.steps:
        if s.hook not in HOOKS or s.table not in NETFILTER_TABLES:
            continue
        if s.rule in ("policy DROP",) or s.action.startswith(("DROP", "REJECT")):
            return s
    return None


def deciding_rule(ruleset: Ruleset, step: Step) -> Rule | None:
    chain = ruleset.chain(step.table, step.chain)
    if chain is None:
        return None
    for rule in chain.rules:
        if rule.raw == step.rule:
            return rule
    return None


def with_policy(ruleset: Ruleset, table: str, chain: str, policy: str) -> Ruleset:
    """The ruleset with one built-in chain's policy changed (a what-if for a fix)."""
    t = ruleset.tables[table]
    c = t.chains[chain]
    chains = dict(t.chains)
    chains[chain] = replace(c, policy=policy)
    tables = dict(ruleset.tables)
    tables[table] = replace(t, chains=chains)
    return replace(ruleset, tables=tables)


def with_rules(ruleset: Ruleset, table: str, chain: str, rules_text: Iterable[str],
               *, first: bool = True) -> Ruleset:
    """The ruleset with rules (iptables-save `-A CHAIN ...` lines) inserted into a chain."""
    from netsleuth.parse.iptables_save import parse_iptables_save

    lines = list(rules_text)
    decl = sorted({ln.split()[1] for ln in lines})
    text = "\n".join([f"*{table}", *[f":{c} - [0:0]" for c in decl], *lines, "COMMIT"]) + "\n"
    parsed = parse_iptables_save(text, "fix").chain(table, chain)
    assert parsed is not None
    t = ruleset.tables[table]
    c = t.chains[chain]
    new_rules = parsed.rules + c.rules if first else c.rules + parsed.rules
    chains = dict(t.chains)
    chains[chain] = replace(c, rules=new_rules)
    tables = dict(ruleset.tables)
    tables[table] = replace(t, chains=chains)
    return replace(ruleset, tables=tables)


def with_ruleset(node: NodeEvidence, ruleset: Ruleset, note: str) -> NodeState:
    return replace(node.state, ruleset=ruleset, assumptions=node.state.assumptions + (note,))


def network_text(nets: Iterable[IPv4Network | IPv6Network]) -> str:
    return ", ".join(str(n) for n in nets)


def probe_nodes(ev: Evidence) -> list[NodeEvidence]:
    """Nodes to trace a Service connection from: those with their own iptables rules first,
    then the others (kube-proxy's rules rebuilt from the Services); when the input shows no
    node at all, one assumed node carrying the rebuilt rules and a default route."""
    nodes = sorted(ev.nodes.values(), key=lambda n: (not real_rules(n), n.name))
    if nodes:
        return nodes
    from netsleuth.diagnose.kube_proxy_rules import kube_proxy_rules, service_port_views
    from netsleuth.parse.iproute2 import parse_ip_addr, parse_ip_route
    from netsleuth.parse.iptables_save import parse_iptables_save

    views = service_port_views(ev.objects.services, ev.objects.endpoints)
    if not views:
        return []
    cidr = ClusterFacts.first(ev.facts.pod_cidrs)
    ruleset = replace(parse_iptables_save(kube_proxy_rules(views, str(cidr) if cidr else None),
                                          "<kube-proxy rules rebuilt from Services>"),
                      origin="rebuilt")
    addr_text = ("2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP\n"
                 "    inet 192.0.2.10/24 scope global eth0\n")
    links, addresses = parse_ip_addr(addr_text, "<assumed node>")
    routes = parse_ip_route("default via 192.0.2.1 dev eth0\n"
                            "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.10\n",
                            "<assumed node>")
    from netsleuth.parse.iproute2 import kernel_routes_for_addresses
    local = [r for r in kernel_routes_for_addresses(addresses) if r.table != TABLE_MAIN]
    state = NodeState(
        "?", links=tuple(links), addresses=tuple(addresses),
        routes=tuple(routes) + tuple(local), rules=default_policy_rules(), ruleset=ruleset,
        assumptions=("no node state in the evidence: an assumed node (a default route, one "
                     "address) carrying kube-proxy's rules rebuilt from the Service objects",))
    return [NodeEvidence("?", state, frozenset())]


def cluster_pod_range(ev: Evidence, node: NodeEvidence | None = None) -> IPNetwork | None:
    """The cluster-wide pod range: a flag/ConfigMap/CNI-pool fact, else the range kube-proxy
    was given (its `-s <clusterCIDR>` rules on the node) when it covers the nodes' podCIDRs,
    else the smallest network covering every node's podCIDR."""
    per_node = [f.value for f in ev.facts.pod_cidrs if f.how.startswith("node ")]
    wide = [f.value for f in ev.facts.pod_cidrs if not f.how.startswith("node ")
            and f.value.version == 4]
    if wide:
        return wide[0]
    if node is not None:
        for net in _kube_proxy_cidrs(node.state.ruleset):
            if not per_node or all(p.version == net.version and p.subnet_of(net)  # type: ignore[arg-type]
                                   for p in per_node):
                return net
    v4 = [n for n in per_node if n.version == 4]
    if not v4:
        return None
    net = v4[0]
    while not all(n.subnet_of(net) for n in v4):
        net = net.supernet()
    return net


def _kube_proxy_cidrs(ruleset: Ruleset) -> list[IPNetwork]:
    """The clusterCIDR kube-proxy was given, as its rules show it: KUBE-FORWARD's
    `-s <cidr>` accept rules and the `! -s <cidr> ... cluster IP ... -j KUBE-MARK-MASQ` rules."""
    out: list[IPNetwork] = []
    for table, negated in (("filter", False), ("nat", True)):
        t = ruleset.table(table)
        if t is None:
            continue
        for chain in t.chains.values():
            for rule in chain.rules:
                if table == "filter" and chain.name != "KUBE-FORWARD":
                    continue
                if table == "nat" and not (rule.target is not None and
                                           rule.target.name == "KUBE-MARK-MASQ" and
                                           "cluster IP" in (rule.comment or "")):
                    continue
                for m in rule.matches:
                    o = m.option("-s", "--source") if m.module == "" else None
                    if o is None or o.negated != negated:
                        continue
                    net = ip_network(o.value, strict=False)
                    if not net.is_loopback and net not in out:
                        out.append(net)
    return out
