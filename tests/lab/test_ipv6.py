"""IPv6 has its own netfilter tables, policy rules and forwarding switch, apart from IPv4's
(net/ipv6/netfilter/ip6_tables.c, fib6_rules.c, ip6_output.c ip6_forward): each checked on the
real kernel, and the simulator's trace of a snapshot of the same namespace must agree.

Topology: client (fd00:6::1) — router (fd00:6::2, fd00:7::1) — server (fd00:7::2); the router
also listens itself on fd00:6::2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import pytest
from labutil import lab_missing

from netsleuth.collect.netlink import snapshot_namespace
from netsleuth.datapath.trace import NO_IP6_RULE, NO_IP6TABLES, REJECT_ERRNO, trace_packet
from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.snapshot.node_dir import load_node_snapshot

pytestmark = pytest.mark.lab

PREFIX = f"nsl6{os.getpid() % 0xFFFF:04x}"
CLIENT, ROUTER, SERVER = f"{PREFIX}-c", f"{PREFIX}-r", f"{PREFIX}-s"
ROUTER_IP, SERVER_IP, PORT = "fd00:6::2", "fd00:7::2", 9000

SERVE = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
print("ready", flush=True)
while True:
    s.accept()[0].close()
"""

CONNECT = """
import errno, socket, sys
c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
c.settimeout(float(sys.argv[3]))
try:
    c.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except TimeoutError:
    print("timeout")
except OSError as exc:
    print(errno.errorcode.get(exc.errno or 0, str(exc)))
"""


def run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def in_ns(ns: str, *argv: str) -> str:
    return run("ip", "netns", "exec", ns, *argv)


def connect(dst: str, timeout: float = 1.0) -> str:
    return in_ns(CLIENT, sys.executable, "-c", CONNECT, dst, str(PORT), str(timeout)).strip()


@pytest.fixture(scope="module")
def v6_lab() -> Iterator[None]:
    reason = lab_missing()
    if reason:
        pytest.skip(reason)
    for tool in ("ip6tables", "ip6tables-save"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            pytest.skip(f"needs `{tool}` (apt-get install iptables)")
    servers: list[subprocess.Popen[str]] = []
    try:
        for ns in (CLIENT, ROUTER, SERVER):
            run("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        for (a, a_ns, a_ip), (b, b_ns, b_ip) in (
            (("c0", CLIENT, "fd00:6::1/64"), ("r0", ROUTER, "fd00:6::2/64")),
            (("r1", ROUTER, "fd00:7::1/64"), ("s0", SERVER, "fd00:7::2/64")),
        ):
            run("ip", "link", "add", f"{PREFIX}{a}", "netns", a_ns, "type", "veth",
                "peer", "name", f"{PREFIX}{b}", "netns", b_ns)
            for ns, dev, addr in ((a_ns, f"{PREFIX}{a}", a_ip), (b_ns, f"{PREFIX}{b}", b_ip)):
                in_ns(ns, "ip", "addr", "add", addr, "dev", dev, "nodad")
                in_ns(ns, "ip", "link", "set", dev, "up")
        in_ns(CLIENT, "ip", "-6", "route", "add", "default", "via", "fd00:6::2")
        in_ns(SERVER, "ip", "-6", "route", "add", "default", "via", "fd00:7::1")
        # IPv4 forwarding on, IPv6 forwarding left at its default (off).
        in_ns(ROUTER, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for ns, ip in ((SERVER, SERVER_IP), (ROUTER, ROUTER_IP)):
            proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVE, ip,
                                     str(PORT)], stdout=subprocess.PIPE, text=True)
            servers.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        # The first SYN after the links come up can be lost while neighbour discovery settles.
        for _ in range(10):
            if connect(ROUTER_IP) == "connected":
                break
        else:
            pytest.fail("the IPv6 test path never worked, with no rule at all")
        yield
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
        for ns in (CLIENT, ROUTER, SERVER):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def traced(tmp_path: Path, ns: str, name: str, dst: str, *, src: str | None = None,
           iif: str | None = None) -> Trace:
    snap = tmp_path / name
    snapshot_namespace(ns, snap, hostname=ns)
    return trace_packet(load_node_snapshot(snap), dst=ip_address(dst), dport=PORT,
                        src=ip_address(src) if src else None, iif=iif)


