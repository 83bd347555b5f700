# ruff: noqa: E501  (iproute2/iptables output is pasted in its real width)
"""D35: encapsulated overlay traffic blocked by a node firewall (flannel VXLAN 8472 on CentOS
iptables-services; Calico IPIP is a known simulator gap: no IP protocol 4)."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

from netsleuth.datapath.trace_model import Verdict
from netsleuth.snapshot.inputs import load_evidence
from tests.diagnose.cnidns import (
    ev_bundle,
    ev_transcript,
    k8s_list,
    kinds,
    node_files,
    node_json,
    out,
    report,
    run,
    shell,
    transcript,
)

NAMES = ["kube-master", "kube-node1", "kube-node2"]


def bundle() -> dict[str, str]:
    files: dict[str, str] = {}
    for n in NAMES:
        files.update(node_files("flannel_firewall", n))
    files["cluster/nodes.json"] = k8s_list("Node", [
        node_json(n, f"10.10.0.{10 + i}", pod_cidr=f"172.30.{i}.0/24", kubelet="v1.23.17",
                  kernel="3.10.0-1160.119.1.el7.x86_64",
                  annotations={"flannel.alpha.coreos.com/public-ip": f"10.10.0.{10 + i}",
                               "flannel.alpha.coreos.com/backend-type": "vxlan"})
        for i, n in enumerate(NAMES)])
    return files


def test_reject_on_kube_node2_is_proven_and_fix_verified() -> None:
    found = run(ev_bundle(bundle()), "D35")
    assert kinds(found) == [("encapsulation-blocked", "kube-node2")]
    f = found[0]
    assert f.trace is not None and f.trace.verdict == Verdict.REJECTED
    assert (f.trace.packet.proto, f.trace.packet.dport) == ("udp", 8472)
    assert any("-A INPUT -j REJECT --reject-with icmp-host-prohibited" in e.text and
               e.source.endswith("kube-node2/iptables-save.txt") for e in f.evidence)
    assert f.fix[0].command == "iptables -I INPUT 1 -s 10.10.0.0/24 -p udp -m udp --dport 8472 -j ACCEPT"
    assert "Verified by simulation" in f.fix[0].note
    assert "/etc/sysconfig/iptables" in f.fix[1].command


def test_root_cause_of_cross_node_timeouts() -> None:
    files = bundle()
    files["logs/default/frontend-6d9f7b8c5-xq2lm/frontend.log"] = (
        "2024-05-21T10:11:12.000Z 2024/05/21 10:11:12 upstream error: Get \"http://172.30.2.7:8080/api\": "
        "dial tcp 172.30.2.7:8080: i/o timeout\n")
    files["cluster/pods.json"] = k8s_list("Pod", [{
        "apiVersion": "v1", "metadata": {"name": "frontend-6d9f7b8c5-xq2lm", "namespace": "default"},
        "spec": {"nodeName": "kube-node1", "containers": [{"name": "frontend", "image": "shop/frontend:2.3"}]},
        "status": {"phase": "Running", "podIP": "172.30.1.4", "podIPs": [{"ip": "172.30.1.4"}]}}])
    r = report(ev_bundle(files))
    first = r.causes[0]
    assert first.finding.node == "kube-node2"
    explained = {x.key for x in first.explained}
    assert "conn-error:TIMEOUT@kube-node1" in explained
    # Either D35 is the root, or a detector naming the firewall product (B12: the EL rules'
    # REJECT) claims it as its consequence: the chain is the same.
    assert first.finding.kind == "encapsulation-blocked" or \
        "cause:encapsulation-blocked@kube-node2" in explained


CILIUM = ["k8s-m1", "k8s-w1", "k8s-w2"]


def cilium_bundle() -> dict[str, str]:
    files: dict[str, str] = {}
    for n in CILIUM:
        files.update(node_files("cilium_hardened", n))
    files["cluster/nodes.json"] = k8s_list("Node", [
        node_json(n, f"172.31.20.{20 + i}", kubelet="v1.30.2", kernel="6.1.0-21-amd64",
                  annotations={"network.cilium.io/ipv4-cilium-host": f"10.0.{i}.{37 + i}"})
        for i, n in enumerate(CILIUM)])
    return files


def test_cilium_vxlan_dropped_by_input_policy() -> None:
    found = run(ev_bundle(cilium_bundle()), "D35")
    assert kinds(found) == [("encapsulation-blocked", "k8s-w2")]
    f = found[0]
    assert f.trace is not None and f.trace.verdict == Verdict.DROPPED
    assert (f.trace.packet.dport, f.trace.packet.iif) == (8472, "eth0")
    assert any("vxlan external id 0" in e.text for e in f.evidence)
    assert f.fix[0].command == "iptables -I INPUT 1 -s 172.31.20.0/24 -p udp -m udp --dport 8472 -j ACCEPT"
    assert "Verified by simulation" in f.fix[0].note


def test_open_firewalls_are_quiet() -> None:
    files = {k: v for k, v in bundle().items() if "kube-node2" not in k}
    assert run(ev_bundle(files), "D35") == []


TUNL0 = """1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00 promiscuity 0 minmtu 0 maxmtu 0 addrgenmode eui64 numtxqueues 1 numrxqueues 1 gso_max_size 65536 gso_max_segs 65535
2: ens3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP mode DEFAULT group default qlen 1000
    link/ether fa:16:3e:5c:2e:91 brd ff:ff:ff:ff:ff:ff promiscuity 0 minmtu 68 maxmtu 65535 addrgenmode none numtxqueues 1 numrxqueues 1 gso_max_size 65536 gso_max_segs 65535
