"""Probes: a real connect()/send() from inside a lab namespace, and what came of it.

The socket is created inside the namespace (setns on this thread), then driven from here. The
result is one of:

- `connected`: TCP handshake completed, or a UDP/ICMP reply came back;
- `errno`: the socket call failed, with the errno name the application would see;
- `timeout`: nothing came back in time (a DROP somewhere, or no reply).

UDP and ICMP sockets set IP_RECVERR: without it Linux reports only "fatal" ICMP errors (port
unreachable) to a connected datagram socket and silently ignores e.g. host-unreachable
(net/ipv4/udp.c __udp4_lib_err, net/ipv4/ping.c ping_err), which would turn a REJECT into a
timeout. With it every ICMP error sets the socket error, as a TCP connect would see it.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import json
import secrets
import select
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netsleuth.errors import LabError
from netsleuth.lab.netns import in_netns

IP_RECVERR = getattr(socket, "IP_RECVERR", 11)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    proto: str
    target: str
    result: str  # connected | errno | timeout
    errno: str | None = None
    local: str | None = None
    peer: str | None = None
    listener: dict[str, Any] | None = None  # the record of the listener that answered

    def to_dict(self) -> dict[str, Any]:
        return {
            "proto": self.proto,
            "target": self.target,
            "result": self.result,
            "errno": self.errno,
            "local": self.local,
            "peer": self.peer,
            "listener": self.listener,
        }


def parse_target(target: str, proto: str) -> tuple[str, int | None]:
    """`10.96.0.1:443` (tcp/udp) or `10.96.0.1` (icmp) → (ip, port)."""
    host, sep, port_text = target.rpartition(":")
    if not sep:
        host, port_text = target, ""
    try:
        socket.inet_aton(host)
    except OSError:
        raise LabError(f"probe target {target!r}: expected IPv4ADDR:PORT") from None
    if proto == "icmp":
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise LabError(f"probe target {target!r}: {proto} needs a port, as in 10.96.0.1:443")
    return host, int(port_text)


def _errname(code: int) -> str:
    return errno_mod.errorcode.get(code, str(code))


def _fmt(addr: tuple[Any, ...]) -> str:
    return f"{addr[0]}:{addr[1]}"


def _find_in_logs(logs: list[Path], token: str) -> dict[str, Any] | None:
    for path in logs:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if rec.get("token") == token:
                    return dict(rec)
    return None


def probe(
    netns: str,
    dst: str,
    port: int | None,
    proto: str = "tcp",
    timeout: float = 1.5,
    logs: list[Path] | None = None,
    src: str | None = None,
) -> ProbeResult:
    """Send one probe from `netns` to dst[:port] and report what the kernel did with it."""
    token = secrets.token_hex(6)
    if proto == "tcp":
        res = _probe_tcp(netns, dst, port or 0, timeout, token, src)
    elif proto == "udp":
        res = _probe_datagram(netns, dst, port or 0, timeout, token, src, icmp=False)
    elif proto == "icmp":
        res = _probe_datagram(netns, dst, 0, timeout, token, src, icmp=True)
    else:
        raise LabError(f"unknown probe protocol {proto!r}: expected tcp, udp or icmp")
    if res.listener is None and logs:
        # The reply may not have made it back (asymmetric path, DROP on the way back); the
        # listener's log still says whether, and how, the packet arrived.
        time.sleep(0.05)
        rec = _find_in_logs(logs, token)
        if rec is not None:
            return ProbeResult(res.proto, res.target, res.result, res.errno, res.local, res.peer, rec)
    return res


def _probe_tcp(netns: str, dst: str, port: int, timeout: float, token: str, src: str | None) -> ProbeResult:
    target = f"{dst}:{port}"
    with in_netns(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.setblocking(False)
        if src:
            sock.bind((src, 0))
        rc = sock.connect_ex((dst, port))
        deadline = time.monotonic() + timeout
        if rc == errno_mod.EINPROGRESS:
            _, writable, _ = select.select([], [sock], [], timeout)
            if not writable:
                local = _fmt(sock.getsockname())
                return ProbeResult("tcp", target, "timeout", None, local, target)
            rc = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if rc != 0:
            local_err: str | None = None
            with contextlib.suppress(OSError):
                name = sock.getsockname()
                local_err = _fmt(name) if name[0] != "0.0.0.0" else None
            return ProbeResult("tcp", target, "errno", _errname(rc), local_err, target)
        local, peer = _fmt(sock.getsockname()), _fmt(sock.getpeername())
        listener = None
        with contextlib.suppress(OSError):
            sock.sendall((token + "\n").encode())
            listener = _read_reply(sock, deadline)
        return ProbeResult("tcp", target, "connected", None, local, peer, listener)


def _read_reply(sock: socket.socket, deadline: float) -> dict[str, Any] | None:
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        readable, _, _ = select.select([sock], [], [], left)
        if not readable:
            return None
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    try:
        rec = json.loads(buf.decode("utf-8", "replace").splitlines()[0])
    except (ValueError, IndexError):
        return None
    return rec if isinstance(rec, dict) else None


def _icmp_echo(token: str) -> bytes:
    # Ping sockets fill in the identifier and the checksum (net/ipv4/ping.c ping_v4_sendmsg).
    return bytes([8, 0, 0, 0, 0, 0, 0, 1]) + token.encode()


def _probe_datagram(
    netns: str, dst: str, port: int, timeout: float, token: str, src: str | None, icmp: bool
) -> ProbeResult:
    proto = "icmp" if icmp else "udp"
    target = dst if icmp else f"{dst}:{port}"
    with in_netns(netns):
        if icmp:
            _allow_ping_sockets()
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        local: str | None = None
        try:
            if src:
                sock.bind((src, 0))
            sock.connect((dst, port))
            local = _fmt(sock.getsockname())
            sock.send(_icmp_echo(token) if icmp else (token + "\n").encode())
            readable, _, _ = select.select([sock], [], [], timeout)
            if not readable:
                return ProbeResult(proto, target, "timeout", None, local, target)
            data = sock.recv(4096)
        except OSError as exc:
            code = exc.errno or 0
            return ProbeResult(proto, target, "errno", _errname(code), local, target)
        listener = None
        if not icmp:
            with contextlib.suppress(ValueError, IndexError):
                rec = json.loads(data.decode("utf-8", "replace").splitlines()[0])
                listener = rec if isinstance(rec, dict) else None
        return ProbeResult(proto, target, "connected", None, local, target, listener)


def _allow_ping_sockets() -> None:
    """Let this namespace open ICMP datagram sockets (net.ipv4.ping_group_range, per netns)."""
    path = "/proc/sys/net/ipv4/ping_group_range"
    with open(path, encoding="ascii") as fh:
        if fh.read().split() == ["0", "2147483647"]:
            return
    with open(path, "w", encoding="ascii") as fh:
        fh.write("0 2147483647\n")
