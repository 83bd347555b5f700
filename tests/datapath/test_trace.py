"""Single-node traces: verdicts, errnos, NAT, forks. Each kernel fact used here is checked on
the real kernel by tests/lab (test_kernel_facts.py and the differential tests)."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from netsleuth.datapath.trace import NodeDatapath
from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.testing import build_node

ADDR = """\
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff
    inet 172.20.0.5/24 brd 172.20.0.255 scope global eth0
       valid_lft forever preferred_lft forever
3: eth1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether 02:00:00:00:00:02 brd ff:ff:ff:ff:ff:ff
    inet 10.1.0.5/16 brd 10.1.255.255 scope global eth1
       valid_lft forever preferred_lft forever
"""

SVC = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-A - [0:0]
:KUBE-SEP-B - [0:0]
:KUBE-SEP-C - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-X - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A OUTPUT -j KUBE-SERVICES
-A POSTROUTING -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -j MASQUERADE --random-fully
-A KUBE-SEP-A -p tcp -m tcp -j DNAT --to-destination 10.1.0.7:8080
-A KUBE-SEP-B -p tcp -m tcp -j DNAT --to-destination 10.1.0.8:8080
-A KUBE-SEP-C -p tcp -m tcp -j DNAT --to-destination 10.1.0.9:8080
-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.100.0.20/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SERVICES -d 10.100.0.20/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X
-A KUBE-SVC-X -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-A
-A KUBE-SVC-X -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B
-A KUBE-SVC-X -j KUBE-SEP-C
COMMIT
"""


def trace(node, dst: str, dport: int | None = 80, **kw):  # type: ignore[no-untyped-def]
    return NodeDatapath(node).trace(dst=ip_address(dst), dport=dport, **kw)


def test_no_route_is_enetunreach_before_any_hook() -> None:
    node = build_node(addr=ADDR, iptables=SVC)  # no default route
    t = trace(node, "10.100.0.20")
    assert t.verdict == Verdict.UNROUTABLE and t.errno == "ENETUNREACH"
    assert [s.hook for s in t.main.steps] == ["route"]
    # The DNAT that would have applied is reported as never reached.
    assert any("DNAT" in s.action for s in t.unreached)


@pytest.mark.parametrize(
    ("route", "errno"),
    [("unreachable 10.100.0.0/16", "EHOSTUNREACH"), ("prohibit 10.100.0.0/16", "EACCES"),
     ("blackhole 10.100.0.0/16", "EINVAL")],
)
def test_error_route_types(route: str, errno: str) -> None:
    node = build_node(addr=ADDR, routes=f"default via 172.20.0.1 dev eth0\n{route}")
    t = trace(node, "10.100.0.20")
    assert (t.verdict, t.errno) == (Verdict.UNROUTABLE, errno)


def test_policy_rule_actions() -> None:
    node = build_node(addr=ADDR, routes="default via 172.20.0.1 dev eth0",
                      rules="0: from all lookup local\n100: from all to 10.100.0.0/16 prohibit\n"
                            "32766: from all lookup main\n32767: from all lookup default")
    assert trace(node, "10.100.0.20").errno == "EACCES"
    assert trace(node, "10.200.0.1").verdict == Verdict.SENT


def test_service_forks_into_endpoints_with_kube_proxy_shares() -> None:
    node = build_node(addr=ADDR, routes="default via 172.20.0.1 dev eth0", iptables=SVC)
    t = trace(node, "10.100.0.20")
    shares = {o.packet.endpoint("dst"): o.probability for o in t.outcomes}
    assert set(shares) == {"10.1.0.7:8080", "10.1.0.8:8080", "10.1.0.9:8080"}
    assert all(abs(p - 1 / 3) < 1e-6 for p in shares.values() if p is not None)
    for o in t.outcomes:
        # Re-routed after DNAT onto eth1, masqueraded to eth1's address (connect chose eth0's).
        assert (o.verdict, o.interface, o.masquerade) == (Verdict.SENT, "eth1", True)
        assert o.packet.src == ip_address("10.1.0.5")
        assert any(s.hook == "reroute" for s in o.steps)


