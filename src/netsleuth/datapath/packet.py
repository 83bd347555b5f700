"""The packet being traced and its mutable-by-copy state along the path."""

from __future__ import annotations

import enum
from typing import NamedTuple

from netsleuth.model.net import IPAddress

PROTO_NUMBERS: dict[str, int] = {
    "icmp": 1, "ipip": 4, "ipencap": 4, "ipv4": 4, "tcp": 6, "udp": 17, "gre": 47, "sctp": 132, "icmpv6": 58,
}


class ConnState(enum.StrEnum):
    """Conntrack state as `-m conntrack --ctstate` sees it."""

    NEW = "NEW"
    ESTABLISHED = "ESTABLISHED"
    RELATED = "RELATED"
    INVALID = "INVALID"
    UNTRACKED = "UNTRACKED"


class Packet(NamedTuple):
    """Header fields and kernel metadata of the packet at one point of its path.

    `iif` is None for a locally generated packet; `oif` is set once a route was chosen.
    `orig_dst`/`orig_src` keep the pre-NAT addresses (conntrack's original tuple), so `ctstate
    DNAT` and the report can tell what NAT did. A NamedTuple rather than a dataclass: the walk
    copies packets at every rewrite, and a tuple copy is several times cheaper than
    `dataclasses.replace`.
    """

    src: IPAddress | None
    dst: IPAddress
    proto: str = "tcp"
    sport: int | None = None
    dport: int | None = None
    iif: str | None = None
    oif: str | None = None
    mark: int = 0
    ct_mark: int = 0
    ct_state: ConnState = ConnState.NEW
    orig_src: IPAddress | None = None
    orig_dst: IPAddress | None = None
    orig_sport: int | None = None
    orig_dport: int | None = None
    dnat: bool = False
    snat: bool = False
    bridged: bool = False
    # Conntrack has seen the packet (nf_conntrack_in runs after the raw table): before that,
    # `--ctstate` sees no connection at all and matches INVALID only.
    tracked: bool = False
    # An ICMP error or RST the node itself sends: never answered with another error.
    is_error: bool = False

    def with_(self, **changes: object) -> Packet:
        # NamedTuple._replace builds a dict and maps over every field: this copy is twice as
        # fast, and the walk copies packets at every rewrite.
        values: list[object] = list(self)
        for name, value in changes.items():
            values[_FIELD_INDEX[name]] = value
        return tuple.__new__(Packet, values)

    @property
    def family(self) -> int:
        return self.dst.version

    def endpoint(self, which: str) -> str:
        addr = self.dst if which == "dst" else self.src
        port = self.dport if which == "dst" else self.sport
        if addr is None:
            return "*"
        host = f"[{addr}]" if addr.version == 6 else str(addr)
        return f"{host}:{port}" if port is not None else host


_FIELD_INDEX = {name: i for i, name in enumerate(Packet._fields)}
