"""Active probes and process/socket listings pasted as text.

traceroute, ping, curl, dig, nslookup tell what a client on a node actually saw (and the errno
class: an immediate `connect: Network is unreachable` is the local FIB saying no, `!H`/`!N`/`!X`
are ICMP unreachables from a router on the way, `* * *` is silence). `ps` shows the flags the
control-plane and node components run with (`--service-cluster-ip-range`, `--node-ip`), and
`lsof -i` / `ss -ltnp` / `netstat -ltnp` who listens where.

Each parser takes text, a source name and the file line of the text's first line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from netsleuth.errors import ParseError
from netsleuth.model.k8s import NetError, ProcessInfo, parse_ip, split_hostport
from netsleuth.model.source import SYNTHETIC, SourceRef
from netsleuth.parse.kubectl_text import normalize_spaces
from netsleuth.parse.logs import extract_net_error

# --- traceroute -----------------------------------------------------------------------------

# ICMP annotations of traceroute(8): !H host, !N network, !P protocol unreachable, !S source
# route failed, !F fragmentation needed, !X communication administratively prohibited,
# !V host precedence violation, !C precedence cutoff, !<num> ICMP unreachable code <num>.
ANNOTATIONS = {
    "!H": "host unreachable",
    "!N": "network unreachable",
    "!P": "protocol unreachable",
    "!S": "source route failed",
    "!F": "fragmentation needed",
    "!X": "administratively prohibited",
    "!V": "host precedence violation",
    "!C": "precedence cutoff",
}


@dataclass(frozen=True, slots=True)
class Probe:
    """One answer of a hop (or `*` for none)."""

    ip: str | None = None
    name: str | None = None
    rtt_ms: float | None = None
    annotation: str | None = None  # "!H", "!N", "!X", "!10"

    @property
    def silent(self) -> bool:
        return self.ip is None and self.rtt_ms is None


@dataclass(frozen=True, slots=True)
class Hop:
    ttl: int
    probes: tuple[Probe, ...]
    source: SourceRef = SYNTHETIC

    @property
    def silent(self) -> bool:
        return all(p.silent for p in self.probes)

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.ip for p in self.probes if p.ip))

    @property
    def annotations(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.annotation for p in self.probes if p.annotation))


@dataclass(frozen=True, slots=True)
class Traceroute:
    target: str | None
    target_ip: str | None
    hops: tuple[Hop, ...] = ()
    error: NetError | None = None  # `connect: Network is unreachable` before any hop
    max_hops: int | None = None
    source: SourceRef = SYNTHETIC

    @property
    def reached(self) -> bool:
        """The last hop answered from the target address itself (without an annotation)."""
        if not self.hops or self.target_ip is None:
            return False
        last = self.hops[-1]
        return any(p.ip == self.target_ip and p.annotation is None for p in last.probes)

    @property
    def unreachable_annotations(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a for h in self.hops for a in h.annotations))


_TR_HEAD = re.compile(r"^traceroute(?:6)? to (?P<target>\S+) \((?P<ip>[^)]+)\)(?:, (?P<max>\d+) hops max)?")
_TR_HOP = re.compile(r"^\s*(?P<ttl>\d+)\s+(?P<rest>.*)$")
_TR_TOKEN = re.compile(
    r"\*|(?P<name>[^\s()]+)\s+\((?P<ip>[^)]+)\)|(?P<rtt>\d+(?:\.\d+)?)\s*ms|(?P<ann>![A-Z]?\d*)"
    r"|(?P<bare>[0-9a-fA-F:.]+[0-9a-fA-F])"
)


def parse_traceroute(text: str, source: str, first_line: int = 1) -> Traceroute:
    """traceroute / traceroute -n / tracepath-like hop lines."""
    lines = normalize_spaces(text).splitlines()
    target: str | None = None
    target_ip: str | None = None
    max_hops: int | None = None
    hops: list[Hop] = []
    error: NetError | None = None
    start = first_line
    for j, line in enumerate(lines):
        head = _TR_HEAD.match(line.strip())
        if head is not None:
            target, target_ip = head.group("target"), head.group("ip")
            max_hops = int(head.group("max")) if head.group("max") else None
            start = first_line + j
            continue
        hop = _TR_HOP.match(line)
        if hop is not None and target is not None:
            hops.append(
                Hop(
                    int(hop.group("ttl")),
                    _tr_probes(hop.group("rest")),
                    SourceRef(source, first_line + j),
                )
            )
            continue
        err = extract_net_error(line)
        if err is not None and error is None:
            error = err
    if target is None and not hops and error is None:
        bad = next((line for line in lines if line.strip()), "")
        raise ParseError(source, first_line, bad, "traceroute output (`traceroute to X (IP), ...`)")
    return Traceroute(target, target_ip, tuple(hops), error, max_hops, SourceRef(source, start))


def _tr_probes(rest: str) -> tuple[Probe, ...]:
    probes: list[Probe] = []
    cur_ip: str | None = None
    cur_name: str | None = None
    for match in _TR_TOKEN.finditer(rest):
        tok = match.group(0)
        if tok == "*":
            probes.append(Probe())
        elif match.group("ip"):
            cur_name, cur_ip = match.group("name"), match.group("ip")
        elif match.group("bare") and parse_ip(match.group("bare")) is not None:
            cur_name, cur_ip = None, match.group("bare")
        elif match.group("rtt"):
            probes.append(Probe(cur_ip, cur_name, float(match.group("rtt"))))
        elif match.group("ann") and probes and probes[-1].rtt_ms is not None:
            last = probes[-1]
            probes[-1] = Probe(last.ip, last.name, last.rtt_ms, match.group("ann"))
    return tuple(probes)


# --- ping -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    target: str | None
    target_ip: str | None
    transmitted: int | None = None
    received: int | None = None
    loss_pct: float | None = None
    replies: tuple[tuple[str, float | None], ...] = ()  # (from, rtt ms)
    unreachable: tuple[tuple[str, str], ...] = ()  # (from, "Destination Host Unreachable")
    error: NetError | None = None
    source: SourceRef = SYNTHETIC


_PING_HEAD = re.compile(r"^PING (?P<target>\S+) \((?P<ip>[^)]+)\)")
_PING_REPLY = re.compile(r"^\d+ bytes from (?P<from>[^:]+?)(?: \([^)]*\))?:.*?time[=<](?P<rtt>[\d.]+)")
_PING_UNREACH = re.compile(r"^From (?P<from>\S+)(?: \([^)]*\))?(?: icmp_seq=\d+)? (?P<what>.+)$")
_PING_STATS = re.compile(
    r"(?P<tx>\d+) packets transmitted, (?P<rx>\d+)(?: packets)? received"
    r".*?(?P<loss>[\d.]+)% packet loss"
)


def parse_ping(text: str, source: str, first_line: int = 1) -> Ping:
    lines = normalize_spaces(text).splitlines()
    target = target_ip = None
    tx = rx = None
    loss: float | None = None
    replies: list[tuple[str, float | None]] = []
    unreach: list[tuple[str, str]] = []
    error: NetError | None = None
    for line in lines:
        s = line.strip()
        if (m := _PING_HEAD.match(s)) is not None:
            target, target_ip = m.group("target"), m.group("ip")
        elif (m := _PING_REPLY.match(s)) is not None:
            replies.append((m.group("from"), float(m.group("rtt"))))
        elif (m := _PING_UNREACH.match(s)) is not None:
            unreach.append((m.group("from"), m.group("what").strip()))
        elif (m := _PING_STATS.search(s)) is not None:
            tx, rx, loss = int(m.group("tx")), int(m.group("rx")), float(m.group("loss"))
        elif error is None:
            error = extract_net_error(s)
    if target is None and error is None and tx is None:
        bad = next((line for line in lines if line.strip()), "")
        raise ParseError(source, first_line, bad, "ping output (`PING X (IP) ...`)")
    return Ping(
        target,
        target_ip,
        tx,
        rx,
        loss,
        tuple(replies),
        tuple(unreach),
        error,
        SourceRef(source, first_line),
    )


# --- curl -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CurlResult:
    exit_code: int | None = None  # curl's `(7)` error number
    error_text: str | None = None
    error: NetError | None = None
    http_status: int | None = None
    connected_to: str | None = None  # `* Connected to 10.96.0.1 (10.96.0.1) port 443`
    elapsed_s: float | None = None  # from `time curl`: `real 1m3.2s`
    source: SourceRef = SYNTHETIC


_CURL_ERR = re.compile(r"^curl: \((?P<code>\d+)\) (?P<text>.*)$")
_CURL_STATUS = re.compile(r"^(?:< )?HTTP/[\d.]+ (?P<code>\d{3})")
_CURL_CONNECTED = re.compile(r"^\* Connected to (?P<host>\S+) \((?P<ip>[^)]+)\) port (?P<port>\d+)")
_TIME_REAL = re.compile(r"^real\s+(?:(?P<m>\d+)m)?(?P<s>[\d.]+)s$")


def parse_curl(text: str, source: str, first_line: int = 1) -> CurlResult:
    code: int | None = None
    err_text: str | None = None
    error: NetError | None = None
    status: int | None = None
    connected: str | None = None
    elapsed: float | None = None
    at = first_line
    for j, line in enumerate(normalize_spaces(text).splitlines()):
        s = line.strip()
        if (m := _CURL_ERR.match(s)) is not None:
            code, err_text, at = int(m.group("code")), m.group("text"), first_line + j
            error = extract_net_error(m.group("text")) or error
        elif (m := _CURL_STATUS.match(s)) is not None:
            status = int(m.group("code"))
        elif (m := _CURL_CONNECTED.match(s)) is not None:
            connected = f"{m.group('ip')}:{m.group('port')}"
        elif (m := _TIME_REAL.match(s)) is not None:
            elapsed = int(m.group("m") or 0) * 60 + float(m.group("s"))
        elif s.startswith("*") and error is None and "failed" in s.lower():
            error = extract_net_error(s)
    return CurlResult(code, err_text, error, status, connected, elapsed, SourceRef(source, at))


# --- dig / nslookup -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    name: str
    type: str
    value: str
    ttl: int | None = None


@dataclass(frozen=True, slots=True)
class DnsResult:
    tool: str  # "dig" or "nslookup"
    query: str | None = None
    server: str | None = None  # "10.96.0.10#53"
    status: str | None = None  # NOERROR, NXDOMAIN, SERVFAIL, REFUSED
    answers: tuple[DnsAnswer, ...] = ()
    error: NetError | None = None
    source: SourceRef = SYNTHETIC

    @property
    def resolved(self) -> bool:
        return bool(self.answers)


_DIG_STATUS = re.compile(r"status: (?P<status>[A-Z]+)")
_DIG_SERVER = re.compile(r"^;; SERVER: (?P<server>\S+?)(?:\(|$)")
_DIG_QUESTION = re.compile(r"^;(?P<name>\S+)\s+(?:IN\s+)?(?P<type>[A-Z]+)\s*$")
_DIG_RR = re.compile(r"^(?P<name>\S+)\s+(?P<ttl>\d+)\s+IN\s+(?P<type>[A-Z]+)\s+(?P<value>.+)$")


def parse_dig(text: str, source: str, first_line: int = 1) -> DnsResult:
    query = server = status = None
    answers: list[DnsAnswer] = []
    error: NetError | None = None
    short: list[str] = []
    for line in normalize_spaces(text).splitlines():
        s = line.strip()
        if not s:
            continue
        if (m := _DIG_STATUS.search(s)) is not None and s.startswith(";;"):
            status = m.group("status")
        elif (m := _DIG_SERVER.match(s)) is not None:
            server = m.group("server")
        elif (m := _DIG_QUESTION.match(s)) is not None:
            query = m.group("name")
        elif (m := _DIG_RR.match(s)) is not None:
            answers.append(
                DnsAnswer(m.group("name"), m.group("type"), m.group("value").strip(), int(m.group("ttl")))
            )
        elif s.startswith(";"):
            if error is None and not s.startswith("; <<>>"):
                error = extract_net_error(s)
        elif parse_ip(s) is not None:  # dig +short
            short.append(s)
    answers.extend(DnsAnswer(query or "", "A" if ":" not in ip else "AAAA", ip) for ip in short)
    if status in ("NXDOMAIN", "SERVFAIL", "REFUSED") and error is None:
        error = NetError(
            errno=status if status != "REFUSED" else "ECONNREFUSED",
            text=status,
            op="lookup",
            dst=server,
        )
    return DnsResult("dig", query, server, status, tuple(answers), error, SourceRef(source, first_line))


_NS_SERVER = re.compile(r"^Server:\s+(?P<server>\S+)")
_NS_ADDRESS = re.compile(r"^Address(?: \d+)?:\s+(?P<addr>\S+)(?:\s+(?P<name>\S+))?")
_NS_NAME = re.compile(r"^Name:\s+(?P<name>\S+)")


def parse_nslookup(text: str, source: str, first_line: int = 1) -> DnsResult:
    server: str | None = None
    name: str | None = None
    answers: list[DnsAnswer] = []
    error: NetError | None = None
    status: str | None = None
    seen_server_addr = False
    for line in normalize_spaces(text).splitlines():
        s = line.strip()
        if (m := _NS_SERVER.match(s)) is not None:
            server = m.group("server")
        elif (m := _NS_NAME.match(s)) is not None:
            name = m.group("name")
        elif (m := _NS_ADDRESS.match(s)) is not None:
            addr = m.group("addr")
            if name is None and not seen_server_addr:
                # The first Address: line belongs to the server (`10.96.0.10#53`).
                seen_server_addr = True
                if "#" in addr or server is None:
                    server = addr if "#" in addr else server
                    continue
            if parse_ip(addr) is not None:
                answers.append(DnsAnswer(name or "", "AAAA" if ":" in addr else "A", addr))
        elif "server can't find" in s or "can't resolve" in s or "NXDOMAIN" in s:
            status = "NXDOMAIN" if "NXDOMAIN" in s or "can't find" in s else status
            error = error or extract_net_error(s) or NetError("NXDOMAIN", s, op="lookup", dst=server)
        elif error is None:
            error = extract_net_error(s)
    if status is None and answers:
        status = "NOERROR"
    return DnsResult("nslookup", name, server, status, tuple(answers), error, SourceRef(source, first_line))


# --- ps -------------------------------------------------------------------------------------

_PS_EF = re.compile(
    r"^(?P<user>\S+)\s+(?P<pid>\d+)\s+(?P<ppid>\d+)\s+\S+\s+(?P<stime>\S+(?: \d+)?)\s+"
    r"(?P<tty>\S+)\s+(?P<time>[\d:-]+)\s+(?P<cmd>.+)$"
)
_PS_AUX = re.compile(
    r"^(?P<user>\S+)\s+(?P<pid>\d+)\s+[\d.]+\s+[\d.]+\s+\d+\s+\d+\s+\S+\s+\S+\s+\S+\s+"
    r"(?P<time>[\d:]+)\s+(?P<cmd>.+)$"
)


def parse_command_line(
    cmdline: str,
    source: SourceRef = SYNTHETIC,
    *,
    host: str | None = None,
    pid: int | None = None,
    ppid: int | None = None,
    user: str | None = None,
) -> ProcessInfo:
    """A process from its command line; `--flag=value` and `--flag value` become flags.

    `--flag value` is only taken when the next word does not start with `-` (kube components
    use pflag, where a boolean flag never consumes the next word; a value starting with `-`
    must be written `--flag=-x`).
    """
    try:
        argv = tuple(shlex.split(cmdline))
    except ValueError:
        argv = tuple(cmdline.split())
    if not argv:
        argv = ("",)
    program = argv[0].rsplit("/", 1)[-1]
    flags: dict[str, str] = {}
    i = 1
    # `k3s server --flag`, `hyperkube kubelet --flag`, `kubelite --flag`: subcommand words
    # before the first flag are part of the program identity for k3s/hyperkube.
    if program in ("k3s", "hyperkube", "rke2") and len(argv) > 1 and not argv[1].startswith("-"):
        program = f"{program}" if program != "hyperkube" else argv[1]
        i = 2
    while i < len(argv):
        word = argv[i]
        if word.startswith("-") and len(word) > 1 and word != "--":
            name, eq, value = word.lstrip("-").partition("=")
            if eq:
                flags[name] = value
            elif i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                flags[name] = argv[i + 1]
                i += 1
            else:
                flags[name] = "true"
        i += 1
    return ProcessInfo(
        program=program,
        argv=argv,
        flags=flags,
        pid=pid,
        ppid=ppid,
        user=user,
        host=host,
        source=source,
    )


def parse_ps(
    text: str, source: str, first_line: int = 1, *, host: str | None = None
) -> tuple[ProcessInfo, ...]:
    """`ps -ef`, `ps aux`, `ps -eo args`-like listings (header optional: grep removes it).

    `grep` lines of the listing itself are dropped (they only echo the search word).
    """
    out: list[ProcessInfo] = []
    lines = normalize_spaces(text).splitlines()
    for j, line in enumerate(lines):
        s = line.rstrip()
        if not s.strip() or re.match(r"^\s*(UID|USER|PID)\s+", s):
            continue
        m = _PS_EF.match(s.strip()) or _PS_AUX.match(s.strip())
        ref = SourceRef(source, first_line + j)
        if m is not None:
            cmd = m.group("cmd")
            pid = int(m.group("pid"))
            ppid = int(m.group("ppid")) if "ppid" in m.groupdict() else None
            user = m.group("user")
        elif re.match(r"^\s*\d+\s+\S", s):  # `ps -eo pid,args`
            pid_text, cmd = s.strip().split(None, 1)
            pid, ppid, user = int(pid_text), None, None
        else:
            cmd, pid, ppid, user = s.strip(), None, None, None
        proc = parse_command_line(cmd, ref, host=host, pid=pid, ppid=ppid, user=user)
        if proc.program in ("grep", "egrep", "fgrep", "rg"):
            continue
        out.append(proc)
    return tuple(out)


# --- sockets: lsof -i, ss, netstat ----------------------------------------------------------

# lsof prints /etc/services names unless -P. The ones Kubernetes nodes listen on (IANA
# registry names as shipped in /etc/services by netbase/setup).
SERVICE_PORTS = {
    "sun-sr-https": 6443,
    "https": 443,
    "http": 80,
    "domain": 53,
    "bgp": 179,
    "etcd-client": 2379,
    "etcd-server": 2380,
    "http-alt": 8080,
    "webcache": 8080,
    "pcsync-https": 8443,
    "ssh": 22,
    "vxlan": 4789,
    "otv": 8472,
}


@dataclass(frozen=True, slots=True)
class Socket:
    program: str | None
    pid: int | None
    proto: str  # tcp, udp, tcp6, udp6
    local: str  # "*:6443", "127.0.0.1:10248"
    local_port: int | None
    remote: str | None = None
    state: str | None = None  # LISTEN, ESTABLISHED, ...
    user: str | None = None
    source: SourceRef = SYNTHETIC

    @property
    def listening(self) -> bool:
        return self.state in ("LISTEN", None) and self.remote in (
            None,
            "*:*",
            "0.0.0.0:*",
            "[::]:*",
            ":::*",
        )


def _port_of(endpoint: str) -> int | None:
    _host, port = split_hostport(endpoint)
    if port is not None:
        return port
    tail = endpoint.rsplit(":", 1)[-1]
    if tail.isdigit():
        return int(tail)
    return SERVICE_PORTS.get(tail)


def parse_lsof(text: str, source: str, first_line: int = 1) -> tuple[Socket, ...]:
    """`lsof -i[:port]` (`COMMAND PID USER FD TYPE DEVICE SIZE/OFF NODE NAME`)."""
    out: list[Socket] = []
    for j, line in enumerate(normalize_spaces(text).splitlines()):
        parts = line.split()
        if len(parts) < 9 or parts[0] == "COMMAND" or not parts[1].isdigit():
            continue
        proto = parts[7].lower()
        name = " ".join(parts[8:])
        state = None
        m = re.search(r"\((?P<state>[A-Z_]+)\)\s*$", name)
        if m is not None:
            state = m.group("state")
            name = name[: m.start()].strip()
        local, _, remote = name.partition("->")
        v6 = parts[4] == "IPv6"
        out.append(
            Socket(
                parts[0],
                int(parts[1]),
                proto + ("6" if v6 else ""),
                local,
                _port_of(local),
                remote or None,
                state,
                parts[2],
                SourceRef(source, first_line + j),
            )
        )
    if not out and text.strip():
        raise ParseError(
            source,
            first_line,
            text.splitlines()[0],
            "lsof -i output (COMMAND PID USER FD TYPE DEVICE SIZE/OFF NODE NAME)",
        )
    return tuple(out)


_SS_USERS = re.compile(r'users:\(\("(?P<prog>[^"]+)",pid=(?P<pid>\d+)')


def parse_ss(text: str, source: str, first_line: int = 1) -> tuple[Socket, ...]:
    """`ss -tulpn` / `ss -ltn` (with or without the Netid column)."""
    out: list[Socket] = []
    for j, line in enumerate(normalize_spaces(text).splitlines()):
        parts = line.split()
        if not parts or parts[0] in ("Netid", "State"):
            continue
        netid = None
        if parts[0] in ("tcp", "udp", "raw", "sctp", "u_str", "u_dgr", "u_seq", "nl", "p_raw"):
            netid, parts = parts[0], parts[1:]
        if len(parts) < 5 or not parts[1].isdigit():
            continue
        state, local, peer = parts[0], parts[3], parts[4]
        users = _SS_USERS.search(line)
        proto = netid or ("udp" if state == "UNCONN" else "tcp")
        out.append(
            Socket(
                users.group("prog") if users else None,
                int(users.group("pid")) if users else None,
                proto,
                local,
                _port_of(local),
                peer,
                "LISTEN" if state in ("LISTEN", "UNCONN") else state,
                None,
                SourceRef(source, first_line + j),
            )
        )
    return tuple(out)


def parse_netstat(text: str, source: str, first_line: int = 1) -> tuple[Socket, ...]:
    """`netstat -tulpn` / `netstat -an` socket lines."""
    out: list[Socket] = []
    for j, line in enumerate(normalize_spaces(text).splitlines()):
        parts = line.split()
        if len(parts) < 5 or not parts[0].startswith(("tcp", "udp")) or not parts[1].isdigit():
            continue
        proto, local, remote = parts[0], parts[3], parts[4]
        rest = parts[5:]
        state = rest[0] if rest and not re.match(r"^\d+/|^-$", rest[0]) else None
        prog_field = next((r for r in rest if re.match(r"^\d+/", r)), None)
        pid, prog = (None, None)
        if prog_field is not None:
            pid_text, prog = prog_field.split("/", 1)
            pid = int(pid_text)
        out.append(
            Socket(
                prog,
                pid,
                proto,
                local,
                _port_of(local),
                remote,
                state or ("LISTEN" if proto.startswith("udp") else None),
                None,
                SourceRef(source, first_line + j),
            )
        )
    return tuple(out)