def test_reject_and_drop_in_output_as_a_local_client_sees_them() -> None:
    base = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{}\nCOMMIT\n"
    routes = "default via 172.20.0.1 dev eth0"
    cases = {
        "-A OUTPUT -d 10.9.9.9/32 -j REJECT": ("ECONNREFUSED", Verdict.REJECTED),
        "-A OUTPUT -d 10.9.9.9/32 -p tcp -j REJECT --reject-with tcp-reset":
            ("ECONNREFUSED", Verdict.REJECTED),
        "-A OUTPUT -d 10.9.9.9/32 -j REJECT --reject-with icmp-host-prohibited":
            ("EHOSTUNREACH", Verdict.REJECTED),
        "-A OUTPUT -d 10.9.9.9/32 -j REJECT --reject-with icmp-net-unreachable":
            ("ENETUNREACH", Verdict.REJECTED),
        "-A OUTPUT -d 10.9.9.9/32 -j DROP": (None, Verdict.DROPPED),
    }
    for rule, (errno, verdict) in cases.items():
        t = trace(build_node(addr=ADDR, routes=routes, iptables=base.format(rule)), "10.9.9.9")
        assert (t.errno, t.verdict) == (errno, verdict), rule
    udp = trace(build_node(addr=ADDR, routes=routes,
                           iptables=base.format("-A OUTPUT -d 10.9.9.9/32 -j DROP")),
                "10.9.9.9", 53, proto="udp")
    assert (udp.verdict, udp.errno) == (Verdict.DROPPED, "EPERM")


def test_dnat_to_a_local_address_is_delivered_via_lo() -> None:
    rules = SVC.replace("10.1.0.7:8080", "172.20.0.5:6443")
    node = build_node(addr=ADDR, routes="default via 172.20.0.1 dev eth0", iptables=rules)
    t = trace(node, "10.100.0.20")
    local = [o for o in t.outcomes if o.verdict == Verdict.DELIVERED_LOCAL]
    assert len(local) == 1 and local[0].packet.endpoint("dst") == "172.20.0.5:6443"


def test_received_forwarding_and_rp_filter() -> None:
    routes = "default via 172.20.0.1 dev eth0"
    off = build_node(addr=ADDR, routes=routes, sysctl="net.ipv4.ip_forward = 0")
    t = trace(off, "8.8.8.8", 53, proto="udp", src=ip_address("10.1.3.3"), iif="eth1")
    assert t.verdict == Verdict.DROPPED and "forwarding is disabled" in t.main.steps[-1].action
    on = build_node(addr=ADDR, routes=routes, sysctl="net.ipv4.ip_forward = 1")
    t = trace(on, "8.8.8.8", 53, proto="udp", src=ip_address("10.1.3.3"), iif="eth1")
    assert (t.verdict, t.main.interface, t.main.next_hop) == (Verdict.FORWARDED, "eth0",
                                                              "172.20.0.1")
    # Strict rp_filter: a source that routes back via eth1 must not arrive on eth0.
    strict = build_node(addr=ADDR, routes=routes,
                        sysctl="net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.rp_filter = 1")
    t = trace(strict, "8.8.8.8", 53, proto="udp", src=ip_address("10.1.3.3"), iif="eth0")
    assert t.verdict == Verdict.DROPPED and "rp_filter" in t.main.steps[-1].action


def test_received_no_route_answers_net_unreachable() -> None:
    node = build_node(addr=ADDR, sysctl="net.ipv4.ip_forward = 1")
    t = trace(node, "10.100.0.20", src=ip_address("10.1.3.3"), iif="eth1")
    assert (t.verdict, t.main.icmp) == (Verdict.UNROUTABLE, "icmp-net-unreachable")


