# ruff: noqa: E501  (logs and tables are pasted in their real width)
"""E44: DNS times out only from pods on worker-3, whose ruleset has no kube-proxy rules
(kube-proxy not running there); the other nodes DNAT the query to CoreDNS."""

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

NAMES = ["cp", "worker-1", "worker-2", "worker-3"]


def bundle(*, with_symptom: bool = True, broken: bool = True) -> dict[str, str]:
    files: dict[str, str] = {}
    for n in NAMES:
        files.update(node_files("flannel_noproxy", n, only=("ip-addr.txt", "ip-link.txt",
                                                            "ip-route.txt", "iptables-save.txt")))
    if not broken:
        files["nodes/worker-3/iptables-save.txt"] = files["nodes/worker-1/iptables-save.txt"]
    files["cluster/nodes.json"] = k8s_list("Node", [
        node_json(n, f"192.168.1.{10 + i}", pod_cidr=f"10.244.{i}.0/24", kubelet="v1.26.15")
        for i, n in enumerate(NAMES)])
    files["cluster/services.json"] = k8s_list("Service", [{
        "apiVersion": "v1", "metadata": {"name": "kube-dns", "namespace": "kube-system",
                                         "labels": {"k8s-app": "kube-dns"}},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                 "selector": {"k8s-app": "kube-dns"},
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}}])
    files["cluster/endpoints.json"] = k8s_list("Endpoints", [{
        "apiVersion": "v1", "metadata": {"name": "kube-dns", "namespace": "kube-system"},
        "subsets": [{"addresses": [{"ip": "10.244.0.2", "nodeName": "cp"},
                                   {"ip": "10.244.0.3", "nodeName": "cp"}],
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}]}])
    files["cluster/pods.json"] = k8s_list("Pod", [
        pod_json("kube-system", "coredns-787d4945fb-9hq2w", "cp", "10.244.0.2", labels={"k8s-app": "kube-dns"},
                 container="coredns", image="registry.k8s.io/coredns/coredns:v1.9.3"),
        pod_json("shop", "cart-6b7f9d8c4-zx2lp", "worker-3", "10.244.3.2", container="cart"),
        pod_json("shop", "cart-6b7f9d8c4-q8w4n", "worker-1", "10.244.1.2", container="cart"),
        pod_json("kube-system", "kube-proxy-x7k2m", "worker-3", "192.168.1.13", host_network=True,
                 ready=False, waiting="CrashLoopBackOff", container="kube-proxy",
                 image="registry.k8s.io/kube-proxy:v1.26.15"),
    ])
    if with_symptom:
        files["logs/shop/cart-6b7f9d8c4-zx2lp/cart.log"] = (
            '2024-05-23T10:02:11.502918Z {"level":"error","ts":1716458531.5029,"msg":"catalog lookup failed",'
            '"error":"dial tcp: lookup catalog.shop.svc.cluster.local on 10.96.0.10:53: read udp '
            '10.244.3.2:41322->10.96.0.10:53: i/o timeout"}\n')
    return files


def test_worker3_does_not_dnat_the_query() -> None:
    found = run(ev_bundle(bundle()), "E44")
    assert kinds(found) == [("pod-service-path-broken", "worker-3")]
    f = found[0]
    assert f.trace is not None and not f.trace.main.packet.dnat
    assert f.trace.main.interface == "ens18" and f.trace.main.next_hop == "192.168.1.1"
    assert "cp, worker-1, worker-2" in f.detail
    assert f.fix[0].command == "kubectl -n kube-system delete pod kube-proxy-x7k2m"
    assert "Verified by simulation" in f.fix[0].note and "10.244.0." in f.fix[0].note
    assert "svc-unreachable:TIMEOUT@worker-3" in f.explains


def test_report_explains_the_dns_timeout() -> None:
    r = report(ev_bundle(bundle()))
    causes = {c.finding.kind: c for c in r.causes}
    assert "svc-unreachable:TIMEOUT@worker-3" in {x.key for x in causes["pod-service-path-broken"].explained}


def test_healthy_nodes_are_quiet() -> None:
    assert run(ev_bundle(bundle(broken=False)), "E44") == []
