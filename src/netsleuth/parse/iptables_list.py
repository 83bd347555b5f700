"""`iptables -nvL` listings (what people paste) → `Ruleset`.

A listing is iptables' human-readable view: a `Chain NAME (policy P N packets, M bytes)` or
`Chain NAME (N references)` header, a column header, and one row per rule:

    [num] [pkts bytes] target prot opt [in out] source destination [extras]

(`num` with --line-numbers, counters and in/out with -v). Rows are translated into the same
Rule model `iptables-save` gives, option for option, so a rule reads the same whichever way it
was collected: prot → `-p` (1.8.9 prints numbers even for tcp), in/out → `-i/-o` (`*` is any,
`!eth0` negated), source/destination → `-s/-d` (`0.0.0.0/0` is any, a bare address gets /32 as
iptables-save prints it), and the extras column, which is every match's and then the target's
print() output (iptables/xshared.c print_rule_details, extensions/libxt_*.c), back into options.
The translations follow each extension's print and save functions in iptables 1.8.9 and are
checked against real `iptables-save`/`iptables -nvL` pairs in the tests.

Extras text that cannot be translated exactly (an extension whose listing drops information,
like hashlimit's name, or one not known here) becomes `Match("?", (Option("--unparsed",
(text,)),))`: kept, never guessed, so a simulator can say the rule is not evaluable.

The table comes from the `table` argument, else from a `# table: nat` line or an `iptables -t
nat -nvL` command line before the listing (a command without -t lists `filter`). Without any
hint the table is guessed (nat when a chain is PREROUTING/POSTROUTING or a target is DNAT/SNAT/
MASQUERADE/REDIRECT, else filter) and the guess is recorded in `Ruleset.issues`. Counters with
K/M/G/T suffixes are scaled (so they are approximate; -x listings are exact).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from netsleuth.errors import ParseError
from netsleuth.model.netfilter import (
    BUILTIN_CHAINS,
    BUILTIN_MODULE,
    Chain,
    Match,
    Option,
    ParseIssue,
    Rule,
    Ruleset,
    Table,
    Target,
)
from netsleuth.model.source import SourceRef
from netsleuth.parse.iptables_save import TARGET_OPTIONS

__all__ = ["UNPARSED_MODULE", "parse_iptables_list"]

UNPARSED_MODULE: Final = "?"
_TOOLS: Final = frozenset({"iptables", "ip6tables", "iptables-legacy", "iptables-nft",
                           "ip6tables-legacy", "ip6tables-nft"})
_NAT_CHAINS: Final = frozenset({"PREROUTING", "POSTROUTING"})
_NAT_TARGETS: Final = frozenset({"DNAT", "SNAT", "MASQUERADE", "REDIRECT"})
_ANY_ADDR: Final = frozenset({"0.0.0.0/0", "::/0", "anywhere"})
_ANY_IFACE: Final = frozenset({"*", "any"})
_ALL_PROTO: Final = frozenset({"all", "0"})
_UNITS: Final = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}

# iptables -n prints protocol numbers; iptables-save prints names: xtables_chain_protos first,
# then getprotobynumber() (Debian netbase /etc/protocols). Numbers not here stay numbers.
_PROTO_NAMES: Final = {
    "1": "icmp", "2": "igmp", "4": "ipencap", "6": "tcp", "8": "egp", "17": "udp",
    "33": "dccp", "41": "ipv6", "46": "rsvp", "47": "gre", "50": "esp", "51": "ah",
    "58": "ipv6-icmp", "89": "ospf", "94": "ipip", "97": "etherip", "103": "pim",
    "108": "ipcomp", "112": "vrrp", "115": "l2tp", "132": "sctp", "136": "udplite",
}
# TCP flag bits in the order print_tcpf walks them (extensions/libxt_tcp.c tcp_flag_names).
_TCP_FLAGS: Final = (("FIN", 0x01), ("SYN", 0x02), ("RST", 0x04), ("PSH", 0x08),
                     ("ACK", 0x10), ("URG", 0x20))
# LOG --log-* flag bits (include/uapi/linux/netfilter/xt_LOG.h), in LOG_save's order.
_LOG_FLAGS: Final = (("--log-tcp-sequence", 0x01), ("--log-tcp-options", 0x02),
                     ("--log-ip-options", 0x04), ("--log-uid", 0x08),
                     ("--log-macdecode", 0x20))
_LOG_DEFAULT_LEVEL: Final = "4"
_LIMIT_DEFAULT_BURST: Final = "5"
_CT_WORDS: Final = frozenset({
    "ctstate", "ctproto", "ctorigsrc", "ctorigdst", "ctreplsrc", "ctrepldst", "ctorigsrcport",
    "ctorigdstport", "ctreplsrcport", "ctrepldstport", "ctstatus", "ctexpire", "ctdir",
})
_SET_FLAGS: Final = frozenset({"return-nomatch", "update-counters", "update-subcounters"})
_SET_VALUES: Final = frozenset({"packets-eq", "packets-lt", "packets-gt", "bytes-eq",
                                "bytes-lt", "bytes-gt"})


def _opt(name: str, *args: str, neg: bool = False) -> Option:
    return Option(name, tuple(args), neg)


def _count(text: str) -> int | None:
    """`1234`, `1234K`, `5M` (xtables_print_num: units of 1000, rounded) → int."""
    if text.isdigit():
        return int(text)
    unit = _UNITS.get(text[-1:])
    if unit is not None and text[:-1].isdigit():
        return int(text[:-1]) * unit
    return None


def _tcp_flag_names(value: str) -> str | None:
    """`0x17` → `FIN,SYN,RST,ACK`; names (non-numeric listings) pass through."""
    if not value.startswith("0x"):
        return value
    try:
        bits = int(value, 16)
    except ValueError:
        return None
    names = [name for name, bit in _TCP_FLAGS if bits & bit]
    return ",".join(names) if names else "NONE"


def _negated(value: str) -> tuple[str, bool]:
    return (value[1:], True) if value.startswith("!") else (value, False)


def _mark_xmark(op: str, value: str) -> str | None:
    """MARK/CONNMARK print forms (mark_tg_print) → the --set-xmark value iptables-save prints."""
    try:
        if op == "xset":
            mark, _, mask = value.partition("/")
            int(mark, 16), int(mask, 16)
            return value
        v = int(value, 16)
    except ValueError:
        return None
    if op == "set":
        return f"{value}/0xffffffff"
    if op == "or":
        return f"{value}/{value}"
    if op == "and":
        return f"0x0/{(~v) & 0xFFFFFFFF:#x}"
    if op == "xor":
        return f"{value}/0x0"
    return None


# --------------------------------------------------------------------------------------------
# Extras column
# --------------------------------------------------------------------------------------------


def _tokens(extras: str) -> list[str]:
    """Split the extras column; `/* comment */` and `"quoted"` stay single tokens."""
    out: list[str] = []
    i, n = 0, len(extras)
    while i < n:
        c = extras[i]
        if c.isspace():
            i += 1
            continue
        if extras.startswith("/* ", i):
            end = extras.find(" */", i + 2)
            end = n if end < 0 else end + 3
        elif c == '"':
            end = extras.find('"', i + 1)
            end = n if end < 0 else end + 1
        else:
            end = i
            while end < n and not extras[end].isspace():
                end += 1
        out.append(extras[i:end])
        i = end
    return out


def _unquote(tok: str) -> str:
    return tok[1:-1] if len(tok) >= 2 and tok[0] == tok[-1] == '"' else tok


_Result = tuple[int, list[Option]]
_Handler = Callable[[list[str], int, bool], "_Result | None"]


def _ports(toks: list[str], i: int, neg: bool, module: str) -> _Result | None:
    """` tcp spt:1 dpts:!2:3 option=5 flags:0x17/0x02` (libxt_tcp/udp/sctp/dccp print)."""
    if neg:
        return None
    out: list[Option] = []
    i += 1
    while i < len(toks):
        tok = toks[i]
        key, sep, value = tok.partition(":")
        if sep and key in ("spt", "spts", "dpt", "dpts"):
            value, inv = _negated(value)
            name = "--sport" if key[0] == "s" else "--dport"
            if not value or (key.endswith("s") and ":" not in value):
                return None
            out.append(_opt(name, value, neg=inv))
        elif module == "tcp" and tok.startswith("option="):
            value, inv = _negated(tok[7:])
            out.append(_opt("--tcp-option", value, neg=inv))
        elif module == "tcp" and key == "flags" and sep:
            value, inv = _negated(value)
            mask, slash, cmp = value.partition("/")
            mask_names, cmp_names = _tcp_flag_names(mask), _tcp_flag_names(cmp)
            if not slash or mask_names is None or cmp_names is None:
                return None
            out.append(_opt("--tcp-flags", mask_names, cmp_names, neg=inv))
        else:
            break
        i += 1
    # iptables-save order: sport, dport, then option and flags (tcp_save).
    rank = {"--sport": 0, "--dport": 1, "--tcp-option": 2, "--tcp-flags": 3}
    out.sort(key=lambda o: rank[o.name])
    return i, out


def _icmp(toks: list[str], i: int, neg: bool) -> _Result | None:
    """` icmptype 3 code 4`, ` icmp !type 255`, ` icmp echo-request` (libxt_icmp print)."""
    n = len(toks)
    if neg:
        return None
    if toks[i] == "icmptype" or (toks[i] == "icmp" and i + 1 < n and toks[i + 1] == "!type"):
        inv = toks[i] == "icmp"
        i += 2 if inv else 1
        if i >= n or not toks[i].isdigit():
            return None
        value = "any" if toks[i] == "255" else toks[i]
        i += 1
        if i + 1 < n and toks[i] == "code" and toks[i + 1].isdigit():
            value = f"{value}/{toks[i + 1]}"
            i += 2
        elif i + 1 < n and toks[i] == "codes":
            return None  # a code range: iptables-save keeps only its start
        return i, [_opt("--icmp-type", value, neg=inv)]
    if toks[i] == "icmp" and i + 1 < n:
        value, inv = _negated(toks[i + 1])
        if value == "!":
            return None
        return i + 2, [_opt("--icmp-type", value, neg=inv)]
    return None


def _multiport(toks: list[str], i: int, neg: bool) -> _Result | None:
    if neg or i + 2 >= len(toks) or toks[i + 1] not in ("sports", "dports", "ports"):
        return None
    value, inv = _negated(toks[i + 2])
    if value == "" and i + 3 < len(toks):  # `dports ! 80` in some versions
        value, inv, i = toks[i + 3], True, i + 1
    return i + 3, [_opt("--" + toks[i + 1], value, neg=inv)]


def _after_match_word(toks: list[str], i: int, word: str = "match") -> int | None:
    return i + 2 if i + 1 < len(toks) and toks[i + 1] == word else None


def _mark(toks: list[str], i: int, neg: bool) -> _Result | None:
    """` mark match [!] 0x4000/0x4000` and ` connmark match  [!]0x2/0xff`."""
    j = _after_match_word(toks, i)
    if j is None or j >= len(toks) or neg:
        return None
    inv = toks[j] == "!"
    if inv:
        j += 1
        if j >= len(toks):
            return None
    value, inv2 = _negated(toks[j])
    return j + 1, [_opt("--mark", value, neg=inv or inv2)]


def _addrtype(toks: list[str], i: int, neg: bool) -> _Result | None:
    j = _after_match_word(toks, i)
    if j is None or neg:
        return None
    out: list[Option] = []
    while j < len(toks):
        tok = toks[j]
        if tok in ("src-type", "dst-type") and j + 1 < len(toks):
            value, inv = _negated(toks[j + 1])
            out.append(_opt("--" + tok, value, neg=inv))
            j += 2
        elif tok in ("limit-in", "limit-out"):
            out.append(_opt("--limit-iface-" + tok[6:]))
            j += 1
        else:
            break
    return (j, out) if out else None


def _statistic(toks: list[str], i: int, neg: bool) -> _Result | None:
    """` statistic mode random [!] probability P` / ` mode nth [!] every N [packet K]`."""
    n = len(toks)
    if neg or i + 2 >= n or toks[i + 1] != "mode":
        return None
    mode = toks[i + 2]
    j = i + 3
    inv = j < n and toks[j] == "!"
    if inv:
        j += 1
    if mode == "random" and j + 1 < n and toks[j] == "probability":
        return j + 2, [_opt("--mode", "random"), _opt("--probability", toks[j + 1], neg=inv)]
    if mode == "nth" and j + 1 < n and toks[j] == "every":
        every = toks[j + 1]
        j += 2
        packet = "0"
        if j + 1 < n and toks[j] == "packet":
            packet = toks[j + 1]
            j += 2
        return j, [_opt("--mode", "nth"), _opt("--every", every, neg=inv),
                   _opt("--packet", packet)]
    return None


def _conntrack(toks: list[str], i: int, neg: bool) -> _Result | None:
    """` [!] ctstate X [!] ctproto 6 ...` (conntrack_dump with prefix "ct" vs "--ct")."""
    out: list[Option] = []
    n = len(toks)
    j = i
    inv = neg
    while j + 1 < n and toks[j] in _CT_WORDS:
        out.append(_opt("--" + toks[j], toks[j + 1], neg=inv))
        j += 2
        inv = j + 1 < n and toks[j] == "!" and toks[j + 1] in _CT_WORDS
        if inv:
            j += 1
    return (j, out) if out else None


def _state(toks: list[str], i: int, neg: bool) -> _Result | None:
    if i + 1 >= len(toks):
        return None
    return i + 2, [_opt("--state", toks[i + 1], neg=neg)]


def _match_set(toks: list[str], i: int, neg: bool) -> _Result | None:
    """` [!] match-set NAME src,dst [return-nomatch] [! update-counters] [packets-gt N]`."""
    n = len(toks)
    if i + 2 >= n:
        return None
    out = [_opt("--match-set", toks[i + 1], toks[i + 2], neg=neg)]
    j = i + 3
    while j < n:
        inv = toks[j] == "!"
        k = j + 1 if inv else j
        if k < n and toks[k] in _SET_FLAGS:
            out.append(_opt("--" + toks[k], neg=inv))
            j = k + 1
        elif k + 1 < n and toks[k] in _SET_VALUES and not inv:
            out.append(_opt("--" + toks[k], toks[k + 1]))
            j = k + 2
        else:
            break
    return j, out


def _dashed(toks: list[str], i: int, neg: bool) -> _Result | None:
    """` PHYSDEV match [!] --physdev-in x ...` and ` socket --transparent`: save-like options."""
    j = i + 1
    if toks[i] == "PHYSDEV":
        j = _after_match_word(toks, i) or 0
        if not j:
            return None
    if neg:
        return None
    out: list[Option] = []
    n = len(toks)
    while j < n:
        inv = toks[j] == "!"
        k = j + 1 if inv else j
        if k >= n or not toks[k].startswith("--"):
            break
        args: tuple[str, ...] = ()
        if k + 1 < n and not toks[k + 1].startswith("-") and toks[k + 1] != "!" and \
                toks[k] in ("--physdev-in", "--physdev-out"):
            args = (toks[k + 1],)
        out.append(Option(toks[k], args, inv))
        j = k + 1 + len(args)
    if toks[i] == "PHYSDEV" and not out:
        return None
    return j, out


def _recent(toks: list[str], i: int, neg: bool) -> _Result | None:
    """` [!] recent: CHECK seconds: 10800 reap name: X side: source mask: M` (libxt_recent)."""
    n = len(toks)
    j = i + 1
    cmds = {"SET": "--set", "CHECK": "--rcheck", "UPDATE": "--update", "REMOVE": "--remove"}
    out: list[Option] = []
    while j < n and toks[j] in cmds:
        out.append(_opt(cmds[toks[j]]))
        j += 1
    if not out:
        return None
    if j + 1 < n and toks[j] == "seconds:":
        out.append(_opt("--seconds", toks[j + 1]))
        j += 2
    if j < n and toks[j] == "reap":
        out.append(_opt("--reap"))
        j += 1
    if j + 1 < n and toks[j] == "hit_count:":
        out.append(_opt("--hitcount", toks[j + 1]))
        j += 2
    if j < n and toks[j] == "TTL-Match":
        out.append(_opt("--rttl"))
        j += 1
    if not (j + 1 < n and toks[j] == "name:"):
        return None
    out.append(_opt("--name", toks[j + 1]))
    j += 2
    side: Option | None = None
    if j + 1 < n and toks[j] == "side:":
        side = _opt("--rsource" if toks[j + 1] == "source" else "--rdest")
        j += 2
    if j + 1 < n and toks[j] == "mask:":
        out.append(_opt("--mask", toks[j + 1]))
        j += 2
    if side is not None:
        out.append(side)
    if neg:
        out[0] = Option(out[0].name, out[0].args, True)
    return j, out


def _limit(toks: list[str], i: int, neg: bool) -> _Result | None:
    """` limit: avg 5/min burst 10` → --limit 5/min --limit-burst 10 (burst 5 is not saved)."""
    n = len(toks)
    if neg or i + 4 >= n or toks[i + 1] != "avg" or toks[i + 3] != "burst":
        return None
    out = [_opt("--limit", toks[i + 2])]
    if toks[i + 4] != _LIMIT_DEFAULT_BURST:
        out.append(_opt("--limit-burst", toks[i + 4]))
    return i + 5, out


def _length(toks: list[str], i: int, neg: bool) -> _Result | None:
    if neg or i + 1 >= len(toks):
        return None
    value, inv = _negated(toks[i + 1])
    return i + 2, [_opt("--length", value, neg=inv)]


def _iprange(toks: list[str], i: int, neg: bool) -> _Result | None:
    """` source IP range [!] A-B` / ` destination IP range [!] A-B`."""
    n = len(toks)
    if neg or i + 3 >= n or toks[i + 1] != "IP" or toks[i + 2] != "range":
        return None
    j = i + 3
    inv = toks[j] == "!"
    if inv:
        j += 1
    if j >= n:
        return None
    name = "--src-range" if toks[i] == "source" else "--dst-range"
    return j + 1, [_opt(name, toks[j], neg=inv)]


def _owner(toks: list[str], i: int, neg: bool) -> _Result | None:
    """` [!] owner UID match 0[-10]`, ` owner GID match 5`, ` owner socket exists`."""
    n = len(toks)
    out: list[Option] = []
    j = i
    inv = neg
    while j + 2 < n and toks[j] == "owner":
        kind = toks[j + 1]
        if kind == "socket" and toks[j + 2] == "exists":
            out.append(_opt("--socket-exists", neg=inv))
            j += 3
        elif kind in ("UID", "GID") and toks[j + 2] == "match" and j + 3 < n:
            out.append(_opt("--uid-owner" if kind == "UID" else "--gid-owner", toks[j + 3],
                            neg=inv))
            j += 4
        else:
            return None
        inv = j + 1 < n and toks[j] == "!" and toks[j + 1] == "owner"
        if inv:
            j += 1
    return (j, out) if out else None


def _ttl_match(toks: list[str], i: int, neg: bool) -> _Result | None:
    """` TTL match TTL == 64` (also !=, <, >)."""
    n = len(toks)
    if neg or i + 4 >= n or toks[i + 1] != "match" or toks[i + 2] != "TTL":
        return None
    ops = {"==": ("--ttl-eq", False), "!=": ("--ttl-eq", True), "<": ("--ttl-lt", False),
           ">": ("--ttl-gt", False)}
    op = ops.get(toks[i + 3])
    if op is None:
        return None
    return i + 5, [_opt(op[0], toks[i + 4], neg=op[1])]


def _rpfilter(toks: list[str], i: int, neg: bool) -> _Result | None:
    j = i + 1
    out: list[Option] = []
    while j < len(toks) and toks[j] in ("loose", "validmark", "accept-local", "invert"):
        out.append(_opt("--" + toks[j]))
        j += 1
    return None if neg else (j, out)


def _simple(name: str, negs: tuple[str, ...] = ("!",)) -> _Handler:
    """` KEYWORD [op] value` printed by pkttype (`=`/`!=`), mac (`[!] x`), dscp (`!0x10`)."""

    def handler(toks: list[str], i: int, neg: bool) -> _Result | None:
        n = len(toks)
        j = i + 1
        if toks[i] == "DSCP":
            j = _after_match_word(toks, i) or 0
            if not j:
                return None
        if neg or j >= n:
            return None
        inv = False
        if toks[j] in negs or toks[j] == "=":
            inv = toks[j] != "="
            j += 1
        if j >= n:
            return None
        value, inv2 = _negated(toks[j])
        return j + 1, [_opt(name, value, neg=inv or inv2)]

    return handler


def _quoted_one(name: str, word: str | None = None) -> _Handler:
    """` u32 [!] "..."` and ` helper match "ftp"`."""

    def handler(toks: list[str], i: int, neg: bool) -> _Result | None:
        j = i + 1
        if word is not None:
            if j >= len(toks) or toks[j] != word:
                return None
            j += 1
        inv = j < len(toks) and toks[j] == "!"
        if inv:
            j += 1
        if neg or j >= len(toks) or not toks[j].startswith('"'):
            return None
        return j + 1, [_opt(name, _unquote(toks[j]), neg=inv)]

    return handler


def _string(toks: list[str], i: int, neg: bool) -> _Result | None:
    """` STRING match [!] "x" ALGO name bm [FROM n] [TO n] [ICASE]` (libxt_string)."""
    n = len(toks)
    j = _after_match_word(toks, i)
    if j is None or neg:
        return None
    inv = j < n and toks[j] == "!"
    if inv:
        j += 1
    if j + 3 >= n or not toks[j].startswith('"') or toks[j + 1] != "ALGO" or \
            toks[j + 2] != "name":
        return None
    text = _unquote(toks[j])
    if "|" in text:
        return None  # hex parts are printed differently than saved
    out = [_opt("--string", text, neg=inv), _opt("--algo", toks[j + 3])]
    j += 4
    for word, opt in (("FROM", "--from"), ("TO", "--to")):
        if j + 1 < n and toks[j] == word:
            out.append(_opt(opt, toks[j + 1]))
            j += 2
    if j < n and toks[j] == "ICASE":
        out.append(_opt("--icase"))
        j += 1
    return j, out


# keyword → (module, handler)
_MATCHES: Final[dict[str, tuple[str, _Handler]]] = {
    "tcp": ("tcp", lambda t, i, n: _ports(t, i, n, "tcp")),
    "udp": ("udp", lambda t, i, n: _ports(t, i, n, "udp")),
    "udplite": ("udplite", lambda t, i, n: _ports(t, i, n, "udplite")),
    "sctp": ("sctp", lambda t, i, n: _ports(t, i, n, "sctp")),
    "dccp": ("dccp", lambda t, i, n: _ports(t, i, n, "dccp")),
    "icmptype": ("icmp", _icmp),
    "icmp": ("icmp", _icmp),
    "multiport": ("multiport", _multiport),
    "mark": ("mark", _mark),
    "connmark": ("connmark", _mark),
    "ADDRTYPE": ("addrtype", _addrtype),
    "statistic": ("statistic", _statistic),
    "state": ("state", _state),
    "match-set": ("set", _match_set),
    "PHYSDEV": ("physdev", _dashed),
    "socket": ("socket", _dashed),
    "recent:": ("recent", _recent),
    "limit:": ("limit", _limit),
    "length": ("length", _length),
    "source": ("iprange", _iprange),
    "destination": ("iprange", _iprange),
    "owner": ("owner", _owner),
    "TTL": ("ttl", _ttl_match),
    "rpfilter": ("rpfilter", _rpfilter),
    "PKTTYPE": ("pkttype", _simple("--pkt-type", ("!=",))),
    "MAC": ("mac", _simple("--mac-source")),
    "DSCP": ("dscp", _simple("--dscp")),
    "u32": ("u32", _quoted_one("--u32")),
    "helper": ("helper", _quoted_one("--helper", "match")),
    "STRING": ("string", _string),
    **{word: ("conntrack", _conntrack) for word in _CT_WORDS},
}


# ---- targets: each returns the options iptables-save prints, consuming the rest of the line.

_TargetResult = tuple[str, list[Option]] | None


def _t_nat(name: str, toks: list[str]) -> _TargetResult:
    """DNAT/SNAT: ` to:1.2.3.4:80 [random] [random-fully] [persistent]`."""
    key = "--to-destination" if name == "DNAT" else "--to-source"
    out: list[Option] = []
    for tok in toks:
        if tok.startswith("to:"):
            out.append(_opt(key, tok[3:]))
        elif tok in ("random", "persistent", "random-fully"):
            out.append(_opt("--" + tok))
        else:
            return None
    return name, out


def _t_ports(word: str, name: str, toks: list[str]) -> _TargetResult:
    """MASQUERADE ` masq ports: 1000-2000 random-fully`, REDIRECT ` redir ports 3128 random`."""
    out: list[Option] = []
    i = 0
    if len(toks) >= 3 and toks[0] == word and toks[1] in ("ports:", "ports"):
        out.append(_opt("--to-ports", toks[2]))
        i = 3
    for tok in toks[i:]:
        if tok not in ("random", "random-fully"):
            return None
        out.append(_opt("--" + tok))
    return name, out


def _t_reject(name: str, toks: list[str]) -> _TargetResult:
    if len(toks) == 2 and toks[0] == "reject-with":
        return name, [_opt("--reject-with", toks[1])]
    return None


def _t_mark(name: str, toks: list[str]) -> _TargetResult:
    """MARK/CONNMARK ` MARK or 0x4000` etc. → --set-xmark; CONNMARK save/restore."""
    if not toks or toks[0] != name:
        return None
    if len(toks) == 3:
        value = _mark_xmark(toks[1], toks[2])
        return (name, [_opt("--set-xmark", value)]) if value is not None else None
    if name == "CONNMARK" and len(toks) >= 2 and toks[1] in ("save", "restore"):
        # connmark_tg_print v1: " mask M" when nfmask == ctmask, else both.
        nfmask = ctmask = "0xffffffff"
        rest = toks[2:]
        if rest[:1] == ["mask"] and len(rest) == 2:
            nfmask = ctmask = rest[1]
        elif len(rest) == 4 and rest[0] == "nfmask" and rest[2] == "ctmask":
            nfmask, ctmask = rest[1], rest[3]
        elif rest:
            return None
        return name, [_opt(f"--{toks[1]}-mark"), _opt("--nfmask", nfmask),
                      _opt("--ctmask", ctmask)]
    return None


def _t_log(name: str, toks: list[str]) -> _TargetResult:
    """` LOG flags 10 level 7 prefix "x"` (numeric LOG_print) → LOG_save's options."""
    if len(toks) < 5 or toks[:2] != ["LOG", "flags"] or toks[3] != "level":
        return None
    if not toks[2].isdigit():
        return None
    flags, level = int(toks[2]), toks[4]
    out: list[Option] = []
    rest = toks[5:]
    if rest:
        if len(rest) != 2 or rest[0] != "prefix" or not rest[1].startswith('"'):
            return None
        out.append(_opt("--log-prefix", _unquote(rest[1])))
    if level != _LOG_DEFAULT_LEVEL:
        out.append(_opt("--log-level", level))
    out += [_opt(opt) for opt, bit in _LOG_FLAGS if flags & bit]
    return name, out


