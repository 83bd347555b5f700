# ruff: noqa: E501  (kubectl tables and logs are pasted in their real width)
"""D32: flannel bound to the wrong interface (Vagrant NAT NIC on every node)."""

from __future__ import annotations

from pathlib import Path

from netsleuth.datapath.trace_model import Verdict
from netsleuth.snapshot.inputs import load_evidence
from tests.diagnose.cnidns import ev_transcript, kinds, out, report, run, shell, transcript

NODES = """NAME       STATUS   ROLES           AGE   VERSION   INTERNAL-IP     EXTERNAL-IP   OS-IMAGE             KERNEL-VERSION      CONTAINER-RUNTIME
k8s-cp-1   Ready    control-plane   52m   v1.28.4   192.168.60.10   <none>        Ubuntu 22.04.3 LTS   5.15.0-88-generic   containerd://1.7.2
k8s-w-1    Ready    <none>          47m   v1.28.4   192.168.60.11   <none>        Ubuntu 22.04.3 LTS   5.15.0-88-generic   containerd://1.7.2
k8s-w-2    Ready    <none>          46m   v1.28.4   192.168.60.12   <none>        Ubuntu 22.04.3 LTS   5.15.0-88-generic   containerd://1.7.2"""

PODS = """NAMESPACE      NAME                               READY   STATUS    RESTARTS   AGE   IP              NODE       NOMINATED NODE   READINESS GATES
kube-flannel   kube-flannel-ds-2hxkq              1/1     Running   0          45m   192.168.60.12   k8s-w-2    <none>           <none>
kube-flannel   kube-flannel-ds-8xk2p              1/1     Running   0          47m   192.168.60.11   k8s-w-1    <none>           <none>
kube-flannel   kube-flannel-ds-tq7mz              1/1     Running   0          51m   192.168.60.10   k8s-cp-1   <none>           <none>
kube-system    coredns-5dd5756b68-bk5xd           1/1     Running   0          52m   10.244.0.2      k8s-cp-1   <none>           <none>
kube-system    coredns-5dd5756b68-q8fsl           1/1     Running   0          52m   10.244.0.3      k8s-cp-1   <none>           <none>"""


def flannel_log(node: str) -> str:
    return f"""I1204 09:12:31.131298       1 kube.go:139] Waiting 10m0s for node controller to sync
I1204 09:12:32.131614       1 main.go:229] Created subnet manager: Kubernetes Subnet Manager - {node}
I1204 09:12:32.131785       1 main.go:540] Found network config - Backend type: vxlan
I1204 09:12:32.131823       1 match.go:206] Determining IP address of default interface
I1204 09:12:32.132288       1 match.go:259] Using interface with name eth0 and address 10.0.2.15
I1204 09:12:32.132313       1 match.go:281] Defaulting external address to interface address (10.0.2.15)
I1204 09:12:32.132394       1 vxlan.go:141] VXLAN config: VNI=1 Port=0 GBP=false Learning=false DirectRouting=false
I1204 09:12:32.151983       1 main.go:433] Wrote subnet file to /run/flannel/subnet.env
I1204 09:12:32.152000       1 main.go:437] Running backend."""


def base() -> str:
    return transcript(
        "Vagrant, 3 VMs, flannel v0.24.2. Pods on different nodes time out talking to each other.",
        shell("k8s-cp-1", "kubectl get nodes -o wide", NODES, user="vagrant"),
        shell("k8s-cp-1", "kubectl get pods -A -o wide", PODS, user="vagrant"),
        shell("k8s-cp-1", "kubectl -n kube-flannel logs kube-flannel-ds-8xk2p | head -9",
              flannel_log("k8s-w-1"), user="vagrant"),
        shell("k8s-cp-1", "kubectl -n kube-flannel logs kube-flannel-ds-2hxkq | head -9",
              flannel_log("k8s-w-2"), user="vagrant"),
        shell("k8s-cp-1", "kubectl -n kube-flannel logs kube-flannel-ds-tq7mz | head -9",
              flannel_log("k8s-cp-1"), user="vagrant"),
    )


def with_node_state() -> str:
    return base() + transcript(
        shell("k8s-w-1", "ip -d link show", out("flannel_vagrant", "k8s-w-1", "ip-link.txt"),
              user="vagrant"),
        shell("k8s-w-1", "ip addr show", out("flannel_vagrant", "k8s-w-1", "ip-addr.txt"),
              user="vagrant"),
        shell("k8s-w-1", "ip route", out("flannel_vagrant", "k8s-w-1", "ip-route.txt"),
              user="vagrant"),
        shell("k8s-w-1", "curl -sk --max-time 5 http://10.244.2.3:8080/",
              "curl: (28) Connection timed out after 5001 milliseconds", user="vagrant"),
    )


def test_logs_only_every_node_shares_the_endpoint() -> None:
    # One fault (one DaemonSet setting), not one per node.
    found = run(ev_transcript(base()), "D32")
    assert kinds(found) == [("flannel-wrong-interface", "k8s-cp-1")]
    assert found[0].trace is None and found[0].confidence < 0.8
    assert all(n in found[0].title for n in ("k8s-cp-1", "k8s-w-1", "k8s-w-2", "10.0.2.15"))
    assert "FLANNELD_IFACE=" in found[0].fix[0].command


