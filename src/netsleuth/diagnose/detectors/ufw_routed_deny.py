"""Failure mode 13: ufw's "deny (routed)" drops forwarded pod traffic.

With ufw enabled, /etc/default/ufw's DEFAULT_FORWARD_POLICY="DROP" becomes the filter FORWARD
policy and ufw's chains (ufw-before-forward, ufw-user-forward, ...) accept only established
traffic and `ufw route` rules; pod traffic a node forwards falls through them to the DROP
(projectcalico/calico#4927, kubernetes/kubernetes#45022). `ufw reload`/boot re-applies the
policy, which is why hand-made `iptables -P FORWARD ACCEPT` fixes keep reverting. Proof: the
forwarded packets traced through the node's ruleset walk ufw's chains and end at the DROP;
`[UFW BLOCK]` kernel log lines for pod addresses corroborate it.
"""

from __future__ import annotations

import re
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
from netsleuth.diagnose.detectors._host_evidence import kernel_lines, numbered
from netsleuth.diagnose.detectors._paths import (
    Blocked,
    cluster_pod_range,
    deciding_rule,
    real_rules,
    with_policy,
    with_rules,
)
from netsleuth.diagnose.detectors.forward_policy_drop import ufw_managed
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.net import IPAddress
from netsleuth.model.netfilter import Ruleset

KIND = "ufw-routed-deny"
UFW_BLOCK = re.compile(r"\[UFW BLOCK\] IN=(?P<in>\S*) OUT=(?P<out>\S*).*?SRC=(?P<src>\S+) "
                       r"DST=(?P<dst>\S+)")


def _decides(b: Blocked, ruleset: Ruleset) -> bool:
    if b.step.table != "filter":
        return False
    if b.step.chain in ("FORWARD", "INPUT") and b.step.rule == "policy DROP":
        return True
    if not b.step.chain.startswith("ufw-"):
        return False
    rule = deciding_rule(ruleset, b.step)
    return rule is not None and rule.target is not None and rule.target.name in ("DROP", "REJECT")


def _ufw_block_lines(ev: Evidence, node: str, addrs: set[IPAddress]) -> list[EvidenceLine]:
    out: list[EvidenceLine] = []
    for _n, ev_line, text in kernel_lines(ev, UFW_BLOCK, node):
        m = UFW_BLOCK.search(text)
        if m and (m.group("src") in {str(a) for a in addrs} or m.group("out")):
            out.append(ev_line)
    return out


def _ufw_status(ev: Evidence, node: str) -> list[EvidenceLine]:
    out: list[EvidenceLine] = []
    for raw in ev.outputs(node=node):
        if not raw.command or ("ufw" not in raw.command.split()[:3] and not \
                raw.command.startswith(("ufw", "sudo ufw"))):
            continue
        for ref, text in numbered(raw):
            if text.startswith(("Default:", "Status:")):
                out.append(line(ref, text))
    return out


@detector("B13", title="ufw routed-deny drops forwarded pod traffic", needs=("iptables",),
          mode="13")
def ufw_routed_deny(ev: Evidence) -> Iterator[Finding]:
    for node in sorted(ev.nodes.values(), key=lambda n: n.name):
        if not real_rules(node) or not ufw_managed(node.state.ruleset):
            continue
        ruleset = node.state.ruleset
        result = node_blocks(ev, node, partial(_decides, ruleset=ruleset), peers=True)
        if not result.hits:
            continue
        yield _finding(ev, node, list(result.hits), result.observed)