def _t_ct(name: str, toks: list[str]) -> _TargetResult:
    if toks == ["NOTRACK"]:
        return "NOTRACK", []  # iptables 1.8.9 lists -j NOTRACK as target CT, extras NOTRACK
    if not toks or toks[0] != "CT":
        return None
    out: list[Option] = []
    i = 1
    while i < len(toks):
        if toks[i] == "notrack":
            out.append(_opt("--notrack"))
            i += 1
        elif toks[i] in ("helper", "zone", "timeout", "ctevents", "expevents") and \
                i + 1 < len(toks):
            out.append(_opt("--" + toks[i], toks[i + 1]))
            i += 2
        else:
            return None
    return name, out


_FLAG_TARGET_OPTS: Final = frozenset({"--clamp-mss-to-pmtu", "--checksum-fill"})


def _t_words(mapping: dict[tuple[str, ...], str]) -> Callable[[str, list[str]], _TargetResult]:
    """Targets printing fixed words, then at most one value: TCPMSS, CHECKSUM, TTL, DSCP.

    `mapping` goes from the printed words to the saved option; the option takes the value
    when the print has one (`TCPMSS set 1400` → --set-mss 1400, `TCPMSS clamp to PMTU` →
    --clamp-mss-to-pmtu).
    """

    def handler(name: str, toks: list[str]) -> _TargetResult:
        for words, opt in mapping.items():
            k = len(words)
            if tuple(toks[:k]) == words and len(toks) - k == (opt not in _FLAG_TARGET_OPTS):
                return name, [_opt(opt, *toks[k:])]
        return None

    return handler


