"""Kernel-differential testing: the real kernel is the oracle for netsleuth's packet tracer.

For each generated case (lab/generate.py) the runner

1. builds the node for real: a namespace `<prefix>-d` (the DUT) whose eth0/eth1 are veths to a
   "wire" namespace `<prefix>-w` (p0/p1) that has no addresses and answers nothing, so every
   frame the DUT emits is observed there and never answered;
2. gives the DUT a permanent neighbour entry, with a MAC that encodes the IP, for every address
   that can be a next hop: a transmitted packet leaves at once, and its destination MAC tells
   which next hop the kernel chose (neighbour entries are not part of a snapshot, so they cannot
   influence the simulator);
3. sends each probe: a real connect()/send() from the DUT (local-out), or a crafted frame
   injected on p0/p1 (received); and observes the outcome: the errno and whether it came from
   the socket call itself (route lookup, netfilter verdict) or later (an ICMP error or RST),
   what a DUT listener saw (after NAT), frames leaving on p0/p1 (forwarded or sent packets
   with their rewritten headers, ICMP errors, RSTs), and conntrack;
4. snapshots the DUT (collect.netlink), loads it with the snapshot loader, traces the same
   packet with `trace_packet`, and compares.

The comparison is on what the kernel shows: the verdict class, the client's errno, where the
packet went (interface, next hop) and its addresses after NAT. When the simulator forks
(`-m statistic`, multipath), the kernel's one outcome must be one of its outcomes. Cases where
the kernel cannot show the outcome (an ICMP error or SYN-ACK with no route back to the source)
are counted as unobservable, not as agreement.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import ipaddress
import json
import secrets
import select
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from netsleuth.errors import LabError
from netsleuth.lab import netns as ns
from netsleuth.lab.engine import BASELINE_SYSCTLS
from netsleuth.lab.generate import LINKS, PORTS, Case, Probe, generate
from netsleuth.lab.listener import ListenerSet, open_socket

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
DUT_MAC = {link: f"02:00:00:00:0{i + 1}:01" for i, link in enumerate(LINKS)}
WIRE = {link: f"p{i}" for i, link in enumerate(LINKS)}
WAIT = 0.08  # seconds to wait for an ICMP error, a RST or a reply: local, so sub-millisecond

ICMP_CODES = {
    0: "icmp-net-unreachable",
    1: "icmp-host-unreachable",
    3: "icmp-port-unreachable",
    9: "icmp-net-prohibited",
    10: "icmp-host-prohibited",
    13: "icmp-admin-prohibited",
}


def neighbor_mac(ip: str) -> str:
    """The MAC of the static neighbour entry for `ip`: 02:01 + the four bytes of the IP."""
    return "02:01:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


# --------------------------------------------------------------------------- observation


@dataclass
class Observed:
    """What the kernel did with one probe, in the simulator's vocabulary."""

    verdict: str  # delivered-local | sent | forwarded | dropped | rejected | unroutable | icmp
    errno: str | None = None  # local-out: the errno the socket call returned first
    later_errno: str | None = None  # local-out: an error that arrived afterwards (ICMP, RST)
    destination: str | None = None  # after NAT
    source: str | None = None  # after NAT
    interface: str | None = None
    next_hop: str | None = None
    icmp: str | None = None  # the ICMP error (or tcp-reset) the node sent back
    observable: bool = True
    note: str = ""


@dataclass
class Frame:
    link: str
    dst_mac: str
    ethertype: int
    src: str = ""
    dst: str = ""
    proto: int = 0
    sport: int = 0
    dport: int = 0
    tcp_flags: int = 0
    payload: bytes = b""
    icmp_type: int = -1
    icmp_code: int = -1
    inner_proto: int = 0
    inner_sport: int = 0
    arp_target: str = ""