def _finding(ev: Evidence, node: NodeEvidence, hits: list[Blocked],
             observed: tuple[str, ...] = ()) -> Finding:
    ruleset = node.state.ruleset
    first = hits[0]
    evidence: list[EvidenceLine] = []
    for chain_name in ("FORWARD", "INPUT"):
        c = ruleset.chain("filter", chain_name)
        if c is not None and c.policy == "DROP" and any(h.step.chain == chain_name for h in hits):
            counts = f" [{c.packets}:{c.bytes}]" if c.packets is not None else ""
            evidence.append(line(c.source, f":{chain_name} DROP{counts}   ← ufw's default "
                                           f"{'routed' if chain_name == 'FORWARD' else 'incoming'}"
                                           " policy"))
    evidence += [e for e in chain_steps(first, hooks=("FORWARD", "INPUT"))
                 if "ufw-" in e.text][:5]
    addrs = {h.flow.src for h in hits} | {h.flow.dst for h in hits}
    blocks = _ufw_block_lines(ev, node.name, addrs)
    evidence += blocks[:2]
    evidence += _ufw_status(ev, node.name)[:2]
    confidence = 0.9 - (0.05 if assumed_any(h for h in hits if h.flow.kind != "nodeport") else 0)
    if blocks:
        confidence = min(0.97, confidence + 0.05)
    if any(h.unknown_chains for h in hits):
        confidence = 0.5
    confidence = capped(confidence, hits, corroborated=bool(blocks))
    detail = "\n".join(part for part in [
        "Traced through the node's ruleset: " + "; ".join(describe_hits(hits, 5)),
        "ufw's chains accept only established traffic and `ufw route allow` rules, then the "
        "policy from DEFAULT_FORWARD_POLICY in /etc/default/ufw applies. `ufw reload` and every "
        "boot put it back, so `iptables -P FORWARD ACCEPT` does not last.",
        assumptions(hits),
    ] if part)
    return Finding(
        detector="B13", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=f"ufw on {node.name} drops forwarded pod traffic (default deny routed)",
        node=node.name, confidence=confidence,
        why="proven by tracing forwarded pod packets through the node's iptables rules: they "
            "pass ufw's chains and end at the DROP policy ufw sets",
        evidence=tuple(evidence),
        explains=tuple(dict.fromkeys([*symptom_keys(ev, hits, node.name, TIMEOUT_ERRNOS),
                                       *observed, f"cause:encapsulation-blocked@{node.name}"])),
        fix=tuple(_fixes(ev, node, hits)), detail=detail, trace=first.trace,
    )


def _fixes(ev: Evidence, node: NodeEvidence, hits: list[Blocked]) -> list[Fix]:
    ruleset = node.state.ruleset
    fixes: list[Fix] = []
    cidr = cluster_pod_range(ev, node)
    fwd_hits = [h for h in hits if h.step.chain != "INPUT"]
    if cidr is not None and fwd_hits:
        lines = [f"-A ufw-user-forward -s {cidr} -j ACCEPT", f"-A ufw-user-forward -d {cidr} -j ACCEPT"]
        if ruleset.chain("filter", "ufw-user-forward") is not None:
            ok, said = verify(node, with_rules(ruleset, "filter", "ufw-user-forward", lines),
                              f"what-if: ufw route allow for {cidr}", fwd_hits)
            if ok:
                fixes.append(Fix(f"ufw route allow from {cidr}; ufw route allow to {cidr}",
                                 "permanent", "ufw keeps `route` rules across reloads. "
                                 "Verified by simulation: " + "; ".join(said[:2])))
    ok, said = verify(node, with_policy(ruleset, "filter", "FORWARD", "ACCEPT"),
                      "what-if: FORWARD policy ACCEPT", fwd_hits or hits)
    if ok:
        fixes.append(Fix("sed -i 's/^DEFAULT_FORWARD_POLICY=\"DROP\"/DEFAULT_FORWARD_POLICY=\"ACCEPT\"/'"
                         " /etc/default/ufw && ufw reload", "now",
                         "or `ufw default allow routed`. Verified by simulation: "
                         + "; ".join(said[:2])))
    for h in hits:
        if h.flow.kind == "peer-in" and h.flow.dport:
            fixes.append(Fix(f"ufw allow proto {h.flow.proto} from any to any port {h.flow.dport}",
                             "permanent", f"let peers reach {h.flow.label.split(' ', 1)[0]}"))
    return fixes
