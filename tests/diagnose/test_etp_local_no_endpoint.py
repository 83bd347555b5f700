"""C26: externalTrafficPolicy Local — the NodePort is dropped on the node without an endpoint."""

from __future__ import annotations

from netsleuth.diagnose.detectors.etp_local_no_endpoint import etp_local

from .sectionbc import SCENARIOS, bundle, causes, node_files, run


def _files() -> dict[str, str]:
    files = node_files("etp-local")
    root = SCENARIOS / "c26-etp-local-eks" / "bundle" / "cluster"
    files.update({f"cluster/{p.name}": p.read_text() for p in root.iterdir()})
    return files


def test_dropped_on_the_empty_node_served_on_the_other() -> None:
    f = causes(run(etp_local, bundle(_files())))[0]
    assert f.node == "ip-10-0-2-33.ec2.internal"
    assert "NodePort 31443" in f.title
    drop = f.evidence[0]
    assert "has no local endpoints" in drop.text and drop.text.endswith("→ dropped")
    assert any("ip-10-0-1-17.ec2.internal" in e.text and "DNAT" in e.text for e in f.evidence)
    assert "healthCheckNodePort" in f.fix[0].command


def test_from_rules_alone_without_service_objects() -> None:
    found = causes(run(etp_local, bundle(node_files("etp-local"))))
    assert [f.node for f in found] == ["ip-10-0-2-33.ec2.internal"]


def test_cluster_policy_services_are_not_reported() -> None:
    assert not run(etp_local, bundle(node_files("forward-drop")))
