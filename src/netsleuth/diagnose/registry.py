"""The detector registry: one failure mode per module, declared with `@detector`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netsleuth.diagnose.findings import Finding

if TYPE_CHECKING:
    from netsleuth.diagnose.evidence import Evidence

DetectorFn = Callable[["Evidence"], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class DetectorInfo:
    """`id` is stable (used in JSON and tests); `needs` names the evidence kinds it reads,
    so a report can say which checks could not run for lack of evidence; `mode` refers to the
    failure-mode catalog (docs/failure-modes.md)."""

    id: str
    title: str
    needs: tuple[str, ...]
    mode: str
    fn: DetectorFn


REGISTRY: dict[str, DetectorInfo] = {}


def detector(
    id: str, *, title: str, needs: tuple[str, ...], mode: str = ""
) -> Callable[[DetectorFn], DetectorFn]:
    def register(fn: DetectorFn) -> DetectorFn:
        if id in REGISTRY:
            raise ValueError(f"detector id {id!r} registered twice")
        REGISTRY[id] = DetectorInfo(id, title, needs, mode, fn)
        return fn

    return register


def load_detectors() -> dict[str, DetectorInfo]:
    """Import every module of `netsleuth.diagnose.detectors` so their decorators run."""
    import importlib
    import pkgutil

    from netsleuth.diagnose import detectors

    for info in pkgutil.iter_modules(detectors.__path__):
        importlib.import_module(f"{detectors.__name__}.{info.name}")
    return REGISTRY
