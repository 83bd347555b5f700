"""Client errors with their destination: what a cause may claim to explain.

Symptom keys (`svc-unreachable:ECONNREFUSED@node`) do not carry the destination, so a cause
about one Service must not claim every "refused" on a node. This module finds the failing
client calls (component logs, and curl/wget/nc/telnet/dig/nslookup outputs in a transcript,
run on a node or inside a pod) together with their destination, so a cause can explain
exactly the symptoms whose destination it accounts for — with the keys S-LOG and S-CLIENT use.
"""

from __future__ import annotations

from dataclasses import dataclass

from netsleuth.diagnose.detectors._cluster import exec_pod, exec_pod_object
from netsleuth.diagnose.detectors._common import line, node_key
from netsleuth.diagnose.detectors._host_evidence import numbered
from netsleuth.diagnose.evidence import Evidence, RawOutput, log_node
from netsleuth.diagnose.findings import EvidenceLine
from netsleuth.model.k8s import Service, parse_ip, split_hostport
from netsleuth.model.net import IPAddress
from netsleuth.parse.logs import extract_net_error
from netsleuth.parse.transcript import parse_command

CLIENT_PROGRAMS = {"curl", "wget", "nc", "ncat", "telnet", "dig", "nslookup", "host", "http"}
_VALUE_FLAGS = {"-m", "--max-time", "--connect-timeout", "-o", "--output", "-w", "--write-out",
                "-H", "--header", "-X", "--request", "-d", "--data", "-u", "--user", "-A",
                "-T", "--timeout", "-q", "-O", "-U", "-e", "-x", "--proxy", "-p", "-t",
                "-c", "--resolve"}


@dataclass(frozen=True, slots=True)
class ClientError:
    node: str | None
    pod: str | None
    errno: str
    dst_ip: IPAddress | None
    dst_port: int | None
    dst_name: str | None  # the host name the client used, when not an address
    evidence: EvidenceLine
    text: str
    src_ip: IPAddress | None = None  # the client pod's address, when the client is a pod

    def keys(self) -> list[str]:
        """Same as `explain_keys` (kept: other detector helpers call it by this name)."""
        return self.explain_keys()

    def explain_keys(self) -> list[str]:
        """The symptom keys S-LOG/S-CLIENT give this failure (which of the two prefixes
        depends on how the client named the destination, so both are listed)."""
        wheres = [node_key(self.node)]
        if self.pod and "?" not in wheres:
            wheres.append("?")  # a symptom detector may not know which node the pod is on
        return [f"{p}:{self.errno}@{w}" for w in wheres for p in ("svc-unreachable", "conn-error")]


def _argv(raw: RawOutput) -> list[str]:
    if not raw.command:
        return []
    cmd = parse_command(raw.command)
    argv = list(cmd.argv)
    if cmd.kubectl is not None and cmd.kubectl.after_dashdash:
        argv = list(cmd.kubectl.after_dashdash)
    while (argv and argv[0] in ("time", "sudo", "timeout", "busybox")) or (argv and argv[0].isdigit()):
        argv = argv[1:]
    return argv


def _target(argv: list[str]) -> tuple[str | None, int | None]:
    words: list[str] = []
    skip = False
    for w in argv[1:]:
        if skip:
            skip = False
            continue
        if w in _VALUE_FLAGS:
            skip = True
            continue
        if w.startswith(("-", "+", "@")):
            continue
        words.append(w)
    if not words:
        return None, None
    first = words[0]
    if "://" in first:
        scheme, rest = first.split("://", 1)
        hostport = rest.split("/", 1)[0]
        host, port = split_hostport(hostport)
        if port is None:
            port = {"https": 443, "http": 80}.get(scheme)
        return host, port
    host, port = split_hostport(first)
    if port is None and len(words) > 1 and words[1].isdigit():
        port = int(words[1])
    return host, port


def service_of_name(ev: Evidence, name: str, namespace: str | None) -> Service | None:
    parts = name.rstrip(".").split(".")
    svc_name = parts[0]
    ns = parts[1] if len(parts) > 1 and parts[1] != "svc" else namespace
    for svc in ev.objects.services:
        if svc.name == svc_name and (ns is None or svc.namespace in (ns, None)):
            return svc
    return None


def _pod_ip(ev: Evidence, pod: str | None) -> IPAddress | None:
    p = exec_pod_object(ev, pod)
    if p is None or not p.ips or p.host_network:
        return None
    return p.ips[0]


def client_errors(ev: Evidence) -> list[ClientError]:
    out: list[ClientError] = []
    for ln in ev.objects.logs:
        err = ln.net_error
        if err is None:
            continue
        src_ip = _pod_ip(ev, f"{ln.namespace or ''}/{ln.pod}") if ln.pod else None
        if src_ip is None and err.src:
            src_ip = parse_ip(split_hostport(err.src)[0])
        out.append(ClientError(log_node(ev, ln), ln.pod, err.errno, err.dst_ip, err.dst_port,
                               None, line(ln.source, ln.text), ln.text, src_ip))
    for raw in ev.raw:
        argv = _argv(raw)
        if not argv or argv[0].rsplit("/", 1)[-1] not in CLIENT_PROGRAMS:
            continue
        host, port = _target(argv)
        pod = raw.pod
        node = exec_pod(ev, pod)[0] if pod else ev.node_for(raw.host)
        src_ip = _pod_ip(ev, pod)
        for ref, text in numbered(raw):
            err = extract_net_error(text)
            if err is None or err.errno in ("NXDOMAIN", "SERVFAIL"):
                continue
            ip = err.dst_ip or parse_ip(host)
            dport = err.dst_port or port
            name = host if parse_ip(host) is None else None
            if ip is None and name:
                svc = service_of_name(ev, name, pod.split("/")[0] if pod else None)
                if svc is not None:
                    ip = svc.cluster_ip
            out.append(ClientError(node, pod, err.errno, ip, dport, name, line(ref, text),
                                   text, src_ip))
            break
    return out


def errors_to(ev: Evidence, ips: set[IPAddress], errnos: set[str] | None = None,
              port: int | None = None) -> list[ClientError]:
    """Client errors towards these addresses (and port, when the error says it)."""
    return [e for e in client_errors(ev) if e.dst_ip in ips
            and (errnos is None or e.errno in errnos)
            and (port is None or e.dst_port in (None, port))]
