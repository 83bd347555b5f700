"""`iptables-save` / `iptables-restore` text → `Ruleset`.

The reader follows iptables 1.8.9 (iptables/iptables-restore.c, xshared.c, libxtables):

* Words are split the way `add_param_to_argv` does: whitespace separates, a double quote opens a
  quoted part in which `\\x` stands for `x`, the closing quote ends the word, a quote in the middle
  of a word continues it; single quotes and backslashes outside quotes are plain characters.
* `-A CHAIN` options are read like `do_parse`'s getopt loop: built-in options (`-s -d -p -i -o
  -f`, with `!` before the flag or, as old versions allowed, before its argument) go into the
  match with module `""`; `-m NAME` loads a match; an option is resolved among the loaded
  extensions newest first (xtables_merge_options puts a newly loaded extension's options first)
  and, when none knows it, the protocol's match is loaded implicitly (`-p tcp --dport 80`);
  `-j`/`-g` load the target, whose options follow it.
* Option arities come from a table of the extensions kube-proxy, Calico, Flannel, Docker and
  firewalld use. An option or module not in the table is still kept: its arguments are the words
  up to the next option-like word. Nothing is dropped.
* Built-in options are kept in iptables-save's order (-s -d -i -o -p -f) in one leading match,
  because the kernel checks them (struct ipt_ip) before any extension match, whatever the order
  on the command line.

Structural errors raise `ParseError`; with `strict=False` they become `ParseIssue`s and the
parser goes on (skipping the line, or doing what iptables-restore would do, as noted per case).
`Ruleset.issues` also records assumptions (built-in chains that were not in the text, extra
words iptables would reject) even in strict mode.

Speed matters (kube-proxy dumps reach 450k lines, and the target is iptables-restore --test's
own speed): a line as iptables-save prints it is cut at " -m " / " -j " with C-speed string
operations and each distinct piece is read once and shared (_Segments; Options, Matches and
Targets are immutable), in a loop that does all of it inline; lines without quotes are split
with plain `str.split`; names are interned; the model objects are built without their
frozen-dataclass __init__ (see _draft: those __init__s were over a third of a large parse);
and the cyclic GC is paused while the (acyclic) objects are built, then told to leave them
alone (gc.freeze) for large inputs. Everything else goes through the full reader, and gives the
same result (tests/parse/test_iptables_save_hot_path.py).
"""

from __future__ import annotations

import dataclasses
import gc
import sys
from collections.abc import Collection, Iterable
from typing import Any, Final

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
from netsleuth.model.source import SYNTHETIC, SourceRef

__all__ = [
    "MATCH_OPTIONS",
    "TARGET_OPTIONS",
    "VERDICTS",
    "format_rule",
    "is_chain_name",
    "parse_iptables_save",
    "parse_rule",
    "save_string",
    "split_rule_words",
]

# XT_EXTENSION_MAXNAMELEN is 29 including the NUL: iptables-restore rejects longer chain names.
MAX_CHAIN_NAME: Final = 28
VERDICTS: Final = frozenset({"ACCEPT", "DROP", "RETURN", "QUEUE"})
POLICIES: Final = frozenset({"ACCEPT", "DROP"})
# Inputs from this many lines on are large enough to freeze the GC's view of them (see run()).
_FREEZE_LINES: Final = 5_000


# --------------------------------------------------------------------------------------------
# Model objects built without the frozen-dataclass __init__.
#
# A frozen dataclass's __init__ stores each field with object.__setattr__ (a global lookup, an
# attribute lookup and a generic call per field): for a Rule that is three times the cost of
# the object itself, and a large dump builds half a million model objects. Here each object is
# built as an instance of a plain class with the very same __slots__ (a "draft", whose slot
# stores are ordinary attribute stores), then given its real class: CPython allows assigning
# __class__ between classes whose instances have the same layout (same base, same slots in the
# same order; Objects/typeobject.c compatible_for_assignment, checked on every assignment). The
# result is an ordinary instance of the model class, equal to and hashing like one built by
# its __init__; only the frozen check, which guards against later changes, is not involved
# while the fields are first filled. Measured on a Rule (8 fields): 0.7 us through __init__,
# 0.4 us through the slot descriptors' __set__, 0.15-0.2 us as a draft.
#
# _draft() checks at import that each draft's slots are exactly its class's fields, and
# _check_drafts() that every constructor (and _ChainBuilder.build) gives what the class's
# __init__ gives, so a new model field cannot be left unset.
# --------------------------------------------------------------------------------------------


def _draft(cls: type) -> type:
    names = tuple(f.name for f in dataclasses.fields(cls))
    if getattr(cls, "__slots__", None) != names or cls.__bases__ != (object,):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass with slots {names}")
    return type(f"_{cls.__name__}Draft", (), {"__slots__": names})


_new: Final = object.__new__
_RuleDraft: Final = _draft(Rule)
_SourceDraft: Final = _draft(SourceRef)
_OptionDraft: Final = _draft(Option)
_MatchDraft: Final = _draft(Match)
_TargetDraft: Final = _draft(Target)


def _new_rule(
    table: str,
    chain: str,
    matches: tuple[Match, ...],
    target: Target | None,
    raw: str,
    source: SourceRef,
    packets: int | None,
    nbytes: int | None,
) -> Rule:
    """Rule(table, chain, matches, target, raw, source, packets, nbytes)."""
    d: Any = _new(_RuleDraft)
    d.table = table
    d.chain = chain
    d.matches = matches
    d.target = target
    d.raw = raw
    d.source = source
    d.packets = packets
    d.bytes = nbytes
    d.__class__ = Rule
    rule: Rule = d
    return rule


def _new_source(file: str, line: int) -> SourceRef:
    """SourceRef(file, line)."""
    d: Any = _new(_SourceDraft)
    d.file = file
    d.line = line
    d.__class__ = SourceRef
    ref: SourceRef = d
    return ref


def _new_option(name: str, args: tuple[str, ...], negated: bool) -> Option:
    """Option(name, args, negated)."""
    d: Any = _new(_OptionDraft)
    d.name = name
    d.args = args
    d.negated = negated
    d.__class__ = Option
    opt: Option = d
    return opt


def _new_match(module: str, options: tuple[Option, ...]) -> Match:
    """Match(module, options)."""
    d: Any = _new(_MatchDraft)
    d.module = module
    d.options = options
    d.__class__ = Match
    m: Match = d
    return m


def _new_target(name: str, options: tuple[Option, ...], goto: bool) -> Target:
    """Target(name, options, goto)."""
    d: Any = _new(_TargetDraft)
    d.name = name
    d.options = options
    d.goto = goto
    d.__class__ = Target
    t: Target = d
    return t


def _check_drafts() -> None:
    src = SourceRef("f", 1)
    opt = Option("--o", ("a",), True)
    match = Match("m", (opt,))
    target = Target("T", (opt,), True)
    rule = Rule("t", "C", (match,), target, "raw", src, 1, 2)
    pairs: list[tuple[object, object]] = [
        (_new_source("f", 1), src),
        (_new_option("--o", ("a",), True), opt),
        (_new_match("m", (opt,)), match),
        (_new_target("T", (opt,), True), target),
        (_new_rule("t", "C", (match,), target, "raw", src, 1, 2), rule),
    ]
    builder = _ChainBuilder("C", "DROP", src, 1, 2)
    builder.rules.append(rule)
    pairs.append((builder.build(), Chain("C", (rule,), "DROP", 1, 2, src)))
    for built, expected in pairs:
        if type(built) is not type(expected) or built != expected or repr(built) != repr(expected):
            raise TypeError(f"fast constructor of {type(expected).__name__} differs")


# --------------------------------------------------------------------------------------------
# Extension option tables.  "NAME/N" is an option taking N words; "ALIAS=NAME" is another
# spelling iptables accepts for NAME (the model keeps the spelling iptables-save prints).
# --------------------------------------------------------------------------------------------

