"""Failure mode 29: the container runtime has no CNI network config (NetworkPluginNotReady).

kubelet reports the node NotReady with `container runtime network not ready:
NetworkReady=false reason:NetworkPluginNotReady message:... cni config uninitialized` (dockershim)
or `... cni plugin not initialized` (containerd, CRI-O) as long as /etc/cni/net.d holds no
config the runtime loaded. The config is written by the CNI's DaemonSet pod on that node, so
the question is always: where is that pod?

* no CNI agent anywhere in the cluster → no CNI installed yet (kubeadm's "you must deploy a
  pod network" step was skipped);
* agents on other nodes, none on this one → the DaemonSet does not schedule here (taint,
  nodeSelector/affinity);
* the agent here is Running and ready → the runtime did not (re)load the config (config dir
  mismatch, containerd cached the empty state: containerd/containerd#8419);
* the agent here is failing → not this mode's cause: the agent's own failure is, and the
  uninitialized network is its consequence (kept as a symptom so the chain forms).
"""

from __future__ import annotations

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
from netsleuth.diagnose.detectors._common import cni_agent, dns_pod
from netsleuth.diagnose.evidence import Evidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import Pod

UNINIT = re.compile(r"NetworkPluginNotReady|cni config uninitiali[sz]ed|cni plugin not initiali[sz]ed|"
                    r"network plugin is not ready|No networks found in /etc/cni/net\.d|"
                    r"no network config found in /etc/cni/net\.d|Unable to update cni config",
                    re.IGNORECASE)


def _agent_state(p: Pod) -> str:
    """"ok" (Running and ready), "failing" or "pending"."""
    status = p.status or p.phase or ""
    if "CrashLoop" in status or "Error" in status or any(
            c.reason in ("CrashLoopBackOff", "Error") for c in p.containers):
        return "failing"
    if status in ("Pending", "ContainerCreating") or status.startswith("Init:"):
        return "pending"
    ready = p.ready
    if (ready and ready.split("/")[0] == ready.split("/")[-1]) or (
            p.containers and all(c.ready for c in p.containers)):
        return "ok"
    return "failing"


@detector("D29", title="CNI not initialized (NetworkPluginNotReady)",
          needs=("k8s-nodes", "events", "logs"), mode="29")
def cni_not_initialized(ev: Evidence) -> Iterator[Finding]:
    seen: dict[str, list[EvidenceLine]] = {}
    not_ready: dict[str, EvidenceLine] = {}
    for name, k in k8s_nodes(ev).items():
        cond = k.condition("Ready")
        if cond is not None and not cond.is_true and UNINIT.search(cond.message or ""):
            line = ev_line(cond.source, f"{name} Ready={cond.status} {cond.reason or ''}: "
                                        f"{cond.message}")
            seen.setdefault(name, []).append(line)
            not_ready[name] = line
    for e in all_events(ev):
        if UNINIT.search(e.message):
            node = event_node(ev, e)
            if node:
                seen.setdefault(node, []).append(ev_line(e.source, event_text(e)))
    for ln, _ in matching_logs(ev, UNINIT):
        node = log_node(ev, ln)
        if node:
            seen.setdefault(node, []).append(ev_line(ln.source, ln.text))
    if not seen:
        return
    agents = [p for p in ev.objects.pods if cni_agent(p.name)]
    have_pods = bool(ev.objects.pods)
    cnis = sorted({f.value for f in ev.facts.cni})
    uninstalled: list[str] = []
    for node, lines in sorted(seen.items()):
        yield Finding(
            detector="D29", kind="cni-uninitialized", role=Role.SYMPTOM,
            key=f"cni-uninitialized@{node}",
            title=f"The container runtime on {node} has no CNI network (NetworkPluginNotReady)",
            node=node, confidence=0.9,
            why="kubelet/the runtime report that no CNI config is loaded on this node",
            evidence=tuple(lines[:4]), explains=(f"pod-no-ip@{node}", f"sandbox-churn@{node}",
                                                 f"node-not-ready@{node}"),
        )
        if node in not_ready:
            yield Finding(
                detector="D29", kind="node-not-ready", role=Role.SYMPTOM,
                key=f"node-not-ready@{node}", title=f"Node {node} is NotReady: its network is "
                                                    "not ready", node=node, confidence=0.9,
                why="the Node's Ready condition names the CNI", evidence=(not_ready[node],),
            )
        mine = [p for p in agents if p.node and ev.node_for(p.node) == node]
        states = {_agent_state(p) for p in mine}
        if mine and ("failing" in states or "pending" in states) and "ok" not in states:
            # The agent's failure is the cause; the uninitialized network follows from it.
            yield Finding(
                detector="D29", kind="cni-agent-not-ready", role=Role.SYMPTOM,
                key=f"cni-agent-not-ready@{node}",
                title=f"CNI agent not ready on {node}: pods there cannot get network", node=node,
                confidence=0.85, why="its CNI agent pod is not running, so it never wrote the "
                                     "CNI config",
                evidence=tuple(ev_line(p.source, f"pod {p.name}: {p.status or p.phase}") for p in mine),
                explains=(f"cni-uninitialized@{node}", f"node-not-ready@{node}"),
            )
            continue
        if not agents and not cnis:
            uninstalled.append(node)
            continue
        if mine:  # Running and ready, yet the runtime has no config
            yield _not_loaded(ev, node, mine, lines)
        elif agents:
            yield _not_scheduled(ev, node, agents, lines, have_pods)
    if uninstalled:
        yield _not_installed(ev, uninstalled, seen, have_pods)