def _t_tproxy(name: str, toks: list[str]) -> _TargetResult:
    """` TPROXY redirect 127.0.0.1:3128 mark 0x1/0x1`."""
    if len(toks) != 5 or toks[:2] != ["TPROXY", "redirect"] or toks[3] != "mark":
        return None
    ip, _, port = toks[2].rpartition(":")
    return name, [_opt("--on-port", port), _opt("--on-ip", ip), _opt("--tproxy-mark", toks[4])]


def _t_dashless(prefix: str) -> Callable[[str, list[str]], _TargetResult]:
    """NFLOG prints ` nflog-prefix "x" nflog-group 5`, save the same with `--`."""

    def handler(name: str, toks: list[str]) -> _TargetResult:
        out: list[Option] = []
        i = 0
        while i + 1 < len(toks) and toks[i].startswith(prefix):
            out.append(_opt("--" + toks[i], _unquote(toks[i + 1])))
            i += 2
        return (name, out) if i == len(toks) else None

    return handler


def _t_nfqueue(name: str, toks: list[str]) -> _TargetResult:
    if not toks or toks[0] != "NFQUEUE":
        return None
    out: list[Option] = []
    i = 1
    while i < len(toks):
        if toks[i] in ("num", "balance") and i + 1 < len(toks):
            out.append(_opt("--queue-" + toks[i], toks[i + 1]))
            i += 2
        elif toks[i] in ("bypass", "cpu-fanout"):
            out.append(_opt("--queue-" + toks[i]))
            i += 1
        else:
            return None
    return name, out


