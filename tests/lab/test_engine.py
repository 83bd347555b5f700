"""Engine behaviour around the edges: refusal without root/iptables, cleanup on errors,
`down --all`, the CLI end to end, and state kept across invocations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from labutil import namespaces_with
from typer.testing import CliRunner

from netsleuth.errors import LabError
from netsleuth.lab import engine, netns
from netsleuth.lab import state as st
from netsleuth.lab.cli import app
from netsleuth.lab.scenario import load_scenario, parse_scenario

pytestmark = pytest.mark.lab

runner = CliRunner()


def test_refuses_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        netns.require_privileges()


def test_refuses_without_iptables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    real_which = netns.shutil.which
    monkeypatch.setattr(netns.shutil, "which", lambda t: None if t.startswith("iptables") else real_which(t))
    with pytest.raises(LabError, match="iptables"):
        netns.require_privileges()


BROKEN = """
name: broken
nodes:
  a:
    routes: [10.9.0.0/16 via 10.0.0.99 dev nosuchdev]
  b: {}
segments:
  s:
    members:
      - {node: a, ifname: eth0, addresses: [10.0.0.1/24]}
      - {node: b, ifname: eth0, addresses: [10.0.0.2/24]}
"""


def test_a_failing_build_removes_everything(lab: Path) -> None:
    scenario = parse_scenario(BROKEN, "broken.yaml")
    prefix = engine.new_prefix()
    with pytest.raises(LabError, match="nosuchdev"):
        engine.up(scenario, lab, prefix=prefix)
    assert namespaces_with(prefix) == []
    assert st.load("broken", lab) is None


def test_ctrl_c_during_build_removes_everything(lab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = load_scenario("seed")
    prefix = engine.new_prefix()
    real = engine._start_listeners

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_start_listeners", interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine.up(scenario, lab, prefix=prefix)
    monkeypatch.setattr(engine, "_start_listeners", real)
    assert namespaces_with(prefix) == []


def test_up_twice_is_refused_and_down_all_finds_leftovers(lab: Path) -> None:
    scenario = load_scenario("host-firewall-reject")
    state = engine.up(scenario, lab)
    with pytest.raises(LabError, match="already up"):
        engine.up(scenario, lab)
    # forget the state file: down --all must still find the namespaces by prefix
    st.state_path(scenario.name, lab).unlink()
    assert namespaces_with(state.prefix)
    removed = engine.down_all(lab)
    assert any(n.startswith(state.prefix) for n in removed)
    assert namespaces_with(state.prefix) == []


def test_cli_end_to_end(lab: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["up", "seed"])
    assert res.exit_code == 0, res.output
    try:
        res = runner.invoke(app, ["probe", "admin", "10.96.0.1:443", "--format", "json"])
        assert res.exit_code == 0, res.output
        probe = json.loads(res.output)
        assert probe["result"] == "connected" and probe["errno"] is None
        assert probe["peer"] == "10.96.0.1:443"
        assert probe["listener"]["local"] == "192.168.56.3:6443"

        res = runner.invoke(app, ["fault", "seed", "dhcp-lost"])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["probe", "admin", "10.96.0.1:443", "--format", "json"])
        probe = json.loads(res.output)
        assert (probe["result"], probe["errno"]) == ("errno", "ENETUNREACH")

        res = runner.invoke(app, ["probe", "node1", "10.96.0.1:443", "--from-pod", "coredns"])
        assert res.exit_code == 0 and "connected" in res.output, res.output
        res = runner.invoke(app, ["probe", "node1", "10.10.0.193:53", "--proto", "udp", "--format", "json"])
        probe = json.loads(res.output)
        assert probe["result"] == "connected"
        assert probe["listener"]["listener"] == "node1/coredns:53/udp"
        res = runner.invoke(app, ["probe", "node2", "192.168.56.3", "--proto", "icmp", "--format", "json"])
        assert json.loads(res.output)["result"] == "connected"

        snap = tmp_path / "snap"
        res = runner.invoke(app, ["snapshot", "admin", "-o", str(snap)])
        assert res.exit_code == 0, res.output
        assert (snap / "hostname").read_text() == "admin\n"
        routes = json.loads((snap / "ip-route.json").read_text())
        assert not [r for r in routes if r["dst"] == "default"]  # the fault is in the snapshot

        res = runner.invoke(app, ["fix", "seed", "route-service-cidr"])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["list"])
        assert "dhcp-lost, route-service-cidr" in res.output

        res = runner.invoke(app, ["fault", "seed", "no-such-fault"])
        assert res.exit_code == 2 and "no fault 'no-such-fault'" in res.output
        res = runner.invoke(app, ["probe", "nosuchnode", "10.96.0.1:443"])
        assert res.exit_code == 2 and "nosuchnode" in res.output
    finally:
        res = runner.invoke(app, ["down", "seed"])
    assert res.exit_code == 0, res.output
    assert st.running(lab) == []
    res = runner.invoke(app, ["down", "--all"])
    assert res.exit_code == 0 and "nothing" in res.output
