"""Failure mode 3: the apiserver is advertised on the wrong NIC.

`kubeadm init` without `--apiserver-advertise-address` advertises the address of the
default-route interface. The apiserver publishes it as the endpoint of the `kubernetes`
Service, and kube-proxy on every node DNATs 10.96.0.1:443 to it. When that address is a
NAT/management address the other nodes do not share (VirtualBox NAT gives every VM the same
10.0.2.15), pods and hostNetwork agents on the other nodes cannot reach the apiserver through
the Service: the DNATed packet is delivered to the node itself (nothing listens → connection
refused) or sent to the default gateway, which cannot reach it (timeout).

Proof: a trace, on each other node, of a host-originated packet to the `kubernetes` Service
through that node's own routes and kube-proxy rules: after DNAT it ends on the node itself or
leaves via the gateway, while the apiserver node has an address on a network the node is
directly attached to. The fix (advertising that address) is verified by re-tracing with the
DNAT target rewritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cluster import k8s_nodes, node_ips
from netsleuth.diagnose.detectors._common import cni_agent, kubernetes_target, line
from netsleuth.diagnose.detectors._nodenet import (
    TIMEOUTS,
    Candidate,
    connected_interface,
    failures,
    host_addresses,
    interface_of,
    iter_nodes,
    outcome_summary,
    passes,
    route_step_text,
    trace_line,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.errors import NetsleuthError
from netsleuth.model.net import IPAddress
from netsleuth.model.netfilter import Ruleset, Table
from netsleuth.model.node import NodeState
from netsleuth.model.source import SourceRef
from netsleuth.parse.node_snapshot import with_extra_routes

KIND = "apiserver-advertise-wrong-nic"


@dataclass(frozen=True, slots=True)
class _Miss:
    node: NodeEvidence
    trace: Trace
    endpoint: IPAddress
    port: int
    local: bool  # delivered to the node itself


def _apiserver_nodes(ev: Evidence) -> set[str]:
    out: set[str] = set()
    for pod in ev.objects.pods:
        if (pod.name or "").startswith("kube-apiserver") and pod.node:
            out.add(ev.node_for(pod.node) or pod.node)
    for proc in ev.objects.processes:
        if proc.program == "kube-apiserver" and proc.host:
            out.add(ev.node_for(proc.host) or proc.host)
    if not out:
        for k in k8s_nodes(ev).values():
            if any("control-plane" in r or "master" in r for r in k.roles):
                out.add(ev.node_for(k.name) or k.name)
    return out


def _endpoint_sources(ev: Evidence, ip: IPAddress) -> list[SourceRef]:
    refs: list[SourceRef] = []
    for f in ev.facts.apiserver_endpoints:
        if f.value.rsplit(":", 1)[0].strip("[]") == str(ip) and "cluster-info" not in f.how:
            refs.extend(f.sources[:1])
    return refs


def _right_address(ev: Evidence, owners: set[str], node: NodeEvidence,
                   wrong: IPAddress) -> tuple[str, IPAddress] | None:
    """An address of the apiserver node on a network `node` is directly attached to."""
    for owner in sorted(owners):
        cands: list[IPAddress] = list(node_ips(ev, owner))
        st = ev.nodes.get(owner)
        if st is not None:
            cands += [a.ip for a in host_addresses(st.state)]
        for ip in cands:
            if ip != wrong and ip.version == wrong.version \
                    and connected_interface(node.state, ip) is not None \
                    and interface_of(node.state, ip) is None:
                return owner, ip
    return None


def _answered(state: NodeState, t: Trace) -> bool:
    """The packet leaves towards the endpoint with a source the endpoint can answer: an address
    of the outgoing interface (or masqueraded to one)."""
    if not passes(t) or t.verdict == Verdict.DELIVERED_LOCAL:
        return False
    if t.main.masquerade:
        return True
    src = t.main.packet.src
    return any(a.ip == src and a.ifname == t.main.interface for a in state.addresses)


def _service_range(ev: Evidence) -> str:
    for f in ev.facts.service_cidrs:
        return str(f.value)
    k = kubernetes_target(ev)
    return f"{k[0]}/32" if k else "<service CIDR>"


def retarget(ruleset: Ruleset, old: IPAddress, new: IPAddress) -> Ruleset:
    """The ruleset as kube-proxy programs it once the endpoint moves from `old` to `new`: the
    DNAT target, and the endpoint chain's hairpin `-s old/32 -j KUBE-MARK-MASQ`."""

    def swap(arg: str) -> str:
        for o, n in ((f"{old}:", f"{new}:"), (f"{old}/32", f"{new}/32")):
            if arg.startswith(o):
                return n + arg[len(o):]
        return str(new) if arg == str(old) else arg

    tables: dict[str, Table] = {}
    for tname, table in ruleset.tables.items():
        chains = {}
        for cname, chain in table.chains.items():
            endpoint_chain = any(
                r.target is not None and r.target.name == "DNAT"
                and any(a.startswith(f"{old}:") or a == str(old)
                        for o in r.target.options for a in o.args)
                for r in chain.rules)
            rules = []
            for rule in chain.rules:
                if endpoint_chain:
                    matches = tuple(replace(m, options=tuple(
                        replace(o, args=tuple(swap(a) for a in o.args))
                        if o.name in ("-s", "--source") else o for o in m.options))
                        for m in rule.matches)
                    target = rule.target
                    if target is not None and target.name == "DNAT":
                        target = replace(target, options=tuple(
                            replace(o, args=tuple(swap(a) for a in o.args))
                            if o.name in ("--to-destination", "--to") else o
                            for o in target.options))
                    rule = replace(rule, matches=matches, target=target,
                                   raw=rule.raw.replace(f"{old}:", f"{new}:")
                                   .replace(f"{old}/32", f"{new}/32"))
                rules.append(rule)
            chains[cname] = replace(chain, rules=tuple(rules))
        tables[tname] = Table(tname, chains)
    return replace(ruleset, tables=tables)


