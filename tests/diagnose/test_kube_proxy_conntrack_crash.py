"""C20: kube-proxy exits in an LXD container node (conntrack sysctl not writable)."""

from __future__ import annotations

from netsleuth.diagnose.detectors.kube_proxy_conntrack_crash import kube_proxy_conntrack

from .sectionbc import causes, report, run, transcript, transcript_text


def test_fatal_log_and_a_node_without_service_rules() -> None:
    f = causes(run(kube_proxy_conntrack, transcript("c20_lxd_kube_proxy.txt")))[0]
    assert f.node == "lxd-k8s-2" and f.confidence > 0.9
    assert any("nf_conntrack_max: permission denied" in e.text for e in f.evidence)
    assert any("CrashLoopBackOff" in e.text for e in f.evidence)
    assert f.trace is not None
    assert any("is not DNATed (no KUBE-SERVICES rules)" in e.text for e in f.evidence)
    assert "maxPerCore: 0" in f.fix[0].command
    r = report(transcript("c20_lxd_kube_proxy.txt"))
    assert r.causes[0].finding.kind == "kube-proxy-conntrack-sysctl"
    assert "dns-down" in {x.key for x in r.causes[0].explained}


def test_hashsize_variant_without_node_state() -> None:
    ev = transcript_text(
        "$ kubectl -n kube-system logs kube-proxy-5hx2b\n"
        "I0116 17:12:07.363616       1 conntrack.go:52] Setting nf_conntrack_max to 131072\n"
        "I0116 17:12:07.364081       1 conntrack.go:83] Setting conntrack hashsize to 32768\n"
        "F0116 17:12:07.364145       1 server.go:485] write /sys/module/nf_conntrack/parameters/"
        "hashsize: operation not supported\n")
    f = causes(run(kube_proxy_conntrack, ev))[0]
    assert f.trace is None and f.confidence == 0.8
    assert any("Setting conntrack hashsize" in e.text for e in f.evidence)


def test_normal_start_is_healthy() -> None:
    ev = transcript_text(
        "$ kubectl -n kube-system logs kube-proxy-5hx2b\n"
        "I0116 17:12:07.363616       1 conntrack.go:52] Setting nf_conntrack_max to 131072\n"
        "I0116 17:12:07.365012       1 config.go:315] Starting service config controller\n")
    assert not run(kube_proxy_conntrack, ev)
