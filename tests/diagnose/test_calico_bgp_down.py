# ruff: noqa: E501  (kubectl tables and logs are pasted in their real width)
"""D34: Calico BGP sessions not established (TCP 179 rejected by k8s-node-02's firewall)."""

from __future__ import annotations

from pathlib import Path

from netsleuth.datapath.trace_model import Verdict
from netsleuth.snapshot.inputs import load_evidence
from tests.diagnose.cnidns import ev_transcript, kinds, out, report, run, shell, transcript

NODES = """NAME            STATUS   ROLES           AGE   VERSION   INTERNAL-IP    EXTERNAL-IP   OS-IMAGE                KERNEL-VERSION                 CONTAINER-RUNTIME
k8s-master-01   Ready    control-plane   97d   v1.27.8   172.16.10.11   <none>        CentOS Linux 7 (Core)   3.10.0-1160.108.1.el7.x86_64   containerd://1.6.26
k8s-node-01     Ready    <none>          97d   v1.27.8   172.16.10.13   <none>        CentOS Linux 7 (Core)   3.10.0-1160.108.1.el7.x86_64   containerd://1.6.26
k8s-node-02     Ready    <none>          97d   v1.27.8   172.16.10.12   <none>        CentOS Linux 7 (Core)   3.10.0-1160.108.1.el7.x86_64   containerd://1.6.26"""

STATUS_NODE01 = """Calico process is running.

IPv4 BGP status
+--------------+-------------------+-------+------------+--------------------------------+
| PEER ADDRESS |     PEER TYPE     | STATE |   SINCE    |              INFO              |
+--------------+-------------------+-------+------------+--------------------------------+
| 172.16.10.11 | node-to-node mesh | up    | 2024-03-01 | Established                    |
| 172.16.10.12 | node-to-node mesh | start | 08:21:07   | Active Socket: No route to     |
|              |                   |       |            | host                           |
+--------------+-------------------+-------+------------+--------------------------------+

IPv6 BGP status
No IPv6 peers found.
"""

STATUS_NODE02 = """Calico process is running.

IPv4 BGP status
+--------------+-------------------+-------+------------+-------------+
| PEER ADDRESS |     PEER TYPE     | STATE |   SINCE    |    INFO     |
+--------------+-------------------+-------+------------+-------------+
| 172.16.10.11 | node-to-node mesh | up    | 2024-03-01 | Established |
| 172.16.10.13 | node-to-node mesh | start | 08:21:05   | Passive     |
+--------------+-------------------+-------+------------+-------------+

IPv6 BGP status
No IPv6 peers found.
"""

EVENTS = """LAST SEEN   TYPE      REASON      OBJECT                  MESSAGE
2m11s       Warning   Unhealthy   pod/calico-node-4kq7p   Readiness probe failed: calico/node is not ready: BIRD is not ready: BGP not established with 172.16.10.12
2m9s        Warning   Unhealthy   pod/calico-node-x8w2d   Readiness probe failed: calico/node is not ready: BIRD is not ready: BGP not established with 172.16.10.13"""

PODS = """NAME                READY   STATUS    RESTARTS   AGE   IP             NODE            NOMINATED NODE   READINESS GATES
calico-node-4kq7p   0/1     Running   0          97d   172.16.10.13   k8s-node-01     <none>           <none>
calico-node-q2d8n   1/1     Running   0          97d   172.16.10.11   k8s-master-01   <none>           <none>
calico-node-x8w2d   0/1     Running   0          97d   172.16.10.12   k8s-node-02     <none>           <none>"""


def incident(*, with_firewall: bool = True) -> str:
    parts = [
        "Calico v3.26.4 (BGP, no encapsulation), k8s v1.27.8. Pods on k8s-node-02 time out on DNS.",
        shell("k8s-master-01", "kubectl get nodes -o wide", NODES),
        shell("k8s-master-01", "kubectl -n kube-system get pods -o wide -l k8s-app=calico-node", PODS),
        shell("k8s-master-01", "kubectl -n kube-system get events --field-selector reason=Unhealthy",
              EVENTS),
        shell("k8s-node-01", "calicoctl node status", STATUS_NODE01),
        shell("k8s-node-02", "calicoctl node status", STATUS_NODE02),
        shell("k8s-node-01", "ip route", out("calico_bgp", "k8s-node-01", "ip-route.txt")),
        shell("k8s-node-02", "ip route", out("calico_bgp", "k8s-node-02", "ip-route.txt")),
    ]
    if with_firewall:
        parts.append(shell("k8s-node-02", "iptables-save",
                           out("calico_bgp", "k8s-node-02", "iptables-save.txt")))
    return transcript(*parts)


