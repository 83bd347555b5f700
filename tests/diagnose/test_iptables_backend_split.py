# ruff: noqa: E501 (command outputs and iptables rules quoted verbatim)
"""B14: kube-proxy/flannel rules in iptables-legacy, Docker's FORWARD DROP in iptables-nft
(both dumped from one network namespace holding both backends)."""

from __future__ import annotations

from netsleuth.diagnose.detectors.iptables_backend_split import backend_split

from .sectionbc import case_evidence, causes, report, run, transcript, transcript_text


def test_each_backend_traced_separately_nft_drops_what_legacy_accepts() -> None:
    found = causes(run(backend_split, transcript("b14_debian10_legacy_split.txt")))
    assert [(f.kind, f.node) for f in found] == [("iptables-backend-split", "deb-w1")]
    f = found[0]
    assert "legacy: kube-proxy" in f.title and "nf_tables: Docker" in f.title
    assert "the nft rules drop what the legacy rules accept" in f.title
    assert any(e.text.startswith(":FORWARD DROP [20318:1219080]") for e in f.evidence)
    assert any("iptables-legacy tables present" in e.text for e in f.evidence)
    assert f.confidence > 0.9 and f.trace is not None


def test_split_explains_the_b11_view_and_the_failing_call() -> None:
    f = causes(run(backend_split, transcript("b14_debian10_legacy_split.txt")))[0]
    assert "cause:forward-policy-drop@deb-w1" in f.explains
    assert "conn-error:TIMEOUT@?" in f.explains  # curl from the toolbox pod, node unknown
    r = report(transcript("b14_debian10_legacy_split.txt"))
    assert r.causes[0].finding.kind == "iptables-backend-split"
    assert not r.unexplained


def test_bundle_with_both_dumps() -> None:
    found = causes(run(backend_split, case_evidence("legacy-split")))
    assert [f.node for f in found] == ["deb-w1"]


def test_one_backend_only_is_not_a_split() -> None:
    ev = case_evidence("forward-drop")
    assert not run(backend_split, ev)


LOGS = """$ kubectl -n kube-system logs kube-proxy-7xq2d
E0304 09:12:44.118223       1 proxier.go:1430] Failed to execute iptables-restore: exit status 1 (iptables-restore: line 7 failed)
E0304 09:12:44.412882       1 server.go:469] can't initialize iptables table `nat': Table does not exist (do you need to insmod?)
"""


def test_log_only_evidence_gives_a_lower_confidence_finding() -> None:
    found = causes(run(backend_split, transcript_text(LOGS)))
    assert len(found) == 1 and found[0].confidence < 0.8 and found[0].trace is None
