"""Scenario YAML validation: every error names the file, the line and the key."""

from __future__ import annotations

import pytest

from netsleuth.errors import ParseError
from netsleuth.lab.scenario import load_scenario, parse_scenario, scenario_names


@pytest.mark.parametrize("name", scenario_names())
def test_shipped_scenarios_are_valid(name: str) -> None:
    s = load_scenario(name)
    assert s.name == name
    assert s.nodes


def test_seed_scenario_shape() -> None:
    s = load_scenario("seed")
    assert [n.name for n in s.nodes][:3] == ["admin", "node1", "node2"]
    admin = s.node("admin")
    assert admin.iptables_restore and "DNAT --to-destination 192.168.56.3:6443" in admin.iptables_restore
    # the YAML anchor gives every node the same kube-proxy rules
    assert s.node("node1").iptables_restore == admin.iptables_restore
    assert {c.name for c in s.faults} == {"dhcp-lost"}
    assert {c.name for c in s.fixes} == {"restore-default-route", "route-service-cidr"}


SEG = "nodes:\n  a: {}\nsegments:\n  s:\n    members:\n"
BAD = [
    ("nodes: {a: {routs: []}}", 1, "nodes.a.routs", "one of the keys"),
    (
        "nodes:\n  a:\n    listeners:\n      - {port: 99999}\n",
        4,
        "nodes.a.listeners[0].port",
        "an integer in 1..65535",
    ),
    (
        "nodes:\n  a: {}\nsegments:\n  s:\n    members:\n      - {node: zz, ifname: eth0}\n",
        0,
        "segments",
        "a node of this scenario",
    ),
    (
        SEG + "      - {node: a, ifname: averyveryverylongname}\n",
        6,
        "ifname",
        "at most 15 characters",
    ),
    ("nodes:\n  a: {}\nlinks:\n  - {kind: gre}\n", 4, "links[0]", "kind: veth or kind: vxlan"),
    (
        SEG + "      - {node: a, ifname: e0, addresses: [10.0.0.1]}\n",
        6,
        "addresses[0]",
        "prefix length",
    ),
    ("nodes:\n  A_b: {}\n", 2, "nodes.A_b", "a node name"),
    ("nodes: [a, b]\n", 1, "nodes", "a mapping"),
    ("nodes:\n  a: {}\nchecks:\n  - after: [nope]\n    probes: []\n", 0, "checks", "fault or fix"),
    ("nodes: {a: {}\n", 2, "", "valid YAML"),
    ("name: x\n", 1, "", "the required key 'nodes'"),
]


@pytest.mark.parametrize(("text", "line", "key", "expected"), BAD)
def test_bad_scenarios_name_file_line_and_key(text: str, line: int, key: str, expected: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_scenario(text, "my-scenario.yaml")
    err = info.value
    assert err.source == "my-scenario.yaml"
    if line:
        assert err.line == line, str(err)
    assert key in err.text, str(err)
    assert expected in err.expected, str(err)
    assert str(err).startswith("my-scenario.yaml")
