"""C19: a UDP sender with a fixed port keeps its conntrack entry to a deleted endpoint
(`conntrack -L` output captured from a real kernel)."""

from __future__ import annotations

from netsleuth.diagnose.detectors._host_evidence import parse_conntrack_line
from netsleuth.diagnose.detectors.stale_udp_conntrack import stale_udp
from netsleuth.model.source import SourceRef

from .sectionbc import TRANSCRIPTS, causes, run, transcript, transcript_text


def test_entry_to_the_old_endpoint_versus_the_current_dnat() -> None:
    found = causes(run(stale_udp, transcript("c19_stale_udp.txt")))
    assert len(found) == 1
    f = found[0]
    assert "10.244.2.9:46211" in f.title and "10.244.3.17" in f.title
    assert "logging/rsyslog" in f.title
    assert f.evidence[0].text.startswith("udp      17 29 src=10.244.2.9 dst=10.96.118.52 "
                                         "sport=46211")
    assert any("DNAT --to-destination 10.244.2.21:514" in e.text for e in f.evidence)
    assert any('executable file not found in $PATH' in e.text for e in f.evidence)
    assert f.fix[0].command.startswith("conntrack -D -p udp --orig-dst 10.96.118.52 "
                                       "--orig-port-dst 514")


def test_the_fresh_entry_is_not_stale() -> None:
    f = causes(run(stale_udp, transcript("c19_stale_udp.txt")))[0]
    assert "51877" not in f.title


def test_parse_conntrack_line() -> None:
    e = parse_conntrack_line("udp      17 29 src=10.244.2.9 dst=10.96.118.52 sport=46211 "
                             "dport=514 [UNREPLIED] src=10.244.3.17 dst=10.244.2.9 sport=514 "
                             "dport=46211 mark=0 use=6", SourceRef("f", 3))
    assert e is not None and e.dnat and str(e.reply_src) == "10.244.3.17"
    assert e.flags == ("UNREPLIED",) and e.timeout == 29 and e.orig_dport == 514


def test_entries_matching_current_endpoints_are_healthy() -> None:
    text = (TRANSCRIPTS / "c19_stale_udp.txt").read_text()
    fixed = text.replace("src=10.244.3.17 dst=10.244.2.9", "src=10.244.2.21 dst=10.244.2.9")
    assert fixed != text
    assert not run(stale_udp, transcript_text(fixed))
