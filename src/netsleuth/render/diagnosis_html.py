"""The diagnosis as one self-contained HTML file (inline CSS, no scripts, no external assets),
for attaching to an incident ticket. Formats the same Report as the terminal renderer."""

from __future__ import annotations

from html import escape

from netsleuth.datapath.trace_model import Step, Trace
from netsleuth.diagnose.causes import RankedCause
from netsleuth.diagnose.findings import EvidenceLine
from netsleuth.diagnose.report import Report

CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
.cause{border:2px solid #c0392b;border-radius:8px;padding:1em 1.2em;margin:1.2em 0}
.cause h2{margin:0 0 .3em;color:#c0392b}.conf{color:#777;font-size:.9em}
.ok{border:2px solid #27ae60;border-radius:8px;padding:1em;color:#1e8449}
code,pre,.ev td{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
pre{background:#f6f6f6;padding:.6em;border-radius:4px;white-space:pre-wrap}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:3px 6px;
text-align:left;vertical-align:top}.src{color:#2471a3;white-space:nowrap}
.fix pre{background:#eafaf1}.tree li{list-style:none}.tree li:before{content:"→ ";color:#b9770e}
.dim{color:#777}
"""


def _evidence(lines: tuple[EvidenceLine, ...]) -> str:
    rows = "".join(
        f"<tr><td class=src>{escape(e.source)}{':' + str(e.line) if e.line else ''}</td>"
        f"<td>{escape(e.text)}</td></tr>" for e in lines)
    return f"<table class=ev>{rows}</table>"


def _steps(steps: tuple[Step, ...]) -> str:
    rows = "".join(
        f"<tr><td>{i}</td><td>{escape(s.hook)} {escape(s.table)}"
        f"{'/' + escape(s.chain) if s.chain else ''}</td><td><code>{escape(s.rule)}</code>"
        f"{'<br><span class=dim>' + escape(str(s.source)) + '</span>' if s.source else ''}"
        + "".join(f"<br><span class=dim>{escape(d)}</span>" for d in s.detail)
        + f"</td><td>{escape(s.action)}</td></tr>"
        for i, s in enumerate(steps, 1))
    return f"<table><tr><th>#</th><th>where</th><th>rule / route</th><th>action</th></tr>{rows}</table>"


def _trace(trace: Trace) -> str:
    out = [f"<details><summary>Trace on {escape(trace.node)}: {escape(trace.origin)} → "
           f"{escape(trace.packet.endpoint('dst'))}/{escape(trace.packet.proto)}: "
           f"<b>{escape(trace.verdict.value)}</b> {escape(trace.errno or '')}</summary>",
           _steps(trace.main.steps)]
    if trace.unreached:
        out.append("<p><b>Never reached:</b></p>" + _steps(trace.unreached))
    out.append("</details>")
    return "".join(out)


def _cause(n: int, c: RankedCause) -> str:
    f = c.finding
    parts = [f"<div class=cause><h2>Root cause {n}: {escape(f.title)}</h2>",
             f"<div class=conf>confidence {f.confidence:.0%} — {escape(f.why)}</div>"]
    if f.detail:
        parts.append("".join(f"<p>{escape(p)}</p>" for p in f.detail.split("\n")))
    if f.evidence:
        parts.append("<h3>Evidence</h3>" + _evidence(f.evidence))
    if c.tree:
        items = "".join(
            f"<li style='margin-left:{1.4 * (d - 1)}em'>{escape(s.title)}</li>" for d, s in c.tree)
        parts.append(f"<h3>Explains</h3><ul class=tree>{items}</ul>")
    fixes = "".join(
        f"<p><b>{'Now' if x.when == 'now' else 'Permanent'}:</b></p><pre>{escape(x.command)}</pre>"
        f"<p class=dim>{escape(x.note)}</p>" for x in f.fix)
    if fixes:
        parts.append(f"<div class=fix><h3>Fix</h3>{fixes}</div>")
    if f.trace is not None:
        parts.append(_trace(f.trace))
    parts.append("</div>")
    return "".join(parts)


def render_html(report: Report) -> str:
    body = [f"<h1>netsleuth diagnosis</h1><p class=dim>{escape(report.origin)}: "
            f"{escape(', '.join(report.sources))}"
            + (f" · nodes: {escape(', '.join(report.nodes))}" if report.nodes else "") + "</p>"]
    if report.causes:
        body.extend(_cause(n, c) for n, c in enumerate(report.causes, 1))
    else:
        body.append("<div class=ok><b>No root cause found.</b></div>")
    if report.unexplained:
        body.append("<h2>Symptoms no root cause explains</h2><ul>" + "".join(
            f"<li>{escape(s.title)}</li>" for s in report.unexplained) + "</ul>")
    body.append("<h2>Checked</h2><table>" + "".join(
        f"<tr><td>{escape(c.detector)}</td><td>{escape(c.title)}</td>"
        f"<td class=dim>{escape(c.reason if c.ran else 'not run: ' + c.reason)}</td></tr>"
        for c in report.checks) + "</table>")
    if report.missing:
        body.append("<h2>Missing evidence</h2><table>" + "".join(
            f"<tr><td>{escape(m.what)}</td><td class=dim>{escape(m.why)}</td>"
            f"<td><code>{escape(m.how)}</code></td></tr>" for m in report.missing) + "</table>")
    if report.notes:
        body.append("<h2>Notes</h2><ul>" + "".join(
            f"<li class=dim>{escape(n)}</li>" for n in report.notes) + "</ul>")
    return ("<!doctype html><html><head><meta charset=utf-8><title>netsleuth diagnosis</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")
