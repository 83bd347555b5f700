"""Correlation: link findings into a causal graph and rank the roots.

An edge a → b exists when finding a `explains` finding b's key. Roots are the causes no other
cause explains. A root's score is confidence x (1 + the number of findings it explains,
transitively): how directly it is proven (a trace through the node's real state beats a log
line) times how much of what went wrong it accounts for. The amount of quoted evidence only
breaks ties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from netsleuth.diagnose.findings import Finding, Role


@dataclass(frozen=True, slots=True)
class RankedCause:
    finding: Finding
    explained: tuple[Finding, ...]  # symptoms (and intermediate causes), nearest first
    score: float
    tree: tuple[tuple[int, Finding], ...] = ()  # (depth, finding), depth-first, for display


@dataclass(frozen=True, slots=True)
class Correlation:
    causes: tuple[RankedCause, ...]
    unexplained: tuple[Finding, ...]  # symptoms no cause accounts for
    edges: tuple[tuple[int, int], ...]  # indices into `findings`
    findings: tuple[Finding, ...]


def correlate(findings: Sequence[Finding]) -> Correlation:
    items = tuple(findings)
    children: dict[int, list[int]] = {i: [] for i in range(len(items))}
    has_cause_parent: set[int] = set()
    edges: list[tuple[int, int]] = []
    for i, a in enumerate(items):
        for j, b in enumerate(items):
            if i != j and a.explains_key(b.key):
                children[i].append(j)
                edges.append((i, j))
                if a.role == Role.CAUSE:
                    has_cause_parent.add(j)
    ranked: list[RankedCause] = []
    covered: set[int] = set()
    for i, f in enumerate(items):
        if f.role != Role.CAUSE or i in has_cause_parent:
            continue
        order = _reachable(i, children)
        covered.update(order)
        explained = tuple(items[j] for j in order)
        # What it explains (symptoms and the causes it subsumes) weighs most; the amount of
        # quoted evidence only breaks ties.
        score = f.confidence * (1.0 + len(explained)) + 0.01 * min(len(f.evidence), 10)
        tree = tuple((d, items[j]) for d, j in _depth_first(i, children))
        ranked.append(RankedCause(f, explained, score, tree))
    ranked.sort(key=lambda r: (-r.score, r.finding.title))
    unexplained = tuple(
        f for i, f in enumerate(items) if f.role == Role.SYMPTOM and i not in covered
    )
    return Correlation(tuple(ranked), unexplained, tuple(edges), items)


def _reachable(start: int, children: dict[int, list[int]]) -> list[int]:
    """Breadth-first: nearest consequences first, each once."""
    seen = {start}
    order: list[int] = []
    frontier = [start]
    while frontier:
        nxt: list[int] = []
        for node in frontier:
            for child in children[node]:
                if child not in seen:
                    seen.add(child)
                    order.append(child)
                    nxt.append(child)
        frontier = nxt
    return order


def _depth_first(start: int, children: dict[int, list[int]]) -> list[tuple[int, int]]:
    """(depth, index) pairs below `start`, each finding once, at its first place."""
    seen = {start}
    out: list[tuple[int, int]] = []

    def visit(node: int, depth: int) -> None:
        for child in sorted(children[node], key=lambda c: -len(children[c])):
            if child not in seen:
                seen.add(child)
                out.append((depth, child))
                visit(child, depth + 1)

    visit(start, 1)
    return out