def test_rejecting_rule_on_the_listener_is_proven_and_matches_birds_errno() -> None:
    found = run(ev_transcript(incident()), "D34")
    causes = [f for f in found if f.role == "cause"]
    assert kinds(causes) == [("bgp-port-blocked", "k8s-node-02")]
    cause = causes[0]
    assert cause.trace is not None and cause.trace.verdict == Verdict.REJECTED
    assert cause.trace.packet.dport == 179 and str(cause.trace.packet.src) == "172.16.10.13"
    assert cause.confidence >= 0.95  # icmp-host-prohibited ⇒ EHOSTUNREACH = "No route to host"
    assert any("REJECT --reject-with icmp-host-prohibited" in e.text and e.line > 0
               for e in cause.evidence)
    now = next(f for f in cause.fix if f.when == "now")
    assert now.command == "iptables -I INPUT 1 -s 172.16.10.0/24 -p tcp -m tcp --dport 179 -j ACCEPT"
    assert "Verified by simulation" in now.note
    assert any("/etc/sysconfig/iptables" in f.command for f in cause.fix if f.when == "permanent")


def test_symptoms_per_node_and_chain() -> None:
    r = report(ev_transcript(incident()))
    first = r.causes[0]
    assert (first.finding.kind, first.finding.node) == ("bgp-port-blocked", "k8s-node-02")
    explained = {f.key for f in first.explained}
    assert {"bgp-not-established@k8s-node-01", "bgp-not-established@k8s-node-02"} <= explained
    assert "cni-agent-not-ready@k8s-node-01" in explained


def test_missing_route_corroborates() -> None:
    cause = next(f for f in run(ev_transcript(incident()), "D34") if f.role == "cause")
    assert "no route to" in cause.detail


def test_without_firewall_evidence_only_a_weak_cause() -> None:
    found = run(ev_transcript(incident(with_firewall=False)), "D34")
    causes = [f for f in found if f.role == "cause"]
    assert kinds(causes) == [("bgp-session-down", "k8s-node-02")]
    assert causes[0].confidence <= 0.5 and causes[0].trace is None


def test_all_established_is_quiet() -> None:
    healthy = STATUS_NODE02.replace("start | 08:21:05   | Passive    ", "up    | 2024-03-01 | Established")
    text = transcript(shell("k8s-master-01", "kubectl get nodes -o wide", NODES),
                      shell("k8s-node-02", "calicoctl node status", healthy))
    assert run(ev_transcript(text), "D34") == []


# -- no Node objects: who the peer is comes from the BIRD routes ------------------------------

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "data" / "transcripts"

STATUS_MASTER = """Calico process is running.

IPv4 BGP status
+----------------+-------------------+-------+------------+--------------------------------+
|  PEER ADDRESS  |     PEER TYPE     | STATE |   SINCE    |              INFO              |
+----------------+-------------------+-------+------------+--------------------------------+
| 172.16.10.12   | node-to-node mesh | start | 2024-03-01 | Connect                        |
| 172.16.10.13   | node-to-node mesh | up    | 2024-03-01 | Established                    |
+----------------+-------------------+-------+------------+--------------------------------+

IPv6 BGP status
No IPv6 peers found.
"""
ROUTES_01 = """default via 172.16.10.1 dev eth0 proto static metric 100
10.233.92.0/24 via 172.16.10.13 dev tunl0 proto bird onlink
blackhole 10.233.105.0/24 proto bird
10.233.112.0/24 via 172.16.10.11 dev tunl0 proto bird onlink"""
ROUTES_02 = """default via 172.16.10.1 dev eth0 proto static metric 100
blackhole 10.233.92.0/24 proto bird
10.233.105.0/24 via 172.16.10.12 dev tunl0 proto bird onlink"""


def test_session_down_without_node_addresses_is_still_a_cause() -> None:
    # No `kubectl get nodes`: 172.16.10.12 is k8s-node-01 because k8s-node-02 routes
    # k8s-node-01's own block (its blackhole) via that address.
    text = transcript(
        shell("k8s-master-01", "calicoctl node status", STATUS_MASTER),
        shell("k8s-node-01", "ip route", ROUTES_01),
        shell("k8s-node-02", "ip route", ROUTES_02),
    )
    causes = [f for f in run(ev_transcript(text), "D34") if f.role == "cause"]
    assert kinds(causes) == [("bgp-session-down", "k8s-master-01")]
    f = causes[0]
    assert "k8s-node-01" in f.title and "172.16.10.12" in f.title
    assert "bgp-not-established@k8s-master-01" in f.explains
    assert f.confidence <= 0.6 and f.trace is None
    assert any("nc -zv" in x.command and "172.16.10.12 179" in x.command for x in f.fix)


def test_zh_transcript_root_cause_is_the_bgp_session() -> None:
    r = report(load_evidence(TRANSCRIPTS / "calico_ipvs_loop_zh.txt"))
    first = r.causes[0]
    assert (first.finding.kind, first.finding.node) == ("bgp-session-down", "k8s-master-01")
    assert "bgp-not-established@k8s-master-01" in {x.key for x in first.explained}