_TARGETS: Final[dict[str, Callable[[str, list[str]], _TargetResult]]] = {
    "DNAT": _t_nat,
    "SNAT": _t_nat,
    "MASQUERADE": lambda n, t: _t_ports("masq", n, t),
    "REDIRECT": lambda n, t: _t_ports("redir", n, t),
    "REJECT": _t_reject,
    "MARK": _t_mark,
    "CONNMARK": _t_mark,
    "LOG": _t_log,
    "CT": _t_ct,
    "TCPMSS": _t_words({("TCPMSS", "clamp", "to", "PMTU"): "--clamp-mss-to-pmtu",
                        ("TCPMSS", "set"): "--set-mss"}),
    "CHECKSUM": _t_words({("CHECKSUM", "fill"): "--checksum-fill"}),
    "TTL": _t_words({("TTL", "set", "to"): "--ttl-set", ("TTL", "decrement", "by"): "--ttl-dec",
                     ("TTL", "increment", "by"): "--ttl-inc"}),
    "DSCP": _t_words({("DSCP", "set"): "--set-dscp"}),
    "TPROXY": _t_tproxy,
    "NFLOG": _t_dashless("nflog-"),
    "NFQUEUE": _t_nfqueue,
}


def _unparsed(words: list[str]) -> Match:
    return Match(UNPARSED_MODULE, (Option("--unparsed", (" ".join(words),)),))


