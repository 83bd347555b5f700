# ruff: noqa: E501  (iproute2 output is pasted in its real width)
"""D36: MTU mismatch on the overlay. Interface MTUs come from REAL `ip -d link` output of
network namespaces (tests/data/cni_dns/generate.py): a NIC whose MTU was lowered after
flannel.1 was created (the kernel keeps flannel.1 at 1450), and Calico pods' veths left at the
underlay's 1450 while vxlan.calico carries 1400."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

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


def flannel() -> dict[str, str]:
    files = {**node_files("flannel_mtu", "node-a"), **node_files("flannel_mtu", "node-b")}
    files["cluster/nodes.json"] = k8s_list("Node", [node_json("node-a", "10.77.0.10"),
                                                    node_json("node-b", "10.77.0.11")])
    files["cluster/daemonsets.json"] = k8s_list("DaemonSet", [])
    return files


def test_flannel_tunnel_bigger_than_the_lowered_nic() -> None:
    found = run(ev_bundle(flannel()), "D36")
    assert kinds(found) == [("overlay-mtu-mismatch", "node-a"), ("overlay-mtu-mismatch", "node-b")]
    f = found[0]
    assert "flannel.1 (mtu 1450) + 50 bytes of vxlan headers = 1500 > enp1s0 mtu 1400" in f.title
    assert f.trace is not None and f.trace.main.interface == "flannel.1"
    assert f.fix[0].command == "ip link set flannel.1 mtu 1350"
    assert any(x.command.startswith("ip link set cni0 mtu 1350; for i in $(ip -o link show master cni0")
               for x in f.fix)


def test_calico_pod_veths_bigger_than_the_tunnel() -> None:
    text = transcript(
        "OpenStack (MTU 1450), Calico v3.27 VXLAN. curl of small pages works, large downloads "
        "from pods on the other node hang.",
        shell("os-node-1", "ip -d link show", out("calico_mtu", "os-node-1", "ip-link.txt"), user="ubuntu"),
        shell("os-node-1", "ip addr show", out("calico_mtu", "os-node-1", "ip-addr.txt"), user="ubuntu"),
        shell("os-node-1", "ip route", out("calico_mtu", "os-node-1", "ip-route.txt"), user="ubuntu"),
        shell("os-node-1", "bridge fdb show dev vxlan.calico", out("calico_mtu", "os-node-1", "bridge-fdb.txt"), user="ubuntu"),
        shell("os-node-1", "ping -M do -s 1422 -c 2 192.168.112.67",
              "PING 192.168.112.67 (192.168.112.67) 1422(1450) bytes of data.\n"
              "ping: local error: message too long, mtu=1400\n"
              "ping: local error: message too long, mtu=1400\n\n"
              "--- 192.168.112.67 ping statistics ---\n"
              "2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 1027ms", user="ubuntu"),
    )
    found = run(ev_transcript(text), "D36")
    assert kinds(found) == [("overlay-mtu-mismatch", "os-node-1")]
    f = found[0]
    assert "have mtu 1450 > the 1400 bytes vxlan.calico can carry" in f.title
    assert any("\"mtu\":1400" in x.command for x in f.fix)
    r = report(ev_transcript(text))
    assert r.causes[0].finding.kind == "overlay-mtu-mismatch"
    assert "large-packets-lost@os-node-1" in {x.key for x in r.causes[0].explained}


def cilium(dataset: str, names: list[str], lan: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for n in names:
        files.update(node_files(dataset, n))
    files["cluster/nodes.json"] = k8s_list("Node", [node_json(n, lan.format(20 + i))
                                                    for i, n in enumerate(names)])
    return files


def test_cilium_routes_allow_more_than_the_vswitch_carries() -> None:
    found = run(ev_bundle(cilium("cilium_vswitch", ["hz-node-1", "hz-node-2"], "10.20.0.{}")), "D36")
    assert kinds(found) == [("overlay-mtu-mismatch", "hz-node-1"), ("overlay-mtu-mismatch", "hz-node-2")]
    assert "mtu 1450" in found[0].title and "enp7s0 mtu 1400" in found[0].title
    assert any("--set MTU=1400" in x.command for x in found[0].fix)


def test_healthy_cilium_device_at_1500_is_not_a_mismatch() -> None:
    files = cilium("cilium_hardened", ["k8s-m1", "k8s-w1", "k8s-w2"], "172.31.20.{}")
    assert run(ev_bundle(files), "D36") == []


def test_consistent_mtus_are_quiet() -> None:
    files = {**node_files("calico_healthy", "cp-1"), **node_files("calico_healthy", "wk-1"),
             **node_files("flannel_firewall", "kube-node1")}
    assert run(ev_bundle(files), "D36") == []


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2")
def test_the_host_side_fix_command_works_in_a_namespace() -> None:
    """The `now` fix for routed pods (cali*) really changes those links' MTU."""
    f = next(x for x in run(ev_bundle(node_files("calico_mtu", "os-node-1")), "D36"))
    cmd = next(x.command for x in f.fix if x.command.startswith("for i in"))
    ns = f"nsdd-t{os.getpid() % 10000}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for name in ("calia1b2c3d4e5f", "cali0f9e8d7c6b5"):
            subprocess.run(["ip", "-n", ns, "link", "add", name, "mtu", "1450", "type", "veth",
                            "peer", "name", f"p{name[4:12]}"], check=True)
        subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", cmd], check=True)
        shown = subprocess.run(["ip", "-n", ns, "-o", "link", "show"], check=True,
                               capture_output=True, text=True).stdout
        assert all(" mtu 1400 " in line for line in shown.splitlines() if ": cali" in line)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
