"""`netsleuth collect`: gather the cluster and its nodes into one bundle.

`collect` is the typer command the main CLI registers; `collect_bundle(options)` is the same
work as a function (used by `diagnose --live`). Partial collection is the normal case during
an incident: every failure is recorded in the manifest and the command only fails (exit 3)
when nothing at all could be collected. Exit codes are documented in docs/collect.md.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from netsleuth.collect.bundle import (
    FAILED,
    BundleWriter,
    ClusterStatus,
    CollectIssue,
    Manifest,
    NodeStatus,
    SourceEntry,
    utc_now,
)
from netsleuth.collect.dumps import ingest
from netsleuth.collect.k8s import (
    K8sOptions,
    NullReporter,
    collect_agent_snapshots,
    collect_cluster,
    node_addresses,
)
from netsleuth.collect.kubectl_debug import DEFAULT_IMAGE, DebugOptions, collect_debug
from netsleuth.collect.local import NodeSnapshot, collect_local, write_node
from netsleuth.collect.ssh import SshOptions, SshTarget, collect_ssh
from netsleuth.errors import CollectError, ParseError

NODE_METHODS = ("auto", "local", "ssh", "kubectl-debug", "agent", "none")

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NOTHING = 3
EXIT_OUTPUT = 4

# Files whose presence shows this host is a Kubernetes node (kubeadm and most distributions).
_KUBELET_MARKERS = ("/var/lib/kubelet/config.yaml", "/etc/kubernetes/kubelet.conf",
                    "/var/lib/kubelet/kubeconfig")


class NothingCollected(CollectError):
    """Neither the API nor any node gave anything; the (manifest-only) bundle is at `path`."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.manifest = manifest
        reasons = [e.message for e in manifest.cluster.errors]
        for name, node in manifest.nodes.items():
            reasons += [f"{name}: {e.message}" for e in node.errors]
        summary = "; ".join(reasons[:3]) or "no source was configured"
        super().__init__(str(path), f"nothing could be collected ({summary})")


class BadInput(CollectError):
    """A --from-dump source that cannot be read (wraps the ParseError/CollectError)."""


@dataclass(frozen=True, slots=True)
class CollectOptions:
    output: Path
    context: str | None = None
    kubeconfig: Path | None = None
    nodes_via: str = "auto"
    nodes: tuple[str, ...] = ()  # NAME or NAME=HOST
    ssh: SshOptions = field(default_factory=SshOptions)
    debug_image: str = DEFAULT_IMAGE
    tail: int = 500
    pods: tuple[str, ...] = ()
    quiet: bool = False
    from_dump: tuple[Path, ...] = ()
    api_timeout: float = 15.0
    agent_namespace: str = "netsleuth"
    agent_since: int = 900


def parse_node_specs(specs: tuple[str, ...]) -> list[SshTarget]:
    """`NAME` or `NAME=HOST` (the address to connect to when NAME does not resolve)."""
    targets = []
    for spec in specs:
        name, _, host = spec.partition("=")
        name, host = name.strip(), host.strip()
        if not name:
            raise typer.BadParameter(f"empty node name in {spec!r}", param_hint="--nodes")
        targets.append(SshTarget(name=name, host=host or name))
    return targets


# -- progress --------------------------------------------------------------------------------


class RichReporter:
    """Progress bars on stderr: one per phase (API resources, logs, nodes)."""

    _LABELS = {"cluster": "Kubernetes API", "logs": "pod logs", "nodes": "nodes"}

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def start(self, task: str, total: int) -> None:
        label = self._LABELS.get(task, task)
        self.tasks[task] = self.progress.add_task(label, total=max(total, 0))
        if total == 0:
            self.progress.update(self.tasks[task], total=1, completed=1)

    def advance(self, task: str, note: str = "") -> None:
        if task in self.tasks:
            label = self._LABELS.get(task, task)
            self.progress.update(self.tasks[task], advance=1,
                                 description=f"{label} [dim]{note}[/]" if note else label)

    def node_done(self, name: str, snap: NodeSnapshot) -> None:
        self.advance("nodes", name)
        state = "[red]failed[/]" if not snap.files else (
            "[yellow]partial[/]" if snap.errors else "[green]ok[/]")
        detail = f" — {snap.errors[0].message}" if snap.errors else ""
        self.progress.console.print(f"  node {name}: {state} ({len(snap.files)} files){detail}",
                                    highlight=False)