def test_unknown_match_forks_into_uncertain_outcomes() -> None:
    rules = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
             "-A OUTPUT -m set --match-set blocked dst -j DROP\nCOMMIT\n")
    node = build_node(addr=ADDR, routes="default via 172.20.0.1 dev eth0", iptables=rules)
    t = trace(node, "10.9.9.9")
    assert {o.verdict for o in t.outcomes} == {Verdict.DROPPED, Verdict.SENT}
    assert all(o.probability is None for o in t.outcomes)
    assert any("cannot be evaluated" in a for a in t.assumptions)


def test_mark_based_policy_routing_after_mangle_reroutes() -> None:
    rules = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
             ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
             "-A OUTPUT -d 10.9.9.9/32 -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n")
    node = build_node(
        addr=ADDR, routes="default via 172.20.0.1 dev eth0\n"
                          "default via 10.1.0.1 dev eth1 table 100",
        rules="0: from all lookup local\n10: from all fwmark 0x1 lookup 100\n"
              "32766: from all lookup main\n32767: from all lookup default",
        iptables=rules)
    t = trace(node, "10.9.9.9")
    assert (t.main.interface, t.main.next_hop) == ("eth1", "10.1.0.1")
    # The source picked at connect time (eth0's) stays: no MASQUERADE rule here.
    assert t.main.packet.src == ip_address("172.20.0.5")


def test_loopback_source_may_not_leave_without_route_localnet() -> None:
    # kube-proxy's NodePort on 127.0.0.1: DNAT to a remote endpoint, the re-route keeps the
    # loopback source, and __mkroute_output refuses it unless route_localnet (checked on the
    # real kernel by tests/diagnose/test_localhost_nodeport.py).
    dnat = ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            ":POSTROUTING ACCEPT [0:0]\n-A OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 30080 "
            "-j DNAT --to-destination 10.1.0.77:8080\nCOMMIT\n")
    for value, verdict in (("0", Verdict.DROPPED), ("1", Verdict.SENT)):
        node = build_node(addr=ADDR, routes="default via 172.20.0.1 dev eth0", iptables=dnat,
                          sysctl=f"net.ipv4.conf.all.route_localnet = {value}")
        t = trace(node, "127.0.0.1", 30080)
        assert t.verdict == verdict, value


# -- IPv6: ip6tables' rules, never iptables' -------------------------------------------------------

