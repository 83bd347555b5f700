"""Tests for netsleuth.parse.iproute2 on real `ip` output.

Golden inputs in tests/data/iproute2/ come from the real kernel (make_golden.sh builds the
namespaces); kernel-routes/ holds the check of kernel_routes_for_addresses() against the routes
the kernel itself created, which the lab test below also re-runs live.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import replace
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_interface,
    ip_network,
)
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsleuth.errors import ParseError
from netsleuth.model.net import (
    TABLE_DEFAULT,
    TABLE_LOCAL,
    TABLE_MAIN,
    Address,
    Link,
    NextHop,
    Route,
    RouteType,
    RuleAction,
    Scope,
)
from netsleuth.model.source import SourceRef
from netsleuth.parse.iproute2 import (
    format_route,
    kernel_routes_for_addresses,
    parse_ip_addr,
    parse_ip_link,
    parse_ip_route,
    parse_ip_rule,
    parse_rt_tables,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "iproute2"
KERNEL = DATA / "kernel-routes"


def read(name: str, base: Path = DATA) -> str:
    return (base / name).read_text(encoding="utf-8")


def routes(name: str, **kwargs: object) -> tuple[Route, ...]:
    return parse_ip_route(read(name), name, **kwargs)  # type: ignore[arg-type]


def find(rs: tuple[Route, ...], dst: str, table: int = TABLE_MAIN, **attrs: object) -> Route:
    net = ip_network(dst)
    hits = [
        r
        for r in rs
        if r.dst == net and r.table == table and all(getattr(r, k) == v for k, v in attrs.items())
    ]
    assert len(hits) == 1, f"{dst} table {table} {attrs}: {hits}"
    return hits[0]


def without_origin(objs: tuple[object, ...]) -> list[object]:
    """Objects with source/raw blanked, to compare text and JSON parses of the same state."""
    out: list[object] = []
    for obj in objs:
        changes: dict[str, object] = {"source": SourceRef("x")}
        if hasattr(obj, "raw"):
            changes["raw"] = ""
        out.append(replace(obj, **changes))  # type: ignore[type-var]
    return out


# ---------------------------------------------------------------------------------------------
# ip route
# ---------------------------------------------------------------------------------------------


class TestRoutesGolden:
    rs = routes("ip-route.txt")

    def test_counts_and_both_families(self) -> None:
        # `ip route show table all` without -4/-6 lists IPv4 and IPv6 routes together.
        assert len(self.rs) == 76
        assert sum(r.dst.version == 6 for r in self.rs) == 21

    @pytest.mark.parametrize(
        ("text_name", "json_name"),
        [
            ("ip-route.txt", "ip-route.json"),
            ("ip-route.txt", "ip-route-compact.json"),
            ("ip6-route.txt", "ip6-route.json"),
        ],
    )
    def test_text_and_json_agree(self, text_name: str, json_name: str) -> None:
        assert without_origin(routes(text_name)) == without_origin(routes(json_name))

    def test_default_route(self) -> None:
        r = find(self.rs, "0.0.0.0/0")
        assert r.gateway == IPv4Address("192.0.2.254")
        assert r.dev == "veth0"
        assert r.metric == 100
        assert r.type is RouteType.UNICAST
        assert r.source == SourceRef("ip-route.txt", 7)
        assert r.raw == "default via 192.0.2.254 dev veth0 metric 100"

    def test_multipath_continuation_lines(self) -> None:
        r = find(self.rs, "10.100.0.0/16")
        assert r.nexthops == (
            NextHop(gateway=IPv4Address("192.0.2.254"), dev="veth0", weight=1),
            NextHop(gateway=IPv4Address("198.51.100.254"), dev="veth1", weight=3),
        )
        assert r.protocol == "static"
        assert r.source.line == 12
        assert "nexthop via 198.51.100.254 dev veth1 weight 3" in r.raw
        # the line after the multipath block is its own route again
        assert find(self.rs, "10.101.0.0/16").source.line == 15

    def test_nexthop_group_route(self) -> None:
        single = find(self.rs, "10.112.0.0/16")
        assert single.nexthops == (NextHop(gateway=IPv4Address("192.0.2.254"), dev="veth0"),)
        group = find(self.rs, "10.113.0.0/16")
        assert [h.weight for h in group.nexthops] == [1, 4]
        assert [h.dev for h in group.nexthops] == ["veth0", "veth1"]

    def test_onlink_and_proto(self) -> None:
        r = find(self.rs, "10.101.0.0/16")
        assert r.nexthops == (NextHop(gateway=IPv4Address("172.31.0.1"), dev="veth0", onlink=True),)
        assert r.protocol == "bird"
        assert find(self.rs, "10.111.0.0/16").protocol == "77"

    def test_host_routes_without_prefix_length(self) -> None:
        r = find(self.rs, "10.102.0.5/32")
        assert (r.dev, r.scope, r.gateway) == ("veth1", Scope.LINK, None)
        assert find(self.rs, "10.102.0.6/32").prefsrc == IPv4Address("198.51.100.1")

    @pytest.mark.parametrize(
        ("dst", "rtype", "table"),
        [
            ("10.103.0.0/16", RouteType.BLACKHOLE, TABLE_MAIN),
            ("10.104.0.0/16", RouteType.UNREACHABLE, TABLE_MAIN),
            ("10.105.0.0/16", RouteType.PROHIBIT, TABLE_MAIN),
            ("10.106.0.0/16", RouteType.THROW, TABLE_MAIN),
            ("10.106.0.0/16", RouteType.THROW, 100),
            ("0.0.0.0/0", RouteType.PROHIBIT, 200),
            ("10.70.0.0/16", RouteType.UNREACHABLE, 200),
            ("224.1.0.0/16", RouteType.MULTICAST, TABLE_MAIN),
            ("10.201.0.1/32", RouteType.ANYCAST, TABLE_LOCAL),
            ("10.200.0.0/24", RouteType.LOCAL, TABLE_LOCAL),
            ("10.20.255.255/32", RouteType.BROADCAST, TABLE_LOCAL),
        ],
    )
    def test_route_types(self, dst: str, rtype: RouteType, table: int) -> None:
        r = find(self.rs, dst, table, type=rtype)
        if rtype in (RouteType.BLACKHOLE, RouteType.UNREACHABLE, RouteType.PROHIBIT):
            assert r.nexthops == ()

    def test_metric_src_table_names(self) -> None:
        assert find(self.rs, "10.105.0.0/16").metric == 7
        assert find(self.rs, "10.80.0.0/16", TABLE_DEFAULT).gateway == IPv4Address("192.0.2.254")
        local = find(self.rs, "192.0.2.1/32", TABLE_LOCAL)
        assert (local.type, local.scope, local.protocol) == (RouteType.LOCAL, Scope.HOST, "kernel")
        assert local.prefsrc == IPv4Address("192.0.2.1")
        assert find(self.rs, "10.60.0.0/16", 100).prefsrc == IPv4Address("10.20.0.1")

    def test_tos(self) -> None:
        by_tos = {r.tos: r.dev for r in self.rs if r.dst == IPv4Network("10.107.0.0/16")}
        assert by_tos == {0x10: "veth0", 0x04: "veth1"}

    def test_skipped_attributes(self) -> None:
        # linkdown, realm, mtu lock, rtt, congctl lock ... do not change the route itself
        assert find(self.rs, "10.108.0.0/16").dev == "veth3"
        r = find(self.rs, "10.110.0.0/16")
        assert (r.gateway, r.dev, r.metric) == (IPv4Address("192.0.2.254"), "veth0", 0)

    def test_ipv4_route_via_ipv6_gateway(self) -> None:
        r = find(self.rs, "10.109.0.0/16")
        assert r.gateway == IPv6Address("fe80::1")
        assert r.dev == "veth0"

    def test_ipv6_routes(self) -> None:
        default = find(self.rs, "::/0")
        assert (default.gateway, default.metric) == (IPv6Address("2001:db8:1::fe"), 1024)
        mp = find(self.rs, "2001:db8:99::/48")
        assert [(h.gateway, h.dev, h.weight) for h in mp.nexthops] == [
            (IPv6Address("fe80::2"), "veth0", 1),
            (IPv6Address("fe80::3"), "veth1", 2),
        ]
        assert find(self.rs, "2001:db8:beef::/48").type is RouteType.UNREACHABLE
        assert find(self.rs, "2001:db8:77::/64").gateway == IPv6Address("fe80::9")  # expires
        assert find(self.rs, "2001:db8:88::/64", 100).dev == "veth1"
        assert find(self.rs, "2001:db8:66::1/128").protocol == "static"
        assert find(self.rs, "::1/128", TABLE_LOCAL).type is RouteType.LOCAL
        assert len([r for r in self.rs if r.dst == IPv6Network("ff00::/8")]) == 5

    def test_ipv6_only_output(self) -> None:
        assert all(r.dst.version == 6 for r in routes("ip6-route.txt", family=6))

    def test_main_table_output_has_no_table_word(self) -> None:
        rs = routes("ip-route-main.txt")
        assert {r.table for r in rs} == {TABLE_MAIN}
        assert len(rs) == 25

    def test_json_source_line_is_the_objects_first_member(self) -> None:
        text = read("ip-route.json").split("\n")
        for r in routes("ip-route.json"):
            first_key = next(iter(json.loads(r.raw)))
            assert f'"{first_key}":' in text[r.source.line - 1], r
        assert {r.source.line for r in routes("ip-route-compact.json")} == {1}


class TestSeedTranscript:
    """The three `ip route` outputs pasted in the seed incident, parsed verbatim."""

    @staticmethod
    def blocks() -> dict[str, str]:
        out: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in read("seed-ansible-ip-route.txt").split("\n"):
            header = re.match(r"^(\S+) \| CHANGED \| rc=0 >>", line)
            if header:
                current = out.setdefault(header.group(1), [])
            elif line.startswith("[root@"):
                current = None
            elif current is not None:
                current.append(line)
        return {host: "\n".join(lines) for host, lines in out.items()}

    def test_each_block_parses(self) -> None:
        blocks = self.blocks()
        assert len(blocks) == 3
        parsed = {host: parse_ip_route(text, f"seed:{host}") for host, text in blocks.items()}
        assert {host: len(rs) for host, rs in parsed.items()} == {
            "192.168.56.4": 9,
            "192.168.56.3": 9,
            "192.168.56.5": 9,
        }
        node1 = parsed["192.168.56.4"]
        assert find(node1, "0.0.0.0/0").protocol == "dhcp"
        assert find(node1, "10.10.0.192/26").type is RouteType.BLACKHOLE
        assert find(node1, "10.10.0.196/32").dev == "cali2473e8d3fe5"
        tunnel = find(node1, "10.10.0.0/26")
        assert tunnel.nexthops == (
            NextHop(gateway=IPv4Address("192.168.56.5"), dev="tunl0", onlink=True),
        )

    def test_admin_has_no_route_for_the_service_address(self) -> None:
        # the incident in one assertion: only the node without a default route has nothing
        # covering the apiserver's ClusterIP
        service_ip = ip_address("10.96.0.1")
        covered = {
            host: any(
                service_ip in r.dst
                for r in parse_ip_route(text, host)
                if r.type is RouteType.UNICAST
            )
            for host, text in self.blocks().items()
        }
        assert covered == {"192.168.56.4": True, "192.168.56.3": False, "192.168.56.5": True}


class TestRouteEdgeCases:
    def test_family_of_lines_without_addresses(self) -> None:
        assert parse_ip_route("unreachable default", "x")[0].dst == IPv4Network("0.0.0.0/0")
        assert parse_ip_route("unreachable default", "x", family=6)[0].dst == IPv6Network("::/0")
        # `pref` is printed for IPv6 routes only, so it decides the family
        r = parse_ip_route("unreachable default dev lo metric 1024 pref medium", "x")[0]
        assert r.dst == IPv6Network("::/0")
        # a plain gateway decides it too; `via inet6` on an IPv4 route does not
        assert parse_ip_route("default via fe80::1 dev eth0", "x")[0].dst.version == 6
        assert parse_ip_route("default via inet6 fe80::1 dev eth0", "x")[0].dst.version == 4

    def test_default_table_and_table_names(self) -> None:
        r = parse_ip_route("10.0.0.0/8 dev eth0", "x", default_table=100)[0]
        assert r.table == 100
        with pytest.raises(ParseError) as err:
            parse_ip_route("10.0.0.0/8 dev eth0 table vpn", "routes.txt")
        assert "numeric routing table id" in err.value.expected
        assert (err.value.source, err.value.line) == ("routes.txt", 1)
        names = parse_rt_tables("# reserved\n255\tlocal\n254\tmain\n52 vpn  # wg\n", "rt_tables")
        assert names == {"local": 255, "main": 254, "vpn": 52}
        r = parse_ip_route("10.0.0.0/8 dev eth0 table vpn", "x", table_names=names)[0]
        assert r.table == 52

    def test_source_specific_route(self) -> None:
        r = parse_ip_route("2001:db8:6::/64 from 2001:db8:7::/64 via 2001:db8:5::2 dev v0", "x")[0]
        assert r.src == IPv6Network("2001:db8:7::/64")

    def test_oneline_and_cache_forms(self) -> None:
        text = (
            "10.7.0.0/16 \\\tnexthop via 10.1.1.2 dev v0 weight 1 \\\tnexthop via 10.1.1.3 "
            "dev v0 weight 2 \n10.1.1.5 dev v0 src 10.1.1.1 uid 0 \n    cache \n"
        )
        mp, got = parse_ip_route(text, "x")
        assert [h.weight for h in mp.nexthops] == [1, 2]
        assert got.prefsrc == IPv4Address("10.1.1.1")
        assert got.source.line == 2

    def test_named_tos_and_nat_type(self) -> None:
        r = parse_ip_route("10.1.0.0/16 tos AF11 dev eth0", "x")[0]
        assert r.tos == 0x28
        assert parse_ip_route("nat 10.9.9.9 via 10.0.0.1", "x")[0].type is RouteType.NAT

    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            ("10.0.0.0/8 dev eth0 frobnicate 3", "'frobnicate'"),
            ("10.0.0.0/8 dev", "a value after 'dev'"),
            ("10.0.0.0/33 dev eth0", "a route destination"),
            ("10.0.0.0/8 via 10.0.0.300", "a gateway"),
            ("10.0.0.0/8 dev eth0 metric x", "a route metric"),
            ("10.0.0.0/8 dev eth0 scope galaxy", "a scope"),
            ("10.0.0.0/8 dev eth0 src 2001:db8::1", "same family"),
            ("10.0.0.0/8 via fe80::1 dev eth0", "a gateway of the same family"),
            ("10.0.0.0/8 dev eth0 weight 3", "'weight'"),
            ("10.0.0.0/8 nexthop via 10.0.0.1 metric 3", "a nexthop attribute"),
        ],
    )
    def test_errors_name_file_line_text_and_expectation(self, text: str, needle: str) -> None:
        with pytest.raises(ParseError) as err:
            parse_ip_route("10.9.0.0/16 dev eth9\n" + text, "node/ip-route.txt")
        e = err.value
        assert e.source == "node/ip-route.txt"
        assert e.line == 2
        assert e.text == text
        assert needle in e.expected

    def test_continuation_line_first(self) -> None:
        with pytest.raises(ParseError) as err:
            parse_ip_route("\n    nexthop via 10.0.0.1 dev eth0", "r.txt")
        assert err.value.line == 2
        assert "a route line before" in err.value.expected

    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            ('[{"dst": "10.0.0.0/8", "bogus": 1}]', "'bogus'"),
            ('[{"dst": "10.0.0.0/8", "metric": "x"}]', "'metric'"),
            ('[{"dst": "10.0.0.0/8", "dev": ["eth0"]}]', "'dev'"),
            ('[{"dst": "10.0.0.0/8", "type": "teleport"}]', "a route type"),
            ('[{"dev": "eth0"}]', "a route destination"),
            ('[{"dst": "10.0.0.0/8"}, 3]', "JSON objects"),
            ('[{"dst": "10.0.0.0/8"', "`ip -j route` output"),
            ('{"dst": "10.0.0.0/8"}', "a route attribute"),  # not an `ip -j` array: text
        ],
    )
    def test_json_errors(self, text: str, needle: str) -> None:
        with pytest.raises(ParseError) as err:
            parse_ip_route(text, "r.json")
        assert needle in err.value.expected
        assert err.value.source == "r.json"

    def test_empty_and_concatenated_json(self) -> None:
        assert parse_ip_route("", "x") == ()
        assert parse_ip_route("[]\n", "x") == ()
        text = '[{"dst":"10.0.0.0/8","dev":"a"}]\n[{},{"dst":"::/0","dev":"b","pref":"medium"}]'
        first, second = parse_ip_route(text, "x")
        assert (first.source.line, second.source.line) == (1, 2)
        assert second.dst == IPv6Network("::/0")


# ---------------------------------------------------------------------------------------------
# ip rule
# ---------------------------------------------------------------------------------------------


class TestRulesGolden:
    rules = {r.priority: r for r in parse_ip_rule(read("ip-rule.txt"), "ip-rule.txt")}

    @pytest.mark.parametrize(
        ("text_name", "json_name"),
        [("ip-rule.txt", "ip-rule.json"), ("ip6-rule.txt", "ip6-rule.json")],
    )
    def test_text_and_json_agree(self, text_name: str, json_name: str) -> None:
        text = parse_ip_rule(read(text_name), text_name)
        assert without_origin(text) == without_origin(parse_ip_rule(read(json_name), json_name))

    def test_default_rules(self) -> None:
        assert len(self.rules) == 29
        assert self.rules[0].table == TABLE_LOCAL
        assert self.rules[32766].table == TABLE_MAIN
        assert self.rules[32767].table == TABLE_DEFAULT
        assert self.rules[0].src is None and self.rules[0].action is RuleAction.LOOKUP
        assert self.rules[0].source == SourceRef("ip-rule.txt", 1)
        assert self.rules[0].raw == "0:\tfrom all lookup local"

    def test_prefixes_and_not(self) -> None:
        r = self.rules[100]
        assert (r.src, r.dst, r.table) == (
            IPv4Network("10.0.0.0/8"),
            IPv4Network("192.168.0.0/16"),
            100,
        )
        assert self.rules[110].invert and self.rules[110].src == IPv4Network("10.1.0.0/16")
        assert self.rules[260].src == IPv4Network("192.0.2.7/32")
        assert self.rules[260].table == TABLE_DEFAULT
        r = self.rules[270]
        assert r.invert and r.src is None and r.dst == IPv4Network("10.2.0.0/16")
        assert (r.fwmark, r.fwmask, r.iif) == (1, 1, "veth1")

    def test_interfaces(self) -> None:
        assert self.rules[120].iif == "veth0"
        assert self.rules[121].iif == "lo"
        assert self.rules[130].oif == "veth1"
        assert self.rules[131].oif == "nosuchdev0"  # printed with [detached]

    def test_fwmark_and_tos(self) -> None:
        assert (self.rules[140].fwmark, self.rules[140].fwmask) == (0x4000, 0x4000)
        assert (self.rules[141].fwmark, self.rules[141].fwmask) == (0x10, 0xFFFFFFFF)
        assert self.rules[150].tos == 0x10
        assert self.rules[151].tos == 0x04

    def test_actions(self) -> None:
        assert (self.rules[160].action, self.rules[160].goto) == (RuleAction.GOTO, 200)
        assert (self.rules[161].action, self.rules[161].goto) == (RuleAction.GOTO, 9999)
        assert self.rules[170].action is RuleAction.NOP
        assert self.rules[180].action is RuleAction.BLACKHOLE
        assert self.rules[190].action is RuleAction.UNREACHABLE
        assert self.rules[195].action is RuleAction.PROHIBIT
        assert self.rules[180].table is None

    def test_suppressors_l3mdev_uid_ports_protocol(self) -> None:
        assert self.rules[200].suppress_prefixlength == 0
        assert self.rules[210].suppress_ifgroup == 5
        l3 = self.rules[220]
        assert l3.l3mdev and l3.table is None and l3.action is RuleAction.LOOKUP
        assert self.rules[230].uidrange == (1000, 2000)
        r = self.rules[240]
        assert (r.ipproto, r.dport, r.sport) == (6, (443, 443), None)
        r = self.rules[241]
        assert (r.ipproto, r.sport, r.dport) == (17, (1000, 2000), (53, 53))
        assert self.rules[242].ipproto == 253  # printed as ipproto-253
        assert self.rules[250].protocol == "static"

    def test_ipv6_rules(self) -> None:
        rules = {r.priority: r for r in parse_ip_rule(read("ip6-rule.txt"), "ip6-rule.txt")}
        assert rules[100].src == IPv6Network("2001:db8::/32")
        assert rules[110].action is RuleAction.BLACKHOLE and rules[110].fwmark == 2
        assert rules[120].invert and rules[120].suppress_prefixlength == 0

    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            ("100:\tfrom all lookup vpn", "numeric routing table id"),
            ("100:\tfrom all tun_id 5 lookup 100", "tun_id"),
            ("100:\tfrom all", "a rule action"),
            ("100:\tfrom all frob 1 lookup 100", "'frob'"),
            ("from all lookup main", "PRIORITY:"),
            ("x:\tfrom all lookup main", "a rule priority"),
            ("100:\tfrom all ipproto bogus lookup 1", "an IP protocol"),
            ("100:\tfrom all dport 9-3 lookup 1", "ascending range"),
            ("100:\tfrom 10.0.0.0/8 to 2001:db8::/32 lookup 1", "one family"),
            ("100:\tfrom all fwmark 0x1/zz lookup 1", "a fwmark mask"),
        ],
    )
    def test_errors(self, text: str, needle: str) -> None:
        with pytest.raises(ParseError) as err:
            parse_ip_rule("0:\tfrom all lookup local\n" + text, "ip-rule.txt")
        assert (err.value.line, err.value.text) == (2, text)
        assert needle in err.value.expected

    def test_table_names_and_type_spelling(self) -> None:
        (r,) = parse_ip_rule("5:\tfrom all lookup vpn", "x", table_names={"vpn": 52})
        assert r.table == 52
        (r,) = parse_ip_rule("5:\tfrom all type unreachable", "x")
        assert r.action is RuleAction.UNREACHABLE


# ---------------------------------------------------------------------------------------------
# ip addr / ip link
# ---------------------------------------------------------------------------------------------


class TestAddrLinkGolden:
    links, addresses = parse_ip_addr(read("ip-addr.txt"), "ip-addr.txt")
    by_name = {link.name: link for link in links}

    def addr(self, ip: str) -> Address:
        (hit,) = [a for a in self.addresses if str(a.ip) == ip]
        return hit

    @pytest.mark.parametrize("json_name", ["ip-addr.json", "ip-addr-compact.json"])
    def test_text_and_json_agree(self, json_name: str) -> None:
        links, addresses = parse_ip_addr(read(json_name), json_name)
        assert without_origin(links) == without_origin(self.links)
        assert without_origin(addresses) == without_origin(self.addresses)

    def test_links(self) -> None:
        assert list(self.by_name) == ["lo", "veth0", "veth1", "br0", "veth2", "vx0", "veth3", "br1"]
        lo = self.by_name["lo"]
        assert (lo.index, lo.up, lo.state, lo.mtu) == (1, True, "UNKNOWN", 65536)
        assert "LOOPBACK" in lo.flags
        veth0 = self.by_name["veth0"]  # printed as veth0@if2
        assert (veth0.mtu, veth0.mac, veth0.state) == (1450, "02:00:00:00:00:01", "UP")
        assert veth0.source == SourceRef("ip-addr.txt", 9)
        assert self.by_name["veth2"].master == "br0"
        veth3 = self.by_name["veth3"]  # admin up, no carrier
        assert (veth3.up, veth3.state) == (False, "DOWN")
        assert "UP" in veth3.flags and "NO-CARRIER" in veth3.flags
        assert self.by_name["br1"].up is False
        assert all(link.kind is None for link in self.links)  # kinds need `-d`

    def test_addresses(self) -> None:
        assert len(self.addresses) == 20
        a = self.addr("192.0.2.1")
        assert (a.ifname, str(a.interface), a.broadcast, a.scope, a.label) == (
            "veth0",
            "192.0.2.1/24",
            IPv4Address("192.0.2.255"),
            Scope.UNIVERSE,
            "veth0",
        )
        assert a.source == SourceRef("ip-addr.txt", 11)
        assert self.addr("198.51.100.2").secondary
        labelled = self.addr("198.51.100.3")
        assert labelled.secondary and labelled.label == "veth1:app"
        assert self.addr("203.0.113.9").noprefixroute
        assert self.addr("172.16.5.1").metric == 50
        peer = self.addr("10.9.0.1")
        assert str(peer.interface) == "10.9.0.1/32" and str(peer.peer) == "10.9.0.2/32"
        assert self.addr("127.0.0.1").scope is Scope.HOST
        v6 = self.addr("2001:db8:1::1")
        assert (v6.label, v6.flags, str(v6.network)) == (None, ("nodad",), "2001:db8:1::/64")
        lladdr = self.addr("fe80::ff:fe00:1")
        assert lladdr.scope is Scope.LINK and "tentative" in lladdr.flags

    def test_oneline_forms(self) -> None:
        links, addresses = parse_ip_addr(read("ip-o-addr.txt"), "ip-o-addr.txt")
        assert links == ()  # `ip -o addr` prints no link headers
        assert without_origin(addresses) == without_origin(self.addresses)
        assert without_origin(parse_ip_link(read("ip-o-link.txt"), "x")) == without_origin(
            self.links
        )

    @pytest.mark.parametrize("name", ["ip-d-link.txt", "ip-d-link.json"])
    def test_kinds_from_details(self, name: str) -> None:
        kinds = {link.name: link.kind for link in parse_ip_link(read(name), name)}
        assert kinds == {
            "lo": None,
            "veth0": "veth",
            "veth1": "veth",
            "br0": "bridge",
            "veth2": "veth",  # a bridge port: its bridge_slave line is not its kind
            "vx0": "vxlan",
            "veth3": "veth",
            "br1": "bridge",
        }

    def test_plain_link_output(self) -> None:
        for name in ("ip-link.txt", "ip-link.json"):
            assert without_origin(parse_ip_link(read(name), name)) == without_origin(self.links)

    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            ("    inet 10.0.0.1/24 scope global eth0", "a link header"),
            ("2: eth0 <UP> mtu 1500", "interface name"),
            ("2: eth0: UP mtu 1500", "link flags"),
            ("2: eth0: <UP> mtu 1500\n    inet 10.0.0.1/24 scope global wat", "'wat'"),
            ("2: eth0: <UP> mtu x", "an MTU"),
            ("2: eth0: <UP> mtu 1500\n    inet 10.0.0.300/24 scope global eth0", "an inet"),
            ("2: eth0: <UP> mtu 1500\n    inet6 10.0.0.3/24 scope global", "an IPv6 address"),
            ("garbage", "a link header"),
        ],
    )
    def test_errors(self, text: str, needle: str) -> None:
        with pytest.raises(ParseError) as err:
            parse_ip_addr(text, "ip-addr.txt")
        assert err.value.source == "ip-addr.txt"
        assert err.value.line >= 1
        assert needle in err.value.expected


# ---------------------------------------------------------------------------------------------
# kernel_routes_for_addresses: checked against the kernel
# ---------------------------------------------------------------------------------------------


def _route_key(r: Route) -> tuple[object, ...]:
    return (r.table, r.type, r.dst, r.nexthops, r.prefsrc, r.metric, r.scope, r.protocol)


def _iproute2_text_without_flags(text: str) -> list[str]:
    """`ip route` lines minus what format_route leaves out (nexthop flags, IPv6 `pref`)."""
    out = []
    for line in text.split("\n"):
        line = re.sub(r" (linkdown|dead|pref \w+)(?= |$)", "", line.rstrip())
        if line:
            out.append(line)
    return out


def _check_kernel_routes(addr_json: str, link_json: str, route_json: str, route_text: str) -> None:
    links, addresses = parse_ip_addr(addr_json, "ip-addr.json")
    link_only = parse_ip_link(link_json, "ip-link.json")
    assert [link.name for link in link_only] == [link.name for link in links]
    ours = kernel_routes_for_addresses(addresses, links=link_only)
    kernel = parse_ip_route(route_json, "ip-route.json")
    assert sorted(map(_route_key, ours), key=repr) == sorted(map(_route_key, kernel), key=repr)
    assert len(ours) == len(kernel)
    # and each route's raw text is what `ip route show table all` prints for it
    assert sorted(r.raw for r in ours) == sorted(_iproute2_text_without_flags(route_text))


def test_kernel_routes_match_the_kernel_golden() -> None:
    _check_kernel_routes(
        read("ip-addr.json", KERNEL),
        read("ip-link.json", KERNEL),
        read("ip-route.json", KERNEL),
        read("ip-route.txt", KERNEL),
    )


def test_kernel_routes_golden_covers_the_interesting_cases() -> None:
    rs = parse_ip_route(read("ip-route.txt", KERNEL), "ip-route.txt")
    dsts = {(str(r.dst), r.type, r.table) for r in rs}
    # /31: prefix route but no broadcast; /32 on an interface: only the local route
    assert ("198.51.100.8/31", RouteType.UNICAST, TABLE_MAIN) in dsts
    assert not any(str(r.dst) == "198.51.100.9/32" and r.type is RouteType.BROADCAST for r in rs)
    assert {str(r.dst) for r in rs if "198.51.100.20" in str(r.dst)} == {"198.51.100.20/32"}
    # an explicit odd brd on a secondary address and the subnet broadcast both exist
    assert ("192.0.2.200/32", RouteType.BROADCAST, TABLE_LOCAL) in dsts
    assert ("192.0.2.255/32", RouteType.BROADCAST, TABLE_LOCAL) in dsts
    # lo: the whole 127/8 is local; a down device keeps only its local routes
    assert ("127.0.0.0/8", RouteType.LOCAL, TABLE_LOCAL) in dsts
    assert {(str(r.dst), r.type) for r in rs if r.dev == "kr1"} == {
        ("10.50.0.1/32", RouteType.LOCAL),
        ("10.50.0.2/32", RouteType.LOCAL),
        ("2001:db8:7::1/128", RouteType.LOCAL),
    }


class TestKernelRoutesUnits:
    def test_secondary_uses_primary_as_src_and_adds_no_prefix_route(self) -> None:
        addrs = (
            Address("eth0", ip_interface("10.1.0.1/24")),
            Address("eth0", ip_interface("10.1.0.2/24"), secondary=True),
        )
        rs = kernel_routes_for_addresses(addrs)
        assert [r.raw for r in rs] == [
            "local 10.1.0.1 dev eth0 table local proto kernel scope host src 10.1.0.1",
            "10.1.0.0/24 dev eth0 proto kernel scope link src 10.1.0.1",
            "broadcast 10.1.0.255 dev eth0 table local proto kernel scope link src 10.1.0.1",
            "local 10.1.0.2 dev eth0 table local proto kernel scope host src 10.1.0.1",
        ]
        assert all(r.source == addrs[0].source for r in rs[:3])

    def test_without_links_lo_is_the_loopback_and_everything_is_up(self) -> None:
        rs = kernel_routes_for_addresses((Address("lo", ip_interface("127.0.0.1/8")),))
        assert {(str(r.dst), r.type) for r in rs} == {
            ("127.0.0.1/32", RouteType.LOCAL),
            ("127.0.0.0/8", RouteType.LOCAL),
            ("127.255.255.255/32", RouteType.BROADCAST),
        }

    def test_down_link(self) -> None:
        link = Link("eth1", flags=("BROADCAST", "MULTICAST"), up=False)
        addrs = (Address("eth1", ip_interface("10.2.0.1/24")),)
        rs = kernel_routes_for_addresses(addrs, links=(link,))
        assert [r.type for r in rs] == [RouteType.LOCAL]

    def test_ipv6_dad_states(self) -> None:
        addrs = (
            Address("eth0", ip_interface("2001:db8::1/64"), flags=("tentative",)),
            Address("eth0", ip_interface("2001:db8::2/64"), flags=("dadfailed",)),
            Address("eth0", ip_interface("2001:db8::3/64"), flags=("tentative", "optimistic")),
        )
        rs = kernel_routes_for_addresses(addrs)
        assert [str(r.dst) for r in rs if r.type is RouteType.LOCAL] == ["2001:db8::3/128"]
        assert [str(r.dst) for r in rs if r.table == TABLE_MAIN] == ["2001:db8::/64"]
        assert [str(r.dst) for r in rs if r.type is RouteType.MULTICAST] == ["ff00::/8"]


# ---------------------------------------------------------------------------------------------
# live lab: re-run the kernel-routes check on this machine's kernel
# ---------------------------------------------------------------------------------------------


def _lab_unavailable() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2 `ip` is not installed"
    if os.geteuid() != 0:
        return "needs root to create a network namespace"
    probe = f"nsip-probe-{uuid.uuid4().hex[:6]}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`ip netns add` failed: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@pytest.mark.lab
def test_kernel_routes_match_the_live_kernel() -> None:
    reason = _lab_unavailable()
    if reason is not None:
        pytest.skip(f"lab: {reason}")
    ns = f"nsip-kr-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for line in read("commands.txt", KERNEL).split("\n"):
            if not line.strip() or line.startswith("#"):
                continue
            if line.startswith("sysctl "):
                cmd = ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", line.split(None, 1)[1]]
            else:
                cmd = ["ip", "-n", ns, *line.split()]
            subprocess.run(cmd, check=True, capture_output=True)

        def ip(*args: str) -> str:
            return subprocess.run(
                ["ip", "-n", ns, *args], check=True, capture_output=True, text=True
            ).stdout

        _check_kernel_routes(
            ip("-j", "addr", "show"),
            ip("-j", "link", "show"),
            ip("-j", "route", "show", "table", "all"),
            ip("route", "show", "table", "all"),
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# ---------------------------------------------------------------------------------------------
# robustness: mutated real input gives a result or a ParseError, never another exception
# ---------------------------------------------------------------------------------------------


def _addr_then_kernel_routes(text: str) -> object:
    links, addresses = parse_ip_addr(text, "f")
    return kernel_routes_for_addresses(addresses, links=links)


_FUZZ_INPUTS: dict[str, tuple[list[str], Callable[[str], object]]] = {
    "route": (
        ["ip-route.txt", "ip-route.json", "ip-route-compact.json", "seed-ansible-ip-route.txt"],
        lambda text: parse_ip_route(text, "f"),
    ),
    "rule": (["ip-rule.txt", "ip-rule.json"], lambda text: parse_ip_rule(text, "f")),
    "addr": (
        ["ip-addr.txt", "ip-addr-compact.json", "ip-o-addr.txt"],
        _addr_then_kernel_routes,
    ),
    "link": (["ip-d-link.txt", "ip-d-link.json"], lambda text: parse_ip_link(text, "f")),
}

_NOISE = st.text(
    alphabet=st.sampled_from([*' \t\n:/.[]{}",-0123456789abcdefxyz@<>\\', "\u00a0"]),
    max_size=12,
)


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """A real input cut, spliced or overwritten at random places, one to three times."""
    for _ in range(draw(st.integers(1, 3))):
        size = len(text)
        start = draw(st.integers(0, size))
        end = draw(st.integers(start, min(size, start + 40)))
        kind = draw(st.sampled_from(["truncate", "delete", "insert", "replace", "swap-word"]))
        if kind == "truncate":
            text = text[:start]
        elif kind == "delete":
            text = text[:start] + text[end:]
        elif kind == "insert":
            text = text[:start] + draw(_NOISE) + text[start:]
        elif kind == "replace":
            text = text[:start] + draw(_NOISE) + text[end:]
        else:
            words = re.findall(r"[^\s\"]+", text)
            if words:
                old, new = draw(st.sampled_from(words)), draw(st.sampled_from(words))
                text = text.replace(old, new, 1)
    return text


@pytest.mark.parametrize("parser", sorted(_FUZZ_INPUTS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_real_input_parses_or_raises_parse_error(parser: str, data: st.DataObject) -> None:
    names, parse = _FUZZ_INPUTS[parser]
    name = data.draw(st.sampled_from(names))
    text = data.draw(mutated(read(name)))
    try:
        parse(text)
    except ParseError as exc:
        assert exc.source == "f"
        assert isinstance(exc.line, int) and exc.line >= 0


def test_format_route_round_trips() -> None:
    # format_route prints a route so that parsing the text gives the same route back
    for r in routes("ip-route.txt"):
        (again,) = parse_ip_route(format_route(r), "x", family=r.dst.version)
        assert without_origin((again,)) == without_origin((r,)), (r.raw, format_route(r))
