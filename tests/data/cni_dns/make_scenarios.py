# ruff: noqa: E501  (the transcript is pasted in its real width)
"""Write the CNI/overlay and DNS golden scenarios under tests/diagnose/scenarios/ (run from the
project root: `python3 tests/data/cni_dns/make_scenarios.py`). Inputs come from the namespace-
generated node outputs of this directory and the realistic transcripts of the detector tests;
expected.json states what `netsleuth diagnose` must conclude."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests.diagnose import (  # noqa: E402
    test_calico_autodetect,
    test_calico_bgp_down,
    test_dns_node_path,
    test_encap_blocked,
    test_flannel_wrong_iface,
    test_netpol_blocks_dns,
    test_overlay_mtu,
)
from tests.diagnose.cnidns import k8s_list, node_files, node_json, pod_json, shell  # noqa: E402

OUT = ROOT / "tests" / "diagnose" / "scenarios"


def write(name: str, expected: dict[str, object], *, text: str | None = None,
          files: dict[str, str] | None = None) -> None:
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    if text is not None:
        (d / "input.txt").write_text(text)
    for rel, content in (files or {}).items():
        p = d / "bundle" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    (d / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


COREDNS_LOOP = """Ubuntu 24.04 nodes, kubeadm v1.30.2, Cilium 1.15.5. CoreDNS never becomes ready.