def _translate_extras(
    extras: str, target: str | None
) -> tuple[list[Match], str | None, list[Option], bool]:
    """(matches, target name, target options, goto) from the extras column."""
    toks = _tokens(extras)
    goto = False
    if toks and toks[0] == "[goto]":
        goto = True
        toks = toks[1:]
    matches: list[Match] = []
    pending: list[str] = []
    target_opts: list[Option] = []
    tname = target
    thandler = _TARGETS.get(target) if target is not None else None
    i, n = 0, len(toks)
    while i < n:
        tok = toks[i]
        if tok.startswith("/* ") and tok.endswith(" */"):
            if pending:
                matches.append(_unparsed(pending))
                pending = []
            matches.append(Match("comment", (_opt("--comment", tok[3:-3]),)))
            i += 1
            continue
        neg = tok == "!"
        key = toks[i + 1] if neg and i + 1 < n else tok
        entry = _MATCHES.get(key)
        res = entry[1](toks, i + 1 if neg else i, neg) if entry is not None else None
        if entry is not None and res is not None:
            if pending:
                matches.append(_unparsed(pending))
                pending = []
            matches.append(Match(entry[0], tuple(res[1])))
            i = res[0]
            continue
        if thandler is not None and target is not None:
            got = thandler(target, toks[i:])
            if got is not None:
                tname, target_opts = got
                break
        pending.append(tok)
        i += 1
    if pending:
        matches.append(_unparsed(pending))
    return matches, tname, target_opts, goto


