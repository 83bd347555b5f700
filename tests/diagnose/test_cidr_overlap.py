# ruff: noqa: E501  (kubectl tables, logs and iptables rules are pasted in their real width)
"""A09: pod or Service CIDR overlaps node/LAN addressing."""

from __future__ import annotations

from netsleuth.diagnose.detectors.cidr_overlap import cidr_overlap
from tests.diagnose.sectiona import causes, run, saved_transcript, scenario, texts, transcript


def test_default_calico_pool_swallows_the_home_lan() -> None:
    found = causes(run(cidr_overlap, scenario("a09-calico-pool-overlap")))
    assert [(f.kind, f.node) for f in found] == [("cidr-overlap", "pi-node1")]
    f = found[0]
    assert "192.168.0.0/16" in f.title and "192.168.1.0/24" in f.title
    assert f.trace is not None and f.trace.main.interface == "vxlan.calico"
    assert str(f.trace.packet.dst) == "192.168.1.1"  # the node's own gateway
    assert "conn-error:TIMEOUT@pi-node1" in f.explains
    pin = f.fix[0]
    assert pin.command == "ip route add 192.168.1.1/32 dev eth0" and "Verified" in pin.note
    assert "10.244.0.0/16" in f.fix[1].command  # a free range, overlapping nothing known
    assert "pi-master (192.168.1.20)" in f.detail  # nodes without state are listed too
    assert f.confidence >= 0.9


def test_service_range_over_the_node_network_without_a_traced_victim() -> None:
    ev = transcript("""\
root@cp-1:~# ps -ef | grep kube-apiserver | grep -v grep
root        1403    1298  6 Mar01 ?        05:12:44 kube-apiserver --advertise-address=10.100.3.4 --allow-privileged=true --authorization-mode=Node,RBAC --secure-port=6443 --service-cluster-ip-range=10.96.0.0/12 --etcd-servers=https://127.0.0.1:2379
root@cp-1:~# ip -4 addr show ens160
2: ens160: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP group default qlen 1000
    altname enp3s0
    inet 10.100.3.4/24 brd 10.100.3.255 scope global ens160
       valid_lft forever preferred_lft forever
root@cp-1:~# ip route
default via 10.100.3.1 dev ens160 proto static
10.100.3.0/24 dev ens160 proto kernel scope link src 10.100.3.4
""")
    found = causes(run(cidr_overlap, ev))
    assert [(f.node, f.trace) for f in found] == [("cp-1", None)]
    assert "Service CIDR 10.96.0.0/12" in found[0].title
    assert found[0].confidence < 0.9
    assert "10.96.0.0/12" in texts(found[0])


def test_disjoint_ranges_are_not_flagged() -> None:
    for name in ("healthy-multinic-kubespray", "a08-tailscale-k3s", "a06-rpfilter-calico",
                 "a03-advertise-nat-weave"):
        assert not run(cidr_overlap, scenario(name)), name
    assert not run(cidr_overlap, saved_transcript("healthy_en.txt"))