def test_ipv4_rules_never_touch_ipv6_packets(v6_lab: None, tmp_path: Path) -> None:
    in_ns(CLIENT, "iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", str(PORT), "-j", "DROP")
    try:
        assert connect(ROUTER_IP) == "connected"
        trace = traced(tmp_path, CLIENT, "v4-drop", ROUTER_IP)
        assert trace.verdict == Verdict.SENT
        assert NO_IP6TABLES not in trace.assumptions  # ip6tables-save was collected (empty)

        in_ns(CLIENT, "ip6tables", "-A", "OUTPUT", "-p", "tcp", "--dport", str(PORT), "-j", "DROP")
        assert connect(ROUTER_IP) == "timeout"
        assert traced(tmp_path, CLIENT, "v6-drop", ROUTER_IP).verdict == Verdict.DROPPED
    finally:
        in_ns(CLIENT, "iptables", "-F", "OUTPUT")
        in_ns(CLIENT, "ip6tables", "-F", "OUTPUT")


def test_ipv4_policy_rules_never_route_ipv6_packets(v6_lab: None, tmp_path: Path) -> None:
    in_ns(CLIENT, "ip", "rule", "add", "priority", "100", "blackhole")
    try:
        assert connect(ROUTER_IP) == "connected"
        trace = traced(tmp_path, CLIENT, "v4-rule", ROUTER_IP)
        assert trace.verdict == Verdict.SENT
        assert NO_IP6_RULE not in trace.assumptions  # `ip -6 rule` was collected

        in_ns(CLIENT, "ip", "-6", "rule", "add", "priority", "100", "blackhole")
        assert connect(ROUTER_IP) == "EINVAL"
        trace = traced(tmp_path, CLIENT, "v6-rule", ROUTER_IP)
        assert (trace.verdict, trace.errno) == (Verdict.UNROUTABLE, "EINVAL")
    finally:
        subprocess.run(["ip", "-n", CLIENT, "rule", "del", "priority", "100"], capture_output=True)
        subprocess.run(["ip", "-n", CLIENT, "-6", "rule", "del", "priority", "100"],
                       capture_output=True)


def test_ipv6_forwarding_is_its_own_switch(v6_lab: None, tmp_path: Path) -> None:
    received = {"src": "fd00:6::1", "iif": f"{PREFIX}r0"}
    # net.ipv4.ip_forward=1 does not forward IPv6: the router drops the SYN, silently.
    assert connect(SERVER_IP) == "timeout"
    trace = traced(tmp_path, ROUTER, "v6-off", SERVER_IP, **received)
    assert trace.verdict == Verdict.DROPPED
    assert "net.ipv6.conf.all.forwarding=0" in trace.main.steps[-1].action

    in_ns(ROUTER, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    try:
        assert connect(SERVER_IP) == "connected"
        trace = traced(tmp_path, ROUTER, "v6-on", SERVER_IP, **received)
        assert trace.verdict == Verdict.FORWARDED
    finally:
        in_ns(ROUTER, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=0")


@pytest.mark.parametrize(("route", "client_sees", "icmp"), [
    (None, "ENETUNREACH", "icmp6-no-route"),
    ("unreachable fd00:9::/64", "ENETUNREACH", "icmp6-no-route"),
    ("prohibit fd00:9::/64", "EACCES", "icmp6-adm-prohibited"),
    ("blackhole fd00:9::/64", "timeout", None),
])
def test_ipv6_unroutable_answers_even_without_forwarding(
    v6_lab: None, tmp_path: Path, route: str | None, client_sees: str, icmp: str | None
) -> None:
    # Unlike IPv4 (ip_error stays silent on a non-forwarding device), ip6_pkt_discard and
    # ip6_pkt_prohibit send their ICMPv6 error whatever the forwarding setting.
    if route:
        in_ns(ROUTER, "ip", "-6", "route", "add", *route.split())
    try:
        # (The error may answer the SYN's retransmission, a second later, rather than the SYN.)
        assert connect("fd00:9::1", timeout=3.0) == client_sees
        trace = traced(tmp_path, ROUTER, "v6-unroutable", "fd00:9::1", src="fd00:6::1",
                       iif=f"{PREFIX}r0")
        assert (trace.verdict, trace.main.icmp) == (Verdict.UNROUTABLE, icmp)
        if icmp is not None:
            assert REJECT_ERRNO[icmp] == client_sees  # what the client's kernel makes of it
    finally:
        if route:
            in_ns(ROUTER, "ip", "-6", "route", "del", *route.split())
