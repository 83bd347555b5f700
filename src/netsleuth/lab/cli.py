"""`netsleuth lab ...`: the real-kernel lab on the command line (mounted by netsleuth.cli)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from netsleuth.errors import NetsleuthError
from netsleuth.lab import engine
from netsleuth.lab import state as st
from netsleuth.lab.scenario import load_scenario, scenario_names

app = typer.Typer(
    name="lab",
    help="Reproduce incidents for real in network namespaces (needs root).",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def _friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn netsleuth errors and Ctrl-C into one line and a non-zero exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except NetsleuthError as exc:
            err_console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; what the lab had created is removed")
            raise typer.Exit(130) from None

    return wrapper


@app.command()
@_friendly
def up(
    scenario: Annotated[str, typer.Argument(help="shipped scenario name or a .yaml path")],
) -> None:
    """Build a scenario: namespaces, links, addresses, routes, rules, iptables, listeners."""
    sc = load_scenario(scenario)
    state = engine.up(sc)
    nodes = ", ".join(f"{k} ({v})" for k, v in state.namespaces.items())
    console.print(f"lab [bold]{sc.name}[/bold] is up, prefix {state.prefix}: {nodes}")
    if state.listeners:
        console.print("listeners: " + ", ".join(lp.name for lp in state.listeners))


@app.command()
@_friendly
def down(
    scenario: Annotated[str | None, typer.Argument(help="scenario to remove")] = None,
    all_: Annotated[bool, typer.Option("--all", help="remove every lab namespace (by prefix)")] = False,
) -> None:
    """Remove everything a lab created (or, with --all, every leftover of any lab run)."""
    if all_:
        removed = engine.down_all()
        console.print("removed: " + (", ".join(removed) if removed else "nothing (no leftovers)"))
        return
    state = engine.down(engine.find(scenario).scenario)
    console.print(f"lab {state.scenario} is down ({len(state.all_namespaces())} namespaces removed)")


@app.command()
@_friendly
def probe(
    node: str,
    target: Annotated[str, typer.Argument(help="IP:PORT (tcp/udp) or IP (icmp)")],
    proto: Annotated[str, typer.Option(help="tcp, udp or icmp")] = "tcp",
    from_pod: Annotated[str | None, typer.Option("--from-pod", help="probe from this pod")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 1.5,
) -> None:
    """Open a real connection from a node's (or pod's) namespace and report what happened."""
    if proto not in ("tcp", "udp", "icmp"):
        raise typer.BadParameter("--proto must be tcp, udp or icmp")
    state = engine.find_node(node)
    res = engine.probe_node(state, node, target, proto, from_pod, timeout=timeout)
    if fmt == "json":
        print(json.dumps(res.to_dict(), indent=2))
        return
    who = f"{node}/{from_pod}" if from_pod else node
    if res.result == "connected":
        console.print(
            f"{who} → {proto} {target}: [green]connected[/green] (local {res.local}, peer {res.peer})"
        )
    elif res.result == "errno":
        console.print(f"{who} → {proto} {target}: [red]{res.errno}[/red]")
    else:
        console.print(f"{who} → {proto} {target}: [yellow]timeout[/yellow] after {timeout}s")
    if res.listener:
        console.print(
            f"  listener {res.listener.get('listener')} saw local "
            f"{res.listener.get('local')}, peer {res.listener.get('peer')}"
        )


def _change(kind: str, scenario: str, name: str) -> None:
    state = engine.find(scenario)
    sc = load_scenario(state.source or scenario)
    change = sc.change(kind, name)
    engine.apply(sc, state, change)
    console.print(
        f"{kind} {name} applied to lab {sc.name}" + (f": {change.description}" if change.description else "")
    )


@app.command()
@_friendly
def fault(scenario: str, name: str) -> None:
    """Apply a named fault of a running scenario."""
    _change("fault", scenario, name)


@app.command()
@_friendly
def fix(scenario: str, name: str) -> None:
    """Apply a named fix of a running scenario."""
    _change("fix", scenario, name)


@app.command()
@_friendly
def snapshot(
    node: str,
    out: Annotated[Path, typer.Option("-o", "--out", help="directory to write the snapshot to")],
) -> None:
    """Write a node snapshot (docs/node-snapshot.md layout) from the live namespace."""
    state = engine.find_node(node)
    files = engine.snapshot(state, node, out)
    console.print(f"snapshot of {node} written to {out}: {', '.join(files)}")


@app.command("list")
@_friendly
def list_() -> None:
    """Shipped scenarios, running labs and leftover namespaces."""
    table = Table("scenario", "state", "prefix", "applied")
    running = {s.scenario: s for s in st.running()}
    for name in scenario_names():
        s = running.pop(name, None)
        table.add_row(name, "up" if s else "-", s.prefix if s else "", ", ".join(s.applied) if s else "")
    for name, s in running.items():
        table.add_row(name, "up", s.prefix, ", ".join(s.applied))
    console.print(table)
    known = {n for s in st.running() for n in s.all_namespaces()}
    stray = [n for n in engine.leftovers() if n not in known]
    if stray:
        console.print(f"leftover namespaces (remove with `lab down --all`): {', '.join(stray)}")


@app.command()
@_friendly
def check(scenario: str) -> None:
    """Build a scenario and run the probes its `checks` section expects; exit 1 on a mismatch."""
    sc = load_scenario(scenario)
    outcomes = engine.run_checks(sc)
    failed = 0
    for o in outcomes:
        who = f"{o.probe.node}/{o.probe.pod}" if o.probe.pod else o.probe.node
        after = " + ".join(o.after) or "up"
        mark = "[green]ok[/green]" if o.ok else "[red]FAIL[/red]"
        console.print(
            f"{mark} after {after}: {who} → {o.probe.proto} {o.probe.target}: "
            f"{o.result.result} {o.result.errno or ''} " + "; ".join(o.problems)
        )
        failed += not o.ok
    console.print(f"{len(outcomes) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@app.command()
@_friendly
def diff(
    n: Annotated[int, typer.Option("-n", help="number of random cases")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="first seed")] = 0,
    out: Annotated[Path | None, typer.Option("-o", help="write disagreements here (JSON)")] = None,
    keep: Annotated[bool, typer.Option(help="print every case, not only disagreements")] = False,
    record: Annotated[Path | None, typer.Option(help="add disagreements to this regression file")] = None,
) -> None:
    """Kernel-differential test: random node configs, real probes vs netsleuth's trace."""
    from netsleuth.lab.differential import run_many

    report = run_many(n, seed, progress=lambda line: console.print(line, highlight=False) if keep else None)
    for d in report.disagreements:
        console.print(f"[red]disagree[/red] {d.summary()}", highlight=False)
    console.print(report.summary(), highlight=False)
    if out is not None:
        out.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    if record is not None:
        from netsleuth.lab.differential import record_known

        added = record_known(report, record)
        console.print(f"{added} new disagreements recorded in {record}")
    if report.disagreements:
        raise typer.Exit(1)
