"""Where a piece of evidence came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceRef:
    """A file (or artifact name) and a 1-based line; line 0 means "the whole file" or synthetic."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


SYNTHETIC = SourceRef("<assumed>")