_PORTS = "--sport/1 --dport/1 --source-port=--sport --destination-port=--dport"
_MATCH_SPECS: Final[dict[str, str]] = {
    "comment": "--comment/1",
    "tcp": _PORTS + " --tcp-flags/2 --syn/0 --tcp-option/1",
    "udp": _PORTS,
    "udplite": _PORTS,
    "sctp": _PORTS + " --chunk-types/2",
    "dccp": _PORTS + " --dccp-types/1 --dccp-option/1",
    "icmp": "--icmp-type/1",
    "icmp6": "--icmpv6-type/1",
    "multiport": "--sports/1 --dports/1 --ports/1 --source-ports=--sports"
    " --destination-ports=--dports",
    "mark": "--mark/1",
    "connmark": "--mark/1",
    "addrtype": "--src-type/1 --dst-type/1 --limit-iface-in/0 --limit-iface-out/0",
    "statistic": "--mode/1 --probability/1 --every/1 --packet/1",
    "conntrack": "--ctstate/1 --ctproto/1 --ctorigsrc/1 --ctorigdst/1 --ctreplsrc/1"
    " --ctrepldst/1 --ctorigsrcport/1 --ctorigdstport/1 --ctreplsrcport/1 --ctrepldstport/1"
    " --ctstatus/1 --ctexpire/1 --ctdir/1",
    "state": "--state/1",
    "set": "--match-set/2 --return-nomatch/0 --update-counters/0 --update-subcounters/0"
    " --packets-eq/1 --packets-lt/1 --packets-gt/1 --bytes-eq/1 --bytes-lt/1 --bytes-gt/1"
    " --set=--match-set",
    "physdev": "--physdev-in/1 --physdev-out/1 --physdev-is-in/0 --physdev-is-out/0"
    " --physdev-is-bridged/0",
    "recent": "--set/0 --rcheck/0 --update/0 --remove/0 --seconds/1 --reap/0 --hitcount/1"
    " --rttl/0 --name/1 --mask/1 --rsource/0 --rdest/0",
    "limit": "--limit/1 --limit-burst/1",
    "hashlimit": "--hashlimit-upto/1 --hashlimit-above/1 --hashlimit-burst/1"
    " --hashlimit-mode/1 --hashlimit-name/1 --hashlimit-htable-size/1 --hashlimit-htable-max/1"
    " --hashlimit-htable-expire/1 --hashlimit-htable-gcinterval/1 --hashlimit-srcmask/1"
    " --hashlimit-dstmask/1 --hashlimit-rate-match/0 --hashlimit-rate-interval/1"
    " --hashlimit/1",
    "owner": "--uid-owner/1 --gid-owner/1 --socket-exists/0 --suppl-groups/0",
    "rpfilter": "--loose/0 --validmark/0 --accept-local/0 --invert/0",
    "socket": "--transparent/0 --nowildcard/0 --restore-skmark/0",
    "nfacct": "--nfacct-name/1",
    "length": "--length/1",
    "ttl": "--ttl-eq/1 --ttl-gt/1 --ttl-lt/1",
    "hl": "--hl-eq/1 --hl-gt/1 --hl-lt/1",
    "dscp": "--dscp/1 --dscp-class/1",
    "tos": "--tos/1",
    "iprange": "--src-range/1 --dst-range/1",
    "string": "--algo/1 --from/1 --to/1 --string/1 --hex-string/1 --icase/0",
    "u32": "--u32/1",
    "bpf": "--bytecode/1 --object-pinned/1",
    "mac": "--mac-source/1",
    "pkttype": "--pkt-type/1",
    "devgroup": "--src-group/1 --dst-group/1",
    "cgroup": "--path/1 --cgroup/1",
    "connlimit": "--connlimit-upto/1 --connlimit-above/1 --connlimit-mask/1"
    " --connlimit-saddr/0 --connlimit-daddr/0",
    "helper": "--helper/1",
    "time": "--datestart/1 --datestop/1 --timestart/1 --timestop/1 --monthdays/1 --weekdays/1"
    " --kerneltz/0 --contiguous/0 --utc/0 --localtz/0",
    "quota": "--quota/1",
    "connbytes": "--connbytes/1 --connbytes-dir/1 --connbytes-mode/1",
    "policy": "--dir/1 --pol/1 --strict/0 --reqid/1 --spi/1 --proto/1 --mode/1 --tunnel-src/1"
    " --tunnel-dst/1 --next/0",
    "ecn": "--ecn-tcp-cwr/0 --ecn-tcp-ece/0 --ecn-ip-ect/1",
    "tcpmss": "--mss/1",
    "realm": "--realm/1",
    "cpu": "--cpu/1",
    "esp": "--espspi/1",
    "ah": "--ahspi/1",
    "ipvs": "--ipvs/0 --vproto/1 --vaddr/1 --vport/1 --vdir/1 --vmethod/1 --vportctl/1",
    "mh": "--mh-type/1",
}

_TARGET_SPECS: Final[dict[str, str]] = {
    "ACCEPT": "",
    "DROP": "",
    "RETURN": "",
    "QUEUE": "",
    "NOTRACK": "",
    "TRACE": "",
    "DNAT": "--to-destination/1 --random/0 --persistent/0 --random-fully/0",
    "SNAT": "--to-source/1 --random/0 --persistent/0 --random-fully/0",
    "MASQUERADE": "--to-ports/1 --random/0 --random-fully/0",
    "REDIRECT": "--to-ports/1 --random/0",
    "NETMAP": "--to/1",
    "REJECT": "--reject-with/1",
    "LOG": "--log-level/1 --log-prefix/1 --log-tcp-sequence/0 --log-tcp-options/0"
    " --log-ip-options/0 --log-uid/0 --log-macdecode/0",
    "NFLOG": "--nflog-group/1 --nflog-prefix/1 --nflog-range/1 --nflog-size/1 --nflog-threshold/1",
    "ULOG": "--ulog-nlgroup/1 --ulog-prefix/1 --ulog-cprange/1 --ulog-qthreshold/1",
    "NFQUEUE": "--queue-num/1 --queue-balance/1 --queue-bypass/0 --fail-open/0"
    " --queue-cpu-fanout/0",
    "MARK": "--set-xmark/1 --set-mark/1 --or-mark/1 --and-mark/1 --xor-mark/1",
    "CONNMARK": "--set-xmark/1 --set-mark/1 --save-mark/0 --restore-mark/0 --nfmask/1"
    " --ctmask/1 --mask/1 --and-mark/1 --or-mark/1 --xor-mark/1",
    "CT": "--notrack/0 --helper/1 --ctevents/1 --expevents/1 --zone/1 --zone-orig/1"
    " --zone-reply/1 --timeout/1",
    "TPROXY": "--on-port/1 --on-ip/1 --tproxy-mark/1",
    "TCPMSS": "--set-mss/1 --clamp-mss-to-pmtu/0",
    "CHECKSUM": "--checksum-fill/0",
    "DSCP": "--set-dscp/1 --set-dscp-class/1",
    "TOS": "--set-tos/1 --and-tos/1 --or-tos/1 --xor-tos/1",
    "TTL": "--ttl-set/1 --ttl-dec/1 --ttl-inc/1",
    "HL": "--hl-set/1 --hl-dec/1 --hl-inc/1",
    "CLASSIFY": "--set-class/1",
    "SET": "--add-set/2 --del-set/2 --map-set/2 --exist/0 --timeout/1 --map-mark/0"
    " --map-prio/0 --map-queue/0",
    "AUDIT": "--type/1",
    "SECMARK": "--selctx/1",
    "CONNSECMARK": "--save/0 --restore/0",
    "TEE": "--gateway/1",
    "IDLETIMER": "--timeout/1 --label/1 --alarm/0",
    "SYNPROXY": "--sack-perm/0 --timestamp/0 --wscale/1 --mss/1 --ecn/0",
    "TCPOPTSTRIP": "--strip-options/1",
}

# (canonical name, arity) per option spelling.
_Spec = dict[str, tuple[str, int]]


def _compile(specs: dict[str, str]) -> dict[str, _Spec]:
    out: dict[str, _Spec] = {}
    for module, text in specs.items():
        table: _Spec = {}
        aliases: list[tuple[str, str]] = []
        for item in text.split():
            if "=" in item:
                alias, canonical = item.split("=")
                aliases.append((alias, canonical))
            else:
                name, arity = item.split("/")
                table[sys.intern(name)] = (sys.intern(name), int(arity))
        for alias, canonical in aliases:
            table[sys.intern(alias)] = table[canonical]
        out[sys.intern(module)] = table
    return out


MATCH_OPTIONS: Final = _compile(_MATCH_SPECS)
TARGET_OPTIONS: Final = _compile(_TARGET_SPECS)
_NO_OPTIONS: Final[_Spec] = {}

# Protocols whose match iptables loads implicitly for `-p PROTO --opt` (xshared.c find_proto,
# which also maps numbers to names through xtables_chain_protos).
_IMPLICIT_COMMON: Final = {
    "tcp": "tcp",
    "6": "tcp",
    "udp": "udp",
    "17": "udp",
    "sctp": "sctp",
    "132": "sctp",
    "dccp": "dccp",
    "33": "dccp",
    "udplite": "udplite",
    "136": "udplite",
    "esp": "esp",
    "50": "esp",
    "ah": "ah",
    "51": "ah",
}
_IMPLICIT: Final[dict[int, dict[str, str]]] = {
    4: {**_IMPLICIT_COMMON, "icmp": "icmp", "1": "icmp"},
    6: {
        **_IMPLICIT_COMMON,
        "icmpv6": "icmp6",
        "ipv6-icmp": "icmp6",
        "icmp6": "icmp6",
        "58": "icmp6",
        "mh": "mh",
        "ipv6-mh": "mh",
        "135": "mh",
    },
}

