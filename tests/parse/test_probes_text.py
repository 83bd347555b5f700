"""traceroute, ping, curl, dig/nslookup, ps and socket listings."""

from __future__ import annotations

from pathlib import Path

import pytest

from netsleuth.errors import ParseError
from netsleuth.parse.probes_text import (
    parse_command_line,
    parse_curl,
    parse_dig,
    parse_lsof,
    parse_netstat,
    parse_nslookup,
    parse_ping,
    parse_ps,
    parse_ss,
    parse_traceroute,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "transcripts"


def _lines(name: str, first: int, last: int) -> str:
    return "\n".join((DATA / name).read_text(encoding="utf-8").split("\n")[first - 1 : last])


def test_traceroute_network_unreachable_has_no_hops() -> None:
    text = (
        "traceroute to 10.96.0.1 (10.96.0.1), 30 hops max, 60 byte packets\nconnect: Network is unreachable"
    )
    tr = parse_traceroute(text, "t", 139)
    assert (tr.target, tr.target_ip, tr.max_hops, tr.hops) == ("10.96.0.1", "10.96.0.1", 30, ())
    assert tr.error is not None and tr.error.errno == "ENETUNREACH"
    assert not tr.reached and tr.source.line == 139


def test_traceroute_silent_hops_then_host_unreachable() -> None:
    text = (
        "traceroute to 10.96.0.1 (10.96.0.1), 30 hops max, 60 byte packets\n"
        + "\n".join(f"{n:>2}  * * *" for n in range(1, 11))
        + "\n11  * * node1 (192.168.31.226)  3008.015 ms !H"
    )
    tr = parse_traceroute(text, "t")
    assert len(tr.hops) == 11 and all(h.silent for h in tr.hops[:10])
    last = tr.hops[-1]
    assert last.addresses == ("192.168.31.226",) and last.annotations == ("!H",)
    assert last.probes[2].name == "node1" and last.probes[2].rtt_ms == 3008.015
    assert tr.unreachable_annotations == ("!H",) and not tr.reached


def test_traceroute_numeric_and_reached() -> None:
    text = (
        "traceroute to 10.0.0.9 (10.0.0.9), 30 hops max, 60 byte packets\n"
        " 1  10.0.0.1  0.412 ms  0.398 ms  0.377 ms\n"
        " 2  10.0.0.9  1.201 ms !X  1.187 ms !X *\n"
    )
    tr = parse_traceroute(text, "t")
    assert tr.hops[1].annotations == ("!X",) and not tr.reached
    ok = parse_traceroute(text.replace(" !X", ""), "t")
    assert ok.reached


def test_traceroute_from_transcript() -> None:
    tr = parse_traceroute(_lines("k3s_markdown_repl.md", 91, 92), "k", 91)
    assert tr.hops[0].annotations == ("!H",) and tr.hops[0].addresses == ("192.168.8.22",)


def test_traceroute_rejects_other_text() -> None:
    with pytest.raises(ParseError):
        parse_traceroute("hello\nworld", "t")


def test_ping_destination_host_unreachable() -> None:
    ping = parse_ping(_lines("k3s_markdown_repl.md", 82, 89), "p", 82)
    assert (ping.target, ping.transmitted, ping.received, ping.loss_pct) == ("192.168.8.21", 3, 0, 100.0)
    assert ping.unreachable[0] == ("192.168.8.22", "Destination Host Unreachable")
    assert ping.replies == ()


def test_ping_errors_and_replies() -> None:
    bad = parse_ping("ping: connect: Network is unreachable", "p")
    assert bad.error is not None and bad.error.errno == "ENETUNREACH"
    good = parse_ping(
        "PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.\n"
        "64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=0.045 ms\n\n"
        "--- 10.0.0.1 ping statistics ---\n"
        "1 packets transmitted, 1 received, 0% packet loss, time 0ms\n",
        "p",
    )
    assert good.replies == (("10.0.0.1", 0.045),) and good.loss_pct == 0.0


def test_curl_results() -> None:
    timeout = parse_curl(_lines("flannel_vagrant_en.txt", 80, 80), "c", 80)
    assert timeout.exit_code == 28 and timeout.error is not None
    assert timeout.error.errno == "TIMEOUT" and timeout.source.line == 80
    refused = parse_curl(
        "*   Trying 10.96.0.1:443...\n"
        "* connect to 10.96.0.1 port 443 failed: Connection refused\n"
        "curl: (7) Failed to connect to 10.96.0.1 port 443 after 1 ms: Connection refused\n"
        "\nreal\t0m0.012s\n",
        "c",
    )
    assert refused.error is not None and refused.error.errno == "ECONNREFUSED"
    assert refused.error.dst == "10.96.0.1:443" and refused.elapsed_s == pytest.approx(0.012)
    slow = parse_curl("< HTTP/1.1 200 OK\nok\nreal\t1m3.215s\n", "c")
    assert slow.http_status == 200 and slow.error is None
    assert slow.elapsed_s == pytest.approx(63.215)  # the VXLAN checksum fingerprint


def test_dig_timeout_and_answer() -> None:
    dig = parse_dig(_lines("cilium_vpn_de.txt", 114, 117), "d", 114)
    assert dig.error is not None and dig.error.errno == "TIMEOUT" and not dig.resolved
    ok = parse_dig(
        "; <<>> DiG 9.18.24 <<>> kubernetes.default.svc.cluster.local\n"
        ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 3301\n"
        ";; QUESTION SECTION:\n"
        ";kubernetes.default.svc.cluster.local. IN A\n\n"
        ";; ANSWER SECTION:\n"
        "kubernetes.default.svc.cluster.local. 30 IN A 10.96.0.1\n\n"
        ";; SERVER: 10.96.0.10#53(10.96.0.10) (UDP)\n",
        "d",
    )
    assert ok.status == "NOERROR" and ok.server == "10.96.0.10#53"
    assert [(a.type, a.value, a.ttl) for a in ok.answers] == [("A", "10.96.0.1", 30)]
    nx = parse_dig(";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1\n", "d")
    assert nx.error is not None and nx.error.errno == "NXDOMAIN"


def test_nslookup_success_and_failure() -> None:
    ok = parse_nslookup(_lines("healthy_en.txt", 35, 40), "n", 35)
    assert ok.server == "10.96.0.10" and ok.status == "NOERROR"
    assert [(a.name, a.value) for a in ok.answers] == [("kubernetes.default.svc.cluster.local", "10.96.0.1")]
    bad = parse_nslookup(
        "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n"
        "** server can't find kubernetes.default: NXDOMAIN\n",
        "n",
    )
    assert bad.status == "NXDOMAIN" and bad.server == "10.96.0.10#53" and not bad.resolved
    timeout = parse_nslookup(";; connection timed out; no servers could be reached\n", "n")
    assert timeout.error is not None and timeout.error.errno == "TIMEOUT"


def test_ps_apiserver_flags_from_seed_shape() -> None:
    text = (
        "root      1121 17490  0 13:34 pts/0    00:00:00 grep --color=auto apiserver\n"
        "root      2939  2885  1 09:59 ?        00:04:00 kube-apiserver "
        "--advertise-address=192.168.56.3 --allow-privileged=true --secure-port=6443 "
        "--service-cluster-ip-range=10.96.0.0/12 --insecure-port=0\n"
    )
    (proc,) = parse_ps(text, "ps", 101, host="admin")
    assert (proc.program, proc.pid, proc.ppid, proc.user, proc.host) == (
        "kube-apiserver",
        2939,
        2885,
        "root",
        "admin",
    )
    assert proc.flag("service-cluster-ip-range") == "10.96.0.0/12"
    assert proc.flag("--advertise-address") == "192.168.56.3"
    assert proc.flag("secure-port") == "6443" and proc.source.line == 102


def test_ps_aux_k3s() -> None:
    procs = parse_ps(_lines("k3s_markdown_repl.md", 9, 10), "ps", 9)
    (k3s,) = procs
    assert k3s.program == "k3s" and k3s.pid == 812
    assert k3s.flag("service-cidr") == "10.43.0.0/16" and k3s.flag("node-ip") == "192.168.8.21"


def test_command_line_flags() -> None:
    proc = parse_command_line(
        "/usr/bin/kubelet --node-ip 10.0.0.5 --v=2 --rotate-certificates --cluster-dns=10.96.0.10"
    )
    assert proc.flags == {
        "node-ip": "10.0.0.5",
        "v": "2",
        "rotate-certificates": "true",
        "cluster-dns": "10.96.0.10",
    }


def test_lsof_listeners_with_service_names() -> None:
    text = (
        "COMMAND    PID USER   FD   TYPE DEVICE SIZE/OFF NODE NAME\n"
        "kubelet   1355 root   25u  IPv4  37928      0t0  TCP admin:40182->admin:sun-sr-https "
        "(ESTABLISHED)\n"
        "kube-apis 2939 root    5u  IPv6  37530      0t0  TCP *:sun-sr-https (LISTEN)\n"
    )
    est, listen = parse_lsof(text, "l", 124)
    assert est.state == "ESTABLISHED" and est.remote == "admin:sun-sr-https"
    assert (listen.program, listen.local_port, listen.proto, listen.listening) == (
        "kube-apis",
        6443,
        "tcp6",
        True,
    )
    assert listen.source.line == 126
    numeric = parse_lsof(_lines("journal_resolv_loop.txt", 27, 31), "l", 27)
    assert [s.local_port for s in numeric] == [53, 10248, 10250, 10256]


def test_ss_and_netstat() -> None:
    socks = parse_ss(_lines("calico_ipvs_loop_zh.txt", 68, 73), "s", 68)
    bgp = socks[0]
    assert (bgp.program, bgp.pid, bgp.local_port, bgp.state) == ("bird", 2781, 179, "LISTEN")
    assert [s.local_port for s in socks] == [179, 10248, 9099, 10250, 10256]
    ns = parse_netstat(
        "Active Internet connections (only servers)\n"
        "Proto Recv-Q Send-Q Local Address           Foreign Address         State       "
        "PID/Program name\n"
        "tcp6       0      0 :::6443                 :::*                    LISTEN      "
        "2939/kube-apiserver\n"
        "udp        0      0 0.0.0.0:8472            0.0.0.0:*                           -\n",
        "n",
    )
    assert [(s.program, s.local_port, s.state) for s in ns] == [
        ("kube-apiserver", 6443, "LISTEN"),
        (None, 8472, "LISTEN"),
    ]
