"""Run the registered detectors over the evidence, correlate, report."""

from __future__ import annotations

from dataclasses import replace

from netsleuth.diagnose.causes import correlate
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import Finding, Role
from netsleuth.diagnose.registry import DetectorInfo, load_detectors
from netsleuth.diagnose.report import Check, Report, build_report


def available(ev: Evidence) -> set[str]:
    """The evidence kinds present, in the vocabulary detectors declare in `needs`."""
    kinds: set[str] = set()
    for node in ev.nodes.values():
        kinds |= node.has
        if node.state.routes:
            kinds.add("routes")
        if node.state.ruleset.tables:
            kinds.add("iptables")
    objects = ev.objects
    for name, present in (("pods", objects.pods), ("services", objects.services),
                          ("events", objects.events), ("logs", objects.logs),
                          ("k8s-nodes", objects.nodes), ("processes", objects.processes),
                          ("endpoints", objects.endpoints), ("configmaps", objects.configmaps),
                          ("probes", ev.probes)):
        if present:
            kinds.add(name)
    return kinds


def diagnose(ev: Evidence, detectors: dict[str, DetectorInfo] | None = None) -> Report:
    registry = detectors if detectors is not None else load_detectors()
    have = available(ev)
    findings: list[Finding] = []
    checks: list[Check] = []
    for info in sorted(registry.values(), key=lambda d: d.id):
        lacking = [n for n in info.needs if n not in have]
        if info.needs and len(lacking) == len(info.needs):
            checks.append(Check(info.id, info.title, False,
                                "needs " + " or ".join(info.needs)))
            continue
        try:
            found = list(info.fn(ev))
        except Exception as exc:  # a broken detector must not abort the diagnosis
            findings.append(Finding(
                detector=info.id, kind="internal-error", role=Role.SYMPTOM,
                key=f"internal:{info.id}", title=f"detector {info.id} failed: {exc!r}",
                confidence=0.0))
            checks.append(Check(info.id, info.title, False, f"failed: {exc!r}"))
            continue
        findings.extend(found)
        checks.append(Check(info.id, info.title, True,
                            f"{len(found)} finding(s)" if found else "nothing found"))
    correlation = correlate(_dedupe(findings))
    return build_report(
        correlation, origin=ev.origin, sources=ev.sources, nodes=tuple(sorted(ev.nodes)),
        checks=tuple(checks), missing=ev.missing, notes=ev.notes, problems=ev.problems,
    )


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """Two detectors may observe the same symptom (a log line and a traceroute): one finding
    per key, the most confident, carrying the evidence and explanations of all."""
    best: dict[str, Finding] = {}
    for f in findings:
        old = best.get(f.key)
        if old is None:
            best[f.key] = f
            continue
        top, other = (f, old) if f.confidence > old.confidence else (old, f)
        best[f.key] = replace(
            top,
            evidence=tuple(dict.fromkeys(top.evidence + other.evidence)),
            explains=tuple(dict.fromkeys(top.explains + other.explains)),
        )
    return list(best.values())