def _parse_frame(link: str, data: bytes) -> Frame | None:
    if len(data) < 14:
        return None
    dst_mac = ":".join(f"{b:02x}" for b in data[:6])
    ethertype = struct.unpack("!H", data[12:14])[0]
    f = Frame(link, dst_mac, ethertype)
    if ethertype == 0x0806 and len(data) >= 42:
        f.arp_target = socket.inet_ntoa(data[38:42])
        return f
    if ethertype != 0x0800 or len(data) < 34:
        return None
    ihl = (data[14] & 0x0F) * 4
    f.proto = data[23]
    f.src, f.dst = socket.inet_ntoa(data[26:30]), socket.inet_ntoa(data[30:34])
    l4 = data[14 + ihl :]
    if f.proto in (6, 17) and len(l4) >= 8:
        f.sport, f.dport = struct.unpack("!HH", l4[:4])
        if f.proto == 6 and len(l4) >= 20:
            f.tcp_flags = l4[13]
            f.payload = l4[(l4[12] >> 4) * 4 :]
        elif f.proto == 17:
            f.payload = l4[8:]
    elif f.proto == 1 and len(l4) >= 8:
        f.icmp_type, f.icmp_code = l4[0], l4[1]
        inner = l4[8:]
        if len(inner) >= 28:
            iihl = (inner[0] & 0x0F) * 4
            f.inner_proto = inner[9]
            if len(inner) >= iihl + 4:
                f.inner_sport = struct.unpack("!H", inner[iihl : iihl + 2])[0]
    return f


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def build_frame(p: Probe, token: bytes) -> bytes:
    """An Ethernet frame carrying the probe's first packet (TCP SYN or UDP datagram)."""
    assert p.src is not None and p.iif is not None
    src, dst = socket.inet_aton(p.src), socket.inet_aton(p.dst)
    if p.proto == "tcp":
        l4 = struct.pack("!HHIIBBHHH", p.sport, p.dport, secrets.randbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
        proto = 6
    else:
        l4 = struct.pack("!HHHH", p.sport, p.dport, 8 + len(token), 0) + token
        proto = 17
    pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
    csum = _checksum(pseudo + l4)
    off = 16 if proto == 6 else 6
    l4 = l4[:off] + struct.pack("!H", csum) + l4[off + 2 :]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), secrets.randbits(16), 0, 64, proto, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    mac = bytes.fromhex(DUT_MAC[p.iif].replace(":", ""))
    return mac + bytes.fromhex("020000000fee") + b"\x08\x00" + ip + l4


# --------------------------------------------------------------------------- the lab for one case


