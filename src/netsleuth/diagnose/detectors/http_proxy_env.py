"""Failure mode 48: HTTP proxy variables hijack in-cluster calls.

Go's net/http (golang.org/x/net/http/httpproxy) sends every request whose host is not matched
by NO_PROXY to HTTPS_PROXY/HTTP_PROXY. A container runtime or kubelet started with proxy
variables for image pulls passes them to the CNI plugin it executes; a pod can get them from
an admission webhook or a cluster-wide proxy setting. Unless NO_PROXY covers the Service and
pod ranges, the node addresses and `.svc`/`.cluster.local`, calls to the apiserver's Service
IP go to the corporate proxy, which answers `Service Unavailable`/`Forbidden`, or presents
its own certificate (`x509: certificate is valid for proxy.corp, not 10.96.0.1`). Routes and
firewalls are fine: the request never tries the direct path.

Proof: the proxy settings seen (process environment, systemd drop-ins, pod env) evaluated
with Go's NO_PROXY rules against the cluster's own destinations, plus the errors that name
the proxy; the suggested NO_PROXY is re-evaluated the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import ip_network

from netsleuth.diagnose.detectors._cluster import pod_cidr_facts
from netsleuth.diagnose.detectors._common import (
    is_service_ip,
    kubernetes_target,
    line,
    node_key,
)
from netsleuth.diagnose.detectors._nodenet import (
    Hit,
    cluster_node,
    first_ip,
    interface_of,
    scan,
    service_cidr_facts,
)
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.net import IPNetwork

KIND = "http-proxy-hijack"
PROXY_VAR = re.compile(r"(?:^|[\s\"';])((?:HTTPS?|NO|ALL)_PROXY|(?:https?|no|all)_proxy)="
                       r"(\"[^\"]*\"|'[^']*'|[^\s\"';]*)")
# Errors that come from a proxy, not from the destination.
PROXY_ERROR = re.compile(
    r"proxyconnect tcp|Proxy Authentication Required|Received HTTP code \d+ from proxy|"
    r"(?:Get|Post|Put|Patch)\s+\\?\"?https?://[^\s\"\\]+\\?\"?:\s+(?:Service Unavailable|"
    r"Bad Gateway|Forbidden|Gateway Timeout)|"
    r"error getting ClusterInformation: [^\n]*(?:Service Unavailable|Bad Gateway|Forbidden)|"
    r"x509: certificate is valid for [^\n]*, not \S+")
PROGRAMS = ("containerd", "crio", "cri-o", "dockerd", "docker", "kubelet", "k3s", "rke2")


@dataclass(slots=True)
class _Settings:
    """Proxy variables of one process (or pod container), as seen."""

    where: str  # "containerd on worker-1", "pod kube-system/calico-node-x"
    node: str | None
    values: dict[str, str] = field(default_factory=dict)
    lines: list[EvidenceLine] = field(default_factory=list)
    program: str | None = None

    def get(self, name: str) -> str | None:
        # httpproxy.FromEnvironment: the upper-case name first, then the lower-case one.
        return self.values.get(name.upper()) or self.values.get(name.lower())


def no_proxy_matches(no_proxy: str, host: str) -> bool:
    """Whether Go's httpproxy bypasses the proxy for `host` (config.useProxy, inverted)."""
    if host in ("localhost",) or ((ip := first_ip(host)) is not None and ip.is_loopback):
        return True
    ip = first_ip(host)
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        if "/" in entry:
            try:
                net = ip_network(entry, strict=False)
            except ValueError:
                continue
            if ip is not None and ip.version == net.version and ip in net:
                return True
            continue
        if first_ip(entry) is not None:
            if ip is not None and first_ip(entry) == ip:
                return True
            continue
        name = host.lower()
        if entry.startswith("*."):
            entry = entry[1:]
        if entry.startswith("."):
            if name.endswith(entry):
                return True
        elif name == entry or name.endswith("." + entry):
            return True
    return False


