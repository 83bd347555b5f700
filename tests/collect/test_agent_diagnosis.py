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


def test_agent_without_the_service_environment_still_reports() -> None:
    report = json.loads(diagnose_node("admin", files("admin"), None, None))
    assert report["schema"] == "netsleuth.diagnosis/1"
    assert "error" not in report
    assert all(c["kind"] != "service-cidr-unroutable" for c in report["root_causes"])


def test_agent_turns_failures_into_an_error_record() -> None:
    report = json.loads(diagnose_node("x", {"ip-route.txt": "default via banana\n"}, None, None))
    assert report["schema"] == "netsleuth.diagnosis/1"
    assert "error" in report or "problems" in report