ADDR6 = """\
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
    inet6 ::1/128 scope host
       valid_lft forever preferred_lft forever
2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff
    inet 172.20.0.5/24 brd 172.20.0.255 scope global eth0
       valid_lft forever preferred_lft forever
    inet6 fd00:20::5/64 scope global
       valid_lft forever preferred_lft forever
"""
ROUTES6 = """\
172.20.0.0/24 dev eth0 proto kernel scope link src 172.20.0.5
fd00:20::/64 dev eth0 proto kernel metric 256 pref medium
default via 172.20.0.1 dev eth0
default via fd00:20::1 dev eth0 metric 1024 pref medium
"""
DROP_9000 = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -p tcp -m tcp --dport 9000 -j DROP
COMMIT
"""


@pytest.mark.parametrize("dst", ["fd00:20::9", "2001:db8::9"])
def test_ipv6_packets_never_meet_iptables_rules(dst: str) -> None:
    node = build_node(addr=ADDR6, routes=ROUTES6, iptables=DROP_9000)
    trace = NodeDatapath(node).trace(dst=ip_address(dst), dport=9000)
    assert trace.verdict == Verdict.SENT
    assert not any(s.table == "filter" for s in trace.main.steps)
    # Without ip6tables evidence the trace says what it assumed.
    assert any("no ip6tables-save" in a for a in trace.assumptions)
    v4 = NodeDatapath(node).trace(dst=ip_address("172.20.0.9"), dport=9000)
    assert v4.verdict == Verdict.DROPPED
    assert not any("no ip6tables-save" in a for a in v4.assumptions)


def test_ipv6_packets_meet_ip6tables_rules_only() -> None:
    node = build_node(addr=ADDR6, routes=ROUTES6, ip6tables=DROP_9000)
    dp = NodeDatapath(node)
    trace = dp.trace(dst=ip_address("2001:db8::9"), dport=9000)
    assert trace.verdict == Verdict.DROPPED
    assert trace.main.steps[-1].rule == "-A OUTPUT -p tcp -m tcp --dport 9000 -j DROP"
    assert str(trace.main.steps[-1].source) == "node/ip6tables-save.txt:5"
    assert not any("no ip6tables-save" in a for a in trace.assumptions)
    assert dp.trace(dst=ip_address("172.20.0.9"), dport=9000).verdict == Verdict.SENT


BLACKHOLE_RULES = """\
0:	from all lookup local
100:	from all blackhole
32766:	from all lookup main
32767:	from all lookup default
"""


def test_ipv6_has_its_own_policy_rules() -> None:
    node = build_node(addr=ADDR6, routes=ROUTES6, rules=BLACKHOLE_RULES)
    dp = NodeDatapath(node)
    v4 = dp.trace(dst=ip_address("172.20.0.9"), dport=80)
    assert (v4.verdict, v4.errno) == (Verdict.UNROUTABLE, "EINVAL")
    v6 = dp.trace(dst=ip_address("2001:db8::9"), dport=80)
    assert v6.verdict == Verdict.SENT
    assert any("no ip6-rule" in a for a in v6.assumptions)


def received(dp: NodeDatapath, src: str, dst: str) -> Trace:
    return dp.trace(dst=ip_address(dst), src=ip_address(src), dport=80, iif="eth0")


def test_ipv6_forwarding_is_not_ipv4s() -> None:
    sysctl = "net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 0\n"
    dp = NodeDatapath(build_node(addr=ADDR6, routes=ROUTES6, sysctl=sysctl))
    assert received(dp, "172.20.0.7", "10.9.9.9").verdict == Verdict.FORWARDED
    v6 = received(dp, "fd00:20::7", "2001:db8::9")
    assert v6.verdict == Verdict.DROPPED
    assert "net.ipv6.conf.all.forwarding=0" in v6.main.steps[-1].action
    on = NodeDatapath(build_node(addr=ADDR6, routes=ROUTES6,
                                 sysctl=sysctl.replace("forwarding = 0", "forwarding = 1")))
    assert received(on, "fd00:20::7", "2001:db8::9").verdict == Verdict.FORWARDED


def test_ipv4_rp_filter_does_not_apply_to_ipv6() -> None:
    # No route back to the source's network through eth0 would make IPv4's strict rp_filter
    # drop the packet; IPv6 routing has no such check.
    sysctl = ("net.ipv4.conf.all.rp_filter = 1\nnet.ipv6.conf.all.forwarding = 1\n"
              "net.ipv4.ip_forward = 1\n")
    routes = ROUTES6.replace("default via fd00:20::1 dev eth0 metric 1024 pref medium\n", "")
    node = build_node(addr=ADDR6, routes=routes + "2001:db8::/64 dev eth0\n", sysctl=sysctl)
    assert received(NodeDatapath(node), "2001:db9::7", "2001:db8::9").verdict == Verdict.FORWARDED


def test_ipv6_unroutable_gets_an_icmpv6_error_even_without_forwarding() -> None:
    sysctl = "net.ipv4.ip_forward = 0\nnet.ipv6.conf.all.forwarding = 0\n"
    routes = "172.20.0.0/24 dev eth0 proto kernel scope link src 172.20.0.5\n" \
             "fd00:20::/64 dev eth0 proto kernel metric 256 pref medium\n"
    dp = NodeDatapath(build_node(addr=ADDR6, routes=routes, sysctl=sysctl))
    v4 = received(dp, "172.20.0.7", "10.9.9.9")
    assert (v4.verdict, v4.main.icmp) == (Verdict.UNROUTABLE, None)  # ip_error: silent
    v6 = received(dp, "fd00:20::7", "2001:db8::9")
    assert (v6.verdict, v6.main.icmp) == (Verdict.UNROUTABLE, "icmp6-no-route")
