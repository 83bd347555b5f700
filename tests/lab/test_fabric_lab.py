"""Across nodes against the kernel: snapshot the seed scenario's nodes, trace node1 → the
`kubernetes` Service with the fabric, and compare with a real connect() from node1 (the
listener on admin reports the addresses it saw after NAT)."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest

from netsleuth.lab import engine
from netsleuth.lab.scenario import load_scenario

pytestmark = pytest.mark.lab


def test_fabric_trace_agrees_with_a_probe_across_nodes(lab: Path, tmp_path: Path) -> None:
    from netsleuth.datapath.fabric import Fabric
    from netsleuth.snapshot.node_dir import load_node_snapshot

    seed = load_scenario("seed")
    state = engine.up(seed, lab)
    try:
        probe = engine.probe_node(state, "node1", "10.96.0.1:443")
        for node in ("admin", "node1", "node2"):
            engine.snapshot(state, node, tmp_path / node)
    finally:
        engine.down("seed", lab)
    assert probe.result == "connected" and probe.listener is not None

    fabric = Fabric({n: load_node_snapshot(tmp_path / n, name=n) for n in ("admin", "node1", "node2")})
    ft = fabric.trace("node1", dst=ip_address("10.96.0.1"), dport=443)
    assert (ft.main.end, ft.main.where) == ("delivered-local", "admin")
    last = ft.main.hops[-1].outcome.packet
    # What admin's listener saw: the DNATed destination and node1's masqueraded source.
    assert last.endpoint("dst") == probe.listener["local"]
    assert str(last.src) == probe.listener["peer"].rsplit(":", 1)[0]
