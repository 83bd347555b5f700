# ruff: noqa: E501  (kubectl tables, logs and iptables rules are pasted in their real width)
"""A06: reverse-path filter conflicts."""

from __future__ import annotations

from netsleuth.datapath.trace_model import Verdict
from netsleuth.diagnose.detectors.rp_filter import rp_filter_conflicts
from tests.diagnose.sectiona import bundle, bundle_files, causes, run, scenario, transcript

SCN = "a06-rpfilter-calico"


def test_strict_rp_filter_drops_the_other_racks_traffic() -> None:
    found = causes(run(rp_filter_conflicts, scenario(SCN)), "rp-filter-drop")
    assert [(f.node, f.key) for f in found] == [("k8s-m1", "cause:rp-filter-drop@k8s-m1")]
    f = found[0]
    assert f.trace is not None and f.trace.verdict == Verdict.DROPPED
    assert f.trace.packet.iif == "eth1" and str(f.trace.packet.src) == "10.0.3.7"
    # The sender's own state was traced too: it really sends with that source.
    assert any(e.text.startswith("on k8s-w2, the packet as sent") for e in f.evidence)
    assert "svc-unreachable:TIMEOUT@k8s-w2" in f.explains
    assert f.fix[0].command == "sysctl -w net.ipv4.conf.eth1.rp_filter=2"
    assert "Verified by simulation" in f.fix[0].note
    assert f.confidence >= 0.95


def _with_sysctl(old: str, new: str) -> list[str]:
    files = bundle_files(SCN)
    files["nodes/k8s-m1/sysctl.txt"] = files["nodes/k8s-m1/sysctl.txt"].replace(old, new)
    return [f.kind for f in causes(run(rp_filter_conflicts, bundle(files)))]


def test_loose_or_off_is_not_flagged() -> None:
    assert _with_sysctl("net.ipv4.conf.eth1.rp_filter = 1", "net.ipv4.conf.eth1.rp_filter = 2") == []
    both_off = bundle_files(SCN)
    text = both_off["nodes/k8s-m1/sysctl.txt"]
    for key in ("all", "eth1"):
        text = text.replace(f"net.ipv4.conf.{key}.rp_filter = 1", f"net.ipv4.conf.{key}.rp_filter = 0")
    both_off["nodes/k8s-m1/sysctl.txt"] = text
    assert not causes(run(rp_filter_conflicts, bundle(both_off)))


def test_symmetric_multinic_cluster_is_not_flagged() -> None:
    # rp_filter=1 everywhere, two NICs, policy routing for the management NIC.
    assert not causes(run(rp_filter_conflicts, scenario("healthy-multinic-kubespray")))
    assert not causes(run(rp_filter_conflicts, scenario("a08-tailscale-k3s")))


FELIX = """\
root@cp1:~# kubectl -n kube-system get pods -o wide | grep calico-node
calico-node-h2xbc                          0/1     CrashLoopBackOff   9 (4m12s ago)   27m   10.11.0.21    wk-21    <none>           <none>
root@cp1:~# kubectl -n kube-system logs calico-node-h2xbc -c calico-node | tail -3
2024-04-02 09:14:51.118 [INFO][60] felix/int_dataplane.go 1126: Kernel's RPF check is set to 'loose'.  This would allow endpoints to spoof their IP address.  Calico requires net.ipv4.conf.all.rp_filter to be set to 0 or 1. If you require loose RPF and you are not concerned about spoofing, this check can be disabled by setting the IgnoreLooseRPF configuration parameter to 'true'.
2024-04-02 09:14:51.118 [FATAL][60] felix/int_dataplane.go 1126: Kernel's RPF check is set to 'loose'.  This would allow endpoints to spoof their IP address.  Calico requires net.ipv4.conf.all.rp_filter to be set to 0 or 1. If you require loose RPF and you are not concerned about spoofing, this check can be disabled by setting the IgnoreLooseRPF configuration parameter to 'true'.
root@wk-21:~# sysctl net.ipv4.conf.all.rp_filter
net.ipv4.conf.all.rp_filter = {value}
"""


def test_felix_refuses_loose_mode() -> None:
    found = causes(run(rp_filter_conflicts, transcript(FELIX.format(value=2))))
    assert [(f.kind, f.node) for f in found] == [("rp-filter-loose-rejected", "wk-21")]
    assert "cni-agent-not-ready@wk-21" in found[0].explains
    assert found[0].fix[0].command == "sysctl -w net.ipv4.conf.all.rp_filter=1"


def test_felix_log_from_before_the_sysctl_was_fixed() -> None:
    assert not causes(run(rp_filter_conflicts, transcript(FELIX.format(value=1))))
