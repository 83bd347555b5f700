"""The parser's hot path (rules and chains as iptables-save prints them) against its full reader.

`parse_iptables_save` reads lines in iptables-save's shape with string cuts, shared pieces and
model objects built without their dataclass __init__ (see iptables_save._Segments and _draft).
`_SaveParser(..., hot=False)` sends every line through the full reader instead. Whatever the
input, both must give the same Ruleset (raw text, source lines and issues included) or the same
ParseError.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import pickle
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsleuth.errors import ParseError
from netsleuth.model.netfilter import Chain, Match, Option, Rule, Ruleset, Target
from netsleuth.model.source import SourceRef
from netsleuth.parse import iptables_save as ips
from netsleuth.parse.iptables_save import parse_iptables_save
from tests.parse.kubeproxy_gen import gen
from tests.parse.test_iptables_save import REAL, mutations

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "iptables"
GOLDEN = sorted(p for p in DATA.glob("*/*") if p.suffix in (".txt", ".rules"))
CORPUS = Path(
    os.environ.get("NETSLEUTH_KUBE_PROXY_CORPUS", ROOT.parent / "shared" / "conformance"
                   / "kube-proxy" / "iptables")
)



Outcome = tuple[str, object]


def outcome(text: str, *, hot: bool, family: int = 4, strict: bool = True) -> Outcome:
    try:
        rs = ips._SaveParser("t.rules", family, strict, hot=hot).run(text)
    except ParseError as err:
        return ("error", (err.source, err.line, err.text, err.expected))
    return ("ruleset", rs)


def assert_same(text: str, *, family: int = 4, strict: bool = True) -> Outcome:
    hot = outcome(text, hot=True, family=family, strict=strict)
    full = outcome(text, hot=False, family=family, strict=strict)
    # repr compares every field, raw text and SourceRefs included; == the model's equality
    assert repr(hot) == repr(full)
    assert hot == full
    return hot


def hot_rule_lines(text: str) -> int:
    return sum(line.startswith("-A ") for line in text.split("\n"))


# ------------------------------------------------------------------- real and generated dumps


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_inputs_read_the_same_on_both_paths(path: Path) -> None:
    text = path.read_text()
    for family in (4, 6):
        for strict in (True, False):
            assert_same(text, family=family, strict=strict)


@pytest.mark.parametrize(("services", "seed"), [(50, 1), (400, 2), (1000, 3)])
def test_generated_kube_proxy_dumps_read_the_same_on_both_paths(services: int, seed: int) -> None:
    text = gen.generate(services, 3, seed)
    kind, rs = assert_same(text)
    assert kind == "ruleset" and isinstance(rs, Ruleset)
    assert rs.rule_count == hot_rule_lines(text) and rs.issues == ()


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"kube-proxy conformance corpus not found at"
                    f" {CORPUS} (set NETSLEUTH_KUBE_PROXY_CORPUS)")
def test_kube_proxy_corpus_reads_the_same_on_both_paths() -> None:
    files = sorted(CORPUS.glob("*.json"))
    assert files
    for path in files:
        text = json.loads(path.read_text())["iptables_save"]
        for strict in (True, False):
            assert_same(text, strict=strict)


# ------------------------------------------------------------------------ properties


# Words and separators that stress where the hot path cuts a line: quoted text holding the cut
# strings, options of the wrong extension, repeated or reordered built-in options, `!`, tabs and
# other whitespace str.split() also splits on, extensions and targets it does not know.
WORDS = ["-s", "-d", "-p", "-i", "-o", "-f", "tcp", "udp", "!", "-m", "comment", "--comment",
         '"a -m b"', '"x -j y"', '"p -g q"', '"q"', '""', '"a\\"b"', '"', "mark", "--mark",
         "0x4000/0x4000", "-j", "-g", "ACCEPT", "DROP", "DNAT", "--to-destination",
         "1.2.3.4:80", "--dport", "80", "eth0", "multiport", "--dports", "1,2", "X", "Y",
         "KUBE-SVC-X", "frob", "--frob", "LOG", "--log-prefix", "statistic", "--mode",
         "random", "--probability", "0.5", "-c", "1", "--src", "10.0.0.0/8", "-4", "-6",
         "--goto", "-A"]
SEPARATORS = [" ", " ", " ", " ", "  ", "\t", "\x0b", "\x1c"]


@st.composite
def rule_lines(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(WORDS), max_size=12))
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(words),
                         max_size=len(words)))
    chain = draw(st.sampled_from(["X", "Y", "Z", "INPUT"]))
    body = "".join(sep + word for sep, word in zip(seps, words, strict=True))
    end = draw(st.sampled_from(["", "", " ", "\r"]))
    return f"-A {chain}{body}{end}"


HEADS = ["", "-s 10.1.2.3/32", "! -s 10.0.0.0/8 -d 10.96.0.1/32 -p tcp", "-d 1.2.3.4/32 -s 5.6.7.8",
         "-p tcp -p udp", "-i eth0 -o eth1 -f", "! -f", "-s ! 1.2.3.4", "-p", "-s 1 -x", '-i "a b"',
         "-4", "-p tcp --dport 80", "!", '-s "1.2.3.4"']
PIECES = ['comment --comment "svc:http -> 10.1.2.3:80"', 'comment --comment "a -j b"',
          'comment --comment "a', 'b"', "comment --comment plain", 'comment --comment "x\\"y"',
          "tcp --dport 80", "tcp ! --dport 80", "tcp --dport", "tcp --dport 80 --sport 1 2",
          "udp --dport 53", "statistic --mode random --probability 0.50000000000",
          "mark --mark 0x4000/0x4000", "multiport --dports 1,2", "frob --frob 1",
          "frob", "tcp --frob", "set --match-set s src", "comment", "", "-j X", "tcp -j"]
TARGETS = ["-j X", "-j Y", "-g X", "-j ACCEPT", "-j DNAT --to-destination 1.2.3.4:80",
           "-j DNAT --to-destination", "-j MASQUERADE --random-fully", "-j LOG --log-prefix x",
           '-j LOG --log-prefix "a -j b"', "-j FROB --frob", "-j", "-j -j X", "-j X Y",
           "-j KUBE-MARK-MASQ", "-g", "-j NOPE", "-j X -m tcp", ""]


@st.composite
def shaped_rule_lines(draw: st.DrawFn) -> str:
    """Lines in (or close to) iptables-save's shape, which the hot path reads itself."""
    parts = [draw(st.sampled_from(HEADS))]
    parts += ["-m " + p for p in draw(st.lists(st.sampled_from(PIECES), max_size=3))]
    parts.append(draw(st.sampled_from(TARGETS)))
    sep = draw(st.sampled_from([" "] * 8 + ["  ", "\t"]))
    chain = draw(st.sampled_from(["X", "Y", "INPUT"]))
    return f"-A {chain} " + sep.join(p for p in parts if p)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(rule_lines(), shaped_rule_lines()), min_size=1, max_size=6),
       st.booleans())