class QuietReporter(NullReporter):
    def node_done(self, name: str, snap: NodeSnapshot) -> None:
        pass


@contextmanager
def _reporter(quiet: bool) -> Iterator[RichReporter | QuietReporter]:
    if quiet:
        yield QuietReporter()
        return
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=False) as progress:
        yield RichReporter(progress)


# -- orchestration ---------------------------------------------------------------------------


def _this_host_is_a_node(cluster_nodes: dict[str, str]) -> bool:
    host = socket.gethostname()
    names = {n.lower() for n in cluster_nodes}
    if cluster_nodes:
        return host.lower() in names or host.split(".")[0].lower() in names
    return any(Path(marker).exists() for marker in _KUBELET_MARKERS)


def _record_nodes(writer: BundleWriter, via: str, snaps: dict[str, NodeSnapshot],
                  entries: dict[str, NodeStatus]) -> None:
    for name, snap in snaps.items():
        entries[name] = write_node(writer, name, via, snap)


def _collect_nodes(
    options: CollectOptions, method: str, cluster_nodes: dict[str, str],
    writer: BundleWriter, reporter: RichReporter | QuietReporter,
) -> tuple[dict[str, NodeStatus], list[CollectIssue], list[SourceEntry]]:
    entries: dict[str, NodeStatus] = {}
    problems: list[CollectIssue] = []
    sources: list[SourceEntry] = []
    targets = parse_node_specs(options.nodes)
    if not targets and method in {"ssh", "kubectl-debug"}:
        targets = [SshTarget(name, host) for name, host in sorted(cluster_nodes.items())]
        if not targets:
            problems.append(CollectIssue(
                "nodes", "config",
                f"--nodes-via {method} needs --nodes NAME,... when the API cannot list nodes"))
            return entries, problems, sources
    if method == "local":
        reporter.start("nodes", 1)
        snap = collect_local()
        name = targets[0].name if targets else socket.gethostname()
        reporter.node_done(name, snap)
        _record_nodes(writer, "local", {name: snap}, entries)
        sources.append(SourceEntry("local", name))
    elif method == "ssh":
        reporter.start("nodes", len(targets))
        snaps = collect_ssh(targets, options.ssh,
                            on_done=lambda t, s: reporter.node_done(t.name, s))
        _record_nodes(writer, "ssh", snaps, entries)
        sources.append(SourceEntry("ssh", ",".join(t.name for t in targets)))
    elif method == "kubectl-debug":
        reporter.start("nodes", len(targets))
        debug = DebugOptions(image=options.debug_image, kubeconfig=options.kubeconfig,
                             context=options.context, concurrency=options.ssh.concurrency)
        snaps = collect_debug([t.name for t in targets], debug, on_done=reporter.node_done)
        _record_nodes(writer, "kubectl-debug", snaps, entries)
        sources.append(SourceEntry("kubectl-debug", ",".join(t.name for t in targets)))
    elif method == "agent":
        result = collect_agent_snapshots(
            _k8s_options(options), namespace=options.agent_namespace,
            since_seconds=options.agent_since)
        wanted = {t.name for t in targets}
        records = {n: r for n, r in result.records.items() if not wanted or n in wanted}
        reporter.start("nodes", len(records))
        for name, record in sorted(records.items()):
            reporter.node_done(name, record.snapshot)
        _record_nodes(writer, "agent", {n: r.snapshot for n, r in records.items()}, entries)
        problems.extend(result.errors)
        for name in sorted(wanted - set(records)):
            entries[name] = NodeStatus(FAILED, "agent", errors=(CollectIssue(
                name, "not-in-source", "no agent snapshot for this node"),))
        sources.append(SourceEntry("agent", options.agent_namespace))
    return entries, problems, sources


