"""D38: VTEP MAC mismatch. The data set's node-2 got a new flannel.1 MAC after its peers had
programmed the old one (`ip link set flannel.1 address ...` in a namespace, as systemd's
MACAddressPolicy does after a reboot)."""

from __future__ import annotations

import json
import re

from netsleuth.datapath.trace_model import Verdict
from tests.diagnose.cnidns import (
    ev_bundle,
    k8s_list,
    kinds,
    node_files,
    node_json,
    out,
    report,
    run,
)

NAMES = ["node-1", "node-2", "node-3"]


def mac_of(node: str) -> str:
    m = re.search(r"flannel\.1: .*\n\s+link/ether (\S+)", out("flannel_vtep_mac", node, "ip-link.txt"))
    assert m is not None
    return m.group(1)


def old_mac_of_node2() -> str:
    m = re.search(r"10\.200\.1\.0 lladdr (\S+)", out("flannel_vtep_mac", "node-1", "ip-neigh.txt"))
    assert m is not None
    return m.group(1)


def bundle(stale_annotation: bool = True) -> dict[str, str]:
    files: dict[str, str] = {}
    for n in NAMES:
        files.update(node_files("flannel_vtep_mac", n))
    published = {"node-1": mac_of("node-1"), "node-2": old_mac_of_node2() if stale_annotation
                 else mac_of("node-2"), "node-3": mac_of("node-3")}
    files["cluster/nodes.json"] = k8s_list("Node", [
        node_json(n, f"10.128.0.{10 + i}", pod_cidr=f"10.200.{i}.0/24", kubelet="v1.28.9",
                  annotations={
                      "flannel.alpha.coreos.com/backend-data": json.dumps(
                          {"VNI": 1, "VtepMAC": published[n]}, separators=(",", ":")),
                      "flannel.alpha.coreos.com/backend-type": "vxlan",
                      "flannel.alpha.coreos.com/public-ip": f"10.128.0.{10 + i}"})
        for i, n in enumerate(NAMES)])
    return files


def test_peers_use_the_old_mac_of_node2() -> None:
    found = run(ev_bundle(bundle()), "D38")
    assert kinds(found) == [("vtep-mac-mismatch", "node-2")]
    f = found[0]
    assert mac_of("node-2") in f.title and old_mac_of_node2() in f.title
    assert f.trace is not None and f.trace.verdict == Verdict.SENT
    assert f.trace.main.next_hop == "10.200.1.0" and f.trace.main.interface == "flannel.1"
    assert any(e.source.endswith("node-1/ip-neigh.txt") for e in f.evidence)
    assert "--field-selector spec.nodeName=node-2" in f.fix[0].command
    assert "MACAddressPolicy=none" in f.fix[1].command


def test_root_cause_in_the_report() -> None:
    assert report(ev_bundle(bundle())).causes[0].finding.kind == "vtep-mac-mismatch"


def test_consistent_macs_are_quiet() -> None:
    files = {k: v for k, v in bundle(stale_annotation=False).items()
             if "node-2" not in k or k.endswith("nodes.json")}
    # Without node-2's own link the mismatch cannot be seen; and nodes 1/3 are consistent.
    assert run(ev_bundle(files), "D38") == []
