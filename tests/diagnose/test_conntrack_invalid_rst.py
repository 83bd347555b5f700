"""B16: INVALID packets escape un-DNAT (kube-proxy 1.14 has no INVALID drop)."""

from __future__ import annotations

from netsleuth.diagnose.detectors.conntrack_invalid_rst import invalid_rst

from .sectionbc import TRANSCRIPTS, causes, report, run, transcript, transcript_text


def test_invalid_packet_walked_through_forward_is_accepted() -> None:
    found = causes(run(invalid_rst, transcript("b16_invalid_rst.txt")))
    assert [(f.kind, f.node) for f in found] == [("conntrack-invalid-rst", "node-04")]
    f = found[0]
    walk = [e for e in f.evidence if e.text.startswith("walk of filter FORWARD")]
    assert walk and walk[0].text.endswith(": ACCEPT")
    assert any("nf_conntrack_tcp_be_liberal = 0" in e.text for e in f.evidence)
    assert any("invalid=184233" in e.text for e in f.evidence)
    assert "conn-error:ECONNRESET@?" in f.explains or "svc-unreachable:ECONNRESET@node-04" in \
        f.explains
    # The INVALID drop fix is checked by walking the chain again.
    drop_fix = next(x for x in f.fix if "INVALID -j DROP" in x.command)
    assert "DROP" in drop_fix.note


def test_resets_are_explained_in_the_report() -> None:
    r = report(transcript("b16_invalid_rst.txt"))
    assert r.causes[0].finding.kind == "conntrack-invalid-rst"
    assert not [s.key for s in r.unexplained if "ECONNRESET" in s.key]


def test_be_liberal_set_is_healthy() -> None:
    text = (TRANSCRIPTS / "b16_invalid_rst.txt").read_text()
    fixed = text.replace("nf_conntrack_tcp_be_liberal = 0", "nf_conntrack_tcp_be_liberal = 1")
    assert fixed != text
    assert not run(invalid_rst, transcript_text(fixed))