def _explains(ev: Evidence, nodes: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for n in nodes:
        out += [f"cni-uninitialized@{n}", f"node-not-ready@{n}", f"cni-agent-not-ready@{n}",
                f"pod-no-ip@{n}", f"sandbox-churn@{n}"]
    stuck_dns = [p for p in ev.objects.pods if dns_pod(p.name) and (p.status or p.phase) in
                 ("Pending", "ContainerCreating")]
    if stuck_dns:
        out.append("dns-down")
    return tuple(out)


def _not_installed(ev: Evidence, nodes: list[str], seen: dict[str, list[EvidenceLine]],
                   have_pods: bool) -> Finding:
    cidr = ev.facts.pod_cidrs[0].value if ev.facts.pod_cidrs else None
    evidence = [line for n in nodes for line in seen[n][:2]]
    return Finding(
        detector="D29", kind="cni-not-installed", role=Role.CAUSE,
        key=f"cause:cni-not-installed@{nodes[0]}",
        title="No CNI plugin is installed: " + ", ".join(nodes) + " report NetworkPluginNotReady",
        node=nodes[0] if len(nodes) == 1 else None, confidence=0.85 if have_pods else 0.55,
        why=("the pod list has no CNI agent (calico-node, flannel, cilium, ...) on any node and "
             "nothing else names a CNI" if have_pods else
             "no CNI is named anywhere, but the pod list is not in the evidence to be sure"),
        evidence=tuple(evidence[:6]), explains=_explains(ev, nodes),
        fix=(Fix("kubectl apply -f https://github.com/flannel-io/flannel/releases/latest/download/"
                 "kube-flannel.yml" + (f"  # its net-conf Network must be {cidr}" if cidr else
                                       "  # (or the CNI of your choice)"), "now",
                 "install a pod network; kubelet turns the nodes Ready once the CNI config "
                 "is in /etc/cni/net.d"),
             Fix("kubeadm init --pod-network-cidr=<the CNI's pod network> and install the CNI "
                 "right after init", "permanent", "the CNI's network and the cluster CIDR must "
                 "match")),
        detail="kubelet keeps the node NotReady and no pod gets an IP until a CNI writes its "
               "config to /etc/cni/net.d.",
    )


def _not_scheduled(ev: Evidence, node: str, agents: list[Pod], lines: list[EvidenceLine],
                   have_pods: bool) -> Finding:
    sample = agents[0]
    ns = sample.namespace or "kube-system"
    ds = sample.owner_name or re.sub(r"-[a-z0-9]{5}$", "", sample.name or "")
    k = k8s_nodes(ev).get(node)
    taints = [t for t in (k.taints if k else ()) if t and t != "<none>"]
    evidence = lines[:2] + [ev_line(sample.source, f"pod {sample.name} ({ds}) runs on {sample.node}, "
                                                   f"none on {node}")]
    if k is not None and taints:
        evidence.append(ev_line(k.source, f"{node} taints: {', '.join(taints)}"))
    return Finding(
        detector="D29", kind="cni-agent-missing-on-node", role=Role.CAUSE,
        key=f"cause:cni-agent-missing-on-node@{node}",
        title=f"The CNI DaemonSet {ds} has no pod on {node}", node=node,
        confidence=0.8 if have_pods else 0.5,
        why="the runtime on this node has no CNI config and the pod list shows the CNI agent "
            "on other nodes but not on this one",
        evidence=tuple(evidence), explains=_explains(ev, [node]),
        fix=(Fix(f"kubectl -n {ns} describe daemonset {ds}  # DESIRED vs CURRENT, then "
                 f"kubectl get node {node} -o jsonpath='{{.spec.taints}}'", "now",
                 "see why the DaemonSet does not place a pod there (taints, nodeSelector, "
                 "affinity)"),
             Fix(f"kubectl -n {ns} patch daemonset {ds} --type=json -p "
                 "'[{\"op\":\"add\",\"path\":\"/spec/template/spec/tolerations/-\","
                 "\"value\":{\"operator\":\"Exists\"}}]'", "permanent",
                 "CNI agents must tolerate every taint (the upstream manifests do)")),
        detail=f"The CNI config in /etc/cni/net.d is written by the agent pod on each node; "
               f"{node} has none" + (f" and carries taints {', '.join(taints)}" if taints else "")
               + ".",
    )


def _not_loaded(ev: Evidence, node: str, mine: list[Pod], lines: list[EvidenceLine]) -> Finding:
    return Finding(
        detector="D29", kind="cni-config-not-loaded", role=Role.CAUSE,
        key=f"cause:cni-config-not-loaded@{node}",
        title=f"The CNI agent on {node} is ready but the runtime has not loaded a CNI config",
        node=node, confidence=0.7,
        why="the agent pod is Running and ready while kubelet/the runtime still report "
            "NetworkPluginNotReady: the config is not where the runtime looks, or it was not "
            "re-read",
        evidence=tuple(lines[:3] + [ev_line(p.source, f"pod {p.name}: {p.status or p.phase} "
                                                      f"{p.ready or ''}") for p in mine[:1]]),
        explains=_explains(ev, [node]),
        fix=(Fix(f"on {node}: ls -l /etc/cni/net.d/ && grep -n conf_dir /etc/containerd/config.toml",
                 "now", "the runtime's conf_dir must be where the agent writes its conflist"),
             Fix(f"on {node}: systemctl restart containerd", "now",
                 "containerd may have cached the empty config state (containerd#8419)")),
        detail="",
    )
