"""Symptoms: errors kubectl (or a client library) printed, as pasted in a session.

kubectl's own messages are not component logs, but they are often the first thing people
paste: `Unable to connect to the server: ...`, `The connection to the server localhost:8080
was refused`, and the apiserver → kubelet failures behind `kubectl logs/exec`
(`error dialing backend: dial tcp 10.0.2.15:10250: ...`, a `NotFound ... pods/log` from the
wrong kubelet). Keys follow the shared vocabulary (`conn-error:ERRNO@host`,
`svc-unreachable:ERRNO@host`, `kubelet-unreachable@node`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.datapath.errnos import MEANING
from netsleuth.diagnose.detectors._common import is_service_ip, node_key
from netsleuth.diagnose.detectors._nodenet import first_ip, scan, unique_node_of_ip
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Role
from netsleuth.diagnose.registry import detector
from netsleuth.parse.logs import extract_net_error

# The apiserver → kubelet hop of logs/exec/port-forward: older apiservers say "error dialing
# backend", newer ones print the kubelet URL they failed to get.
DIAL_BACKEND = re.compile(r"error dialing backend: (?:dial tcp \[?([0-9a-fA-F.:]+?)\]?:(\d+)"
                          r"|remote error: tls)|"
                          r"Error from server: Get \"https://\[?([0-9a-fA-F.:]+?)\]?:(10250)/")
POD_LOG_NOT_FOUND = re.compile(r"the server could not find the requested resource \(\s*"
                               r"pods/(?:log|exec|portforward|attach) ([\w.-]+)\)")
UPGRADE = re.compile(r"unable to upgrade connection: (?!Forbidden)")
CONNECT = re.compile(r"Unable to connect to the server: (.+)$|"
                     r"couldn't get current server API group list: (.+)$")
REFUSED = re.compile(r"The connection to the server (\S+?) was refused")


# needs nothing: these messages are plain command output, which every input may hold.
@detector("S-KCTL", title="Client-side errors printed by kubectl", needs=())
def kubectl_errors(ev: Evidence) -> Iterator[Finding]:
    kubelet: dict[str, list[EvidenceLine]] = {}
    for hit in scan(ev, DIAL_BACKEND):
        ip = first_ip(hit.match.group(1) or hit.match.group(3))
        node = unique_node_of_ip(ev, ip) if ip is not None else None
        kubelet.setdefault(node_key(node), []).append(hit.evidence)
    for hit in scan(ev, POD_LOG_NOT_FOUND) + scan(ev, UPGRADE):
        name = hit.match.group(1) if hit.match.re is POD_LOG_NOT_FOUND else None
        node = ev.pod_node(None, name) if name else None
        kubelet.setdefault(node_key(node), []).append(hit.evidence)
    for node, lines in kubelet.items():
        yield Finding(
            detector="S-KCTL", kind="kubelet-unreachable", role=Role.SYMPTOM,
            key=f"kubelet-unreachable@{node}",
            title=f"kubectl logs/exec fail: the apiserver cannot reach the kubelet of "
                  f"{'node ' + node if node != '?' else 'the node'}",
            node=None if node == "?" else node, confidence=0.85,
            why="the apiserver proxies logs/exec/port-forward to the kubelet at the node's "
                "InternalIP:10250; this step failed or reached a kubelet that does not have "
                "the pod",
            evidence=tuple(dict.fromkeys(lines))[:4],
        )
    seen: set[str] = set()
    for hit in scan(ev, CONNECT) + scan(ev, REFUSED):
        if hit.kind == "log":
            continue  # component logs are the log detector's
        err = extract_net_error(hit.text)
        target = hit.match.group(1) if hit.match.re is REFUSED else None
        if err is None and target is None:
            continue
        errno = err.errno if err is not None else "ECONNREFUSED"
        dst = err.dst_ip if err is not None else None
        if target is not None:
            dst = first_ip(target.rsplit(":", 1)[0]) or dst
        host = node_key(hit.node)
        key = f"{'svc-unreachable' if is_service_ip(ev, dst) else 'conn-error'}:{errno}@{host}"
        if key in seen:
            continue
        seen.add(key)
        yield Finding(
            detector="S-KCTL", kind="kubectl-error", role=Role.SYMPTOM, key=key,
            title=f"kubectl{' on ' + host if host != '?' else ''} cannot talk to the apiserver: "
                  f"{hit.text.strip()[:160]}",
            node=hit.node, confidence=0.9,
            why=f"{errno}: {MEANING.get(errno, '')}".rstrip(": ") if errno not in ("TLS",) else
                "TLS: the TCP connection was made, the certificate or handshake failed",
            evidence=(hit.evidence,),
        )