dev@cp-a:~$ kubectl -n kube-system get pods -o wide
NAME                           READY   STATUS             RESTARTS      AGE   IP            NODE    NOMINATED NODE   READINESS GATES
cilium-operator-5d64d8c7f-2mgq4  1/1   Running            0             31m   10.31.0.10    cp-a    <none>           <none>
cilium-vk7x2                   1/1     Running            0             31m   10.31.0.10    cp-a    <none>           <none>
cilium-zq4d8                   1/1     Running            0             29m   10.31.0.11    wk-a    <none>           <none>
coredns-7db6d8ff4d-mq2x7       0/1     CrashLoopBackOff   8 (2m ago)    32m   10.0.0.187    cp-a    <none>           <none>
coredns-7db6d8ff4d-w8d4n       0/1     CrashLoopBackOff   8 (2m ago)    32m   10.0.1.33     wk-a    <none>           <none>
dev@cp-a:~$ kubectl -n kube-system logs coredns-7db6d8ff4d-mq2x7
.:53
[INFO] plugin/reload: Running configuration SHA512 = 1b226df79860026c6a52e67daa10d7f0d57ec5b023288ec00c5e05f93523c894564e15b91770d3a07ae1cfbe861d15b37d4a0027e69c546ab112970993a3b03b
CoreDNS-1.11.1
linux/amd64, go1.20.7, ae2bbc2
[FATAL] plugin/loop: Loop (127.0.0.1:53170 -> :53) detected for zone ".", see https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO 6089853125318416702.5102947133934652342."
dev@cp-a:~$ cat /etc/resolv.conf
# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).
# Do not edit.
#
# This file might be symlinked as /etc/resolv.conf. If you're looking at
# /etc/resolv.conf and seeing this text, you have followed the symlink.
nameserver 127.0.0.53
options edns0 trust-ad
search corp.example.net
dev@cp-a:~$ cat /run/systemd/resolve/resolv.conf
# This is /run/systemd/resolve/resolv.conf managed by man:systemd-resolved(8).
# Do not edit.
nameserver 10.31.0.2
nameserver 10.31.0.3
search corp.example.net
dev@cp-a:~$ grep -i resolv /var/lib/kubelet/config.yaml
resolvConf: /etc/resolv.conf
"""


def main() -> None:
    # D32: Vagrant, flannel on the NAT NIC of every node (transcript).
    write("d32-flannel-vagrant-nat-nic", {
        "first_cause_kind": "flannel-wrong-interface", "first_cause_node": "k8s-w-1",
        "explains": ["conn-error:TIMEOUT@k8s-w-1"],
    }, text=test_flannel_wrong_iface.with_node_state())

    # D34: Calico BGP, TCP 179 rejected by iptables-services on k8s-node-02 (transcript).
    write("d34-calico-bgp-179-rejected", {
        "first_cause_kind": "bgp-port-blocked", "first_cause_node": "k8s-node-02",
        "explains": ["bgp-not-established@k8s-node-01", "bgp-not-established@k8s-node-02",
                     "cni-agent-not-ready@k8s-node-01"],
    }, text=test_calico_bgp_down.incident())

    # D35: Cilium 1.15 VXLAN (8472) dropped by a hardened node's INPUT policy (bundle).
    files = test_encap_blocked.cilium_bundle()
    files["cluster/pods.json"] = k8s_list("Pod", [
        pod_json("kube-system", f"cilium-{s}", n, f"172.31.20.{20 + i}", host_network=True,
                 container="cilium-agent", image="quay.io/cilium/cilium:v1.15.5",
                 owner=("DaemonSet", "cilium"))
        for i, (n, s) in enumerate(zip(test_encap_blocked.CILIUM, ("x7k2m", "q9w4n", "b2c8d"),
                                       strict=True))] + [
        pod_json("web", "checkout-5c7d8f9b6-mx2kq", "k8s-w1", "10.0.1.101", container="checkout",
                 image="shop/checkout:4.1.0"),
        pod_json("web", "inventory-7f6d5c4b3-zq8wp", "k8s-w2", "10.0.2.214", container="inventory",
                 image="shop/inventory:2.0.3")])
    files["logs/web/checkout-5c7d8f9b6-mx2kq/checkout.log"] = (
        '2024-05-28T12:30:41.118Z {"level":"error","ts":"2024-05-28T12:30:41.118Z","msg":"inventory '
        'call failed","error":"Post \\"http://10.0.2.214:8080/reserve\\": dial tcp 10.0.2.214:8080: '
        'i/o timeout"}\n')
    write("d35-cilium-vxlan-hardened-node", {
        "first_cause_kind": "encapsulation-blocked", "first_cause_node": "k8s-w2",
        "explains": ["conn-error:TIMEOUT@k8s-w1"],
    }, files=files)

    # D33: Calico VXLAN, first-found took a docker-compose bridge on every node (bundle).
    write("d33-calico-compose-bridge", {
        "first_cause_kind": "calico-autodetect-wrong-address", "first_cause_node": "master-0",
        "explains": [],
    }, files=test_calico_autodetect.bundle())

    # D36: OpenStack MTU 1450, Calico veths at 1450 over vxlan.calico 1400 (transcript).
    write("d36-calico-openstack-mtu", {
        "first_cause_kind": "overlay-mtu-mismatch", "first_cause_node": "os-node-1",
        "explains": ["large-packets-lost@os-node-1"],
    }, text=test_overlay_mtu.transcript(
        "OpenStack (MTU 1450), Calico v3.27 VXLAN. curl of small pages works, large downloads "
        "from pods on the other node hang.",
        *[shell("os-node-1", cmd, test_overlay_mtu.out("calico_mtu", "os-node-1", f), user="ubuntu")
          for cmd, f in (("ip -d link show", "ip-link.txt"), ("ip addr show", "ip-addr.txt"),
                         ("ip route", "ip-route.txt"),
                         ("bridge fdb show dev vxlan.calico", "bridge-fdb.txt"))],
        shell("os-node-1", "ping -M do -s 1422 -c 2 192.168.112.67",
              "PING 192.168.112.67 (192.168.112.67) 1422(1450) bytes of data.\n"
              "ping: local error: message too long, mtu=1400\n"
              "ping: local error: message too long, mtu=1400\n\n"
              "--- 192.168.112.67 ping statistics ---\n"
              "2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 1027ms",
              user="ubuntu")))

    # E42: CoreDNS loop on Cilium / systemd-resolved (transcript).
    write("e42-coredns-loop-cilium-resolved", {
        "first_cause_kind": "coredns-forward-loop", "explains": ["dns-down"],
    }, text=COREDNS_LOOP)

    # E44: kube-proxy not programming worker-3 (flannel, Proxmox ens18, bundle).
    write("e44-kube-proxy-missing-worker3", {
        "first_cause_kind": "pod-service-path-broken", "first_cause_node": "worker-3",
        "explains": ["svc-unreachable:TIMEOUT@worker-3"],
    }, files=test_dns_node_path.bundle())

    # E47: Cilium, default-deny egress without DNS (transcript).
    write("e47-cilium-default-deny-dns", {
        "first_cause_kind": "netpol-blocks-dns", "explains": ["dns-errors@wk-a"],
    }, text=test_netpol_blocks_dns.incident())

    # Healthy Calico VXLAN cluster, node snapshots from namespaces (bundle): no root cause.
    files = {}
    names = ["cp-1", "wk-1", "wk-2"]
    for n in names:
        files.update(node_files("calico_healthy", n))
    files["cluster/nodes.json"] = k8s_list("Node", [
        node_json(n, f"10.50.0.{11 + i}", kubelet="v1.29.4",
                  annotations={"projectcalico.org/IPv4Address": f"10.50.0.{11 + i}/24",
                               "projectcalico.org/IPv4VXLANTunnelAddr": f"10.100.5.{i * 64}"})
        for i, n in enumerate(names)])
    files["cluster/pods.json"] = k8s_list("Pod", [
        pod_json("calico-system", f"calico-node-{s}", n, f"10.50.0.{11 + i}", host_network=True,
                 container="calico-node", image="docker.io/calico/node:v3.27.3")
        for i, (n, s) in enumerate(zip(names, ("h2x8d", "k9q2w", "p4t7z"), strict=True))])
    files["logs/calico-system/calico-node-h2x8d/calico-node.log"] = (
        "2024-05-20 07:15:02.390 [INFO][9] startup/autodetection_methods.go 103: Using autodetected "
        "IPv4 address on interface enp6s0: 10.50.0.11/24\n")
    write("healthy-calico-vxlan-netns", {"no_root_cause": True}, files=files)


if __name__ == "__main__":
    main()
