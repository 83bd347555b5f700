"""Links, addresses, routes and policy-routing rules of one node (iproute2's view)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network

from netsleuth.model.source import SYNTHETIC, SourceRef

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
IPInterface = IPv4Interface | IPv6Interface

# Routing table ids with names (iproute2's /etc/iproute2/rt_tables defaults).
TABLE_LOCAL = 255
TABLE_MAIN = 254
TABLE_DEFAULT = 253
TABLE_NAMES: dict[str, int] = {"local": TABLE_LOCAL, "main": TABLE_MAIN, "default": TABLE_DEFAULT}


class Scope(enum.IntEnum):
    """rtnetlink scopes (include/uapi/linux/rtnetlink.h): smaller is wider."""

    UNIVERSE = 0
    SITE = 200
    LINK = 253
    HOST = 254
    NOWHERE = 255


class RouteType(enum.StrEnum):
    """Route types (RTN_*) as iproute2 spells them."""

    UNICAST = "unicast"
    LOCAL = "local"
    BROADCAST = "broadcast"
    ANYCAST = "anycast"
    MULTICAST = "multicast"
    BLACKHOLE = "blackhole"
    UNREACHABLE = "unreachable"
    PROHIBIT = "prohibit"
    THROW = "throw"
    NAT = "nat"


@dataclass(frozen=True, slots=True)
class Address:
    """One address on an interface (`ip addr`): `interface` holds address and prefix."""

    ifname: str
    interface: IPInterface
    scope: Scope = Scope.UNIVERSE
    secondary: bool = False
    label: str | None = None
    broadcast: IPAddress | None = None
    peer: IPInterface | None = None
    source: SourceRef = SYNTHETIC
    # Address flags as iproute2 prints them (noprefixroute, tentative, dadfailed, nodad, ...;
    # `secondary` is the field above) and the prefix route's metric (`ip addr add ... metric N`,
    # IFA_RT_PRIORITY; 0 = the kernel default).
    flags: tuple[str, ...] = ()
    metric: int = 0

    @property
    def noprefixroute(self) -> bool:
        return "noprefixroute" in self.flags

    @property
    def ip(self) -> IPAddress:
        return self.interface.ip

    @property
    def network(self) -> IPNetwork:
        return self.interface.network


@dataclass(frozen=True, slots=True)
class Link:
    """A network interface (`ip link` / the header lines of `ip addr`)."""

    name: str
    index: int | None = None
    kind: str | None = None  # veth, bridge, vxlan, ipip, dummy, ... when known
    up: bool = True  # administratively up and carrier present (LOWER_UP) when known
    mtu: int | None = None
    master: str | None = None  # bridge or bond this link is enslaved to
    mac: str | None = None
    flags: tuple[str, ...] = ()
    source: SourceRef = SYNTHETIC
    state: str | None = None  # operstate as printed: UP, DOWN, UNKNOWN, LOWERLAYERDOWN, ...


@dataclass(frozen=True, slots=True)
class NextHop:
    """One way out of a route: a gateway and/or a device, with multipath weight."""

    gateway: IPAddress | None = None
    dev: str | None = None
    weight: int = 1
    onlink: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    """One route of one table (`ip route show table all`)."""

    dst: IPNetwork  # "default" is 0.0.0.0/0 or ::/0
    type: RouteType = RouteType.UNICAST
    table: int = TABLE_MAIN
    nexthops: tuple[NextHop, ...] = ()
    metric: int = 0
    prefsrc: IPAddress | None = None
    scope: Scope = Scope.UNIVERSE
    protocol: str | None = None
    tos: int = 0
    source: SourceRef = SYNTHETIC
    raw: str = ""
    src: IPNetwork | None = None  # source-specific route (`from PREFIX`, IPv6 subtrees)

    @property
    def gateway(self) -> IPAddress | None:
        return self.nexthops[0].gateway if self.nexthops else None

    @property
    def dev(self) -> str | None:
        return self.nexthops[0].dev if self.nexthops else None


class RuleAction(enum.StrEnum):
    """What a policy rule does when it matches (FR_ACT_*)."""

    LOOKUP = "lookup"  # FR_ACT_TO_TBL
    GOTO = "goto"
    NOP = "nop"
    BLACKHOLE = "blackhole"
    UNREACHABLE = "unreachable"
    PROHIBIT = "prohibit"


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One `ip rule`: selectors, then an action. Selector None means "any"."""

    priority: int
    action: RuleAction = RuleAction.LOOKUP
    table: int | None = None  # for LOOKUP
    goto: int | None = None  # target priority for GOTO
    src: IPNetwork | None = None
    dst: IPNetwork | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int = 0xFFFFFFFF
    tos: int = 0
    invert: bool = False  # `not`
    suppress_prefixlength: int | None = None
    suppress_ifgroup: int | None = None
    source: SourceRef = SYNTHETIC
    raw: str = ""
    l3mdev: bool = False  # `l3mdev`: look up the table of the packet's VRF device
    uidrange: tuple[int, int] | None = None  # inclusive
    ipproto: int | None = None
    sport: tuple[int, int] | None = None  # inclusive port range
    dport: tuple[int, int] | None = None
    protocol: str | None = None  # who installed the rule (`proto static`); not a selector


def default_policy_rules(family: int = 4) -> tuple[PolicyRule, ...]:
    """The rules a fresh kernel has: 0 local, 32766 main, and for IPv4 32767 default
    (fib_default_rules_init in net/ipv4/fib_rules.c; IPv6 has no default-table rule,
    fib6_rules_net_init in net/ipv6/fib6_rules.c)."""
    rules = (PolicyRule(priority=0, table=TABLE_LOCAL), PolicyRule(priority=32766, table=TABLE_MAIN))
    if family == 6:
        return rules
    return (*rules, PolicyRule(priority=32767, table=TABLE_DEFAULT))


@dataclass(frozen=True, slots=True)
class Sysctls:
    """`sysctl -a` (or a subset) as key → value text, keys with dots (net.ipv4.ip_forward)."""

    values: dict[str, str] = field(default_factory=dict)
    source: SourceRef = SYNTHETIC
    lines: dict[str, int] = field(default_factory=dict)  # key → line it was read from

    def ref(self, key: str) -> SourceRef:
        """Where `key` was read (its line when known, else the whole file)."""
        return SourceRef(self.source.file, self.lines.get(key, 0))

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def get_int(self, key: str, default: int) -> int:
        value = self.values.get(key)
        try:
            return int(value) if value is not None else default
        except ValueError:
            return default