def _program(command: str | None, text: str) -> str | None:
    hay = f"{command or ''} {text}"
    for p in PROGRAMS:
        if re.search(rf"\b{re.escape(p)}\b", hay):
            return p
    return None


def _settings(ev: Evidence) -> list[_Settings]:
    out: dict[tuple[str | None, str | None], _Settings] = {}
    for hit in scan(ev, PROXY_VAR):
        if hit.kind == "log":
            continue
        prog = _program(hit.command, hit.text)
        key = (hit.node, prog)
        s = out.get(key)
        if s is None:
            s = out[key] = _Settings(f"{prog or 'a process'} on {hit.node or '?'}", hit.node,
                                     program=prog)
        for m in PROXY_VAR.finditer(hit.text):
            s.values[m.group(1)] = m.group(2).strip("\"'")
        s.lines.append(hit.evidence)
    for pod in ev.objects.pods:
        for ctr in pod.containers:
            env = {k: v for k, v in ctr.env.items() if k.lower() in
                   ("http_proxy", "https_proxy", "no_proxy", "all_proxy")}
            if not env:
                continue
            node = ev.node_for(pod.node) if pod.node else None
            s = _Settings(f"pod {pod.key} container {ctr.name}", node, dict(env),
                          [line(ctr.source if ctr.source.line else pod.source,
                                " ".join(f"{k}={v}" for k, v in env.items()))])
            out[(node, f"pod:{pod.key}:{ctr.name}")] = s
    return [s for s in out.values() if s.get("HTTPS_PROXY") or s.get("HTTP_PROXY")]


def _cluster_targets(ev: Evidence) -> list[tuple[str, str, list[str]]]:
    """(host a client dials, what it is, NO_PROXY entries that would cover it)."""
    out: list[tuple[str, str, list[str]]] = []
    k = kubernetes_target(ev)
    svc = [c for c, _, _ in service_cidr_facts(ev) if c.prefixlen < c.max_prefixlen]
    pods = [c for c, _, _ in pod_cidr_facts(ev)]
    if k is not None:
        out.append((str(k[0]), "the kubernetes Service IP", [str(c) for c in svc] or [str(k[0])]))
    for c in pods[:1]:
        out.append((str(c.network_address + 2), f"a pod address ({c})", [str(c)]))
    out.append(("kubernetes.default.svc", "in-cluster Service names", [".svc", ".cluster.local"]))
    nets: list[IPNetwork] = []
    for name, ips in ev.facts.node_ips.items():
        for ip in ips:
            node = ev.nodes.get(name)
            a = interface_of(node.state, ip) if node is not None else None
            # The node's subnet when its addresses are known, else the address itself.
            nets.append(a.network if a is not None else ip_network(ip))
    for addr in sorted({str(ip) for ips in ev.facts.node_ips.values() for ip in ips})[:1]:
        out.append((addr, "a node address (kubelet, apiserver endpoint)",
                    [str(n) for n in dict.fromkeys(nets)]))
    return out


def _errors(ev: Evidence) -> list[Hit]:
    return scan(ev, PROXY_ERROR)


@detector("F48", title="HTTP proxy variables hijack in-cluster calls", needs=(), mode="48")
def http_proxy_env(ev: Evidence) -> Iterator[Finding]:
    settings = _settings(ev)
    if not settings:
        return
    errors = _errors(ev)
    targets = _cluster_targets(ev)
    for s in settings:
        no_proxy = s.get("NO_PROXY") or ""
        proxied = [(host, what, cover) for host, what, cover in targets
                   if not no_proxy_matches(no_proxy, host)]
        err_hosts = [h for h in errors if _error_host(h) is not None
                     and not no_proxy_matches(no_proxy, _error_host(h) or "")
                     and (s.node is None or h.node in (s.node, None)
                          or not cluster_node(ev, h.node))]
        if not proxied and not err_hosts:
            continue
        yield _finding(ev, s, proxied, err_hosts, no_proxy)


