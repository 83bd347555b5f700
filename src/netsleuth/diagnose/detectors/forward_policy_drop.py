"""Failure mode 11: the filter FORWARD policy is DROP and nothing accepts pod traffic.

Every packet a node forwards (pod → pod on another node, overlay → local pod, pod → Service
after kube-proxy's DNAT, NodePort → endpoint elsewhere) crosses filter FORWARD
(ip_forward() → NF_INET_FORWARD). Docker ≥ 1.13 sets that chain's policy to DROP when it
enables ip_forward (moby/moby#28257), and some distributions ship it so; unless the CNI or
kube-proxy adds ACCEPT rules for the pod range, forwarded pod traffic dies silently: clients
time out (kubernetes/kubernetes#40182, flannel-io/flannel#872). The proof is a trace of such
packets through the node's own ruleset ending in `policy DROP`; the fixes are re-traced.
ufw-managed rulesets are left to B13 and REJECT rules to B12. A CNI that installs its own
FORWARD accepts (Calico, Cilium, Weave...) but whose chains are absent has not programmed the
node: its agent is the problem, not the policy, and nothing is reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from netsleuth.diagnose.detectors._blocking import (
    TIMEOUT_ERRNOS,
    assumed_any,
    assumptions,
    capped,
    chain_steps,
    describe_hits,
    node_blocks,
    symptom_keys,
    verify,
)
from netsleuth.diagnose.detectors._common import line
from netsleuth.diagnose.detectors._paths import (
    Blocked,
    cluster_pod_range,
    deciding_rule,
    real_rules,
    with_policy,
    with_rules,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import ClusterFacts
from netsleuth.model.netfilter import Ruleset

KIND = "forward-policy-drop"


def ufw_managed(ruleset: Ruleset) -> bool:
    table = ruleset.table("filter")
    return table is not None and any(name.startswith("ufw-") for name in table.chains)


def _decides(b: Blocked, ruleset: Ruleset) -> bool:
    if b.step.table != "filter" or b.step.chain != "FORWARD":
        return False
    if b.step.rule == "policy DROP":
        return True
    rule = deciding_rule(ruleset, b.step)
    # An unconditional `-A FORWARD -j DROP` closing the chain acts as the policy.
    return (rule is not None and rule.target is not None and rule.target.name == "DROP"
            and all(m.module == "comment" for m in rule.matches))


# CNIs whose agent installs its own FORWARD accepts; their chains' absence means the agent has
# not programmed the node (down, or a partial snapshot): the policy is then not the root cause.
CNI_CHAINS = {"calico": "cali-", "canal": "cali-", "cilium": "CILIUM_", "weave": "WEAVE",
              "antrea": "ANTREA", "kube-router": "KUBE-ROUTER"}


def _cni_rules_absent(ev: Evidence, ruleset: Ruleset) -> bool:
    cni = ClusterFacts.first(ev.facts.cni)
    prefix = CNI_CHAINS.get(cni or "")
    if prefix is None:
        return False
    table = ruleset.table("filter")
    return table is None or not any(c.startswith(prefix) for c in table.chains)


def _owner(ruleset: Ruleset) -> str:
    table = ruleset.table("filter")
    chains = set(table.chains) if table else set()
    if "DOCKER-USER" in chains or "DOCKER" in chains:
        return ("Docker set it: since 1.13 dockerd sets the FORWARD policy to DROP when it turns "
                "ip_forward on (moby/moby#28257)")
    return "the distribution or a hardening script set it"


@detector("B11", title="filter FORWARD policy DROP blocks forwarded pod traffic",
          needs=("iptables",), mode="11")
def forward_policy_drop(ev: Evidence) -> Iterator[Finding]:
    for node in sorted(ev.nodes.values(), key=lambda n: n.name):
        if not real_rules(node):
            continue
        ruleset = node.state.ruleset
        fwd = ruleset.chain("filter", "FORWARD")
        if fwd is None or ufw_managed(ruleset) or _cni_rules_absent(ev, ruleset):
            continue
        result = node_blocks(ev, node, partial(_decides, ruleset=ruleset))
        if not result.hits:
            continue
        yield _finding(ev, node, list(result.hits), result.observed)


def _finding(ev: Evidence, node: NodeEvidence, hits: list[Blocked],
             observed: tuple[str, ...] = ()) -> Finding:
    ruleset = node.state.ruleset
    fwd = ruleset.chain("filter", "FORWARD")
    assert fwd is not None
    unknown = sorted({a for b in hits for a in b.unknown_chains})
    first = hits[0]
    evidence: list[EvidenceLine] = []
    counters = ""
    if fwd.policy == "DROP":
        counters = f" [{fwd.packets}:{fwd.bytes}]" if fwd.packets is not None else ""
        evidence.append(line(fwd.source, f":FORWARD DROP{counters}   ← the chain's policy"))
    evidence += chain_steps(first)[:6]
    evidence.append(line(None, f"trace on {node.name}: " + describe_hits([first])[0]))
    fixes = _fixes(ev, node, hits)
    confidence = 0.92
    if assumed_any(h for h in hits if h.flow.kind != "nodeport"):
        confidence -= 0.07
    if unknown:
        confidence = 0.5
    if fwd.packets:
        confidence = min(0.97, confidence + 0.03)
    confidence = capped(confidence, hits, corroborated=bool(fwd.packets))
    title = (f"Node {node.name} drops forwarded pod traffic: filter FORWARD policy DROP and no "
             "rule accepts it")
    detail = "\n".join(part for part in [
        f"{len(hits)} of the forwarded flows traced through {node.name}'s ruleset end at the "
        "FORWARD chain's DROP: " + "; ".join(describe_hits(hits)),
        f"Who set the policy: {_owner(ruleset)}. Nothing before it accepts pod traffic (no CNI "
        "rule for the pod range; kube-proxy's KUBE-FORWARD accepts only masquerade-marked or "
        "established packets), so new connections are dropped without an error: clients time "
        "out." + (f" The policy counters{counters} show packets were dropped." if counters
                  else ""),
        *(f"Caution: {u}" for u in unknown),
        assumptions(hits),
    ] if part)
    return Finding(
        detector="B11", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=title, node=node.name, confidence=confidence,
        why=("proven by tracing forwarded pod packets through the node's own iptables rules: "
             "they reach the end of filter FORWARD and its DROP policy applies"
             + (" (a chain they pass through is not in the evidence)" if unknown else "")),
        evidence=tuple(evidence),
        explains=tuple(dict.fromkeys([*symptom_keys(ev, hits, node.name, TIMEOUT_ERRNOS),
                                       *observed])),
        fix=tuple(fixes), detail=detail, trace=first.trace,
    )


def _fixes(ev: Evidence, node: NodeEvidence, hits: list[Blocked]) -> list[Fix]:
    ruleset = node.state.ruleset
    fixes: list[Fix] = []
    ok, said = verify(node, with_policy(ruleset, "filter", "FORWARD", "ACCEPT"),
                      "what-if: iptables -P FORWARD ACCEPT", hits)
    if ok:
        fixes.append(Fix("iptables -P FORWARD ACCEPT", "now",
                         "restores forwarding at once (Docker sets DROP again when it restarts). "
                         "Verified by simulation: " + "; ".join(said[:3])))
    cidr = cluster_pod_range(ev, node)
    if cidr is not None:
        table = ruleset.table("filter")
        chain = "DOCKER-USER" if table is not None and "DOCKER-USER" in table.chains else "FORWARD"
        lines = [f"-A {chain} -s {cidr} -j ACCEPT", f"-A {chain} -d {cidr} -j ACCEPT"]
        ok, said = verify(node, with_rules(ruleset, "filter", chain, lines),
                          f"what-if: accept the pod range {cidr} in {chain}", hits)
        if ok:
            cmds = "; ".join(f"iptables -I {chain} 1 {ln.split(' ', 2)[2]}" for ln in lines)
            note = ("accept the pod range explicitly"
                    + (" in DOCKER-USER, the chain Docker keeps for user rules and never "
                       "flushes" if chain == "DOCKER-USER" else "")
                    + "; persist with netfilter-persistent save (Debian/Ubuntu) or "
                    "`service iptables save` (RHEL). Verified by simulation: "
                    + "; ".join(said[:2]))
            fixes.append(Fix(cmds, "permanent", note))
    fixes.append(Fix(
        "upgrade the CNI to a release that adds its own FORWARD rules for the pod range "
        "(flannel ≥ 0.10.0 does; Calico's cali-FORWARD does) and set kube-proxy's clusterCIDR",
        "permanent", "so the node no longer depends on the FORWARD policy"))
    return fixes
