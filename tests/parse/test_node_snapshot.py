"""A node snapshot's files → NodeState (parse/node_snapshot.py)."""

from __future__ import annotations

import pytest

from netsleuth.errors import ParseError
from netsleuth.parse.node_snapshot import node_from_files

V4 = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
V6 = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      "-A INPUT -s fd00::/64 -p tcp -m tcp --dport 22 -j DROP\nCOMMIT\n")


def test_ip6tables_save_is_the_ipv6_ruleset() -> None:
    node = node_from_files({"iptables-save.txt": V4, "ip6tables-save.txt": V6}, name="n",
                           origin="snap/n")
    assert node.ruleset.family == 4
    assert node.ruleset6 is not None and node.ruleset6.family == 6
    chain = node.ruleset6.chain("filter", "INPUT")
    assert chain is not None
    assert [(r.raw, str(r.source)) for r in chain.rules] == [
        ("-A INPUT -s fd00::/64 -p tcp -m tcp --dport 22 -j DROP", "snap/n/ip6tables-save.txt:5")]
    assert "ip6tables-save.txt" in node.files


def test_without_ip6tables_save_there_is_no_ipv6_ruleset() -> None:
    node = node_from_files({"iptables-save.txt": V4}, name="n", origin="snap/n")
    assert node.ruleset6 is None
    # Said by the traces of IPv6 packets, not by every trace of the node.
    assert not any("ip6tables" in a for a in node.assumptions)


def test_a_broken_ip6tables_save_names_its_file_and_line() -> None:
    with pytest.raises(ParseError) as err:
        node_from_files({"ip6tables-save.txt": "*filter\n-A INPUT -j\nCOMMIT\n"}, name="n",
                        origin="snap/n")
    assert err.value.source == "snap/n/ip6tables-save.txt"
    assert err.value.line == 2
