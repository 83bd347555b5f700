"""B10: bridge-nf-call-iptables=0 / br_netfilter missing on a flannel (cni0) node."""

from __future__ import annotations

from netsleuth.diagnose.detectors.br_netfilter_missing import br_netfilter_off

from .sectionbc import bundle, case_evidence, causes, node_files, run, transcript


def test_sysctl_zero_with_a_same_bridge_service_path() -> None:
    found = causes(run(br_netfilter_off, case_evidence("brnf-off")))
    assert [(f.kind, f.node) for f in found] == [("br-netfilter-off", "kw-03")]
    f = found[0]
    assert f.confidence >= 0.9 and f.trace is not None
    sysctl = [e for e in f.evidence if e.text == "net.bridge.bridge-nf-call-iptables = 0"]
    assert sysctl and sysctl[0].line > 0 and sysctl[0].source.endswith("kw-03/sysctl.txt")
    # The trace is DNATed to an endpoint on the same bridge and forwarded back out cni0.
    assert any("forwarded out cni0, the bridge it came from" in e.text for e in f.evidence)
    assert any("DNAT --to-destination 10.42.3." in e.text for e in f.evidence)
    assert {"svc-unreachable:TIMEOUT@kw-03", "dns-errors@kw-03"} <= set(f.explains)


def test_module_missing_from_procps_error_and_empty_lsmod_grep() -> None:
    f = causes(run(br_netfilter_off, transcript("b10_brnf_module_missing.txt")))[0]
    assert f.node == "kw-03" and "br_netfilter not loaded" in f.title
    assert any("cannot stat /proc/sys/net/bridge/bridge-nf-call-iptables" in e.text
               for e in f.evidence)
    assert any("lsmod | grep br_netfilter" in e.text for e in f.evidence)
    # kube-proxy's rules rebuilt from the Services: DNS is DNATed to the CoreDNS pod on kw-03.
    assert any("10.42.3.4" in e.text for e in f.evidence)
    fixes = [x.command for x in f.fix]
    assert fixes[0].startswith("modprobe br_netfilter && sysctl -w")


def test_enabled_bridge_netfilter_is_healthy() -> None:
    files = node_files("brnf-off")
    key = next(k for k in files if k.endswith("sysctl.txt"))
    files[key] = files[key].replace("net.bridge.bridge-nf-call-iptables = 0",
                                    "net.bridge.bridge-nf-call-iptables = 1")
    assert not run(br_netfilter_off, bundle(files))


def test_routed_cni_without_bridges_is_not_affected() -> None:
    # Calico-style node (cali* veths, no bridge) with the sysctl at 0: nothing to bridge.
    files = node_files("wrong-cluster-cidr")
    key = next(k for k in files if k.endswith("sysctl.txt"))
    files[key] = files[key].replace("net.bridge.bridge-nf-call-iptables = 1",
                                    "net.bridge.bridge-nf-call-iptables = 0")
    assert "bridge-nf-call-iptables = 0" in files[key]
    assert not run(br_netfilter_off, bundle(files))
