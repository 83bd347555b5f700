"""Ingest evidence users already have: `kubectl cluster-info dump` output and sosreports.

- `kubectl cluster-info dump --output-directory DIR` writes `nodes.json` and, per namespace,
  `<ns>/{events,services,daemonsets,pods,...}.json` plus `<ns>/<pod>/logs.txt`, where every
  container's log sits between `==== START logs for container C of pod NS/P ====` and
  `==== END logs for container C of pod NS/P ====` lines. Without a directory it prints the
  same lists and log sections to stdout, one after the other; a file with that output is
  accepted too. (kubectl: pkg/cmd/clusterinfo/clusterinfo_dump.go.)
- A sosreport (directory, or .tar.xz/.tar.gz/.tar) keeps each command's output under
  `sos_commands/<plugin>/<command with spaces as underscores>`: `networking/ip_-d_address`,
  `networking/ip_route_show_table_all`, `networking/ip_-4_rule_list`, `kernel/sysctl_-a`,
  and iptables as `iptables-save` (older sos) or per-table `iptables_-t_nat_-nvL` listings
  (`firewall_tables` plugin in sos 4). They map onto the node snapshot file names.

Both become bundle content: cluster-info dumps give cluster/*.json and logs/, sosreports give
one nodes/<hostname>/ directory.

Errors: `ingest` raises DumpError, whose `target` is the path the user gave and whose text is
relative to it (`nodes.json:3: expected ...`, `line 3: expected ...`, `neither a ...`), because
its caller (`netsleuth collect --from-dump`) prints `<path>: <error>`. A ParseError behind it
is kept as `__cause__`.
"""

from __future__ import annotations

import json
import os
import re
import reprlib
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from netsleuth.collect.bundle import (
    OK,
    PARTIAL,
    BundleWriter,
    ClusterStatus,
    CollectIssue,
    SourceEntry,
    safe_component,
)
from netsleuth.collect.local import NodeSnapshot
from netsleuth.errors import CollectError, ParseError

Json = dict[str, Any]

# cluster-info dump file stem / List kind → bundle resource, item kind, item apiVersion.
_DUMP_RESOURCES = {
    "nodes": ("nodes", "Node", "v1"),
    "events": ("events", "Event", "v1"),
    "services": ("services", "Service", "v1"),
    "daemonsets": ("daemonsets", "DaemonSet", "apps/v1"),
    "pods": ("pods", "Pod", "v1"),
}
_LIST_KINDS = {
    "NodeList": "nodes", "EventList": "events", "ServiceList": "services",
    "DaemonSetList": "daemonsets", "PodList": "pods",
}
# What a cluster-info dump never contains; recorded so the diagnosis knows it is missing.
_NOT_IN_DUMP = ("endpointslices", "endpoints", "networkpolicies", "configmaps")

_LOG_START = re.compile(r"^==== START logs for container (\S+) of pod ([^/\s]+)/(\S+) ====$")
_LOG_END = re.compile(r"^==== END logs for container (\S+) of pod ([^/\s]+)/(\S+) ====$")

# Node snapshot file ← candidate sosreport paths, best first.
SOS_FILES: Mapping[str, tuple[str, ...]] = {
    "hostname": ("hostname", "sos_commands/general/hostname", "sos_commands/host/hostname",
                 "etc/hostname"),
    "ip-addr.txt": ("sos_commands/networking/ip_-d_address", "sos_commands/networking/ip_address",
                    "sos_commands/networking/ip_addr"),
    "ip-link.txt": ("sos_commands/networking/ip_-d_link", "sos_commands/networking/ip_link"),
    "ip-route.txt": ("sos_commands/networking/ip_route_show_table_all",),
    "ip-rule.txt": ("sos_commands/networking/ip_rule", "sos_commands/networking/ip_rule_show",
                    "sos_commands/networking/ip_-4_rule_list"),
    "iptables-save.txt": ("sos_commands/networking/iptables-save",
                          "sos_commands/firewall_tables/iptables-save",
                          "sos_commands/networking/iptables-save_-c"),
    "sysctl.txt": ("sos_commands/kernel/sysctl_-a",),
    "conntrack.txt": ("sos_commands/networking/conntrack_-L",
                      "sos_commands/conntrack/conntrack_-L_-o_extended"),
}
_NVL_TABLES = ("raw", "mangle", "nat", "filter", "security")
_NVL_DIRS = ("sos_commands/firewall_tables", "sos_commands/networking")


