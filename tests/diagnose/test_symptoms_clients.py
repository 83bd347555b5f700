# ruff: noqa: E501  (command output is pasted in its real width)
"""S-CLIENT symptoms, and the raw-output helpers of the CNI/DNS detectors (`ip -d link` text
and JSON from real namespaces, neighbour/FDB tables)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from ipaddress import ip_address

import pytest

from netsleuth.diagnose.detectors._cni_dns import parse_link_details
from netsleuth.model.source import SourceRef
from tests.diagnose.cnidns import ev_transcript, out, run, shell, transcript


def keys(text: str) -> list[str]:
    return sorted(f.key for f in run(ev_transcript(text), "S-CLIENT"))


def test_dig_timeout_on_a_node() -> None:
    text = shell("worker-2", "dig +time=2 +tries=1 @172.20.0.10 kubernetes.default.svc.cluster.local",
                 "\n; <<>> DiG 9.18.24-1-Debian <<>> +time=2 +tries=1 @172.20.0.10 kubernetes.default.svc.cluster.local\n"
                 "; (1 server found)\n;; global options: +cmd\n;; connection timed out; no servers could be reached")
    assert keys(text) == ["dns-errors@worker-2"]


def test_curl_refused_and_timeout() -> None:
    text = transcript(
        shell("node-a", "curl -sk --max-time 5 https://10.0.0.9:8443/healthz", "curl: (7) Failed to connect to 10.0.0.9 port 8443 after 0 ms: Connection refused"),
        shell("node-b", "curl -s -m 5 http://10.244.2.3:8080/", "curl: (28) Connection timed out after 5000 milliseconds"),
    )
    assert keys(text) == ["conn-error:ECONNREFUSED@node-a", "conn-error:TIMEOUT@node-b"]


def test_df_ping_and_slow_time() -> None:
    text = transcript(
        shell("os-node-1", "ping -M do -s 1472 -c 1 10.30.0.12",
              "PING 10.30.0.12 (10.30.0.12) 1472(1500) bytes of data.\n"
              "From 10.30.0.1 icmp_seq=1 Frag needed and DF set (mtu = 1450)\n\n"
              "--- 10.30.0.12 ping statistics ---\n1 packets transmitted, 0 received, +1 errors, 100% packet loss, time 0ms"),
        shell("os-node-1", "time curl -s -o /dev/null http://10.96.12.40:80/",
              "\nreal\t1m3.412s\nuser\t0m0.008s\nsys\t0m0.004s"),
    )
    assert keys(text) == ["large-packets-lost@os-node-1", "stall-63s@os-node-1"]


def test_successful_commands_are_quiet() -> None:
    text = transcript(
        shell("node-a", "curl -sk https://10.96.0.1/healthz", "ok"),
        shell("node-a", "ping -c 1 10.0.0.2", "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.311 ms\n\n--- 10.0.0.2 ping statistics ---\n1 packets transmitted, 1 received, 0% packet loss, time 0ms"),
        shell("node-a", "time curl -s -o /dev/null http://10.96.12.40/", "\nreal\t0m0.031s\nuser\t0m0.008s\nsys\t0m0.004s"),
    )
    assert keys(text) == []


def test_link_details_from_real_ip_d_link_text() -> None:
    links = parse_link_details(out("flannel_firewall", "kube-node2", "ip-link.txt"), SourceRef("f", 1))
    vx = links["flannel.1"]
    assert (vx.kind, vx.vni, vx.port, vx.lower, vx.local, vx.mtu) == (
        "vxlan", 1, 8472, "ens33", ip_address("10.10.0.12"), 1450)
    assert links["cni0"].kind == "bridge" and links["ens33"].mtu == 1500


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2")
def test_link_details_from_real_ip_j_d_link_json() -> None:
    ns = f"nsdd-j{os.getpid() % 10000}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "x0"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "add", "vxlan.calico", "type", "vxlan", "id", "4096",
                        "local", "10.9.0.5", "dev", "eth0", "dstport", "4789", "nolearning"], check=True)
        text = subprocess.run(["ip", "-n", ns, "-j", "-d", "link", "show"], check=True,
                              capture_output=True, text=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert json.loads(text)
    vx = parse_link_details(text, SourceRef("j", 1))["vxlan.calico"]
    assert (vx.kind, vx.vni, vx.port, vx.lower, vx.local) == ("vxlan", 4096, 4789, "eth0",
                                                              ip_address("10.9.0.5"))
