# ruff: noqa: E501  (kubectl tables and logs are pasted in their real width)
"""D31: flannel on a node without podCIDR (kubeadm init without --pod-network-cidr)."""

from __future__ import annotations

from tests.diagnose.cnidns import (
    ev_bundle,
    k8s_list,
    kinds,
    node_json,
    pod_json,
    report,
    run,
)

FLANNEL_LOG = """2024-05-16T08:00:01.118530Z I0516 08:00:01.118530       1 main.go:211] CLI flags config: {etcdEndpoints:http://127.0.0.1:4001,http://127.0.0.1:2379 etcdPrefix:/coreos.com/network etcdKeyfile: etcdCertfile: etcdCAFile: etcdUsername: etcdPassword: version:false kubeSubnetMgr:true kubeApiUrl: kubeAnnotationPrefix:flannel.alpha.coreos.com kubeConfigFile: iface:[] ifaceRegex:[] ipMasq:true ifaceCanReach: subnetFile:/run/flannel/subnet.env publicIP: publicIPv6: subnetLeaseRenewMargin:60 healthzIP:0.0.0.0 healthzPort:0 iptablesResyncSeconds:5 iptablesForwardRules:true netConfPath:/etc/kube-flannel/net-conf.json setNodeNetworkUnavailable:true useMultiClusterCidr:false}
2024-05-16T08:00:01.131342Z I0516 08:00:01.131342       1 kube.go:485] Starting kube subnet manager
2024-05-16T08:00:02.131575Z I0516 08:00:02.131575       1 kube.go:152] Node controller sync successful
2024-05-16T08:00:02.131614Z I0516 08:00:02.131614       1 main.go:231] Created subnet manager: Kubernetes Subnet Manager - k8s-wrk-03
2024-05-16T08:00:02.131785Z I0516 08:00:02.131785       1 main.go:542] Found network config - Backend type: vxlan
2024-05-16T08:00:02.132288Z I0516 08:00:02.132288       1 match.go:259] Using interface with name ens160 and address 192.168.200.23
2024-05-16T08:00:02.141101Z E0516 08:00:02.141101       1 main.go:359] Error registering network: failed to acquire lease: node "k8s-wrk-03" pod cidr not assigned
2024-05-16T08:00:02.141202Z I0516 08:00:02.141202       1 main.go:522] Stopping shutdownHandler...
"""

EVENTS = {
    "kind": "Event", "apiVersion": "v1",
    "metadata": {"name": "web-0.17d0a8b7c6e5f4a3", "namespace": "shop"},
    "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "shop"},
    "reason": "FailedCreatePodSandBox", "type": "Warning", "count": 57,
    "source": {"component": "kubelet", "host": "k8s-wrk-03"},
    "message": "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"9f3c1e\": plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory",
}

NET_CONF = {"apiVersion": "v1", "metadata": {"name": "kube-flannel-cfg", "namespace": "kube-flannel"},
            "data": {"net-conf.json": "{\n  \"Network\": \"10.244.0.0/16\",\n  \"Backend\": {\n    \"Type\": \"vxlan\"\n  }\n}\n"}}


def bundle() -> dict[str, str]:
    return {
        "cluster/nodes.json": k8s_list("Node", [
            node_json("k8s-cp-01", "192.168.200.10", pod_cidr="10.244.0.0/24", kubelet="v1.26.15"),
            node_json("k8s-wrk-01", "192.168.200.21", pod_cidr="10.244.1.0/24", kubelet="v1.26.15"),
            node_json("k8s-wrk-02", "192.168.200.22", pod_cidr="10.244.2.0/24", kubelet="v1.26.15"),
            node_json("k8s-wrk-03", "192.168.200.23", kubelet="v1.26.15"),
        ]),
        "cluster/pods.json": k8s_list("Pod", [
            pod_json("kube-flannel", "kube-flannel-ds-zr8kt", "k8s-wrk-03", "192.168.200.23",
                     host_network=True, ready=False, waiting="CrashLoopBackOff",
                     container="kube-flannel", image="docker.io/flannel/flannel:v0.25.1",
                     owner=("DaemonSet", "kube-flannel-ds")),
            pod_json("shop", "web-0", "k8s-wrk-03", None, ready=False, phase="Pending",
                     waiting="ContainerCreating"),
        ]),
        "cluster/events.json": k8s_list("Event", [EVENTS]),
        "cluster/configmaps.json": k8s_list("ConfigMap", [NET_CONF]),
        "logs/kube-flannel/kube-flannel-ds-zr8kt/kube-flannel.log": FLANNEL_LOG,
    }


def test_lease_error_and_missing_podcidr() -> None:
    found = run(ev_bundle(bundle()), "D31")
    assert kinds(found) == [("node-podcidr-missing", "k8s-wrk-03")]
    f = found[0]
    assert f.confidence >= 0.95
    # The first free /24 of flannel's Network not used by another node.
    assert f.fix[0].command == ("kubectl patch node k8s-wrk-03 -p '{\"spec\":{\"podCIDR\":\"10.244.3.0/24\","
                                "\"podCIDRs\":[\"10.244.3.0/24\"]}}'")
    assert "--cluster-cidr=10.244.0.0/16" in f.fix[1].command


def test_chain_explains_flannel_crashloop_and_sandboxes() -> None:
    r = report(ev_bundle(bundle()))
    first = r.causes[0]
    assert (first.finding.kind, first.finding.node) == ("node-podcidr-missing", "k8s-wrk-03")
    explained = {f.key for f in first.explained}
    assert "sandbox-churn@k8s-wrk-03" in explained
    assert "cni-agent-not-ready@k8s-wrk-03" in explained


def test_nodes_with_podcidr_and_no_lease_error_are_quiet() -> None:
    files = bundle()
    del files["logs/kube-flannel/kube-flannel-ds-zr8kt/kube-flannel.log"]
    files["cluster/events.json"] = k8s_list("Event", [])
    assert run(ev_bundle(files), "D31") == []
