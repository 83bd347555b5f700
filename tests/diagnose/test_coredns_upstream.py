# ruff: noqa: E501  (logs are pasted in their real width)
"""E43: CoreDNS upstream unreachable: traced from the CoreDNS pod through its node (Calico,
natOutgoing off vs on; iptables from real namespaces with felix's chains and ipsets)."""

from __future__ import annotations

from tests.diagnose.cnidns import (
    ev_bundle,
    k8s_list,
    kinds,
    node_files,
    node_json,
    pod_json,
    report,
    run,
)

NODES = ["ip-10-0-1-11", "ip-10-0-1-12"]
COREDNS_LOG = """2024-05-22T08:11:02.118273645Z .:53
2024-05-22T08:11:02.118291022Z [INFO] plugin/reload: Running configuration SHA512 = 8bc1a8d5c1a2f0c3
2024-05-22T08:11:02.118299931Z CoreDNS-1.10.1
2024-05-22T08:11:02.118305117Z linux/amd64, go1.20, 055b2c3
2024-05-22T08:11:04.120834121Z [ERROR] plugin/errors: 2 8216309425601813251.3391839226405871923. HINFO: read udp 192.168.87.3:48615->10.0.0.2:53: i/o timeout
2024-05-22T08:12:13.552011022Z [ERROR] plugin/errors: 2 registry-1.docker.io. A: read udp 192.168.87.3:52117->10.0.0.2:53: i/o timeout
2024-05-22T08:12:15.553102278Z [ERROR] plugin/errors: 2 registry-1.docker.io. AAAA: read udp 192.168.87.3:39911->10.0.0.2:53: i/o timeout
"""


def bundle(dataset: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for n in NODES:
        files.update(node_files(dataset, n, only=("ip-addr.txt", "ip-link.txt", "ip-route.txt",
                                                  "iptables-save.txt")))
    files["cluster/nodes.json"] = k8s_list("Node", [node_json(n, f"10.0.1.{11 + i}", kubelet="v1.27.13")
                                                    for i, n in enumerate(NODES)])
    files["cluster/pods.json"] = k8s_list("Pod", [
        pod_json("kube-system", "coredns-5d78c9869d-7x2kq", NODES[0], "192.168.87.3",
                 labels={"k8s-app": "kube-dns"}, container="coredns",
                 image="registry.k8s.io/coredns/coredns:v1.10.1"),
        pod_json("kube-system", "calico-node-b2xq9", NODES[0], "10.0.1.11", host_network=True,
                 container="calico-node", image="docker.io/calico/node:v3.27.3"),
    ])
    files["logs/kube-system/coredns-5d78c9869d-7x2kq/coredns.log"] = COREDNS_LOG
    return files


def test_pod_egress_without_snat() -> None:
    found = run(ev_bundle(bundle("calico_nonat")), "E43")
    assert kinds(found) == [("pod-egress-not-masqueraded", "ip-10-0-1-11")]
    f = found[0]
    assert f.trace is not None and f.trace.main.packet.src is not None
    assert str(f.trace.main.packet.src) == "192.168.87.3"  # left the node un-NATed
    assert f.fix[0].command == "iptables -t nat -I POSTROUTING 1 -s 192.168.87.0/26 ! -d 192.168.87.0/26 -j MASQUERADE"
    assert "Verified by simulation" in f.fix[0].note
    assert "natOutgoing" in f.fix[1].command
    assert "conn-error:TIMEOUT@ip-10-0-1-11" in f.explains


def test_node_fine_points_at_the_upstream() -> None:
    found = run(ev_bundle(bundle("calico_natout")), "E43")
    assert kinds(found) == [("coredns-upstream-unreachable", "ip-10-0-1-11")]
    assert found[0].confidence < 0.7
    assert "forward ." in found[0].fix[0].command


def test_report_chains_the_log_symptoms() -> None:
    r = report(ev_bundle(bundle("calico_nonat")))
    first = r.causes[0]
    assert first.finding.kind == "pod-egress-not-masqueraded"
    assert "conn-error:TIMEOUT@ip-10-0-1-11" in {x.key for x in first.explained}


def test_no_upstream_errors_is_quiet() -> None:
    files = bundle("calico_nonat")
    files["logs/kube-system/coredns-5d78c9869d-7x2kq/coredns.log"] = "\n".join(COREDNS_LOG.split("\n")[:4])
    assert run(ev_bundle(files), "E43") == []
