"""Tracing across nodes: segments, IPIP tunnels, pod veths."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

from netsleuth.datapath.fabric import Fabric
from netsleuth.snapshot.inputs import load_evidence
from netsleuth.testing import build_node

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-incident"


def addr(name: str, ip: str, tunnel: str) -> str:
    return f"""\
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
2: ens3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP group default qlen 1000
    link/ether 52:54:00:00:00:0{name[-1]} brd ff:ff:ff:ff:ff:ff
    inet {ip}/24 brd 172.30.0.255 scope global ens3
       valid_lft forever preferred_lft forever
3: tunl0@NONE: <NOARP,UP,LOWER_UP> mtu 1480 qdisc noqueue state UNKNOWN group default qlen 1000
    link/ipip 0.0.0.0 brd 0.0.0.0
    inet {tunnel}/32 scope global tunl0
       valid_lft forever preferred_lft forever
4: caliaaaa{name[-1]}@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1480 qdisc noqueue state UP group default
    link/ether ee:ee:ee:ee:ee:ee brd ff:ff:ff:ff:ff:ff link-netnsid 0
"""


def two_nodes(w2_input: str = "") -> Fabric:
    w1 = build_node("w1", addr=addr("w1", "172.30.0.11", "10.244.1.0"),
                    routes="10.244.2.0/26 via 172.30.0.12 dev tunl0 proto bird onlink\n"
                           "10.244.1.5 dev caliaaaa1 scope link\n")
    w2 = build_node("w2", addr=addr("w2", "172.30.0.12", "10.244.2.0"),
                    routes="10.244.1.0/26 via 172.30.0.11 dev tunl0 proto bird onlink\n"
                           "10.244.2.7 dev caliaaaa2 scope link\n",
                    iptables="*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                             f":OUTPUT ACCEPT [0:0]\n{w2_input}COMMIT\n")
    return Fabric({"w1": w1, "w2": w2})


def test_pod_to_pod_over_ipip_reaches_the_remote_pod() -> None:
    ft = two_nodes().trace("w1", dst=ip_address("10.244.2.7"), dport=80,
                           src=ip_address("10.244.1.5"), iif="caliaaaa1")
    assert ft.main.end == "delivered-pod"
    assert [h.node for h in ft.main.hops] == ["w1", "w2"]
    assert ft.main.hops[1].how.startswith("IPIP from w1") and "tunl0" in ft.main.hops[1].how


def test_a_firewall_dropping_ip_protocol_4_breaks_the_tunnel() -> None:
    ft = two_nodes("-A INPUT -p ipencap -j DROP\n").trace(
        "w1", dst=ip_address("10.244.2.7"), dport=80, src=ip_address("10.244.1.5"),
        iif="caliaaaa1")
    assert (ft.main.end, ft.main.where) == ("dropped", "w2")
    assert "does not accept the IPIP outer packet" in ft.main.assumptions[-1]


def test_unknown_next_hop_leaves_the_evidence() -> None:
    ft = two_nodes().trace("w1", dst=ip_address("10.244.9.9"), dport=80,
                           src=ip_address("10.244.1.5"), iif="caliaaaa1")
    assert ft.main.end in ("unroutable", "left-evidence")


def test_seed_node1_host_reaches_the_apiserver_on_admin() -> None:
    ev = load_evidence(SEED)
    fabric = Fabric({n: e.state for n, e in ev.nodes.items()})
    ft = fabric.trace("node1", dst=ip_address("10.96.0.1"), dport=443)
    assert (ft.main.end, ft.main.where) == ("delivered-local", "admin")
    assert ft.main.hops[1].outcome.packet.endpoint("dst") == "192.168.56.3:6443"
    # From admin itself the same Service is unroutable: nothing leaves the node.
    ft = fabric.trace("admin", dst=ip_address("10.96.0.1"), dport=443)
    assert ft.main.end == "unroutable" and ft.to_dict()["outcomes"][0]["errno"] == "ENETUNREACH"
