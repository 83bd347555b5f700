"""B15: conntrack table full (dmesg, sysctl count/max, conntrack -S)."""

from __future__ import annotations

from netsleuth.diagnose.detectors.conntrack_table_full import conntrack_full

from .sectionbc import causes, report, run, transcript, transcript_text


def test_kernel_message_and_counters() -> None:
    found = causes(run(conntrack_full, transcript("b15_conntrack_full.txt")))
    assert [(f.kind, f.node) for f in found] == [("conntrack-table-full", "ingress-7")]
    f = found[0]
    assert "131058/131072" in f.title and f.confidence >= 0.9
    assert any("table full, dropping packet" in e.text for e in f.evidence)
    assert any("drop=18823" in e.text for e in f.evidence)
    assert "net.netfilter.nf_conntrack_max=262144" in f.fix[0].command
    assert report(transcript("b15_conntrack_full.txt")).causes[0].finding.kind == \
        "conntrack-table-full"


def test_count_at_max_without_kernel_message() -> None:
    ev = transcript_text("[root@w1 ~]# sysctl net.netfilter.nf_conntrack_count "
                         "net.netfilter.nf_conntrack_max\nnet.netfilter.nf_conntrack_count = "
                         "262100\nnet.netfilter.nf_conntrack_max = 262144\n")
    f = causes(run(conntrack_full, ev))[0]
    assert f.node == "w1" and f.confidence < 0.8


def test_headroom_is_healthy() -> None:
    ev = transcript_text("[root@w1 ~]# sysctl net.netfilter.nf_conntrack_count "
                         "net.netfilter.nf_conntrack_max\nnet.netfilter.nf_conntrack_count = "
                         "1843\nnet.netfilter.nf_conntrack_max = 262144\n")
    assert not run(conntrack_full, ev)
