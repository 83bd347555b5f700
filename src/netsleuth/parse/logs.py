"""Component log lines (calico/felix, kube-proxy, CoreDNS, flannel, kubelet, containerd, cilium).

Each line yields a `LogLine` with the timestamp, a normalised level and, when the line reports
a socket error, a structured `NetError`. The errno matters more than anything else in a line:
"network is unreachable" (ENETUNREACH) is a verdict of the local routing table, "no route to
host" (EHOSTUNREACH) a failed neighbour or an ICMP unreachable, a timeout a silent drop and
"connection refused" a RST: see connect(2) and the discriminators in
shared/research/failure-modes.md section 0. Go formats these as net.OpError
(`dial tcp 10.96.0.1:443: connect: network is unreachable`, src/net/net.go OpError.Error).

Parsing is total: a line in an unknown format is still a LogLine (message = the line).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import replace

from netsleuth.model.k8s import LogLine, NetError
from netsleuth.model.source import SourceRef

# --- errno phrases --------------------------------------------------------------------------
# (regex, errno, needs socket context). Order = priority when a line holds several phrases.
# "permission denied"/"operation not permitted"/"invalid argument" are only socket errors after
# connect:/sendmsg:/sendto: (otherwise they are file errors, e.g. kube-proxy writing a sysctl).
_ERRNO_PATTERNS: tuple[tuple[re.Pattern[str], str, bool], ...] = tuple(
    (re.compile(rx, re.IGNORECASE), errno, ctx)
    for rx, errno, ctx in (
        (r"network is unreachable|network unreachable", "ENETUNREACH", False),
        (r"no route to host|host is unreachable", "EHOSTUNREACH", False),
        (r"connection refused", "ECONNREFUSED", False),
        (r"connection reset by peer", "ECONNRESET", False),
        (r"broken pipe", "EPIPE", False),
        (r"tls handshake timeout", "TLS", False),
        # dig/nslookup: no answer over UDP; curl's own --connect-timeout timer: not ETIMEDOUT.
        (r"connection timed out; no servers could be reached", "TIMEOUT", False),
        (r"connection timed out after \d+ ?(?:milliseconds|ms|seconds|s)\b", "TIMEOUT", False),
        (r"connection timed out", "ETIMEDOUT", False),
        (r"x509: [^\n]*|remote error: tls: [^\n]*|tls: [a-z][^\n]*", "TLS", False),
        (r"i/o timeout", "TIMEOUT", False),
        (r"address already in use", "EADDRINUSE", False),
        (r"(?:connect|sendmsg|sendto|socket): permission denied", "EACCES", True),
        (r"(?:connect|sendmsg|sendto|socket): operation not permitted", "EPERM", True),
        (r"connect: invalid argument", "EINVAL", True),
        (r"no such host|NXDOMAIN|can't find [^\n]*NXDOMAIN|ENOTFOUND", "NXDOMAIN", False),
        (r"server misbehaving|SERVFAIL", "SERVFAIL", False),
        (
            r"context deadline exceeded|Client\.Timeout exceeded|no servers could be reached"
            r"|operation timed out|timed out|EAI_AGAIN",
            "TIMEOUT",
            False,
        ),
    )
)

# Node.js style: `connect ECONNREFUSED 10.96.0.1:443`.
_NODE_ERRNO = re.compile(
    r"\b(?P<op>connect|read|write|getaddrinfo|send|recv)\s+"
    r"(?P<errno>ENETUNREACH|EHOSTUNREACH|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EADDRINUSE"
    r"|EACCES|EPERM|ENOTFOUND|EAI_AGAIN)\s*(?P<dst>\S+)?"
)
# Go net.OpError prefix: `dial tcp 10.96.0.1:443: connect: ` / `read udp A->B: `.
_GO_OP = re.compile(
    r"\b(?P<op>dial|read|write|accept|listen)\s+(?P<proto>tcp[46]?|udp[46]?|ip[46]?|unix)"
    r"(?:\s+(?:(?P<src>[^\s>]+?)->)?(?P<dst>[^\s]+?))?:\s+"
    r"(?:(?P<sub>connect|read|write|sendto|sendmsg|bind|socket):\s+)?$"
)
_LOOKUP = re.compile(r"\blookup\s+(?P<name>\S+?)(?:\s+on\s+(?P<dst>\S+?))?:\s+$")
_CURL_CONNECT = re.compile(
    r"(?:Failed to connect to|connect to)\s+(?P<host>\S+)\s+port\s+(?P<port>\d+)"
    r"(?:\s+after\s+\d+\s*ms)?(?:\s+failed)?:\s+$",
    re.IGNORECASE,
)
_SYSCALL = re.compile(r"\b(?P<op>connect|sendmsg|sendto|bind|socket):\s+$")
_URL = re.compile(
    r"\b(?:Get|Post|Put|Patch|Delete|Head|GET|POST|PUT|PATCH|DELETE)\s+\\?\"?"
    r"(?P<url>https?://[^\s\"\\]+)"
)


def extract_net_error(text: str) -> NetError | None:
    """The socket error a log/probe line reports, or None.

    >>> e = extract_net_error("dial tcp 10.96.0.1:443: connect: network is unreachable")
    >>> (e.op, e.proto, e.dst, e.errno) if e else None
    ('dial', 'tcp', '10.96.0.1:443', 'ENETUNREACH')
    """
    node = _NODE_ERRNO.search(text)
    best: tuple[re.Match[str], str] | None = None
    for pattern, errno, _ctx in _ERRNO_PATTERNS:
        match = pattern.search(text)
        if match is not None:
            best = (match, errno)
            break
    if best is None and node is None:
        return None
    if best is None:
        assert node is not None
        errno = node.group("errno")
        errno = {"ENOTFOUND": "NXDOMAIN", "EAI_AGAIN": "TIMEOUT"}.get(errno, errno)
        node_dst = node.group("dst")
        return NetError(
            errno=errno,
            text=node.group("errno"),
            op=node.group("op"),
            dst=node_dst.rstrip(",.;)") if node_dst else None,
            url=_find_url(text),
            detail=text.strip(),
        )
    match, errno = best
    phrase = match.group(0)
    head = text[: match.start()]
    op: str | None = None
    proto: str | None = None
    src: str | None = None
    dst: str | None = None
    context_start = match.start()
    ctx_op = re.match(r"(connect|sendmsg|sendto|socket):\s*(.*)$", phrase, re.IGNORECASE)
    if ctx_op is not None:
        op, phrase = ctx_op.group(1).lower(), ctx_op.group(2)
    go = _GO_OP.search(head)
    if go is not None:
        context_start = go.start()
        op, proto = go.group("op"), go.group("proto")
        src, dst = go.group("src"), go.group("dst")
        if dst is not None and dst.endswith(":"):
            dst = dst[:-1]
    else:
        look = _LOOKUP.search(head)
        curl = _CURL_CONNECT.search(head)
        sys_op = _SYSCALL.search(head)
        if look is not None:
            op, dst = "lookup", look.group("dst")
            context_start = look.start()
        elif curl is not None:
            context_start = curl.start()
            host = curl.group("host")
            op = "connect"
            dst = f"[{host}]:{curl.group('port')}" if ":" in host else f"{host}:{curl.group('port')}"
        elif sys_op is not None:
            op = sys_op.group("op")
            context_start = sys_op.start()
    url = _find_url(text)
    if dst is None and url is not None:
        dst = _url_hostport(url)
    return NetError(
        errno=errno,
        text=phrase.strip(),
        op=op,
        proto=proto,
        src=src,
        dst=dst,
        url=url,
        detail=_error_detail(text, context_start),
    )


def _find_url(text: str) -> str | None:
    match = _URL.search(text)
    # Go before 1.14 wrote `Get https://x/y: dial ...` (no quotes): drop the separator colon.
    return match.group("url").rstrip('\\",:') if match else None


def _url_hostport(url: str) -> str | None:
    scheme, _, rest = url.partition("://")
    hostport = rest.split("/", 1)[0]
    if not hostport:
        return None
    if hostport.startswith("["):
        return hostport if "]:" in hostport else f"{hostport}:{443 if scheme == 'https' else 80}"
    if ":" in hostport:
        return hostport
    return f"{hostport}:{443 if scheme == 'https' else 80}"


def _error_detail(text: str, start: int) -> str:
    # The error from its `Get "https://..."` (or op) onwards: the part worth quoting.
    url = _URL.search(text)
    if url is not None and url.start() < start:
        start = url.start()
    return text[start:].strip().rstrip('"')


# --- line formats ---------------------------------------------------------------------------

_LEVELS = {
    "I": "INFO",
    "INFO": "INFO",
    "INF": "INFO",
    "NOTICE": "INFO",
    "W": "WARNING",
    "WARN": "WARNING",
    "WARNING": "WARNING",
    "WRN": "WARNING",
    "E": "ERROR",
    "ERROR": "ERROR",
    "ERR": "ERROR",
    "EROR": "ERROR",
    "CRIT": "ERROR",
    "F": "FATAL",
    "FATAL": "FATAL",
    "PANIC": "FATAL",
    "FTL": "FATAL",
    "CRITICAL": "FATAL",
    "D": "DEBUG",
    "DEBUG": "DEBUG",
    "TRACE": "DEBUG",
    "DBG": "DEBUG",
}

_RFC3339_PREFIX = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d))\s+(?P<rest>.*)$"
)
_JOURNAL = re.compile(
    r"^(?P<ts>[A-Z][a-z]{2}\s+\d{1,2}\s+\d\d:\d\d:\d\d)\s+(?P<host>\S+)\s+"
    r"(?P<prog>[\w./@-]+?)(?:\[(?P<pid>\d+)\])?:\s(?P<rest>.*)$"
)
_KLOG = re.compile(
    r"^(?P<lvl>[IWEF])(?P<md>\d{4})\s+(?P<time>\d\d:\d\d:\d\d\.\d+)\s+(?P<tid>\d+)\s+"
    r"(?P<file>[^\]\s]+)\]\s?(?P<msg>.*)$"
)
_CALICO = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s+\[(?P<lvl>[A-Z]+)\]\[(?P<pid>\d+)\]\s+"
    r"(?:(?P<file>\S+ \d+):\s)?(?P<msg>.*)$"
)
_BRACKET_LEVEL = re.compile(r"^\[(?P<lvl>INFO|ERROR|WARNING|WARN|DEBUG|FATAL|PANIC)\]\s?(?P<msg>.*)$")
_GENERIC_TS = re.compile(
    r"^(?P<ts>\d{4}[-/]\d\d[-/]\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s+"
    r"(?:\[?(?P<lvl>[A-Za-z]{1,8})\]?:?\s+)?(?P<msg>.*)$"
)
_LEVEL_TS = re.compile(  # weave/others: `INFO: 2024/02/15 01:25:31.222 msg`
    r"^(?P<lvl>[A-Z]{3,7}):\s+(?P<ts>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)?)\s+(?P<msg>.*)$"
)
_LOGFMT_PAIR = re.compile(r'(?P<key>[\w.-]+)=(?P<val>"(?:[^"\\]|\\.)*"|\S*)')

_COMPONENT_BY_POD = (
    ("calico-node", "calico"),
    ("calico-kube-controllers", "calico"),
    ("calico", "calico"),
    ("kube-proxy", "kube-proxy"),
    ("coredns", "coredns"),
    ("kube-dns", "coredns"),
    ("kube-flannel", "flannel"),
    ("flannel", "flannel"),
    ("cilium", "cilium"),
    ("weave", "weave"),
    ("kube-apiserver", "kube-apiserver"),
    ("etcd", "etcd"),
    ("nodelocaldns", "node-local-dns"),
    ("node-local-dns", "node-local-dns"),
)
_COMPONENT_BY_PROG = {
    "kubelet": "kubelet",
    "containerd": "containerd",
    "dockerd": "docker",
    "crio": "cri-o",
    "kube-proxy": "kube-proxy",
    "flanneld": "flannel",
    "calico-node": "calico",
    "k3s": "k3s",
    "kernel": "kernel",
}


def component_for(pod: str | None, container: str | None = None) -> str | None:
    """A component name from a pod (or container) name: calico-node-7kvkf → calico."""
    for name in (container, pod):
        if not name:
            continue
        for prefix, comp in _COMPONENT_BY_POD:
            if name.startswith(prefix):
                return comp
    return None


def _level(text: str | None) -> str | None:
    if text is None:
        return None
    return _LEVELS.get(text.upper())


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
        except ValueError:
            return value[1:-1]
        return decoded if isinstance(decoded, str) else value[1:-1]
    return value


def parse_log_line(
    line: str,
    source: SourceRef,
    *,
    pod: str | None = None,
    container: str | None = None,
    namespace: str | None = None,
    component: str | None = None,
) -> LogLine:
    """One log line in any of the formats above (never raises)."""
    text = line.rstrip("\r\n")
    rest = text.strip()
    timestamp: str | None = None
    level: str | None = None
    host: str | None = None
    comp = component or component_for(pod, container)

    match = _RFC3339_PREFIX.match(rest)
    if match is not None:  # `kubectl logs --timestamps` / CRI log prefix
        timestamp, rest = match.group("ts"), match.group("rest")
    match = _JOURNAL.match(rest)
    if match is not None:
        timestamp, host, rest = match.group("ts"), match.group("host"), match.group("rest")
        prog = match.group("prog")
        comp = comp or _COMPONENT_BY_PROG.get(prog, prog)

    message = rest
    if (m := _KLOG.match(rest)) is not None:
        level = _level(m.group("lvl"))
        timestamp = timestamp or f"{m.group('md')} {m.group('time')}"
        message = m.group("msg")
    elif (m := _CALICO.match(rest)) is not None:
        level = _level(m.group("lvl"))
        timestamp = m.group("ts")
        message = m.group("msg")
        comp = comp or "calico"
    elif (m := _BRACKET_LEVEL.match(rest)) is not None:
        level = _level(m.group("lvl"))
        message = m.group("msg")
    elif rest.startswith("{") and rest.endswith("}"):
        try:
            obj = json.loads(rest)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            lvl = obj.get("level") or obj.get("lvl") or obj.get("severity")
            level = _level(str(lvl)) if lvl is not None else None
            ts = obj.get("ts") or obj.get("time") or obj.get("timestamp")
            timestamp = timestamp or (str(ts) if ts is not None else None)
            msg = obj.get("msg") or obj.get("message")
            extra = " ".join(
                f"{k}={v}" for k, v in obj.items() if k in ("error", "err", "reason") and isinstance(v, str)
            )
            message = " ".join(x for x in (str(msg) if msg is not None else "", extra) if x)
            message = message or rest
    elif "level=" in rest and ("msg=" in rest or "time=" in rest):
        pairs = {m2.group("key"): _unquote(m2.group("val")) for m2 in _LOGFMT_PAIR.finditer(rest)}
        level = _level(pairs.get("level"))
        timestamp = timestamp or pairs.get("time") or pairs.get("ts")
        msg = pairs.get("msg", "")
        err = pairs.get("error") or pairs.get("err")
        message = f"{msg} error={err}" if err else (msg or rest)
    elif (m := _LEVEL_TS.match(rest)) is not None and _level(m.group("lvl")) is not None:
        level, timestamp, message = _level(m.group("lvl")), m.group("ts"), m.group("msg")
    elif (m := _GENERIC_TS.match(rest)) is not None:
        timestamp = timestamp or m.group("ts")
        level = _level(m.group("lvl"))
        message = (
            m.group("msg")
            if level is not None or m.group("lvl") is None
            else (f"{m.group('lvl')} {m.group('msg')}")
        )
    return LogLine(
        text=text,
        message=message.strip(),
        pod=pod,
        container=container,
        namespace=namespace,
        component=comp,
        timestamp=timestamp,
        level=level,
        host=host,
        net_error=extract_net_error(rest),
        source=source,
    )


def parse_logs(
    text: str,
    source: str,
    first_line: int = 1,
    *,
    pod: str | None = None,
    container: str | None = None,
    namespace: str | None = None,
    component: str | None = None,
    collapse: bool = True,
) -> tuple[LogLine, ...]:
    """All non-empty lines of a log; `first_line` is the file line of the text's first line.

    With `collapse` (the default) identical messages are folded into one LogLine with a count
    (a crash-looping agent logs the same error every second; the seed has ten in a row).
    """
    lines: list[LogLine] = []
    for i, raw in enumerate(text.splitlines()):
        if not raw.strip():
            continue
        lines.append(
            parse_log_line(
                raw,
                SourceRef(source, first_line + i),
                pod=pod,
                container=container,
                namespace=namespace,
                component=component,
            )
        )
    return collapse_repeats(lines) if collapse else tuple(lines)


def collapse_repeats(lines: Iterable[LogLine]) -> tuple[LogLine, ...]:
    """Fold lines with the same (pod, container, level, message) into the first one.

    Order of first occurrence is kept; `count`, `last_timestamp` and `last_source` record the
    repeats, so "every second for 10 s" stays visible.
    """
    index: dict[tuple[str | None, str | None, str | None, str], int] = {}
    out: list[LogLine] = []
    for line in lines:
        key = (line.pod, line.container, line.level, line.message)
        at = index.get(key)
        if at is None:
            index[key] = len(out)
            out.append(line)
            continue
        prev = out[at]
        out[at] = replace(
            prev,
            count=prev.count + line.count,
            last_timestamp=line.last_timestamp or line.timestamp or prev.last_timestamp,
            last_source=line.last_source or line.source,
        )
    return tuple(out)
