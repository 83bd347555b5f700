# ruff: noqa: E501  (kubectl tables, logs and iptables rules are pasted in their real width)
"""A02: wrong node InternalIP on multi-NIC hosts."""

from __future__ import annotations

from netsleuth.datapath.trace_model import Verdict
from netsleuth.diagnose.detectors.node_ip_wrong import node_ip_wrong
from tests.diagnose.sectiona import (
    causes,
    netns_output,
    run,
    saved_transcript,
    scenario,
    texts,
    transcript,
)


def test_vagrant_duplicate_nat_address() -> None:
    found = causes(run(node_ip_wrong, scenario("a02-vagrant-node-ip")), "node-ip-wrong")
    assert len(found) == 1
    f = found[0]
    assert f.key == "cause:node-ip-wrong@k8s-master" and f.node == "k8s-master"
    assert f.trace is not None and f.trace.verdict == Verdict.DELIVERED_LOCAL
    assert {"kubelet-unreachable@k8s-node-1", "kubelet-unreachable@?"} <= set(f.explains)
    # The master's own fix uses its host-only address (not the NAT NIC's).
    master = [x for x in f.fix if x.command.startswith("on k8s-master:")]
    assert master and "--node-ip=172.28.128.10" in master[0].command
    assert f.confidence >= 0.9


def test_flannel_vagrant_transcript_names_the_cluster_nic() -> None:
    found = causes(run(node_ip_wrong, saved_transcript("flannel_vagrant_en.txt")))
    assert [f.kind for f in found] == ["node-ip-wrong"]
    assert "--node-ip=192.168.60.11" in texts(found[0])  # k8s-w-1's eth1


def test_unique_addresses_are_not_flagged() -> None:
    assert not causes(run(node_ip_wrong, saved_transcript("healthy_en.txt")))
    assert not causes(run(node_ip_wrong, scenario("healthy-multinic-kubespray")))


def test_single_node_on_the_nat_nic_while_the_others_use_the_cluster_network() -> None:
    ev = transcript(f"""\
vagrant@k8s-master:~$ kubectl get nodes -o wide
NAME         STATUS   ROLES           AGE   VERSION    INTERNAL-IP     EXTERNAL-IP   OS-IMAGE             KERNEL-VERSION      CONTAINER-RUNTIME
k8s-master   Ready    control-plane   3h    v1.25.16   10.0.2.15       <none>        Ubuntu 22.04.3 LTS   5.15.0-91-generic   containerd://1.6.27
k8s-node-1   Ready    <none>          3h    v1.25.16   172.28.128.11   <none>        Ubuntu 22.04.3 LTS   5.15.0-91-generic   containerd://1.6.27
k8s-node-2   Ready    <none>          3h    v1.25.16   172.28.128.12   <none>        Ubuntu 22.04.3 LTS   5.15.0-91-generic   containerd://1.6.27
vagrant@k8s-master:~$ ip -4 addr
{netns_output("a02", "k8s-master", "ip-addr")}
vagrant@k8s-master:~$ ip route
{netns_output("a02", "k8s-master", "ip-route")}
""")
    found = causes(run(node_ip_wrong, ev))
    assert [(f.kind, f.node) for f in found] == [("node-ip-wrong", "k8s-master")]
    assert "--node-ip=172.28.128.10" in found[0].fix[0].command
    assert "kubelet-unreachable@k8s-master" in found[0].explains
