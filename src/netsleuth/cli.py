"""The `netsleuth` command line: thin wiring from options to the core and the renderers."""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from netsleuth import __version__
from netsleuth.errors import NetsleuthError

app = typer.Typer(
    name="netsleuth",
    help="Diagnose Kubernetes networking failures from evidence, by simulating the Linux "
    "packet path.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])
INTERNAL_ERROR = 70  # EX_SOFTWARE (sysexits.h)


class Format(StrEnum):
    text = "text"
    json = "json"


class ReportFormat(StrEnum):
    text = "text"
    json = "json"
    html = "html"


def friendly_errors(fn: F) -> F:
    """Turn every NetsleuthError into a one/two-line message and exit code 1: user input must
    never end in a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NetsleuthError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except Exception as exc:  # a bug, not bad input: say so, and where, in two lines
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            err.print(f"[bold red]internal error:[/] {exc!r} at {frame.filename}:{frame.lineno}",
                      highlight=False, soft_wrap=True)
            err.print("This is a netsleuth bug; please report it with the command you ran.")
            raise typer.Exit(INTERNAL_ERROR) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        out.print(f"netsleuth {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """netsleuth: find the root cause of a Kubernetes networking failure in seconds."""


@app.command()
@friendly_errors
def trace(
    to: Annotated[str, typer.Option("--to", help="Destination IP[:PORT], e.g. 10.96.0.1:443.")],
    node: Annotated[Path | None, typer.Option("--node", "-n", help="Node snapshot directory "
                                              "(docs/node-snapshot.md).")] = None,
    from_: Annotated[str, typer.Option("--from", help="'host' (locally generated), IP (a local "
                                       "address, or a pod/peer routed via an interface) or "
                                       "IP@INTERFACE (received on that interface).")] = "host",
    proto: Annotated[str, typer.Option("--proto", "-p", help="tcp, udp, sctp or icmp.")] = "tcp",
    sport: Annotated[int | None, typer.Option("--sport", min=0, max=65535,
                                              help="Source port.")] = None,
    mark: Annotated[str, typer.Option("--mark", help="Initial packet mark (fwmark).")] = "0",
    route_add: Annotated[list[str] | None, typer.Option(
        "--route-add", help="What-if: add a route first, in `ip route` words "
        "(e.g. 'default via 192.168.56.4 dev enp0s8'). Repeatable.")] = None,
    bundle: Annotated[Path | None, typer.Option(
        "--bundle", "-b", help="Trace across the nodes of a bundle instead: --from NODE "
        "(that node's host) or NODE:IP (a local address or a pod of that node).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
) -> None:
    """Follow one packet through a node's routing and netfilter, step by step.

    With --bundle the packet is followed from node to node across a bundle's nodes.
    """
    from netsleuth.datapath.origin import check_families, parse_endpoint, resolve_origin
    from netsleuth.datapath.trace import NodeDatapath
    from netsleuth.render.trace_text import render_trace
    from netsleuth.snapshot.node_dir import load_node_snapshot, with_extra_routes

    if proto.lower() not in ("tcp", "udp", "sctp", "icmp"):
        raise typer.BadParameter(f"{proto!r}: expected tcp, udp, sctp or icmp", param_hint="--proto")
    try:
        mark_value = int(mark, 0)
        if not 0 <= mark_value <= 0xFFFFFFFF:
            raise ValueError(mark)
    except ValueError:
        raise typer.BadParameter(f"{mark!r}: expected a 32-bit mark such as 0x4000",
                                 param_hint="--mark") from None
    if (node is None) == (bundle is None):
        raise typer.BadParameter("give either --node DIR or --bundle PATH", param_hint="--node")
    if bundle is not None:
        if route_add or sport is not None or mark_value:
            raise typer.BadParameter("--route-add, --sport and --mark work with --node only",
                                     param_hint="--bundle")
        _trace_bundle(bundle, from_, to, proto.lower(), fmt)
        return
    assert node is not None
    state = load_node_snapshot(node)
    for spec in route_add or ():
        state = with_extra_routes(state, spec)
    dst, dport = parse_endpoint(to)
    origin = resolve_origin(state, from_)
    check_families(origin, dst)
    result = NodeDatapath(state).trace(dst=dst, dport=dport, proto=proto, src=origin.src,
                                       iif=origin.iif, sport=sport, mark=mark_value)
    if fmt == Format.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        out.print(render_trace(result))


@app.command()
@friendly_errors
def diagnose(
    path: Annotated[Path | None, typer.Argument(
        help="A bundle (directory or .tar.gz), a node snapshot directory, a `kubectl "
        "cluster-info dump` directory, or a pasted terminal transcript (any text file).")] = None,
    live: Annotated[bool, typer.Option("--live", help="Collect from the current cluster "
                                       "first (see `netsleuth collect`), then diagnose.")] = False,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="Output format: text "
                                              "(terminal), json (schema netsleuth.diagnosis/1) "
                                              "or html (one self-contained file).")
                   ] = ReportFormat.text,
    list_detectors: Annotated[bool, typer.Option(
        "--list-detectors", help="List every detector (failure mode, evidence it needs) and "
        "exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the evidence of "
                                          "every symptom, all notes and assumptions.")] = False,
) -> None:
    """Name the root cause of a networking failure, with evidence, consequences and fixes.

    Exit code: 0 no root cause found, 1 bad input, 2 bad usage, 3 root cause(s) found.
    """
    from netsleuth.diagnose.engine import diagnose as run
    from netsleuth.render.diagnosis_text import render_report
    from netsleuth.snapshot.inputs import load_evidence

    if list_detectors:
        from rich.table import Table

        from netsleuth.diagnose.registry import load_detectors

        table = Table("id", "detects", "catalog mode", "needs (any of)")
        for info in sorted(load_detectors().values(), key=lambda d: d.id):
            table.add_row(info.id, info.title, info.mode, ", ".join(info.needs))
        out.print(table)
        return
    if live == (path is not None):
        raise typer.BadParameter("give either PATH or --live", param_hint="PATH")
    if live:
        from datetime import UTC, datetime

        from netsleuth.collect.cli import CollectOptions, collect_bundle

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = collect_bundle(CollectOptions(output=Path(f"netsleuth-{stamp}.tar.gz"),
                                             quiet=fmt != ReportFormat.text))
        err.print(f"collected into {path}")
    assert path is not None
    report = run(load_evidence(path))
    if fmt == ReportFormat.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    elif fmt == ReportFormat.html:
        from netsleuth.render.diagnosis_html import render_html

        sys.stdout.write(render_html(report))
    else:
        out.print(render_report(report, verbose=verbose))
    raise typer.Exit(3 if report.found else 0)


def _trace_bundle(bundle: Path, from_: str, to: str, proto: str, fmt: Format) -> None:
    from netsleuth.datapath.fabric import Fabric
    from netsleuth.datapath.origin import (
        OriginError,
        check_families,
        parse_endpoint,
        resolve_origin,
    )
    from netsleuth.render.trace_text import render_fabric
    from netsleuth.snapshot.inputs import load_evidence

    ev = load_evidence(bundle)
    if not ev.nodes:
        raise OriginError(f"{bundle}: no node data-path evidence to trace through")
    name, _, where = from_.partition(":")
    if name not in ev.nodes:
        raise OriginError(f"--from {from_!r}: no node {name!r} in {bundle} (nodes: "
                          f"{', '.join(sorted(ev.nodes))})")
    state = ev.nodes[name].state
    origin = resolve_origin(state, where or "host")
    dst, dport = parse_endpoint(to)
    check_families(origin, dst)
    fabric = Fabric({n: e.state for n, e in ev.nodes.items()})
    result = fabric.trace(name, dst=dst, dport=dport, proto=proto, src=origin.src, iif=origin.iif)
    if fmt == Format.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        out.print(render_fabric(result))


def _mount(module: str, attr: str, name: str, *, group: bool) -> None:
    """Register a sub-command that lives in an edge package (lab, collect)."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return
    obj = getattr(mod, attr, None)
    if obj is None:
        return
    if group:
        app.add_typer(obj, name=name)
    else:
        app.command(name=name)(friendly_errors(obj))


_mount("netsleuth.lab.cli", "app", "lab", group=True)
_mount("netsleuth.collect.cli", "collect", "collect", group=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
