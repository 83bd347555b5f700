"""Symptoms from pods and events: CNI agent down, sandbox churn, pods without IPs, DNS down."""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._common import cni_agent, dns_pod, line, node_key
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import Event

CNI_NOT_READY = re.compile(r"calico/node is not ready|felix is not ready|bird: .* not ready|"
                           r"cilium.*not ready|flannel.*(failed|not ready)|"
                           r"network plugin is not ready|cni plugin not initialized|"
                           r"NetworkPluginNotReady|cni config uninitialized", re.IGNORECASE)
SANDBOX = re.compile(r"SandboxChanged|FailedCreatePodSandBox|FailedKillPod")


def _event_text(e: Event) -> str:
    count = f" (x{e.count}" + (f" over {e.over}" if e.over else "") + ")" if e.count > 1 else ""
    origin = f" {e.source_component or ''}{', ' + e.source_host if e.source_host else ''}"
    return f"{e.type or ''} {e.reason or ''}{count}{origin}: {e.message}".strip()


def _event_pod_node(ev: Evidence, e: Event) -> str | None:
    """Newer kubectl shows events without the reporting node (`From: kubelet`): the node of
    the pod the event is about stands in for it."""
    kind, _, name = (e.object or "").partition("/")
    return ev.pod_node(e.namespace, name) if kind == "pod" and name else None


@detector("S-POD", title="Pods and events: CNI agent, sandboxes, pod IPs, DNS",
          needs=("pods", "events"))
def pod_symptoms(ev: Evidence) -> Iterator[Finding]:
    agents: dict[str, list[EvidenceLine]] = {}
    churn: dict[str, list[EvidenceLine]] = {}
    churn_dns: set[str] = set()
    no_ip: dict[str, list[EvidenceLine]] = {}
    dns_lines: list[EvidenceLine] = []

    for pod in ev.objects.pods:
        node = node_key(ev.node_for(pod.node) if pod.node else ev.pod_node(pod.namespace, pod.name))
        # Init containers end "Completed" by design; only the pod's main containers count.
        bad = [c for c in pod.containers if not c.init
               and (c.reason in ("CrashLoopBackOff", "Error", "Completed") or c.ready is False)]
        status = pod.status or pod.phase or ""
        if cni_agent(pod.name) and (bad or "CrashLoop" in status):
            agents.setdefault(node, []).append(line(pod.source, f"pod {pod.name}: {status or ''} "
                + ", ".join(f"{c.name} {c.state or ''} {c.reason or ''}".strip() for c in bad)))
        down = bad or pod.ready == "0/1" or status in ("Completed", "CrashLoopBackOff")
        if dns_pod(pod.name) and down:
            details = ", ".join(
                f"{c.state or ''} {c.reason or ''} ready={c.ready} restarts={c.restart_count}"
                for c in pod.containers)
            dns_lines.append(line(pod.source, f"pod {pod.name}: {status} {details}".strip()))
        if (not pod.ips and pod.host_network is not True and not cni_agent(pod.name)
                and status in ("ContainerCreating", "Pending", "Init:0/1")):
            no_ip.setdefault(node, []).append(line(pod.source, f"pod {pod.name}: {status}, no IP"))

    for e in ev.objects.events:
        node = node_key(ev.node_for(e.source_host) or _event_pod_node(ev, e))
        text = _event_text(e)
        about_agent = bool(e.object) and cni_agent((e.object or "").split("/")[-1])
        # A bare BackOff event next to a CNI readiness failure on the same node is the agent's.
        beside_agent = e.reason == "BackOff" and node in agents
        if CNI_NOT_READY.search(e.message) or beside_agent or (
                about_agent and e.reason in ("BackOff", "Unhealthy")):
            agents.setdefault(node, []).append(line(e.source, text))
        if SANDBOX.search(e.reason or "") or "sandbox" in e.message.lower():
            churn.setdefault(node, []).append(line(e.source, text))
            if e.object and dns_pod(e.object.split("/")[-1]):
                churn_dns.add(node)

    for node, lines_ in agents.items():
        yield Finding(
            detector="S-POD", kind="cni-agent-not-ready", role=Role.SYMPTOM,
            key=f"cni-agent-not-ready@{node}",
            title=f"CNI agent not ready on {node}: pods there cannot get network",
            node=None if node == "?" else node, confidence=0.9,
            why="the CNI agent's readiness fails or it crash-loops; kubelet cannot set up pod "
                "networking while it is down",
            evidence=tuple(lines_[:6]),
            explains=(f"sandbox-churn@{node}", f"pod-no-ip@{node}"),
        )
    for node, lines_ in churn.items():
        yield Finding(
            detector="S-POD", kind="sandbox-churn", role=Role.SYMPTOM,
            key=f"sandbox-churn@{node}",
            title=f"Pod sandboxes on {node} are killed and re-created over and over",
            node=None if node == "?" else node, confidence=0.85,
            why="SandboxChanged/FailedCreatePodSandBox: the CNI ADD for the sandbox fails, so "
                "kubelet tears it down and tries again",
            evidence=tuple(lines_[:6]),
            explains=("dns-down",) if node in churn_dns else (),
        )
    for node, lines_ in no_ip.items():
        yield Finding(
            detector="S-POD", kind="pod-no-ip", role=Role.SYMPTOM, key=f"pod-no-ip@{node}",
            title=f"{len(lines_)} pod(s) on {node} have no IP address",
            node=None if node == "?" else node, confidence=0.8,
            why="pods wait for the CNI plugin to assign an address",
            evidence=tuple(lines_[:6]),
        )
    if dns_lines:
        yield Finding(
            detector="S-POD", kind="dns-down", role=Role.SYMPTOM, key="dns-down",
            title="Cluster DNS (CoreDNS) is not running/ready: Service names do not resolve",
            confidence=0.85, why="no ready DNS pod behind the kube-dns Service",
            evidence=tuple(dns_lines[:6]),
        )
