"""iptables rulesets as parsed from `iptables-save` or `iptables -nvL` listings.

A rule keeps its matches in order, each as a module name plus options, the way iptables itself
stores them (kube-proxy's own test parser does the same). Options keep their raw argument text;
the datapath compiles them once into evaluators. A match module or target the simulator does not
understand is still kept here, so a trace that reaches it can say so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from netsleuth.model.source import SYNTHETIC, SourceRef

BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}

# Built-in matches that need no `-m` (iptables' "generic" ip_tables matches).
BUILTIN_MODULE = ""


@dataclass(frozen=True, slots=True)
class Option:
    """One option of a match or target: `! --dport 53` is Option("--dport", ("53",), True)."""

    name: str
    args: tuple[str, ...] = ()
    negated: bool = False

    @property
    def value(self) -> str:
        return " ".join(self.args)


@dataclass(frozen=True, slots=True)
class Match:
    """`-m MODULE opts...`; module "" holds the built-in -s/-d/-p/-i/-o/-f options."""

    module: str
    options: tuple[Option, ...] = ()

    def option(self, *names: str) -> Option | None:
        for opt in self.options:
            if opt.name in names:
                return opt
        return None


@dataclass(frozen=True, slots=True)
class Target:
    """`-j NAME opts...` (or `-g NAME` with goto=True). Name is a verdict, extension or chain."""

    name: str
    options: tuple[Option, ...] = ()
    goto: bool = False

    def option(self, *names: str) -> Option | None:
        for opt in self.options:
            if opt.name in names:
                return opt
        return None


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: all matches must hold, then the target applies (None: count only)."""

    table: str
    chain: str
    matches: tuple[Match, ...]
    target: Target | None
    raw: str
    source: SourceRef = SYNTHETIC
    packets: int | None = None
    bytes: int | None = None

    def match(self, module: str) -> Match | None:
        for m in self.matches:
            if m.module == module:
                return m
        return None

    @property
    def comment(self) -> str | None:
        m = self.match("comment")
        opt = m.option("--comment") if m else None
        return opt.value if opt else None


@dataclass(frozen=True, slots=True)
class Chain:
    """A chain; `policy` is set for built-in chains only (ACCEPT or DROP)."""

    name: str
    rules: tuple[Rule, ...] = ()
    policy: str | None = None
    packets: int | None = None
    bytes: int | None = None
    source: SourceRef = SYNTHETIC

    @property
    def builtin(self) -> bool:
        return self.policy is not None


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    chains: Mapping[str, Chain] = field(default_factory=dict)

    def chain(self, name: str) -> Chain | None:
        return self.chains.get(name)


@dataclass(frozen=True, slots=True)
class ParseIssue:
    """Something a lenient parser kept going past: a line it could not fully read."""

    source: SourceRef
    text: str
    message: str


@dataclass(frozen=True, slots=True)
class Ruleset:
    """All tables of one address family. `origin` says what produced it (iptables-save, -nvL)."""

    tables: Mapping[str, Table] = field(default_factory=dict)
    family: int = 4
    origin: str = "iptables-save"
    issues: tuple[ParseIssue, ...] = ()

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)

    def chain(self, table: str, name: str) -> Chain | None:
        t = self.tables.get(table)
        return t.chains.get(name) if t else None

    @property
    def rule_count(self) -> int:
        return sum(len(c.rules) for t in self.tables.values() for c in t.chains.values())
