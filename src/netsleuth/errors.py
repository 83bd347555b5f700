"""The error tree.

    NetsleuthError
     ├── ParseError        input text could not be read (file, line, offending text, expectation)
     ├── SnapshotError     a node snapshot or bundle is unusable as a whole (missing dir, ...)
     ├── CollectError      a collector could not reach or read a target (wraps SSH/K8s errors)
     └── LabError          a lab operation failed (needs root, iptables missing, netns failed)

Add a class only when a caller needs to catch it. The CLI turns every NetsleuthError into a
one- or two-line message and a non-zero exit code; nothing of the user's input may end in a
traceback.
"""

from __future__ import annotations


class NetsleuthError(Exception):
    """Root of every error netsleuth raises on purpose."""


class ParseError(NetsleuthError):
    """Text that does not have the expected shape.

    `source` names the file (or artifact), `line` is 1-based (0 when unknown), `text` is the
    offending line and `expected` says what the parser wanted to see.
    """

    def __init__(self, source: str, line: int, text: str, expected: str) -> None:
        self.source = source
        self.line = line
        self.text = text
        self.expected = expected
        where = f"{source}:{line}" if line else source
        excerpt = text if len(text) <= 120 else text[:117] + "..."
        super().__init__(f"{where}: expected {expected}, got: {excerpt!r}")


class SnapshotError(NetsleuthError):
    """A node snapshot or bundle that cannot be used at all."""


class CollectError(NetsleuthError):
    """A collector failed for one target; `target` names it (node, API server, ...)."""

    def __init__(self, target: str, message: str) -> None:
        self.target = target
        self.message = message
        super().__init__(f"{target}: {message}")


class LabError(NetsleuthError):
    """A lab operation failed or is not possible on this machine."""