def _k8s_options(options: CollectOptions) -> K8sOptions:
    names = {t.name for t in parse_node_specs(options.nodes)}
    return K8sOptions(
        kubeconfig=options.kubeconfig, context=options.context, tail=options.tail,
        pods=options.pods, request_timeout=options.api_timeout,
        log_nodes=frozenset(names) if names else None,
    )


def collect_bundle(options: CollectOptions) -> Path:
    """Collect everything `options` asks for into a bundle; returns the bundle's path.

    Raises NothingCollected (a CollectError) when the bundle holds no data at all, and
    CollectError when the output cannot be written.
    """
    if options.nodes_via not in NODE_METHODS:
        raise CollectError("--nodes-via", f"unknown method {options.nodes_via!r}; "
                           f"choose one of {', '.join(NODE_METHODS)}")
    writer = BundleWriter(options.output)
    try:
        with _reporter(options.quiet) as rich_reporter:
            return _collect_into(options, writer, rich_reporter)
    except OSError as exc:
        writer.abort()
        raise CollectError(str(options.output), f"cannot write the bundle: {exc}") from exc
    except BaseException:
        writer.abort()
        raise


def _collect_into(options: CollectOptions, writer: BundleWriter,
                  reporter: RichReporter | QuietReporter) -> Path:
    sources: list[SourceEntry] = []
    cluster: ClusterStatus | None = None
    nodes: dict[str, NodeStatus] = {}

    for dump in options.from_dump:
        try:
            result = ingest(dump, writer)
        except CollectError as exc:
            raise BadInput(exc.target, exc.message) from exc
        except (ParseError, OSError) as exc:
            raise BadInput(str(dump), str(exc)) from exc
        sources += result.sources
        if result.cluster is not None:
            cluster = result.cluster
        via = "sosreport"
        _record_nodes(writer, via, result.nodes, nodes)

    # With only offline evidence given, the API is not contacted unless asked to.
    use_api = not options.from_dump or options.context or options.kubeconfig
    cluster_nodes: dict[str, str] = {}
    if use_api:
        result_api = collect_cluster(_k8s_options(options), writer, reporter)
        sources.append(SourceEntry("kubernetes-api", result_api.status.context))
        cluster_nodes = node_addresses(result_api.nodes)
        if cluster is None or result_api.status.status != FAILED:
            cluster = result_api.status

    method = options.nodes_via
    if method == "auto":
        method = "local" if use_api and _this_host_is_a_node(cluster_nodes) else "none"
    node_entries, problems, node_sources = _collect_nodes(
        options, method, cluster_nodes, writer, reporter)
    nodes.update(node_entries)
    sources += node_sources

    cluster = cluster or ClusterStatus(status=FAILED)
    if problems:
        cluster = replace(cluster, errors=cluster.errors + tuple(problems))
    manifest = Manifest(created=utc_now(), sources=tuple(sources), cluster=cluster,
                        nodes=nodes, redactions=writer.redactions)
    path = writer.finish(manifest)
    if not manifest.collected_anything():
        raise NothingCollected(path, manifest)
    return path


# -- typer command ---------------------------------------------------------------------------


