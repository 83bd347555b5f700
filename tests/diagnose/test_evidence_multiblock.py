"""Transcripts that show several outputs of one kind on a node (evidence.py).

People paste `ip route` and then `ip route show table 52` or `ip route get X`, and run
`sysctl` once per key: none of these may replace the node's main table or earlier keys.
"""

from __future__ import annotations

from netsleuth.model.net import TABLE_MAIN
from tests.diagnose.sectiona import transcript

TEXT = """\
root@w1:~# ip route
default via 10.1.0.1 dev eth0 proto static
10.1.0.0/24 dev eth0 proto kernel scope link src 10.1.0.5
root@w1:~# ip rule
0:	from all lookup local
5270:	from all lookup 52
32766:	from all lookup main
32767:	from all lookup default
root@w1:~# ip route show table 52
10.42.0.0/16 dev tailscale0
root@w1:~# ip route get 10.42.1.7
10.42.1.7 dev tailscale0 table 52 src 100.101.7.3 uid 0
    cache
root@w1:~# sysctl net.ipv4.ip_forward
net.ipv4.ip_forward = 1
root@w1:~# sysctl net.ipv4.conf.all.rp_filter
net.ipv4.conf.all.rp_filter = 2
"""


def test_other_tables_and_route_get_do_not_replace_main() -> None:
    node = transcript(TEXT).nodes["w1"]
    main = [r for r in node.state.routes if r.table == TABLE_MAIN]
    assert [str(r.dst) for r in main] == ["0.0.0.0/0", "10.1.0.0/24"]
    t52 = [r for r in node.state.routes if r.table == 52]
    assert [(str(r.dst), r.dev, r.source.line) for r in t52] == [("10.42.0.0/16", "tailscale0", 10)]
    assert "routes" in node.has


def test_every_sysctl_block_counts_and_keeps_its_line() -> None:
    sysctls = transcript(TEXT).nodes["w1"].state.sysctls
    assert sysctls.get("net.ipv4.ip_forward") == "1"
    assert sysctls.get("net.ipv4.conf.all.rp_filter") == "2"
    assert sysctls.ref("net.ipv4.ip_forward").line == 15
    assert sysctls.ref("net.ipv4.conf.all.rp_filter").line == 17


def test_a_table_alone_still_gives_the_node_routes() -> None:
    node = transcript("\n".join(TEXT.splitlines()[3:11]) + "\n").nodes["w1"]
    assert {r.table for r in node.state.routes} >= {52}
