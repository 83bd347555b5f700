"""collect.netlink writes what `ip -j` prints: compared on a namespace with every feature.

The namespace gets links of several kinds, secondary/labelled/peer/metric addresses, routes of
every type in several tables (multipath, nexthop objects, metrics, onlink, tos), and policy
rules with every selector and action. Our netlink reading must equal iproute2's JSON exactly.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from labutil import lab_missing

from netsleuth.collect import netlink
from netsleuth.lab import netns

pytestmark = pytest.mark.lab

SETUP = """
link set lo up
addr add 10.255.255.1/32 dev lo
link add veth0 address 02:00:00:00:00:01 type veth peer name p0 netns {P}
link set veth0 mtu 1450 up
addr add 192.0.2.1/24 brd + dev veth0
link add veth1 address 02:00:00:00:00:02 type veth peer name p1 netns {P}
link set veth1 up
addr add 198.51.100.1/24 dev veth1
addr add 198.51.100.2/24 dev veth1
addr add 198.51.100.3/24 dev veth1 label veth1:app
addr add 203.0.113.9/28 dev veth1 noprefixroute
addr add 172.16.5.1/24 dev veth1 metric 50
addr add 10.9.0.1 peer 10.9.0.2/32 dev veth1
link add br0 address 02:00:00:00:00:10 type bridge
link add veth2 type veth peer name veth2p
link set veth2 master br0
link set veth2 up
link set br0 up
addr add 10.20.0.1/16 dev br0
link add vx0 type vxlan id 42 dev veth0 local 192.0.2.1 dstport 4789
link set vx0 up
addr add 10.30.0.1/24 dev vx0
link add veth3 type veth peer name p3 netns {P}
link set veth3 up
addr add 10.40.0.1/24 dev veth3
"""

ROUTES = """
route add default via 192.0.2.254 dev veth0 metric 100
route add 10.100.0.0/16 proto static nexthop via 192.0.2.254 dev veth0 weight 1 \
  nexthop via 198.51.100.254 dev veth1 weight 3
route add 10.101.0.0/16 via 172.31.0.1 dev veth0 onlink proto bird
route add 10.102.0.5 dev veth1 scope link
route add 10.102.0.6/32 dev veth1 scope link src 198.51.100.1
route add blackhole 10.103.0.0/16 proto static
route add unreachable 10.104.0.0/16
route add prohibit 10.105.0.0/16 metric 7
route add throw 10.106.0.0/16
route add 10.107.0.0/16 tos 0x10 dev veth0
route add 10.108.0.0/16 dev veth3
route add 10.110.0.0/16 via 192.0.2.254 dev veth0 mtu lock 1400 advmss 1360 rtt 10ms \
  rttvar 5ms hoplimit 32 initcwnd 10 initrwnd 20 window 65535 congctl reno ssthresh 30 realm 5 \
  features ecn quickack 1 fastopen_no_cookie 1 reordering 4 rto_min 200ms cwnd 12
route add 10.111.0.0/16 via 192.0.2.254 dev veth0 proto 77 src 192.0.2.1 metric 5
nexthop add id 1 via 192.0.2.254 dev veth0
nexthop add id 2 via 198.51.100.254 dev veth1
nexthop add id 3 group 1/2,4
route add 10.112.0.0/16 nhid 1
route add 10.113.0.0/16 nhid 3
route add default via 198.51.100.254 dev veth1 table 100
route add 10.60.0.0/16 dev br0 src 10.20.0.1 table 100
route add prohibit default table 200
route add unreachable 10.70.0.0/16 table 200 metric 3
route add 10.80.0.0/16 via 192.0.2.254 table default
route add local 10.200.0.0/24 dev lo table local
route add anycast 10.201.0.1 dev veth0 table local
rule add priority 100 from 10.0.0.0/8 to 192.168.0.0/16 lookup 100
rule add priority 110 not from 10.1.0.0/16 lookup main
rule add priority 120 iif veth0 lookup 200
rule add priority 130 oif veth1 lookup 200
rule add priority 131 oif nosuchdev0 lookup 200
rule add priority 140 fwmark 0x4000/0x4000 lookup 100
rule add priority 141 fwmark 0x10 lookup 100
rule add priority 150 tos 0x10 lookup 100
rule add priority 160 goto 200
rule add priority 161 goto 9999
rule add priority 170 nop
rule add priority 180 from 10.9.0.0/16 blackhole
rule add priority 190 to 10.8.0.0/16 unreachable
rule add priority 195 from 10.7.0.0/16 prohibit
rule add priority 200 lookup main suppress_prefixlength 0
rule add priority 210 lookup main suppress_ifgroup 5
rule add priority 230 uidrange 1000-2000 lookup 100
rule add priority 240 ipproto tcp dport 443 lookup 100
rule add priority 241 ipproto udp sport 1000-2000 dport 53 lookup 100
rule add priority 250 lookup 100 protocol static
rule add priority 270 not to 10.2.0.0/16 fwmark 0x1/0x1 iif veth1 lookup 100
"""

IPTABLES = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 192.0.2.7:6443
COMMIT
"""


