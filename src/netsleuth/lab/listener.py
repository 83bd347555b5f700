"""A tiny TCP/UDP server that reports the local and peer address it saw.

It exists to observe NAT: a client connects to 10.96.0.1:443, the listener on 192.168.56.3:6443
answers with `{"local": "192.168.56.3:6443", "peer": "192.168.56.3:40312", ...}`, which shows the
DNAT (and any SNAT) the kernel applied. Every record is also appended to a JSON-lines log, so a
packet whose reply never gets back is still seen.

Protocol: the client sends one line (a token, to find its record in the log) and gets one JSON
line back. UDP: one datagram each way; the reply is sent from the datagram's destination address
(IP_PKTINFO), the way a real server bound to 0.0.0.0 answers, so conntrack can undo the NAT.

Run inside a namespace as `python -m netsleuth.lab.listener --name N --proto tcp --port P
--log FILE` (what `lab up` does), or in-process with `ListenerSet` (the differential runner).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import selectors
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Record = dict[str, Any]
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


def fmt(addr: tuple[str, int] | tuple[Any, ...]) -> str:
    return f"{addr[0]}:{addr[1]}"


def open_socket(proto: str, address: str, port: int) -> socket.socket:
    """A listening socket in the current thread's network namespace."""
    if proto == "tcp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(64)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        sock.bind((address, port))
    sock.setblocking(False)
    return sock


@dataclass
class Bound:
    name: str
    proto: str
    sock: socket.socket


def _handle_tcp(b: Bound, emit: Callable[[Record], None]) -> None:
    try:
        conn, peer = b.sock.accept()
    except (BlockingIOError, InterruptedError):
        return
    with conn:
        conn.settimeout(0.5)
        token = ""
        with contextlib.suppress(OSError):
            token = conn.recv(256).decode("utf-8", "replace").strip()
        rec = {
            "listener": b.name,
            "proto": "tcp",
            "local": fmt(conn.getsockname()),
            "peer": fmt(peer),
            "token": token,
        }
        emit(rec)
        with contextlib.suppress(OSError):
            conn.sendall((json.dumps(rec) + "\n").encode())


def _handle_udp(b: Bound, emit: Callable[[Record], None]) -> None:
    try:
        data, ancdata, _flags, peer = b.sock.recvmsg(512, socket.CMSG_SPACE(12))
    except (BlockingIOError, InterruptedError):
        return
    local_ip = b.sock.getsockname()[0]
    for level, ctype, cdata in ancdata:
        if level == socket.IPPROTO_IP and ctype == IP_PKTINFO and len(cdata) >= 12:
            # struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }: addr is the
            # destination in the IP header as received (after any DNAT).
            local_ip = socket.inet_ntoa(cdata[8:12])
    rec = {
        "listener": b.name,
        "proto": "udp",
        "local": f"{local_ip}:{b.sock.getsockname()[1]}",
        "peer": fmt(peer),
        "token": data.decode("utf-8", "replace").strip(),
    }
    emit(rec)
    pktinfo = struct.pack("=i4s4s", 0, socket.inet_aton(local_ip), b"\0\0\0\0")
    with contextlib.suppress(OSError):
        b.sock.sendmsg(
            [(json.dumps(rec) + "\n").encode()], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0, peer
        )


def serve(bound: list[Bound], emit: Callable[[Record], None], stop: threading.Event) -> None:
    """Answer on every socket until `stop` is set."""
    sel = selectors.DefaultSelector()
    for b in bound:
        sel.register(b.sock, selectors.EVENT_READ, b)
    try:
        while not stop.is_set():
            # a short timeout: stop() is noticed quickly (the differential runner builds and
            # removes a lab per case)
            for key, _ in sel.select(timeout=0.02):
                b = key.data
                if b.proto == "tcp":
                    _handle_tcp(b, emit)
                else:
                    _handle_udp(b, emit)
    finally:
        sel.close()


class ListenerSet:
    """Listeners served from a background thread of this process (sockets made by the caller)."""

    def __init__(self) -> None:
        self.bound: list[Bound] = []
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, name: str, proto: str, sock: socket.socket) -> None:
        self.bound.append(Bound(name, proto, sock))

    def _emit(self, rec: Record) -> None:
        with self._lock:
            self.records.append(rec)

    def start(self) -> None:
        self._thread = threading.Thread(target=serve, args=(self.bound, self._emit, self._stop), daemon=True)
        self._thread.start()

    def take(self) -> list[Record]:
        with self._lock:
            out, self.records = self.records, []
        return out

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        for b in self.bound:
            b.sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netsleuth.lab.listener")
    parser.add_argument("--name", required=True)
    parser.add_argument("--proto", choices=("tcp", "udp"), default="tcp")
    parser.add_argument("--address", default="0.0.0.0")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        sock = open_socket(args.proto, args.address, args.port)
    except OSError as exc:
        print(f"listener {args.name}: cannot bind {args.address}:{args.port}: {exc}", file=sys.stderr)
        return 1
    with args.log.open("a", encoding="utf-8") as log:

        def emit(rec: Record) -> None:
            log.write(json.dumps(rec) + "\n")
            log.flush()

        emit({"listener": args.name, "event": "ready"})
        serve([Bound(args.name, args.proto, sock)], emit, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
