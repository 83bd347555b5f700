"""Who is who in the evidence, answered once for every detector: the Node objects, the
addresses a node is known by, the pods on a node or behind an address, the pod ranges, the pod
a `kubectl exec` ran in; and how routes and sysctls are quoted as evidence lines.

Nothing here decides a diagnosis. Each question has one answer here so that two detectors
never disagree about, say, which addresses belong to a node.
"""

from __future__ import annotations

import re
from dataclasses import replace

from netsleuth.diagnose.detectors._common import line
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine
from netsleuth.errors import NetsleuthError
from netsleuth.model.k8s import K8sNode, Pod
from netsleuth.model.net import IPAddress, IPNetwork, Route, Sysctls
from netsleuth.model.node import NodeState
from netsleuth.model.source import SourceRef
from netsleuth.parse.iproute2 import format_route, parse_ip_route

# Interfaces pods are plugged into: one veth (or tap) per pod for routed CNIs (Calico cali*,
# Cilium lxc*, plain veth*, cloud CNIs' azv*/eni*/gke*, VM taps), and the bridges bridged CNIs
# attach those veths to (the bridge plugin's cni0/cbr0, Weave, kube-router, Cilium's and
# Antrea's gateway devices). docker0 is left out: it carries Docker's own containers, not
# pods. A node's NICs (eth*, ens*, bond*, ...) never match.
VETH_IFACE = re.compile(r"^(cali[0-9a-f]+|lxc(?!br)\w+|veth\w+|azv[0-9a-f]+|eni[0-9a-f]\w*|"
                        r"gke[0-9a-f]\w*|tap\w+|vnet\d+)$")
POD_BRIDGE = re.compile(r"^(cni\d*|cnio\d*|cbr\d*|weave|kube-bridge|cilium_host|antrea-gw\d+)$")
POD_IFACE = re.compile(f"{VETH_IFACE.pattern}|{POD_BRIDGE.pattern}")


def is_pod_iface(name: str | None) -> bool:
    return bool(name and POD_IFACE.match(name))


# -- nodes -----------------------------------------------------------------------------------


def k8s_nodes(ev: Evidence) -> dict[str, K8sNode]:
    """Node objects by node name (as `ev.node_for` spells it). Several views of one node
    (`get -o wide`, `describe`, JSON) are merged field by field; where two views both show a
    field the first one wins: a transcript shows the fault first and the state after a fix
    last, and the diagnosis is about the fault."""
    out: dict[str, K8sNode] = {}
    for n in ev.objects.nodes:
        name = ev.node_for(n.name) or n.name
        old = out.get(name)
        if old is None:
            out[name] = n
            continue
        out[name] = replace(
            old,
            internal_ips=old.internal_ips or n.internal_ips,
            external_ips=old.external_ips or n.external_ips,
            hostname=old.hostname or n.hostname,
            conditions=old.conditions or n.conditions,
            pod_cidrs=old.pod_cidrs or n.pod_cidrs,
            roles=old.roles or n.roles,
            status=old.status or n.status,
            kubelet_version=old.kubelet_version or n.kubelet_version,
            kube_proxy_version=old.kube_proxy_version or n.kube_proxy_version,
            os_image=old.os_image or n.os_image,
            kernel_version=old.kernel_version or n.kernel_version,
            container_runtime=old.container_runtime or n.container_runtime,
            labels={**n.labels, **old.labels},
            annotations={**n.annotations, **old.annotations},
            taints=old.taints or n.taints,
            events=old.events + n.events,
        )
    return out


def node_ips(ev: Evidence, node: str) -> list[IPAddress]:
    """The addresses the cluster knows a node by, best first: its Node object's InternalIPs,
    then the other cluster facts (kubelet --node-ip, apiserver --advertise-address, ...).

    Not every address the host has: a management NIC's or a tunnel device's address is the
    node's, but other nodes do not send cluster traffic to it (`NodeEvidence.ips` and the
    node's `ip addr` say which addresses the host has)."""
    out: list[IPAddress] = []
    for k in ev.objects.nodes:
        if ev.node_for(k.name) == node:
            out.extend(ip for ip in k.internal_ips if ip not in out)
    for name, ips in ev.facts.node_ips.items():
        if ev.node_for(name) == node:
            out.extend(ip for ip in ips if ip not in out)
    return out


