"""IPv6 packets meet ip6tables' rules and never iptables' (separate tables in the kernel,
net/ipv6/netfilter/ip6_tables.c): checked on the real kernel, then the simulator's trace of a
snapshot of the same namespace must agree.
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
from netsleuth.datapath.trace import NO_IP6TABLES, trace_packet
from netsleuth.datapath.trace_model import Verdict
from netsleuth.snapshot.node_dir import load_node_snapshot

pytestmark = pytest.mark.lab

PREFIX = f"nsl6{os.getpid() % 0xFFFF:04x}"
CLIENT, SERVER = f"{PREFIX}-c", f"{PREFIX}-s"
SERVER_IP, PORT = "fd00:6::2", 9000

SERVE = f"""
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{SERVER_IP}", {PORT}))
s.listen(16)
print("ready", flush=True)
while True:
    s.accept()[0].close()
"""

CONNECT = f"""
import socket, sys
c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
c.settimeout(1.0)
try:
    c.connect(("{SERVER_IP}", {PORT}))
    print("connected")
except OSError as exc:
    print(type(exc).__name__)
"""


def run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    return proc.stdout


def in_ns(ns: str, *argv: str) -> str:
    return run("ip", "netns", "exec", ns, *argv)


@pytest.fixture
def v6_pair() -> Iterator[None]:
    reason = lab_missing()
    if reason:
        pytest.skip(reason)
    for tool in ("ip6tables", "ip6tables-save"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            pytest.skip(f"needs `{tool}` (apt-get install iptables)")
    server: subprocess.Popen[str] | None = None
    try:
        for ns in (CLIENT, SERVER):
            run("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        run("ip", "link", "add", f"{PREFIX}a", "netns", CLIENT, "type", "veth",
            "peer", "name", f"{PREFIX}b", "netns", SERVER)
        for ns, dev, addr in ((CLIENT, f"{PREFIX}a", "fd00:6::1/64"),
                              (SERVER, f"{PREFIX}b", f"{SERVER_IP}/64")):
            in_ns(ns, "ip", "addr", "add", addr, "dev", dev, "nodad")
            in_ns(ns, "ip", "link", "set", dev, "up")
        server = subprocess.Popen(["ip", "netns", "exec", SERVER, sys.executable, "-c", SERVE],
                                  stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        # The first SYN after the links come up can be lost while neighbour discovery settles:
        # wait until the path works before asking anything of it.
        for _ in range(10):
            if connect() == "connected":
                break
        else:
            pytest.fail("the IPv6 test path never worked, with no rule at all")
        yield
    finally:
        if server is not None:
            server.kill()
            server.wait()
        for ns in (CLIENT, SERVER):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def connect() -> str:
    return in_ns(CLIENT, sys.executable, "-c", CONNECT).strip()


def simulated(tmp_path: Path, name: str) -> tuple[Verdict, tuple[str, ...]]:
    snap = tmp_path / name
    snapshot_namespace(CLIENT, snap, hostname="client")
    trace = trace_packet(load_node_snapshot(snap), dst=ip_address(SERVER_IP), dport=PORT)
    return trace.verdict, trace.assumptions


def test_ipv4_rules_never_touch_ipv6_packets(v6_pair: None, tmp_path: Path) -> None:
    in_ns(CLIENT, "iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", str(PORT), "-j", "DROP")
    assert connect() == "connected"
    verdict, assumptions = simulated(tmp_path, "v4-drop")
    assert verdict == Verdict.SENT
    assert NO_IP6TABLES not in assumptions  # ip6tables-save was collected (an empty ruleset)

    in_ns(CLIENT, "ip6tables", "-A", "OUTPUT", "-p", "tcp", "--dport", str(PORT), "-j", "DROP")
    assert connect() == "TimeoutError"
    verdict, _ = simulated(tmp_path, "v6-drop")
    assert verdict == Verdict.DROPPED