class DumpError(CollectError):
    """A --from-dump input that cannot be used. `target` is the path given; str() is only
    what is wrong with it (see the module docstring), so that the path is printed once."""

    def __init__(self, target: str, message: str) -> None:
        super().__init__(target, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _relative(exc: ParseError, path: Path) -> DumpError:
    """The ParseError's text, with the file named relative to the dump `path`."""
    root = str(path)
    where = f"{exc.source}:{exc.line}" if exc.line else exc.source
    rest = str(exc).removeprefix(where)  # ": expected ..., got: ..."
    if exc.source == root:
        head = f"line {exc.line}" if exc.line else ""
    elif exc.source.startswith(root + os.sep):
        rel = exc.source[len(root) + len(os.sep):]
        head = f"{rel}:{exc.line}" if exc.line else rel
    else:
        head = where
    return DumpError(root, f"{head}{rest}" if head else rest.removeprefix(": "))


_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother = 2, 40, 40


@dataclass
class DumpResult:
    sources: list[SourceEntry] = field(default_factory=list)
    cluster: ClusterStatus | None = None
    nodes: dict[str, NodeSnapshot] = field(default_factory=dict)


# -- cluster-info dump ---------------------------------------------------------------------


def _line_at(text: str, lineno: int) -> str:
    lines = text.splitlines()
    return lines[lineno - 1] if 0 < lineno <= len(lines) else "<end of file>"


def _load_doc(text: str, source: str) -> Any:
    expected = "a JSON (or YAML) List from kubectl cluster-info dump"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        try:
            return yaml.safe_load(text)  # `cluster-info dump -o yaml`
        except (yaml.YAMLError, ValueError, RecursionError):
            raise ParseError(source, exc.lineno, _line_at(text, exc.lineno), expected) from exc
    except (ValueError, RecursionError) as exc:
        # valid JSON that Python will not decode: an integer longer than
        # sys.get_int_max_str_digits(), or nesting deeper than the recursion limit
        raise ParseError(source, 1, _line_at(text, 1), f"{expected} ({exc})") from exc


def split_dump_logs(text: str, source: str) -> Iterator[tuple[str, str, str, str]]:
    """(namespace, pod, container, log text) for each START/END section of a logs.txt."""
    current: tuple[str, str, str] | None = None
    body: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        start = _LOG_START.match(line)
        end = _LOG_END.match(line)
        if start:
            current = (start.group(2), start.group(3), start.group(1))
            body = []
        elif end:
            if current is None or (end.group(2), end.group(3), end.group(1)) != current:
                raise ParseError(source, lineno, line,
                                 "an END line matching the preceding START line")
            yield (*current, "\n".join(body) + ("\n" if body else ""))
            current = None
        elif current is not None:
            body.append(line)
    if current is not None:
        # kubectl was interrupted mid-log; what is there is still evidence.
        yield (*current, "\n".join(body) + ("\n" if body else ""))


def _split_stream(text: str, source: str) -> Iterator[tuple[str, Any]]:
    """The stdout form: JSON documents and log sections, one after the other."""
    decoder = json.JSONDecoder()
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        if text[pos] == "{":
            start = pos
            try:
                doc, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                line = text.count("\n", 0, exc.pos) + 1
                raise ParseError(source, line, _line_at(text, line),
                                 "a JSON object from kubectl cluster-info dump") from exc
            except (ValueError, RecursionError) as exc:  # see _load_doc
                line = text.count("\n", 0, start) + 1
                raise ParseError(source, line, _line_at(text, line),
                                 f"a JSON object from kubectl cluster-info dump ({exc})") from exc
            yield "json", doc
        elif text.startswith("==== START logs", pos):
            end = text.find("==== END logs", pos)
            stop = len(text) if end < 0 else text.find("\n", end)
            stop = len(text) if stop < 0 else stop + 1
            yield "logs", text[pos:stop]
            pos = stop
        else:
            line = text.count("\n", 0, pos) + 1
            raise ParseError(source, line, _line_at(text, line),
                             "a JSON object or a '==== START logs' line")


class _ClusterAccumulator:
    def __init__(self) -> None:
        self.items: dict[str, list[Json]] = {}
        self.logs: dict[str, str] = {}

    def add_list(self, resource: str, doc: Any, source: str) -> None:
        if not isinstance(doc, dict) or not isinstance(doc.get("items", []), list):
            raise ParseError(source, 0, _SHOW.repr(doc), "a Kubernetes List with items")
        _, kind, api_version = _DUMP_RESOURCES[resource]
        items = doc.get("items") or []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ParseError(source, 0, _SHOW.repr(item),
                                 f"items[{i}] to be a Kubernetes object (a JSON object)")
        bucket = self.items.setdefault(resource, [])
        bucket.extend({"apiVersion": api_version, "kind": kind, **item} for item in items)

    def add_logs(self, text: str, source: str) -> None:
        for ns, pod, container, body in split_dump_logs(text, source):
            rel = (f"logs/{safe_component(ns)}/{safe_component(pod)}/"
                   f"{safe_component(container)}.log")
            self.logs[rel] = body

    def write(self, writer: BundleWriter) -> ClusterStatus:
        for resource in _DUMP_RESOURCES:
            if resource in self.items:
                writer.write_list(f"cluster/{resource}.json", self.items[resource])
        for rel, body in sorted(self.logs.items()):
            writer.write_text(rel, body)
        errors = [CollectIssue(r, "not-in-source", "kubectl cluster-info dump does not include "
                               f"{r}") for r in _NOT_IN_DUMP]
        errors += [CollectIssue(r, "not-in-source", f"no {r} in the dump")
                   for r in _DUMP_RESOURCES if r not in self.items]
        return ClusterStatus(status=PARTIAL if errors else OK, context="", server="",
                             errors=tuple(errors))


def ingest_cluster_info_dump(path: Path, writer: BundleWriter) -> ClusterStatus:
    acc = _ClusterAccumulator()
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if not file.is_file():
                continue
            rel = file.relative_to(path)
            stem = file.stem
            text = file.read_text(encoding="utf-8", errors="replace")
            if file.name == "logs.txt":
                acc.add_logs(text, str(file))
            elif file.suffix in {".json", ".yaml"} and stem in _DUMP_RESOURCES and (
                len(rel.parts) <= 2
            ):
                acc.add_list(stem, _load_doc(text, str(file)), str(file))
    else:
        text = path.read_text(encoding="utf-8", errors="replace")
        for what, doc in _split_stream(text, str(path)):
            if what == "logs":
                acc.add_logs(str(doc), str(path))
            elif isinstance(doc, dict) and isinstance(doc.get("kind"), str) and (
                doc["kind"] in _LIST_KINDS
            ):
                acc.add_list(_LIST_KINDS[doc["kind"]], doc, str(path))
    if not acc.items and not acc.logs:
        raise DumpError(str(path), "no kubectl cluster-info dump content found")
    return acc.write(writer)


def _looks_like_cluster_info_dump(path: Path) -> bool:
    if path.is_dir():
        return (path / "nodes.json").is_file() or (path / "nodes.yaml").is_file()
    if path.suffix in {".xz", ".gz", ".tgz", ".tar"}:
        return False
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return '"kind": "NodeList"' in head or '"kind":"NodeList"' in head


# -- sosreport -----------------------------------------------------------------------------


def _sos_wanted() -> set[str]:
    wanted = {rel for candidates in SOS_FILES.values() for rel in candidates}
    wanted |= {f"{d}/iptables_-t_{t}_-nvL" for d in _NVL_DIRS for t in _NVL_TABLES}
    return wanted


def _sos_read(path: Path) -> tuple[dict[str, str], str]:
    """The sosreport files this module uses (relative to the report root), and its name."""
    wanted = _sos_wanted()
    if path.is_dir():
        roots = [path] if (path / "sos_commands").is_dir() else [
            p for p in path.iterdir() if (p / "sos_commands").is_dir()
        ]
        if len(roots) != 1:
            raise DumpError(str(path), "not a sosreport (no sos_commands/ directory)")
        root = roots[0]
        found = {
            rel: (root / rel).read_text(encoding="utf-8", errors="replace")
            for rel in sorted(wanted) if (root / rel).is_file()
        }
        return found, root.name
    try:
        with tarfile.open(path, "r:*") as tar:
            return _sos_read_tar(tar, wanted, path)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DumpError(str(path), f"not a sosreport directory or archive: {exc}") from exc


def _sos_read_tar(tar: tarfile.TarFile, wanted: set[str], path: Path) -> tuple[dict[str, str], str]:
    members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
    prefixes = sorted({n.split("sos_commands/", 1)[0] for n in members if "sos_commands/" in n})
    if len(prefixes) != 1:
        raise DumpError(str(path), "not a sosreport archive (no single sos_commands/ tree)")
    prefix = prefixes[0]
    found: dict[str, str] = {}
    for rel in sorted(wanted):
        member = members.get(prefix + rel)
        if member is None:
            continue
        try:
            handle = tar.extractfile(member)  # follows symlinks inside the archive
        except (KeyError, tarfile.TarError):
            continue
        if handle is not None:
            found[rel] = handle.read().decode("utf-8", errors="replace")
    return found, prefix.rstrip("/") or path.name


def ingest_sosreport(path: Path) -> tuple[str, NodeSnapshot]:
    """Node name (the report's hostname) and its snapshot files."""
    found, report_name = _sos_read(path)
    read = found.get
    snap = NodeSnapshot()
    for name, candidates in SOS_FILES.items():
        for rel in candidates:
            text = read(rel)
            if text is not None:
                snap.files[name] = text
                break
    if "iptables-save.txt" not in snap.files:
        listing = []
        for table in _NVL_TABLES:
            for directory in _NVL_DIRS:
                text = read(f"{directory}/iptables_-t_{table}_-nvL")
                if text is not None:
                    listing.append(f"# table: {table}\n{text.rstrip()}\n")
                    break
        if listing:
            snap.files["iptables-nvL.txt"] = "\n".join(listing)
    for required in ("ip-addr.txt", "ip-route.txt", "sysctl.txt"):
        if required not in snap.files:
            snap.errors.append(CollectIssue(required, "not-in-source",
                                            f"the sosreport has no output for {required}"))
    if "iptables-save.txt" not in snap.files and "iptables-nvL.txt" not in snap.files:
        snap.errors.append(CollectIssue("iptables-save.txt", "not-in-source",
                                        "the sosreport has no iptables output"))
    if not snap.files:
        raise DumpError(str(path), "the sosreport has none of the networking outputs")
    host = snap.files.get("hostname", "").strip().splitlines()
    node = host[0].strip() if host and host[0].strip() else report_name
    return node, snap


def _looks_like_sosreport(path: Path) -> bool:
    if path.is_dir():
        return (path / "sos_commands").is_dir() or any(
            (p / "sos_commands").is_dir() for p in path.iterdir() if p.is_dir()
        )
    return path.name.endswith((".tar.xz", ".tar.gz", ".tgz", ".tar", ".txz"))


def ingest(path: Path, writer: BundleWriter) -> DumpResult:
    """Detect what `path` is and add it to the bundle being written.

    Raises DumpError (a CollectError; see the module docstring for its text) or OSError."""
    if not path.exists():
        raise DumpError(str(path), "no such file or directory")
    result = DumpResult()
    try:
        if _looks_like_cluster_info_dump(path):
            result.cluster = ingest_cluster_info_dump(path, writer)
            result.sources.append(SourceEntry("cluster-info-dump", str(path)))
        elif _looks_like_sosreport(path):
            node, snap = ingest_sosreport(path)
            result.nodes[node] = snap
            result.sources.append(SourceEntry("sosreport", str(path)))
        else:
            raise DumpError(
                str(path), "neither a kubectl cluster-info dump (nodes.json, or its stdout "
                "output) nor a sosreport (sos_commands/)")
    except ParseError as exc:
        raise _relative(exc, path) from exc
    return result
