"""B11: filter FORWARD policy DROP (Docker 18.06 + flannel 0.9.1 nodes captured in netns)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from netsleuth.diagnose.detectors._blocking import ASSUMED_CAP, CORROBORATED_CAP
from netsleuth.diagnose.detectors._paths import local_pods, route_dev
from netsleuth.diagnose.detectors.forward_policy_drop import forward_policy_drop
from netsleuth.diagnose.evidence import Evidence
from netsleuth.snapshot.inputs import load_evidence

from .sectionbc import SCENARIOS, bundle, case_evidence, causes, node_files, run, texts


def test_both_nodes_drop_forwarded_pod_traffic_at_the_policy() -> None:
    found = causes(run(forward_policy_drop, case_evidence("forward-drop")), "forward-policy-drop")
    assert sorted(f.node for f in found) == ["k8s-node-a1", "k8s-node-a2"]
    f = next(f for f in found if f.node == "k8s-node-a1")
    assert f.key == "cause:forward-policy-drop@k8s-node-a1"
    assert f.trace is not None and f.trace.verdict.value == "dropped"
    # The quoted policy line is the real `:FORWARD DROP [n:m]` line of iptables-save.
    policy = [e for e in f.evidence if e.text.startswith(":FORWARD DROP")]
    assert policy and policy[0].source.endswith("k8s-node-a1/iptables-save.txt")
    assert "[18271:1096260]" in policy[0].text
    assert "svc-unreachable:TIMEOUT@k8s-node-a1" in f.explains
    assert "Docker" in f.detail


def test_fix_is_verified_by_retracing() -> None:
    f = causes(run(forward_policy_drop, case_evidence("forward-drop")))[0]
    now = [x for x in f.fix if x.when == "now"]
    assert now[0].command == "iptables -P FORWARD ACCEPT"
    assert "Verified by simulation" in now[0].note and "forwarded" in now[0].note


def test_permanent_fix_uses_docker_user_and_the_pod_cidr_from_the_nodes() -> None:
    files = node_files("forward-drop")
    root = SCENARIOS / "b11-docker-forward-drop" / "bundle" / "cluster"
    files.update({f"cluster/{p.name}": p.read_text() for p in root.iterdir()})
    f = causes(run(forward_policy_drop, bundle(files)))[0]
    perm = [x for x in f.fix if x.when == "permanent" and "DOCKER-USER" in x.command]
    assert perm, [x.command for x in f.fix]
    assert "iptables -I DOCKER-USER 1 -s 10.244.0.0/16 -j ACCEPT" in perm[0].command
    assert "Verified by simulation" in perm[0].note
    # With real pods in the evidence, the trace uses them instead of assumed addresses.
    assert "10.244.1.12" in texts(f)


def test_policy_accept_is_not_reported() -> None:
    files = node_files("forward-drop")
    for k in list(files):
        if k.endswith("iptables-save.txt"):
            files[k] = files[k].replace(":FORWARD DROP", ":FORWARD ACCEPT")
    assert not causes(run(forward_policy_drop, bundle(files)))


def test_ufw_and_firewalld_rulesets_are_left_to_their_detectors() -> None:
    assert not run(forward_policy_drop, case_evidence("ufw"))
    assert not run(forward_policy_drop, case_evidence("firewalld"))


def test_calico_node_without_calico_chains_is_not_blamed() -> None:
    """Calico installs its own FORWARD accepts; when they are absent its agent is the fault."""
    files = node_files("forward-drop")
    files["cluster/pods.json"] = (
        '{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod",'
        '"metadata":{"name":"calico-node-8xv2q","namespace":"kube-system"},'
        '"spec":{"nodeName":"k8s-node-a1","hostNetwork":true,"containers":[{"name":"calico-node"}]},'
        '"status":{"phase":"Running","podIP":"172.16.20.11"}}]}')
    assert not causes(run(forward_policy_drop, bundle(files)))


# -- where pods are when the pod list is missing ---------------------------------------------

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-incident"


def seed_without_pods(tmp: Path) -> Evidence:
    """The seed bundle copied as is, with cluster/pods.json removed."""
    copy = tmp / "seed-incident"
    shutil.copytree(SEED, copy)
    (copy / "cluster" / "pods.json").unlink()
    return load_evidence(copy)


def test_node_pod_cidr_routed_out_of_the_default_nic_is_no_pod_subnet(tmp_path: Path) -> None:
    # node1's Node.spec.podCIDR 10.10.1.0/24 is not where Calico put its pods (IPAM blocks in
    # 10.10.0.0/24): it is routed by the default route out of enp0s3. No pod sits behind that.
    ev = seed_without_pods(tmp_path)
    node1 = ev.nodes["node1"]
    assert all(str(ip) != "10.10.1.10" for ip, _, _ in local_pods(ev, node1))
    assert not run(forward_policy_drop, ev)


def test_pod_addresses_of_per_pod_routes_are_seen_not_assumed(tmp_path: Path) -> None:
    ev = seed_without_pods(tmp_path)
    pods = local_pods(ev, ev.nodes["node1"])
    # Calico's `10.10.0.196 dev cali2473e8d3fe5 scope link`: a pod with that address is
    # plugged in there; it is not an address picked from a subnet.
    assert (str(pods[0][0]), pods[0][2]) == ("10.10.0.196", "")
    assert route_dev(ev.nodes["node1"], pods[0][0]) == "cali2473e8d3fe5"


def test_confidence_is_capped_when_the_pod_addresses_are_assumed() -> None:
    # No pod list: the forwarded flows use addresses picked from cni0's subnet. Without drop
    # counters nothing shows a real pod's packets dying at the policy.
    files = node_files("forward-drop")
    for k in list(files):
        if k.endswith("iptables-save.txt"):
            files[k] = re.sub(r":FORWARD DROP \[\d+:\d+\]", ":FORWARD DROP [0:0]", files[k])
    found = causes(run(forward_policy_drop, bundle(files)))
    assert found and all(f.confidence <= ASSUMED_CAP for f in found)
    assert all("Assumed:" in f.detail for f in found)
    # The policy's drop counters show real packets dying there: a higher, still capped, value.
    found = causes(run(forward_policy_drop, case_evidence("forward-drop")))
    assert found and all(ASSUMED_CAP < f.confidence <= CORROBORATED_CAP for f in found)
