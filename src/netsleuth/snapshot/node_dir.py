"""Read a node snapshot directory from disk (an edge: the parsing is pure, in
netsleuth.parse.node_snapshot)."""

from __future__ import annotations

from pathlib import Path

from netsleuth.errors import ParseError, SnapshotError
from netsleuth.model.node import NodeState
from netsleuth.parse.node_snapshot import KNOWN_FILES, node_from_files, with_extra_routes

__all__ = ["load_node_snapshot", "with_extra_routes"]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(str(path), 0, repr(exc.object[exc.start:exc.end]),
                         "UTF-8 text") from None
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror}") from None


def load_node_snapshot(path: str | Path, *, name: str | None = None) -> NodeState:
    """Read a node snapshot directory; raise on unreadable input."""
    directory = Path(path)
    if not directory.is_dir():
        raise SnapshotError(f"{directory}: not a directory (expected a node snapshot, see "
                            "docs/node-snapshot.md)")
    files = {n: _read(directory / n) for n in KNOWN_FILES if (directory / n).is_file()}
    if not files:
        raise SnapshotError(f"{directory}: no snapshot files found (expected some of "
                            f"{', '.join(KNOWN_FILES)}; see docs/node-snapshot.md)")
    return node_from_files(files, name=name or directory.name, origin=str(directory))


