"""Helpers for the tests of the netfilter (B) and kube-proxy/Service (C) detectors.

Node snapshots under data/bc/<case>/<node>/ are real command outputs captured in network
namespaces by data/bc/make_bc_data.py; transcripts under data/bc/transcripts/ paste them the
way people do, around kubectl output laid out as kubectl prints it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from netsleuth.diagnose.engine import diagnose
from netsleuth.diagnose.evidence import Evidence, evidence_from_files, evidence_from_transcript
from netsleuth.diagnose.findings import Finding, Role
from netsleuth.diagnose.report import Report

HERE = Path(__file__).parent
BC = HERE / "data" / "bc"
TRANSCRIPTS = BC / "transcripts"
SCENARIOS = HERE / "scenarios"


def node_files(case: str, *, skip: Iterable[str] = (), rename: dict[str, str] | None = None
               ) -> dict[str, str]:
    """The bundle files (`nodes/<node>/<file>`) of a captured case."""
    out: dict[str, str] = {}
    skip = set(skip)
    for node_dir in sorted((BC / case).iterdir()):
        if not node_dir.is_dir():
            continue
        for f in sorted(node_dir.iterdir()):
            if f.is_file() and f.name not in skip:
                name = (rename or {}).get(f.name, f.name)
                out[f"nodes/{node_dir.name}/{name}"] = f.read_text()
    return out


def text_output(case: str, node: str, name: str) -> str:
    return (BC / case / node / "text" / name).read_text()


def bundle(files: dict[str, str], name: str = "bundle") -> Evidence:
    return evidence_from_files(files, name)


def case_evidence(case: str, **extra: str) -> Evidence:
    files = node_files(case)
    files.update(extra)
    return bundle(files, f"data/bc/{case}")


def transcript(name: str) -> Evidence:
    path = TRANSCRIPTS / name
    return evidence_from_transcript(path.read_text(), str(path))


def transcript_text(text: str, name: str = "incident.txt") -> Evidence:
    return evidence_from_transcript(text, name)


def run(fn: Callable[[Evidence], Iterable[Finding]], ev: Evidence) -> list[Finding]:
    return list(fn(ev))


def causes(findings: list[Finding], kind: str | None = None) -> list[Finding]:
    return [f for f in findings if f.role == Role.CAUSE and (kind is None or f.kind == kind)]


def report(ev: Evidence) -> Report:
    return diagnose(ev)


def texts(f: Finding) -> str:
    return " ".join([f.title, f.why, f.detail, *(e.text for e in f.evidence),
                     *(x.command + " " + x.note for x in f.fix)])


def lines_from(f: Finding, suffix: str) -> list[int]:
    """Line numbers of the evidence quoted from files ending with `suffix`."""
    return [e.line for e in f.evidence if e.source.endswith(suffix)]
