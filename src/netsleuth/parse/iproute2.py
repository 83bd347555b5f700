"""Parsers for iproute2 output: `ip [-j] addr`, `ip [-j] link`, `ip [-j] route`, `ip [-j] rule`.

Every public function takes the whole output of one command plus the name it came from, detects
JSON (`ip -j`, optionally `-p`: the first non-blank character is `[`) or text by itself, and
returns frozen model objects that keep `SourceRef(file, line)`. For JSON the line is the one
holding the object's first member (line 1 throughout for compact, one-line JSON).

How strict each parser is follows from what the simulator needs:

- Routes and rules are read completely. Each word iproute2 can print is either used or skipped
  from an explicit list of attributes that do not change the routing decision (`linkdown`,
  `pref medium`, `mtu lock 1400`, `expires 599sec`, ...). Any other word is a ParseError, so a
  route or rule the simulator would misread is never half-parsed in silence.
- `ip addr` / `ip link` print many attributes (queues, statistics, driver details with `-d`)
  that differ between iproute2 versions and never matter to routing. Those parsers read the
  link header, the `link/...` line, the kind (with `-d`) and every `inet`/`inet6` line strictly,
  and pass over other indented detail lines.

Routing tables: numbers map to themselves and `local`/`main`/`default` to 255/254/253. Other
names come from the node's rt_tables file, which iproute2 consults when printing; pass them as
`table_names=` (see `parse_rt_tables`). An unknown name is a ParseError asking for a numeric id,
because guessing an id would route packets through the wrong table.

Text `ip route` output does not print `table main` (iproute2 omits the main table), so a text
route without `table` is in `default_table` (main, unless the output came from
`ip route show table N`, which omits `table N` too).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_interface,
    ip_network,
)
from typing import Any

from netsleuth.errors import ParseError
from netsleuth.model.net import (
    TABLE_LOCAL,
    TABLE_MAIN,
    TABLE_NAMES,
    Address,
    IPAddress,
    IPInterface,
    IPNetwork,
    Link,
    NextHop,
    PolicyRule,
    Route,
    RouteType,
    RuleAction,
    Scope,
)
from netsleuth.model.source import SourceRef

__all__ = [
    "format_route",
    "kernel_routes_for_addresses",
    "parse_ip_addr",
    "parse_ip_link",
    "parse_ip_route",
    "parse_ip_rule",
    "parse_rt_tables",
]

JSONObject = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# Name tables (iproute2's defaults: /etc/iproute2/rt_scopes, rt_dsfield, /etc/protocols)
# ---------------------------------------------------------------------------------------------

_SCOPES: dict[str, Scope] = {
    "global": Scope.UNIVERSE,
    "universe": Scope.UNIVERSE,
    "site": Scope.SITE,
    "link": Scope.LINK,
    "host": Scope.HOST,
    "nowhere": Scope.NOWHERE,
}

# rt_dsfield as shipped with iproute2: `tos NAME` is printed when the value has a name.
_DSFIELD_NAMES: dict[str, int] = {
    "default": 0x00,
    "AF11": 0x28, "AF12": 0x30, "AF13": 0x38,
    "AF21": 0x48, "AF22": 0x50, "AF23": 0x58,
    "AF31": 0x68, "AF32": 0x70, "AF33": 0x78,
    "AF41": 0x88, "AF42": 0x90, "AF43": 0x98,
    "CS1": 0x20, "CS2": 0x40, "CS3": 0x60, "CS4": 0x80,
    "CS5": 0xA0, "CS6": 0xC0, "CS7": 0xE0,
    "EF": 0xB8,
}  # fmt: skip

# /etc/protocols (netbase): `ipproto NAME` is printed by getprotobynumber(); iproute2 falls back
# to `ipproto-N` for numbers without a name.
_IP_PROTOCOLS: dict[str, int] = {
    "ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6,
    "egp": 8, "igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27,
    "iso-tp4": 29, "dccp": 33, "xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6": 41,
    "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51,
    "skip": 57, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "rspf": 73, "vmtp": 81,
    "eigrp": 88, "ospf": 89, "ax.25": 93, "ipip": 94, "etherip": 97, "encap": 98, "pim": 103,
    "ipcomp": 108, "vrrp": 112, "l2tp": 115, "isis": 124, "sctp": 132, "fc": 133,
    "mobility-header": 135, "udplite": 136, "mpls-in-ip": 137, "manet": 138, "hip": 139,
    "shim6": 140, "wesp": 141, "rohc": 142, "ethernet": 143,
}  # fmt: skip

_ROUTE_TYPES = frozenset(t.value for t in RouteType)

# Route words printed with one value that the route itself does not depend on: the
# nexthop-object id (the nexthop is printed as well), mark/uid/iif of `ip route get` results,
# realms (an accounting tag), cache and exception data (expires, users, age, error, ...).
# `pref` (RFC 4191 router preference) only breaks ties between IPv6 routes with the same prefix
# and metric (rt6_score_route, for RA-learned default routers); it is not modelled.
_ROUTE_SKIP_WITH_VALUE = frozenset(
    {"nhid", "mark", "realm", "realms", "uid", "expires", "users", "age", "used", "error",
     "iif", "ipid", "ts", "tsage", "pref", "ttl-propagate"}
)  # fmt: skip

# RTA_METRICS entries (`mtu lock 1400`, `rtt 10ms`, `congctl lock reno`): TCP/PMTU tuning only.
_ROUTE_METRICS = frozenset(
    {"mtu", "window", "rtt", "rttvar", "ssthresh", "cwnd", "advmss", "reordering", "hoplimit",
     "initcwnd", "features", "rto_min", "initrwnd", "quickack", "congctl", "fastopen_no_cookie"}
)  # fmt: skip

# RTNH_F_* / RTM_F_* flags printed as bare words (print_rt_flags). `onlink` is kept. `dead`
# (device down) and `linkdown` (no carrier) mirror the state of the nexthop's device, which the
# simulator reads from the links (`ip link`), where it is known for every route at once; the
# others mark hardware offload and notification state.
_ROUTE_FLAGS = frozenset(
    {"dead", "pervasive", "notify", "linkdown", "unresolved", "rt_offload", "rt_trap",
     "rt_offload_failed", "offload", "trap", "offload_failed"}
)  # fmt: skip

_ROUTE_JSON_SKIP = frozenset(
    {"nhid", "mark", "flow", "realms", "uid", "expires", "users", "age", "used", "error",
     "iif", "ipid", "ts", "tsage", "pref", "ttl-propagate", "metrics", "cache", "deleted"}
)  # fmt: skip

_ADDR_FLAGS = frozenset(
    {"secondary", "temporary", "nodad", "optimistic", "dadfailed", "home", "deprecated",
     "tentative", "permanent", "mngtmpaddr", "noprefixroute", "autojoin", "stable-privacy",
     "dynamic"}
)  # fmt: skip

# Words that can start the first indented line after `link/...` without being a link kind.
_NOT_A_KIND = frozenset(
    {"inet", "inet6", "valid_lft", "altname", "alias", "vf", "prop", "addrgenmode",
     "numtxqueues", "RX:", "TX:", "promiscuity", "link-netnsid", "link-netns", "xdp",
     "prog/xdp", "protodown", "parentbus", "gso_max_size", "bridge_slave"}
)  # fmt: skip

_ROUTE_ATTRS = (
    "a route attribute (via, dev, src, metric, table, proto, scope, tos, onlink, nexthop, ...)"
)


# ---------------------------------------------------------------------------------------------
# Positions, words, small value parsers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a value came from, to build SourceRefs and ParseErrors."""

    source: str
    line: int
    text: str

    @property
    def ref(self) -> SourceRef:
        return SourceRef(self.source, self.line)

    def error(self, expected: str) -> ParseError:
        return ParseError(self.source, self.line, self.text, expected)


