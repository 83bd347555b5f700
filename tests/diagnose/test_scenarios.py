"""End-to-end golden scenarios: `netsleuth diagnose` on realistic inputs.

Each directory under scenarios/ holds `input.txt` (a pasted transcript) or `bundle/` (a bundle
directory), and `expected.json`:
    {"first_cause_kind": "...", "first_cause_node": "..." | null, "explains": ["key", ...]}
or  {"no_root_cause": true}
Optional: "causes_include": ["kind", ...], "title_contains": ["...", ...].
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netsleuth.diagnose.engine import diagnose
from netsleuth.snapshot.inputs import load_evidence

SCENARIOS = Path(__file__).parent / "scenarios"
CASES = sorted(p for p in SCENARIOS.iterdir() if (p / "expected.json").is_file()) \
    if SCENARIOS.is_dir() else []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_scenario(case: Path) -> None:
    expected = json.loads((case / "expected.json").read_text())
    source = case / "input.txt" if (case / "input.txt").exists() else case / "bundle"
    report = diagnose(load_evidence(source))
    if expected.get("no_root_cause"):
        assert not report.causes, [c.finding.title for c in report.causes]
        return
    assert report.causes, "no root cause found"
    first = report.causes[0].finding
    assert first.kind == expected["first_cause_kind"], [c.finding.kind for c in report.causes]
    if "first_cause_node" in expected:
        assert first.node == expected["first_cause_node"]
    explained = {f.key for f in report.causes[0].explained}
    missing = set(expected.get("explains", [])) - explained
    assert not missing, f"not explained: {missing}; explained: {sorted(explained)}"
    kinds = {c.finding.kind for c in report.causes}
    assert set(expected.get("causes_include", [])) <= kinds
    for text in expected.get("title_contains", []):
        assert text in first.title
