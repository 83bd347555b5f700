"""Helpers for the CNI/overlay and DNS detector tests: real node outputs generated in network
namespaces (tests/data/cni_dns/, see generate.py there), pasted into transcripts the way people
paste them, or laid out as bundles."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from netsleuth.diagnose.engine import diagnose
from netsleuth.diagnose.evidence import Evidence, evidence_from_files, evidence_from_transcript
from netsleuth.diagnose.findings import Finding
from netsleuth.diagnose.registry import load_detectors
from netsleuth.diagnose.report import Report

DATA = Path(__file__).resolve().parents[1] / "data" / "cni_dns"


def out(dataset: str, node: str, name: str) -> str:
    """A generated command output, without its trailing newline (as pasted)."""
    return (DATA / dataset / node / name).read_text().rstrip("\n")


def shell(host: str, cmd: str, output: str = "", user: str = "root") -> str:
    prompt = f"{user}@{host}:~# " if user == "root" else f"{user}@{host}:~$ "
    return prompt + cmd + ("\n" + output if output else "") + "\n"


def transcript(*parts: str) -> str:
    return "".join(p if p.endswith("\n") else p + "\n" for p in parts)


def ev_transcript(text: str, name: str = "incident.txt") -> Evidence:
    return evidence_from_transcript(text, name)


def ev_bundle(files: Mapping[str, str], name: str = "bundle") -> Evidence:
    return evidence_from_files(dict(files), name)


def node_files(dataset: str, node: str, only: Iterable[str] | None = None) -> dict[str, str]:
    """nodes/<node>/<file> entries of a bundle from a generated node directory."""
    files: dict[str, str] = {}
    for p in sorted((DATA / dataset / node).iterdir()):
        if only is not None and p.name not in only:
            continue
        files[f"nodes/{node}/{p.name}"] = p.read_text()
    return files


def run(ev: Evidence, detector_id: str) -> list[Finding]:
    return list(load_detectors()[detector_id].fn(ev))


def report(ev: Evidence) -> Report:
    return diagnose(ev)


def kinds(findings: Iterable[Finding]) -> list[tuple[str, str | None]]:
    return [(f.kind, f.node) for f in findings]


def k8s_list(kind: str, items: list[dict[str, object]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                       "items": [{"kind": kind, **i} for i in items]}, indent=2)


def node_json(name: str, ip: str, *, pod_cidr: str | None = None,
              annotations: Mapping[str, str] | None = None, kubelet: str = "v1.29.4",
              kernel: str = "5.15.0-105-generic", ready: bool = True,
              ready_reason: str = "KubeletReady", ready_message: str = "kubelet is posting ready status",
              labels: Mapping[str, str] | None = None) -> dict[str, object]:
    spec: dict[str, object] = {}
    if pod_cidr:
        spec = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
    return {
        "apiVersion": "v1",
        "metadata": {"name": name, "annotations": dict(annotations or {}),
                     "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                            "reason": ready_reason, "message": ready_message}],
            "nodeInfo": {"kubeletVersion": kubelet, "kernelVersion": kernel,
                         "kubeProxyVersion": kubelet, "osImage": "Ubuntu 22.04.4 LTS",
                         "containerRuntimeVersion": "containerd://1.7.13"},
        },
    }


def pod_json(ns: str, name: str, node: str, ip: str | None, *, labels: Mapping[str, str] | None = None,
             host_network: bool = False, ready: bool = True, phase: str = "Running",
             container: str = "app", image: str = "busybox:1.36", waiting: str | None = None,
             owner: tuple[str, str] | None = None, args: list[str] | None = None,
             host_ip: str | None = None) -> dict[str, object]:
    state: dict[str, object] = {"running": {"startedAt": "2024-05-02T08:00:00Z"}}
    if waiting:
        state = {"waiting": {"reason": waiting}}
    meta: dict[str, object] = {"name": name, "namespace": ns, "labels": dict(labels or {})}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                    "uid": "5d1c2a8e-3b7f-4c1d-9e2a-6f0b8c7d1e23"}]
    ctr: dict[str, object] = {"name": container, "image": image}
    if args:
        ctr["args"] = args
    status: dict[str, object] = {
        "phase": phase, "hostIP": host_ip,
        "containerStatuses": [{"name": container, "image": image, "ready": ready,
                               "restartCount": 0, "state": state}]}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {"apiVersion": "v1", "metadata": meta,
            "spec": {"nodeName": node, "hostNetwork": host_network, "containers": [ctr]},
            "status": status}
