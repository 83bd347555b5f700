"""C25: a pod calling its own Service on a kubenet-style cbr0 with hairpin off."""

from __future__ import annotations

from netsleuth.diagnose.detectors.hairpin_mode_off import hairpin_off

from .sectionbc import bundle, causes, node_files, run


def test_self_branch_with_hairpin_masquerade_and_ports_off() -> None:
    found = causes(run(hairpin_off, bundle(node_files("hairpin"))))
    assert [(f.kind, f.node) for f in found] == [("hairpin-off", "aks-pool1-31337-vmss000000")]
    f = found[0]
    assert f.trace is not None
    masq = [e for e in f.evidence if "hairpin masquerade" in e.text]
    assert masq and "-s 10.4.0.12/32" in masq[0].text and "KUBE-MARK-MASQ" in masq[0].text
    ports = [e for e in f.evidence if e.source.endswith("bridge-link.txt")]
    assert len(ports) == 2 and all("hairpin off" in e.text for e in ports)
    assert "50%" in f.detail  # 1 of 2 endpoints: half the calls loop back
    assert "svc-unreachable:TIMEOUT@aks-pool1-31337-vmss000000" in f.explains


def test_hairpin_on_is_healthy() -> None:
    files = node_files("hairpin")
    key = next(k for k in files if k.endswith("bridge-link.txt"))
    files[key] = files[key].replace("hairpin off", "hairpin on")
    assert not run(hairpin_off, bundle(files))


def test_no_hairpin_evidence_means_no_claim() -> None:
    assert not run(hairpin_off, bundle(node_files("hairpin", skip={"bridge-link.txt"})))


def test_promiscuous_bridge_is_kubelets_hairpin_mode() -> None:
    files = node_files("hairpin")
    for k in files:
        if k.endswith("ip-link.json"):
            files[k] = files[k].replace('"ifname": "cbr0",\n    "flags": [',
                                        '"ifname": "cbr0",\n    "flags": [\n      "PROMISC",')
    assert "PROMISC" in next(v for k, v in files.items() if k.endswith("ip-link.json"))
    assert not run(hairpin_off, bundle(files))