# --------------------------------------------------------------------------------------------
# Rows, chains, listings
# --------------------------------------------------------------------------------------------


def _is_opt(tok: str) -> bool:
    return len(tok) == 2 and tok[0] in "-!" and tok[1] in "-f"


def _host(addr: str) -> str:
    """iptables-save prints a host address with /32 (/128); a listing drops it."""
    if "/" in addr:
        return addr
    if addr.count(".") == 3 and addr.replace(".", "").isdigit():
        return addr + "/32"
    if ":" in addr and all(c in "0123456789abcdefABCDEF:." for c in addr):
        return addr + "/128"
    return addr  # a host name from a listing without -n


@dataclass
class _Row:
    matches: tuple[Match, ...]
    target: Target | None
    raw: str
    line: int
    packets: int | None
    bytes: int | None


@dataclass
class _ChainAcc:
    name: str
    policy: str | None
    packets: int | None
    bytes: int | None
    line: int
    rows: list[_Row] = field(default_factory=list)


@dataclass
class _Listing:
    table: str | None
    hint_line: int
    chains: list[_ChainAcc] = field(default_factory=list)
    no_interfaces: bool = False  # rows without in/out columns (a listing without -v)


class _ListParser:
    def __init__(self, source: str, table: str | None, strict: bool) -> None:
        self.source = source
        self.forced = table
        self.strict = strict
        self.issues: list[ParseIssue] = []
        self.listings: list[_Listing] = []
        self.columns: list[str] | None = None  # from the column header line
        self.row_columns: list[str] = []  # those of the last row read (header or inferred)

    def fail(self, lineno: int, text: str, expected: str) -> None:
        if self.strict:
            raise ParseError(self.source, lineno, text, expected)
        self.note(lineno, text, f"expected {expected}")

    def note(self, lineno: int, text: str, message: str) -> None:
        self.issues.append(ParseIssue(SourceRef(self.source, lineno), text, message))

    # -- hints ---------------------------------------------------------------------------

    def hint(self, line: str) -> str | None:
        """The table a `# table: X` line or an `iptables ... -L` command line names."""
        stripped = line.strip()
        if stripped.startswith("# table:"):
            return stripped[len("# table:"):].strip() or None
        words = stripped.split()
        for k, word in enumerate(words):
            if word.rsplit("/", 1)[-1] in _TOOLS:
                return _command_table(words[k + 1:])
        return None

    def current(self, lineno: int, table: str | None) -> _Listing:
        listing = _Listing(table, lineno)
        self.listings.append(listing)
        return listing

    # -- driver --------------------------------------------------------------------------

    def run(self, text: str) -> Ruleset:
        listing: _Listing | None = None
        chain: _ChainAcc | None = None
        for lineno, raw_line in enumerate(text.split("\n"), 1):
            line = raw_line.rstrip("\r").rstrip()
            stripped = line.strip()
            if not stripped:
                chain = None
                continue
            if stripped.startswith("Chain "):
                chain = self.chain_header(stripped, lineno)
                if chain is None:
                    continue
                if listing is None or (listing.table is None and _starts_listing(listing,
                                                                                 chain.name)):
                    listing = self.current(lineno, None)
                listing.chains.append(chain)
                self.columns = None
                continue
            table = self.hint(stripped)
            if table is not None:
                listing = self.current(lineno, table)
                chain = None
                continue
            if chain is None or stripped.startswith("#"):
                continue  # text around listings: prompts, other commands, comments
            words = stripped.split()
            if words[0] in ("pkts", "num", "target") and "prot" in words:
                if _REQUIRED <= set(words) <= _REQUIRED | _OPTIONAL and len(set(words)) == \
                        len(words):
                    self.columns = words
                else:
                    self.columns = None
                    self.fail(lineno, line, "a column header '[num] [pkts bytes] target prot"
                              " opt [in out] source destination'")
                continue
            row = self.row(line, lineno)
            if row is not None:
                chain.rows.append(row)
                if listing is not None and "in" not in self.row_columns:
                    listing.no_interfaces = True
            elif _looks_like_prompt(stripped):
                chain = None
            else:
                self.fail(lineno, line, "a rule row '[num] [pkts bytes] target prot opt [in out]"
                          " source destination [extras]'")
        return self.build()

    def chain_header(self, line: str, lineno: int) -> _ChainAcc | None:
        words = line.split()
        if len(words) < 3 or not words[2].startswith("("):
            self.fail(lineno, line, "'Chain NAME (policy P ...)' or 'Chain NAME (N references)'")
            return None
        name = words[1]
        if words[2] == "(policy" and len(words) >= 4:
            policy = words[3].rstrip(")")
            packets = bytes_ = None
            if len(words) >= 8 and words[5].startswith("packets"):
                packets = _count(words[4])
                bytes_ = _count(words[6])
            return _ChainAcc(name, policy, packets, bytes_, lineno)
        return _ChainAcc(name, None, None, None, lineno)

    def row(self, line: str, lineno: int) -> _Row | None:
        cols = self.columns
        if cols is None:
            cols = _infer_columns(line.split())
            if cols is None:
                return None
        self.row_columns = cols
        fixed = len(cols)
        parts = line.split(None, fixed)
        try:
            opt_at = cols.index("opt")
        except ValueError:
            return None
        if len(parts) > opt_at and _is_opt(parts[opt_at]):
            pass
        elif len(parts) > opt_at - 1 and _is_opt(parts[opt_at - 1]) and "target" in cols:
            # Empty target column (a rule without -j): one word fewer.
            parts = line.split(None, fixed - 1)
            parts.insert(cols.index("target"), "")
        else:
            return None
        if len(parts) < fixed:
            return None
        values = dict(zip(cols, parts[:fixed], strict=True))
        extras = parts[fixed] if len(parts) > fixed else ""
        packets = bytes_ = None
        if "pkts" in values:
            packets, bytes_ = _count(values["pkts"]), _count(values["bytes"])
            if packets is None or bytes_ is None:
                return None
        if "num" in values and not values["num"].isdigit():
            return None
        return self.translate(values, extras, line, lineno, packets, bytes_)

    def translate(
        self,
        values: dict[str, str],
        extras: str,
        raw: str,
        lineno: int,
        packets: int | None,
        bytes_: int | None,
    ) -> _Row:
        builtin: list[Option] = []
        src, inv = _negated(values["source"])
        if src not in _ANY_ADDR:
            builtin.append(_opt("-s", _host(src), neg=inv))
        dst, inv = _negated(values["destination"])
        if dst not in _ANY_ADDR:
            builtin.append(_opt("-d", _host(dst), neg=inv))
        for col, flag in (("in", "-i"), ("out", "-o")):
            if col in values:
                iface, inv = _negated(values[col])
                if iface not in _ANY_IFACE:
                    builtin.append(_opt(flag, iface, neg=inv))
        proto, inv = _negated(values["prot"])
        if proto not in _ALL_PROTO:
            builtin.append(_opt("-p", _PROTO_NAMES.get(proto, proto), neg=inv))
        opt = values["opt"]
        if opt[1] == "f":
            builtin.append(_opt("-f", neg=opt[0] == "!"))
        target_name = values.get("target") or None
        matches, tname, topts, goto = _translate_extras(extras, target_name)
        all_matches = ([Match(BUILTIN_MODULE, tuple(builtin))] if builtin else []) + matches
        target = Target(tname, tuple(topts), goto) if tname is not None else None
        return _Row(tuple(all_matches), target, raw, lineno, packets, bytes_)

    # -- result --------------------------------------------------------------------------

    def build(self) -> Ruleset:
        tables: dict[str, dict[str, Chain]] = {}
        for listing in self.listings:
            if not listing.chains:
                continue
            table = self.forced or listing.table or self.guess(listing)
            chains = tables.setdefault(table, {})
            if listing.no_interfaces:
                first = listing.chains[0]
                self.note(first.line, f"Chain {first.name}", "listing without -v: it does not"
                          " show -i/-o interface matches, so every rule is read as matching any"
                          " interface (list with -nvL to see them)")
            known = BUILTIN_CHAINS.get(table)
            if known is None:
                self.fail(listing.hint_line, table, "a table name iptables knows ("
                          + ", ".join(BUILTIN_CHAINS) + ")")
            for acc in listing.chains:
                if acc.name in chains:
                    self.fail(acc.line, f"Chain {acc.name}", f"chain {acc.name} listed once per"
                              f" table {table} (keeping the first listing)")
                    continue
                rules = tuple(
                    Rule(table, acc.name, r.matches, r.target, r.raw,
                         SourceRef(self.source, r.line), r.packets, r.bytes)
                    for r in acc.rows
                )
                policy = acc.policy if known is not None and acc.name in known else None
                if acc.policy is not None and policy is None:
                    self.note(acc.line, f"Chain {acc.name}", f"chain {acc.name} has a policy but"
                              f" is not a built-in chain of table {table}")
                chains[acc.name] = Chain(acc.name, rules, policy, acc.packets, acc.bytes,
                                         SourceRef(self.source, acc.line))
        for table, chains in tables.items():
            self.check_references(table, chains)
        return Ruleset(tables={name: Table(name, chains) for name, chains in tables.items()},
                       family=4, origin="iptables -nvL", issues=tuple(self.issues))

    def guess(self, listing: _Listing) -> str:
        first = listing.chains[0]
        for acc in listing.chains:
            if acc.name in _NAT_CHAINS:
                self.note(first.line, f"Chain {first.name}", "no table named for this listing"
                          f" (no '# table:' line or 'iptables -t TABLE' command): guessed nat"
                          f" from chain {acc.name}")
                return "nat"
            for row in acc.rows:
                if row.target is not None and row.target.name in _NAT_TARGETS:
                    self.note(first.line, f"Chain {first.name}", "no table named for this"
                              " listing (no '# table:' line or 'iptables -t TABLE' command):"
                              f" guessed nat from target {row.target.name} (line {row.line})")
                    return "nat"
        self.note(first.line, f"Chain {first.name}", "no table named for this listing (no"
                  " '# table:' line or 'iptables -t TABLE' command): assumed filter, iptables'"
                  " default table")
        return "filter"

    def check_references(self, table: str, chains: dict[str, Chain]) -> None:
        missing: dict[str, int] = {}
        for chain in chains.values():
            for rule in chain.rules:
                t = rule.target
                if t is not None and t.name not in chains and t.name not in TARGET_OPTIONS \
                        and t.name not in missing:
                    missing[t.name] = rule.source.line
        for name, line in missing.items():
            self.note(line, name, f"target {name} is not a chain of this {table} listing nor a"
                      " known extension: jumps to it cannot be followed")


