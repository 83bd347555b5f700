"""What a trace returns: steps, outcomes, the verdict. Values only; renderers format them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from netsleuth.datapath.packet import Packet
from netsleuth.model.source import SourceRef


class Verdict(enum.StrEnum):
    DELIVERED_LOCAL = "delivered-local"
    SENT = "sent"
    FORWARDED = "forwarded"
    DROPPED = "dropped"
    REJECTED = "rejected"
    UNROUTABLE = "unroutable"


class Step(NamedTuple):
    """One decision on the path: a route lookup, a matched rule, a chain policy, a NAT rewrite.

    `hook` is a netfilter hook name or a stage (route, reroute, deliver, transmit); `table` a
    netfilter table or a routing table; `rule` the rule/route text; `source` where it came
    from; `action` what it did; `packet` the packet after the step; `detail` extra lines
    (e.g. the policy rules tried by a failed route lookup).
    """

    hook: str
    table: str
    chain: str
    rule: str
    action: str
    packet: Packet
    source: SourceRef | None = None
    detail: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "table": self.table,
            "chain": self.chain,
            "rule": self.rule,
            "source": str(self.source) if self.source else None,
            "action": self.action,
            "detail": list(self.detail),
            "packet": packet_dict(self.packet),
        }


# A path's steps as a linked list, newest first: (previous, build, *arguments). A step is put
# into words (`build(*arguments)`) only when someone reads it: a trace forks at every
# statistic rule and multipath route, branches share their common prefix, and most traces
# (a diagnosis asking "does this reach?", a whole-cluster sweep) never print their steps.
Trail = tuple[Any, ...] | None


def trail_steps(trail: Trail) -> tuple[Step, ...]:
    steps: list[Step] = []
    while trail is not None:
        steps.append(trail[1](*trail[2:]))
        trail = trail[0]
    steps.reverse()
    return tuple(steps)


def ready_step(step: Step) -> Step:
    """The builder of a step that was cheap enough to build on the spot."""
    return step


class Outcome:
    """One possible fate of the packet. `probability` is None when the path depends on a
    match the simulator could not evaluate (see `assumptions`). A value: nothing changes it
    after the trace; `steps` is built from the trail on first use."""

    __slots__ = (
        "_steps",
        "_trail",
        "assumptions",
        "errno",
        "icmp",
        "interface",
        "masquerade",
        "next_hop",
        "packet",
        "probability",
        "verdict",
    )

    def __init__(
        self,
        probability: float | None,
        verdict: Verdict,
        errno: str | None,
        packet: Packet,
        trail: Trail,
        masquerade: bool = False,
        interface: str | None = None,
        next_hop: str | None = None,
        icmp: str | None = None,  # ICMP error the node sends back (REJECT, unreachable route)
        assumptions: tuple[str, ...] = (),
    ) -> None:
        self.probability = probability
        self.verdict = verdict
        self.errno = errno
        self.packet = packet
        self.masquerade = masquerade
        self.interface = interface
        self.next_hop = next_hop
        self.icmp = icmp
        self.assumptions = assumptions
        self._trail = trail
        self._steps: tuple[Step, ...] | None = None

    @property
    def steps(self) -> tuple[Step, ...]:
        if self._steps is None:
            self._steps = trail_steps(self._trail)
        return self._steps

    def __repr__(self) -> str:
        return (f"Outcome({self.verdict.value}, p={self.probability}, errno={self.errno}, "
                f"{self.packet.endpoint('src')} -> {self.packet.endpoint('dst')})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "probability": None if self.probability is None else round(self.probability, 6),
            "verdict": self.verdict.value,
            "errno": self.errno,
            "destination": self.packet.endpoint("dst"),
            "source": self.packet.endpoint("src"),
            "masquerade": self.masquerade,
            "interface": self.interface,
            "next_hop": self.next_hop,
            "icmp": self.icmp,
            "uncertain": self.probability is None,
            "assumptions": list(self.assumptions),
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass(frozen=True, slots=True)
class Trace:
    """The answer to "what happens to this packet on this node"."""

    node: str
    origin: str  # "host" or "IP@iface"
    packet: Packet
    outcomes: tuple[Outcome, ...]
    assumptions: tuple[str, ...] = ()
    unreached: tuple[Step, ...] = field(default=())  # rules that would have applied, never run

    @property
    def verdict(self) -> Verdict:
        return self.main.verdict

    @property
    def errno(self) -> str | None:
        return self.main.errno

    @property
    def main(self) -> Outcome:
        """The most likely outcome (certain ones first)."""
        return max(self.outcomes, key=lambda o: -1.0 if o.probability is None else o.probability)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "netsleuth.trace/1",
            "node": self.node,
            "origin": self.origin,
            "packet": packet_dict(self.packet),
            "verdict": self.verdict.value,
            "errno": self.errno,
            "outcomes": [o.to_dict() for o in self.outcomes],
            "steps": [s.to_dict() for s in self.main.steps],
            "unreached": [s.to_dict() for s in self.unreached],
            "assumptions": list(self.assumptions),
        }


def packet_dict(p: Packet) -> dict[str, Any]:
    return {
        "src": str(p.src) if p.src is not None else None,
        "dst": str(p.dst),
        "proto": p.proto,
        "sport": p.sport,
        "dport": p.dport,
        "mark": hex(p.mark),
        "iif": p.iif,
        "oif": p.oif,
    }