class CaseLab:
    """A built case: DUT and wire namespaces, listeners, capture sockets."""

    def __init__(self, case: Case, prefix: str) -> None:
        self.case = case
        self.dut = f"{prefix}-d"
        self.wire = f"{prefix}-w"
        self.listeners = ListenerSet()
        self.captures: dict[str, socket.socket] = {}
        self.mac_to_ip = {neighbor_mac(ip): ip for ip in case.neighbors}
        self.early: list[Frame] = []

    def build(self) -> None:
        c = self.case
        for name in (self.dut, self.wire):
            ns.add_netns(name)
            for key, value in BASELINE_SYSCTLS:
                ns.write_sysctl(name, key, value)
        for link in LINKS:
            ns.run(
                [
                    "ip",
                    "-n",
                    self.dut,
                    "link",
                    "add",
                    link,
                    "address",
                    DUT_MAC[link],
                    "type",
                    "veth",
                    "peer",
                    "name",
                    WIRE[link],
                    "netns",
                    self.wire,
                ]
            )
        ns.ip_batch(self.wire, [f"link set {WIRE[link]} up" for link in LINKS])
        cmds = [f"link set {link} up" for link in LINKS]
        for link, addrs in c.addresses.items():
            cmds += [f"addr add {a} dev {link}" for a in addrs]
        cmds += [
            f"neigh replace {ip} lladdr {neighbor_mac(ip)} dev {link} nud permanent"
            for ip in c.neighbors
            for link in LINKS
        ]
        cmds += [f"route add {r}" for r in c.routes]
        cmds += [f"rule add {r}" for r in c.rules]
        ns.ip_batch(self.dut, cmds)
        for key, value in c.sysctls.items():
            ns.write_sysctl(self.dut, key, value)
        ns.run(["iptables-restore"], netns=self.dut, stdin=c.iptables)
        with ns.in_netns(self.dut):
            for port in PORTS:
                for proto in ("tcp", "udp"):
                    self.listeners.add(f"dut:{port}/{proto}", proto, open_socket(proto, "0.0.0.0", port))
        self.listeners.start()
        with ns.in_netns(self.wire):
            for link in LINKS:
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                sock.bind((WIRE[link], 0))
                sock.setblocking(False)
                self.captures[link] = sock

    def close(self) -> None:
        self.listeners.close()
        for sock in self.captures.values():
            sock.close()
        for name in (self.dut, self.wire):
            # no process lives in these namespaces (listeners are threads of this process)
            ns.run(["ip", "netns", "del", name], check=False)

    # ------------------------------------------------------------------ observing
    def drain(self) -> list[Frame]:
        frames = []
        for link, sock in self.captures.items():
            while True:
                try:
                    data, addr = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own injected frame
                f = _parse_frame(link, data)
                if f is not None:
                    frames.append(f)
        return frames

    def conntrack(self, proto: str, sport: int) -> tuple[str, str] | None:
        """(post-NAT destination, post-NAT source) of the entry whose original sport is
        `sport`, from its reply tuple; None without an entry (or without conntrack)."""
        if shutil.which("conntrack") is None:
            return None
        out = ns.run(
            ["conntrack", "-L", "-p", proto, "--sport", str(sport)], netns=self.dut, check=False
        ).stdout
        for line in out.splitlines():
            fields = [w.split("=", 1) for w in line.split() if "=" in w]
            vals: dict[str, list[str]] = {}
            for k, v in fields:
                vals.setdefault(k, []).append(v)
            if len(vals.get("src", [])) >= 2 and len(vals.get("sport", [])) >= 2:
                return (f"{vals['src'][1]}:{vals['sport'][1]}", f"{vals['dst'][1]}:{vals['dport'][1]}")
        return None

    def route_back(self, dst: str) -> bool:
        proc = ns.run(["ip", "-n", self.dut, "route", "get", dst], check=False)
        first = proc.stdout.split()
        return proc.returncode == 0 and not (first and first[0] in ("unreachable", "prohibit", "blackhole"))

    def _sent(self, frames: list[Frame], p: Probe, want_proto: int) -> Observed | None:
        """A packet of the probe leaving the DUT (forwarded or sent), if one was seen."""
        for f in frames:
            if (
                f.ethertype == 0x0800
                and f.proto == want_proto
                and (
                    (want_proto == 6 and f.tcp_flags & 0x12 == 0x02)
                    or (want_proto == 17 and not f.payload.startswith(b"{"))
                )
            ):
                verdict = "sent" if p.kind == "local" else "forwarded"
                return Observed(
                    verdict,
                    destination=f"{f.dst}:{f.dport}",
                    source=f"{f.src}:{f.sport}",
                    interface=f.link,
                    next_hop=self.mac_to_ip.get(f.dst_mac, f.dst_mac),
                )
        for f in frames:
            if f.arp_target:
                verdict = "sent" if p.kind == "local" else "forwarded"
                return Observed(
                    verdict,
                    interface=f.link,
                    next_hop=f.arp_target,
                    note="next hop unresolved (ARP seen): no headers after NAT",
                )
        return None

    # ------------------------------------------------------------------ probing
    def probe(self, p: Probe) -> Observed:
        self.drain()
        self.listeners.take()
        if p.kind == "local":
            return self._local(p)
        return self._received(p)

    def _local(self, p: Probe) -> Observed:
        token = secrets.token_hex(4)
        with ns.in_netns(self.dut):
            sock = socket.socket(
                socket.AF_INET, socket.SOCK_STREAM if p.proto == "tcp" else socket.SOCK_DGRAM
            )
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", p.sport))
            sock.setblocking(False)
            first: str | None = None
            hook_error = False  # `first` came from sendmsg() (netfilter), not connect()
            later: str | None = None
            reply: dict[str, Any] | None = None
            if p.proto == "tcp":
                rc = sock.connect_ex((p.dst, p.dport))
                if rc not in (0, errno_mod.EINPROGRESS):
                    first = _name(rc)
                else:
                    w = self._wait_socket(sock, writable=True)
                    if w:
                        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            later = _name(err)
                        else:
                            with contextlib.suppress(OSError):
                                sock.send((token + "\n").encode())
                            reply = _read_json(sock)
            else:
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
                try:
                    sock.connect((p.dst, p.dport))
                except OSError as exc:
                    first = _name(exc.errno or 0)  # the route lookup of connect()
                else:
                    try:
                        sock.send((token + "\n").encode())
                    except OSError as exc:
                        # a netfilter verdict: NF_DROP is EPERM, a failed re-route after
                        # DNAT/MARK carries the route's errno (nf_hook_slow, NF_DROP_ERR)
                        first, hook_error = _name(exc.errno or 0), True
                r = self._wait_socket(sock, writable=False)
                if r:
                    try:
                        data = sock.recv(4096)
                        with contextlib.suppress(ValueError):
                            reply = json.loads(data.decode())
                    except OSError as exc:
                        later = _name(exc.errno or 0)
            frames = self.early + self.drain()
            recs = self.listeners.take()
        if reply is None:
            reply = next((r for r in recs if r.get("token") == token), None)
            if reply is None and p.proto == "tcp":
                reply = next((r for r in recs if r.get("peer", "").endswith(f":{p.sport}")), None)
        if reply is not None:
            return Observed("delivered-local", first, later, reply.get("local"), reply.get("peer"))
        if first is not None:
            if later is not None:
                # a REJECT in OUTPUT: sendmsg() gets EPERM from the hook, the ICMP error next
                return Observed("rejected", first, later)
            return Observed("dropped" if hook_error else "unroutable", first)
        if later is not None:
            return Observed("rejected", None, later)
        sent = self._sent(frames, p, 6 if p.proto == "tcp" else 17)
        if sent is not None:
            return sent
        return Observed("dropped")

    def _wait_socket(self, sock: socket.socket, writable: bool) -> bool:
        """Wait up to WAIT for the socket to become ready; stop early once the packet is seen
        leaving on the wire (it was sent: nothing will come back)."""
        self.early = []
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            rl, wl, _ = select.select(
                [] if writable else [sock], [sock] if writable else [], [], min(left, 0.004)
            )
            if rl or wl:
                return True
            self.early += self.drain()
            if any(f.ethertype == 0x0800 or f.arp_target for f in self.early):
                time.sleep(0.002)  # an ICMP error for a REJECT would have arrived by now
                rl, wl, _ = select.select([] if writable else [sock], [sock] if writable else [], [], 0)
                return bool(rl or wl)

    def _received(self, p: Probe) -> Observed:
        token = secrets.token_hex(4).encode()
        assert p.iif is not None
        self.captures[p.iif].send(build_frame(p, token))
        frames: list[Frame] = []
        recs: list[dict[str, Any]] = []
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and not frames and not recs:
            # anything the DUT emits, or a listener record, is decisive; only "nothing
            # happened" (a drop) needs the whole wait
            time.sleep(0.003)
            frames += self.drain()
            recs += self.listeners.take()
        time.sleep(0.003)  # let a second frame of the same event (ARP + packet) arrive
        frames += self.drain()
        recs += self.listeners.take()
        proto = 6 if p.proto == "tcp" else 17
        # (our injected frame is not among them: drain() skips PACKET_OUTGOING; a packet
        # forwarded back out of the interface it came in on is, rightly, seen)
        sent = self._sent(frames, p, proto)
        if sent is not None and sent.destination is not None:
            return sent
        rec = next((r for r in recs if r.get("token") == token.decode()), None)
        if rec is not None:
            return Observed("delivered-local", destination=rec.get("local"), source=rec.get("peer"))
        ct = self.conntrack(p.proto, p.sport)
        for f in frames:
            if f.proto == 6 and f.dport == p.sport and f.tcp_flags & 0x12 == 0x12:
                dst, src = ct if ct else (None, None)
                return Observed("delivered-local", destination=dst, source=src, note="SYN-ACK seen")
        for f in frames:
            if f.proto == 1 and f.icmp_type == 3 and f.inner_proto == proto and f.inner_sport == p.sport:
                name = ICMP_CODES.get(f.icmp_code, f"icmp-code-{f.icmp_code}")
                if ct and f.icmp_code == 3:
                    return Observed("delivered-local", destination=ct[0], source=ct[1], note="closed port")
                return Observed("icmp", icmp=name)
            if f.proto == 6 and f.dport == p.sport and f.tcp_flags & 0x04:
                if ct:
                    return Observed("delivered-local", destination=ct[0], source=ct[1], note="closed port")
                return Observed("icmp", icmp="tcp-reset")
        if ct is not None:
            return Observed(
                "delivered-local",
                destination=ct[0],
                source=ct[1],
                note="conntrack entry confirmed, no reply seen",
            )
        if sent is not None:
            return sent
        back = self.route_back(p.src or "")
        return Observed(
            "dropped",
            observable=back,
            note="" if back else "no route back to the source: an ICMP error or reply could not be seen",
        )


