"""The bundle: everything `netsleuth collect` gathered, as a directory or a .tar.gz of it.

Layout (schema version 1, documented in docs/bundle.md):

    manifest.json
    cluster/<resource>.json          kubectl-shaped Lists (apiVersion v1, kind List, items)
    logs/<namespace>/<pod>/<container>.log   (+ <container>.previous.log)
    nodes/<node>/...                 the node snapshot layout (docs/node-snapshot.md)

Writing goes through `BundleWriter`, which redacts every file before it reaches the disk and
stages into a temporary directory so that a half-written bundle never appears under the
requested name. Reading (`read_bundle`) returns the manifest plus a mapping of relative path to
text, and knows nothing about the formats inside: the parsers do.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from netsleuth import __version__
from netsleuth.collect.redact import Redactor
from netsleuth.errors import CollectError, ParseError, SnapshotError

SCHEMA_VERSION = 1
TOOL = "netsleuth"
MANIFEST = "manifest.json"

# Status words used for the cluster part and for each node.
OK = "ok"
PARTIAL = "partial"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CollectIssue:
    """One thing that could not be collected.

    `target` names what was being read (a resource such as `pods`, `logs/kube-system/x/c`,
    a node file such as `iptables-save.txt`, or the node itself); `kind` is one of the words
    listed in docs/bundle.md (`config`, `unreachable`, `timeout`, `forbidden`, `not-found`,
    `http`, `auth`, `host-key`, `command`, `not-in-source`, `io`).
    """

    target: str
    kind: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"target": self.target, "kind": self.kind, "message": self.message}


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """Where data came from: `type` is kubernetes-api, local, ssh, kubectl-debug, agent,
    cluster-info-dump or sosreport; `detail` is a context name, a path or a node list."""

    type: str
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    status: str = FAILED
    context: str = ""
    server: str = ""
    errors: tuple[CollectIssue, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "context": self.context,
            "server": self.server,
            "errors": [e.to_json() for e in self.errors],
        }


@dataclass(frozen=True, slots=True)
class NodeStatus:
    status: str
    via: str
    files: tuple[str, ...] = ()
    errors: tuple[CollectIssue, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "via": self.via,
            "files": list(self.files),
            "errors": [e.to_json() for e in self.errors],
        }


@dataclass(frozen=True, slots=True)
class Manifest:
    schema_version: int = SCHEMA_VERSION
    tool: str = TOOL
    tool_version: str = __version__
    created: str = ""
    sources: tuple[SourceEntry, ...] = ()
    cluster: ClusterStatus = field(default_factory=ClusterStatus)
    nodes: Mapping[str, NodeStatus] = field(default_factory=dict)
    redactions: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "tool": self.tool,
            "tool_version": self.tool_version,
            "created": self.created,
            "sources": [s.to_json() for s in self.sources],
            "cluster": self.cluster.to_json(),
            "nodes": {name: st.to_json() for name, st in sorted(self.nodes.items())},
            "redactions": self.redactions,
        }

    def collected_anything(self) -> bool:
        """True when at least one cluster resource or one node file made it into the bundle."""
        return self.cluster.status != FAILED or any(n.files for n in self.nodes.values())


@dataclass(frozen=True, slots=True)
class Bundle:
    """A read bundle: the manifest and every other file as text, keyed by relative path."""

    source: str
    manifest: Manifest
    files: Mapping[str, str]

    def node_names(self) -> tuple[str, ...]:
        names = set(self.manifest.nodes)
        for rel in self.files:
            parts = rel.split("/")
            if len(parts) >= 3 and parts[0] == "nodes":
                names.add(parts[1])
        return tuple(sorted(names))

    def node_files(self, node: str) -> dict[str, str]:
        """The snapshot files of one node, keyed by their name inside the node directory."""
        prefix = f"nodes/{node}/"
        return {
            rel[len(prefix) :]: text for rel, text in self.files.items() if rel.startswith(prefix)
        }

    def cluster_file(self, name: str) -> str | None:
        """The text of cluster/<name> (e.g. "pods.json"), or None when it was not collected."""
        return self.files.get(f"cluster/{name}")

    def logs(self) -> dict[str, str]:
        return {rel: text for rel, text in self.files.items() if rel.startswith("logs/")}


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def safe_component(name: str) -> str:
    """A single path component derived from a name that came from outside (API, user, dump).

    Kubernetes names are DNS labels and pass unchanged; anything that could escape the
    bundle directory (`/`, `..`, NUL) is replaced.
    """
    cleaned = "".join("_" if c in "/\\\0" else c for c in name).strip()
    if cleaned in {"", ".", ".."}:
        cleaned = "_" + cleaned.replace(".", "_")
    return cleaned


def _check_rel(rel: str) -> str:
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"bundle path must be relative and inside the bundle: {rel!r}")
    return str(path)


def is_tar_output(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz"))


class BundleWriter:
    """Stages a bundle on disk, redacting every file, then publishes it at `output`.

    `output` ending in .tar.gz/.tgz gives an archive whose single top directory is the
    archive's base name; anything else gives a directory. An existing non-empty target is
    refused, so a collection never overwrites earlier evidence.
    """

    def __init__(self, output: Path) -> None:
        self.output = output
        if output.exists() and not (output.is_dir() and not any(output.iterdir())):
            raise CollectError(str(output), "already exists; choose a new output path")
        parent = output.parent if str(output.parent) else Path(".")
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=parent))
        except OSError as exc:
            raise CollectError(str(output), f"cannot create the bundle: {exc}") from exc
        self.redactor = Redactor()
        self.written: list[str] = []

    def write_text(self, rel: str, text: str, *, redact: bool = True) -> None:
        rel = _check_rel(rel)
        body = self.redactor.text(text) if redact else text
        target = self.staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
        self.written.append(rel)

    def write_json(self, rel: str, obj: Any) -> None:
        """Write decoded JSON after redacting it as a Kubernetes object."""
        redacted = self.redactor.obj(obj)
        self.write_text(rel, json.dumps(redacted, indent=2, sort_keys=False) + "\n", redact=False)

    def write_list(self, rel: str, items: Iterable[Mapping[str, Any]]) -> None:
        """Write a kubectl-shaped List (what `kubectl get -o json` prints for several kinds)."""
        self.write_json(
            rel,
            {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
             "items": list(items)},
        )

    def files_under(self, prefix: str) -> tuple[str, ...]:
        return tuple(sorted(r[len(prefix) :] for r in self.written if r.startswith(prefix)))

    @property
    def redactions(self) -> int:
        return self.redactor.count

    def finish(self, manifest: Manifest) -> Path:
        """Write the manifest and publish the bundle; returns the final path."""
        (self.staging / MANIFEST).write_text(
            json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8"
        )
        try:
            if is_tar_output(self.output):
                return self._publish_tar()
            if self.output.is_dir():
                self.output.rmdir()  # empty, checked in __init__
            os.replace(self.staging, self.output)
            return self.output
        except OSError as exc:
            self.abort()
            raise CollectError(str(self.output), f"cannot write the bundle: {exc}") from exc

    def _publish_tar(self) -> Path:
        top = self.output.name.removesuffix(".tar.gz").removesuffix(".tgz") or "bundle"
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.output.name}.", dir=self.staging.parent)
        os.close(fd)
        try:
            with tarfile.open(tmp_name, "w:gz") as tar:
                for path in sorted(self.staging.rglob("*")):
                    if path.is_file():
                        rel = path.relative_to(self.staging).as_posix()
                        tar.add(path, arcname=f"{top}/{rel}", recursive=False)
            os.replace(tmp_name, self.output)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            self.abort()
        return self.output

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Reading


def _bad(where: str, field: str, expected: str, value: Any) -> SnapshotError:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return SnapshotError(f"{where}: {field}: expected {expected}, got {shown}")


def _text_field(raw: Mapping[str, Any], key: str, where: str, field: str,
                default: str = "") -> str:
    """A string field; null counts as absent (hand-edited manifests write null for unknown)."""
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _bad(where, field, "a string", value)
    return value


def _object_field(raw: Mapping[str, Any], key: str, where: str, field: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(where, field, "an object", value)
    return value


def _list_field(raw: Mapping[str, Any], key: str, where: str, field: str) -> list[Any]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(where, field, "a list", value)
    return value


def _issues(raw: Mapping[str, Any], where: str, field: str) -> tuple[CollectIssue, ...]:
    out = []
    for i, item in enumerate(_list_field(raw, "errors", where, field)):
        if isinstance(item, str):
            out.append(CollectIssue(target="", kind="unknown", message=item))
        elif isinstance(item, dict):
            out.append(
                CollectIssue(
                    target=_text_field(item, "target", where, f"{field}[{i}].target"),
                    kind=_text_field(item, "kind", where, f"{field}[{i}].kind", "unknown"),
                    message=_text_field(item, "message", where, f"{field}[{i}].message"),
                )
            )
        else:
            raise _bad(where, f"{field}[{i}]", "an object", item)
    return tuple(out)


def compat(raw: dict[str, Any], files: Mapping[str, str], where: str = MANIFEST) -> dict[str, Any]:
    """Bring a manifest of any supported schema version to the current one.

    Version 0 is a bundle without manifest.json: a directory that someone assembled by hand
    with `nodes/<name>/` snapshots and/or `cluster/*.json`. Its manifest is synthesised from
    the files present. Versions newer than this netsleuth are refused with a clear message
    rather than half-read.
    """
    version = raw.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise _bad(where, "schema_version", "a non-negative integer", version)
    if version > SCHEMA_VERSION:
        raise SnapshotError(
            f"bundle schema version {version} is newer than this netsleuth understands "
            f"({SCHEMA_VERSION}); upgrade netsleuth to read it"
        )
    if version == 0:
        nodes: dict[str, Any] = {}
        for rel in sorted(files):
            parts = rel.split("/")
            if len(parts) >= 3 and parts[0] == "nodes":
                entry = nodes.setdefault(
                    parts[1], {"status": OK, "via": "manual", "files": [], "errors": []}
                )
                entry["files"].append("/".join(parts[2:]))
        has_cluster = any(rel.startswith("cluster/") for rel in files)
        raw = {
            "schema_version": SCHEMA_VERSION,
            "tool": raw.get("tool", "manual"),
            "tool_version": raw.get("tool_version", ""),
            "created": raw.get("created", ""),
            "sources": [{"type": "manual", "detail": ""}],
            "cluster": {"status": OK if has_cluster else FAILED, "context": "", "server": "",
                        "errors": []},
            "nodes": nodes,
            "redactions": 0,
        }
    return raw


def manifest_from_json(raw: Any, files: Mapping[str, str], source: str = "") -> Manifest:
    """The typed manifest. Raises SnapshotError naming `<source>/manifest.json` and the field
    (`nodes.cp-1.files`, `sources[2]`) when a field has the wrong type."""
    where = f"{source}/{MANIFEST}" if source else MANIFEST
    if not isinstance(raw, dict):
        raise SnapshotError(f"{where}: expected a JSON object at the top level")
    raw = compat(raw, files, where)
    cluster_raw = _object_field(raw, "cluster", where, "cluster")
    nodes: dict[str, NodeStatus] = {}
    for name, entry in _object_field(raw, "nodes", where, "nodes").items():
        field = f"nodes.{name}"
        if not isinstance(entry, dict):
            raise _bad(where, field, "an object", entry)
        node_files = [] if entry.get("files") is None else entry["files"]
        if not isinstance(node_files, list) or not all(isinstance(f, str) for f in node_files):
            raise _bad(where, f"{field}.files", "a list of strings", node_files)
        nodes[str(name)] = NodeStatus(
            status=_text_field(entry, "status", where, f"{field}.status", FAILED),
            via=_text_field(entry, "via", where, f"{field}.via"),
            files=tuple(node_files),
            errors=_issues(entry, where, f"{field}.errors"),
        )
    sources = []
    for i, s in enumerate(_list_field(raw, "sources", where, "sources")):
        if isinstance(s, dict):
            sources.append(SourceEntry(_text_field(s, "type", where, f"sources[{i}].type"),
                                       _text_field(s, "detail", where, f"sources[{i}].detail")))
        elif isinstance(s, str):
            sources.append(SourceEntry(s))
        else:
            raise _bad(where, f"sources[{i}]", "an object or a string", s)
    redactions = raw.get("redactions", 0)
    if not isinstance(redactions, int) or isinstance(redactions, bool) or redactions < 0:
        raise _bad(where, "redactions", "a non-negative integer", redactions)
    return Manifest(
        schema_version=raw["schema_version"],
        tool=_text_field(raw, "tool", where, "tool"),
        tool_version=_text_field(raw, "tool_version", where, "tool_version"),
        created=_text_field(raw, "created", where, "created"),
        sources=tuple(sources),
        cluster=ClusterStatus(
            status=_text_field(cluster_raw, "status", where, "cluster.status", FAILED),
            context=_text_field(cluster_raw, "context", where, "cluster.context"),
            server=_text_field(cluster_raw, "server", where, "cluster.server"),
            errors=_issues(cluster_raw, where, "cluster.errors"),
        ),
        nodes=nodes,
        redactions=redactions,
    )


def parse_bundle(source: str, manifest_text: str | None, files: Mapping[str, str]) -> Bundle:
    """Build a Bundle from texts already in memory (no I/O)."""
    if manifest_text is None:
        if not any(rel.startswith(("nodes/", "cluster/")) for rel in files):
            raise SnapshotError(
                f"{source}: not a netsleuth bundle (no {MANIFEST}, no nodes/ or cluster/)"
            )
        raw: Any = {}
    else:
        try:
            raw = json.loads(manifest_text)
        except json.JSONDecodeError as exc:
            lines = manifest_text.splitlines()
            text = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else ""
            raise ParseError(f"{source}/{MANIFEST}", exc.lineno, text, "JSON") from exc
    return Bundle(source=source, manifest=manifest_from_json(raw, files, source),
                  files=dict(files))


def _decode(data: bytes) -> str:
    # Logs may hold arbitrary bytes; a replacement character is better than refusing the
    # whole bundle. Command outputs are ASCII/UTF-8 in practice.
    return data.decode("utf-8", errors="replace")


def read_bundle(path: Path) -> Bundle:
    """Read a bundle directory or .tar.gz (any tar compression) into memory."""
    if not path.exists():
        raise SnapshotError(f"{path}: no such bundle")
    files: dict[str, str] = {}
    if path.is_dir():
        for item in sorted(path.rglob("*")):
            if item.is_file() and not item.is_symlink():
                rel = item.relative_to(path).as_posix()
                try:
                    files[rel] = _decode(item.read_bytes())
                except OSError as exc:
                    raise SnapshotError(f"{item}: cannot read: {exc}") from exc
    else:
        files = _read_tar(path)
    manifest_text = files.pop(MANIFEST, None)
    return parse_bundle(str(path), manifest_text, files)


def _read_tar(path: Path) -> dict[str, str]:
    try:
        with tarfile.open(path, "r:*") as tar:
            members = _tar_members(tar)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SnapshotError(
            f"{path}: not a bundle directory or a readable tar archive: {exc}"
        ) from exc
    return _strip_top(members)


def _tar_members(tar: tarfile.TarFile) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    for member in tar:
        if not member.isfile():
            continue
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts:
            continue  # never trust archive paths that climb out
        handle = tar.extractfile(member)
        if handle is None:
            continue
        members[name.as_posix().removeprefix("./")] = handle.read()
    return members


def _strip_top(members: dict[str, bytes]) -> dict[str, str]:
    # A tar of the bundle directory has one top directory; strip it when the manifest (or the
    # nodes/cluster trees) sit right below it.
    tops = {rel.split("/", 1)[0] for rel in members if "/" in rel}
    if len(tops) == 1 and not any("/" not in rel for rel in members):
        top = tops.pop()
        inner = {rel[len(top) + 1 :] for rel in members}
        if MANIFEST in inner or any(r.startswith(("nodes/", "cluster/")) for r in inner):
            members = {rel[len(top) + 1 :]: data for rel, data in members.items()}
    return {rel: _decode(data) for rel, data in members.items()}
