"""The node agent: a DaemonSet pod on every node that snapshots the node's network state.

This is how large clusters are covered: the snapshot work runs on the nodes, in parallel,
with no SSH access and no per-collection pod scheduling; `netsleuth collect --nodes-via agent`
only reads the results through the API (pod logs) and aggregates them.

Each snapshot is written
- to a directory (a hostPath, `/var/lib/netsleuth/snapshots/<node>/` in daemonset.yaml), in the
  node snapshot layout, replaced atomically so readers never see half a snapshot;
- to stdout as a record of short lines (container runtimes split log lines longer than
  16 KiB, so the gzip+base64 payload is chunked):

      NETSLEUTH-AGENT v1 BEGIN <node> <created> <chunks> <sha256 of payload>
      NETSLEUTH-AGENT v1 DATA <node> <index> <base64 chunk>
      NETSLEUTH-AGENT v1 END <node>

  The payload is gzip'd JSON: {"node", "created", "files": {name: text}, "errors": [...]}.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from netsleuth.collect.bundle import CollectIssue, safe_component
from netsleuth.collect.local import NodeSnapshot
from netsleuth.collect.redact import Redactor

MARK = "NETSLEUTH-AGENT v1"
CHUNK = 8000  # characters of base64 per line, well below the runtimes' 16 KiB split


@dataclass(frozen=True, slots=True)
class AgentRecord:
    node: str
    created: str
    snapshot: NodeSnapshot


def encode_record(node: str, created: str, snap: NodeSnapshot) -> list[str]:
    payload = {
        "node": node,
        "created": created,
        "files": snap.files,
        "errors": [e.to_json() for e in snap.errors],
    }
    blob = base64.b64encode(gzip.compress(json.dumps(payload).encode(), mtime=0)).decode()
    digest = hashlib.sha256(blob.encode()).hexdigest()
    chunks = [blob[i : i + CHUNK] for i in range(0, len(blob), CHUNK)] or [""]
    lines = [f"{MARK} BEGIN {node} {created} {len(chunks)} {digest}"]
    lines += [f"{MARK} DATA {node} {i} {c}" for i, c in enumerate(chunks)]
    lines.append(f"{MARK} END {node}")
    return lines


def _record_lines(text: str) -> Iterator[list[str]]:
    # Log lines may carry a runtime/kubectl timestamp prefix: start at the marker.
    for line in text.splitlines():
        at = line.find(MARK)
        if at >= 0:
            yield line[at + len(MARK) :].split()


def decode_records(text: str) -> dict[str, AgentRecord]:
    """The last complete, intact record of each node found in `text` (an agent's log)."""
    found: dict[str, AgentRecord] = {}
    current: dict[str, object] | None = None
    for parts in _record_lines(text):
        if len(parts) == 5 and parts[0] == "BEGIN":
            current = {"node": parts[1], "created": parts[2], "n": int(parts[3]),
                       "sha": parts[4], "chunks": []}
        elif len(parts) in (3, 4) and parts[0] == "DATA" and current is not None:
            chunks = current["chunks"]
            assert isinstance(chunks, list)
            if parts[1] == current["node"] and int(parts[2]) == len(chunks):
                chunks.append(parts[3] if len(parts) == 4 else "")
            else:
                current = None  # out of order or interleaved: drop the record
        elif len(parts) == 2 and parts[0] == "END" and current is not None:
            record = _finish(current)
            if record is not None:
                found[record.node] = record
            current = None
    return found


def _finish(current: dict[str, object]) -> AgentRecord | None:
    chunks = current["chunks"]
    assert isinstance(chunks, list)
    if len(chunks) != current["n"]:
        return None
    blob = "".join(chunks)
    if hashlib.sha256(blob.encode()).hexdigest() != current["sha"]:
        return None
    try:
        payload = json.loads(gzip.decompress(base64.b64decode(blob)))
    except (ValueError, OSError, EOFError):
        return None
    snap = NodeSnapshot(
        files={str(k): str(v) for k, v in dict(payload.get("files", {})).items()},
        errors=[CollectIssue(str(e.get("target", "")), str(e.get("kind", "")),
                             str(e.get("message", "")))
                for e in payload.get("errors", []) if isinstance(e, dict)],
    )
    return AgentRecord(node=str(current["node"]), created=str(current["created"]), snapshot=snap)


def redact_snapshot(snap: NodeSnapshot) -> NodeSnapshot:
    redactor = Redactor()
    return NodeSnapshot(files={k: redactor.text(v) for k, v in snap.files.items()},
                        errors=list(snap.errors))


def write_snapshot_dir(root: Path, node: str, snap: NodeSnapshot) -> Path:
    """Replace root/<node>/ with the snapshot, atomically (rename of a complete directory)."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / safe_component(node)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    for name, text in snap.files.items():
        (tmp / safe_component(name)).write_text(text, encoding="utf-8")
    old = None
    if final.exists():
        old = root / f".{final.name}.old-{os.getpid()}"
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def diagnose_node(node: str, files: Mapping[str, str], service_host: str | None,
                  service_port: str | None) -> str:
    """This node's diagnosis as JSON (schema netsleuth.diagnosis/1). Never raises: a failure
    becomes a JSON error record, because the agent must keep snapshotting."""
    from ipaddress import ip_address

    from netsleuth.diagnose.engine import diagnose
    from netsleuth.diagnose.evidence import evidence_from_files
    from netsleuth.model.k8s import Service, ServicePort
    from netsleuth.model.source import SourceRef

    try:
        rel = {f"nodes/{node}/{name}": text for name, text in files.items()
               if name != "diagnosis.json"}
        services: tuple[Service, ...] = ()
        if service_host:
            services = (Service(
                namespace="default", name="kubernetes", type="ClusterIP",
                cluster_ips=(ip_address(service_host),),
                ports=(ServicePort(port=int(service_port or 443), name="https"),),
                source=SourceRef("env KUBERNETES_SERVICE_HOST")),)
        ev = evidence_from_files(rel, f"agent:{node}", extra_services=services)
        return json.dumps(diagnose(ev).to_dict(), indent=2, default=str)
    except Exception as exc:  # the agent reports and carries on
        return json.dumps({"schema": "netsleuth.diagnosis/1", "error": repr(exc)})
