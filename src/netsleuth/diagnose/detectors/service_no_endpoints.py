"""Failure mode 27: a Service with no endpoints, or with endpoints on the wrong port.

No ready endpoint: kube-proxy (iptables mode) writes, in filter KUBE-SERVICES,
`-d <ClusterIP> ... --comment "ns/svc:port has no endpoints" -j REJECT` (default
icmp-port-unreachable), so a client's connect() fails at once with ECONNREFUSED
("connection refused") on every node — not a timeout, and DNS still resolves the name
(kubernetes/kubernetes#7341, #36335). The reason is in the objects: a selector no pod's labels
match, or matching pods that are not Ready.

Wrong targetPort: endpoints exist, kube-proxy DNATs to <pod>:<targetPort>, and nothing in the
pod listens there, so the pod's kernel answers the SYN with a RST: refused again, from the pod
this time (kubernetes/kubernetes#78994).

Proof: a connection to the Service traced through a node's rules (its real iptables-save, or
kube-proxy's rules rebuilt from the Service objects) ends at the REJECT, or is DNATed to a port
the endpoint pods do not declare.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._clients import ClientError, errors_to
from netsleuth.diagnose.detectors._common import datapath, line
from netsleuth.diagnose.detectors._host_evidence import numbered
from netsleuth.diagnose.detectors._paths import deciding_step, probe_nodes
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import Endpoints, Pod, Service, ServicePort
from netsleuth.model.source import SourceRef
from netsleuth.parse.transcript import parse_command

KIND = "service-no-endpoints"
KIND_PORT = "service-targetport-mismatch"
NO_ENDPOINTS_MSG = re.compile(r"no endpoints available for service \\?\"(?P<name>[\w.-]+)")


def _endpoints_of(ev: Evidence, svc: Service) -> list[Endpoints]:
    return [e for e in ev.objects.endpoints
            if (e.service or e.name) == svc.name and e.namespace in (svc.namespace, None)]


def _describe_none(ev: Evidence, svc: Service) -> EvidenceLine | None:
    """`Endpoints: <none>` in a `kubectl describe svc` of this Service."""
    for raw in ev.outputs("kubectl-describe-svc"):
        name_ok = False
        for ref, text in numbered(raw):
            if re.match(rf"^Name:\s+{re.escape(svc.name or '')}\s*$", text):
                name_ok = True
            elif text.startswith("Name:"):
                name_ok = False
            if name_ok and re.match(r"^Endpoints:\s+<none>\s*$", text):
                return line(ref, text)
    return None


def _no_endpoints(ev: Evidence, svc: Service) -> list[EvidenceLine] | None:
    """Evidence that the Service has no ready endpoint, or None if it has (or unknown)."""
    objs = _endpoints_of(ev, svc)
    if any(o.ready_addresses or o.truncated for o in objs):
        return None
    if svc.endpoints or any(p.endpoints for p in svc.ports):
        return None
    lines: list[EvidenceLine] = []
    for o in objs:
        shown = ", ".join(o.shown) if o.shown else "<none>"
        lines.append(line(o.source, f"{o.kind} {o.namespace or ''}/{o.name}: {shown}"))
    said = _describe_none(ev, svc)
    if said is not None:
        lines.append(said)
    return lines or None


def _matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _pods_in(ev: Evidence, ns: str | None) -> list[Pod]:
    pods = [p for p in ev.objects.pods if ns is None or p.namespace in (ns, None)]
    shown = _table_labels(ev)
    out: list[Pod] = []
    for p in pods:
        got = shown.get((p.namespace, p.name)) or shown.get((None, p.name))
        if not p.labels and got is not None:
            p = replace(p, labels=got[0], source=got[1])
        out.append(p)
    return out


def _table_labels(ev: Evidence) -> dict[tuple[str | None, str | None], tuple[dict[str, str],
                                                                            SourceRef]]:
    """Pod labels from the LABELS column of `kubectl get pods --show-labels` (the table
    parser does not keep that column)."""
    out: dict[tuple[str | None, str | None], tuple[dict[str, str], SourceRef]] = {}
    for raw in ev.outputs("kubectl-get-pods"):
        rows = list(numbered(raw))
        if not rows or "LABELS" not in rows[0][1].split():
            continue
        header = rows[0][1]
        has_ns = header.startswith("NAMESPACE")
        ns_cmd = None
        if raw.command:
            call = parse_command(raw.command).kubectl
            ns_cmd = call.namespace if call is not None else None
        for ref, text in rows[1:]:
            cols = text.split()
            if len(cols) < 3:
                continue
            ns, name = (cols[0], cols[1]) if has_ns else (ns_cmd, cols[0])
            labels = {}
            if cols[-1] != "<none>":
                for kv in cols[-1].split(","):
                    k, sep, v = kv.partition("=")
                    if sep:
                        labels[k] = v
            out[(ns, name)] = (labels, ref)
    return out


def _why_empty(ev: Evidence, svc: Service) -> tuple[str, list[EvidenceLine], str]:
    """(reason, evidence, fix) from the selector and the pods' labels/readiness."""
    selector = svc.selector or {}
    sel_text = ",".join(f"{k}={v}" for k, v in selector.items())
    pods = [p for p in _pods_in(ev, svc.namespace) if p.labels]
    if not selector or not pods:
        return ("", [], "")
    matching = [p for p in pods if _matches(selector, p.labels)]
    if not matching:
        def overlap(p: Pod) -> int:
            return sum(1 for k, v in selector.items() if p.labels.get(k) == v) * 2 + sum(
                1 for k in selector if k in p.labels) + sum(
                1 for v in selector.values() if v in p.labels.values())
        best = max(pods, key=overlap)
        if overlap(best) == 0:
            return (f"no pod in namespace {svc.namespace} has the labels {sel_text}", [], "")
        labels = ",".join(f"{k}={v}" for k, v in sorted(best.labels.items()))
        diff = [f"{k}={v} (pod has {k}={best.labels[k]})" if k in best.labels
                else f"{k}={v} (pod has no {k})" for k, v in selector.items()
                if best.labels.get(k) != v]
        return (f"the selector {sel_text} matches no pod; the closest, {best.name}, has "
                f"{labels}: " + "; ".join(diff),
                [line(best.source, f"pod {best.name} labels: {labels}")],
                f"kubectl -n {svc.namespace} patch service {svc.name} -p "
                f"'{{\"spec\":{{\"selector\":{_json_map(_fixed_selector(selector, best.labels))}}}}}'"
                "   # or relabel the pods")
    unready = [p for p in matching if (p.ready and p.ready.startswith("0/"))
               or any(c.ready is False for c in p.containers)]
    if unready and len(unready) == len(matching):
        names = ", ".join(p.name or "?" for p in unready[:3])
        return (f"{len(matching)} pod(s) match {sel_text} but none is Ready ({names}); "
                "not-ready pods are left out of the endpoints",
                [line(p.source, f"pod {p.name}: READY {p.ready or '?'} {p.status or ''}")
                 for p in unready[:2]],
                f"kubectl -n {svc.namespace} describe pod {unready[0].name}   # fix the "
                "readiness probe or the app")
    return ("", [], "")


