"""Findings: what detectors say, with the evidence lines that prove it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from netsleuth.datapath.trace_model import Trace


class Role(enum.StrEnum):
    CAUSE = "cause"  # a fault in configuration or state; can be fixed
    SYMPTOM = "symptom"  # an observation that something fails


@dataclass(frozen=True, slots=True)
class EvidenceLine:
    """One quoted line of evidence: the file (or transcript block) and line it came from."""

    source: str
    line: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "text": self.text}


@dataclass(frozen=True, slots=True)
class Fix:
    """A repair: `now` commands restore service, `permanent` ones keep it from coming back."""

    command: str
    when: str = "now"  # "now" | "permanent"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "when": self.when, "note": self.note}


@dataclass(frozen=True, slots=True)
class Finding:
    """One detector result.

    `key` identifies what the finding is about (e.g. `calico-not-ready@admin`) so that other
    findings can `explain` it. `explains` lists the keys (exact, or a prefix ending in `*`) of
    symptoms this finding accounts for. `confidence` is 0..1 with `why` in words.
    """

    detector: str
    kind: str
    role: Role
    key: str
    title: str
    node: str | None = None
    confidence: float = 0.5
    why: str = ""
    evidence: tuple[EvidenceLine, ...] = ()
    explains: tuple[str, ...] = ()
    fix: tuple[Fix, ...] = ()
    detail: str = ""
    trace: Trace | None = field(default=None, compare=False)

    def explains_key(self, key: str) -> bool:
        for pattern in self.explains:
            if pattern == key or (pattern.endswith("*") and key.startswith(pattern[:-1])):
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "detector": self.detector,
            "kind": self.kind,
            "role": self.role.value,
            "key": self.key,
            "title": self.title,
            "node": self.node,
            "confidence": round(self.confidence, 2),
            "why": self.why,
            "detail": self.detail,
            "evidence": [e.to_dict() for e in self.evidence],
            "fix": [f.to_dict() for f in self.fix],
        }
        if self.trace is not None:
            out["trace"] = self.trace.to_dict()
        return out