@dataclass(slots=True)
class _Words:
    """The words of one logical text record (a route spans several lines with multipath)."""

    items: list[tuple[str, _Where]]
    pos: int = 0

    def __bool__(self) -> bool:
        return self.pos < len(self.items)

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def take(self) -> tuple[str, _Where]:
        item = self.items[self.pos]
        self.pos += 1
        return item

    def value(self, key: str, where: _Where) -> tuple[str, _Where]:
        if not self:
            raise where.error(f"a value after {key!r}")
        return self.take()


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """1-based lines split on newlines only (str.splitlines would also split on \\x0c etc.)."""
    for number, line in enumerate(text.split("\n"), 1):
        yield number, line.rstrip("\r")


def _int(word: str, where: _Where, what: str, *, limit: int = 2**32 - 1) -> int:
    try:
        value = int(word, 16) if word[:2].lower() == "0x" else int(word, 10)
    except ValueError:
        raise where.error(f"{what} (a number), not {word!r}") from None
    if not 0 <= value <= limit:
        raise where.error(f"{what} between 0 and {limit}, not {word!r}")
    return value


def _address(word: str, where: _Where, what: str) -> IPAddress:
    try:
        return ip_address(word)
    except ValueError:
        raise where.error(f"{what} (an IPv4 or IPv6 address), not {word!r}") from None


def _zero_network(family: int, prefixlen: int) -> IPNetwork:
    return IPv4Network((0, prefixlen)) if family == 4 else IPv6Network((0, prefixlen))


def _network(word: str, family: int, where: _Where, what: str) -> IPNetwork:
    """`default`/`all`, `ADDR`, `ADDR/LEN`, or iproute2's `0/LEN` (a length without address)."""
    try:
        if word in ("default", "all"):
            return _zero_network(family, 0)
        if word.startswith("0/"):
            return _zero_network(family, int(word[2:], 10))
        return ip_network(word, strict=False)
    except ValueError:
        raise where.error(f"{what} (default or an IP prefix), not {word!r}") from None


def _family_of(word: str) -> int | None:
    """4 or 6 when `word` is an address or prefix, else None (default, all, names)."""
    if word in ("default", "all") or word.startswith("0/"):
        return None
    try:
        return ip_network(word, strict=False).version
    except ValueError:
        try:
            return ip_address(word).version
        except ValueError:
            return None


def _scope(word: str, where: _Where) -> Scope:
    if word in _SCOPES:
        return _SCOPES[word]
    if word.isdigit():
        try:
            return Scope(int(word))
        except ValueError:
            pass
    raise where.error(f"a scope (global, site, link, host, nowhere), not {word!r}")


def _tos(word: str, where: _Where) -> int:
    if word in _DSFIELD_NAMES:
        return _DSFIELD_NAMES[word]
    return _int(word, where, "a TOS value (hex, decimal or an rt_dsfield name)", limit=255)


def _table(word: str, where: _Where, table_names: Mapping[str, int] | None) -> int:
    if word.isdigit():
        return _int(word, where, "a routing table id")
    if word in TABLE_NAMES:
        return TABLE_NAMES[word]
    if table_names is not None and word in table_names:
        return table_names[word]
    raise where.error(
        f"a numeric routing table id or local/main/default, not {word!r} (a name from "
        "rt_tables must be given as table_names=, e.g. from parse_rt_tables)"
    )


def _ipproto(word: str, where: _Where) -> int:
    name = word.lower()
    if name in _IP_PROTOCOLS:
        return _IP_PROTOCOLS[name]
    if name.startswith("ipproto-"):
        name = name[len("ipproto-") :]
    if name.isdigit():
        return _int(name, where, "an IP protocol number", limit=255)
    raise where.error(f"an IP protocol (tcp, udp, ..., or a number), not {word!r}")


def _range(word: str, where: _Where, what: str, limit: int) -> tuple[int, int]:
    """`N` or `N-M` (uidrange, sport, dport)."""
    low, dash, high = word.partition("-")
    start = _int(low, where, what, limit=limit)
    end = _int(high, where, what, limit=limit) if dash else start
    if end < start:
        raise where.error(f"{what} as an ascending range, not {word!r}")
    return start, end


def _mark(word: str, where: _Where) -> tuple[int, int]:
    """`fwmark VALUE[/MASK]`."""
    value, slash, mask = word.partition("/")
    mark = _int(value, where, "a fwmark")
    return mark, _int(mask, where, "a fwmark mask") if slash else 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# JSON input
# ---------------------------------------------------------------------------------------------


def _is_json(text: str) -> bool:
    return text.lstrip().startswith("[")


def _line_text(text: str, line: int) -> str:
    lines = text.split("\n")
    return lines[line - 1] if 0 < line <= len(lines) else ""


def _element_lines(text: str, start: int, end: int) -> list[int]:
    """For the JSON array text[start:end], the line of each element's first member."""
    lines: list[int] = []
    line = text.count("\n", 0, start) + 1
    depth = 0
    in_string = escaped = False
    want_first = False
    for ch in text[start:end]:
        if ch == "\n":
            line += 1
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if want_first and not ch.isspace():
            lines.append(line)
            want_first = False
        if ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth == 2:
                want_first = True
        elif ch in "]}":
            if want_first:  # an empty element: {} or []
                lines.append(line)
                want_first = False
            depth -= 1
    return lines


