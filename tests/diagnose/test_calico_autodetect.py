# ruff: noqa: E501  (logs are pasted in their real width)
"""D33: Calico IP autodetection chose a docker-compose bridge on every node (VXLAN), or
found no interface at all."""

from __future__ import annotations

from netsleuth.datapath.trace_model import Verdict
from tests.diagnose.cnidns import (
    ev_bundle,
    ev_transcript,
    k8s_list,
    kinds,
    node_files,
    node_json,
    pod_json,
    report,
    run,
    shell,
    transcript,
)

NAMES = ["master-0", "worker-0", "worker-1"]


def calico_log(node: str) -> str:
    return (f"2024-05-20T07:15:02.381Z 2024-05-20 07:15:02.381 [INFO][9] startup/startup.go 432: Early log level set to info\n"
            f"2024-05-20T07:15:02.382Z 2024-05-20 07:15:02.382 [INFO][9] startup/utils.go 126: Using NODENAME environment for node name {node}\n"
            f"2024-05-20T07:15:02.390Z 2024-05-20 07:15:02.390 [INFO][9] startup/autodetection_methods.go 103: Using autodetected IPv4 address on interface br-4f1c2d9e8a7b: 172.18.0.1/16\n"
            f"2024-05-20T07:15:02.391Z 2024-05-20 07:15:02.391 [INFO][9] startup/startup.go 559: Node IPv4 changed, will check for conflicts\n")


def bundle(with_nodes: bool = True) -> dict[str, str]:
    files: dict[str, str] = {}
    if with_nodes:
        for n in NAMES:
            files.update(node_files("calico_compose_br", n, only=("ip-link.txt", "ip-addr.txt",
                                                                   "ip-route.txt", "bridge-fdb.txt")))
    ann = {"projectcalico.org/IPv4Address": "172.18.0.1/16",
           "projectcalico.org/IPv4VXLANTunnelAddr": "10.42.0.0"}
    files["cluster/nodes.json"] = k8s_list("Node", [
        node_json(n, f"172.20.1.{11 + i}", annotations=ann, kubelet="v1.29.4")
        for i, n in enumerate(NAMES)])
    files["cluster/pods.json"] = k8s_list("Pod", [
        pod_json("kube-system", f"calico-node-{s}", n, f"172.20.1.{11 + i}", host_network=True,
                 container="calico-node", image="docker.io/calico/node:v3.27.3",
                 owner=("DaemonSet", "calico-node"))
        for i, (n, s) in enumerate(zip(NAMES, ("4xk2p", "9qz7d", "tl4c9"), strict=True))])
    for n, s in zip(NAMES, ("4xk2p", "9qz7d", "tl4c9"), strict=True):
        files[f"logs/kube-system/calico-node-{s}/calico-node.log"] = calico_log(n)
    return files


def test_shared_bridge_address_proven_by_the_peers_routing_tables() -> None:
    found = run(ev_bundle(bundle()), "D33")
    assert kinds(found) == [("calico-autodetect-wrong-address", "master-0")]
    f = found[0]
    assert f.trace is not None and f.trace.verdict == Verdict.DELIVERED_LOCAL
    assert f.trace.packet.dport == 4789
    assert f.fix[0].command == "kubectl -n kube-system set env daemonset/calico-node IP_AUTODETECTION_METHOD=interface=ens192"
    assert "Verified by simulation" in f.fix[0].note and "out ens192" in f.fix[0].note
    assert any("Using autodetected IPv4 address on interface br-4f1c2d9e8a7b" in e.text for e in f.evidence)


def test_without_node_state_it_is_a_weaker_finding() -> None:
    found = run(ev_bundle(bundle(with_nodes=False)), "D33")
    assert kinds(found) == [("calico-autodetect-wrong-address", "master-0")]
    assert found[0].trace is None and found[0].confidence < 0.9


def test_ranked_first_on_the_whole_bundle() -> None:
    r = report(ev_bundle(bundle()))
    assert r.causes[0].finding.kind == "calico-autodetect-wrong-address"


def test_no_valid_interface() -> None:
    log = """2024-05-20 07:15:02.390 [INFO][9] startup/autodetection_methods.go 130: Autodetected IPv4 address: none
2024-05-20 07:15:02.391 [WARNING][9] startup/autodetection_methods.go 146: Unable to auto-detect an IPv4 address using interface regexes [eth1]: no valid host interfaces found
2024-05-20 07:15:02.391 [WARNING][9] startup/startup.go 459: Couldn't autodetect an IPv4 address. If auto-detecting, choose a different autodetection method. Otherwise provide an explicit address.
2024-05-20 07:15:02.392 [INFO][9] startup/startup.go 245: Clearing out-of-date IPv4 address from this node IP="172.20.1.12/24"
2024-05-20 07:15:02.405 [WARNING][9] startup/utils.go 48: Terminating
Calico node failed to start"""
    pods = """NAME                READY   STATUS             RESTARTS      AGE   IP            NODE       NOMINATED NODE   READINESS GATES
calico-node-9qz7d   0/1     CrashLoopBackOff   6 (2m ago)    9m    172.20.1.12   worker-0   <none>           <none>"""
    text = transcript(
        shell("master-0", "kubectl -n kube-system get pods -o wide -l k8s-app=calico-node", pods),
        shell("master-0", "kubectl -n kube-system logs calico-node-9qz7d -c calico-node", log),
        shell("worker-0", "ip addr", node_files("calico_compose_br", "worker-0", only=("ip-addr.txt",))
              ["nodes/worker-0/ip-addr.txt"].rstrip("\n")),
    )
    found = run(ev_transcript(text), "D33")
    assert kinds(found) == [("calico-autodetect-failed", "worker-0")]
    f = found[0]
    assert "ens192" in f.detail
    assert f.fix[0].command.endswith("IP_AUTODETECTION_METHOD=interface=ens192")
    r = report(ev_transcript(text))
    assert r.causes[0].finding.kind == "calico-autodetect-failed"
    assert "cni-agent-not-ready@worker-0" in {x.key for x in r.causes[0].explained}


def test_correct_addresses_are_quiet() -> None:
    files = bundle()
    files["cluster/nodes.json"] = k8s_list("Node", [
        node_json(n, f"172.20.1.{11 + i}", annotations={"projectcalico.org/IPv4Address": f"172.20.1.{11 + i}/24"})
        for i, n in enumerate(NAMES)])
    for key in [k for k in files if k.startswith("logs/")]:
        del files[key]
    for key in [k for k in files if k.startswith("nodes/")]:
        del files[key]
    assert run(ev_bundle(files), "D33") == []
