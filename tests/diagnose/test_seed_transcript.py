"""Acceptance: the raw seed write-up (Chinese prose and all) is diagnosed correctly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netsleuth.cli import app
from netsleuth.diagnose.engine import diagnose
from netsleuth.diagnose.evidence import evidence_from_transcript

SEED = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "000_e9d9eec0ae13dafa.txt"
pytestmark = pytest.mark.skipif(not SEED.is_file(), reason=f"seed write-up not found at {SEED}")


def report():  # type: ignore[no-untyped-def]
    return diagnose(evidence_from_transcript(SEED.read_text(encoding="utf-8"), str(SEED)))


def test_root_cause_is_the_missing_route_on_admin() -> None:
    r = report()
    first = r.causes[0].finding
    assert (first.kind, first.node) == ("service-cidr-unroutable", "admin")
    assert "10.96.0.0/12" in first.title and "no default route" in first.title
    assert first.trace is not None and first.trace.errno == "ENETUNREACH"
    # The evidence quotes the pasted DNAT rule (never reached) by its line in the write-up.
    assert any("to:192.168.56.3:6443" in e.text and e.line > 0 for e in first.evidence)


def test_consequences_are_chained_under_the_root_cause() -> None:
    r = report()
    explained = {f.key for f in r.causes[0].explained}
    assert "svc-unreachable:ENETUNREACH@admin" in explained  # traceroute on admin
    assert "svc-unreachable:ENETUNREACH@node2" in explained  # calico-node's log
    assert "cni-agent-not-ready@node2" in explained  # readiness failures, back-off
    assert "sandbox-churn@admin" in explained  # CoreDNS SandboxChanged x575
    assert "dns-down" in explained
    assert not r.unexplained


def test_fixes_are_verified_route_commands_with_persistence() -> None:
    fixes = report().causes[0].finding.fix
    now = [f.command for f in fixes if f.when == "now"]
    assert now[0] == "ip route add 10.96.0.0/12 dev enp0s8"
    assert any(c.startswith("ip route add default via ") for c in now)
    assert all("Verified by simulation" in f.note for f in fixes if f.when == "now")
    assert any(f.when == "permanent" for f in fixes)


def test_cli_json_schema_and_exit_code() -> None:
    result = CliRunner().invoke(app, ["diagnose", str(SEED), "--format", "json"])
    assert result.exit_code == 3, result.output
    data = json.loads(result.output)
    assert data["schema"] == "netsleuth.diagnosis/1"
    assert data["verdict"] == "root-cause-found"
    cause = data["root_causes"][0]
    assert {"kind", "title", "node", "confidence", "evidence", "explains", "fix"} <= set(cause)
    assert cause["evidence"][0].keys() == {"source", "line", "text"}
    assert data["missing_evidence"]


def test_cli_html_is_one_self_contained_file() -> None:
    result = CliRunner().invoke(app, ["diagnose", str(SEED), "--format", "html"])
    assert result.exit_code == 3
    html = result.output
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert "Root cause 1: Node admin has no route covering the Service CIDR" in html
    assert "<script" not in html and "http" not in html.split("<body>")[0]
