"""Golden traces on the shipped seed incident (examples/seed-incident)."""

from __future__ import annotations

import json
from ipaddress import ip_address
from pathlib import Path

from typer.testing import CliRunner

from netsleuth.cli import app
from netsleuth.datapath.trace import NodeDatapath
from netsleuth.datapath.trace_model import Verdict
from netsleuth.snapshot.node_dir import load_node_snapshot, with_extra_routes

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-incident" / "nodes"
KUBERNETES = ip_address("10.96.0.1")


def test_admin_host_to_kubernetes_service_fails_before_dnat() -> None:
    t = NodeDatapath(load_node_snapshot(SEED / "admin")).trace(dst=KUBERNETES, dport=443)
    assert (t.verdict, t.errno) == (Verdict.UNROUTABLE, "ENETUNREACH")
    assert len(t.outcomes) == 1 and [s.hook for s in t.main.steps] == ["route"]
    dnat = [s for s in t.unreached if s.action.startswith("DNAT")]
    assert [s.action for s in dnat] == ["DNAT to 192.168.56.3:6443"]
    assert dnat[0].source is not None and dnat[0].source.file.endswith("iptables-save.txt")


def test_admin_with_a_default_route_dnats_and_delivers_locally() -> None:
    node = with_extra_routes(load_node_snapshot(SEED / "admin"),
                             "default via 192.168.56.4 dev enp0s8")
    t = NodeDatapath(node).trace(dst=KUBERNETES, dport=443)
    assert t.verdict == Verdict.DELIVERED_LOCAL and len(t.outcomes) == 1
    assert t.main.packet.endpoint("dst") == "192.168.56.3:6443"
    hooks = [s.hook for s in t.main.steps]
    assert hooks.index("route") < hooks.index("OUTPUT") < hooks.index("reroute")
    assert hooks[-1] == "deliver"


def test_node1_dnats_and_leaves_via_the_host_only_network() -> None:
    t = NodeDatapath(load_node_snapshot(SEED / "node1")).trace(dst=KUBERNETES, dport=443)
    assert t.verdict == Verdict.SENT
    assert (t.main.interface, t.main.next_hop) == ("enp0s8", "192.168.56.3")
    assert t.main.packet.endpoint("dst") == "192.168.56.3:6443"
    # connect() picked enp0s3's address via the default route; MASQUERADE fixes it on enp0s8.
    assert t.main.masquerade and t.main.packet.src == ip_address("192.168.56.4")


def test_pod_to_dns_service_without_endpoints_on_admin() -> None:
    node = load_node_snapshot(SEED / "admin")
    t = NodeDatapath(node).trace(dst=ip_address("10.96.0.10"), dport=53, proto="udp",
                                 src=ip_address("10.10.0.130"), iif="cali3d6a8137e9b")
    # No DNAT (kube-dns has no endpoints) and no route for the Service CIDR: the node answers
    # the pod with ICMP net-unreachable before the filter REJECT rule could run.
    assert (t.verdict, t.main.icmp) == (Verdict.UNROUTABLE, "icmp-net-unreachable")


def test_cli_trace_json_contract() -> None:
    result = CliRunner().invoke(app, ["trace", "--node", str(SEED / "admin"), "--from", "host",
                                      "--to", "10.96.0.1:443", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["verdict"], data["errno"]) == ("unroutable", "ENETUNREACH")
    outcome = data["outcomes"][0]
    assert set(outcome) >= {"probability", "verdict", "errno", "destination", "source",
                            "masquerade", "interface", "next_hop"}
    assert set(data["steps"][0]) >= {"hook", "table", "chain", "rule", "source", "action",
                                     "packet"}


def test_cli_trace_what_if_route_and_pod_origin() -> None:
    runner = CliRunner()
    fixed = runner.invoke(app, ["trace", "-n", str(SEED / "admin"), "--to", "10.96.0.1:443",
                                "--route-add", "default via 192.168.56.4 dev enp0s8",
                                "-f", "json"])
    assert json.loads(fixed.output)["verdict"] == "delivered-local"
    pod = runner.invoke(app, ["trace", "-n", str(SEED / "admin"), "--from", "10.10.0.130",
                              "--to", "10.96.0.10:53", "--proto", "udp", "-f", "json"])
    assert json.loads(pod.output)["origin"] == "10.10.0.130@cali3d6a8137e9b"


def test_cli_errors_are_one_line_not_tracebacks(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["trace", "-n", str(tmp_path / "nope"), "--to", "10.0.0.1"])
    assert missing.exit_code == 1 and "not a directory" in missing.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ip-route.txt").write_text("default via banana dev eth0\n")
    broken = runner.invoke(app, ["trace", "-n", str(bad), "--to", "10.0.0.1"])
    assert broken.exit_code == 1 and "ip-route.txt:1" in broken.output
    assert "Traceback" not in broken.output
    wrong = runner.invoke(app, ["trace", "-n", str(SEED / "admin"), "--to", "10.96.0.1:99999"])
    assert wrong.exit_code == 1 and "IP[:PORT]" in wrong.output
