"""C28: hostPort ignored because the Calico conflist lost the portmap plugin."""

from __future__ import annotations

from netsleuth.diagnose.detectors.hostport_ignored import hostport_ignored

from .sectionbc import TRANSCRIPTS, causes, report, run, transcript, transcript_text


def test_no_dnat_for_the_host_port_and_no_portmap_in_the_conflist() -> None:
    f = causes(run(hostport_ignored, transcript("c28_hostport_no_portmap.txt")))[0]
    assert f.node == "lab-w2" and "hostPort 9100" in f.title
    assert any("is not DNATed" in e.text for e in f.evidence)
    assert any("plugins calico, bandwidth" in e.text for e in f.evidence)
    assert "portmap" in f.fix[0].command
    assert "conn-error:ECONNREFUSED@laptop" in f.explains
    r = report(transcript("c28_hostport_no_portmap.txt"))
    assert r.causes[0].finding.kind == "hostport-ignored" and not r.unexplained


def test_portmap_rules_present_is_healthy() -> None:
    src = (TRANSCRIPTS / "c28_hostport_no_portmap.txt").read_text()
    rules = ("-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
             "-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: \\\"k8s-pod-network"
             "\\\" id: \\\"6f2a1e0c\\\"\" -m multiport --dports 9100 -j CNI-DN-1b2c3d\n"
             "-A CNI-DN-1b2c3d -p tcp -m tcp --dport 9100 -j DNAT --to-destination "
             "10.85.27.197:9100\n")
    fixed = src.replace(":KUBE-MARK-MASQ - [0:0]\n",
                        ":KUBE-MARK-MASQ - [0:0]\n:CNI-HOSTPORT-DNAT - [0:0]\n"
                        ":CNI-DN-1b2c3d - [0:0]\n" + rules, 1)
    assert "CNI-DN-1b2c3d -p tcp" in fixed
    assert not run(hostport_ignored, transcript_text(fixed))