def node_addresses(ev: Evidence) -> set[IPAddress]:
    """Every address any node is known by (see `node_ips`)."""
    names = set(ev.nodes) | {ev.node_for(n) or n for n in ev.facts.node_ips} | {
        ev.node_for(k.name) or k.name for k in ev.objects.nodes}
    return {ip for name in names for ip in node_ips(ev, name)}


# -- pods ------------------------------------------------------------------------------------


def pods_on_node(ev: Evidence, node: str) -> list[Pod]:
    return [p for p in ev.objects.pods if p.node and ev.node_for(p.node) == node]


def pod_by_ip(ev: Evidence, ip: IPAddress | None) -> Pod | None:
    """The pod that owns `ip`. hostNetwork pods own no address of their own (they show their
    node's), so they never answer, nor does a pod whose address is a node's (a hostNetwork pod
    listed without its spec, e.g. by `kubectl get pods -o wide`)."""
    if ip is None:
        return None
    nodes = node_addresses(ev)
    for p in ev.objects.pods:
        if ip in p.ips and p.host_network is not True and ip not in nodes:
            return p
    return None


def pod_cidrs(ev: Evidence) -> list[IPNetwork]:
    """The cluster's pod range(s) as far as known (controller/kube-proxy flags, node podCIDRs,
    CNI pool), the cluster-wide one first when a flag states it."""
    return [f.value for f in ev.facts.pod_cidrs]


def pod_cidr_facts(ev: Evidence) -> list[tuple[IPNetwork, str, SourceRef | None]]:
    """`pod_cidrs` with how each is known and where: (network, how, source)."""
    return [(f.value, f.how, f.sources[0] if f.sources else None) for f in ev.facts.pod_cidrs]


_GENERATED = re.compile(r"^-(?:[a-z0-9]{8,10}-)?[a-z0-9]{5}$")


def exec_pod(ev: Evidence, pod: str | None) -> tuple[str | None, str | None]:
    """(node, pod name) of a `kubectl exec` target given as "namespace/name" (or "name").

    kubectl's namespace is the context's when `-n` is not typed, so a pod not found in the
    namespace given is looked for by name in any namespace (when only one pod has it). `kubectl
    exec deploy/web` runs in one of the Deployment's pods (`web-<hash>-<suffix>`): their node
    when they all run on one node."""
    if not pod:
        return None, None
    ns, _, name = pod.rpartition("/")
    name = name or ns
    node = ev.pod_node(ns or None, name)
    if node is not None:
        return node, name
    same = [p for p in ev.objects.pods if p.name == name and p.node]
    if len({ev.node_for(p.node) for p in same}) == 1:
        return ev.node_for(same[0].node), name
    owned = [p for p in ev.objects.pods if p.name and p.node and p.namespace in (None, ns or None)
             and p.name.startswith(f"{name}-") and _GENERATED.match(p.name[len(name):])]
    if owned and len({ev.node_for(p.node) for p in owned}) == 1:
        return ev.node_for(owned[0].node), name
    return None, name


def exec_pod_object(ev: Evidence, pod: str | None) -> Pod | None:
    """The Pod object of a `kubectl exec` target ("namespace/name"), when it is listed."""
    if not pod:
        return None
    ns, _, name = pod.rpartition("/")
    name = name or ns
    found = [p for p in ev.objects.pods if p.name == name]
    exact = [p for p in found if p.namespace in (None, ns or None)]
    pick = exact or (found if len(found) == 1 else [])
    return pick[0] if pick else None


# -- quoting evidence --------------------------------------------------------------------------


def route_text(route: Route | str) -> str:
    """A route as `ip route` prints it: the line as read when it was text, reformatted when
    the evidence was `ip -j` JSON."""
    if isinstance(route, Route):
        raw = route.raw.strip()
        return raw if raw and not raw.startswith("{") else format_route(route)
    if not route.startswith("{"):
        return route
    try:
        routes = parse_ip_route(f"[{route}]", "<evidence>")
    except NetsleuthError:
        return route
    return format_route(routes[0]) if routes else route


def sysctl_line(where: NodeEvidence | NodeState | Sysctls, key: str) -> EvidenceLine:
    """The `key = value` line a sysctl was read from."""
    if isinstance(where, NodeEvidence):
        sysctls = where.state.sysctls
    elif isinstance(where, NodeState):
        sysctls = where.sysctls
    else:
        sysctls = where
    return line(sysctls.ref(key), f"{key} = {sysctls.get(key)}")
