"""Kernel facts the simulator relies on, each checked on this machine's real kernel.

One lab with a client and a server namespace; every row of FACTS is one probe from the client
and the errno (or timeout) connect()/send() must see. The simulator's tables
(netsleuth.datapath.trace.REJECT_ERRNO, the FIB's route-type errnos) cite this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from labutil import lab_missing

from netsleuth.lab import engine
from netsleuth.lab import state as st
from netsleuth.lab.probe import parse_target, probe
from netsleuth.lab.scenario import parse_scenario

pytestmark = pytest.mark.lab

REJECTS = [
    # (--reject-with, errno a local client sees)
    (None, "ECONNREFUSED"),  # REJECT's default is icmp-port-unreachable
    ("icmp-port-unreachable", "ECONNREFUSED"),
    ("tcp-reset", "ECONNREFUSED"),
    ("icmp-host-prohibited", "EHOSTUNREACH"),
    ("icmp-host-unreachable", "EHOSTUNREACH"),
    ("icmp-admin-prohibited", "EHOSTUNREACH"),
    ("icmp-net-unreachable", "ENETUNREACH"),
    ("icmp-net-prohibited", "ENETUNREACH"),
]


def _reject_rules(chain: str, base_port: int) -> list[str]:
    rules = []
    for i, (kind, _) in enumerate(REJECTS):
        with_ = f" --reject-with {kind}" if kind else ""
        rules.append(f"-A {chain} -p tcp -m tcp --dport {base_port + i} -j REJECT{with_}")
    return rules


SCENARIO = f"""
name: kernel-facts
nodes:
  client:
    ip: [addr add 10.0.0.11/24 dev eth0]
    routes:
      - 10.50.0.0/16 via 10.0.0.20 dev eth0
      - 10.51.0.0/16 via 10.0.0.20 dev eth0
      - blackhole default table 100
      - unreachable 10.60.0.0/16
      - prohibit 10.61.0.0/16
      - blackhole 10.62.0.0/16
      - throw 10.63.0.0/16
    # connect() looks the route up twice: once to choose the source address (10.0.0.10, the
    # primary), then again *with* that source, so this rule applies to the second lookup only
    rules: [priority 100 from 10.0.0.10 to 10.51.0.0/16 lookup 100]
    iptables_restore: |
      *filter
      :INPUT ACCEPT [0:0]
      :FORWARD ACCEPT [0:0]
      :OUTPUT ACCEPT [0:0]
      {chr(10).join("      " + r for r in _reject_rules("OUTPUT", 7000)).lstrip()}
      -A OUTPUT -p tcp -m tcp --dport 7100 -j DROP
      -A OUTPUT -p udp -m udp --dport 7101 -j DROP
      -A OUTPUT -p udp -m udp --dport 7102 -j REJECT
      -A OUTPUT -p tcp -m tcp --dport 7103 -j REJECT --reject-with icmp-host-prohibited
      -A OUTPUT -p icmp -m icmp --icmp-type destination-unreachable -d 10.0.0.11 -j DROP
      COMMIT
  server:
    ip: [addr add 10.50.0.1/32 dev lo, addr add 10.51.0.1/32 dev lo]
    iptables_restore: |
      *filter
      :INPUT ACCEPT [0:0]
      :FORWARD ACCEPT [0:0]
      :OUTPUT ACCEPT [0:0]
      {chr(10).join("      " + r for r in _reject_rules("INPUT", 8000)).lstrip()}
      -A INPUT -p tcp -m tcp --dport 8100 -j DROP
      COMMIT
    listeners:
      - {{port: 9000, proto: tcp}}
      - {{port: 9000, proto: udp}}
segments:
  lan:
    members:
      - {{node: client, ifname: eth0, addresses: [10.0.0.10/24]}}
      - {{node: server, ifname: eth0, addresses: [10.0.0.20/24]}}