def test_random_rules_read_the_same_on_both_paths(lines: list[str], strict: bool) -> None:
    text = "*filter\n:INPUT ACCEPT [0:0]\n:X - [0:0]\n:Y - [3:4]\n" + "\n".join(lines) + \
        "\nCOMMIT\n"
    assert_same(text, strict=strict)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([":X - [0:0]", ":Y - [1:2]", ":X - [0:0]", ':"Q - [0:0]',
                                 ":-j - [0:0]", ":FORWARD - [0:0]", ":Z ACCEPT [0:0]",
                                 ":W - [x:0]", ":" + "L" * 29 + " - [0:0]", "-A X -j Y",
                                 "-A Y -j X", '-A X -j "Q', "-A X -g Z", "-A X -j -j",
                                 "-N Z", "-X Y", "-E Y V", "-A V -j X", "-F X",
                                 "-A FORWARD -j X", "*nat", "COMMIT", "*filter"]),
                max_size=10))
def test_random_chain_declarations_read_the_same_on_both_paths(lines: list[str]) -> None:
    text = "*filter\n" + "\n".join(lines) + "\nCOMMIT\n"
    for strict in (True, False):
        assert_same(text, strict=strict)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations(REAL + "\n" + gen.generate(30, 3, 5)), st.booleans())
