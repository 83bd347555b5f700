"""kube-proxy's own packet-flow expectations, replayed through the faithful simulator.

The corpus (`shared/conformance/kube-proxy/`, see its README and SEMANTICS.md) comes from
kube-proxy's iptables unit tests, whose tracer is a simplified model. This adapter runs the
*faithful* simulator instead and maps its outcomes back to the corpus's vocabulary:

* The restore payload lacks the jumps from the built-in chains, which kube-proxy installs with
  `ensureRule` outside the payload (iptablesJumpChains in pkg/proxy/iptables/proxier.go). The
  case's `implicit_rules` carry the nat ones; the filter ones (INPUT/FORWARD/OUTPUT →
  KUBE-EXTERNAL-SERVICES/KUBE-NODEPORTS/KUBE-SERVICES/KUBE-FORWARD/KUBE-PROXY-FIREWALL) are
  added here from kube-proxy's source, for the chains the payload declares.
* The node: `local_ips` are its local addresses (table local gets exactly those, as the test
  tracer's LOCAL set), a default route out eth0 and a pod route via cbr0 make every
  destination routable. A source in `local_ips` means a locally generated packet; any other
  source is received (on cbr0 for the pod CIDR, on eth0 otherwise).
* Each simulated outcome becomes one output word: the DNAT destination, or REJECT/DROP/ACCEPT
  when a KUBE-* filter chain decided, or "" when kube-proxy's rules did not touch it. The
  corpus lists every endpoint a load-balanced service may pick; the simulator forks on
  `-m statistic` and yields the same set. `expected_masq` is "some path set the 0x4000 mark".
"""

from __future__ import annotations

import json
from ipaddress import IPv4Network, ip_address, ip_interface, ip_network
from pathlib import Path

import pytest

from netsleuth.datapath.trace import NodeDatapath
from netsleuth.datapath.trace_model import Outcome, Verdict
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

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "kube-proxy"
CASES = sorted((CORPUS / "iptables").glob("*.json")) if CORPUS.is_dir() else []

# iptablesJumpChains (filter part), kubernetes v1.27 pkg/proxy/iptables/proxier.go.
FILTER_JUMPS = [
    ("INPUT", "KUBE-EXTERNAL-SERVICES", "-m conntrack --ctstate NEW"),
    ("FORWARD", "KUBE-EXTERNAL-SERVICES", "-m conntrack --ctstate NEW"),
    ("INPUT", "KUBE-NODEPORTS", ""),
    ("FORWARD", "KUBE-SERVICES", "-m conntrack --ctstate NEW"),
    ("OUTPUT", "KUBE-SERVICES", "-m conntrack --ctstate NEW"),
    ("FORWARD", "KUBE-FORWARD", ""),
    ("INPUT", "KUBE-PROXY-FIREWALL", "-m conntrack --ctstate NEW"),
    ("OUTPUT", "KUBE-PROXY-FIREWALL", "-m conntrack --ctstate NEW"),
    ("FORWARD", "KUBE-PROXY-FIREWALL", "-m conntrack --ctstate NEW"),
]
MASQ_BIT = 0x4000


def with_builtin_jumps(text: str, implicit: dict[str, list[str]]) -> str:
    """Add the built-in chains and the jumps kube-proxy installs outside its payload."""
    out: list[str] = []
    table = ""
    declared: set[str] = set()
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
            declared = set()
            out.append(line)
            builtins = {"nat": ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
                        "filter": ["INPUT", "FORWARD", "OUTPUT"]}.get(table, [])
            out.extend(f":{c} ACCEPT [0:0]" for c in builtins)
            continue
        if line.startswith(":"):
            name = line[1:].split()[0]
            if name in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING", "FORWARD"):
                continue
            declared.add(name)
        if line == "COMMIT":
            if table == "nat":
                out.extend(implicit.get("nat", []))
            if table == "filter":
                out.extend(
                    f"-A {chain} {extra} -j {target}".replace("  ", " ")
                    for chain, target, extra in FILTER_JUMPS if target in declared
                )
        out.append(line)
    return "\n".join(out) + "\n"


def make_node(case: dict) -> NodeState:
    text = case["iptables_save"]
    if case["dump_kind"] == "kube-proxy-restore-input":
        text = with_builtin_jumps(text, case.get("implicit_rules", {}))
    ruleset = parse_iptables_save(text, f"{case['test']}.json")
    locals_ = [ip_address(a) for a in case["local_ips"] if ip_address(a).version == 4]
    addresses = tuple(
        Address("lo" if a.is_loopback else "eth0", ip_interface(f"{a}/32"),
                Scope.HOST if a.is_loopback else Scope.UNIVERSE)
        for a in locals_
    )
    routes = [Route(IPv4Network(f"{a}/32"), RouteType.LOCAL, TABLE_LOCAL,
                    (NextHop(dev="lo" if a.is_loopback else "eth0"),), scope=Scope.HOST)
              for a in locals_]
    routes.append(Route(IPv4Network("0.0.0.0/0"), nexthops=(NextHop(ip_address("192.0.2.1"),
                                                                     "eth0"),)))
    pod = case.get("pod_cidr")
    if pod:
        routes.append(Route(ip_network(pod), nexthops=(NextHop(dev="cbr0"),)))
    return NodeState("conformance", addresses=addresses, routes=tuple(routes),
                     rules=default_policy_rules(), ruleset=ruleset)


def output_word(o: Outcome) -> str:
    decided = [s for s in o.steps if s.table == "filter" and s.chain.startswith("KUBE-")
               and s.action.split()[0] in ("ACCEPT", "DROP", "REJECT")]
    if o.verdict in (Verdict.REJECTED, Verdict.DROPPED) and decided:
        return decided[-1].action.split()[0]
    if o.packet.dnat:
        return o.packet.endpoint("dst")
    if decided:
        return decided[-1].action.split()[0]
    return ""


FLOWS = [
    pytest.param(path, i, id=f"{path.stem}:{flow['name']}")
    for path in CASES
    for i, flow in enumerate(json.loads(path.read_text())["flows"])
]


@pytest.mark.skipif(not CASES, reason=f"conformance corpus not found at {CORPUS}")
@pytest.mark.parametrize(("path", "index"), FLOWS)
def test_flow(path: Path, index: int) -> None:
    case = json.loads(path.read_text())
    flow = case["flows"][index]
    node = make_node(case)
    src = ip_address(flow["source_ip"])
    local = str(src) in case["local_ips"]
    pod = case.get("pod_cidr")
    iif = None if local else ("cbr0" if pod and src in ip_network(pod) else "eth0")
    trace = NodeDatapath(node).trace(dst=ip_address(flow["dest_ip"]), dport=flow["dest_port"],
                                     proto=flow["protocol"].lower(), src=src, iif=iif)
    words = {output_word(o) for o in trace.outcomes}
    expected = {w.strip() for w in flow["expected_output"].split(",")}
    assert words == expected, [o.to_dict()["steps"] for o in trace.outcomes]
    masq = any(s.packet.mark & MASQ_BIT for o in trace.outcomes for s in o.steps)
    assert masq == flow["expected_masq"]


def test_corpus_is_complete() -> None:
    if not CASES:
        pytest.skip(f"conformance corpus not found at {CORPUS}")
    assert len(FLOWS) == 85