def _error_host(hit: Hit) -> str | None:
    m = re.search(r"https?://\[?([^\s/\]\"\\:]+)", hit.text)
    if m:
        return m.group(1)
    m = re.search(r"x509: certificate is valid for [^\n]*, not (\S+)", hit.text)
    return m.group(1).strip("\"\\") if m else None


def _finding(ev: Evidence, s: _Settings, proxied: list[tuple[str, str, list[str]]],
             errors: list[Hit], no_proxy: str) -> Finding:
    proxy = s.get("HTTPS_PROXY") or s.get("HTTP_PROXY") or "?"
    evidence: list[EvidenceLine] = list(dict.fromkeys(s.lines))[:3]
    evidence.extend(h.evidence for h in errors[:3])
    add: list[str] = []
    for _host, _what, cover in proxied:
        add.extend(c for c in cover if c not in add)
    for h in errors:
        host = _error_host(h)
        ip = first_ip(host)
        if host and not no_proxy_matches(",".join(add), host):
            add.append(str(ip) if ip is not None else host)
    new = ",".join([x for x in no_proxy.split(",") if x.strip()] + add)
    still = [host for host, _, _ in proxied if not no_proxy_matches(new, host)]
    node = s.node
    where = node_key(node)
    explains: list[str] = []
    for h in errors:
        err_node = node_key(h.node if cluster_node(ev, h.node) else node)
        if "x509" in h.text:
            svc = is_service_ip(ev, first_ip(_error_host(h)))
            explains.append(f"{'svc-unreachable' if svc else 'conn-error'}:TLS@{err_node}")
        if "ClusterInformation" in h.text or (s.program in PROGRAMS and h.kind != "log"):
            explains += [f"sandbox-churn@{err_node}", f"pod-no-ip@{err_node}"]
    runtime = s.program if s.program in PROGRAMS else None
    unit = {"crio": "crio", "cri-o": "crio", "dockerd": "docker", "docker": "docker"}.get(
        runtime or "", runtime or "containerd")
    fixes = (
        Fix(f"mkdir -p /etc/systemd/system/{unit}.service.d && printf '[Service]\\n"
            f"Environment=\"NO_PROXY={new}\"\\n' > /etc/systemd/system/{unit}.service.d/"
            f"no-proxy.conf && systemctl daemon-reload && systemctl restart {unit}"
            + (" kubelet" if unit != "kubelet" else ""),
            "now",
            "extend NO_PROXY (and no_proxy) with the cluster's ranges and names."
            + (" Checked with Go's NO_PROXY rules: every cluster destination then bypasses "
               "the proxy." if not still else f" Still proxied: {', '.join(still)}.")),
        Fix("put the same NO_PROXY in every place the proxy is configured (the runtime's and "
            "kubelet's drop-ins, /etc/environment, the pod spec or the proxy webhook)",
            "permanent", "anything that inherits HTTPS_PROXY needs the exceptions too"),
    )
    failing = [h for h in dict.fromkeys(_error_host(e) for e in errors) if h]
    missing = ", ".join([f"{what} ({host})" for host, what, _ in proxied[:4]]
                        + [f"{h} (failing in the errors)" for h in failing[:2]])
    detail = (
        f"{s.where} has HTTPS_PROXY/HTTP_PROXY={proxy} and NO_PROXY="
        f"{no_proxy or '<unset>'}. By Go's NO_PROXY rules, requests to "
        + missing
        + " go to the proxy, which cannot (or will not) reach them: the errors come from the "
        "proxy (HTTP status, its own certificate), not from a dial. Routes and firewalls are "
        "not involved."
    )
    return Finding(
        detector="F48", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{where}",
        title=f"{s.where} sends in-cluster requests to the HTTP proxy {proxy} (NO_PROXY "
              "lacks the cluster ranges)",
        node=node, confidence=0.9 if errors else 0.65,
        why=("NO_PROXY evaluated with Go's rules against the cluster's destinations"
             + ("; errors from the proxy confirm it" if errors else
                "; no error from the proxy is in the evidence yet")),
        evidence=tuple(evidence), explains=tuple(dict.fromkeys(explains)), fix=fixes,
        detail=detail,
    )

