# ruff: noqa: E501  (command output is pasted in its real width)
"""D37: ~63 s stalls of node → ClusterIP over flannel's VXLAN (CentOS 7, kernel 3.10)."""

from __future__ import annotations

from tests.diagnose.cnidns import ev_transcript, kinds, out, report, run, shell, transcript

NODES = """NAME          STATUS   ROLES                  AGE    VERSION    INTERNAL-IP   EXTERNAL-IP   OS-IMAGE                KERNEL-VERSION                 CONTAINER-RUNTIME
kube-master   Ready    control-plane,master   412d   v1.23.17   10.10.0.10    <none>        CentOS Linux 7 (Core)   3.10.0-1160.119.1.el7.x86_64   docker://20.10.24
kube-node1    Ready    <none>                 412d   v1.23.17   10.10.0.11    <none>        CentOS Linux 7 (Core)   3.10.0-1160.119.1.el7.x86_64   docker://20.10.24
kube-node2    Ready    <none>                 412d   v1.23.17   10.10.0.12    <none>        CentOS Linux 7 (Core)   3.10.0-1160.119.1.el7.x86_64   docker://20.10.24"""

DIG = """; <<>> DiG 9.11.4-P2-RedHat-9.11.4-26.P2.el7_9.16 <<>> +tcp @10.254.0.2 kubernetes.default.svc.cluster.local
; (1 server found)
;; global options: +cmd
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 40321
;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1

;; ANSWER SECTION:
kubernetes.default.svc.cluster.local. 30 IN A	10.254.0.1

;; Query time: 1 msec
;; SERVER: 10.254.0.2#53(10.254.0.2)
;; WHEN: Tue May 21 10:40:02 CST 2024
;; MSG SIZE  rcvd: 117


real	1m3.118s
user	0m0.004s
sys	0m0.009s"""


def incident(with_ethtool: bool = True, seconds: str = "1m3.118s") -> str:
    parts = [
        "Any request from a node to a ClusterIP takes about a minute; from pods it is instant.",
        shell("kube-master", "kubectl get nodes -o wide", NODES),
        shell("kube-node2", "ip -d link show", out("flannel_firewall", "kube-node2", "ip-link.txt")),
        shell("kube-node2", "ip addr", out("flannel_firewall", "kube-node2", "ip-addr.txt")),
        shell("kube-node2", "ip route", out("flannel_firewall", "kube-node2", "ip-route.txt")),
        shell("kube-node2", "iptables-save -t nat", out("flannel_firewall", "kube-node2", "iptables-save.txt")),
        shell("kube-node2", "time dig +tcp @10.254.0.2 kubernetes.default.svc.cluster.local",
              DIG.replace("1m3.118s", seconds)),
    ]
    if with_ethtool:
        parts.append(shell("kube-node2", "ethtool -k flannel.1 | grep tx-checksum",
                           "\n".join(x for x in out("flannel_firewall", "kube-node2", "ethtool-k.txt").split("\n")
                                     if "tx-checksum" in x or x.startswith("Features"))))
    return transcript(*parts)


def test_63s_stall_through_natted_vxlan_path() -> None:
    found = run(ev_transcript(incident()), "D37")
    assert kinds(found) == [("vxlan-checksum-offload", "kube-node2")]
    f = found[0]
    assert f.trace is not None and f.trace.main.interface == "flannel.1" and f.trace.main.packet.dnat
    assert f.confidence >= 0.9
    assert f.fix[0].command == "ethtool -K flannel.1 tx-checksum-ip-generic off"
    assert any("tx-checksum-ip-generic: on" in e.text for e in f.evidence)
    assert any("3.10.0-1160" in e.text for e in f.evidence)


def test_explains_the_stall_symptom() -> None:
    r = report(ev_transcript(incident()))
    causes = {c.finding.kind: c for c in r.causes}
    assert "stall-63s@kube-node2" in {x.key for x in causes["vxlan-checksum-offload"].explained}


def test_without_ethtool_lower_confidence() -> None:
    found = run(ev_transcript(incident(with_ethtool=False)), "D37")
    assert kinds(found) == [("vxlan-checksum-offload", "kube-node2")]
    assert found[0].confidence < 0.9


def test_fast_answer_is_quiet() -> None:
    assert run(ev_transcript(incident(seconds="0m0.012s")), "D37") == []
