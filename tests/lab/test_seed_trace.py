"""The seed incident end to end: snapshot the live namespace, trace with netsleuth, and the
trace must agree with the real probe in every state (up, dhcp-lost, each fix)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netsleuth.lab import engine
from netsleuth.lab.scenario import load_scenario

pytestmark = pytest.mark.lab

STATES = [
    ((), "connected", None),
    (("dhcp-lost",), "errno", "ENETUNREACH"),
    (("dhcp-lost", "restore-default-route"), "connected", None),
    (("dhcp-lost", "route-service-cidr"), "connected", None),
]


@pytest.mark.parametrize(
    ("after", "result", "errno"),
    STATES,
    ids=["up", "dhcp-lost", "restore-default-route", "route-service-cidr"],
)
def test_trace_agrees_with_probe(
    lab: Path, tmp_path: Path, after: tuple[str, ...], result: str, errno: str | None
) -> None:
    from netsleuth.datapath.trace import trace_packet
    from netsleuth.snapshot.node_dir import load_node_snapshot

    seed = load_scenario("seed")
    state = engine.up(seed, lab)
    try:
        for name in after:
            engine.apply(seed, state, seed.any_change(name), lab)
        probe = engine.probe_node(state, "admin", "10.96.0.1:443")
        engine.snapshot(state, "admin", tmp_path / "admin")
    finally:
        engine.down("seed", lab)
    assert (probe.result, probe.errno) == (result, errno)

    node = load_node_snapshot(tmp_path / "admin")
    trace = trace_packet(node, dst="10.96.0.1", dport=443, proto="tcp")
    if result == "errno":
        assert (trace.verdict.value, trace.errno) == ("unroutable", errno)
    else:
        assert probe.listener is not None
        out = trace.to_dict()["outcomes"][0]
        assert trace.verdict.value == "delivered-local"
        assert out["destination"] == probe.listener["local"] == "192.168.56.3:6443"
        # the source after NAT (MASQUERADE on the way to lo picks 192.168.56.3), without port
        assert out["source"].split(":")[0] == probe.listener["peer"].split(":")[0]
