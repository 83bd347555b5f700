"""C18: kube-proxy without clusterCIDR (Vagrant, two NICs) or with the wrong one (Calico pool)."""

from __future__ import annotations

from netsleuth.diagnose.detectors.kube_proxy_cluster_cidr import cluster_cidr

from .sectionbc import SCENARIOS, bundle, case_evidence, causes, node_files, report, run, transcript


def test_missing_cidr_host_traffic_leaves_unmasqueraded_and_dies_on_the_master() -> None:
    found = causes(run(cluster_cidr, transcript("c18_vagrant_no_cluster_cidr.txt")))
    assert [(f.kind, f.node) for f in found] == [("kube-proxy-cluster-cidr", "knode1")]
    f = found[0]
    assert "leaves eth1 un-masqueraded with source 10.0.2.15" in f.title
    # Traced on the master too: the packet from "its own" address is a martian there.
    assert "Traced on kmaster" in f.detail and "martian source 10.0.2.15" in f.detail
    assert any("detect-local-mode set to ClusterCIDR, but no cluster CIDR defined" in e.text
               for e in f.evidence)
    assert any("DNAT --to-destination 192.168.50.10:6443" in e.text for e in f.evidence)
    assert "svc-unreachable:TIMEOUT@knode1" in f.explains
    r = report(transcript("c18_vagrant_no_cluster_cidr.txt"))
    assert r.causes[0].finding.kind == "kube-proxy-cluster-cidr" and not r.unexplained


def test_endpoint_on_the_same_node_is_not_blamed() -> None:
    # On kmaster the only remote-looking Service (kube-dns) has its endpoints on kmaster itself.
    found = causes(run(cluster_cidr, case_evidence("no-cluster-cidr")))
    assert [f.node for f in found] == ["knode1"]


def test_wrong_cidr_masquerades_real_pods() -> None:
    files = node_files("wrong-cluster-cidr")
    root = SCENARIOS / "c18-calico-pool-mismatch" / "bundle" / "cluster"
    files.update({f"cluster/{p.name}": p.read_text() for p in root.iterdir()})
    f = causes(run(cluster_cidr, bundle(files)))[0]
    assert f.node == "worker-b"
    assert "(10.244.0.0/16) does not contain the pods' addresses" in f.title
    assert any("! -s 10.244.0.0/16" in e.text and "matches pod 192.168.171." in e.text
               for e in f.evidence)
    assert any("clusterCIDR: 10.244.0.0/16" in e.text for e in f.evidence)
    assert "192.168.0.0/16" in f.fix[0].command  # the CNI's pool, from calico-node's env


def test_matching_cidr_is_healthy() -> None:
    files = node_files("wrong-cluster-cidr")
    for k in files:
        if k.endswith("iptables-save.txt"):
            files[k] = files[k].replace("10.244.0.0/16", "192.168.0.0/16")
    assert not run(cluster_cidr, bundle(files))
