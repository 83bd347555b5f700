"""C23: IPVS conn_reuse_mode on an old kernel and weight-0 real servers holding connections."""

from __future__ import annotations

from netsleuth.diagnose.detectors.ipvs_graceful_stall import ipvs_stalls

from .sectionbc import causes, run, transcript, transcript_text


def test_old_kernel_reuse_mode_and_stale_real_server() -> None:
    f = causes(run(ipvs_stalls, transcript("c23_ipvs_stalls.txt")))[0]
    assert f.node == "k8s-n3" and f.trace is None
    assert any(e.text == "net.ipv4.vs.conn_reuse_mode = 1" for e in f.evidence)
    stale = [e for e in f.evidence if "weight 0" in e.text]
    assert stale and "10.244.6.12:8080" in stale[0].text
    assert any("connect: 1.003126" in e.text for e in f.evidence)
    assert f.fix[0].command.startswith("sysctl -w net.ipv4.vs.expire_nodest_conn=1")


def test_new_kernel_and_expiring_settings_are_healthy() -> None:
    ev = transcript_text("[root@n ~]# uname -r\n5.15.0-91-generic\n[root@n ~]# sysctl "
                         "net.ipv4.vs.conn_reuse_mode net.ipv4.vs.expire_nodest_conn\n"
                         "net.ipv4.vs.conn_reuse_mode = 1\nnet.ipv4.vs.expire_nodest_conn = 1\n")
    assert not run(ipvs_stalls, ev)
