"""A05: IP forwarding disabled on a node."""

from __future__ import annotations

from netsleuth.datapath.trace_model import Verdict
from netsleuth.diagnose.detectors.ip_forward_disabled import ip_forward_disabled
from tests.diagnose.sectiona import (
    bundle,
    bundle_files,
    causes,
    run,
    saved_transcript,
    scenario,
    texts,
)


def test_canal_node_with_forwarding_off() -> None:
    found = causes(run(ip_forward_disabled, scenario("a05-forwarding-canal")))
    assert [(f.kind, f.node) for f in found] == [("ip-forwarding-disabled", "rke2-agent-3")]
    f = found[0]
    assert f.trace is not None and f.trace.verdict == Verdict.DROPPED
    assert f.trace.packet.iif == "cali8e0b2f7c1a4"  # a pod's packet, arriving from its veth
    assert "svc-unreachable:TIMEOUT@rke2-agent-3" in f.explains
    assert "net.ipv4.ip_forward=1" in f.fix[0].command
    assert "Verified by simulation" in f.fix[0].note
    # The sysctl line is quoted with its place in the transcript.
    assert any(e.text == "net.ipv4.ip_forward = 0" and e.line > 0 for e in f.evidence)
    assert f.confidence >= 0.9


def test_ansible_output_without_routes_is_reported_from_the_sysctl_alone() -> None:
    found = causes(run(ip_forward_disabled, saved_transcript("ansible_forwarding_mixed.txt")))
    assert [(f.node, f.trace) for f in found] == [("worker02", None)]
    assert found[0].confidence < 0.9


def test_bundle_node_traced_from_pod_to_remote_pod() -> None:
    files = bundle_files("a06-rpfilter-calico")
    key = "nodes/k8s-w2/sysctl.txt"
    # As the kernel shows it after `sysctl -w net.ipv4.ip_forward=0`: every device's flag too.
    files[key] = files[key].replace("forward = 1", "forward = 0").replace("forwarding = 1",
                                                                          "forwarding = 0")
    found = causes(run(ip_forward_disabled, bundle(files)))
    assert [f.node for f in found] == ["k8s-w2"]
    assert "net.ipv4.ip_forward" in found[0].title and "cali" not in found[0].title
    assert found[0].trace is not None
    assert "10.244.87.3" in texts(found[0])  # the pod on k8s-w2


def test_forwarding_on_is_not_flagged() -> None:
    for name in ("a08-tailscale-k3s", "a06-rpfilter-calico", "healthy-multinic-kubespray"):
        assert not run(ip_forward_disabled, scenario(name)), name
    assert not run(ip_forward_disabled, saved_transcript("healthy_en.txt"))


def test_a_machine_nothing_ties_to_a_cluster_is_not_flagged() -> None:
    from netsleuth.diagnose.evidence import evidence_from_files

    files = {
        "nodes/laptop/ip-route.txt": "default via 192.168.1.1 dev wlan0 proto dhcp metric 600\n"
        "192.168.1.0/24 dev wlan0 proto kernel scope link src 192.168.1.50 metric 600\n",
        "nodes/laptop/sysctl.txt": "net.ipv4.ip_forward = 0\nnet.ipv4.conf.all.forwarding = 0\n",
    }
    assert not list(ip_forward_disabled(evidence_from_files(files, "b")))