@detector("A03", title="API server advertised on the wrong NIC",
          needs=("services", "endpoints", "iptables"), mode="3")
def apiserver_advertise_nic(ev: Evidence) -> Iterator[Finding]:
    target = kubernetes_target(ev)
    if target is None:
        return
    owners = _apiserver_nodes(ev)
    misses: list[_Miss] = []
    fixes_for: dict[str, tuple[str, IPAddress]] = {}
    for node in iter_nodes(ev):
        if node.name in owners or "routes" not in node.has:
            continue
        t = Candidate("", target[0], target[1]).run(node)
        pkt = t.main.packet
        if not pkt.dnat:
            continue  # no DNAT on this node: another detector's business
        ep, port = pkt.dst, pkt.dport or 6443
        if t.verdict == Verdict.DELIVERED_LOCAL and owners:
            right = _right_address(ev, owners, node, ep)
            misses.append(_Miss(node, t, ep, port, True))
            if right:
                fixes_for[node.name] = right
            continue
        if t.verdict != Verdict.SENT or t.main.next_hop == str(ep):
            continue
        if connected_interface(node.state, ep) is not None:
            continue  # on a network the node is attached to
        right = _right_address(ev, owners, node, ep)
        if right is None:
            continue  # no better address known: cannot say the NIC is wrong
        misses.append(_Miss(node, t, ep, port, False))
        fixes_for[node.name] = right
    if misses:
        yield _finding(ev, owners, misses, fixes_for)


