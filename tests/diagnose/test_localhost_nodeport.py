"""C24: NodePort via 127.0.0.1 with route_localnet=0 (kube-node-2 captured in netns), and the
kernel behaviour the detector applies — checked on the real kernel."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap

import pytest

from netsleuth.diagnose.detectors.localhost_nodeport import localhost_nodeport

from .sectionbc import bundle, causes, node_files, report, run, transcript


def test_dnat_then_reroute_out_of_a_real_device_with_a_loopback_source() -> None:
    f = causes(run(localhost_nodeport, transcript("c24_localhost_nodeport.txt")))[0]
    assert f.node == "kube-node-2" and "NodePort 30080" in f.title
    assert any("DNAT --to-destination 10.233.96.12:80" in e.text for e in f.evidence)
    assert any(e.text == "net.ipv4.conf.all.route_localnet = 0" for e in f.evidence)
    assert any("re-routed out vxlan.calico with source 127.0.0.1" in e.text for e in f.evidence)
    assert f.fix[0].command == "sysctl -w net.ipv4.conf.all.route_localnet=1"
    assert "conn-error:TIMEOUT@kube-node-2" in f.explains
    r = report(transcript("c24_localhost_nodeport.txt"))
    assert r.causes[0].finding.kind == "localhost-nodeport" and not r.unexplained


def test_route_localnet_on_is_healthy() -> None:
    files = node_files("localhost-nodeport")
    for k in files:
        if k.endswith("sysctl.txt"):
            files[k] = files[k].replace("net.ipv4.conf.all.route_localnet = 0",
                                        "net.ipv4.conf.all.route_localnet = 1")
    assert not run(localhost_nodeport, bundle(files))


def test_latent_without_a_failing_call_has_lower_confidence() -> None:
    f = causes(run(localhost_nodeport, bundle(node_files("localhost-nodeport"))))[0]
    assert f.confidence < 0.8 and not f.explains


LAB = textwrap.dedent("""
    set -e
    ip netns add $C; ip netns add $P
    ip -n $C link set lo up; ip -n $P link set lo up
    ip -n $C link add eth0 type veth peer name p0 netns $P
    ip -n $C addr add 10.9.0.2/24 dev eth0; ip -n $C link set eth0 up
    ip -n $P addr add 10.9.0.1/24 dev p0; ip -n $P addr add 10.9.0.77/24 dev p0
    ip -n $P link set p0 up
    ip -n $C route add default via 10.9.0.1
    ip netns exec $C iptables -t nat -A OUTPUT -d 127.0.0.1 -p tcp --dport 30080 \\
        -j DNAT --to-destination 10.9.0.77:8080
    ip netns exec $C iptables -t nat -A POSTROUTING -s 127.0.0.0/8 -j MASQUERADE
""")
CONNECT = ("import socket;s=socket.socket();s.settimeout(1.5)\n"
           "try:\n s.connect(('127.0.0.1',30080));print('connected')\n"
           "except OSError as e:\n print(type(e).__name__)")
SERVE = ("import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
         "s.bind(('10.9.0.77',8080));s.listen(4);s.settimeout(8)\n"
         "try:\n while True: s.accept()[0].close()\nexcept OSError: pass")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("iptables") is None,
                    reason="needs root and iptables to build network namespaces")
def test_kernel_refuses_loopback_source_after_dnat_unless_route_localnet() -> None:
    """What the detector applies to the traced packet (__mkroute_output): with route_localnet
    0 the DNATed SYN from 127.0.0.1 is dropped (the connect times out); with 1 it connects."""
    env = {**os.environ, "C": f"nsdb-c24c-{os.getpid()}", "P": f"nsdb-c24p-{os.getpid()}"}
    try:
        subprocess.run(["sh", "-c", LAB], env=env, check=True, capture_output=True)
        server = subprocess.Popen(["ip", "netns", "exec", env["P"], "python3", "-c", SERVE])
        results = {}
        for value in ("0", "1"):
            for dev in ("all", "eth0"):
                subprocess.run(["ip", "netns", "exec", env["C"], "sysctl", "-qw",
                                f"net.ipv4.conf.{dev}.route_localnet={value}"], check=True)
            out = subprocess.run(["ip", "netns", "exec", env["C"], "python3", "-c", CONNECT],
                                 capture_output=True, text=True, check=True)
            results[value] = out.stdout.strip()
        server.terminate()
        server.wait(timeout=5)
        assert results == {"0": "TimeoutError", "1": "connected"}
    finally:
        for ns in (env["C"], env["P"]):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