def _json_objects(text: str, source: str, what: str) -> list[tuple[JSONObject, _Where]]:
    """The objects of one or more concatenated `ip -j` arrays, each with its position.

    Empty objects are skipped: some iproute2 releases print `{}` for filtered-out entries.
    """
    decoder = json.JSONDecoder()
    out: list[tuple[JSONObject, _Where]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        line = text.count("\n", 0, pos) + 1
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ParseError(
                source, exc.lineno, _line_text(text, exc.lineno), f"{what} ({exc.msg})"
            ) from None
        except RecursionError:
            raise ParseError(source, line, _line_text(text, line), what) from None
        if not isinstance(value, list):
            raise ParseError(source, line, _line_text(text, line), f"{what}: a JSON array")
        starts = _element_lines(text, pos, end)
        for index, element in enumerate(value):
            elem_line = starts[index] if index < len(starts) else line
            if not isinstance(element, dict):
                raise ParseError(
                    source, elem_line, _line_text(text, elem_line), f"{what}: JSON objects"
                )
            if element:
                out.append((element, _Where(source, elem_line, _compact(element))))
        pos = end


def _compact(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _jstr(obj: JSONObject, key: str, where: _Where) -> str | None:
    """A JSON member that iproute2 prints as a string (numbers accepted: `"table": 100`)."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise where.error(f"a string for {key!r}, not {_compact(value)}")
    return str(value)


def _jint(obj: JSONObject, key: str, where: _Where, limit: int = 2**32 - 1) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise where.error(f"a number for {key!r}, not {_compact(value)}")
    return _int(str(value), where, repr(key), limit=limit)


def _jlist(obj: JSONObject, key: str, where: _Where) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.error(f"a list for {key!r}, not {_compact(value)}")
    return value


def _jflags(obj: JSONObject, where: _Where) -> list[str]:
    flags = _jlist(obj, "flags", where)
    if not all(isinstance(f, str) for f in flags):
        raise where.error("'flags' as a list of strings")
    return flags


# ---------------------------------------------------------------------------------------------
# ip route
# ---------------------------------------------------------------------------------------------


def parse_rt_tables(text: str, source: str) -> dict[str, int]:
    """Parse an rt_tables file (`/etc/iproute2/rt_tables`): `ID NAME` lines, `#` comments."""
    names: dict[str, int] = {}
    for number, line in _lines(text):
        content = line.split("#", 1)[0].split()
        if not content:
            continue
        where = _Where(source, number, line)
        if len(content) != 2:
            raise where.error("`ID NAME` (an rt_tables line)")
        names[content[1]] = _int(content[0], where, "a routing table id")
    return names


@dataclass(slots=True)
class _HopBuilder:
    gateway: tuple[str, _Where] | None = None  # word and where, resolved once family is known
    explicit_family: bool = False  # `via inet6 ADDR`: RTA_VIA, may differ from the route's
    dev: str | None = None
    weight: int = 1
    onlink: bool = False

    def build(self) -> NextHop:
        gateway = None
        if self.gateway is not None:
            gateway = _address(self.gateway[0], self.gateway[1], "a gateway")
        return NextHop(gateway=gateway, dev=self.dev, weight=self.weight, onlink=self.onlink)


@dataclass(slots=True)
class _RouteBuilder:
    """Attributes collected from text words or JSON members, resolved once the family is known."""

    where: _Where
    raw: str
    type: RouteType = RouteType.UNICAST
    dst: tuple[str, _Where] | None = None
    src: tuple[str, _Where] | None = None
    table: int | None = None
    metric: int = 0
    prefsrc: tuple[str, _Where] | None = None
    scope: Scope = Scope.UNIVERSE
    protocol: str | None = None
    tos: int = 0
    ipv6_hint: bool = False  # `pref` is only ever printed for IPv6 routes (RTA_PREF)
    hop: _HopBuilder = field(default_factory=_HopBuilder)
    multipath: list[_HopBuilder] = field(default_factory=list)

    def family(self, default: int) -> int:
        for item in (self.dst, self.src, self.prefsrc):
            if item is not None and (fam := _family_of(item[0])) is not None:
                return fam
        hops = [*self.multipath, self.hop]
        for hop in hops:
            if hop.gateway is not None and not hop.explicit_family:
                fam = _family_of(hop.gateway[0])
                if fam is not None:
                    return fam
        return 6 if self.ipv6_hint else default

    def build(self, family: int, default_table: int) -> Route:
        fam = self.family(family)
        if self.dst is None:
            raise self.where.error("a route destination (default or a prefix)")
        dst = _network(self.dst[0], fam, self.dst[1], "a route destination")
        src = _network(self.src[0], fam, self.src[1], "a source prefix") if self.src else None
        prefsrc = _address(self.prefsrc[0], self.prefsrc[1], "a src") if self.prefsrc else None
        for label, value in (("source prefix", src), ("src", prefsrc)):
            if value is not None and value.version != dst.version:
                raise self.where.error(f"a {label} of the same family as the destination")
        if self.multipath:
            builders = self.multipath
        elif self.hop.gateway is not None or self.hop.dev is not None:
            builders = [self.hop]
        else:
            builders = []  # blackhole, unreachable, prohibit, throw: no way out
        hops = tuple(h.build() for h in builders)
        for builder, hop in zip(builders, hops, strict=True):
            # A gateway of the other family is printed `via inet6 ADDR` (RTA_VIA), never bare.
            gateway = hop.gateway
            if gateway is not None and not builder.explicit_family and gateway.version != fam:
                raise self.where.error("a gateway of the same family as the destination")
        return Route(
            dst=dst,
            type=self.type,
            table=default_table if self.table is None else self.table,
            nexthops=hops,
            metric=self.metric,
            prefsrc=prefsrc,
            scope=self.scope,
            protocol=self.protocol,
            tos=self.tos,
            source=self.where.ref,
            raw=self.raw,
            src=src,
        )


def _route_text_records(text: str, source: str) -> Iterator[tuple[_Words, _Where, str]]:
    """Group lines into routes: an indented line (`\\tnexthop via ...`, `    cache`) continues
    the route above it. `ip -o` joins those lines with a backslash instead; it is dropped."""
    current: list[tuple[str, _Where]] | None = None
    first: _Where | None = None
    raw_parts: list[str] = []
    for number, line in _lines(text):
        if not line.strip():
            continue
        where = _Where(source, number, line)
        words = [(w, where) for w in line.split() if w != "\\"]
        if line[0].isspace():
            if current is None:
                raise where.error("a route line before this continuation line")
            current.extend(words)
            raw_parts.append(line.strip())
            continue
        if current is not None and first is not None:
            yield _Words(current), first, " ".join(raw_parts)
        current, first, raw_parts = words, where, [line.strip()]
    if current is not None and first is not None:
        yield _Words(current), first, " ".join(raw_parts)


def _route_from_words(
    words: _Words, first: _Where, raw: str, table_names: Mapping[str, int] | None
) -> _RouteBuilder:
    rb = _RouteBuilder(where=first, raw=raw)
    word, where = words.take()
    if word in _ROUTE_TYPES:
        rb.type = RouteType(word)
        word, where = words.value(word, where)
    rb.dst = (word, where)
    hop = rb.hop
    while words:
        word, where = words.take()
        if word == "nexthop":
            hop = _HopBuilder()
            rb.multipath.append(hop)
        elif word == "via":
            value, vwhere = words.value(word, where)
            if value in ("inet", "inet6"):  # RTA_VIA: a gateway of another family
                hop.explicit_family = True
                value, vwhere = words.value(value, vwhere)
            hop.gateway = (value, vwhere)
        elif word == "dev":
            hop.dev = words.value(word, where)[0]
        elif word == "weight" and rb.multipath:
            hop.weight = _int(*words.value(word, where), "a nexthop weight", limit=256)
        elif word == "onlink":
            hop.onlink = True
        elif word in _ROUTE_FLAGS:
            pass
        elif word in ("realms", "realm"):  # also per nexthop (RTA_FLOW): accounting only
            words.value(word, where)
        elif rb.multipath:
            # Everything after the first `nexthop` belongs to a nexthop (iproute2 prints the
            # multipath block last); route attributes there mean the text is not ip's output.
            raise where.error(f"a nexthop attribute (via, dev, weight, onlink), not {word!r}")
        elif word == "from":
            rb.src = words.value(word, where)
        elif word == "src":
            rb.prefsrc = words.value(word, where)
        elif word == "table":
            rb.table = _table(words.value(word, where)[0], where, table_names)
        elif word == "metric":
            rb.metric = _int(*words.value(word, where), "a route metric")
        elif word == "proto":
            rb.protocol = words.value(word, where)[0]
        elif word == "scope":
            rb.scope = _scope(words.value(word, where)[0], where)
        elif word == "tos":
            rb.tos = _tos(words.value(word, where)[0], where)
        elif word == "pref":
            words.value(word, where)
            rb.ipv6_hint = True
        elif word in _ROUTE_SKIP_WITH_VALUE:
            words.value(word, where)
        elif word in _ROUTE_METRICS:
            value, _ = words.value(word, where)
            if value == "lock":
                words.value(word, where)
        elif word == "cache":  # `cache` alone or `cache <flag,flag>` (RTM_F_CLONED entries)
            if (nxt := words.peek()) is not None and nxt.startswith("<"):
                words.take()
        else:
            raise where.error(f"{_ROUTE_ATTRS}, not {word!r}")
    return rb


def _hop_from_json(obj: JSONObject, where: _Where, hop: _HopBuilder) -> None:
    gateway = _jstr(obj, "gateway", where)
    if gateway is not None:
        hop.gateway = (gateway, where)
    via = obj.get("via")
    if via is not None:
        if not isinstance(via, dict) or not isinstance(via.get("host"), str):
            raise where.error('\'via\' as {"family": ..., "host": ADDRESS}')
        hop.gateway = (via["host"], where)
        hop.explicit_family = True
    hop.dev = _jstr(obj, "dev", where)
    hop.onlink = "onlink" in _jflags(obj, where)


def _route_from_json(
    obj: JSONObject, where: _Where, table_names: Mapping[str, int] | None
) -> _RouteBuilder:
    rb = _RouteBuilder(where=where, raw=where.text)
    kind = _jstr(obj, "type", where)
    if kind is not None:
        if kind not in _ROUTE_TYPES:
            raise where.error(f"a route type ({', '.join(sorted(_ROUTE_TYPES))}), not {kind!r}")
        rb.type = RouteType(kind)
    dst = _jstr(obj, "dst", where)
    rb.dst = (dst, where) if dst is not None else None
    src = _jstr(obj, "from", where)
    rb.src = (src, where) if src is not None else None
    prefsrc = _jstr(obj, "prefsrc", where)
    rb.prefsrc = (prefsrc, where) if prefsrc is not None else None
    table = _jstr(obj, "table", where)
    rb.table = _table(table, where, table_names) if table is not None else None
    rb.metric = _jint(obj, "metric", where) or 0
    rb.protocol = _jstr(obj, "protocol", where)
    scope = _jstr(obj, "scope", where)
    rb.scope = _scope(scope, where) if scope is not None else Scope.UNIVERSE
    tos = _jstr(obj, "tos", where)
    rb.tos = _tos(tos, where) if tos is not None else 0
    rb.ipv6_hint = "pref" in obj
    _hop_from_json(obj, where, rb.hop)
    # iproute2 >= 4.x prints the multipath block as "nexthops"; older JSON used "multipath".
    for key in ("nexthops", "multipath"):
        for item in _jlist(obj, key, where):
            if not isinstance(item, dict):
                raise where.error(f"{key!r} as a list of objects")
            hop = _HopBuilder()
            _hop_from_json(item, where, hop)
            weight = _jint(item, "weight", where, limit=256)
            hop.weight = 1 if weight is None else weight
            rb.multipath.append(hop)
    known = {"type", "dst", "from", "prefsrc", "table", "metric", "protocol", "scope", "tos",
             "gateway", "via", "dev", "flags", "nexthops", "multipath"}  # fmt: skip
    for key in obj:
        if key not in known and key not in _ROUTE_JSON_SKIP:
            raise where.error(f"a known `ip -j route` member, not {key!r}")
    return rb


def parse_ip_route(
    text: str,
    source: str,
    *,
    family: int = 4,
    default_table: int = TABLE_MAIN,
    table_names: Mapping[str, int] | None = None,
) -> tuple[Route, ...]:
    """Parse `ip [-4|-6] [-j] route [show table all|N]`, text or JSON.

    `family` applies to routes whose family the line does not show (`unreachable default`);
    a line with an address, or IPv6's `pref`, decides for itself, so `ip route show table all`
    (which lists both families) parses correctly. `default_table` is the table of routes that
    print no `table` word; `table_names` maps extra rt_tables names to ids.
    """
    if family not in (4, 6):
        raise ValueError(f"family must be 4 or 6, not {family}")
    builders: list[_RouteBuilder] = []
    if _is_json(text):
        for obj, where in _json_objects(text, source, "`ip -j route` output"):
            builders.append(_route_from_json(obj, where, table_names))
    else:
        for words, first, raw in _route_text_records(text, source):
            builders.append(_route_from_words(words, first, raw, table_names))
    return tuple(b.build(family, default_table) for b in builders)


# ---------------------------------------------------------------------------------------------
# ip rule
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _RuleBuilder:
    where: _Where
    priority: int = 0
    invert: bool = False
    src: tuple[str, _Where] | None = None
    dst: tuple[str, _Where] | None = None
    tos: int = 0
    fwmark: int | None = None
    fwmask: int = 0xFFFFFFFF
    iif: str | None = None
    oif: str | None = None
    table: int | None = None
    l3mdev: bool = False
    goto: int | None = None
    action: RuleAction | None = None
    suppress_prefixlength: int | None = None
    suppress_ifgroup: int | None = None
    uidrange: tuple[int, int] | None = None
    ipproto: int | None = None
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    protocol: str | None = None

    def build(self) -> PolicyRule:
        fam = 4
        for item in (self.src, self.dst):
            if item is not None and (found := _family_of(item[0])) is not None:
                fam = found
        src = _network(self.src[0], fam, self.src[1], "a source prefix") if self.src else None
        dst = _network(self.dst[0], fam, self.dst[1], "a destination") if self.dst else None
        if src is not None and dst is not None and src.version != dst.version:
            raise self.where.error("source and destination prefixes of one family")
        if self.src is not None and self.src[0] == "all":
            src = None
        action = self.action
        if action is None:
            if self.goto is not None:
                action = RuleAction.GOTO
            elif self.table is not None or self.l3mdev:
                action = RuleAction.LOOKUP
            else:
                raise self.where.error(
                    "a rule action (lookup TABLE, goto, nop, blackhole, unreachable, prohibit)"
                )
        return PolicyRule(
            priority=self.priority,
            action=action,
            table=self.table,
            goto=self.goto,
            src=src,
            dst=dst,
            iif=self.iif,
            oif=self.oif,
            fwmark=self.fwmark,
            fwmask=self.fwmask,
            tos=self.tos,
            invert=self.invert,
            suppress_prefixlength=self.suppress_prefixlength,
            suppress_ifgroup=self.suppress_ifgroup,
            source=self.where.ref,
            raw=self.where.text.strip(),
            l3mdev=self.l3mdev,
            uidrange=self.uidrange,
            ipproto=self.ipproto,
            sport=self.sport,
            dport=self.dport,
            protocol=self.protocol,
        )


def _ifgroup(word: str, where: _Where) -> int:
    # /etc/iproute2/group names only `default` (0) unless the admin adds more.
    return 0 if word == "default" else _int(word, where, "an interface group (number)")


_UNSUPPORTED_RULE_WORDS = {
    "tun_id": "a rule selector netsleuth models (tun_id matches tunnel metadata, not modelled)",
    "map-to": "a rule action the kernel still has (NAT rules were removed in Linux 2.6)",
    "nat": "a rule action the kernel still has (NAT rules were removed in Linux 2.6)",
}


def _rule_from_words(
    words: _Words, where: _Where, table_names: Mapping[str, int] | None
) -> _RuleBuilder:
    head, _ = words.take()
    if not head.endswith(":"):
        raise where.error("`PRIORITY:` at the start of an `ip rule` line")
    rb = _RuleBuilder(where=where, priority=_int(head[:-1], where, "a rule priority"))
    while words:
        word, _ = words.take()
        if word == "not":
            rb.invert = True
        elif word == "from":
            rb.src = words.value(word, where)
        elif word == "to":
            rb.dst = words.value(word, where)
        elif word in ("tos", "dsfield"):
            rb.tos = _tos(words.value(word, where)[0], where)
        elif word == "fwmark":
            rb.fwmark, rb.fwmask = _mark(words.value(word, where)[0], where)
        elif word in ("iif", "iifname", "oif", "oifname"):
            name = words.value(word, where)[0]
            if word.startswith("iif"):
                rb.iif = name
            else:
                rb.oif = name
            if words.peek() == "[detached]":  # the device does not exist (yet)
                words.take()
        elif word in ("lookup", "table"):
            value = words.value(word, where)[0]
            if value == "[l3mdev-table]":
                rb.l3mdev = True
            else:
                rb.table = _table(value, where, table_names)
        elif word == "l3mdev":
            rb.l3mdev = True
        elif word == "goto":
            rb.goto = _int(words.value(word, where)[0], where, "a goto target priority")
            if words.peek() == "[unresolved]":  # no rule with that priority exists
                words.take()
        elif word == "nop":
            rb.action = RuleAction.NOP
        elif word in ("blackhole", "unreachable", "prohibit"):
            rb.action = RuleAction(word)
        elif word == "type":  # the `ip rule add type unreachable` spelling
            value = words.value(word, where)[0]
            if value not in ("blackhole", "unreachable", "prohibit", "unicast"):
                raise where.error(f"a rule type (blackhole, unreachable, prohibit), not {value!r}")
            if value != "unicast":
                rb.action = RuleAction(value)
        elif word == "suppress_prefixlength":
            rb.suppress_prefixlength = _int(words.value(word, where)[0], where, "a prefix length")
        elif word == "suppress_ifgroup":
            rb.suppress_ifgroup = _ifgroup(words.value(word, where)[0], where)
        elif word == "uidrange":
            rb.uidrange = _range(words.value(word, where)[0], where, "a uid range", 2**32 - 1)
        elif word == "ipproto":
            rb.ipproto = _ipproto(words.value(word, where)[0], where)
        elif word in ("sport", "dport"):
            ports = _range(words.value(word, where)[0], where, "a port range", 65535)
            if word == "sport":
                rb.sport = ports
            else:
                rb.dport = ports
        elif word in ("proto", "protocol"):
            rb.protocol = words.value(word, where)[0]
        elif word in ("realms", "realm"):
            # FRA_FLOW only tags the route for accounting; fib4_rule_match() never tests it.
            words.value(word, where)
        elif word in _UNSUPPORTED_RULE_WORDS:
            raise where.error(_UNSUPPORTED_RULE_WORDS[word])
        else:
            raise where.error(
                "a rule selector or action (from, to, iif, oif, fwmark, tos, lookup, goto, "
                f"uidrange, ipproto, sport, dport, ...), not {word!r}"
            )
    return rb


def _rule_from_json(
    obj: JSONObject, where: _Where, table_names: Mapping[str, int] | None
) -> _RuleBuilder:
    priority = _jint(obj, "priority", where)
    rb = _RuleBuilder(where=where, priority=0 if priority is None else priority)
    rb.invert = "not" in obj
    for key, length_key in (("src", "srclen"), ("dst", "dstlen")):
        addr = _jstr(obj, key, where)
        if addr is None:
            continue
        length = _jint(obj, length_key, where, limit=128)
        word = addr if length is None or addr == "all" else f"{addr}/{length}"
        if key == "src":
            rb.src = (word, where)
        else:
            rb.dst = (word, where)
    tos = _jstr(obj, "tos", where)
    rb.tos = _tos(tos, where) if tos is not None else 0
    fwmark = _jstr(obj, "fwmark", where)
    if fwmark is not None:
        rb.fwmark = _int(fwmark, where, "a fwmark")
        fwmask = _jstr(obj, "fwmask", where)
        rb.fwmask = _int(fwmask, where, "a fwmark mask") if fwmask is not None else 0xFFFFFFFF
    rb.iif = _jstr(obj, "iif", where)
    rb.oif = _jstr(obj, "oif", where)
    table = _jstr(obj, "table", where)
    rb.table = _table(table, where, table_names) if table is not None else None
    rb.l3mdev = "l3mdev" in obj
    rb.goto = _jint(obj, "goto", where)
    if "nop" in obj:
        rb.action = RuleAction.NOP
    action = _jstr(obj, "action", where)
    if action is not None:
        if action not in ("blackhole", "unreachable", "prohibit", "nop", "goto"):
            raise where.error(f"a rule action (blackhole, unreachable, prohibit), not {action!r}")
        rb.action = RuleAction(action)
    rb.suppress_prefixlength = _jint(obj, "suppress_prefixlen", where, limit=128)
    group = _jstr(obj, "suppress_ifgroup", where)
    rb.suppress_ifgroup = _ifgroup(group, where) if group is not None else None
    uid_start = _jint(obj, "uid_start", where)
    uid_end = _jint(obj, "uid_end", where)
    if uid_start is not None or uid_end is not None:
        if uid_start is None or uid_end is None or uid_end < uid_start:
            raise where.error("'uid_start' and 'uid_end' as an ascending range")
        rb.uidrange = (uid_start, uid_end)
    ipproto = _jstr(obj, "ipproto", where)
    rb.ipproto = _ipproto(ipproto, where) if ipproto is not None else None
    rb.sport = _json_ports(obj, "sport", where)
    rb.dport = _json_ports(obj, "dport", where)
    rb.protocol = _jstr(obj, "protocol", where)
    for key, expected in _UNSUPPORTED_RULE_WORDS.items():
        if key in obj:
            raise where.error(expected)
    known = {"priority", "not", "src", "srclen", "dst", "dstlen", "tos", "fwmark", "fwmask",
             "iif", "iif_detached", "oif", "oif_detached", "table", "l3mdev", "goto",
             "unresolved", "nop", "action", "suppress_prefixlen", "suppress_ifgroup",
             "uid_start", "uid_end", "ipproto", "sport", "sport_start", "sport_end", "dport",
             "dport_start", "dport_end", "protocol", "flow_from", "flow_to", "realms",
             "flags"}  # fmt: skip
    for key in obj:
        if key not in known:
            raise where.error(f"a known `ip -j rule` member, not {key!r}")
    return rb


def _json_ports(obj: JSONObject, key: str, where: _Where) -> tuple[int, int] | None:
    """iproute2 prints a single port as `"dport": 53`, a range as dport_start/dport_end."""
    single = _jint(obj, key, where, limit=65535)
    if single is not None:
        return single, single
    start = _jint(obj, f"{key}_start", where, limit=65535)
    end = _jint(obj, f"{key}_end", where, limit=65535)
    if start is None and end is None:
        return None
    if start is None or end is None or end < start:
        raise where.error(f"'{key}_start' and '{key}_end' as an ascending range")
    return start, end


def parse_ip_rule(
    text: str, source: str, *, table_names: Mapping[str, int] | None = None
) -> tuple[PolicyRule, ...]:
    """Parse `ip [-4|-6] [-j] rule show`, text or JSON, in the order printed (priority order)."""
    builders: list[_RuleBuilder] = []
    if _is_json(text):
        for obj, where in _json_objects(text, source, "`ip -j rule` output"):
            builders.append(_rule_from_json(obj, where, table_names))
    else:
        for number, line in _lines(text):
            if not line.strip():
                continue
            where = _Where(source, number, line)
            words = _Words([(w, where) for w in line.split()])
            builders.append(_rule_from_words(words, where, table_names))
    return tuple(b.build() for b in builders)


# ---------------------------------------------------------------------------------------------
# ip addr / ip link
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _LinkBuilder:
    where: _Where
    name: str
    index: int | None = None
    flags: tuple[str, ...] = ()
    mtu: int | None = None
    master: str | None = None
    state: str | None = None
    mac: str | None = None
    kind: str | None = None

    def build(self) -> Link:
        return Link(
            name=self.name,
            index=self.index,
            kind=self.kind,
            up="UP" in self.flags and "LOWER_UP" in self.flags,
            mtu=self.mtu,
            master=self.master,
            mac=self.mac,
            flags=self.flags,
            source=self.where.ref,
            state=self.state,
        )


def _is_mac(word: str) -> bool:
    parts = word.split(":")
    return len(parts) >= 6 and all(
        len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
    )


def _split_header(line: str, where: _Where) -> tuple[int, str, str]:
    """`N: NAME[@PARENT]: REST` → (index, name, rest). Interface names cannot hold `:`."""
    index_text, sep, rest = line.partition(":")
    if not sep or not index_text.strip().isdigit():
        raise where.error("a link header `N: NAME: <FLAGS> mtu ...` or an indented line")
    index = _int(index_text.strip(), where, "an interface index")
    name_part, sep, rest = rest.strip().partition(":")
    name = name_part.strip()
    if not name or any(c.isspace() for c in name):
        raise where.error("a link header `N: NAME: <FLAGS> ...` (an interface name after N:)")
    # `veth0@if5`, `eth0.100@eth0`, `tunl0@NONE`: the part after @ is the peer/parent link.
    name = name.split("@", 1)[0] or name
    return index, name, rest.strip() if sep else ""


def _link_header(line: str, where: _Where) -> _LinkBuilder:
    index, name, rest = _split_header(line, where)
    if not rest.startswith("<") or ">" not in rest:
        raise where.error("link flags `<UP,LOWER_UP,...>` after the interface name")
    flag_text, _, rest = rest[1:].partition(">")
    lb = _LinkBuilder(where=where, name=name, index=index)
    lb.flags = tuple(f for f in flag_text.split(",") if f)
    words = rest.split()
    # Key/value pairs; other header words (qdisc, group, qlen, xdp programs, ...) vary across
    # iproute2 releases and do not matter to routing.
    for key, value in itertools.pairwise(words):
        if key == "mtu":
            lb.mtu = _int(value, where, "an MTU")
        elif key == "master":
            lb.master = value
        elif key == "state":
            lb.state = value
    return lb


def _address_from_words(words: list[str], ifname: str, where: _Where) -> Address:
    """`inet[6] ADDR[/LEN] [peer P/LEN] [brd B] [any A] [metric N] scope S [FLAGS] [LABEL]`."""
    family, local_word = words[0], words[1] if len(words) > 1 else ""
    peer_word: str | None = None
    broadcast: IPAddress | None = None
    scope = Scope.UNIVERSE
    flags: list[str] = []
    label: str | None = None
    metric = 0
    rest = _Words([(w, where) for w in words[2:]])
    while rest:
        word, _ = rest.take()
        if word == "peer":
            peer_word = rest.value(word, where)[0]
        elif word == "brd":
            broadcast = _address(rest.value(word, where)[0], where, "a broadcast address")
        elif word in ("any", "proto"):  # anycast address, address protocol: not routing input
            rest.value(word, where)
        elif word == "metric":
            metric = _int(rest.value(word, where)[0], where, "an address metric")
        elif word == "scope":
            scope = _scope(rest.value(word, where)[0], where)
        elif word in _ADDR_FLAGS:
            flags.append(word)
        elif family == "inet" and not rest and word.startswith(ifname):
            label = word  # the kernel requires an IPv4 label to start with the device name
        else:
            raise where.error(
                f"an address attribute (brd, scope, peer, flags, label), not {word!r}"
            )
    return _make_address(
        family,
        local_word,
        peer_word,
        ifname,
        where,
        scope=scope,
        broadcast=broadcast,
        flags=tuple(flags),
        label=label,
        metric=metric,
    )


def _make_address(
    family: str,
    local_word: str,
    peer_word: str | None,
    ifname: str,
    where: _Where,
    *,
    scope: Scope,
    broadcast: IPAddress | None,
    flags: tuple[str, ...],
    label: str | None,
    metric: int,
) -> Address:
    want = 4 if family == "inet" else 6
    peer: IPInterface | None = None
    try:
        if peer_word is not None:
            # `inet 10.9.0.1 peer 10.9.0.2/32`: the prefix length belongs to the peer.
            peer = ip_interface(peer_word)
            local_ip = ip_address(local_word.split("/", 1)[0])
            interface = ip_interface(f"{local_ip}/{peer.network.prefixlen}")
        else:
            interface = ip_interface(local_word)
    except ValueError:
        raise where.error(
            f"an {family} address with prefix length, not {local_word!r}"
            + (f" peer {peer_word!r}" if peer_word else "")
        ) from None
    if interface.version != want or (peer is not None and peer.version != want):
        raise where.error(f"an IPv{want} address after {family!r}")
    if broadcast is not None and broadcast.version != want:
        raise where.error(f"an IPv{want} broadcast address")
    return Address(
        ifname=ifname,
        interface=interface,
        scope=scope,
        secondary="secondary" in flags,
        label=label,
        broadcast=broadcast,
        peer=peer,
        source=where.ref,
        flags=tuple(f for f in flags if f != "secondary"),
        metric=metric,
    )


def _kind_from_detail_line(line: str) -> str | None:
    """`ip -d` prints the link kind as the first word of the line after `link/...`."""
    first = line.split()[0] if line.split() else ""
    if (
        not first
        or first in _NOT_A_KIND
        or first.startswith("link/")
        or first.endswith("_slave")
        or not all(c.isalnum() or c in "_-" for c in first)
    ):
        return None
    return first


def _parse_links_text(text: str, source: str) -> tuple[list[_LinkBuilder], list[Address]]:
    links: list[_LinkBuilder] = []
    addresses: list[Address] = []
    current: _LinkBuilder | None = None
    after_link_line = False
    for number, line in _lines(text):
        if not line.strip():
            continue
        # `ip -o` prints each record on one line, joining its lines with a backslash.
        segments = line.split("\\")
        for seg_index, segment in enumerate(segments):
            if not segment.strip():
                continue
            where = _Where(source, number, line)
            indented = seg_index > 0 or segment[0].isspace()
            if not indented:
                after_link_line = False
                words = segment.split()
                if len(words) > 2 and words[2] in ("inet", "inet6"):
                    # `ip -o addr`: `2: veth0    inet 192.0.2.1/24 ... scope global veth0`,
                    # then `\       valid_lft ...`, which carries nothing we use.
                    _, name, _ = _split_header(f"{words[0]} {words[1]}:", where)
                    addresses.append(_address_from_words(words[2:], name, where))
                    break
                current = _link_header(segment, where)
                links.append(current)
                continue
            if current is None:
                raise where.error("a link header `N: NAME: <FLAGS> ...` before indented lines")
            words = segment.split()
            if words[0].startswith("link/"):
                if len(words) > 1 and _is_mac(words[1]):
                    current.mac = words[1].lower()
                after_link_line = True
                continue
            if after_link_line and current.kind is None:
                current.kind = _kind_from_detail_line(segment)
            after_link_line = False
            if words[0] in ("inet", "inet6"):
                addresses.append(_address_from_words(words, current.name, where))
    return links, addresses


def _link_from_json(obj: JSONObject, where: _Where) -> _LinkBuilder:
    name = _jstr(obj, "ifname", where)
    if name is None:
        raise where.error("an 'ifname' member in each `ip -j link/addr` object")
    lb = _LinkBuilder(where=where, name=name, index=_jint(obj, "ifindex", where))
    flags = _jflags(obj, where)
    lb.flags = tuple(flags)
    lb.mtu = _jint(obj, "mtu", where)
    lb.master = _jstr(obj, "master", where)
    lb.state = _jstr(obj, "operstate", where)
    mac = _jstr(obj, "address", where)
    lb.mac = mac.lower() if mac is not None and _is_mac(mac) else None
    linkinfo = obj.get("linkinfo")
    if linkinfo is not None:
        if not isinstance(linkinfo, dict):
            raise where.error("'linkinfo' as an object")
        lb.kind = _jstr(linkinfo, "info_kind", where)
    return lb


def _address_from_json(info: JSONObject, ifname: str, where: _Where) -> Address | None:
    family = _jstr(info, "family", where)
    if family not in ("inet", "inet6"):
        return None  # other families (none printed today) carry no IP routing state
    local = _jstr(info, "local", where)
    prefixlen = _jint(info, "prefixlen", where, limit=128)
    if local is None or prefixlen is None:
        raise where.error("'local' and 'prefixlen' in each addr_info entry")
    peer_addr = _jstr(info, "address", where)
    peer_word = f"{peer_addr}/{prefixlen}" if peer_addr and peer_addr != local else None
    scope_word = _jstr(info, "scope", where)
    brd = _jstr(info, "broadcast", where)
    # Address flags are printed as `"noprefixroute": true`; `dynamic` too.
    flags = tuple(k for k, v in info.items() if v is True and k in _ADDR_FLAGS)
    return _make_address(
        family,
        local if peer_word else f"{local}/{prefixlen}",
        peer_word,
        ifname,
        where,
        scope=_scope(scope_word, where) if scope_word is not None else Scope.UNIVERSE,
        broadcast=_address(brd, where, "a broadcast address") if brd is not None else None,
        flags=flags,
        label=_jstr(info, "label", where),
        metric=_jint(info, "metric", where) or 0,
    )


def _parse_links_json(
    text: str, source: str, what: str
) -> tuple[list[_LinkBuilder], list[Address]]:
    links: list[_LinkBuilder] = []
    addresses: list[Address] = []
    for obj, where in _json_objects(text, source, what):
        lb = _link_from_json(obj, where)
        links.append(lb)
        for info in _jlist(obj, "addr_info", where):
            if not isinstance(info, dict):
                raise where.error("'addr_info' as a list of objects")
            address = _address_from_json(info, lb.name, where)
            if address is not None:
                addresses.append(address)
    return links, addresses


def parse_ip_addr(text: str, source: str) -> tuple[tuple[Link, ...], tuple[Address, ...]]:
    """Parse `ip [-d] [-o] [-j] addr show`: the links (headers) and their addresses."""
    if _is_json(text):
        links, addresses = _parse_links_json(text, source, "`ip -j addr` output")
    else:
        links, addresses = _parse_links_text(text, source)
    return tuple(lb.build() for lb in links), tuple(addresses)


def parse_ip_link(text: str, source: str) -> tuple[Link, ...]:
    """Parse `ip [-d] [-o] [-j] link show` (or `ip addr` output: addresses are ignored)."""
    return parse_ip_addr(text, source)[0]


# ---------------------------------------------------------------------------------------------
# Routes the kernel creates for addresses
# ---------------------------------------------------------------------------------------------


def _host_len(network: IPNetwork) -> int:
    return 32 if network.version == 4 else 128


def format_route(route: Route) -> str:
    """A route the way `ip route show table all` prints it, without flags and `pref`."""
    dst = route.dst
    if dst.prefixlen == 0:
        words = ["default"]
    elif dst.prefixlen == _host_len(dst):
        words = [str(dst.network_address)]
    else:
        words = [str(dst)]
    if route.type is not RouteType.UNICAST:
        words.insert(0, route.type.value)
    if route.src is not None:
        words += ["from", str(route.src)]
    if route.tos:
        words += ["tos", f"0x{route.tos:02x}"]
    if len(route.nexthops) == 1:
        hop = route.nexthops[0]
        if hop.gateway is not None:
            words.append("via")
            if hop.gateway.version != dst.version:  # RTA_VIA: printed with its family
                words.append("inet6" if hop.gateway.version == 6 else "inet")
            words.append(str(hop.gateway))
        if hop.dev is not None:
            words += ["dev", hop.dev]
    if route.table != TABLE_MAIN:
        names = {v: k for k, v in TABLE_NAMES.items()}
        words += ["table", names.get(route.table, str(route.table))]
    if route.protocol is not None:
        words += ["proto", route.protocol]
    if route.scope is not Scope.UNIVERSE:
        scope_names = {
            Scope.SITE: "site",
            Scope.LINK: "link",
            Scope.HOST: "host",
            Scope.NOWHERE: "nowhere",
        }
        words += ["scope", scope_names.get(route.scope, str(int(route.scope)))]
    if route.prefsrc is not None:
        words += ["src", str(route.prefsrc)]
    # IPv4 routes carry RTA_PRIORITY only when non-zero; IPv6 routes always do.
    if route.metric or dst.version == 6:
        words += ["metric", str(route.metric)]
    if len(route.nexthops) == 1 and route.nexthops[0].onlink:
        words.append("onlink")
    for hop in route.nexthops if len(route.nexthops) > 1 else ():
        words.append("nexthop")
        if hop.gateway is not None:
            words += ["via", str(hop.gateway)]
        if hop.dev is not None:
            words += ["dev", hop.dev]
        words += ["weight", str(hop.weight)]
        if hop.onlink:
            words.append("onlink")
    return " ".join(words)


def _ipv4_kernel_routes(
    address: Address, addresses: Sequence[Address], is_up: bool, is_loopback: bool
) -> list[Route]:
    """fib_add_ifaddr() (net/ipv4/fib_frontend.c), for one IPv4 address."""
    assert isinstance(address.interface.ip, IPv4Address)
    local = address.interface.ip
    plen = address.interface.network.prefixlen
    # ifa_address is the peer for point-to-point addresses, else the local address.
    prefix = _ipv4_prefix(address)
    # A secondary address's routes use its primary's address as preferred source: `prim`,
    # found by inet_ifa_byprefix() (same device, same mask, same prefix, not secondary).
    primary = address
    if address.secondary:
        for other in addresses:
            if (
                other.ifname == address.ifname
                and not other.secondary
                and other.interface.version == 4
                and _ipv4_prefix(other) == prefix
            ):
                primary = other
                break
    src = primary.ip
    routes = [_kernel_route(address, IPv4Network((int(local), 32)), RouteType.LOCAL, src)]
    # Everything below happens only while the device is up (`if (!(dev->flags & IFF_UP))`).
    # Carrier does not matter: without it the routes exist and `ip route` marks them linkdown.
    if not is_up:
        return routes
    brd = address.broadcast
    if brd is not None and int(brd) not in (0, 0xFFFFFFFF):
        routes.append(_kernel_route(address, IPv4Network((int(brd), 32)), RouteType.BROADCAST, src))
    # Older kernels skipped every prefix in 0.0.0.0/8 (ipv4_is_zeronet); since 0/8 became
    # assignable (Linux 5.3) only the all-zero prefix is skipped. Verified on this project's lab
    # kernel: 0.1.2.3/24 gets 0.1.2.0/24, 0.0.0.5/24 gets no prefix route.
    if (
        int(prefix.network_address) != 0
        and not address.secondary
        and (prefix.network_address != local or plen < 32)
    ):
        if not address.noprefixroute:
            # On a loopback device the prefix itself is local (127.0.0.0/8 in table local).
            rtype = RouteType.LOCAL if is_loopback else RouteType.UNICAST
            routes.append(_kernel_route(address, prefix, rtype, src, metric=address.metric))
        # "Add the network broadcast address, when it makes sense": not for /31 and /32.
        if plen < 31:
            bcast = IPv4Network((int(prefix.broadcast_address), 32))
            routes.append(_kernel_route(address, bcast, RouteType.BROADCAST, src))
    return routes


def _ipv4_prefix(address: Address) -> IPv4Network:
    base = address.peer.ip if address.peer is not None else address.ip
    return IPv4Network((int(base), address.interface.network.prefixlen), strict=False)


# IPv6 (net/ipv6/addrconf.c). The prefix route's metric is IP6_RT_PRIO_ADDRCONF unless the
# address has its own (`ip addr add ... metric N`).
_IP6_RT_PRIO_ADDRCONF = 256
_IPV6_MULTICAST = IPv6Network("ff00::/8")
_IPV6_LOOPBACK = IPv6Address("::1")


def _ipv6_kernel_routes(address: Address, is_up: bool, is_loopback: bool) -> list[Route]:
    routes: list[Route] = []
    # Until duplicate address detection succeeds the address is not the node's (tentative) or
    # never will be (dadfailed): no local route. Optimistic DAD (RFC 4429) uses it at once.
    usable = "dadfailed" not in address.flags and (
        "tentative" not in address.flags or "optimistic" in address.flags
    )
    if usable:
        host = IPv6Network((int(address.ip), 128))
        routes.append(_kernel_route(address, host, RouteType.LOCAL, None))
    # inet6_addr_add() adds the prefix route, even for a /128 and on lo, but not while the
    # device is down; ::1 on lo is made by init_loopback(), which adds none.
    if is_up and not address.noprefixroute and not (is_loopback and address.ip == _IPV6_LOOPBACK):
        base = address.peer.ip if address.peer is not None else address.ip
        prefix = IPv6Network((int(base), address.interface.network.prefixlen), strict=False)
        metric = address.metric or _IP6_RT_PRIO_ADDRCONF
        routes.append(_kernel_route(address, prefix, RouteType.UNICAST, None, metric=metric))
    return routes


def _kernel_route(
    address: Address,
    dst: IPNetwork,
    rtype: RouteType,
    prefsrc: IPAddress | None,
    *,
    metric: int = 0,
) -> Route:
    """A route as fib_magic() (IPv4) or addrconf (IPv6) installs it for `address`.

    IPv4: unicast routes go to main with scope link, all other types to local, `local` ones
    with scope host and the rest with scope link. IPv6 routes have no scope; only unicast
    prefix routes are in main.
    """
    if dst.version == 4:
        scope = Scope.HOST if rtype is RouteType.LOCAL else Scope.LINK
    else:
        scope = Scope.UNIVERSE
    route = Route(
        dst=dst,
        type=rtype,
        table=TABLE_MAIN if rtype is RouteType.UNICAST else TABLE_LOCAL,
        nexthops=(NextHop(dev=address.ifname),),
        metric=metric,
        prefsrc=prefsrc,
        scope=scope,
        protocol="kernel",
        source=address.source,
    )
    return replace(route, raw=format_route(route))


def kernel_routes_for_addresses(
    addresses: Sequence[Address], *, links: Sequence[Link] | None = None
) -> tuple[Route, ...]:
    """The routes the kernel itself adds for `addresses`, as `ip route show table all` lists.

    IPv4 follows fib_add_ifaddr() (net/ipv4/fib_frontend.c): for every address a `local` route
    in table local (scope host, src = the primary address of its subnet, also while the device
    is down); while the device is up, a `broadcast` route for an explicit `brd`, and for primary
    addresses other than a /32 host address the prefix route in main (`proto kernel scope link
    src ADDR`, metric from `ip addr add ... metric N`, none with `noprefixroute`; on a loopback
    device the prefix is a `local` route in table local) plus the subnet's broadcast address
    for prefixes up to /30.

    IPv6 follows addrconf (net/ipv6/addrconf.c): a `local` route per address once DAD is over
    (not `tentative`, not `dadfailed`), the prefix route in main with metric 256 while the
    device is up, and `multicast ff00::/8` in table local for each non-loopback device that is
    up and has IPv6 addresses. Subnet-router anycast routes (made only when the node forwards
    IPv6) and VRF devices (whose routes go to the VRF's table) are not modelled.

    `links` tells which devices are administratively up (UP flag) and which are loopbacks;
    without it every device counts as up and only `lo` as a loopback. Identical routes (two
    addresses naming the same broadcast address) are listed once, as the kernel keeps one.
    Verified against the kernel in tests/data/iproute2/kernel-routes/.
    """
    by_name = {link.name: link for link in links or ()}

    def is_up(ifname: str) -> bool:
        link = by_name.get(ifname)
        return link is None or "UP" in link.flags

    def is_loopback(ifname: str) -> bool:
        link = by_name.get(ifname)
        return "LOOPBACK" in link.flags if link is not None else ifname == "lo"

    routes: list[Route] = []
    ipv6_devices: dict[str, Address] = {}
    for address in addresses:
        up, loopback = is_up(address.ifname), is_loopback(address.ifname)
        if address.interface.version == 4:
            routes += _ipv4_kernel_routes(address, addresses, up, loopback)
        else:
            routes += _ipv6_kernel_routes(address, up, loopback)
            # addrconf_add_dev() adds the multicast route when IPv6 starts on a device
            # (not on loopbacks, which have no IFF_MULTICAST use here).
            if up and not loopback:
                ipv6_devices.setdefault(address.ifname, address)
    for address in ipv6_devices.values():
        routes.append(
            _kernel_route(
                address, _IPV6_MULTICAST, RouteType.MULTICAST, None, metric=_IP6_RT_PRIO_ADDRCONF
            )
        )
    unique: dict[tuple[object, ...], Route] = {}
    for route in routes:
        key = (route.table, route.type, route.dst, route.dev, route.prefsrc, route.metric)
        unique.setdefault(key, route)
    return tuple(unique.values())
