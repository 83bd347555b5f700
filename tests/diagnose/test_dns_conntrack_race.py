"""B17: DNS lookups stalling exactly ~5 s with conntrack insert_failed counters."""

from __future__ import annotations

from netsleuth.diagnose.detectors.dns_conntrack_race import dns_race
from netsleuth.diagnose.detectors.symptoms_dns_stall import dns_stalls

from .sectionbc import causes, report, run, transcript, transcript_text


def test_five_second_lookups_and_insert_failed() -> None:
    ev = transcript("b17_dns_5s.txt")
    sym = run(dns_stalls, ev)
    assert [s.key for s in sym] == ["dns-stall-5s@dev-w5"]
    f = causes(run(dns_race, ev))[0]
    assert f.node == "dev-w5" and "insert_failed=3663" in f.title
    assert any("real\t0m5.013s" in e.text for e in f.evidence)
    # The DNS path is traced through kube-proxy's rules rebuilt from the Service objects.
    assert f.trace is not None and any("2 CoreDNS endpoint(s)" in e.text for e in f.evidence)
    assert any("single-request-reopen" in x.command for x in f.fix)
    r = report(ev)
    assert r.causes[0].finding.kind == "dns-conntrack-race" and not r.unexplained


def test_busybox_time_format_counts() -> None:
    ev = transcript_text("$ kubectl exec web-0 -- time nslookup kubernetes.default\n"
                         "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\n"
                         "Name:\tkubernetes.default.svc.cluster.local\nAddress: 10.96.0.1\n\n"
                         "real\t0m 5.01s\nuser\t0m 0.00s\nsys\t0m 0.00s\n")
    assert [s.key for s in run(dns_stalls, ev)] == ["dns-stall-5s@?"]


def test_fast_lookups_and_zero_counters_are_healthy() -> None:
    ev = transcript_text("[root@w ~]# conntrack -S\ncpu=0   \tfound=3 invalid=0 insert=0 "
                         "insert_failed=0 drop=0 early_drop=0 error=0 search_restart=1\n"
                         "[root@w ~]# time getent hosts kubernetes.default.svc.cluster.local\n"
                         "10.96.0.1       kubernetes.default.svc.cluster.local\n\n"
                         "real\t0m0.012s\n")
    assert not run(dns_race, ev) and not run(dns_stalls, ev)