"""


@dataclass(frozen=True)
class Fact:
    what: str
    target: str
    proto: str
    result: str
    errno: str | None = None


FACTS = [
    Fact("no route at all", "192.0.2.1:9000", "tcp", "errno", "ENETUNREACH"),
    Fact("no route at all (udp)", "192.0.2.1:9000", "udp", "errno", "ENETUNREACH"),
    Fact("`unreachable` route", "10.60.0.1:9000", "tcp", "errno", "EHOSTUNREACH"),
    Fact("`prohibit` route", "10.61.0.1:9000", "tcp", "errno", "EACCES"),
    Fact("`blackhole` route", "10.62.0.1:9000", "tcp", "errno", "EINVAL"),
    Fact("`throw` route, nothing after it", "10.63.0.1:9000", "tcp", "errno", "ENETUNREACH"),
    Fact("reachable, listening", "10.50.0.1:9000", "tcp", "connected"),
    Fact("reachable, nothing listening (RST)", "10.50.0.1:9001", "tcp", "errno", "ECONNREFUSED"),
    Fact("DROP in OUTPUT: the SYN is retransmitted", "10.50.0.1:7100", "tcp", "timeout"),
    Fact("DROP in OUTPUT: sendmsg() fails (udp)", "10.50.0.1:7101", "udp", "errno", "EPERM"),
    Fact("DROP in the server's INPUT", "10.50.0.1:8100", "tcp", "timeout"),
    # REJECT in OUTPUT for UDP: the hook's NF_DROP makes sendmsg() itself fail with EPERM
    # (net/netfilter/core.c nf_hook_slow); the ICMP error only shows on the next call.
    Fact("REJECT in OUTPUT: sendmsg() fails with EPERM (udp)", "10.50.0.1:7102", "udp", "errno", "EPERM"),
    # The ICMP error REJECT sends is a locally generated packet that goes through OUTPUT
    # itself; dropped there, the client never hears of it and connect() times out.
    Fact("REJECT in OUTPUT whose ICMP error OUTPUT drops", "10.50.0.1:7103@10.0.0.11", "tcp", "timeout"),
    Fact("same REJECT, its ICMP error not dropped", "10.50.0.1:7103", "tcp", "errno", "EHOSTUNREACH"),
    # The `from 10.0.0.10` rule sends the second lookup to table 100's blackhole.
    Fact("policy rule on the chosen source: second lookup", "10.51.0.1:9000", "tcp", "errno", "EINVAL"),
    Fact("same, explicit other source: rule does not match", "10.51.0.1:9000@10.0.0.11", "tcp", "connected"),
    *(
        Fact(
            f"REJECT {kind or '(default)'} in OUTPUT",
            f"10.50.0.1:{7000 + i}",
            "tcp",
            "errno",
            errno,
        )
        for i, (kind, errno) in enumerate(REJECTS)
    ),
    *(
        Fact(
            f"REJECT {kind or '(default)'} in the server's INPUT",
            f"10.50.0.1:{8000 + i}",
            "tcp",
            "errno",
            errno,
        )
        for i, (kind, errno) in enumerate(REJECTS)
    ),
]


@pytest.fixture(scope="module")
def facts_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[st.LabState, Path]]:
    reason = lab_missing()
    if reason:
        pytest.skip(reason)
    state_dir = tmp_path_factory.mktemp("facts-state")
    scenario = parse_scenario(SCENARIO, "kernel-facts.yaml")
    state = engine.up(scenario, state_dir)
    try:
        yield state, state_dir
    finally:
        engine.down(scenario.name, state_dir)


@pytest.mark.parametrize("fact", FACTS, ids=[f.what for f in FACTS])
def test_kernel_fact(facts_lab: tuple[st.LabState, Path], fact: Fact) -> None:
    state, _ = facts_lab
    timeout = 0.6 if fact.result == "timeout" else 1.5
    target, _, src = fact.target.partition("@")
    dst, port = parse_target(target, fact.proto)
    res = probe(state.netns("client"), dst, port, fact.proto, timeout=timeout, src=src or None)
    assert (res.result, res.errno) == (fact.result, fact.errno), res.to_dict()
