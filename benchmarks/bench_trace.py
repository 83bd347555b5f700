"""Traces per second on a node with a kube-proxy-sized ruleset.

    python benchmarks/bench_trace.py --services 1000 10000 30000

It times whichever netsleuth is imported: the compiled datapath of a regular install
(`pip install .`, see setup.py) or plain Python (`pip install -e .`); the first line says which.

For each size: generate the dump (benchmarks/gen_kubeproxy.py), parse it, build the node's
datapath once, trace every service once ("cold": includes compiling the rules each trace
reaches, which happens lazily on first use), then trace host → ClusterIP:port for random
services for a few seconds ("warm"). Every endpoint is a separate outcome, so each trace walks
all statistic branches, reroutes after DNAT, and runs filter OUTPUT and nat POSTROUTING per
branch. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from ipaddress import ip_address, ip_interface, ip_network
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_kubeproxy import generate

from netsleuth.datapath.trace import NodeDatapath
from netsleuth.model.net import (
    TABLE_LOCAL,
    Address,
    NextHop,
    Route,
    RouteType,
    Scope,
    default_policy_rules,
)
from netsleuth.model.node import NodeState
from netsleuth.parse.iptables_save import parse_iptables_save

SERVICE = re.compile(r"-A KUBE-SERVICES -d (\S+)/32 -p (\w+) .*--dport (\d+) -j KUBE-SVC-")


def node_for(text: str) -> NodeState:
    ruleset = parse_iptables_save(text, "bench")
    me = ip_address("192.168.0.10")
    return NodeState(
        "bench",
        addresses=(Address("eth0", ip_interface(f"{me}/24")),),
        routes=(
            Route(ip_network(f"{me}/32"), RouteType.LOCAL, TABLE_LOCAL, (NextHop(dev="eth0"),),
                  scope=Scope.HOST),
            Route(ip_network("192.168.0.0/24"), nexthops=(NextHop(dev="eth0"),), prefsrc=me),
            Route(ip_network("0.0.0.0/0"), nexthops=(NextHop(ip_address("192.168.0.1"), "eth0"),)),
        ),
        rules=default_policy_rules(),
        ruleset=ruleset,
    )


def run(n: int, seconds: float) -> dict[str, float]:
    text = generate(n, 3, 1)
    lines = text.count("\n")
    t0 = time.perf_counter()
    node = node_for(text)
    parse_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    datapath = NodeDatapath(node)
    build_s = time.perf_counter() - t0
    targets = [(ip_address(d), p, int(port)) for d, p, port in SERVICE.findall(text)]
    # Cold: the first trace to each service also compiles the rules it reaches (lazily).
    cold_n = min(len(targets), 2000)
    t0 = time.perf_counter()
    for dst, proto, port in targets[:cold_n]:
        datapath.trace(dst=dst, dport=port, proto=proto)
    cold_us = 1e6 * (time.perf_counter() - t0) / cold_n
    for dst, proto, port in targets[cold_n:]:
        datapath.trace(dst=dst, dport=port, proto=proto)
    rng = random.Random(7)
    count = 0
    outcomes = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        dst, proto, port = rng.choice(targets)
        trace = datapath.trace(dst=dst, dport=port, proto=proto)
        outcomes += len(trace.outcomes)
        count += 1
    elapsed = time.perf_counter() - t0
    return {"services": n, "lines": lines, "parse_s": parse_s, "build_s": build_s,
            "traces_per_s": count / elapsed, "us_per_trace": 1e6 * elapsed / count,
            "paths_per_s": outcomes / elapsed,
            "cold_us": cold_us,
            "outcomes_per_trace": outcomes / count}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--services", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    import netsleuth.datapath.netfilter as netfilter

    compiled = str(netfilter.__file__).endswith(".so")
    print(f"datapath: {'compiled (mypyc)' if compiled else 'plain Python'} ({netfilter.__file__})")
    print("| services | dump lines | parse (s) | setup (s) | cold µs/trace | warm traces/s "
          "| warm µs/trace | outcomes/trace | endpoint paths/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.services:
        r = run(n, args.seconds)
        print(f"| {n:,} | {r['lines']:,} | {r['parse_s']:.2f} | {r['build_s']:.2f} | "
              f"{r['cold_us']:.0f} | {r['traces_per_s']:,.0f} | {r['us_per_trace']:.0f} | "
              f"{r['outcomes_per_trace']:.1f} | {r['paths_per_s']:,.0f} |")


if __name__ == "__main__":
    main()
