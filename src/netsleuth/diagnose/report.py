"""The diagnosis report: one value that every renderer formats (JSON schema netsleuth.diagnosis/1).

JSON shape (documented in docs/diagnose.md):
    {"schema": "netsleuth.diagnosis/1", "input": {...}, "verdict": "root-cause-found" |
     "no-root-cause-found", "root_causes": [{kind, title, node, confidence, why, evidence[],
     explains[], fix[], detail, trace?}], "symptoms": [...], "unexplained_symptoms": [...],
     "checked": [...], "missing_evidence": [...], "notes": [...], "problems": [...]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netsleuth.diagnose.causes import Correlation, RankedCause
from netsleuth.diagnose.evidence import Missing
from netsleuth.diagnose.findings import Finding, Role

SCHEMA = "netsleuth.diagnosis/1"


@dataclass(frozen=True, slots=True)
class Check:
    detector: str
    title: str
    ran: bool
    reason: str = ""  # why it did not run, or what it found


@dataclass(frozen=True, slots=True)
class Report:
    origin: str
    sources: tuple[str, ...]
    nodes: tuple[str, ...]
    causes: tuple[RankedCause, ...]
    symptoms: tuple[Finding, ...]
    unexplained: tuple[Finding, ...]
    checks: tuple[Check, ...]
    missing: tuple[Missing, ...]
    notes: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def found(self) -> bool:
        return bool(self.causes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "input": {"kind": self.origin, "sources": list(self.sources),
                      "nodes": list(self.nodes)},
            "verdict": "root-cause-found" if self.found else "no-root-cause-found",
            "root_causes": [_cause_dict(c) for c in self.causes],
            "symptoms": [s.to_dict() for s in self.symptoms],
            "unexplained_symptoms": [s.key for s in self.unexplained],
            "checked": [{"detector": c.detector, "title": c.title, "ran": c.ran,
                         "reason": c.reason} for c in self.checks],
            "missing_evidence": [{"what": m.what, "why": m.why, "how": m.how}
                                 for m in self.missing],
            "notes": list(self.notes),
            "problems": list(self.problems),
        }


def _cause_dict(c: RankedCause) -> dict[str, Any]:
    out = c.finding.to_dict()
    out["explains"] = [{"key": f.key, "title": f.title, "role": f.role.value}
                       for f in c.explained]
    out["score"] = round(c.score, 2)
    return out


def build_report(
    correlation: Correlation,
    *,
    origin: str,
    sources: tuple[str, ...],
    nodes: tuple[str, ...],
    checks: tuple[Check, ...],
    missing: tuple[Missing, ...],
    notes: tuple[str, ...],
    problems: tuple[str, ...],
) -> Report:
    symptoms = tuple(f for f in correlation.findings if f.role == Role.SYMPTOM)
    return Report(origin, sources, nodes, correlation.causes, symptoms, correlation.unexplained,
                  checks, missing, notes, problems)
