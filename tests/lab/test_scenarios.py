"""Every shipped scenario, built for real: its `checks` (probes after faults and fixes) hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from labutil import namespaces_with

from netsleuth.lab import engine
from netsleuth.lab.scenario import load_scenario, scenario_names

pytestmark = pytest.mark.lab


def test_the_required_scenarios_ship() -> None:
    names = set(scenario_names())
    assert {
        "seed",
        "host-firewall-reject",
        "ip-forward-off",
        "blackhole-route",
        "service-no-endpoints",
    } <= names


@pytest.mark.parametrize("name", scenario_names())
def test_scenario_checks(lab: Path, name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.checks, f"scenario {name} has no checks"
    assert scenario.faults and scenario.fixes, f"scenario {name} needs a fault and a fix"
    outcomes = engine.run_checks(scenario, lab)
    failed = [
        f"after {'+'.join(o.after) or 'up'}: {o.probe.node} -> {o.probe.target}: {o.problems}"
        for o in outcomes
        if not o.ok
    ]
    assert not failed, "\n".join(failed)
    # every fault is exercised by some check, and so is every fix
    applied = {step for c in scenario.checks for step in c.after}
    assert {c.name for c in (*scenario.faults, *scenario.fixes)} <= applied
    assert list(lab.glob("*.json")) == [], "run_checks left a lab up"


def test_seed_incident_step_by_step(lab: Path) -> None:
    """The seed, as issue 3 tells it: works, breaks with ENETUNREACH, both fixes heal it."""
    seed = load_scenario("seed")
    state = engine.up(seed, lab)
    prefix = state.prefix
    try:
        res = engine.probe_node(state, "admin", "10.96.0.1:443")
        assert res.result == "connected"
        assert res.listener and res.listener["local"] == "192.168.56.3:6443"

        engine.apply(seed, state, seed.change("fault", "dhcp-lost"), lab)
        res = engine.probe_node(state, "admin", "10.96.0.1:443")
        assert (res.result, res.errno) == ("errno", "ENETUNREACH")
        # The DNAT rule is there; only the route is missing: the endpoint itself is reachable.
        assert engine.probe_node(state, "admin", "192.168.56.3:6443").result == "connected"

        engine.apply(seed, state, seed.change("fix", "restore-default-route"), lab)
        res = engine.probe_node(state, "admin", "10.96.0.1:443")
        assert res.result == "connected"
        assert res.listener is not None
        assert res.listener["listener"] == "admin:6443/tcp"
        assert res.listener["local"] == "192.168.56.3:6443"
        assert res.listener["peer"].startswith("192.168.56.3:")
    finally:
        engine.down("seed", lab)
    assert namespaces_with(prefix) == []
    assert not (lab / prefix).exists()