def _fixed_selector(selector: Mapping[str, str], labels: Mapping[str, str]) -> dict[str, str]:
    return {k: labels.get(k, v) for k, v in selector.items()}


def _json_map(d: Mapping[str, str]) -> str:
    return "{" + ",".join(f'"{k}":"{v}"' for k, v in d.items()) + "}"


def _trace(node: NodeEvidence, svc: Service, port: ServicePort) -> Trace | None:
    ip = svc.cluster_ip
    if ip is None:
        return None
    return datapath(node.state).trace(dst=ip, dport=port.port, proto=port.protocol.lower())


@detector("C27", title="Service with no (or wrong) endpoints", needs=("services", "endpoints"),
          mode="27")
def service_no_endpoints(ev: Evidence) -> Iterator[Finding]:
    nodes = probe_nodes(ev)
    seen: set[tuple[str | None, str | None]] = set()
    for svc in ev.objects.services:
        if svc.cluster_ip is None or svc.headless or not svc.ports or svc.selector == {}:
            continue
        if (svc.namespace, svc.name) in seen:
            continue  # the same Service shown twice (get, describe): the first view decides
        seen.add((svc.namespace, svc.name))
        if svc.type == "ExternalName":
            continue
        empty = _no_endpoints(ev, svc)
        if empty is not None:
            f = _empty_finding(ev, svc, empty, nodes)
            if f is not None:
                yield f
            continue
        f = _target_port_finding(ev, svc, nodes)
        if f is not None:
            yield f