# Every table lists its built-in chains first, in this relative order (BUILTIN_CHAINS).
_BUILTIN_RANK: Final = {"PREROUTING": 0, "INPUT": 1, "FORWARD": 2, "OUTPUT": 3, "POSTROUTING": 4}


def _starts_listing(listing: _Listing, name: str) -> bool:
    """Without hints, does chain `name` begin the listing of another table?

    iptables -L prints a table's built-in chains first (PREROUTING, INPUT, FORWARD, OUTPUT,
    POSTROUTING order), then its user chains; a repeated name, a built-in chain after a user
    chain or a built-in chain out of that order therefore starts a new listing.
    """
    rank = _BUILTIN_RANK.get(name)
    for acc in listing.chains:
        if acc.name == name:
            return True
        if rank is not None:
            prev = _BUILTIN_RANK.get(acc.name)
            if prev is None or prev >= rank:
                return True
    return False


_VERBOSE: Final = ["pkts", "bytes", "target", "prot", "opt", "in", "out", "source", "destination"]
_PLAIN: Final = ["target", "prot", "opt", "source", "destination"]
_REQUIRED: Final = frozenset(_PLAIN)
_OPTIONAL: Final = frozenset({"num", "pkts", "bytes", "in", "out"})


def _infer_columns(words: list[str]) -> list[str] | None:
    """Columns of a row printed without its header line (a partial paste).

    The words before `prot` are [num] [pkts bytes] [target]; counters only come with -v, which
    also adds the in/out columns. The target may be empty (a rule without -j).
    """
    k = next((k for k in range(min(len(words), 6)) if _is_opt(words[k])), None)
    if k is None or k == 0:
        return None
    before = words[: k - 1]
    counts = [_count(w) is not None for w in before]
    if len(before) == 4 and before[0].isdigit() and counts[1] and counts[2]:
        return ["num", *_VERBOSE]
    if len(before) == 3 and counts[0] and counts[1]:
        if not counts[2]:
            return _VERBOSE
        return ["num", *_VERBOSE] if before[0].isdigit() else None
    if len(before) == 2:
        if before[0].isdigit() and not counts[1]:
            return ["num", *_PLAIN]
        return _VERBOSE if all(counts) else None
    if len(before) == 1:
        return ["num", *_PLAIN] if before[0].isdigit() else _PLAIN
    return _PLAIN if not before else None


