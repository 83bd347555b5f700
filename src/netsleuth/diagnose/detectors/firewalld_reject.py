"""Failure mode 12: firewalld (or the EL default iptables rules) REJECT forwarded pod traffic
and the overlay.

firewalld's iptables backend (CentOS/RHEL 7) ends INPUT and FORWARD with
`-j REJECT --reject-with icmp-host-prohibited`; CNI plugins append their ACCEPT rules after it
(flannel's `-A FORWARD -s <pod range> -j ACCEPT`), so they are never reached. A rejected packet
makes the kernel send ICMP host-prohibited, which a local client's connect() turns into
EHOSTUNREACH, "no route to host" (icmp_err_convert[] in net/ipv4/icmp.c) — not a timeout; that
errno is what tells this mode from a silent FORWARD DROP (B11). Overlay packets from peers
(VXLAN 8472/4789, BGP 179) rejected at INPUT lose the encapsulated pod traffic silently.
Proof: the forwarded and peer packets traced through the node's ruleset end at the REJECT rule
(flannel-io/flannel#2055, projectcalico/node#741). On EL8/9 firewalld programs nftables
directly (`table inet firewalld`), which the simulator does not evaluate: then the rules and
the symptoms are reported at lower confidence.
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
from netsleuth.diagnose.detectors._host_evidence import kernel_lines, numbered, outputs
from netsleuth.diagnose.detectors._paths import (
    PEER_PORTS,
    Blocked,
    cluster_pod_range,
    deciding_rule,
    real_rules,
    with_rules,
)
from netsleuth.diagnose.evidence import Evidence, NodeEvidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import ClusterFacts
from netsleuth.model.netfilter import Ruleset

KIND = "host-firewall-reject"
PROHIBITED = {"icmp-host-prohibited", "host-prohib", "icmp-admin-prohibited", "admin-prohib",
              "icmp-net-prohibited", "net-prohib", "icmp-host-unreachable", "host-unreach"}
FIREWALLD_CHAINS = re.compile(r"^(FORWARD_IN_ZONES|FWDI_|FWDO_|IN_public|INPUT_ZONES|"
                              r"FORWARD_direct|INPUT_direct)")
LOG_PREFIX = re.compile(r"\b(filter_FWD_\w+_REJECT|filter_IN_\w+_REJECT|FINAL_REJECT):\s+IN=")


def firewalld_owned(ruleset: Ruleset) -> bool:
    table = ruleset.table("filter")
    return table is not None and any(FIREWALLD_CHAINS.match(c) for c in table.chains)


def _decides(b: Blocked, ruleset: Ruleset) -> bool:
    if b.step.table != "filter" or (b.step.chain not in ("FORWARD", "INPUT") and not \
            FIREWALLD_CHAINS.match(b.step.chain)):
        return False
    rule = deciding_rule(ruleset, b.step)
    if rule is None or rule.target is None or rule.target.name != "REJECT":
        return False
    opt = rule.target.option("--reject-with")
    return opt is not None and opt.value in PROHIBITED


@detector("B12", title="firewalld / host firewall REJECTs forwarded pod or overlay traffic",
          needs=("iptables", "logs"), mode="12")
def firewalld_reject(ev: Evidence) -> Iterator[Finding]:
    proven: set[str] = set()
    for node in sorted(ev.nodes.values(), key=lambda n: n.name):
        if not real_rules(node):
            continue
        ruleset = node.state.ruleset
        result = node_blocks(ev, node, partial(_decides, ruleset=ruleset), peers=True)
        if result.hits:
            proven.add(node.name)
            yield _finding(ev, node, list(result.hits), result.observed)
    yield from _nft_firewalld(ev, proven)


def _finding(ev: Evidence, node: NodeEvidence, hits: list[Blocked],
             observed: tuple[str, ...] = ()) -> Finding:
    ruleset = node.state.ruleset
    owner = "firewalld" if firewalld_owned(ruleset) else "the host firewall (iptables-services)"
    first = hits[0]
    rule = deciding_rule(ruleset, first.step)
    evidence: list[EvidenceLine] = []
    if rule is not None:
        evidence.append(line(rule.source, f"{rule.raw}   ← decides"))
    evidence += chain_steps(first, hooks=("FORWARD", "INPUT"))[:5]
    # CNI ACCEPT rules placed after the REJECT are never reached.
    fwd = ruleset.chain("filter", "FORWARD")
    if fwd is not None and rule is not None and rule in fwd.rules:
        after = fwd.rules[fwd.rules.index(rule) + 1:]
        for r in after[:2]:
            if r.target is not None and r.target.name == "ACCEPT":
                evidence.append(line(r.source, f"{r.raw}   ← after the REJECT: never reached"))
    for _n, ev_line, _t in kernel_lines(ev, LOG_PREFIX, node.name)[:2]:
        evidence.append(ev_line)
    pod_hits = [h for h in hits if h.flow.kind != "peer-in"]
    peer_hits = [h for h in hits if h.flow.kind == "peer-in"]
    explains = symptom_keys(ev, pod_hits, node.name, ("EHOSTUNREACH",)) if pod_hits else []
    if peer_hits:
        explains += symptom_keys(ev, peer_hits, node.name, TIMEOUT_ERRNOS)
        # D35 proves the same blocked encapsulation; firewalld's REJECT is its cause.
        explains.append(f"cause:encapsulation-blocked@{node.name}")
    explains += observed
    confidence = 0.93 - (0.05 if assumed_any(h for h in pod_hits) else 0.0)
    if any(h.unknown_chains for h in hits):
        confidence = 0.55
    confidence = capped(confidence, hits,
                        corroborated=bool(kernel_lines(ev, LOG_PREFIX, node.name)))
    parts = []
    if pod_hits:
        parts.append("forwarded pod traffic")
    if peer_hits:
        parts.append("overlay/peer traffic (" + ", ".join(
            f"{h.flow.proto}/{h.flow.dport}" for h in peer_hits) + ")")
    title = f"{owner.capitalize()} on {node.name} rejects " + " and ".join(parts)
    detail = "\n".join(part for part in [
        "Traced through the node's own ruleset: " + "; ".join(describe_hits(hits, 5)),
        "A REJECT with icmp-host-prohibited answers the sender with an ICMP error: a client on "
        "this node sees EHOSTUNREACH (\"no route to host\") at once, not a timeout. Encapsulated "
        "pod packets rejected at INPUT are lost without a word to the pods that sent them.",
        f"{owner} adds its catch-all REJECT at the end of INPUT/FORWARD; rules the CNI appends "
        "after it never match.",
        assumptions(hits),
    ] if part)
    return Finding(
        detector="B12", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node.name}",
        title=title, node=node.name, confidence=confidence,
        why="proven by tracing pod and overlay packets through the node's iptables rules: they "
            "end at a REJECT --reject-with icmp-host-prohibited",
        evidence=tuple(evidence), explains=tuple(explains), fix=tuple(_fixes(ev, node, hits)),
        detail=detail, trace=first.trace,
    )


def _fixes(ev: Evidence, node: NodeEvidence, hits: list[Blocked]) -> list[Fix]:
    ruleset = node.state.ruleset
    fixes: list[Fix] = []
    cidr = cluster_pod_range(ev, node)
    lines: list[str] = []
    pod_hits = [h for h in hits if h.flow.kind != "peer-in"]
    if cidr is not None and pod_hits:
        lines += [f"-A FORWARD -s {cidr} -j ACCEPT", f"-A FORWARD -d {cidr} -j ACCEPT"]
    peer_lines = {f"-A INPUT -p {h.flow.proto} -m {h.flow.proto} --dport {h.flow.dport} -j ACCEPT"
                  for h in hits if h.flow.kind == "peer-in"}
    fwd = [ln for ln in lines]
    tested = ruleset
    if fwd:
        tested = with_rules(tested, "filter", "FORWARD", fwd)
    if peer_lines:
        tested = with_rules(tested, "filter", "INPUT", sorted(peer_lines))
    if fwd or peer_lines:
        ok, said = verify(node, tested, "what-if: accept the pod range and overlay ports "
                          "before the REJECT", hits)
        if ok:
            cmds = [f"iptables -I {ln.split()[1]} 1 {ln.split(' ', 2)[2]}"
                    for ln in [*fwd, *sorted(peer_lines)]]
            fixes.append(Fix("; ".join(cmds), "now",
                             "insert ACCEPT rules ahead of the REJECT (lost on firewalld "
                             "reload). Verified by simulation: " + "; ".join(said[:3])))
    if firewalld_owned(ruleset):
        perm = []
        if cidr is not None:
            perm.append(f"firewall-cmd --permanent --zone=trusted --add-source={cidr}")
        cni = ClusterFacts.first(ev.facts.cni) or ""
        ports = {f"{p}/{proto}" for proto, p, _w in PEER_PORTS.get(cni, ())}
        ports |= {f"{h.flow.dport}/{h.flow.proto}" for h in hits if h.flow.kind == "peer-in"}
        perm += [f"firewall-cmd --permanent --add-port={p}" for p in sorted(ports)]
        perm.append("firewall-cmd --reload")
        fixes.append(Fix("; ".join(perm), "permanent",
                         "put the pod range in the trusted zone and open the overlay/kubelet "
                         "ports (the same effect as the rules verified above, kept by firewalld)"))
        fixes.append(Fix("systemctl disable --now firewalld", "permanent",
                         "what most Kubernetes install guides do; removes the host firewall "
                         "altogether"))
    else:
        fixes.append(Fix("remove the `-j REJECT --reject-with icmp-host-prohibited` lines from "
                         "/etc/sysconfig/iptables (or add the ACCEPT rules above them) and "
                         "`service iptables save`", "permanent", "the EL default ruleset"))
    return fixes


# -- EL8/9: firewalld's own nftables table (not traceable) -----------------------------------

_NFT_REJECT = re.compile(r"reject with icmpx (?:type )?admin-prohibited|reject with icmp "
                         r"(?:type )?host-prohibited")


def _nft_firewalld(ev: Evidence, proven: set[str]) -> Iterator[Finding]:
    for raw in outputs(ev, "nft"):
        node = ev.node_for(raw.host) or "?"
        if node in proven or "table inet firewalld" not in raw.text:
            continue
        chain = None
        rejects: list[EvidenceLine] = []
        for ref, text in numbered(raw):
            m = re.match(r"\s*chain (\S+) \{", text)
            if m:
                chain = m.group(1)
            if chain and ("FWD" in chain or chain.startswith("filter_FORWARD")) and \
                    _NFT_REJECT.search(text):
                rejects.append(line(ref, f"chain {chain}: {text.strip()}"))
        if not rejects:
            continue
        symptoms = [ln for ln in ev.objects.logs if ln.net_error is not None
                    and ln.net_error.errno == "EHOSTUNREACH"]
        logs = kernel_lines(ev, LOG_PREFIX, None if node == "?" else node)
        evidence = rejects[:3] + [e for _n, e, _t in logs[:2]] + \
            [line(s.source, s.text) for s in symptoms[:2]]
        confidence = 0.6 + (0.15 if logs else 0.0) + (0.1 if symptoms else 0.0)
        cidr = cluster_pod_range(ev, ev.nodes.get(node))
        fixes = [Fix(f"firewall-cmd --permanent --zone=trusted --add-source={cidr}; "
                     "firewall-cmd --reload" if cidr else
                     "firewall-cmd --permanent --zone=trusted --add-interface=<CNI interface>; "
                     "firewall-cmd --reload", "permanent",
                     "firewalld's nftables table rejects forwarded traffic independently of the "
                     "CNI's iptables rules; the trusted zone lets it through")]
        yield Finding(
            detector="B12", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node}",
            title=f"firewalld's nftables table on {node} rejects forwarded traffic",
            node=None if node == "?" else node, confidence=min(confidence, 0.85),
            why="firewalld's `table inet firewalld` ends its forward chains with a reject that "
                "the CNI's iptables rules cannot override (nftables tables are evaluated "
                "separately); not traced: the simulator evaluates iptables rules only",
            evidence=tuple(evidence),
            explains=(f"conn-error:EHOSTUNREACH@{node}", f"svc-unreachable:EHOSTUNREACH@{node}",
                      "conn-error:EHOSTUNREACH@?", "svc-unreachable:EHOSTUNREACH@?"),
            fix=tuple(fixes),
        )
