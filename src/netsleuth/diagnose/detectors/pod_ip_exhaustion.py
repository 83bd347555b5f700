"""Failure mode 40: pod IP exhaustion on a node.

host-local IPAM keeps one file per allocated address under /var/lib/cni/networks/<network>/;
when a runtime crash or an unclean reboot skips the CNI DEL, the file stays and the address is
never reused. Once every address of the node's range has a file, each new sandbox fails with
`failed to allocate for range 0: no IP addresses available in range set: A-B`. The tell is the
count: reservations ≈ the range size while far fewer pods run on the node (leak), or the pods
themselves fill the range (the podCIDR is too small for max-pods). The AWS VPC CNI fails the
same way when the node's ENIs have no free secondary IPs (`failed to assign an IP address to
container`, ipamd `DataStore has no available IP addresses`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from ipaddress import ip_address

from netsleuth.diagnose.detectors._cluster import pods_on_node
from netsleuth.diagnose.detectors._cni_dns import (
    all_events,
    ev_line,
    event_node,
    event_text,
    matching_logs,
    raw_lines,
    raw_outputs,
)
from netsleuth.diagnose.evidence import Evidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import parse_ip

RANGE_FULL = re.compile(r"no IP addresses available in range set: ([0-9a-fA-F.:]+)-([0-9a-fA-F.:]+)"
                        r"|no IP addresses available in network: ([\w.-]+)")
AWS_FULL = re.compile(r"failed to assign an IP address to container|DataStore has no available "
                      r"IP addresses|InsufficientFreeAddressesInSubnet")


def _reservations(ev: Evidence, node: str) -> tuple[int, EvidenceLine, str] | None:
    """host-local reservation files listed on the node (`ls /var/lib/cni/networks/NET`)."""
    for raw in raw_outputs(ev, "unknown", command=re.compile(r"\bls\b.*/var/lib/cni/networks"),
                           node=node):
        ips = 0
        for _, text in raw_lines(raw):
            for word in text.split():
                if parse_ip(word.rstrip("*")) is not None:
                    ips += 1
        if ips:
            net = re.search(r"/var/lib/cni/networks/([\w.-]+)", raw.command or "")
            return ips, ev_line(raw.source, f"{ips} reservation files in /var/lib/cni/networks/"
                                            f"{net.group(1) if net else ''}"), \
                (net.group(1) if net else "cbr0")
        wc = re.search(r"\|\s*wc -l", raw.command or "")
        if wc:
            for ref, text in raw_lines(raw):
                if text.strip().isdigit():
                    net = re.search(r"/var/lib/cni/networks/([\w.-]+)", raw.command or "")
                    return int(text.strip()), ev_line(ref, f"{text.strip()} entries"), \
                        (net.group(1) if net else "cbr0")
    return None


@detector("D40", title="Pod IP exhaustion (leaked host-local reservations, ENI limits)",
          needs=("events", "logs"), mode="40")
def pod_ip_exhaustion(ev: Evidence) -> Iterator[Finding]:
    hits: dict[str, tuple[int | None, list[EvidenceLine]]] = {}
    aws: dict[str, list[EvidenceLine]] = {}

    def add(node: str | None, m: re.Match[str], line: EvidenceLine) -> None:
        size: int | None = None
        if m.group(1) and m.group(2):
            try:
                size = int(ip_address(m.group(2))) - int(ip_address(m.group(1))) + 1
            except ValueError:
                size = None
        key = node or "?"
        old = hits.get(key, (None, []))
        hits[key] = (old[0] or size, old[1] + [line])

    for e in all_events(ev):
        m = RANGE_FULL.search(e.message)
        if m:
            add(event_node(ev, e), m, ev_line(e.source, event_text(e)))
        elif AWS_FULL.search(e.message):
            aws.setdefault(event_node(ev, e) or "?", []).append(ev_line(e.source, event_text(e)))
    for ln, m in matching_logs(ev, RANGE_FULL):
        add(log_node(ev, ln), m, ev_line(ln.source, ln.text))
    for ln, _ in matching_logs(ev, AWS_FULL):
        aws.setdefault(log_node(ev, ln) or "?", []).append(ev_line(ln.source, ln.text))
    for node, (size, lines) in sorted(hits.items()):
        yield _host_local(ev, node, size, lines)
    for node, lines in sorted(aws.items()):
        yield _aws(node, lines)


def _host_local(ev: Evidence, node: str, size: int | None, lines: list[EvidenceLine]) -> Finding:
    evidence = list(dict.fromkeys(lines))[:3]
    running = [p for p in pods_on_node(ev, node) if p.host_network is not True and p.ips
               and (p.status or p.phase) in ("Running", "Completed", "Terminating")] \
        if node != "?" else []
    res = _reservations(ev, node) if node != "?" else None
    network = res[2] if res else "cbr0"
    if res is not None:
        evidence.append(res[1])
    kind, confidence, why = "pod-ip-exhausted", 0.75, "the IPAM plugin's own error"
    detail = []
    if size:
        detail.append(f"The node's range holds {size} addresses.")
    if res is not None and size and res[0] >= 0.9 * size and len(running) < 0.5 * res[0]:
        kind, confidence = "pod-ip-leak", 0.9
        why = (f"{res[0]} reservations for {len(running)} running pods: the rest are leaked "
               "(CNI DEL never ran for them)")
    elif size and running and len(running) >= 0.8 * size:
        kind, confidence = "pod-cidr-too-small", 0.85
        why = f"{len(running)} pods really use the node's {size} addresses"
    if running:
        detail.append(f"{len(running)} pods with an IP run on {node}.")
    where = f"on {node}: " if node != "?" else ""
    fixes = [Fix(f"{where}cd /var/lib/cni/networks/{network} && for f in $(ls | grep -E "
                 "'^[0-9a-f.:]+$'); do id=$(head -n1 $f); crictl inspectp $id >/dev/null 2>&1 "
                 "|| rm -v $f; done", "now",
                 "releases reservations whose sandbox no longer exists")]
    if kind == "pod-cidr-too-small":
        fixes = [Fix("kube-controller-manager --node-cidr-mask-size=<smaller number> (new nodes) "
                     "or kubelet --max-pods below the range size", "permanent",
                     "a node's podCIDR must hold max-pods plus headroom")]
    else:
        fixes.append(Fix("upgrade the container runtime / CNI plugins and avoid hard resets; "
                         "the runtime must run CNI DEL for every sandbox it drops", "permanent",
                         "leaks come from sandboxes torn down without CNI DEL"))
    return Finding(
        detector="D40", kind=kind, role=Role.CAUSE, key=f"cause:{kind}@{node}",
        title=f"No pod IP left on {node}" + (f" ({size} addresses)" if size else "")
              + (": leaked reservations" if kind == "pod-ip-leak" else ""),
        node=None if node == "?" else node, confidence=confidence, why=why,
        evidence=tuple(evidence),
        explains=(f"sandbox-churn@{node}", f"pod-no-ip@{node}"),
        fix=tuple(fixes), detail=" ".join(detail),
    )


def _aws(node: str, lines: list[EvidenceLine]) -> Finding:
    return Finding(
        detector="D40", kind="eni-ip-exhausted", role=Role.CAUSE,
        key=f"cause:eni-ip-exhausted@{node}",
        title=f"The AWS VPC CNI has no free secondary IP on {node}",
        node=None if node == "?" else node, confidence=0.8,
        why="ipamd's own error: the node's ENIs (or the subnet) have no free addresses",
        evidence=tuple(dict.fromkeys(lines))[:3],
        explains=(f"sandbox-churn@{node}", f"pod-no-ip@{node}"),
        fix=(Fix("kubectl -n kube-system set env daemonset/aws-node ENABLE_PREFIX_DELEGATION=true "
                 "WARM_PREFIX_TARGET=1", "permanent",
                 "/28 prefixes per ENI slot multiply the pod capacity (Nitro instances)"),
             Fix("set kubelet max-pods to the instance type's ENI limit "
                 "(max ENIs * (IPs per ENI - 1) + 2)", "permanent",
                 "the scheduler then stops placing pods the node cannot address")),
    )
