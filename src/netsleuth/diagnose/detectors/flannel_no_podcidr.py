"""Failure mode 31: flannel cannot start on a node that has no podCIDR.

With the Kubernetes subnet manager, flanneld takes the node's subnet from `.spec.podCIDR`,
which kube-controller-manager assigns only with `--allocate-node-cidrs=true
--cluster-cidr=...` (what `kubeadm init --pod-network-cidr` sets). Without it flanneld exits
with `Error registering network: failed to acquire lease: node "X" pod cidr not assigned`, never
writes /run/flannel/subnet.env, and every pod sandbox on the node fails with
`loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory`.
A cluster CIDR that differs from flannel's net-conf `Network`, or one that is exhausted
(`CIDRNotAvailable`), has the same effect.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._cluster import k8s_nodes
from netsleuth.diagnose.detectors._cni_dns import (
    all_events,
    ev_line,
    event_node,
    event_text,
    matching_logs,
)
from netsleuth.diagnose.evidence import Evidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import parse_cidr
from netsleuth.model.net import IPNetwork

KIND = "node-podcidr-missing"
NO_LEASE = re.compile(r'failed to acquire lease: node \\?"([\w.-]+)\\?" pod cidr not assigned',
                      re.IGNORECASE)
NO_SUBNET_ENV = re.compile(r"loadFlannelSubnetEnv failed: open /run/flannel/subnet\.env: no such "
                           r"file or directory|open /run/flannel/subnet\.env: no such file")
CIDR_NOT_AVAILABLE = re.compile(r"CIDRNotAvailable|no remaining CIDRs", re.IGNORECASE)


def _net_conf(ev: Evidence) -> tuple[IPNetwork | None, EvidenceLine | None]:
    for cm in ev.objects.configmaps:
        text = cm.data.get("net-conf.json")
        if not text:
            continue
        try:
            conf = json.loads(text)
        except ValueError:
            continue
        net = parse_cidr(str(conf.get("Network", ""))) if isinstance(conf, dict) else None
        if net is not None:
            return net, ev_line(cm.source, f"ConfigMap {cm.namespace}/{cm.name} net-conf.json "
                                           f"Network {net}")
    return None, None


def _controller_manager(ev: Evidence) -> tuple[dict[str, str] | None, EvidenceLine | None]:
    """kube-controller-manager's flags, from `ps` or its static pod's command."""
    for proc in ev.objects.processes:
        if proc.program == "kube-controller-manager":
            return dict(proc.flags), ev_line(proc.source, proc.cmdline[:200])
    for pod in ev.objects.pods:
        if (pod.name or "").startswith("kube-controller-manager"):
            for c in pod.containers:
                argv = list(c.command) + list(c.args)
                if argv:
                    flags = {}
                    for a in argv:
                        if a.startswith("--"):
                            k, _, v = a[2:].partition("=")
                            flags[k] = v or "true"
                    return flags, ev_line(c.source, " ".join(argv)[:200])
    return None, None


def _free_subnet(network: IPNetwork, used: list[IPNetwork], prefix: int) -> IPNetwork | None:
    if network.prefixlen > prefix:
        return None
    for sub in network.subnets(new_prefix=prefix):
        if not any(sub.overlaps(u) for u in used):
            return sub
    return None


@detector("D31", title="flannel: node has no podCIDR (subnet.env missing)",
          needs=("logs", "events", "k8s-nodes"), mode="31")
def flannel_no_podcidr(ev: Evidence) -> Iterator[Finding]:
    hits: dict[str, list[EvidenceLine]] = {}
    for ln, m in matching_logs(ev, NO_LEASE):
        node = ev.node_for(m.group(1)) or log_node(ev, ln) or m.group(1)
        hits.setdefault(node, []).append(ev_line(ln.source, ln.text))
    envs: dict[str, list[EvidenceLine]] = {}
    for e in all_events(ev):
        if NO_SUBNET_ENV.search(e.message) or CIDR_NOT_AVAILABLE.search(e.reason or "") \
                or CIDR_NOT_AVAILABLE.search(e.message):
            node = event_node(ev, e)
            if node:
                envs.setdefault(node, []).append(ev_line(e.source, event_text(e)))
    for ln, _ in matching_logs(ev, NO_SUBNET_ENV):
        node = log_node(ev, ln)
        if node:
            envs.setdefault(node, []).append(ev_line(ln.source, ln.text))
    nodes = k8s_nodes(ev)
    for node in sorted(set(hits) | set(envs)):
        k = nodes.get(node)
        no_cidr = k is not None and not k.pod_cidrs
        if node not in hits and not no_cidr:
            continue  # subnet.env missing for another reason (flannel not started yet)
        yield _finding(ev, node, hits.get(node, []), envs.get(node, []), no_cidr)


def _finding(ev: Evidence, node: str, lease: list[EvidenceLine], env: list[EvidenceLine],
             no_cidr: bool) -> Finding:
    evidence = lease[:2] + env[:2]
    nodes = k8s_nodes(ev)
    k = nodes.get(node)
    if k is not None and no_cidr:
        evidence.append(ev_line(k.source, f"node {node}: no podCIDR"))
    network, net_line = _net_conf(ev)
    flags, kcm_line = _controller_manager(ev)
    detail: list[str] = []
    if net_line is not None:
        evidence.append(net_line)
    if kcm_line is not None:
        evidence.append(kcm_line)
    cluster_cidr = parse_cidr(flags.get("cluster-cidr")) if flags else None
    allocate = flags.get("allocate-node-cidrs") if flags else None
    if flags is not None:
        if allocate not in ("true", "1") or cluster_cidr is None:
            detail.append("kube-controller-manager runs without --allocate-node-cidrs=true "
                          "--cluster-cidr: it never assigns podCIDRs (kubeadm init was run "
                          "without --pod-network-cidr).")
        elif network is not None and cluster_cidr != network:
            detail.append(f"kube-controller-manager's --cluster-cidr {cluster_cidr} differs from "
                          f"flannel's Network {network}.")
    used = [c for n in nodes.values() for c in n.pod_cidrs]
    mask = int(flags.get("node-cidr-mask-size", "24")) if flags and \
        flags.get("node-cidr-mask-size", "24").isdigit() else 24
    net = network or cluster_cidr or (ev.facts.pod_cidrs[0].value if ev.facts.pod_cidrs else None)
    free = _free_subnet(net, used, mask) if isinstance(net, ipaddress.IPv4Network) else None
    fixes: list[Fix] = []
    if free is not None:
        fixes.append(Fix(f"kubectl patch node {node} -p '{{\"spec\":{{\"podCIDR\":\"{free}\","
                         f"\"podCIDRs\":[\"{free}\"]}}}}'", "now",
                         f"{free} is the first /{mask} of {net} no other node uses; flanneld then "
                         "acquires its lease and writes subnet.env (podCIDR can only be set "
                         "while empty)"))
    target = net or "<flannel's net-conf Network>"
    fixes.append(Fix(f"in /etc/kubernetes/manifests/kube-controller-manager.yaml: "
                     f"--allocate-node-cidrs=true --cluster-cidr={target}", "permanent",
                     "the controller-manager then assigns every new node a podCIDR inside "
                     "flannel's Network (kubeadm init --pod-network-cidr does this)"))
    return Finding(
        detector="D31", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node}",
        title=f"Node {node} has no podCIDR, so flannel cannot take a subnet there",
        node=node, confidence=0.95 if lease and no_cidr else 0.85 if lease else 0.7,
        why="flanneld's own error" + (" and the Node object without .spec.podCIDR" if no_cidr
                                      else "") if lease else
            "sandboxes fail for lack of subnet.env and the Node object has no podCIDR",
        evidence=tuple(evidence),
        explains=(f"cni-agent-not-ready@{node}", f"sandbox-churn@{node}", f"pod-no-ip@{node}",
                  f"cni-uninitialized@{node}", "dns-down"),
        fix=tuple(fixes), detail="\n".join(detail),
    )