3: tunl0@NONE: <NOARP,UP,LOWER_UP> mtu 1480 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000
    link/ipip 0.0.0.0 brd 0.0.0.0 promiscuity 0 minmtu 0 maxmtu 0
    ipip any remote any local any ttl inherit nopmtudisc addrgenmode eui64 numtxqueues 1 numrxqueues 1 gso_max_size 65536 gso_max_segs 65535"""
IPIP_ADDR = """1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
2: ens3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000
    inet 10.0.0.5/24 brd 10.0.0.255 scope global ens3
       valid_lft forever preferred_lft forever
3: tunl0@NONE: <NOARP,UP,LOWER_UP> mtu 1480 qdisc noqueue state UNKNOWN group default qlen 1000
    inet 192.168.45.0/32 scope global tunl0
       valid_lft forever preferred_lft forever"""
IPIP_ROUTES = """default via 10.0.0.1 dev ens3 proto dhcp src 10.0.0.5 metric 100
10.0.0.0/24 dev ens3 proto kernel scope link src 10.0.0.5
192.168.12.64/26 via 10.0.0.6 dev tunl0 proto bird onlink
blackhole 192.168.45.0/26 proto bird"""
IPIP_FW = """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 179 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 10250 -j ACCEPT
COMMIT"""


def ipip(fw: str) -> str:
    # tunl0 lines written by hand in iproute2's format: this machine has no ipip module.
    return transcript(
        shell("k8s-w3", "ip -d link show", TUNL0, user="root"),
        shell("k8s-w3", "ip addr", IPIP_ADDR),
        shell("k8s-w3", "ip route", IPIP_ROUTES),
        shell("k8s-w3", "iptables-save", fw),
        shell("k8s-w3", "kubectl get nodes -o wide",
              "NAME     STATUS   ROLES    AGE   VERSION   INTERNAL-IP   EXTERNAL-IP   OS-IMAGE             KERNEL-VERSION      CONTAINER-RUNTIME\n"
              "k8s-w3   Ready    <none>   30d   v1.28.9   10.0.0.5      <none>        Ubuntu 22.04.4 LTS   5.15.0-105-generic  containerd://1.7.13\n"
              "k8s-w4   Ready    <none>   30d   v1.28.9   10.0.0.6      <none>        Ubuntu 22.04.4 LTS   5.15.0-105-generic  containerd://1.7.13"),
    )


def test_ipip_blocked_by_input_policy_drop() -> None:
    found = run(ev_transcript(ipip(IPIP_FW)), "D35")
    assert kinds(found) == [("encapsulation-blocked", "k8s-w3")]
    assert found[0].trace is not None and found[0].trace.packet.proto == "ipip"
    assert found[0].fix[0].command == "iptables -I INPUT 1 -s 10.0.0.0/24 -p 4 -j ACCEPT"
    assert "Verified by simulation" in found[0].fix[0].note


def test_ipip_accept_rule_is_not_mistaken_for_a_block() -> None:
    allowed = IPIP_FW.replace("-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT",
                              "-A INPUT -s 10.0.0.0/24 -p ipencap -j ACCEPT\n"
                              "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT")
    assert run(ev_transcript(ipip(allowed)), "D35") == []


def test_ipip_dropped_by_an_explicit_ipencap_rule() -> None:
    fw = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
          "-A INPUT -p ipencap -m comment --comment \"block tunnels\" -j DROP\nCOMMIT")
    found = run(ev_transcript(ipip(fw)), "D35")
    assert kinds(found) == [("encapsulation-blocked", "k8s-w3")]


def test_flannel_firewall_transcript_form() -> None:
    text = transcript(
        shell("kube-node2", "ip -d link show flannel.1", "\n".join(
            out("flannel_firewall", "kube-node2", "ip-link.txt").split("\n")[5:8])),
        shell("kube-node2", "ip addr", out("flannel_firewall", "kube-node2", "ip-addr.txt")),
        shell("kube-node2", "ip route", out("flannel_firewall", "kube-node2", "ip-route.txt")),
        shell("kube-node2", "iptables-save", out("flannel_firewall", "kube-node2", "iptables-save.txt")),
        shell("kube-master", "kubectl get nodes -o wide",
              "NAME          STATUS   ROLES                  AGE    VERSION    INTERNAL-IP   EXTERNAL-IP   OS-IMAGE                KERNEL-VERSION                CONTAINER-RUNTIME\n"
              "kube-master   Ready    control-plane,master   412d   v1.23.17   10.10.0.10    <none>        CentOS Linux 7 (Core)   3.10.0-1160.119.1.el7.x86_64   docker://20.10.24\n"
              "kube-node1    Ready    <none>                 412d   v1.23.17   10.10.0.11    <none>        CentOS Linux 7 (Core)   3.10.0-1160.119.1.el7.x86_64   docker://20.10.24\n"
              "kube-node2    Ready    <none>                 3d     v1.23.17   10.10.0.12    <none>        CentOS Linux 7 (Core)   3.10.0-1160.119.1.el7.x86_64   docker://20.10.24"),
    )
    found = run(ev_transcript(text), "D35")
    assert kinds(found) == [("encapsulation-blocked", "kube-node2")]


# -- only netfilter decides a block ------------------------------------------------------------

SCENARIOS = Path(__file__).parent / "scenarios"


def test_rp_filter_drop_is_not_a_firewall_block() -> None:
    # k8s-m1 drops the peer's VXLAN packets in the routing step (rp_filter=1, asymmetric
    # route): A06's fault. Opening UDP 4789 in INPUT would change nothing.
    ev = load_evidence(SCENARIOS / "a06-rpfilter-calico" / "bundle")
    assert run(ev, "D35") == []
    r = report(ev)
    assert [c.finding.kind for c in r.causes] == ["rp-filter-drop"]


def own_address_bundle(peers: list[tuple[str, str]]) -> dict[str, str]:
    files = node_files("flannel_firewall", "kube-node2",
                       only=("ip-addr.txt", "ip-link.txt", "ip-route.txt", "iptables-save.txt"))
    files["cluster/nodes.json"] = k8s_list("Node", [
        node_json(n, ip, pod_cidr=f"172.30.{i}.0/24") for i, (n, ip) in enumerate(peers)])
    return files


def test_peer_sharing_the_nodes_own_address_is_skipped() -> None:
    # A peer whose InternalIP is kube-node2's own address (cloned VMs, a NAT address): a packet
    # "from" it is a martian to kube-node2, not something its firewall decides.
    ev = ev_bundle(own_address_bundle([("kube-node1", "10.10.0.12"), ("kube-node2", "10.10.0.12")]))
    assert run(ev, "D35") == []


def test_real_peer_still_reported_next_to_one_with_the_own_address() -> None:
    ev = ev_bundle(own_address_bundle([("kube-master", "10.10.0.10"), ("kube-node1", "10.10.0.12"),
                                       ("kube-node2", "10.10.0.12")]))
    found = run(ev, "D35")
    assert kinds(found) == [("encapsulation-blocked", "kube-node2")]
    assert "from 1 peer(s)" in found[0].title
    assert found[0].trace is not None and found[0].trace.packet.src == ip_address("10.10.0.10")
