"""C22: kube-ipvs0 holds a LAN host's address (a Service externalIP)."""

from __future__ import annotations

from netsleuth.diagnose.detectors.ipvs_dummy_capture import ipvs_capture

from .sectionbc import SCENARIOS, bundle, case_evidence, causes, node_files, run


def test_route_lookup_delivers_the_nfs_servers_address_locally() -> None:
    f = causes(run(ipvs_capture, case_evidence("ipvs-capture")))[0]
    assert f.node == "k8s-ipvs-w3" and "10.10.20.5" in f.title
    assert "ens192's subnet 10.10.20.0/24" in f.title
    assert f.trace is not None and f.trace.main.steps[0].hook == "route"
    local = [e for e in f.evidence if "local 10.10.20.5 dev kube-ipvs0 table local" in e.text]
    assert local and local[0].source.endswith("ip-route.json") and local[0].line > 0
    # Re-traced without the address, the packet leaves through the NIC.
    assert any("leaves via ens192" in x.note for x in f.fix)


def test_service_and_client_error_from_the_bundle() -> None:
    root = SCENARIOS / "c22-ipvs-externalip-nfs" / "bundle"
    files = {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}
    f = causes(run(ipvs_capture, bundle(files)))[0]
    assert "media/jellyfin" in f.detail
    assert f.fix[0].command.startswith("kubectl -n media patch svc jellyfin --type=json")
    assert "conn-error:ECONNREFUSED@k8s-ipvs-w3" in f.explains


def test_cluster_ips_on_kube_ipvs0_are_expected() -> None:
    files = node_files("ipvs-capture")
    for k in files:
        if k.endswith("ip-addr.json") or k.endswith("ip-route.json"):
            files[k] = files[k].replace("10.10.20.5", "10.233.9.200")
    assert not run(ipvs_capture, bundle(files))