def _name(code: int) -> str:
    return errno_mod.errorcode.get(code, str(code))


def _read_json(sock: socket.socket) -> dict[str, Any] | None:
    deadline = time.monotonic() + WAIT
    buf = b""
    while b"\n" not in buf and time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        try:
            chunk = sock.recv(4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
    with contextlib.suppress(ValueError, IndexError):
        rec = json.loads(buf.decode().splitlines()[0])
        return rec if isinstance(rec, dict) else None
    return None


# --------------------------------------------------------------------------- comparison


def _ip(endpoint: str | None) -> str | None:
    return endpoint.rpartition(":")[0] if endpoint and ":" in endpoint else endpoint


def outcome_problems(obs: Observed, out: dict[str, Any], p: Probe) -> list[str]:
    """How one simulator outcome differs from the kernel's observation (empty: it matches)."""
    v = out["verdict"]
    problems: list[str] = []
    if p.kind == "received" and v in ("rejected", "unroutable", "dropped"):
        # On the wire a received packet that is not delivered or forwarded either vanishes or
        # causes an ICMP error (or a RST for tcp-reset); "unroutable" without an ICMP error
        # (ip_forward off, blackhole) vanishes just like "dropped".
        sim = f"icmp {out['icmp']}" if out.get("icmp") else "silent drop"
        kern = (
            f"icmp {obs.icmp}"
            if obs.verdict == "icmp"
            else ("silent drop" if obs.verdict == "dropped" else obs.verdict)
        )
        if sim != kern:
            problems.append(f"kernel: {kern}, simulator: {v} ({sim})")
        return problems
    if obs.verdict == "icmp":
        if v not in ("rejected", "unroutable"):
            problems.append(f"kernel sent {obs.icmp} back, simulator says {v}")
        elif out.get("icmp") and out["icmp"] != obs.icmp:
            problems.append(f"kernel sent {obs.icmp}, simulator {out['icmp']}")
        return problems
    if v != obs.verdict:
        problems.append(f"kernel: {obs.verdict}, simulator: {v}")
        return problems
    if (
        p.kind == "local"
        and (out.get("errno") or None) != obs.errno
        and not (obs.errno is None and obs.later_errno == out.get("errno"))
    ):
        problems.append(f"errno: kernel {obs.errno or obs.later_errno}, simulator {out.get('errno')}")
    if v in ("delivered-local", "sent", "forwarded"):
        if obs.destination and out.get("destination") != obs.destination:
            problems.append(f"destination: kernel {obs.destination}, simulator {out.get('destination')}")
        if obs.source:
            same_ip = _ip(out.get("source")) == _ip(obs.source)
            random_port = out.get("masquerade") and same_ip
            if out.get("source") != obs.source and not random_port:
                problems.append(f"source: kernel {obs.source}, simulator {out.get('source')}")
        if v != "delivered-local":
            if out.get("interface") != obs.interface:
                problems.append(f"interface: kernel {obs.interface}, simulator {out.get('interface')}")
            if obs.next_hop and str(out.get("next_hop")) != obs.next_hop:
                problems.append(f"next hop: kernel {obs.next_hop}, simulator {out.get('next_hop')}")
    return problems


# Disagreement classes found so far (docs/lab.md explains each, with a minimal reproduction).
CLASSES = {
    "icmp-error-not-traced": "the ICMP error (or RST) the node sends back is itself a local "
    "packet that the node's own OUTPUT rules or routes drop; the simulator reports it as sent",
    "udp-reject-eperm": "REJECT in OUTPUT makes a UDP sendmsg() fail with EPERM first; the "
    "ICMP error's errno only comes on the next call",
    "no-icmp-without-forwarding": "a received packet with no route is dropped silently when "
    "the input interface does not forward (ip_forward=0): ip_error() sends no ICMP",
    "source-relookup": "connect() looks the route up again with the source it chose; policy "
    "rules on that source (from ..., iif lo) apply to the second lookup",
    "ctstate-in-raw": "in the raw table conntrack has not run yet: --ctstate sees INVALID "
    "(no entry), never NEW",
    "rp-filter-reverse-lookup": "rp_filter: the kernel accepted a packet whose reverse-path "
    "lookup the simulator failed (an `iif lo` rule applied to the simulated reverse lookup)",
    "other": "not classified yet",
}


def classify(r: ProbeResult, case: Case) -> str:
    """Which known kind of disagreement `r` is (a heuristic, for the report)."""
    k, p, sim = r.kernel, r.probe, r.simulator or {}
    if any("does not trace the error" in x for x in r.problems):
        return "icmp-error-not-traced"
    if (
        p.kind == "local"
        and p.proto == "udp"
        and k.errno == "EPERM"
        and k.later_errno
        and sim.get("errno") == k.later_errno
    ):
        return "udp-reject-eperm"
    if (
        p.kind == "received"
        and k.verdict == "dropped"
        and sim.get("verdict") == "unroutable"
        and case.sysctls.get("net.ipv4.ip_forward") == "0"
    ):
        return "no-icmp-without-forwarding"
    if (
        p.kind == "received"
        and sim.get("verdict") == "dropped"
        and k.verdict in ("forwarded", "delivered-local")
        and any(v != "0" for key, v in case.sysctls.items() if key.endswith("rp_filter"))
    ):
        return "rp-filter-reverse-lookup"
    raw = case.iptables.split("*raw", 1)[-1].split("COMMIT", 1)[0]
    if "--ctstate" in raw:
        return "ctstate-in-raw"
    if (
        p.kind == "local"
        and any("from " in rule or "iif lo" in rule for rule in case.rules)
        and (k.verdict in ("unroutable", "sent"))
    ):
        return "source-relookup"
    return "other"


@dataclass
class ProbeResult:
    seed: int
    index: int
    probe: Probe
    kernel: Observed
    simulator: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    status: str = "agree"  # agree | disagree | unobservable | no-simulator
    kind: str = ""  # for disagreements: a key of CLASSES

    def summary(self) -> str:
        sim = self.simulator or {}
        kind = f"[{self.kind}] " if self.kind else ""
        return (
            f"{kind}seed {self.seed} probe {self.index}: {self.probe.describe()}: kernel "
            f"{_brief(asdict(self.kernel))}; simulator {sim.get('verdict')} "
            f"{sim.get('errno') or ''}: {'; '.join(self.problems)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "index": self.index,
            "probe": asdict(self.probe),
            "kernel": asdict(self.kernel),
            "status": self.status,
            "class": self.kind,
            "problems": self.problems,
            "simulator": _sim_brief(self.simulator) if self.simulator else None,
        }


def _brief(d: dict[str, Any]) -> str:
    keep = ("verdict", "errno", "later_errno", "destination", "source", "interface", "next_hop", "icmp")
    return " ".join(f"{k}={d[k]}" for k in keep if d.get(k))


def _sim_brief(trace: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "probability",
        "verdict",
        "errno",
        "destination",
        "source",
        "masquerade",
        "interface",
        "next_hop",
        "icmp",
    )
    return {
        "verdict": trace.get("verdict"),
        "errno": trace.get("errno"),
        "outcomes": [{k: o.get(k) for k in keys} for o in trace.get("outcomes", [])],
    }


Tracer = Callable[[Path, Probe], dict[str, Any]]


def simulator() -> Tracer | None:
    """The simulator's trace function over a snapshot directory, or None if not importable."""
    try:
        from netsleuth.datapath.trace import trace_packet
        from netsleuth.snapshot.node_dir import load_node_snapshot
    except ImportError:
        return None
    cache: dict[Path, Any] = {}

    def trace(snap: Path, p: Probe) -> dict[str, Any]:
        if snap not in cache:
            cache[snap] = load_node_snapshot(snap)
        t = trace_packet(
            cache[snap],
            dst=p.dst,
            dport=p.dport or None,
            proto=p.proto,
            src=p.src,
            iif=p.iif,
            sport=p.sport or None,
        )
        result: dict[str, Any] = t.to_dict()
        return result

    return trace


def icmp_return_blocked(
    tracer: Tracer, snap: Path, obs: Observed, trace: dict[str, Any], p: Probe
) -> str | None:
    """A hint for one known kind of disagreement: the simulator says the node sends an ICMP
    error (or RST) back, the kernel shows nothing. The error is itself a locally generated
    packet that goes through routing and the OUTPUT/POSTROUTING hooks; trace it with the
    simulator and say so when the simulator itself would drop it there."""
    main = trace.get("outcomes", [{}])[0]
    if not main.get("icmp") or obs.verdict != "dropped":
        return None
    back_to = p.src if p.kind == "received" else _ip(main.get("source"))
    if not back_to:
        return None
    proto = "tcp" if main["icmp"] == "tcp-reset" else "icmp"
    sport, dport = (p.dport, p.sport) if proto == "tcp" else (0, 0)
    # icmp_send() (net/ipv4/icmp.c) answers from the original destination when that was a
    # local address, else lets the route lookup choose: try both sources.
    for src in (_ip(main.get("destination")), None):
        back = tracer(snap, Probe("local", proto, back_to, dport, sport, src=src))
        if back.get("verdict") in ("dropped", "rejected", "unroutable"):
            return (
                f"the node's own {main['icmp']} back to {back_to} (from {src or 'any'}) is "
                f"{back.get('verdict')} on its way out (simulated): the simulator does not "
                "trace the error it sends"
            )
    return None


def compare(obs: Observed, trace: dict[str, Any], p: Probe) -> tuple[str, list[str]]:
    if not obs.observable:
        return "unobservable", [obs.note]
    outcomes = [o for o in trace.get("outcomes", []) if o.get("probability") != 0]
    best: list[str] | None = None
    for out in outcomes:
        problems = outcome_problems(obs, out, p)
        if not problems:
            return "agree", []
        if best is None or len(problems) < len(best):
            best = problems
    return "disagree", best or ["simulator returned no outcome"]


# --------------------------------------------------------------------------- running


@dataclass
class Report:
    results: list[ProbeResult] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)  # seeds the kernel refused
    seconds: float = 0.0

    @property
    def disagreements(self) -> list[ProbeResult]:
        return [r for r in self.results if r.status == "disagree"]

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def agreement(self) -> float:
        compared = self.count("agree") + self.count("disagree")
        return self.count("agree") / compared if compared else 0.0

    def summary(self) -> str:
        compared = self.count("agree") + self.count("disagree")
        cases = len({r.seed for r in self.results})
        text = (
            f"{cases} cases, {len(self.results)} probes: {self.count('agree')}/{compared} "
            f"agree ({100 * self.agreement:.1f}%), {self.count('disagree')} disagree, "
            f"{self.count('unobservable')} unobservable"
        )
        if self.count("no-simulator"):
            text += f", {self.count('no-simulator')} not compared (simulator unavailable)"
        if self.invalid:
            text += f", {len(self.invalid)} cases refused by the kernel"
        return text + f"; {self.seconds:.1f}s"

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "agreement": self.agreement,
            "results": [r.to_dict() for r in self.results],
            "invalid": [{"seed": s, "error": e} for s, e in self.invalid],
        }


