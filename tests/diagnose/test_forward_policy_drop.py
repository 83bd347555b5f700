"""B11: filter FORWARD policy DROP (Docker 18.06 + flannel 0.9.1 nodes captured in netns)."""

from __future__ import annotations

from netsleuth.diagnose.detectors.forward_policy_drop import forward_policy_drop

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