def _empty_finding(ev: Evidence, svc: Service, empty: list[EvidenceLine],
                   nodes: list[NodeEvidence]) -> Finding | None:
    port = svc.ports[0]
    trace = None
    reject_line: EvidenceLine | None = None
    node_name = None
    for node in nodes:
        t = _trace(node, svc, port)
        if t is None:
            continue
        step = deciding_step(t.main) if t.verdict == Verdict.REJECTED else None
        if step is not None:
            trace, node_name = t, node.name
            reject_line = line(step.source, f"{step.rule}   → {step.action} "
                                            f"(client sees {t.errno or 'connection refused'})")
            break
    reason, why_lines, fix_cmd = _why_empty(ev, svc)
    proxy_msgs = [line(ln.source, ln.text) for ln in ev.objects.logs
                  if (m := NO_ENDPOINTS_MSG.search(ln.text)) and m.group("name") == svc.name]
    for raw in ev.raw:
        for ref, text in numbered(raw):
            m = NO_ENDPOINTS_MSG.search(text)
            if m and m.group("name") == svc.name:
                proxy_msgs.append(line(ref, text.strip()))
    clients = errors_to(ev, {svc.cluster_ip} if svc.cluster_ip else set(), {"ECONNREFUSED"})
    if trace is None and not reason and not clients and not proxy_msgs:
        return None
    unready = "none is Ready" in reason
    if unready or (not reason and not clients):
        return _unready_symptom(svc, empty, why_lines, reject_line, trace, reason, clients)
    evidence = list(empty[:2])
    if reject_line is not None:
        evidence.append(reject_line)
    evidence += why_lines + [c.evidence for c in clients[:2]] + proxy_msgs[:1]
    confidence = 0.9 if trace is not None else 0.7
    if reason:
        confidence = min(0.97, confidence + 0.04)
    explains = [k for c in clients for k in c.explain_keys()]
    name = f"{svc.namespace}/{svc.name}"
    detail = [f"{name} ({svc.cluster_ip}:{port.port}/{port.protocol}) has no ready endpoint."]
    if trace is not None:
        detail.append(f"Traced on {node_name}: kube-proxy's \"has no endpoints\" REJECT answers "
                      "the SYN with ICMP port-unreachable, so clients get ECONNREFUSED at once "
                      "(DNS still resolves the name).")
    if reason:
        detail.append("Why: " + reason + ".")
    fixes = []
    if fix_cmd:
        fixes.append(Fix(fix_cmd, "now", "make the selector and the pods' labels agree (or get "
                                         "the pods Ready); kube-proxy then replaces the REJECT "
                                         "with DNAT rules"))
    fixes.append(Fix(f"kubectl -n {svc.namespace} get endpoints {svc.name} -o wide; kubectl -n "
                     f"{svc.namespace} get pods -l "
                     + ",".join(f"{k}={v}" for k, v in (svc.selector or {}).items())
                     + " -o wide", "now", "confirm which pods the selector picks"))
    return Finding(
        detector="C27", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{name}",
        title=f"Service {name} has no endpoints: connections are refused"
              + (f" ({reason.split(';')[0]})" if reason else ""),
        node=None, confidence=confidence,
        why=("a connection to the ClusterIP traced through kube-proxy's rules ends at its \"has "
             "no endpoints\" REJECT (ECONNREFUSED)" if trace is not None else
             "the Service's endpoints are empty"),
        evidence=tuple(evidence), explains=tuple(dict.fromkeys(explains)), fix=tuple(fixes),
        detail="\n".join(detail), trace=trace,
    )


