"""Helpers for the tests of the node-addressing (A) and look-alike (F) detectors."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from netsleuth.diagnose.evidence import Evidence, evidence_from_files, evidence_from_transcript
from netsleuth.diagnose.findings import Finding, Role
from netsleuth.snapshot.inputs import load_evidence

HERE = Path(__file__).parent
SCENARIOS = HERE / "scenarios"
TRANSCRIPTS = HERE.parent / "data" / "transcripts"
NETNS = HERE / "data" / "netns"


def scenario(name: str) -> Evidence:
    case = SCENARIOS / name
    path = case / "input.txt" if (case / "input.txt").exists() else case / "bundle"
    return load_evidence(path)


def transcript(text: str, name: str = "incident.txt") -> Evidence:
    return evidence_from_transcript(text, name)


def saved_transcript(name: str) -> Evidence:
    return load_evidence(TRANSCRIPTS / name)


def bundle_files(name: str) -> dict[str, str]:
    root = SCENARIOS / name / "bundle"
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file()}


def bundle(files: dict[str, str], name: str = "bundle") -> Evidence:
    return evidence_from_files(files, name)


def netns_output(setup: str, node: str, name: str) -> str:
    """A command output captured in a network namespace by data/netns_build.py."""
    return (NETNS / setup / node / name).read_text().rstrip("\n")


def run(fn: Callable[[Evidence], Iterable[Finding]], ev: Evidence) -> list[Finding]:
    return list(fn(ev))


def causes(findings: list[Finding], kind: str | None = None) -> list[Finding]:
    return [f for f in findings if f.role == Role.CAUSE and (kind is None or f.kind == kind)]


def texts(f: Finding) -> str:
    """Everything a finding says, for checks on names and numbers it must mention."""
    return " ".join([f.title, f.why, f.detail, *(e.text for e in f.evidence),
                     *(x.command + " " + x.note for x in f.fix)])