def _split_csv(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return tuple(out)


def collect(
    output: Annotated[Path, typer.Option("-o", "--output",
                      help="bundle to write: a directory, or a .tar.gz/.tgz archive")],
    context: Annotated[str | None, typer.Option(help="kubeconfig context")] = None,
    kubeconfig: Annotated[Path | None, typer.Option(help="kubeconfig file")] = None,
    nodes_via: Annotated[str, typer.Option(
        help="how to read node state: auto (local when this host is a node), local, ssh, "
             "kubectl-debug, agent, none")] = "auto",
    nodes: Annotated[list[str] | None, typer.Option(
        help="nodes to collect, NAME or NAME=ADDRESS, comma-separated or repeated "
             "(default: all nodes the API lists)")] = None,
    ssh_user: Annotated[str | None, typer.Option(help="SSH user")] = None,
    ssh_key: Annotated[Path | None, typer.Option(
        help="SSH private key (default: agent and ~/.ssh keys)", exists=True,
        dir_okay=False)] = None,
    ssh_port: Annotated[int, typer.Option(help="SSH port")] = 22,
    sudo: Annotated[bool, typer.Option(help="run node commands with sudo -n")] = False,
    known_hosts: Annotated[str | None, typer.Option(
        help="known_hosts file (default ~/.ssh/known_hosts); 'none' disables host key "
             "verification (unsafe)")] = None,
    ssh_timeout: Annotated[float, typer.Option(help="seconds per node, all commands "
                                               "included")] = 60.0,
    ssh_concurrency: Annotated[int, typer.Option(help="nodes worked on at once (ssh and "
                                                 "kubectl-debug)")] = 16,
    debug_image: Annotated[str, typer.Option(help="image for kubectl debug node pods")]
        = DEFAULT_IMAGE,
    tail: Annotated[int, typer.Option(help="log lines per container")] = 500,
    pod: Annotated[list[str] | None, typer.Option(
        help="also collect this pod's logs, NAMESPACE/NAME (repeatable)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
    from_dump: Annotated[list[Path] | None, typer.Option(
        help="ingest a kubectl cluster-info dump (dir or file) or a sosreport "
             "(dir or archive); repeatable")] = None,
    api_timeout: Annotated[float, typer.Option(help="seconds per API request")] = 15.0,
    agent_namespace: Annotated[str, typer.Option(help="namespace of the netsleuth agent "
                                                 "DaemonSet (--nodes-via agent)")] = "netsleuth",
) -> None:
    """Collect cluster objects, logs and node network state into a bundle."""
    if nodes_via not in NODE_METHODS:
        raise typer.BadParameter(f"choose one of {', '.join(NODE_METHODS)}",
                                 param_hint="--nodes-via")
    if ssh_concurrency < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--ssh-concurrency")
    verify = not (known_hosts is not None and known_hosts.lower() == "none")
    err = Console(stderr=True)
    if not verify:
        err.print("[yellow]warning:[/] SSH host keys are not verified (--known-hosts none)")
    options = CollectOptions(
        output=output, context=context, kubeconfig=kubeconfig, nodes_via=nodes_via,
        nodes=_split_csv(nodes),
        ssh=SshOptions(user=ssh_user, key=ssh_key, port=ssh_port, sudo=sudo,
                       known_hosts=Path(known_hosts) if known_hosts and verify else None,
                       verify_host_keys=verify, timeout=ssh_timeout,
                       concurrency=ssh_concurrency),
        debug_image=debug_image, tail=tail, pods=_split_csv(pod), quiet=quiet,
        from_dump=tuple(from_dump or ()), api_timeout=api_timeout,
        agent_namespace=agent_namespace,
    )
    try:
        path = collect_bundle(options)
    except BadInput as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    except NothingCollected as exc:
        err.print(f"[red]error:[/] {exc}")
        err.print(f"the manifest with every error is in {exc.path}")
        raise typer.Exit(EXIT_NOTHING) from exc
    except CollectError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_OUTPUT) from exc
    if not quiet:
        err.print(f"bundle written to {path}")
    print(path)


def main() -> None:  # pragma: no cover - `python -m netsleuth.collect.cli`
    app = typer.Typer(add_completion=False)
    app.command()(collect)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
