"""Helpers of the section A/F detectors (detectors/_nodenet.py)."""

from __future__ import annotations

from ipaddress import ip_address

from netsleuth.diagnose.detectors._nodenet import (
    failures,
    is_cni_device,
    is_vpn_device,
    local_pod_sources,
    on_node,
    route_text,
    rule_text,
    unique_node_of_ip,
)
from tests.diagnose.sectiona import scenario


def test_device_classes() -> None:
    for dev in ("cali5d2e8f01a9c", "vxlan.calico", "flannel.1", "cni0", "cilium_host",
                "lxc8a7b6c5d4e3f", "kube-ipvs0", "nodelocaldns", "weave", "tunl0"):
        assert is_cni_device(dev), dev
    for dev in ("eth0", "ens192", "enp0s8", "bond0", "tailscale0", "wg0"):
        assert not is_cni_device(dev), dev
    assert is_vpn_device("tailscale0") and is_vpn_device("wg0") and not is_vpn_device("eth0")


def test_json_evidence_is_quoted_in_iproute2_words() -> None:
    ev = scenario("a08-tailscale-k3s")
    state = ev.nodes["edge-b"].state
    rule = next(r for r in state.rules if r.priority == 5270)
    assert rule.raw.startswith("{") and rule_text(rule) == "5270:\tfrom all lookup 52"
    mark = next(r for r in state.rules if r.priority == 5210)
    assert rule_text(mark) == "5210:\tfrom all fwmark 0x80000/0xff0000 lookup main"
    route = next(r for r in state.routes if r.table == 52 and r.dst.prefixlen == 16)
    assert route_text(route.raw) == "10.42.0.0/16 dev tailscale0 table 52 scope link"


def test_where_traffic_ends() -> None:
    ev = scenario("a06-rpfilter-calico")
    assert on_node(ev, "k8s-m1", ip_address("10.96.0.10"))  # kube-dns, endpoints on k8s-m1
    assert on_node(ev, "k8s-m1", ip_address("10.244.23.194"))
    assert not on_node(ev, "k8s-m1", ip_address("10.244.87.3"))
    assert [(str(ip), dev) for ip, dev, _ in local_pod_sources(ev, ev.nodes["k8s-w2"])] == \
        [("10.244.87.3", "cali1a7f3c9e2b4")]


def test_duplicate_addresses_have_no_owner() -> None:
    ev = scenario("a02-vagrant-node-ip")
    assert unique_node_of_ip(ev, ip_address("10.0.2.15")) is None
    assert unique_node_of_ip(ev, ip_address("172.28.128.10")) == "k8s-master"


def test_failures_carry_destination_and_keys() -> None:
    ev = scenario("a08-tailscale-k3s")
    found = failures(ev, "edge-b")
    assert {str(f.dst) for f in found} == {"10.43.0.10"}
    assert all("svc-unreachable:TIMEOUT@edge-b" in f.keys for f in found)