def _lines(text: str) -> list[str]:
    return [c for c in text.replace("\\\n", " ").strip().splitlines() if c]


@pytest.fixture(scope="module")
def rich_ns() -> Iterator[str]:
    reason = lab_missing()
    if reason:
        pytest.skip(reason)
    prefix = f"nsl{os.getpid() % 0xFFFF:04x}"
    node, peer = f"{prefix}-snapnode", f"{prefix}-snappeer"
    for name in (node, peer):
        netns.delete_netns(name)
        netns.add_netns(name)
    try:
        netns.ip_batch(node, _lines(SETUP.format(P=peer)))
        # nexthop objects need carrier on their device: bring the far ends up first
        netns.ip_batch(peer, ["link set p0 up", "link set p1 up"])
        netns.ip_batch(node, _lines(ROUTES))
        netns.run(["iptables-restore"], netns=node, stdin=IPTABLES)
        yield node
    finally:
        for name in (node, peer):
            netns.delete_netns(name)


def _ip_json(node: str, *args: str) -> object:
    out = subprocess.run(["ip", "-n", node, "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.parametrize(
    ("kind", "command"),
    [
        ("addr", "addr show"),
        ("link", "link show"),
        ("route", "route show table all"),
        ("rule", "rule show"),
    ],
)
def test_same_json_as_ip(rich_ns: str, kind: str, command: str) -> None:
    from pyroute2 import NetNS

    with NetNS(rich_ns) as ipr:
        mine = {
            "addr": netlink.ip_addr,
            "link": netlink.ip_link,
            "route": netlink.ip_route,
            "rule": netlink.ip_rule,
        }[kind](ipr)
    real = _ip_json(rich_ns, *shlex.split(command))
    assert isinstance(real, list) and len(real) > 3
    for ours, theirs in zip(mine, real, strict=True):
        assert ours == theirs
        assert list(ours) == list(theirs)  # same key order too


def test_snapshot_layout(rich_ns: str, tmp_path: Path) -> None:
    files = netlink.snapshot_namespace(rich_ns, tmp_path, hostname="node-x")
    expected = {
        "ip-link.json",
        "ip-addr.json",
        "ip-route.json",
        "ip-rule.json",
        "ip6-rule.json",
        "hostname",
        "iptables-save.txt",
        "sysctl.txt",
    }
    assert expected <= set(files)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)
    assert (tmp_path / "hostname").read_text() == "node-x\n"
    assert "--to-destination 192.0.2.7:6443" in (tmp_path / "iptables-save.txt").read_text()
    assert json.loads((tmp_path / "ip-route.json").read_text()) == _ip_json(
        rich_ns, "route", "show", "table", "all"
    )
    assert json.loads((tmp_path / "ip6-rule.json").read_text()) == _ip_json(
        rich_ns, "-6", "rule", "show"
    )


def test_sysctls_are_the_namespace_own(rich_ns: str) -> None:
    netns.write_sysctl(rich_ns, "net.ipv4.ip_forward", "1")
    netns.write_sysctl(rich_ns, "net.ipv4.conf.veth1.rp_filter", "2")
    ours = netlink.read_sysctls(rich_ns)
    assert ours["net.ipv4.ip_forward"] == "1"
    assert ours["net.ipv4.conf.veth1.rp_filter"] == "2"
    assert "net.ipv4.conf.veth0.forwarding" in ours
    assert "net.ipv6.conf.all.forwarding" in ours
    # compare with sysctl(8) run inside the namespace, key by key
    out = subprocess.run(
        ["ip", "netns", "exec", rich_ns, "sysctl", "net.ipv4", "net.ipv6.conf.all"],
        capture_output=True,
        text=True,
    ).stdout
    theirs = dict(line.split(" = ", 1) for line in out.splitlines() if " = " in line)
    volatile = ("net.ipv4.tcp_", "net.ipv4.udp_", "net.ipv4.route.gc", "net.ipv4.ping_")
    common = [k for k in theirs if k in ours and not k.startswith(volatile)]
    assert len(common) > 100
    assert {k: ours[k] for k in common} == {k: theirs[k] for k in common}