@contextlib.contextmanager
def built(case: Case) -> Iterator[CaseLab]:
    lab = CaseLab(case, f"nsl{secrets.token_hex(2)}")
    try:
        lab.build()
        yield lab
    finally:
        lab.close()


def run_case(
    case: Case, tracer: Tracer | None, workdir: Path, only: list[int] | None = None
) -> list[ProbeResult]:
    """Build `case`, probe it, snapshot it, trace every probe (or those in `only`) and
    compare."""
    from netsleuth.collect.netlink import snapshot_namespace

    results = []
    with built(case) as lab:
        wanted = [i for i in range(len(case.probes)) if only is None or i in only]
        observed = {i: lab.probe(case.probes[i]) for i in wanted}
        snap = workdir / f"seed-{case.seed}"
        snapshot_namespace(lab.dut, snap, hostname="dut")
    for i, obs in observed.items():
        p = case.probes[i]
        if tracer is None:
            results.append(ProbeResult(case.seed, i, p, obs, None, [], "no-simulator"))
            continue
        try:
            trace = tracer(snap, p)
        except Exception as exc:  # a simulator crash is a finding, not a reason to stop
            results.append(
                ProbeResult(
                    case.seed, i, p, obs, None, [f"simulator raised {type(exc).__name__}: {exc}"], "disagree"
                )
            )
            continue
        status, problems = compare(obs, trace, p)
        if status == "disagree":
            with contextlib.suppress(Exception):
                hint = icmp_return_blocked(tracer, snap, obs, trace, p)
                if hint:
                    problems.append(hint)
        result = ProbeResult(case.seed, i, p, obs, trace, problems, status)
        if status == "disagree":
            result.kind = classify(result, case)
        results.append(result)
    return results


