# ruff: noqa: E501 (command outputs and iptables rules quoted verbatim)
"""B12: firewalld (EL7, iptables backend) REJECTs forwarded pod and VXLAN traffic."""

from __future__ import annotations

from netsleuth.diagnose.detectors.firewalld_reject import firewalld_reject

from .sectionbc import case_evidence, causes, report, run, transcript, transcript_text


def test_reject_decides_for_pod_traffic_and_the_cni_accepts_are_after_it() -> None:
    found = causes(run(firewalld_reject, transcript("b12_firewalld_centos7.txt")))
    assert [(f.kind, f.node) for f in found] == [("host-firewall-reject", "cent-k8s-w1")]
    f = found[0]
    assert f.trace is not None and f.trace.verdict.value == "rejected"
    decides = f.evidence[0]
    assert decides.text.startswith("-A FORWARD -j REJECT --reject-with icmp-host-prohibited")
    assert decides.line > 0 and decides.source.endswith("b12_firewalld_centos7.txt")
    never = [e for e in f.evidence if "never reached" in e.text]
    assert never and "flanneld forward" in never[0].text
    # errno reasoning: a REJECT with host-prohibited is "no route to host", not a timeout
    assert "conn-error:EHOSTUNREACH@cent-k8s-w1" in f.explains


def test_flannel_vxlan_from_peers_is_rejected_at_input_and_d35_is_explained() -> None:
    f = causes(run(firewalld_reject, transcript("b12_firewalld_centos7.txt")))[0]
    assert "udp/8472" in f.title
    assert "cause:encapsulation-blocked@cent-k8s-w1" in f.explains


def test_fixes_are_verified_and_firewalld_specific() -> None:
    f = causes(run(firewalld_reject, transcript("b12_firewalld_centos7.txt")))[0]
    now = [x for x in f.fix if x.when == "now"]
    assert now and "iptables -I FORWARD 1 -s 10.244.0.0/16 -j ACCEPT" in now[0].command
    assert "-p udp -m udp --dport 8472 -j ACCEPT" in now[0].command
    assert "Verified by simulation" in now[0].note
    perm = " ".join(x.command for x in f.fix if x.when == "permanent")
    assert "firewall-cmd --permanent --zone=trusted --add-source=10.244.0.0/16" in perm
    assert "--add-port=8472/udp" in perm


def test_it_is_the_root_cause_of_the_incident() -> None:
    r = report(transcript("b12_firewalld_centos7.txt"))
    assert r.causes[0].finding.kind == "host-firewall-reject"
    assert not r.unexplained


def test_without_cni_knowledge_only_the_forward_reject_is_traced() -> None:
    f = causes(run(firewalld_reject, case_evidence("firewalld")))[0]
    assert "overlay" not in f.title and f.node == "cent-k8s-w1"


NFT = """me@rocky9-w1:~$ sudo nft list ruleset
table inet firewalld {
	chain filter_FORWARD {
		type filter hook forward priority filter + 10; policy accept;
		ct state { established, related } accept
		ct status dnat accept
		iifname "lo" accept
		ip6 daddr { ::/96, ::ffff:0.0.0.0/96, 2002::/24, 2002:a00::/24, 2002:7f00::/24, 2002:a9fe::/32, 2002:ac10::/28, 2002:c0a8::/32, 2002:e000::/19 } reject with icmpv6 type addr-unreachable
		jump filter_FORWARD_POLICIES_pre
		jump filter_FORWARD_IN_ZONES
		jump filter_FORWARD_OUT_ZONES
		jump filter_FORWARD_POLICIES_post
		ct state { invalid } meta pkttype host drop
		reject with icmpx admin-prohibited
	}
}
me@rocky9-w1:~$ sudo journalctl -k | grep REJECT | tail -1
Mar 04 10:12:31 rocky9-w1 kernel: filter_FWD_public_REJECT: IN=flannel.1 OUT=cni0 MAC=2a:71:0c:9f:44:21:8e:13:6b:fe:08:a1:08:00 SRC=10.244.0.5 DST=10.244.1.9 LEN=60 TOS=0x00 PREC=0x00 TTL=62 ID=50121 DF PROTO=TCP SPT=43098 DPT=8080 WINDOW=64860 RES=0x00 SYN URGP=0
"""


def test_nftables_firewalld_is_reported_from_its_rules_without_a_trace() -> None:
    found = causes(run(firewalld_reject, transcript_text(NFT)))
    assert [(f.kind, f.node) for f in found] == [("host-firewall-reject", "rocky9-w1")]
    f = found[0]
    assert f.trace is None and 0.6 <= f.confidence <= 0.85
    assert any("reject with icmpx admin-prohibited" in e.text for e in f.evidence)
    assert any("filter_FWD_public_REJECT" in e.text for e in f.evidence)