def _command_table(args: list[str]) -> str | None:
    """For `iptables ARGS`: the table it lists (filter by default), None if not a listing."""
    table = "filter"
    listing = False
    k = 0
    while k < len(args):
        a = args[k]
        if a in ("-t", "--table") and k + 1 < len(args):
            table = args[k + 1]
            k += 2
            continue
        if a.startswith("--table="):
            table = a.split("=", 1)[1]
        elif a in ("--list", "-L"):
            listing = True
        elif a.startswith("-") and not a.startswith("--"):
            letters = a[1:]
            if "t" in letters:
                after = letters[letters.index("t") + 1:]
                if after:
                    table = after
                elif k + 1 < len(args):
                    table = args[k + 1]
                    k += 1
                letters = letters[:letters.index("t")]
            if "L" in letters:
                listing = True
        k += 1
    return table if listing else None


def _looks_like_prompt(line: str) -> bool:
    return line.endswith(("#", "$", ">")) or "]# " in line or "$ " in line or ":~#" in line


def parse_iptables_list(
    text: str, source: str, *, table: str | None = None, strict: bool = True
) -> Ruleset:
    """Parse `iptables [-t T] -nvL` / `-nL` / `--line-numbers` / `-x` listings.

    `table` forces the table of every listing in the text; otherwise `# table: T` lines and
    `iptables ... -L` command lines name it, and a listing without either is guessed (the guess
    is recorded in `Ruleset.issues`). Rows that are not rows raise ParseError (strict) or
    become issues (strict=False).
    """
    return _ListParser(source, table, strict).run(text)