def _finding(ev: Evidence, owners: set[str], misses: list[_Miss],
             fixes_for: dict[str, tuple[str, IPAddress]]) -> Finding:
    m = misses[0]
    ep = m.endpoint
    owner = sorted(owners)[0] if owners else None
    evidence: list[EvidenceLine] = [line(r, f"kubernetes endpoint {ep}:{m.port}")
                                    for r in _endpoint_sources(ev, ep)[:1]]
    for x in misses[:3]:
        what = (f"on {x.node.name}, the kubernetes Service is DNATed to {ep}:{x.port}, which "
                f"is {x.node.name}'s own address" if x.local else
                f"on {x.node.name}, the kubernetes Service is DNATed to {ep}:{x.port}, reached "
                "only via the default gateway")
        evidence.append(trace_line(x.trace, what))
        dnat = next((s for s in x.trace.main.steps if s.action.startswith("DNAT")), None)
        if dnat is not None:
            evidence.append(line(dnat.source, dnat.rule))
    right = fixes_for.get(m.node.name)
    fixes: list[Fix] = []
    if right is not None:
        r_owner, r_ip = right
        fixed = replace(m.node.state, ruleset=retarget(m.node.state.ruleset, ep, r_ip))
        after = Candidate("", m.trace.packet.dst, m.trace.packet.dport).run(fixed)
        note = ""
        route_fix: Fix | None = None
        if _answered(fixed, after):
            note = (f" Verified by simulation: from {m.node.name} the Service then goes "
                    f"{route_step_text(after)} → {outcome_summary(after.main)}.")
        elif passes(after) and after.verdict != Verdict.DELIVERED_LOCAL:
            # The DNAT now points the right way, but connect() picked its source address from
            # the route to the Service IP (ip_route_me_harder keeps it): the reply would go
            # to an address the apiserver node cannot answer. The Service range must be routed
            # out of the cluster interface too.
            spec = f"{_service_range(ev)} dev {after.main.interface}"
            try:
                both = with_extra_routes(fixed, spec, source="fix")
            except NetsleuthError:
                both = None
            again = Candidate("", m.trace.packet.dst, m.trace.packet.dport).run(both) \
                if both is not None else None
            src = after.main.packet.src
            note = (f" Alone it is not enough: the packet would leave {after.main.interface} "
                    f"with source {src}, chosen by the route to the Service IP, and the reply "
                    "could not come back.")
            if both is not None and again is not None and _answered(both, again):
                route_fix = Fix(
                    f"on {', '.join(x.node.name for x in misses)}: ip route add {spec}", "now",
                    "route the Service range out of the cluster interface so connect() picks "
                    f"that interface's address. Verified by simulation (with the new endpoint): "
                    f"{route_step_text(again)} → {outcome_summary(again.main)} from "
                    f"{again.main.packet.src}.")
        fixes.append(Fix(
            f"on {r_owner}: sed -i 's/--advertise-address={ep}/--advertise-address={r_ip}/' "
            "/etc/kubernetes/manifests/kube-apiserver.yaml && mv /etc/kubernetes/pki/"
            "apiserver.{crt,key} /root/ && kubeadm init phase certs apiserver "
            f"--apiserver-advertise-address={r_ip}", "now",
            f"advertise {r_ip} ({r_owner}'s address on the network the other nodes share); "
            "the static pod restarts, the kubernetes Endpoints and kube-proxy's DNAT follow."
            + note))
        if route_fix is not None:
            fixes.append(route_fix)
        fixes.append(Fix(
            f"kubectl -n kube-system edit cm kubeadm-config   # localAPIEndpoint."
            f"advertiseAddress: {r_ip}; new clusters: kubeadm init "
            f"--apiserver-advertise-address={r_ip}", "permanent",
            "so upgrades and joins keep the right address"))
    else:
        fixes.append(Fix("kubeadm init --apiserver-advertise-address=<the control-plane's "
                         "address on the cluster network> (or set --advertise-address in "
                         "/etc/kubernetes/manifests/kube-apiserver.yaml and regenerate the "
                         "apiserver certificate)", "now"))
    explains: list[str] = []
    for x in misses:
        errnos = {"ECONNREFUSED"} if x.local else set(TIMEOUTS) | {"EHOSTUNREACH"}
        for f in failures(ev, x.node.name):
            if f.errno in errnos and f.dst in (m.trace.packet.dst, ep):
                explains.extend(f.keys)
                if cni_agent(f.pod):
                    explains += [f"cni-agent-not-ready@{x.node.name}",
                                 f"sandbox-churn@{x.node.name}", f"pod-no-ip@{x.node.name}"]
    names = ", ".join(x.node.name for x in misses)
    detail = (
        f"The kubernetes Service's endpoint is {ep}:{m.port}"
        + (f" ({owner} runs the apiserver)" if owner else "") + ". "
        + ("That address is also local on " + ", ".join(x.node.name for x in misses if x.local)
           + ": kube-proxy's DNAT sends the apiserver traffic of those nodes to themselves, "
           "where nothing listens (connection refused). " if any(x.local for x in misses)
           else "")
        + ("From " + ", ".join(x.node.name for x in misses if not x.local) + " it is only "
           "reachable through the default gateway, not over the cluster network (timeouts). "
           if any(not x.local for x in misses) else "")
        + "In-cluster clients there (CNI agents, CoreDNS, controllers) cannot reach the "
        "apiserver, while clients on the control-plane node work."
        + (f" The right address is {right[1]} on {right[0]}." if right else "")
    )
    key_node = owner or "?"
    return Finding(
        detector="A03", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{key_node}",
        title=f"The apiserver is advertised as {ep}, an address {names} cannot reach"
              + (f" (use {right[1]})" if right else ""),
        node=owner, confidence=0.95 if m.local else 0.8,
        why=(f"proven by tracing the kubernetes Service through {names}'s routes and "
             "kube-proxy rules: after DNAT the packet "
             + ("is delivered to the node itself" if m.local else
                "leaves via the default gateway, while the apiserver node has an address on "
                "a network the node is attached to")),
        evidence=tuple(evidence), explains=tuple(dict.fromkeys(explains)), fix=tuple(fixes),
        detail=detail, trace=m.trace,
    )