def run_many(n: int, seed: int = 0, progress: Callable[[str], None] | None = None) -> Report:
    """Generate and run cases `seed` .. `seed + n - 1`."""
    ns.require_privileges()
    tracer = simulator()
    report = Report()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="netsleuth-diff-") as tmp:
        for s in range(seed, seed + n):
            case = generate(s)
            try:
                results = run_case(case, tracer, Path(tmp))
            except LabError as exc:
                report.invalid.append((s, str(exc)))
                continue
            report.results += results
            if progress:
                for r in results:
                    progress(f"{r.status:12} {r.summary()}")
    report.seconds = time.monotonic() - start
    return report


# --------------------------------------------------------------------------- regression data


def record_known(report: Report, path: Path) -> int:
    """Add every disagreement of `report` to the regression file `path` (JSON), keeping the
    entries (and their `status`) already there. Returns how many were added.

    Each entry stores the whole generated case, so it reproduces even if the generator
    changes; tests/lab/test_differential.py replays every entry.
    """
    known: dict[str, Any] = {"cases": []}
    if path.exists():
        known = json.loads(path.read_text(encoding="utf-8"))
    have = {(e["seed"], e["probe"]) for e in known["cases"]}
    added = 0
    for r in report.disagreements:
        if (r.seed, r.index) in have:
            continue
        case = generate(r.seed)
        known["cases"].append(
            {
                "seed": r.seed,
                "probe": r.index,
                "class": r.kind,
                "status": "open",
                "what": r.probe.describe(),
                "problems": r.problems,
                "kernel": asdict(r.kernel),
                "simulator": _sim_brief(r.simulator) if r.simulator else None,
                "case": case.to_dict(),
            }
        )
        added += 1
    known["cases"].sort(key=lambda e: (e["seed"], e["probe"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(known, indent=1) + "\n", encoding="utf-8")
    return added