def _unready_symptom(svc: Service, empty: list[EvidenceLine], why_lines: list[EvidenceLine],
                     reject_line: EvidenceLine | None, trace: Trace | None, reason: str,
                     clients: list[ClientError]) -> Finding:
    """No ready endpoint because the pods are not Ready (or for an unknown reason): an
    observation whose cause is the pods', not the Service's."""
    name = f"{svc.namespace}/{svc.name}"
    dns = svc.namespace in ("kube-system", None) and svc.name in ("kube-dns", "coredns")
    evidence = [*empty[:2], *([reject_line] if reject_line else []), *why_lines[:2]]
    return Finding(
        detector="C27", kind="service-no-ready-endpoints", role=Role.SYMPTOM,
        key="dns-down" if dns else f"svc-no-ready-endpoints:{name}",
        title=f"Service {name} has no ready endpoint" + (f": {reason}" if reason else ""),
        confidence=0.85, why="kube-proxy REJECTs connections to a Service without ready "
                             "endpoints (connection refused)" if trace is not None else
                             "the Service's endpoints are empty",
        evidence=tuple(evidence),
        explains=tuple(dict.fromkeys(k for c in clients for k in c.explain_keys())),
        trace=trace,
    )


def _target_port_finding(ev: Evidence, svc: Service, nodes: list[NodeEvidence]) -> Finding | None:
    for port in svc.ports:
        objs = _endpoints_of(ev, svc)
        ep_ports = {p.port for o in objs for p in o.ports}
        ep_ips = {a.ip for o in objs for a in o.ready_addresses if a.ip is not None}
        target = port.target_port
        if target and target.isdigit():
            ep_ports.add(int(target))
        if not ep_ports or not ep_ips:
            continue
        pods = [p for p in ev.objects.pods if set(p.ips) & ep_ips]
        declared: set[int] = set()
        pod_lines: list[EvidenceLine] = []
        for p in pods:
            for c in p.containers:
                for spec in c.ports:
                    num = spec.split("/", 1)[0]
                    if num.isdigit():
                        declared.add(int(num))
                        pod_lines.append(line(c.source, f"pod {p.name} container {c.name}: "
                                                        f"port {spec}"))
        if not declared or ep_ports & declared:
            continue
        bad = sorted(ep_ports)[0]
        trace = None
        dnat_line = None
        for node in nodes:
            t = _trace(node, svc, port)
            if t is None:
                continue
            dn = [s for o in t.outcomes for s in o.steps if s.action.startswith("DNAT")]
            if dn and dn[0].packet.dport == bad:
                trace = t
                dnat_line = line(dn[0].source, f"{dn[0].rule}   → {dn[0].action}")
                break
        name = f"{svc.namespace}/{svc.name}"
        clients = errors_to(ev, {svc.cluster_ip} if svc.cluster_ip else set(), {"ECONNREFUSED"})
        evidence = [line(svc.source, f"Service {name}: port {port.port} → targetPort "
                                     f"{target or bad}")]
        evidence += [dnat_line] if dnat_line else []
        evidence += pod_lines[:2] + [c.evidence for c in clients[:2]]
        good = sorted(declared)[0]
        return Finding(
            detector="C27", kind=KIND_PORT, role=Role.CAUSE, key=f"cause:{KIND_PORT}@{name}",
            title=f"Service {name} sends traffic to port {bad}, but its pods declare "
                  f"{', '.join(str(d) for d in sorted(declared))}",
            node=None, confidence=0.85 if trace is not None else 0.7,
            why="kube-proxy DNATs to <pod>:<targetPort>; nothing in the pods is declared on "
                "that port, so the pods' kernel answers RST (connection refused)",
            evidence=tuple(evidence),
            explains=tuple(dict.fromkeys(k for c in clients for k in c.explain_keys())),
            fix=(Fix(f"kubectl -n {svc.namespace} patch service {svc.name} --type=json -p "
                     f"'[{{\"op\":\"replace\",\"path\":\"/spec/ports/{svc.ports.index(port)}"
                     f"/targetPort\",\"value\":{good}}}]'", "now",
                     "point targetPort at the port the container listens on"),),
            detail=f"Endpoints of {name} are on port {bad}; the endpoint pods declare "
                   f"{sorted(declared)}. If the app listens elsewhere (or only on 127.0.0.1 "
                   "inside the pod), the connection is refused by the pod itself.",
            trace=trace,
        )
    return None
