"""Failure mode 47: a NetworkPolicy with Egress isolates pods and no rule allows DNS.

Once any NetworkPolicy with `policyTypes: [Egress]` selects a pod, the pod may only send what
some policy selecting it allows (the union of their egress rules). A default-deny
(`podSelector: {}`, `policyTypes: [Egress]`) without a companion rule for UDP+TCP 53 to the
kube-dns pods blocks every lookup: applications report `could not resolve host` / i/o
timeouts and nothing shows up in the CNI's logs. (An Ingress policy in the DNS pods' namespace
that does not admit port 53 does the same from the other side.)

The policies are evaluated with the Kubernetes NetworkPolicy semantics (networking/v1): pod
selection by namespace + podSelector (matchLabels, matchExpressions), rule peers by
namespaceSelector (namespaces carry `kubernetes.io/metadata.name`), podSelector, ipBlock, and
ports. Only CNIs that enforce policies count (plain flannel does not).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any

import yaml

from netsleuth.diagnose.detectors._cni_dns import (
    ev_line,
    host_of_exec,
    raw_lines,
    raw_outputs,
    slog_key,
)
from netsleuth.diagnose.detectors._common import dns_pod
from netsleuth.diagnose.evidence import Evidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import Pod
from netsleuth.model.source import SourceRef

KIND = "netpol-blocks-dns"
DNS_FAIL = re.compile(r"could not resolve host|Could not resolve host|no such host|lookup \S+ on "
                      r"\S+:53|Temporary failure in name resolution|i/o timeout.*:53|"
                      r"getaddrinfo EAI_AGAIN", re.IGNORECASE)
ENFORCING = {"calico", "cilium", "canal", "weave", "antrea", "kube-router", "aws-vpc-cni"}


@dataclass(frozen=True, slots=True)
class Policy:
    namespace: str
    name: str
    selector: Mapping[str, Any]
    types: tuple[str, ...]
    egress: tuple[Mapping[str, Any], ...]
    ingress: tuple[Mapping[str, Any], ...]
    source: SourceRef


def _objects(text: str) -> list[Any]:
    stripped = text.lstrip()
    try:
        if stripped.startswith(("{", "[")):
            data = json.loads(stripped)
            return [data]
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except (ValueError, yaml.YAMLError):
        return []


def _walk(obj: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(obj, Mapping):
        if obj.get("kind") == "NetworkPolicy":
            yield obj
        for item in obj.get("items", []) if isinstance(obj.get("items"), list) else []:
            yield from _walk(item)
    elif isinstance(obj, list):
        for item in obj:
            yield from _walk(item)


def policies(ev: Evidence) -> list[Policy]:
    out: list[Policy] = []
    for raw in raw_outputs(ev, "kubectl-json", "kubectl-yaml", "networkpolicies"):
        if "NetworkPolicy" not in raw.text:
            continue
        lines = raw.text.split("\n")
        for obj in (o for doc in _objects(raw.text) for o in _walk(doc)):
            meta = obj.get("metadata") or {}
            spec = obj.get("spec") or {}
            name = str(meta.get("name", "?"))
            egress = tuple(r or {} for r in spec.get("egress") or [])
            ingress = tuple(r or {} for r in spec.get("ingress") or [])
            types = tuple(spec.get("policyTypes") or (["Ingress"] + (["Egress"] if egress else [])))
            at = next((i for i, text in enumerate(lines) if re.search(
                rf"\bname\W+{re.escape(name)}\b", text)), 0)
            out.append(Policy(str(meta.get("namespace") or "default"), name,
                              spec.get("podSelector") or {}, types, egress, ingress,
                              SourceRef(raw.source.file, raw.source.line + at)))
    return out


def _matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool | None:
    """LabelSelector semantics; None when the labels are unknown and the selector not empty."""
    if not selector:
        return True
    if not labels:
        return None
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != str(v):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in expr.get("values") or []]
        have = labels.get(key)
        if op == "In" and have not in values:
            return False
        if op == "NotIn" and have in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _ns_labels(ns: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": ns}


def _port_ok(rule: Mapping[str, Any]) -> bool:
    ports = rule.get("ports") or []
    if not ports:
        return True
    for p in ports:
        proto = str(p.get("protocol", "TCP")).upper()
        port = p.get("port")
        end = p.get("endPort")
        if proto != "UDP":
            continue
        if port is None or str(port) in ("53", "dns") or (
                isinstance(port, int) and isinstance(end, int) and port <= 53 <= end):
            return True
    return False


def _peer_admits(peer: Mapping[str, Any], dns: list[Pod], dns_ns: str) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"] or {}
        try:
            net = ip_network(str(block.get("cidr")), strict=False)
        except ValueError:
            return False
        excepts = [ip_network(str(e), strict=False) for e in block.get("except") or []]
        return any(p.ip is not None and p.ip in net and not any(p.ip in e for e in excepts)
                   for p in dns) or (not dns and net.prefixlen == 0)
    ns_sel = peer.get("namespaceSelector")
    pod_sel = peer.get("podSelector")
    if ns_sel is None and pod_sel is not None:
        return False  # only pods of the policy's own namespace: never kube-system's DNS
    if ns_sel is not None and _matches(ns_sel, _ns_labels(dns_ns)) is False:
        return False
    if pod_sel is None:
        return True
    labels = dns[0].labels if dns else {"k8s-app": "kube-dns"}
    return _matches(pod_sel, labels) is not False


def _allows_dns(policy: Policy, dns: list[Pod], dns_ns: str) -> bool:
    for rule in policy.egress:
        if not _port_ok(rule):
            continue
        to = rule.get("to") or []
        if not to or any(_peer_admits(peer, dns, dns_ns) for peer in to):
            return True
    return False


@detector("E47", title="NetworkPolicy default-deny blocks DNS/egress", needs=("pods", "logs"),
          mode="47")
def netpol_blocks_dns(ev: Evidence) -> Iterator[Finding]:
    pols = policies(ev)
    egress = [p for p in pols if "Egress" in p.types]
    if not egress:
        return
    cnis = {f.value for f in ev.facts.cni}
    if cnis and not cnis & ENFORCING:
        return  # flannel alone does not enforce NetworkPolicy
    dns = [p for p in ev.objects.pods if dns_pod(p.name)]
    dns_ns = dns[0].namespace if dns and dns[0].namespace else "kube-system"
    by_ns: dict[str, list[Policy]] = {}
    for p in egress:
        by_ns.setdefault(p.namespace, []).append(p)
    for ns, ps in sorted(by_ns.items()):
        pods = [p for p in ev.objects.pods if p.namespace == ns and p.host_network is not True]
        selected = [p for p in pods if any(_matches(x.selector, p.labels) for x in ps)]
        everyone = any(not x.selector for x in ps)
        if not selected and not everyone:
            continue
        allowed = [x for x in ps if _allows_dns(x, dns, dns_ns)]
        if allowed and (everyone or all(
                any(_matches(x.selector, p.labels) for x in allowed) for p in selected)):
            continue
        yield _finding(ev, ns, ps, selected, everyone, cnis)


def _symptoms(ev: Evidence, ns: str) -> tuple[list[EvidenceLine], list[str]]:
    lines: list[EvidenceLine] = []
    keys: list[str] = []
    for ln in ev.objects.logs:
        if ln.namespace not in (ns, None) or not DNS_FAIL.search(ln.message):
            continue
        if ln.namespace is None and not any(p.name == ln.pod and p.namespace == ns
                                            for p in ev.objects.pods):
            continue
        lines.append(ev_line(ln.source, ln.text))
        node = log_node(ev, ln)
        k = slog_key(ev, ln)
        if k:
            keys.append(k)
        if node:
            keys.append(f"dns-errors@{node}")
    for raw in ev.raw:
        if not raw.pod or raw.pod.rpartition("/")[0] != ns:
            continue
        for ref, text in raw_lines(raw):
            if DNS_FAIL.search(text) or "no servers could be reached" in text:
                lines.append(ev_line(ref, text))
                node, _ = host_of_exec(raw, ev)
                if node:
                    keys.append(f"dns-errors@{node}")
                break
    return lines, keys


def _finding(ev: Evidence, ns: str, ps: list[Policy], selected: list[Pod], everyone: bool,
             cnis: set[str]) -> Finding:
    lines, keys = _symptoms(ev, ns)
    nodes = sorted({ev.node_for(p.node) or "" for p in selected if p.node} - {""})
    evidence = [ev_line(p.source, f"NetworkPolicy {ns}/{p.name}: podSelector "
                                  f"{json.dumps(p.selector) if p.selector else '{}'}, policyTypes "
                                  f"{list(p.types)}, {len(p.egress)} egress rule(s)")
                for p in ps[:3]] + lines[:3]
    who = "every pod" if everyone else f"{len(selected)} pod(s)"
    enforced = bool(cnis & ENFORCING)
    fix_yaml = ("kubectl apply -f - <<'EOF'\n"
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
                f"  name: allow-dns\n  namespace: {ns}\nspec:\n  podSelector: {{}}\n"
                "  policyTypes: [Egress]\n  egress:\n  - to:\n    - namespaceSelector:\n"
                "        matchLabels: {kubernetes.io/metadata.name: kube-system}\n"
                "      podSelector:\n        matchLabels: {k8s-app: kube-dns}\n"
                "    ports:\n    - {protocol: UDP, port: 53}\n    - {protocol: TCP, port: 53}\nEOF")
    explains = list(dict.fromkeys(keys + [f"dns-errors@{n}" for n in nodes]))
    return Finding(
        detector="E47", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@?",
        title=f"NetworkPolicies in {ns} isolate {who} for egress and none allows DNS (53/UDP "
              "to kube-dns)",
        confidence=(0.9 if lines else 0.65) if enforced else 0.5,
        why="evaluated with the NetworkPolicy semantics: the union of the egress rules of the "
            "policies selecting these pods admits no UDP 53 to the kube-dns pods"
            + ("" if enforced else "; the CNI that enforces them is not named in the evidence")
            + ("; DNS failures from that namespace corroborate it" if lines else ""),
        evidence=tuple(evidence), explains=tuple(explains),
        fix=(Fix(fix_yaml, "now", "allow DNS (both protocols) before any other egress rule"),
             Fix("ship the allow-dns policy with every default-deny policy (namespace "
                 "templates / policy-as-code)", "permanent", "")),
        detail="Policies are additive: one that allows DNS is enough, but every pod an Egress "
               "policy selects loses everything no policy allows.",
    )
