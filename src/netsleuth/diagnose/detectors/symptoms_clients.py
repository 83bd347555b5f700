"""Symptoms: client commands people ran that failed (curl, wget, dig, nslookup, ping, nc).

A command typed at a node's prompt tests that node; `kubectl exec POD -- CMD` (or `kubectl run
... -- CMD`) tests the pod's node, as a pod client. The error's errno class is what counts
(a timeout is a silent drop, "refused" a RST, "no route to host" an ICMP error): see
docs/diagnose.md "Errno reasoning". DNS failures of any kind become `dns-errors@node`; a ping
with the don't-fragment bit that fails for size becomes `large-packets-lost@node`; a `time`d
command that took ~63 s (1+2+4+8+16+32 s of SYN retries) becomes `stall-63s@node`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.datapath.errnos import MEANING
from netsleuth.diagnose.detectors._cni_dns import ev_line, host_of_exec, raw_lines, raw_outputs
from netsleuth.diagnose.detectors._common import is_service_ip, node_key
from netsleuth.diagnose.evidence import Evidence, RawOutput
from netsleuth.diagnose.findings import Finding, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import parse_ip, split_hostport
from netsleuth.parse.logs import extract_net_error
from netsleuth.parse.transcript import parse_command

CLIENTS = re.compile(r"^(?:\S*/)?(curl|wget|dig|nslookup|host|ping|ping6|nc|ncat|telnet)$")
DNS_FAIL = re.compile(r"connection timed out; no servers could be reached|"
                      r"server can't find \S+: (?:SERVFAIL|NXDOMAIN|REFUSED)|"
                      r"can't resolve|Could not resolve host|bad address '|"
                      r"status: SERVFAIL|communications error to \S+#53|no servers could be reached|"
                      r"Temporary failure in name resolution|Name or service not known",
                      re.IGNORECASE)
CLUSTER_NAME = re.compile(r"\.(?:svc|cluster\.local)\.?\b|^kubernetes(?:\.default)?$")
DF_TOO_BIG = re.compile(r"Frag(?:mentation)? needed and DF set|message too long|"
                        r"Message too long", re.IGNORECASE)
LOSS = re.compile(r"\b100% packet loss")
# iputils ping prints an ICMP error it receives (or its own kernel generates: a failed
# neighbour resolution) as "From ADDR icmp_seq=N Destination Host Unreachable"; the errno a
# connect() would get is the one icmp_err_convert[] maps the code to (net/ipv4/icmp.c).
PING_ERROR = re.compile(r"^From \S+(?: \([^)]*\))?:? icmp_seq=\d+ Destination "
                        r"(?P<what>Host|Net|Network) (?:Unreachable|Prohibited)")
TIME_REAL = re.compile(r"^real\s+(\d+)m([\d.]+)s\s*$")


def _client(raw: RawOutput) -> tuple[str, list[str]] | None:
    if not raw.command:
        return None
    cmd = parse_command(raw.command)
    argv = list(cmd.argv)
    call = cmd.kubectl
    if call is not None and call.verb in ("exec", "run") and call.after_dashdash:
        argv = list(call.after_dashdash)
    while (argv and argv[0] in ("time", "sudo", "timeout")) or (argv and argv[0].isdigit()):
        argv = argv[1:]
    if not argv:
        return None
    m = CLIENTS.match(argv[0])
    return (m.group(1), argv) if m else None


VALUE_FLAGS = {"-m", "--max-time", "--connect-timeout", "-o", "--output", "-w", "--write-out",
               "-H", "--header", "-X", "--request", "-d", "--data", "-u", "--user", "--resolve",
               "-A", "--user-agent", "-c", "-W", "-s", "-M", "-i", "-I", "-t", "-p", "-q",
               "--timeout", "-T", "-e", "-b", "-x", "--proxy"}


def _target(argv: list[str]) -> str | None:
    skip = False
    for word in argv[1:]:
        if skip:
            skip = False
            continue
        if word in VALUE_FLAGS:
            skip = True
            continue
        if word.startswith(("-", "+", "@")) or word.isdigit():
            continue
        if "://" in word:
            host = word.split("://", 1)[1].split("/", 1)[0]
            return host
        return word
    return None


@detector("S-CLIENT", title="Failed client commands (curl, dig, nslookup, ping, nc)", needs=())
def client_failures(ev: Evidence) -> Iterator[Finding]:
    for raw in raw_outputs(ev, "curl", "dig", "nslookup", "ping", "unknown", "hostname",
                           command=re.compile(r"\b(curl|wget|dig|nslookup|ping|nc|ncat|telnet)\b")):
        client = _client(raw)
        if client is None:
            continue
        prog, argv = client
        node, pod = host_of_exec(raw, ev)
        where = f"@{node_key(node)}"
        who = f"pod {pod}" if pod else (node or "?")
        target = _target(argv)
        done: set[str] = set()
        for ref, text in raw_lines(raw):
            line = text.strip()
            if not line:
                continue
            real = TIME_REAL.match(line)
            if real is not None:
                seconds = int(real.group(1)) * 60 + float(real.group(2))
                if 61.0 <= seconds <= 66.0 and "stall" not in done:
                    done.add("stall")
                    yield Finding(
                        detector="S-CLIENT", kind="stall-63s", role=Role.SYMPTOM,
                        key=f"stall-63s{where}",
                        title=f"{prog} from {who} to {target} took {seconds:.1f} s", node=node,
                        confidence=0.85,
                        why="~63 s is 1+2+4+8+16+32 s of TCP SYN retransmissions: the first "
                            "SYNs were lost, one finally got through",
                        evidence=(ev_line(ref, line),),
                    )
                continue
            if prog in ("dig", "nslookup", "host") or (DNS_FAIL.search(line) and "resolve" in line):
                m = DNS_FAIL.search(line)
                if m is None or "dns" in done:
                    continue
                nx_only = "NXDOMAIN" in line.upper() and not CLUSTER_NAME.search(target or "")
                if nx_only:
                    continue
                done.add("dns")
                yield Finding(
                    detector="S-CLIENT", kind="dns-lookup-failed", role=Role.SYMPTOM,
                    key=f"dns-errors{where}", title=f"DNS lookups from {who} fail: {line}",
                    node=node, confidence=0.9,
                    why="a resolver query got no (or an error) answer",
                    evidence=(ev_line(ref, line),),
                )
                continue
            if prog.startswith("ping"):
                if "-M" in argv and DF_TOO_BIG.search(line) and "mtu" not in done:
                    done.add("mtu")
                    yield Finding(
                        detector="S-CLIENT", kind="large-packets-lost", role=Role.SYMPTOM,
                        key=f"large-packets-lost{where}",
                        title=f"Packets with DF set are too big on the way from {who} to "
                              f"{target}: {line}", node=node, confidence=0.9,
                        why="a don't-fragment probe larger than the path MTU was refused",
                        evidence=(ev_line(ref, line),),
                    )
                elif (m := PING_ERROR.match(line)) is not None and "loss" not in done:
                    done.add("loss")
                    errno = "EHOSTUNREACH" if m.group("what") == "Host" else "ENETUNREACH"
                    yield _conn(ev, errno, target, where, node, who, ref, line, prog)
                elif LOSS.search(line) and "loss" not in done and "-M" not in argv:
                    done.add("loss")
                    yield _conn(ev, "TIMEOUT", target, where, node, who, ref, line, prog)
                continue
            err = extract_net_error(line)
            if err is None or "conn" in done or err.errno in ("NXDOMAIN", "SERVFAIL"):
                continue
            if not (line.startswith(("curl:", "wget:", "nc:", "ncat:", "telnet:")) or
                    prog in ("nc", "ncat", "telnet")):
                continue
            done.add("conn")
            yield _conn(ev, err.errno, err.dst or target, where, node, who, ref, line, prog)


def _conn(ev: Evidence, errno: str, target: str | None, where: str, node: str | None, who: str,
          ref: object, line: str, prog: str) -> Finding:
    host = split_hostport(target)[0] if target else None
    ip = parse_ip(host)
    service = is_service_ip(ev, ip) or bool(host and CLUSTER_NAME.search(host))
    key = (f"svc-unreachable:{errno}" if service else f"conn-error:{errno}") + where
    return Finding(
        detector="S-CLIENT", kind="client-failed", role=Role.SYMPTOM, key=key,
        title=f"{prog} from {who} to {target or '?'} fails: {line}", node=node, confidence=0.9,
        why=f"{errno}: {MEANING.get(errno, '')}".rstrip(": "),
        evidence=(ev_line(ref, line),),  # type: ignore[arg-type]
    )
