"""The state of one node's data path: what the simulator runs on."""

from __future__ import annotations

from dataclasses import dataclass, field

from netsleuth.model.net import Address, Link, PolicyRule, Route, Sysctls
from netsleuth.model.netfilter import Ruleset


@dataclass(frozen=True, slots=True)
class NodeState:
    """One node (a host network namespace) as far as the evidence tells.

    `assumptions` lists what was filled in because evidence was missing (e.g. "no ip-rule:
    assuming the default rules 0/32766/32767"); every consumer should show them.
    """

    name: str
    links: tuple[Link, ...] = ()
    addresses: tuple[Address, ...] = ()
    routes: tuple[Route, ...] = ()
    rules: tuple[PolicyRule, ...] = ()
    # `ip -6 rule`: IPv6 has a rule list of its own. None: no evidence (a trace of an IPv6
    # packet then assumes IPv6's default rules, and says so).
    rules6: tuple[PolicyRule, ...] | None = None
    sysctls: Sysctls = field(default_factory=Sysctls)
    ruleset: Ruleset = field(default_factory=Ruleset)
    # ip6tables' rules: IPv6 packets meet these and never `ruleset` (separate tables in the
    # kernel, ip6_tables.c). None: the evidence has none, which a trace of an IPv6 packet says.
    ruleset6: Ruleset | None = None
    assumptions: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
