"""Read whatever the user points `diagnose` at and hand it to the pure evidence builders.

PATH may be a bundle (directory with manifest.json/nodes/cluster, or a .tar.gz of one), a
single node snapshot directory, a `kubectl cluster-info dump` directory, or any text file
(a pasted terminal transcript, auto-detected)."""

from __future__ import annotations

import tarfile
from pathlib import Path

from netsleuth.collect.bundle import read_bundle
from netsleuth.diagnose.evidence import Evidence, evidence_from_files, evidence_from_transcript
from netsleuth.errors import ParseError, SnapshotError
from netsleuth.parse.kubectl_json import looks_like_cluster_info_dump
from netsleuth.parse.node_snapshot import KNOWN_FILES

MAX_TEXT = 64 * 1024 * 1024


def _text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_TEXT:
        raise SnapshotError(f"{path}: {len(data)} bytes is more than a transcript can be "
                            f"({MAX_TEXT} bytes)")
    if b"\x00" in data[:4096]:
        raise ParseError(str(path), 0, "binary data", "a text file (transcript), a bundle "
                         "directory or a .tar.gz bundle")
    return data.decode("utf-8", errors="replace")


def load_evidence(path: Path) -> Evidence:
    if not path.exists():
        raise SnapshotError(f"{path}: no such file or directory")
    if path.is_dir():
        names = {p.name for p in path.iterdir()}
        if names & {"manifest.json", "nodes", "cluster", "logs"}:
            bundle = read_bundle(path)
            return evidence_from_files(bundle.files, str(path))
        if names & set(KNOWN_FILES):
            files = {f"nodes/{path.name}/{n}": _text(path / n) for n in names if n in KNOWN_FILES}
            return evidence_from_files(files, str(path.parent))
        files = {str(p.relative_to(path)): _text(p) for p in sorted(path.rglob("*"))
                 if p.is_file() and p.suffix in (".json", ".txt", ".log", ".yaml")}
        if not files or not looks_like_cluster_info_dump(files):
            raise SnapshotError(f"{path}: neither a bundle, a node snapshot nor a `kubectl "
                                "cluster-info dump` directory (see docs/bundle.md)")
        return evidence_from_files(files, str(path))
    if tarfile.is_tarfile(path):
        bundle = read_bundle(path)
        return evidence_from_files(bundle.files, str(path))
    return evidence_from_transcript(_text(path), str(path))
