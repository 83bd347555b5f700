"""C21: IPVS configured, modules missing (kube-proxy 1.18 falls back to iptables)."""

from __future__ import annotations

from netsleuth.diagnose.detectors.ipvs_modules_missing import ipvs_modules

from .sectionbc import causes, run, transcript, transcript_text


def test_fallback_to_iptables_is_reported_with_config_and_lsmod() -> None:
    f = causes(run(ipvs_modules, transcript("c21_ipvs_modules.txt")))[0]
    assert f.node == "worker-02"
    assert "ip_vs, ip_vs_rr, ip_vs_wrr, ip_vs_sh" in f.title
    assert "running in iptables mode instead" in f.title
    assert any("Using iptables Proxier" in e.text for e in f.evidence)
    assert any(e.text.startswith("lsmod: no ip_vs") for e in f.evidence)
    assert f.explains == ()  # a fallback is not an outage
    assert f.fix[0].command.startswith("modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh")


def test_newer_kube_proxy_refusing_to_start_is_an_outage() -> None:
    ev = transcript_text(
        "$ kubectl -n kube-system logs kube-proxy-q8r2t\n"
        'E0304 06:44:09.124811       1 server.go:551] "Error running ProxyServer" err="can\'t '
        "use the IPVS proxier: IPVS proxier will not be used because the following required "
        'kernel modules are not loaded: [ip_vs_rr ip_vs_sh]"\n'
        'E0304 06:44:09.124911       1 run.go:74] "command failed" err="can\'t use the IPVS '
        "proxier: IPVS proxier will not be used because the following required kernel modules "
        'are not loaded: [ip_vs_rr ip_vs_sh]"\n')
    f = causes(run(ipvs_modules, ev))[0]
    assert "(no Service proxy)" in f.title and f.explains


def test_ipvs_running_is_healthy() -> None:
    ev = transcript_text("$ kubectl -n kube-system logs kube-proxy-q8r2t\n"
                         'I0304 06:44:09.124811       1 server_others.go:269] "Using ipvs Proxier"\n')
    assert not run(ipvs_modules, ev)
