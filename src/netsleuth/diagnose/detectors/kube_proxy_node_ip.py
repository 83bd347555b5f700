"""Failure mode 4: kube-proxy cannot find its Node → nodeIP falls back to 127.0.0.1.

kube-proxy looks up the Node object named by its hostname (`--hostname-override`, else the
OS hostname) to learn the node's IP. When no Node has that name (an FQDN hostname while the
node registered with its short name, a wrong override) it logs `Failed to retrieve node
info: nodes "X" not found` and continues with 127.0.0.1 (`invalid nodeIP, initializing
kube-proxy with 127.0.0.1 as nodeIP`; newer: `Can't determine this node's IP, assuming
127.0.0.1|loopback`). It then cannot tell local endpoints from remote ones
(`externalTrafficPolicy: Local` Services drop traffic, LB health checks fail) and NodePort/
node-IP handling uses the loopback address. Since 1.3x kube-proxy fails instead.

Proof: kube-proxy's own lines, the name it looked for compared with the Node objects (a
mismatch is proven when the node list is in the evidence), and the node the kube-proxy pod
runs on. When the lookup failed for a network reason instead, the fallback is only a symptom
of that (no cause here).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._cluster import k8s_nodes
from netsleuth.diagnose.detectors._common import line, node_key
from netsleuth.diagnose.detectors._nodenet import Hit, scan
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector

KIND = "kube-proxy-node-not-found"
SYMPTOM = "kube-proxy-nodeip-fallback"
NOT_FOUND = re.compile(r"Failed to retrieve node info\"?:?\s*(?:err=)?\"?nodes \\?\"([^\"\\]+)"
                       r"\\?\" not found")
FALLBACK = re.compile(r"invalid nodeIP, initializing kube-proxy with 127\.0\.0\.1 as nodeIP|"
                      r"Can't determine this node's IP, assuming (?:127\.0\.0\.1|loopback)|"
                      r"\"Detected node IP\" address=\"127\.0\.0\.1\"|"
                      r"unable to get node IP for hostname (\S+)")


def _kube_proxy(hit: Hit) -> bool:
    return hit.kind != "log" or (hit.pod or "").startswith("kube-proxy") or "kube-proxy" in \
        hit.text or "proxier" in hit.text or "server_others" in hit.text or "server.go" in hit.text


def _node_of(ev: Evidence, hit: Hit) -> str | None:
    if hit.pod:
        node = ev.pod_node("kube-system", hit.pod)
        if node:
            return node
    return hit.node


def _closest(name: str, nodes: list[str]) -> str | None:
    """The registered Node the hostname most likely means: the short name of an FQDN, the
    FQDN of a short name, or a case-insensitive match."""
    low = name.lower()
    for n in nodes:
        nl = n.lower()
        if nl == low or low.split(".")[0] == nl or nl.split(".")[0] == low \
                or nl.split(".")[0] == low.split(".")[0]:
            return n
    return None


@detector("A04", title="kube-proxy cannot find its Node (nodeIP 127.0.0.1)",
          needs=("logs",), mode="4")
def kube_proxy_node_ip(ev: Evidence) -> Iterator[Finding]:
    fallbacks = [h for h in scan(ev, FALLBACK) if _kube_proxy(h)]
    not_found = [h for h in scan(ev, NOT_FOUND) if _kube_proxy(h)]
    nodes = sorted(k8s_nodes(ev))
    by_node: dict[str, list[EvidenceLine]] = {}
    for h in fallbacks:
        by_node.setdefault(node_key(_node_of(ev, h)), []).append(h.evidence)
    for where, lines in by_node.items():
        yield Finding(
            detector="A04", kind=SYMPTOM, role=Role.SYMPTOM, key=f"{SYMPTOM}@{where}",
            title=f"kube-proxy{' on ' + where if where != '?' else ''} runs with nodeIP "
                  "127.0.0.1",
            node=None if where == "?" else where, confidence=0.9,
            why="kube-proxy's own log: it could not learn the node's IP from its Node object",
            evidence=tuple(lines[:3]),
            detail="NodePorts, externalTrafficPolicy: Local and load-balancer health checks "
                   "are handled with the wrong node address.",
        )
    seen: set[str] = set()
    for h in not_found:
        wanted = h.match.group(1)
        where = node_key(_node_of(ev, h))
        if f"{wanted}@{where}" in seen or (nodes and wanted in nodes):
            continue
        seen.add(f"{wanted}@{where}")
        close = _closest(wanted, nodes) if nodes else None
        if where == "?" and close:
            where = close
        evidence = [h.evidence] + by_node.get(where, [])[:2]
        if nodes:
            k = k8s_nodes(ev).get(close or "")
            listing = ", ".join(nodes[:6])
            evidence.append(line(k.source if k else None,
                                 f"registered Nodes: {listing} — none is named {wanted!r}"))
        yield Finding(
            detector="A04", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{where}",
            title=f"kube-proxy{' on ' + where if where != '?' else ''} looks for Node "
                  f"{wanted!r}, which does not exist"
                  + (f" (the node registered as {close!r})" if close and close != wanted else ""),
            node=None if where == "?" else where,
            confidence=0.95 if nodes else 0.85,
            why=("kube-proxy's log names the Node it looked for"
                 + ("; the node list shows no such Node" if nodes else
                    "; the node list is not in the evidence to compare")),
            evidence=tuple(evidence),
            explains=(f"{SYMPTOM}@{where}", f"{SYMPTOM}@?"),
            fix=(Fix("kubectl -n kube-system edit ds kube-proxy   # command: add "
                     "--hostname-override=$(NODE_NAME), with env NODE_NAME from fieldRef "
                     "spec.nodeName (kubeadm's default)", "now",
                     "kube-proxy then looks up the Node it actually runs on"),
                 Fix(f"or make the OS hostname match the Node name: hostnamectl set-hostname "
                     f"{close or '<node name>'} && kubectl -n kube-system delete pod -l "
                     "k8s-app=kube-proxy --field-selector spec.nodeName="
                     f"{close or '<node name>'}", "permanent",
                     "kubelet and kube-proxy must agree on the node's name")),
            detail=(f"kube-proxy asked the apiserver for Node {wanted!r}; no Node has that "
                    "name" + (f" (the node is registered as {close!r}: FQDN vs short name)"
                              if close and close != wanted else "")
                    + ", so kube-proxy fell back to 127.0.0.1 as the node IP."),
        )