def test_mutated_dumps_read_the_same_on_both_paths(text: str, strict: bool) -> None:
    assert_same(text, strict=strict)


def test_fast_and_the_parser_agree_line_by_line() -> None:
    """_Segments.fast (what the other tests of the fast path call) and the parser's inline copy
    of it read every line of a dump alike."""
    for text in (gen.generate(300, 3, 9), *(p.read_text() for p in DATA.glob("*/save.txt"))):
        rs = parse_iptables_save(text, "t.rules")
        by_line = {r.source.line: r for t in rs.tables.values() for c in t.chains.values()
                   for r in c.rules}
        segments = ips._Segments(ips._RuleReader(4))
        checked = 0
        for lineno, line in enumerate(text.split("\n"), 1):
            got = segments.fast(line) if line.startswith("-A ") else None
            if got is None:
                continue
            r = by_line[lineno]
            assert (got[0], got[1], got[2]) == (r.chain, r.matches, r.target), line
            checked += 1
        assert checked > 0.9 * hot_rule_lines(text)


def test_cuts_inside_quotes_and_odd_separators_fall_back() -> None:
    rs = parse_iptables_save(
        "*filter\n:X - [0:0]\n:Y - [0:0]\n"
        '-A X -m comment --comment "a -j b" -j Y\n'
        '-A X -m comment --comment "a -m b" -j Y\n'
        "-A X -j LOG --log-prefix \"x -j y\"\n"
        "-A X -j Y\t\n"
        "COMMIT\n", "t.rules")
    rules = rs.tables["filter"].chains["X"].rules
    assert [r.comment for r in rules[:2]] == ["a -j b", "a -m b"]
    assert rules[2].target == Target("LOG", (Option("--log-prefix", ("x -j y",)),))
    assert rules[3].target == Target("Y")
    with pytest.raises(ParseError) as err:
        parse_iptables_save("*filter\n:X - [0:0]\n:Y - [0:0]\n-A X -j Y\tZ\nCOMMIT\n", "t.rules")
    assert err.value.line == 4


# --------------------------------------------------------------- objects built without __init__


def test_objects_built_without_init_are_ordinary_model_objects() -> None:
    text = gen.generate(20, 3, 4)
    rs = parse_iptables_save(text, "t.rules")
    nat = rs.tables["nat"]
    chain = next(c for c in nat.chains.values() if c.name.startswith("KUBE-SEP-"))
    rule = chain.rules[-1]
    assert type(chain) is Chain and type(rule) is Rule and type(rule.source) is SourceRef
    assert rule.target is not None and type(rule.target) is Target
    assert all(type(m) is Match for m in rule.matches)
    assert all(type(o) is Option for m in rule.matches for o in m.options)
    again = Rule(rule.table, rule.chain, rule.matches, rule.target, rule.raw,
                 SourceRef(rule.source.file, rule.source.line), rule.packets, rule.bytes)
    assert rule == again and hash(rule) == hash(again) and repr(rule) == repr(again)
    assert chain == Chain(chain.name, chain.rules, chain.policy, chain.packets, chain.bytes,
                          chain.source)
    assert isinstance(chain.rules, tuple)
    # still frozen, copyable, picklable, replaceable
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.raw = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        chain.rules = ()  # type: ignore[misc]
    for obj in (rule, again):  # (CPython's slotted frozen dataclasses fail this way alike)
        with pytest.raises((AttributeError, TypeError)):
            obj.extra = 1  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(rs)) == rs
    assert copy.deepcopy(rule) == rule
    assert dataclasses.replace(rule, raw="y").raw == "y"
    assert dataclasses.asdict(rule.source) == {"file": "t.rules", "line": rule.source.line}


def test_draft_constructors_refuse_a_class_they_do_not_fill() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Other:
        a: int

    class NotSlotted:
        pass

    assert vars(ips._draft(Other))["__slots__"] == ("a",)
    with pytest.raises(TypeError):
        ips._draft(NotSlotted)