def test_trace_proves_the_tunnel_loops_back_and_fix_is_verified() -> None:
    found = run(ev_transcript(with_node_state()), "D32")
    assert kinds(found) == [("flannel-wrong-interface", "k8s-w-1")]
    w1 = found[0]
    assert w1.trace is not None and w1.trace.verdict == Verdict.DELIVERED_LOCAL
    assert w1.trace.packet.dport == 8472 and str(w1.trace.packet.dst) == "10.0.2.15"
    assert w1.confidence >= 0.9
    fix = w1.fix[0]
    assert fix.command == "kubectl -n kube-flannel set env daemonset/kube-flannel-ds FLANNELD_IFACE=eth1"
    assert "verified by simulation" in fix.note and "goes out eth1 straight to 192.168.60.10" in fix.note
    # The evidence quotes the flannel log line of that node by its transcript line.
    assert any("Using interface with name eth0" in e.text and e.line > 0 for e in w1.evidence)


def test_root_cause_ranked_first_and_explains_the_timeout() -> None:
    r = report(ev_transcript(with_node_state()))
    first = r.causes[0].finding
    assert first.kind == "flannel-wrong-interface"
    assert first.node == "k8s-w-1"  # anchored on the node whose trace proves it


def test_healthy_flannel_on_the_cluster_nic_is_not_flagged() -> None:
    text = transcript(
        shell("kube-master", "kubectl -n kube-flannel logs kube-flannel-ds-x7c2k",
              "I0312 10:01:02.100000       1 match.go:259] Using interface with name ens33 and "
              "address 10.10.0.11\nI0312 10:01:02.100100       1 main.go:229] Created subnet "
              "manager: Kubernetes Subnet Manager - kube-node1"),
        shell("kube-master", "kubectl -n kube-flannel logs kube-flannel-ds-p2m9d",
              "I0312 10:01:05.200000       1 match.go:259] Using interface with name ens33 and "
              "address 10.10.0.12\nI0312 10:01:05.200100       1 main.go:229] Created subnet "
              "manager: Kubernetes Subnet Manager - kube-node2"),
        shell("kube-node1", "ip -d link show", out("flannel_firewall", "kube-node1", "ip-link.txt")),
        shell("kube-node1", "ip addr show", out("flannel_firewall", "kube-node1", "ip-addr.txt")),
        shell("kube-node1", "ip route", out("flannel_firewall", "kube-node1", "ip-route.txt")),
    )
    assert run(ev_transcript(text), "D32") == []


# -- one node's flannel log, the others known only by `kubectl get nodes` -------------------------

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "data" / "transcripts"

NAT_NODES = """NAME       STATUS   ROLES           AGE   VERSION   INTERNAL-IP   EXTERNAL-IP   OS-IMAGE             KERNEL-VERSION      CONTAINER-RUNTIME
k8s-cp-1   Ready    control-plane   41m   v1.28.4   10.0.2.15     <none>        Ubuntu 22.04.3 LTS   5.15.0-88-generic   containerd://1.7.2
k8s-w-1    Ready    <none>          37m   v1.28.4   10.0.2.15     <none>        Ubuntu 22.04.3 LTS   5.15.0-88-generic   containerd://1.7.2
k8s-w-2    Ready    <none>          36m   v1.28.4   10.0.2.15     <none>        Ubuntu 22.04.3 LTS   5.15.0-88-generic   containerd://1.7.2"""


def test_one_flannel_log_and_the_peers_internal_ips_prove_it() -> None:
    # flanneld on k8s-w-1 auto-detected eth0 10.0.2.15, its own InternalIP; the DaemonSet runs
    # the same flags everywhere, so every node advertises its InternalIP -- all 10.0.2.15.
    ev = load_evidence(TRANSCRIPTS / "flannel_vagrant_en.txt")
    found = run(ev, "D32")
    assert kinds(found) == [("flannel-wrong-interface", "k8s-w-1")]
    f = found[0]
    assert f.trace is not None and f.trace.verdict == Verdict.DELIVERED_LOCAL
    assert str(f.trace.packet.dst) == "10.0.2.15" and f.trace.packet.dport == 8472
    # eth1 is w-1's only other NIC: the fix names it without the peers' eth1 addresses.
    assert f.fix[0].command == "kubectl -n kube-flannel set env daemonset/kube-flannel-ds FLANNELD_IFACE=eth1"
    assert "Verified by simulation" not in f.fix[0].note
    assert 0.8 <= f.confidence < 0.95  # the peers' endpoints are assumed from their InternalIPs


def test_transcript_root_cause_is_flannel_not_the_node_ip() -> None:
    r = report(load_evidence(TRANSCRIPTS / "flannel_vagrant_en.txt"))
    first = r.causes[0]
    assert (first.finding.kind, first.finding.node) == ("flannel-wrong-interface", "k8s-w-1")
    assert "conn-error:TIMEOUT@k8s-w-1" in {x.key for x in first.explained}
    assert "node-ip-wrong" in [c.finding.kind for c in r.causes]


def test_healthy_single_log_with_distinct_internal_ips_is_quiet() -> None:
    # The same single log, but the nodes' InternalIPs are distinct (kubelet --node-ip set and
    # flannel on the cluster NIC): nothing is shared, nothing loops back.
    text = transcript(
        shell("k8s-cp-1", "kubectl get nodes -o wide", NODES, user="vagrant"),
        shell("k8s-cp-1", "kubectl -n kube-flannel logs kube-flannel-ds-8xk2p | head -9",
              flannel_log("k8s-w-1").replace("eth0 and address 10.0.2.15", "eth1 and address 192.168.60.11")
              .replace("address (10.0.2.15)", "address (192.168.60.11)"), user="vagrant"),
    )
    assert run(ev_transcript(text), "D32") == []


def test_peers_internal_ips_alone_are_no_evidence_of_flannel() -> None:
    # Same InternalIPs but no flannel log or annotation: that is A02's finding, not D32's.
    text = transcript(shell("k8s-cp-1", "kubectl get nodes -o wide", NAT_NODES, user="vagrant"))
    assert run(ev_transcript(text), "D32") == []
