# ruff: noqa: E501  (ping/traceroute/ip output is pasted in its real width)
"""A51: a node cannot resolve a peer's link-layer address (ARP/ND fails on the node network):
the peer is down or no longer on the segment. Not a Kubernetes fault, but the one that explains
"Destination Host Unreachable" from the node's own address."""

from __future__ import annotations

from pathlib import Path

from netsleuth.snapshot.inputs import load_evidence
from tests.diagnose.cnidns import ev_transcript, kinds, report, run, shell, transcript

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "data" / "transcripts"

PING_ARP_FAILS = """PING 10.50.0.21 (10.50.0.21) 56(84) bytes of data.
From 10.50.0.22 icmp_seq=1 Destination Host Unreachable
From 10.50.0.22 icmp_seq=2 Destination Host Unreachable
From 10.50.0.22 icmp_seq=3 Destination Host Unreachable

--- 10.50.0.21 ping statistics ---
3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2030ms
pipe 3"""
PING_SILENT = """PING 10.50.0.21 (10.50.0.21) 56(84) bytes of data.

--- 10.50.0.21 ping statistics ---
3 packets transmitted, 0 received, 100% packet loss, time 2049ms"""
PING_ROUTER = """PING 10.60.3.7 (10.60.3.7) 56(84) bytes of data.
From 10.50.0.1 icmp_seq=1 Destination Host Unreachable
From 10.50.0.1 icmp_seq=2 Destination Host Unreachable

--- 10.60.3.7 ping statistics ---
2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 1013ms"""
NODES = """NAME     STATUS     ROLES                  AGE    VERSION        INTERNAL-IP   EXTERNAL-IP   OS-IMAGE                         KERNEL-VERSION      CONTAINER-RUNTIME
lab-s1   Ready      control-plane,master   201d   v1.27.7+k3s2   10.50.0.21    <none>        Debian GNU/Linux 12 (bookworm)   6.1.0-13-arm64      containerd://1.7.7-k3s1
lab-a1   NotReady   <none>                 201d   v1.27.7+k3s2   10.50.0.22    <none>        Debian GNU/Linux 12 (bookworm)   6.1.0-13-arm64      containerd://1.7.7-k3s1"""
ROUTES = """default via 10.50.0.1 dev eth0 proto dhcp src 10.50.0.22 metric 100
10.42.0.0/24 via 10.42.0.0 dev flannel.1 onlink
10.42.1.0/24 dev cni0 proto kernel scope link src 10.42.1.1
10.50.0.0/24 dev eth0 proto kernel scope link src 10.50.0.22 metric 100"""
NEIGH = """10.50.0.1 dev eth0 lladdr 00:0d:b9:5e:12:a4 REACHABLE
10.50.0.21 dev eth0  FAILED"""


def incident(*extra: str) -> str:
    return transcript(
        shell("lab-s1", "kubectl get nodes -o wide", NODES, user="pi"),
        shell("lab-a1", "ping -c 3 10.50.0.21", PING_ARP_FAILS, user="pi"),
        *extra,
    )


def test_arp_failure_for_the_server_is_the_cause() -> None:
    found = run(ev_transcript(incident()), "A51")
    assert kinds(found) == [("neighbour-unreachable", "lab-s1")]
    f = found[0]
    assert "conn-error:EHOSTUNREACH@lab-a1" in f.explains
    assert any("From 10.50.0.22 icmp_seq=1 Destination Host Unreachable" in e.text for e in f.evidence)
    assert any("arping" in x.command and "10.50.0.21" in x.command for x in f.fix)


def test_node_state_says_whose_arp_fails_and_the_neighbour_table_confirms() -> None:
    ev = ev_transcript(incident(shell("lab-a1", "ip route", ROUTES, user="pi"),
                                shell("lab-a1", "ip neigh", NEIGH, user="pi")))
    (f,) = run(ev, "A51")
    assert f.trace is not None and f.trace.main.interface == "eth0"
    assert f.trace.main.next_hop == "10.50.0.21"  # on-link: ARP is for the server itself
    assert any("10.50.0.21 dev eth0  FAILED" in e.text for e in f.evidence)
    assert f.confidence >= 0.9
    assert any("arping -I eth0 -c 3 10.50.0.21" in x.command for x in f.fix)


def test_ping_symptom_is_ehostunreach_and_the_cause_explains_it() -> None:
    r = report(ev_transcript(incident()))
    assert r.causes and r.causes[0].finding.kind == "neighbour-unreachable"
    assert "conn-error:EHOSTUNREACH@lab-a1" in {x.key for x in r.causes[0].explained}


def test_silent_loss_is_not_an_arp_failure() -> None:
    text = transcript(shell("lab-s1", "kubectl get nodes -o wide", NODES, user="pi"),
                      shell("lab-a1", "ping -c 3 10.50.0.21", PING_SILENT, user="pi"))
    assert run(ev_transcript(text), "A51") == []
    assert [f.key for f in run(ev_transcript(text), "S-CLIENT")] == ["conn-error:TIMEOUT@lab-a1"]


def test_unreachable_reported_by_a_router_is_not_this_nodes_arp() -> None:
    text = transcript(shell("lab-s1", "kubectl get nodes -o wide", NODES, user="pi"),
                      shell("lab-a1", "ping -c 2 10.60.3.7", PING_ROUTER, user="pi"))
    assert run(ev_transcript(text), "A51") == []


def test_k3s_edge_site_transcript() -> None:
    ev = load_evidence(TRANSCRIPTS / "k3s_markdown_repl.md")
    found = run(ev, "A51")
    assert kinds(found) == [("neighbour-unreachable", "edge1")]
    assert "conn-error:EHOSTUNREACH@edge2" in found[0].explains