# Built-in options: canonical short flag and arity; the command-structure flags get markers.
_MATCH_FLAG: Final = "-m"
_JUMP_FLAG: Final = "-j"
_GOTO_FLAG: Final = "-g"
_COUNTERS_FLAG: Final = "-c"
_TABLE_FLAG: Final = "-t"
_BUILTIN: Final[dict[str, tuple[str, int]]] = {
    "-s": ("-s", 1),
    "--source": ("-s", 1),
    "--src": ("-s", 1),
    "-d": ("-d", 1),
    "--destination": ("-d", 1),
    "--dst": ("-d", 1),
    "-p": ("-p", 1),
    "--protocol": ("-p", 1),
    "-i": ("-i", 1),
    "--in-interface": ("-i", 1),
    "-o": ("-o", 1),
    "--out-interface": ("-o", 1),
    "-f": ("-f", 0),
    "--fragment": ("-f", 0),
    "-4": ("-4", 0),
    "--ipv4": ("-4", 0),
    "-6": ("-6", 0),
    "--ipv6": ("-6", 0),
    "-m": (_MATCH_FLAG, 1),
    "--match": (_MATCH_FLAG, 1),
    "-j": (_JUMP_FLAG, 1),
    "--jump": (_JUMP_FLAG, 1),
    "-g": (_GOTO_FLAG, 1),
    "--goto": (_GOTO_FLAG, 1),
    "-c": (_COUNTERS_FLAG, 2),
    "--set-counters": (_COUNTERS_FLAG, 2),
    "-t": (_TABLE_FLAG, 1),
    "--table": (_TABLE_FLAG, 1),
}
# getopt_long accepts any unambiguous prefix of a long option; only used when no loaded
# extension claims the word.
_BUILTIN_PREFIXES: Final[dict[str, tuple[str, int]]] = {}


def _build_prefixes() -> None:
    longs = [name for name in _BUILTIN if name.startswith("--")]
    for name in longs:
        for end in range(4, len(name)):
            prefix = name[:end]
            owners = {_BUILTIN[n] for n in longs if n.startswith(prefix)}
            if len(owners) == 1 and prefix not in _BUILTIN:
                _BUILTIN_PREFIXES[prefix] = _BUILTIN[name]


_build_prefixes()
# iptables-save prints built-in options in this order (nft_ipv4_save_rule / print_ipv4_addr...).
_BUILTIN_RANK: Final = {"-s": 0, "-d": 1, "-i": 2, "-o": 3, "-p": 4, "-f": 5, "-4": 6, "-6": 7}


def is_chain_name(name: str) -> bool:
    """A target name that can only be a user chain: extension targets are upper case without
    '-' (KUBE-SVC-X, cali-fw-y and DOCKER-USER are chains; DNAT, MASQUERADE are not)."""
    return name not in TARGET_OPTIONS and ("-" in name or not name.isupper())


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


class _Unbalanced(Exception):
    """A quote opened and never closed; `words` is what iptables would have read anyway."""

    def __init__(self, words: list[str]) -> None:
        super().__init__("unbalanced quote")
        self.words = words


def split_rule_words(line: str) -> list[str]:
    """Split a rule line into words exactly as iptables-restore does (add_param_to_argv).

    Raises ValueError for an unterminated double quote (iptables-restore itself would swallow
    the rest of the line into one argument).
    """
    try:
        return _split(line)
    except _Unbalanced as exc:
        raise ValueError("unbalanced double quote") from exc


