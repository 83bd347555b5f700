"""The DaemonSet agent diagnoses its own node from its snapshot and the pod environment."""

from __future__ import annotations

import json
from pathlib import Path

from netsleuth.collect.agent import diagnose_node

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-incident" / "nodes"


def files(node: str) -> dict[str, str]:
    return {p.name: p.read_text() for p in (SEED / node).iterdir()}


def test_agent_on_the_broken_node_names_the_missing_route() -> None:
    report = json.loads(diagnose_node("admin", files("admin"), "10.96.0.1", "443"))
    kinds = [(c["kind"], c["node"]) for c in report["root_causes"]]
    assert ("service-cidr-unroutable", "admin") in kinds


def test_agent_without_the_service_environment_uses_kube_proxys_rules() -> None:
    # No KUBERNETES_SERVICE_HOST: the `kubernetes` Service is found in kube-proxy's rules.
    report = json.loads(diagnose_node("admin", files("admin"), None, None))
    assert report["schema"] == "netsleuth.diagnosis/1" and "error" not in report
    assert ("service-cidr-unroutable", "admin") in [
        (c["kind"], c["node"]) for c in report["root_causes"]]
    # Without any rules either, nothing names the Service: no claim is made.
    bare = {k: v for k, v in files("admin").items() if k != "iptables-save.txt"}
    report = json.loads(diagnose_node("admin", bare, None, None))
    assert all(c["kind"] != "service-cidr-unroutable" for c in report["root_causes"])


def test_agent_turns_failures_into_an_error_record() -> None:
    report = json.loads(diagnose_node("x", {"ip-route.txt": "default via banana\n"}, None, None))
    assert report["schema"] == "netsleuth.diagnosis/1"
    assert "error" in report or "problems" in report
