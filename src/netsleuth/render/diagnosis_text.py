"""The diagnosis for people: root causes first, each with its chain of consequences, its
evidence (quoted, with file:line) and its fix; then what was checked and what is missing."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from netsleuth.diagnose.causes import RankedCause
from netsleuth.diagnose.findings import EvidenceLine, Finding
from netsleuth.diagnose.report import Report


def _evidence(lines: tuple[EvidenceLine, ...], indent: str, limit: int = 8) -> Text:
    text = Text()
    for e in lines[:limit]:
        where = f"{e.source}:{e.line}" if e.line else e.source
        text.append(f"{indent}{where}  ", style="cyan")
        text.append(f"{e.text}\n")
    if len(lines) > limit:
        text.append(f"{indent}… {len(lines) - limit} more\n", style="dim")
    return text


def _cause(n: int, c: RankedCause, verbose: bool) -> RenderableType:
    f = c.finding
    head = Text()
    head.append(f"ROOT CAUSE {n}", style="bold red")
    head.append(f"  (confidence {f.confidence:.0%})\n", style="dim")
    head.append(f.title + "\n", style="bold")
    if f.why:
        head.append("Why: ", style="bold")
        head.append(f.why + "\n")
    if f.detail:
        head.append("\n" + f.detail + "\n")
    parts: list[RenderableType] = [head]
    if f.evidence:
        parts.append(Text("Evidence:", style="bold"))
        parts.append(_evidence(f.evidence, "  ", 12 if verbose else 8))
    if c.tree:
        tree = Text("Explains:\n", style="bold")
        for depth, sym in c.tree:
            tree.append("  " * depth + "→ ", style="yellow")
            tree.append(sym.title + "\n")
            if verbose:
                tree.append(_evidence(sym.evidence, "  " * depth + "    ", 3))
        parts.append(tree)
    now = [x for x in f.fix if x.when == "now"]
    later = [x for x in f.fix if x.when != "now"]
    if now:
        fix = Text("Fix now:\n", style="bold green")
        for x in now:
            fix.append(f"  $ {x.command}\n", style="green")
            if x.note:
                fix.append(f"    {x.note}\n", style="dim")
        parts.append(fix)
    if later:
        perm = Text("Make it permanent:\n", style="bold green")
        for x in later:
            perm.append(f"  • {x.command}\n")
            if x.note:
                perm.append(f"    {x.note}\n", style="dim")
        parts.append(perm)
    return Panel(Group(*parts), border_style="red", title_align="left")


def _symptom_line(s: Finding) -> Text:
    t = Text("  • ")
    t.append(s.title)
    if s.evidence:
        e = s.evidence[0]
        t.append(f"  [{e.source}:{e.line}]" if e.line else f"  [{e.source}]", style="dim")
    return t


def render_report(report: Report, *, verbose: bool = False) -> RenderableType:
    parts: list[RenderableType] = []
    head = Text()
    head.append("Input: ", style="bold")
    head.append(f"{report.origin} {', '.join(report.sources)}")
    if report.nodes:
        head.append(f" · nodes with data-path evidence: {', '.join(report.nodes)}")
    parts.append(head)
    if report.causes:
        for n, cause in enumerate(report.causes, 1):
            parts.append(_cause(n, cause, verbose))
    else:
        parts.append(Text("No root cause found.", style="bold green"))
    if report.unexplained:
        t = Text("Symptoms no root cause explains:\n", style="bold yellow")
        for s in report.unexplained:
            t.append_text(_symptom_line(s))
            t.append("\n")
        parts.append(t)
    ran = [c for c in report.checks if c.ran]
    skipped = [c for c in report.checks if not c.ran]
    checked = Text(f"Checked ({len(ran)}): ", style="bold")
    checked.append("; ".join(f"{c.detector} {c.title}" for c in ran) or "nothing")
    parts.append(checked)
    if skipped:
        t = Text(f"Not checked ({len(skipped)}): ", style="bold dim")
        t.append("; ".join(f"{c.detector} ({c.reason})" for c in skipped), style="dim")
        parts.append(t)
    if report.missing:
        t = Text("Missing evidence (collect it to be sure):\n", style="bold")
        for m in report.missing[: None if verbose else 8]:
            t.append(f"  • {m.what}: {m.why}\n    ", style="")
            t.append(f"{m.how}\n", style="cyan")
        if not verbose and len(report.missing) > 8:
            t.append(f"  … {len(report.missing) - 8} more (--verbose)\n", style="dim")
        parts.append(t)
    if report.problems:
        t = Text("Input that could not be read:\n", style="bold yellow")
        for p in report.problems[:10]:
            t.append(f"  • {p}\n")
        parts.append(t)
    if verbose and report.notes:
        t = Text("Notes:\n", style="bold dim")
        for note in report.notes:
            t.append(f"  • {note}\n", style="dim")
        parts.append(t)
    return Panel(Group(*parts), title="netsleuth diagnosis", title_align="left")