# Word separators: iptables splits on space, tab and newline only; Python's str.split() (the
# fast path) also splits on these other ASCII controls, so the character loop does the same.
# Non-ASCII lines (a no-break space in a comment) take the character loop, where only ASCII
# whitespace separates, as in iptables.
_SEPARATORS: Final = frozenset(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f")


def _split(line: str) -> list[str]:
    if not line.isascii():
        return _split_slow(line)
    if '"' not in line:
        return line.split()
    if "\\" in line:
        return _split_slow(line)
    parts = line.split('"')
    if len(parts) == 3 and parts[0][-1:].isspace():
        # The usual case: one quoted comment, preceded by a space.
        words = parts[0].split()
        words.append(parts[1])
        words.extend(parts[2].split())
        return words
    if not len(parts) & 1:
        raise _Unbalanced(_split_slow(line, lenient=True))
    words = []
    for k, part in enumerate(parts):
        if not k & 1:
            words.extend(part.split())
            continue
        outside = parts[k - 1]
        # A quote opened inside a word continues that word (`ab"c d"` is one word); a closing
        # quote always ends the word, so text right after it starts a new one.
        if outside and not outside[-1].isspace():
            words[-1] += part
        else:
            words.append(part)
    return words


def _split_slow(line: str, lenient: bool = False) -> list[str]:
    """Character loop of add_param_to_argv: escapes only inside quotes."""
    words: list[str] = []
    buf: list[str] = []
    in_word = False
    quote = False
    escaped = False
    for ch in line:
        if quote:
            if escaped:
                buf.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quote = False
                words.append("".join(buf))  # the closing quote ends the word, even if empty
                buf.clear()
                in_word = False
            else:
                buf.append(ch)
        elif ch == '"':
            quote = True
            in_word = True
        elif ch in _SEPARATORS:
            if in_word:
                words.append("".join(buf))
                buf.clear()
                in_word = False
        else:
            buf.append(ch)
            in_word = True
    if quote:
        if not lenient:
            raise _Unbalanced(words + ["".join(buf)])
        words.append("".join(buf))
    elif in_word:
        words.append("".join(buf))
    return words


_NO_QUOTE: Final = frozenset("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Options whose value iptables-save prints with xtables_save_string (quoted unless plain).
_SAVE_STRING_OPTIONS: Final = frozenset(
    {"--comment", "--log-prefix", "--nflog-prefix", "--helper", "--ulog-prefix", "--label",
     "--selctx"}
)
# Options iptables-save always prints in double quotes, escaping only `"` and `\`
# (libxt_string print_string, libxt_u32 u32_save, libxt_bpf bpf_save).
_QUOTED_OPTIONS: Final = frozenset({"--string", "--hex-string", "--u32", "--bytecode"})


def save_string(value: str) -> str:
    """`value` as xtables_save_string prints it: bare if only [_-0-9A-Za-z], else quoted."""
    if value and all(c in _NO_QUOTE for c in value):
        return value
    return '"' + "".join("\\" + c if c in "\"\\'" else c for c in value) + '"'


def _word(value: str) -> str:
    """`value` written so that split_rule_words reads it back as one word."""
    if value and '"' not in value and "\\" not in value and not any(c.isspace() for c in value):
        return value
    return save_string(value)


def format_rule(rule: Rule, *, counters: bool = False) -> str:
    """The rule as iptables-save prints it (`-A CHAIN ...`), the canonical form of the model.

    Arguments are re-quoted only where iptables-save would (or where the words need it), so
    the result re-parses to an equal rule. `counters` prefixes `[pkts:bytes]` when known.
    """
    parts: list[str] = []
    if counters and rule.packets is not None and rule.bytes is not None:
        parts.append(f"[{rule.packets}:{rule.bytes}]")
    parts += ["-A", rule.chain]
    for match in rule.matches:
        if match.module != BUILTIN_MODULE:
            parts += ["-m", match.module]
        _format_options(parts, match.options)
    if rule.target is not None:
        parts += ["-g" if rule.target.goto else "-j", rule.target.name]
        _format_options(parts, rule.target.options)
    return " ".join(parts)


def _format_options(parts: list[str], options: Iterable[Option]) -> None:
    for opt in options:
        if opt.negated:
            parts.append("!")
        parts.append(opt.name)
        if opt.name in _SAVE_STRING_OPTIONS:
            parts += [save_string(a) for a in opt.args]
        elif opt.name in _QUOTED_OPTIONS:
            parts += ['"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"' for a in opt.args]
        else:
            parts += [_word(a) for a in opt.args]


# --------------------------------------------------------------------------------------------
# Rule parser
# --------------------------------------------------------------------------------------------


class _RuleError(Exception):
    """A rule iptables would reject; `expected` says what was wanted."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


class _Context:
    """One loaded extension while a rule is read: a match, or the target.

    `words` collects the words of its options (with their `!`), in order; the options are built
    from them only when the same words were not seen before (see _RuleReader.read).
    """

    __slots__ = ("module", "spec", "words")

    def __init__(self, module: str, spec: _Spec | None) -> None:
        self.module = module
        self.spec = spec  # None: unknown extension, every option may be its own
        self.words: list[str] = []


def _is_optlike(word: str) -> bool:
    """Does this word end a run of arguments (an option, or the `!` before one)?"""
    return word == "!" or (len(word) > 1 and word[0] == "-")


_WordsKey = tuple[str, tuple[str, ...]]


class _RuleReader:
    """Reads the option part of rules; caches the immutable pieces across the rules of a file.

    A rule is read in two steps. The scan walks the words once, deciding (with the option
    arities) which extension each word belongs to. Then each extension's words are looked up in
    a cache: kube-proxy dumps repeat the same match text thousands of times, and building the
    Option objects only for new text halves the time.
    """

    def __init__(self, family: int) -> None:
        self.family = family
        self.implicit = _IMPLICIT.get(family, _IMPLICIT[4])
        self.options: dict[tuple[str, tuple[str, ...], bool], Option] = {}
        self.builtins: dict[tuple[tuple[str, tuple[str, ...], bool], ...], Match] = {}
        self.matches: dict[_WordsKey, Match] = {}
        self.targets: dict[tuple[str, bool, tuple[str, ...]], Target] = {}
        # Per rule: things iptables would have refused but that were kept (read() resets it).
        self.notes: list[str] = []
        self.other_family = False  # the last rule had -4/-6 for the other family
        # The last rule had an option its (known) extension does not list: where it went
        # depended on the other extensions of the rule.
        self.guessed = False

    def _option(self, name: str, args: tuple[str, ...], neg: bool) -> Option:
        key = (name, args, neg)
        opt = self.options.get(key)
        if opt is None:
            opt = self.options[key] = _new_option(name, args, neg)
        return opt

    def _options(self, spec: _Spec | None, words: list[str]) -> tuple[Option, ...]:
        """Options from the words the scan gave one extension (same arity rules as the scan)."""
        out: list[Option] = []
        n = len(words)
        i = 0
        neg = False
        while i < n:
            w = words[i]
            if w == "!":
                neg = True
                i += 1
                continue
            inline: str | None = None
            if w[:2] == "--" and "=" in w:
                w, inline = w.split("=", 1)
            hit = spec.get(w) if spec is not None else None
            name, arity = hit if hit is not None else (sys.intern(w), -1)
            if inline is not None:
                j = i + 1
                args: tuple[str, ...] = (inline,)
            else:
                j = i + 1 + max(arity, 0)
                args = tuple(words[i + 1 : j])
            k = j
            while k < n and not _is_optlike(words[k]):
                k += 1
            if k > j:
                args = (*args, *words[j:k])
            out.append(self._option(name, args, neg))
            neg = False
            i = k
        return tuple(out)

    def read(
        self, words: list[str], start: int, chains: Collection[str]
    ) -> tuple[tuple[Match, ...], Target | None, int | None, int | None]:
        """Read words[start:] (everything after `-A CHAIN`)."""
        if self.notes:
            self.notes = []
        self.other_family = False
        self.guessed = False
        n = len(words)
        builtin: list[tuple[str, tuple[str, ...], bool]] = []
        loaded: list[_Context] = []  # matches and target in load order
        target: _Context | None = None
        goto = False
        cur: _Context | None = None
        spec: _Spec | None = None  # cur.spec, kept in a local for the hot path
        cwords: list[str] = []  # cur.words
        proto: str | None = None
        packets: int | None = None
        nbytes: int | None = None
        neg = False
        i = start
        while i < n:
            w = words[i]
            if spec is not None and w[:2] == "--":
                # Hot path: an option of the current extension whose arguments are followed by
                # the end or an option-like word (the test is _is_optlike, inlined).
                hit = spec.get(w)
                if hit is not None:
                    j = i + 1 + hit[1]
                    if j < n:
                        nw = words[j]
                        if nw != "!" and (len(nw) < 2 or nw[0] != "-"):
                            j = -1
                    elif j > n:
                        j = -1
                    if j >= 0:
                        if neg:
                            cwords.append("!")
                            neg = False
                        cwords += words[i:j]
                        i = j
                        continue
            elif w == "-m" and not neg and i + 1 < n:
                module = sys.intern(words[i + 1])
                spec = MATCH_OPTIONS.get(module)
                cur = _Context(module, spec)
                cwords = cur.words
                loaded.append(cur)
                i += 2
                continue
            if w == "!":
                if neg:
                    raise _RuleError("one '!' (multiple consecutive ! not allowed)")
                neg = True
                i += 1
                continue
            flag = _BUILTIN.get(w)
            if flag is not None:
                name, arity = flag
                if i + arity >= n:
                    raise _RuleError(f"an argument after {w}")
                if name is _MATCH_FLAG:
                    raise _RuleError("an option after '!' (not -m)")
                if name is _JUMP_FLAG or name is _GOTO_FLAG:
                    if neg:
                        raise _RuleError(f"an option after '!' (not {w})")
                    if target is not None:
                        raise _RuleError("one -j/-g (multiple -j flags not allowed)")
                    tname = sys.intern(words[i + 1])
                    spec = TARGET_OPTIONS.get(tname)
                    if spec is None and (tname in chains or is_chain_name(tname)):
                        spec = _NO_OPTIONS
                    cur = target = _Context(tname, spec)
                    cwords = cur.words
                    goto = name is _GOTO_FLAG
                    loaded.append(target)
                    i += 2
                    continue
                if name is _COUNTERS_FLAG:
                    try:
                        packets, nbytes = int(words[i + 1]), int(words[i + 2])
                    except ValueError:
                        raise _RuleError("two counter values after -c") from None
                    i += 3
                    continue
                if name is _TABLE_FLAG:
                    raise _RuleError("no -t in a restore file (the table comes from *TABLE)")
                if arity:
                    arg = words[i + 1]
                    if arg == "!" and not neg and i + 2 < n:
                        # Old syntax `-s ! 10.0.0.0/8` (iptables < 1.4.3; 1.8 rejects it).
                        self.notes.append(f"old negation syntax '{w} ! {words[i + 2]}'")
                        neg = True
                        i += 1
                        arg = words[i + 1]
                    args: tuple[str, ...] = (arg,)
                else:
                    args = ()
                    if name == ("-6" if self.family == 4 else "-4"):
                        self.other_family = True
                for seen in builtin:
                    if seen[0] == name:
                        raise _RuleError(f"one {name} (multiple {name} flags not allowed)")
                builtin.append((name, args, neg))
                if name == "-p":
                    proto = args[0]
                neg = False
                i += 1 + arity
                continue
            if len(w) > 1 and w[0] == "-":
                # An extension option, off the hot path: `--opt=value`, an option of another
                # loaded extension or of the implicit protocol match, unknown arity, extra words.
                lookup = w.split("=", 1)[0] if w[:2] == "--" and "=" in w else w
                hit = spec.get(lookup) if spec is not None else None
                owner: _Context | None = cur
                if hit is None:
                    owner, hit = self._resolve(lookup, cur, loaded, proto)
                    if owner is None:
                        pre = _BUILTIN_PREFIXES.get(lookup)
                        if pre is not None:
                            words = [*words[:i], pre[0], *words[i + 1 :]]
                            continue
                        if cur is None:
                            raise _RuleError(
                                f"an option iptables knows here (unknown option {lookup})")
                        # A known extension with an option our table lacks (newer iptables).
                        owner = cur
                        self.guessed = True
                    if owner not in loaded:
                        loaded.append(owner)
                        cur = owner
                        spec = owner.spec
                        cwords = owner.words
                arity = hit[1] if hit is not None else -1
                if lookup is not w:
                    j = i + 1  # --opt=value carries its argument
                else:
                    j = i + 1 + max(arity, 0)
                    if j > n:
                        raise _RuleError(f"{arity} argument(s) after {w}")
                k = j
                while k < n and not _is_optlike(words[k]):
                    k += 1
                if k > j and arity >= 0:
                    self.notes.append(
                        f"extra words after {' '.join(words[i:j])}: {' '.join(words[j:k])!r}"
                        " (iptables-restore would reject them; kept as part of the option)"
                    )
                assert owner is not None
                if neg:
                    owner.words.append("!")
                    neg = False
                owner.words += words[i:k]
                i = k
                continue
            raise _RuleError(f"an option (Bad argument `{w}')")
        if neg:
            raise _RuleError("an option after '!' (nothing appropriate following !)")

        matches: list[Match] = []
        if builtin:
            if len(builtin) > 1:
                builtin.sort(key=_builtin_rank)
            bkey = tuple(builtin)
            m = self.builtins.get(bkey)
            if m is None:
                m = self.builtins[bkey] = _new_match(
                    BUILTIN_MODULE, tuple([self._option(*e) for e in builtin])
                )
            matches.append(m)
        tgt: Target | None = None
        cache = self.matches
        for ctx in loaded:
            if ctx is target:
                tkey = (ctx.module, goto, tuple(ctx.words))
                tgt = self.targets.get(tkey)
                if tgt is None:
                    tgt = self.targets[tkey] = _new_target(
                        ctx.module, self._options(ctx.spec, ctx.words), goto
                    )
                continue
            mkey = (ctx.module, tuple(ctx.words))
            m = cache.get(mkey)
            if m is None:
                m = cache[mkey] = _new_match(ctx.module, self._options(ctx.spec, ctx.words))
            matches.append(m)
        return tuple(matches), tgt, packets, nbytes

    def _resolve(
        self, name: str, cur: _Context | None, loaded: list[_Context], proto: str | None
    ) -> tuple[_Context | None, tuple[str, int] | None]:
        """Who takes option `name` when the current extension does not know it (getopt order:
        the newest loaded extension first, then the protocol's match, loaded implicitly)."""
        if cur is not None and cur.spec is None:
            return cur, None  # an unknown extension: assume the option is its own
        for ctx in reversed(loaded):
            if ctx.spec is not None and name in ctx.spec:
                return ctx, ctx.spec[name]
        module = self.implicit.get(proto) if proto is not None else None
        if module is not None and not any(c.module == module for c in loaded):
            ctx = _Context(module, MATCH_OPTIONS.get(module))
            if ctx.spec is None or name in ctx.spec:
                return ctx, ctx.spec[name] if ctx.spec is not None else None
        return None, None


def _builtin_rank(entry: tuple[str, tuple[str, ...], bool]) -> int:
    return _BUILTIN_RANK.get(entry[0], 9)


# --------------------------------------------------------------------------------------------
# File parser
# --------------------------------------------------------------------------------------------


class _ChainBuilder:
    """A chain while its table is read.

    It is laid out exactly like Chain (see _draft: same slots, in the same order), with `rules`
    a list; build() gives it its tuple of rules and its real class, so the builder becomes the
    Chain instead of being copied into a new object (40k chains in a 10k-service dump).
    """

    __slots__ = Chain.__slots__  # the very same layout (checked by _check_drafts)

    def __init__(
        self,
        name: str,
        policy: str | None,
        source: SourceRef,
        packets: int | None = None,
        nbytes: int | None = None,
    ) -> None:
        self.name = name
        self.rules: list[Rule] = []
        self.policy = policy
        self.packets = packets
        self.bytes = nbytes
        self.source = source

    def build(self) -> Chain:
        """The finished Chain (this very object); the builder must not be used afterwards."""
        d: Any = self
        d.rules = tuple(self.rules)
        d.__class__ = Chain
        chain: Chain = d
        return chain


_check_drafts()


class _TableBuilder:
    def __init__(self, name: str, line: int) -> None:
        self.name = name
        self.line = line
        self.chains: dict[str, _ChainBuilder] = {}
        # Built-in chains the text never declared (made up for a rule or -P naming them).
        self.assumed: set[str] = set()


# What nearly every chain line of iptables-save ends with.
_NO_COUNTS: Final = (0, 0)


def _counters(text: str) -> tuple[int, int] | None:
    """`[pkts:bytes]` → (pkts, bytes), None if malformed."""
    if len(text) < 5 or text[0] != "[" or text[-1] != "]":
        return None
    p, sep, b = text[1:-1].partition(":")
    if not sep or not p.isdigit() or not b.isdigit():
        return None
    return int(p), int(b)


# A Match that is never built from text: marks rule text the segment cache cannot handle.
_NOT_SIMPLE: Final = Match("\x00not-simple")
_NOT_SIMPLE_TARGET: Final = Target("\x00not-simple")
# What a refused head or middle reads as (a tuple, so it is true and never a real reading).
_NOT_SIMPLE_MATCHES: Final = (_NOT_SIMPLE,)
# Built-in options as iptables-save prints them, with their rank in its output order.
_SAVED_BUILTINS: Final = {"-s": 0, "-d": 1, "-i": 2, "-o": 3, "-p": 4, "-f": 5}
_FRAGMENT_RANK: Final = _SAVED_BUILTINS["-f"]
_CANONICAL_BUILTIN: Final = {name: sys.intern(name) for name in _SAVED_BUILTINS}
# A word starting with one of these is an option or a negation, never a target name.
_NOT_CHAIN_START: Final = "-!"
_COMMENT: Final = sys.intern("comment")
_COMMENT_OPT: Final = sys.intern("--comment")


class _Segments:
    """The fast path for rules as iptables-save prints them.

    Such a line is `-A CHAIN [built-in options] [-m MODULE opts]... [-j TARGET opts]`, with
    single spaces. It is cut with C-speed string operations into the chain name, the head (the
    built-in options), the matches (the pieces between ` -m `s) and the target (after the last
    ` -j ` or, without one, the last ` -g `). Each distinct piece is read once and the result is
    shared by every rule containing the same text.

    A piece is only accepted when reading it alone must give what reading the whole line gives:
    only built-in options in the head; exactly one extension per piece with every option known
    to it (or an unknown extension, which takes all its options); a target with no options or a
    known target; no quote cut in half, no notes. A cut inside a quoted argument leaves an odd
    quote in some piece, and a `-m`/`-j`/`-g` left inside a piece is not an option of its own
    extension, so such lines are refused. Anything refused returns None and the line goes
    through the full reader, which also produces the error messages.
    """

    def __init__(self, reader: _RuleReader) -> None:
        self.reader = reader
        # Each cache maps a piece's text to what it reads as; refused pieces are cached too, as
        # _NOT_SIMPLE_MATCHES / _NOT_SIMPLE / _NOT_SIMPLE_TARGET.
        self.heads: dict[str, tuple[Match, ...]] = {}  # () or (the built-in match,)
        self.matches: dict[str, Match] = {}  # one piece between " -m "s
        self.jumps: dict[str, Target] = {}  # text after " -j "
        self.gotos: dict[str, Target] = {}  # text after " -g "

    def fast(self, line: str) -> tuple[str, tuple[Match, ...], Target | None] | None:
        """(chain, matches, target) of a `-A ...` line, or None: use the full reader.

        _SaveParser.run does the same inline, in its hot loop (a call per line would cost 2-3 %
        of the parse); tests check both against the full reader.
        """
        if not line.isascii():
            return None
        sp = line.find(" ", 3)
        if sp < 0:
            return line[3:], (), None
        target: Target | None = None
        end = line.rfind(" -j ", sp)
        if end >= 0:
            ttext = line[end + 4 :]
            target = self.jumps.get(ttext)
            if target is None:
                target = self.jumps[ttext] = self._target(ttext, False)
        else:
            end = line.rfind(" -g ", sp)
            if end >= 0:
                ttext = line[end + 4 :]
                target = self.gotos.get(ttext)
                if target is None:
                    target = self.gotos[ttext] = self._target(ttext, True)
            else:
                end = len(line)
        mid = line.find(" -m ", sp, end)
        if mid < 0:
            mid = end
            matches: tuple[Match, ...] = ()
        else:
            simple = True
            found: list[Match] = []
            for piece in line[mid + 4 : end].split(" -m "):
                m = self.matches.get(piece)
                if m is None:
                    m = self.matches[piece] = self._match(piece)
                if m is _NOT_SIMPLE:
                    simple = False
                found.append(m)
            matches = tuple(found) if simple else _NOT_SIMPLE_MATCHES
        if mid > sp + 1 and matches is not _NOT_SIMPLE_MATCHES:
            htext = line[sp + 1 : mid]
            head = self.heads.get(htext)
            if head is None:
                head = self.heads[htext] = self._head(htext)
            matches = _NOT_SIMPLE_MATCHES if head is _NOT_SIMPLE_MATCHES else head + matches
        if matches is _NOT_SIMPLE_MATCHES or target is _NOT_SIMPLE_TARGET:
            return None
        return line[3:sp], matches, target

    def _read(self, words: list[str]) -> tuple[tuple[Match, ...], Target | None] | None:
        """The full reader on one piece, accepted only if nothing in it was unusual."""
        reader = self.reader
        try:
            matches, target, packets, _ = reader.read(words, 0, ())
        except _RuleError:
            return None
        if reader.notes or reader.other_family or reader.guessed or packets is not None:
            return None
        return matches, target

    @staticmethod
    def _options(spec: _Spec, words: list[str], i: int) -> tuple[Option, ...] | None:
        """Options that are all known to `spec`, each with exactly its arity (else None).

        This is the reader's hot path on its own, so the same words give equal Options. (No
        Option cache here: the piece caches already share repeated text.)
        """
        out: list[Option] = []
        n = len(words)
        while i < n:
            w = words[i]
            neg = w == "!"
            if neg:
                i += 1
                if i >= n:
                    return None
                w = words[i]
            hit = spec.get(w)
            if hit is None:
                return None
            j = i + 1 + hit[1]
            if j > n:
                return None
            if j < n:
                nw = words[j]
                if nw != "!" and (len(nw) < 2 or nw[0] != "-"):
                    return None
            out.append(_new_option(hit[0], tuple(words[i + 1 : j]), neg))
            i = j
        return tuple(out)

    @staticmethod
    def _head(text: str) -> tuple[Match, ...]:
        """The built-in options before the first -m: (their match,), or () if there are none."""
        if '"' in text:
            try:
                words = _split(text)
            except _Unbalanced:
                return _NOT_SIMPLE_MATCHES
        else:
            words = text.split()  # what _split does with an ASCII line without quotes
        n = len(words)
        if not n:
            return ()
        if n == 2:
            # `-s 10.1.2.3/32`: one option (every endpoint chain of a kube-proxy dump)
            name = _CANONICAL_BUILTIN.get(words[0])
            if name is not None and name != "-f" and words[1] != "!":
                return (_new_match(BUILTIN_MODULE, (_new_option(name, (words[1],), False),)),)
        opts: list[Option] = []
        last = -1
        i = 0
        while i < n:
            w = words[i]
            neg = w == "!"
            if neg:
                i += 1
                if i >= n:
                    return _NOT_SIMPLE_MATCHES
                w = words[i]
            rank = _SAVED_BUILTINS.get(w)
            if rank is None:
                return _NOT_SIMPLE_MATCHES
            if rank <= last:
                # Out of iptables-save's order (or repeated): not what it prints.
                return _Segments._head_unordered(words)
            last = rank
            if rank == _FRAGMENT_RANK:
                opts.append(_new_option(_CANONICAL_BUILTIN[w], (), neg))
                i += 1
                continue
            i += 2
            if i > n or words[i - 1] == "!":
                # (`-s ! x` is the old syntax: the full reader notes it)
                return _NOT_SIMPLE_MATCHES
            opts.append(_new_option(_CANONICAL_BUILTIN[w], (words[i - 1],), neg))
        return (_new_match(BUILTIN_MODULE, tuple(opts)),)

    @staticmethod
    def _head_unordered(words: list[str]) -> tuple[Match, ...]:
        """_head for built-in options in any order: kept in iptables-save's order."""
        n = len(words)
        opts: list[Option] = []
        names: list[str] = []
        i = 0
        while i < n:
            w = words[i]
            neg = w == "!"
            if neg:
                i += 1
                if i >= n:
                    return _NOT_SIMPLE_MATCHES
                w = words[i]
            if w not in _SAVED_BUILTINS or w in names:
                return _NOT_SIMPLE_MATCHES
            names.append(w)
            if w == "-f":
                opts.append(_new_option(_CANONICAL_BUILTIN[w], (), neg))
                i += 1
                continue
            if i + 1 >= n or words[i + 1] == "!":
                return _NOT_SIMPLE_MATCHES
            opts.append(_new_option(_CANONICAL_BUILTIN[w], (words[i + 1],), neg))
            i += 2
        opts.sort(key=lambda o: _BUILTIN_RANK[o.name])
        return (_new_match(BUILTIN_MODULE, tuple(opts)),)

    def _match(self, text: str) -> Match:
        if text.startswith('comment --comment "') and text.find('"', 19) == len(text) - 1 \
                and "\\" not in text:
            # A quoted comment without escapes: the commonest match of all.
            return _new_match(_COMMENT, (_new_option(_COMMENT_OPT, (text[19:-1],), False),))
        try:
            words = _split(text)
        except _Unbalanced:
            return _NOT_SIMPLE
        if words:
            spec = MATCH_OPTIONS.get(words[0])
            if spec is not None:
                opts = self._options(spec, words, 1)
                return _NOT_SIMPLE if opts is None else _new_match(sys.intern(words[0]), opts)
        got = self._read(["-m", *words])
        if got is None or got[1] is not None or len(got[0]) != 1:
            return _NOT_SIMPLE
        m = got[0][0]
        return _NOT_SIMPLE if m.module == BUILTIN_MODULE else m

    def _target(self, text: str, goto: bool) -> Target:
        if " " not in text and text.isprintable() and '"' not in text and text \
                and text[0] not in _NOT_CHAIN_START:
            # One word (the text is ASCII: isprintable() rules out the other separators, tab
            # and the other controls): a jump to a chain or a bare verdict.
            return _new_target(sys.intern(text), (), goto)
        if '"' not in text:
            parts = text.split()
            spec = TARGET_OPTIONS.get(parts[0]) if len(parts) == 3 else None
            hit = spec.get(parts[1]) if spec is not None else None
            if hit is not None and hit[1] == 1:
                # `DNAT --to-destination 10.1.2.3:80`: a known target with one option.
                return _new_target(
                    sys.intern(parts[0]), (_new_option(hit[0], (parts[2],), False),), goto)
        try:
            words = _split(text)
        except _Unbalanced:
            return _NOT_SIMPLE_TARGET
        if not words or _is_optlike(words[0]) or not words[0]:
            return _NOT_SIMPLE_TARGET
        name = sys.intern(words[0])
        if len(words) == 1:
            return _new_target(name, (), goto)
        spec = TARGET_OPTIONS.get(name)
        if spec is None:
            # Whether options belong to an unknown target depends on the table's chains.
            return _NOT_SIMPLE_TARGET
        opts = self._options(spec, words, 1)
        return _NOT_SIMPLE_TARGET if opts is None else _new_target(name, opts, goto)


class _SaveParser:
    def __init__(self, source: str, family: int, strict: bool, *, hot: bool = True) -> None:
        self.source = source
        self.family = family
        self.strict = strict
        # hot=False sends every line through the full reader (tests compare the two).
        self.hot = hot
        self.reader = _RuleReader(family)
        self.tables: dict[str, Table] = {}
        self.table: _TableBuilder | None = None
        self.issues: list[ParseIssue] = []

    # -- error handling ----------------------------------------------------------------------

    def fail(self, lineno: int, text: str, expected: str) -> None:
        """Raise in strict mode; otherwise record the problem and let the caller go on."""
        if self.strict:
            raise ParseError(self.source, lineno, text, expected)
        self.note(lineno, text, f"expected {expected}")

    def note(self, lineno: int, text: str, message: str) -> None:
        self.issues.append(ParseIssue(SourceRef(self.source, lineno), text, message))

    # -- driver ------------------------------------------------------------------------------

    def run(self, text: str) -> Ruleset:
        gc_was_enabled = gc.isenabled()
        # Hundreds of thousands of small acyclic objects: generation-0 collections would scan
        # them over and over for nothing. Restored in `finally`.
        gc.disable()
        reader = self.reader
        read = reader.read
        segments = _Segments(reader)
        jumps, gotos, heads, mcache = (
            segments.jumps, segments.gotos, segments.heads, segments.matches)
        source = self.source
        new = _new
        hot = self.hot
        # The open table, as locals for the hot path (refreshed after every other line).
        tb: _TableBuilder | None = None
        chains: dict[str, _ChainBuilder] = {}
        table_name = ""
        builtin_chains: tuple[str, ...] = ()
        try:
            lineno = 0
            for lineno, line in enumerate(text.split("\n"), 1):
                if not line:
                    continue
                if hot and line[:3] == "-A " and tb is not None and line[-1] != "\r":
                    # Hot path: a rule appended to a declared chain, nothing unusual about it.
                    # This is _Segments.fast, inline (a call per line costs 2-3 % of the parse).
                    sp = line.find(" ", 3)
                    cb = chains.get(line[3:sp]) if sp > 0 and line.isascii() else None
                    if cb is not None:
                        end = line.rfind(" -j ", sp)
                        if end >= 0:
                            ttext = line[end + 4 :]
                            target = jumps.get(ttext)
                            if target is None:
                                target = jumps[ttext] = segments._target(ttext, False)
                        else:
                            end = line.rfind(" -g ", sp)
                            if end >= 0:
                                ttext = line[end + 4 :]
                                target = gotos.get(ttext)
                                if target is None:
                                    target = gotos[ttext] = segments._target(ttext, True)
                            else:
                                end = len(line)
                                target = None
                        mid = line.find(" -m ", sp, end)
                        if mid < 0:
                            mid = end
                            matches: tuple[Match, ...] = ()
                        else:
                            simple = True
                            found: list[Match] = []
                            for piece in line[mid + 4 : end].split(" -m "):
                                m = mcache.get(piece)
                                if m is None:
                                    m = mcache[piece] = segments._match(piece)
                                if m is _NOT_SIMPLE:
                                    simple = False
                                found.append(m)
                            matches = tuple(found) if simple else _NOT_SIMPLE_MATCHES
                        if mid > sp + 1 and matches is not _NOT_SIMPLE_MATCHES:
                            htext = line[sp + 1 : mid]
                            head = heads.get(htext)
                            if head is None:
                                head = heads[htext] = segments._head(htext)
                            matches = _NOT_SIMPLE_MATCHES if head is _NOT_SIMPLE_MATCHES \
                                else head + matches
                        if matches is not _NOT_SIMPLE_MATCHES and target is not _NOT_SIMPLE_TARGET:
                            # _new_rule(table_name, cb.name, matches, target, line,
                            # _new_source(source, lineno), None, None), inline: 3 % of the parse.
                            src: Any = new(_SourceDraft)
                            src.file = source
                            src.line = lineno
                            src.__class__ = SourceRef
                            rule: Any = new(_RuleDraft)
                            rule.table = table_name
                            rule.chain = cb.name
                            rule.matches = matches
                            rule.target = target
                            rule.raw = line
                            rule.source = src
                            rule.packets = None
                            rule.bytes = None
                            rule.__class__ = Rule
                            cb.rules.append(rule)
                            continue
                    try:
                        words = _split(line)
                    except _Unbalanced:
                        words = []
                    cb = chains.get(words[1]) if len(words) > 1 else None
                    if cb is not None:
                        try:
                            matches, target, packets, nbytes = read(words, 2, chains)
                        except _RuleError as exc:
                            self.fail(lineno, line, exc.expected)
                            continue
                        if not reader.notes and not reader.other_family:
                            cb.rules.append(_new_rule(table_name, cb.name, matches, target, line,
                                                      _new_source(source, lineno), packets,
                                                      nbytes))
                            continue
                elif hot and line[0] == ":" and tb is not None:
                    # Hot path: a new user chain, `:NAME - [packets:bytes]`.
                    parts = line.split()
                    if len(parts) == 3 and parts[1] == "-":
                        name = parts[0][1:]
                        counts = _NO_COUNTS if parts[2] == "[0:0]" else _counters(parts[2])
                        if (counts is not None and 0 < len(name) <= MAX_CHAIN_NAME
                                and name not in chains and name not in builtin_chains):
                            name = sys.intern(name)
                            chains[name] = _ChainBuilder(
                                name, None, _new_source(source, lineno), *counts)
                            if name not in jumps and name[0] not in _NOT_CHAIN_START \
                                    and '"' not in name:
                                # The target of `-j NAME`, as _Segments._target would read it:
                                # made here, where the name is at hand, rather than on the
                                # first jump (nearly every user chain is jumped to).
                                jumps[name] = _new_target(name, (), False)
                            continue
                self.line(line, lineno)
                tb = self.table
                if tb is not None:
                    chains = tb.chains
                    table_name = tb.name
                    builtin_chains = BUILTIN_CHAINS.get(table_name, ())
            if self.table is not None:
                self.fail(lineno, "", f"COMMIT for table {self.table.name} (opened at line"
                          f" {self.table.line}) before the end of the input")
                self.commit(lineno, "")
        finally:
            if gc_was_enabled:
                if lineno >= _FREEZE_LINES:
                    # Every object allocated while the collector was off sits in generation 0;
                    # the first collection after enable() would walk all of them (0.3 s for a
                    # 10k-service dump) and every full collection later again. They are
                    # immutable and acyclic, so nothing is lost by moving them to the permanent
                    # generation (docs.python.org/3/library/gc.html#gc.freeze), where reference
                    # counting still frees them. Small inputs skip this process-wide step.
                    gc.freeze()
                gc.enable()
        return Ruleset(tables=self.tables, family=self.family, origin="iptables-save",
                       issues=tuple(self.issues))

    def line(self, line: str, lineno: int) -> None:
        """Any line but the hot path's."""
        if line[-1] == "\r":
            line = line[:-1]
        stripped = line.strip()
        if not stripped or stripped[0] == "#":
            return
        c = stripped[0]
        # iptables-restore reads these at column 0 only; indented text is accepted too.
        if c == "-":
            self.command(stripped, lineno, line, None)
        elif c == ":":
            self.chain_line(stripped, lineno)
        elif c == "[":
            self.counted_command(stripped, lineno)
        elif c == "*":
            self.table_line(stripped, lineno)
        elif stripped == "COMMIT":
            self.commit(lineno, line)
        else:
            self.fail(lineno, line, "a table (*name), chain (:NAME), rule (-A ...), COMMIT or"
                      " # comment")

    # -- structure ---------------------------------------------------------------------------

    def table_line(self, line: str, lineno: int) -> None:
        name = line[1:].strip()
        if self.table is not None:
            self.fail(lineno, line, f"COMMIT to close table {self.table.name} before a new table")
            self.commit(lineno, line)
        if name not in BUILTIN_CHAINS:
            self.fail(
                lineno, line, "a table name iptables knows (" + ", ".join(BUILTIN_CHAINS) + ")"
            )
            if not name:
                return
        self.table = _TableBuilder(sys.intern(name), lineno)

    def commit(self, lineno: int, line: str) -> None:
        tb = self.table
        if tb is None:
            self.fail(lineno, line, "COMMIT only after a *table line")
            return
        builtin = BUILTIN_CHAINS.get(tb.name, ())
        missing = [name for name in builtin if name not in tb.chains or name in tb.assumed]
        if missing:
            self.note(
                tb.line,
                f"*{tb.name}",
                "built-in chain(s) "
                + ", ".join(missing)
                + " not declared: assumed to exist with policy ACCEPT (the kernel keeps"
                " its current policy; a fresh table has ACCEPT)",
            )
        chains: dict[str, Chain] = {}
        for name in builtin:
            cb = tb.chains.get(name)
            if cb is None:
                cb = _ChainBuilder(name, "ACCEPT", SYNTHETIC)
            chains[name] = cb.build()
        for name, cb in tb.chains.items():
            if name not in chains:
                chains[name] = cb.build()
        self.check_targets(tb, chains)
        # A second section for the same table replaces the first: iptables-restore flushes
        # each table it reads (unless --noflush).
        self.tables[tb.name] = Table(tb.name, chains)
        self.table = None

    def check_targets(self, tb: _TableBuilder, chains: dict[str, Chain]) -> None:
        for chain in chains.values():
            for rule in chain.rules:
                t = rule.target
                if t is None or t.name in chains or t.name in TARGET_OPTIONS:
                    continue
                if is_chain_name(t.name):
                    # iptables-restore: "Couldn't load target `X'" (no such chain or extension).
                    self.fail(
                        rule.source.line,
                        rule.raw,
                        f"a jump to a chain declared in table {tb.name} (no chain {t.name!r})",
                    )

    def chain_line(self, line: str, lineno: int) -> None:
        tb = self.table
        if tb is None:
            self.fail(lineno, line, "a *table line before chain declarations")
            return
        parts = line[1:].split()
        if len(parts) < 2:
            self.fail(lineno, line, "':NAME POLICY [packets:bytes]' (policy invalid)")
            if not parts:
                return
            parts.append("-")
        name, policy = parts[0], parts[1]
        if len(name) > MAX_CHAIN_NAME:
            self.fail(lineno, line, f"a chain name of at most {MAX_CHAIN_NAME} characters")
        counters = _counters(parts[2]) if len(parts) > 2 else None
        if len(parts) > 2 and counters is None:
            self.fail(lineno, line, "chain counters as [packets:bytes]")
        builtin = name in BUILTIN_CHAINS.get(tb.name, ())
        if builtin:
            if policy == "-":
                self.note(
                    lineno,
                    line,
                    f"built-in chain {name} has no policy ('-'): the kernel"
                    " keeps its current one; assumed ACCEPT",
                )
                policy = "ACCEPT"
            elif policy not in POLICIES:
                self.fail(lineno, line, "policy ACCEPT or DROP (Bad policy name)")
                policy = "ACCEPT"
        elif policy != "-":
            # iptables-legacy-restore rejects this; iptables-nft-restore ignores the policy.
            self.note(lineno, line, f"user chain {name} cannot have a policy; {policy!r} ignored")
            policy = "-"
        cb = tb.chains.get(name)
        assumed = name in tb.assumed
        if cb is not None and not assumed:
            # iptables-nft-restore accepts a repeated declaration; legacy says "File exists".
            self.note(lineno, line, f"chain {name} declared again")
        if cb is None or assumed:
            rules = cb.rules if cb is not None else []
            cb = _ChainBuilder(
                sys.intern(name), policy if builtin else None, SourceRef(self.source, lineno)
            )
            cb.rules = rules
            tb.chains[cb.name] = cb
            tb.assumed.discard(name)
        elif builtin:
            cb.policy = policy
        if counters is not None:
            cb.packets, cb.bytes = counters

    def counted_command(self, line: str, lineno: int) -> None:
        end = line.find("]")
        counters = _counters(line[: end + 1]) if end > 0 else None
        if counters is None:
            self.fail(lineno, line, "rule counters as [packets:bytes] before the rule")
            return
        self.command(line[end + 1 :].lstrip(), lineno, line, counters)

    def command(self, text: str, lineno: int, raw: str, counters: tuple[int, int] | None) -> None:
        """A command line: -A (nearly always), or -I -D -R -N -X -F -Z -P -E."""
        try:
            words = _split(text)
        except _Unbalanced as exc:
            self.fail(
                lineno,
                raw,
                "a closing double quote (iptables-restore would take the rest"
                " of the line as one argument)",
            )
            words = exc.words
        tb = self.table
        if tb is None:
            self.fail(lineno, raw, "a *table line before rules")
            return
        if not words:
            self.fail(lineno, raw, "a rule command after the counters")
            return
        cmd = words[0]
        if cmd == "-A" or cmd == "--append":
            if len(words) < 2:
                self.fail(lineno, raw, "a chain name after -A")
                return
            cb = tb.chains.get(words[1])
            if cb is None:
                cb = self.undeclared(tb, words[1], lineno, raw)
                if cb is None:
                    return
            rule = self.rule(words, 2, tb, cb.name, lineno, raw, counters)
            if rule is not None:
                cb.rules.append(rule)
            return
        self.other_command(words, tb, lineno, raw, counters)

    def undeclared(
        self, tb: _TableBuilder, name: str, lineno: int, raw: str
    ) -> _ChainBuilder | None:
        if name in BUILTIN_CHAINS.get(tb.name, ()):
            cb = tb.chains[name] = _ChainBuilder(sys.intern(name), "ACCEPT", SYNTHETIC)
            tb.assumed.add(name)
            return cb
        # iptables-restore: "No chain/target/match by that name" / "Couldn't find chain".
        self.fail(
            lineno, raw, f"a rule for a chain declared in table {tb.name} (no chain {name!r})"
        )
        if len(name) > MAX_CHAIN_NAME or not name or name[0] in "-!":
            return None
        cb = tb.chains[name] = _ChainBuilder(sys.intern(name), None, SourceRef(self.source, lineno))
        return cb

    def rule(
        self,
        words: list[str],
        start: int,
        tb: _TableBuilder,
        chain: str,
        lineno: int,
        raw: str,
        counters: tuple[int, int] | None,
    ) -> Rule | None:
        try:
            matches, target, packets, nbytes = self.reader.read(words, start, tb.chains)
        except _RuleError as exc:
            self.fail(lineno, raw, exc.expected)
            return None
        if self.reader.notes:
            for note in self.reader.notes:
                self.note(lineno, raw, note)
        if counters is not None:
            packets, nbytes = counters
        if matches and matches[0].module == BUILTIN_MODULE:
            other = "-6" if self.family == 4 else "-4"
            if matches[0].option(other) is not None:
                # iptables-restore skips a rule restricted to the other family.
                self.note(
                    lineno,
                    raw,
                    f"rule for the other address family ({other}): skipped"
                    " as iptables-restore does",
                )
                return None
        return _new_rule(
            tb.name, chain, matches, target, raw, _new_source(self.source, lineno), packets, nbytes
        )

    def other_command(
        self,
        words: list[str],
        tb: _TableBuilder,
        lineno: int,
        raw: str,
        counters: tuple[int, int] | None,
    ) -> None:
        cmd = words[0]
        chain = words[1] if len(words) > 1 else None
        cb = tb.chains.get(chain) if chain is not None else None
        if cmd in ("-N", "--new-chain"):
            if chain is None:
                self.fail(lineno, raw, "a chain name after -N")
                return
            if cb is not None or chain in BUILTIN_CHAINS.get(tb.name, ()):
                self.fail(lineno, raw, f"a new chain name (chain {chain} already exists)")
                return
            if len(chain) > MAX_CHAIN_NAME:
                self.fail(lineno, raw, f"a chain name of at most {MAX_CHAIN_NAME} characters")
            tb.chains[sys.intern(chain)] = _ChainBuilder(
                sys.intern(chain), None, SourceRef(self.source, lineno)
            )
            return
        if cmd in ("-F", "--flush", "-Z", "--zero", "-X", "--delete-chain"):
            targets = [cb] if chain is not None else list(tb.chains.values())
            if chain is not None and cb is None:
                self.fail(lineno, raw, f"an existing chain (no chain {chain!r})")
                return
            for c in targets:
                if c is None:
                    continue
                if cmd in ("-F", "--flush"):
                    c.rules.clear()
                elif cmd in ("-X", "--delete-chain") and c.policy is None:
                    if c.rules:
                        self.fail(lineno, raw, f"an empty chain to delete ({c.name} has rules)")
                        continue
                    del tb.chains[c.name]
            return
        if cmd in ("-P", "--policy"):
            if cb is None and chain in BUILTIN_CHAINS.get(tb.name, ()):
                cb = self.undeclared(tb, chain, lineno, raw)
            if cb is None or cb.policy is None or len(words) < 3 or words[2] not in POLICIES:
                self.fail(lineno, raw, "-P BUILTIN-CHAIN ACCEPT|DROP")
                return
            cb.policy = words[2]
            tb.assumed.discard(cb.name)
            return
        if cmd in ("-E", "--rename-chain"):
            if cb is None or cb.policy is not None or len(words) != 3:
                self.fail(lineno, raw, "-E USER-CHAIN NEW-NAME")
                return
            self.rename(tb, cb, words[2], lineno, raw)
            return
        if cmd in ("-I", "--insert", "-D", "--delete", "-R", "--replace"):
            if chain is None:
                self.fail(lineno, raw, f"a chain name after {cmd}")
                return
            if cb is None:
                cb = self.undeclared(tb, chain, lineno, raw)
                if cb is None:
                    return
            self.edit(cmd, words, tb, cb, lineno, raw, counters)
            return
        self.fail(lineno, raw, "a rule command (-A, -I, -D, -R, -N, -X, -F, -Z, -P, -E)")

    def edit(
        self,
        cmd: str,
        words: list[str],
        tb: _TableBuilder,
        cb: _ChainBuilder,
        lineno: int,
        raw: str,
        counters: tuple[int, int] | None,
    ) -> None:
        start = 2
        num: int | None = None
        if len(words) > 2 and words[2].isdigit():
            num = int(words[2])
            start = 3
        if cmd in ("-R", "--replace") and num is None:
            self.fail(lineno, raw, "-R CHAIN RULENUM rule-specification")
            return
        if cmd in ("-D", "--delete") and num is not None:
            if len(words) > 3 or not 1 <= num <= len(cb.rules):
                self.fail(lineno, raw, f"a rule number 1..{len(cb.rules)} in {cb.name}")
                return
            del cb.rules[num - 1]
            return
        rule = self.rule(words, start, tb, cb.name, lineno, raw, counters)
        if rule is None:
            return
        if cmd in ("-I", "--insert"):
            pos = (num or 1) - 1
            if pos > len(cb.rules):
                self.fail(lineno, raw, f"a position 1..{len(cb.rules) + 1} in {cb.name}")
                return
            cb.rules.insert(pos, rule)
        elif cmd in ("-R", "--replace"):
            assert num is not None
            if not 1 <= num <= len(cb.rules):
                self.fail(lineno, raw, f"a rule number 1..{len(cb.rules)} in {cb.name}")
                return
            cb.rules[num - 1] = rule
        else:  # -D rule-specification: the first rule with the same matches and target
            for idx, old in enumerate(cb.rules):
                if old.matches == rule.matches and old.target == rule.target:
                    del cb.rules[idx]
                    return
            self.fail(lineno, raw, f"an existing rule to delete in {cb.name} (Bad rule)")

    def rename(self, tb: _TableBuilder, cb: _ChainBuilder, new: str, lineno: int, raw: str) -> None:
        if new in tb.chains or len(new) > MAX_CHAIN_NAME:
            self.fail(lineno, raw, f"a free chain name of at most {MAX_CHAIN_NAME} characters")
            return
        old = cb.name
        new = sys.intern(new)
        tb.chains = {(new if k == old else k): v for k, v in tb.chains.items()}
        cb.name = new
        for c in tb.chains.values():
            for idx, r in enumerate(c.rules):
                t = r.target
                if r.chain == old or (t is not None and t.name == old):
                    nt = Target(new, t.options, t.goto) if t is not None and t.name == old else t
                    c.rules[idx] = Rule(
                        r.table, c.name, r.matches, nt, r.raw, r.source, r.packets, r.bytes
                    )


def parse_iptables_save(text: str, source: str, *, family: int = 4, strict: bool = True) -> Ruleset:
    """Parse `iptables-save` output (or an `iptables-restore` input) into a Ruleset.

    `source` names the file for error messages and SourceRefs. `family` is 4 for iptables and
    6 for ip6tables (it decides which protocol matches load implicitly and which `-4`/`-6`
    rules are skipped). With `strict=False` structural errors become `Ruleset.issues`.
    """
    return _SaveParser(source, family, strict).run(text)


def parse_rule(
    line: str,
    table: str,
    source: SourceRef,
    *,
    chains: Collection[str] = (),
    family: int = 4,
) -> Rule:
    """Parse one `-A CHAIN ...` line (optionally `[pkts:bytes] -A ...`) of table `table`.

    `chains` (the table's chain names) helps decide whether a target is a chain; without it a
    target that is not a known extension and looks like a chain name is taken as one.
    Raises ParseError (file and line from `source`) when the line is not a valid rule.
    """
    text = line.strip()
    counters: tuple[int, int] | None = None
    if text.startswith("["):
        end = text.find("]")
        counters = _counters(text[: end + 1]) if end > 0 else None
        if counters is None:
            raise ParseError(source.file, source.line, line, "rule counters as [packets:bytes]")
        text = text[end + 1 :].lstrip()
    try:
        words = _split(text)
    except _Unbalanced:
        raise ParseError(source.file, source.line, line, "a closing double quote") from None
    if len(words) < 2 or words[0] not in ("-A", "--append"):
        raise ParseError(source.file, source.line, line, "a rule '-A CHAIN ...'")
    reader = _RuleReader(family)
    try:
        matches, target, packets, nbytes = reader.read(words, 2, chains)
    except _RuleError as exc:
        raise ParseError(source.file, source.line, line, exc.expected) from None
    if counters is not None:
        packets, nbytes = counters
    return Rule(
        sys.intern(table),
        sys.intern(words[1]),
        matches,
        target,
        line.strip(),
        source,
        packets,
        nbytes,
    )
