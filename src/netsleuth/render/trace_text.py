"""A trace for people: the verdict first, then each step with the rule and its source line."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from netsleuth.datapath.errnos import strerror
from netsleuth.datapath.fabric import FabricTrace
from netsleuth.datapath.trace_model import Outcome, Step, Trace, Verdict

VERDICT_STYLE = {
    Verdict.DELIVERED_LOCAL: "bold green",
    Verdict.SENT: "bold green",
    Verdict.FORWARDED: "bold green",
    Verdict.DROPPED: "bold red",
    Verdict.REJECTED: "bold red",
    Verdict.UNROUTABLE: "bold red",
}


def outcome_sentence(o: Outcome, local: bool) -> str:
    """One line that says what happens, in the words a client's error would use."""
    if o.verdict == Verdict.UNROUTABLE:
        if local and o.errno:
            return f"connect() fails at the route lookup: {o.errno} ({strerror(o.errno)})"
        return "no route: the node drops it" + (f" and answers {o.icmp}" if o.icmp else "")
    if o.verdict == Verdict.DELIVERED_LOCAL:
        return f"delivered to a local socket on {o.packet.endpoint('dst')}"
    if o.verdict in (Verdict.SENT, Verdict.FORWARDED):
        verb = "sent" if o.verdict == Verdict.SENT else "forwarded"
        return (f"{verb} out {o.interface} to next hop {o.next_hop} as "
                f"{o.packet.endpoint('src')} → {o.packet.endpoint('dst')}"
                + (" (masqueraded)" if o.masquerade else ""))
    if o.verdict == Verdict.REJECTED:
        client = f": the client gets {o.errno} ({strerror(o.errno)})" if o.errno else ""
        return f"rejected with {o.icmp}{client}"
    if o.errno:
        return f"dropped: sendmsg() fails with {o.errno} ({strerror(o.errno)})"
    return "dropped silently" + (": a TCP client's connect() times out" if local else "")


def _where(s: Step) -> str:
    if s.hook in ("route", "reroute"):
        return s.hook + (f" (table {s.table}, {s.chain})" if s.table else "")
    return s.hook if not s.table else f"{s.hook} {s.table}" + (f"/{s.chain}" if s.chain else "")


def _step_row(i: int, s: Step) -> tuple[str, str, Text, str]:
    rule = Text(s.rule or "")
    if s.source:
        rule.append(f"  [{s.source}]", style="dim")
    # A successful lookup speaks for itself; a failed one shows every rule it tried.
    if s.action.startswith("no usable route") or s.action.startswith("dropped"):
        for line in s.detail:
            rule.append(f"\n  {line}", style="dim")
    return str(i), _where(s), rule, s.action


def render_trace(trace: Trace) -> RenderableType:
    local = trace.packet.iif is None
    main = trace.main
    header = Text()
    header.append(f"node {trace.node}: ", style="bold")
    header.append(f"{trace.origin} → {trace.packet.endpoint('dst')}/{trace.packet.proto}\n")
    header.append(f"{main.verdict.value.upper()}", style=VERDICT_STYLE[main.verdict])
    header.append(f"  {outcome_sentence(main, local)}")
    parts: list[RenderableType] = [header]

    steps = Table(title="Path" + (" (most likely outcome)" if len(trace.outcomes) > 1 else ""),
                  title_justify="left", show_lines=False, expand=True)
    for col in ("#", "where", "rule / route", "action"):
        steps.add_column(col, overflow="fold")
    for i, s in enumerate(main.steps, 1):
        steps.add_row(*_step_row(i, s))
    parts.append(steps)

    if trace.unreached:
        never = Table(title="Never reached (the packet never got to these rules)",
                      title_justify="left", expand=True, title_style="bold yellow")
        for col in ("#", "where", "rule", "would do"):
            never.add_column(col, overflow="fold")
        for i, s in enumerate(trace.unreached, 1):
            never.add_row(*_step_row(i, s))
        parts.append(never)

    if len(trace.outcomes) > 1:
        table = Table(title="All possible outcomes", title_justify="left", expand=True)
        for col in ("probability", "verdict", "destination", "source", "via"):
            table.add_column(col, overflow="fold")
        for o in trace.outcomes:
            prob = "uncertain" if o.probability is None else f"{o.probability:.1%}"
            via = f"{o.interface} → {o.next_hop}" if o.interface else (o.errno or o.icmp or "")
            table.add_row(prob, o.verdict.value, o.packet.endpoint("dst"),
                          o.packet.endpoint("src"), via)
        parts.append(table)

    if trace.assumptions:
        text = Text("Assumed:\n", style="dim bold")
        for a in trace.assumptions:
            text.append(f"  • {a}\n", style="dim")
        parts.append(text)
    return Panel(Group(*parts), title="netsleuth trace", title_align="left")


def render_fabric(ft: FabricTrace) -> RenderableType:
    """A path across nodes: for each possible outcome, the hops and each node's verdict."""
    parts: list[RenderableType] = []
    head = Text()
    head.append(f"from {ft.start}: ", style="bold")
    head.append(f"{ft.packet.endpoint('src') if ft.packet.src else 'host'} → "
                f"{ft.packet.endpoint('dst')}/{ft.packet.proto}\n")
    main = ft.main
    head.append(main.end.upper(), style="bold green" if main.end.startswith("delivered")
                else "bold red")
    head.append(f"  at {main.where}")
    parts.append(head)
    for i, o in enumerate(ft.outcomes, 1):
        prob = "uncertain" if o.probability is None else f"{o.probability:.1%}"
        table = Table(title=f"Path {i} ({prob}): {o.end} at {o.where}", title_justify="left",
                      expand=True)
        for col in ("node", "arrived", "verdict on the node", "steps"):
            table.add_column(col, overflow="fold")
        for hop in o.hops:
            local = hop.outcome.packet.iif is None and hop.how == "start"
            table.add_row(hop.node, hop.how, outcome_sentence(hop.outcome, local),
                          str(len(hop.outcome.steps)))
        parts.append(table)
        if o.assumptions:
            parts.append(Text("".join(f"  • {a}\n" for a in o.assumptions), style="dim"))
    return Panel(Group(*parts), title="netsleuth trace across nodes", title_align="left")
