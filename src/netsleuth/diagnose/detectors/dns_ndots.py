"""Failure mode 45: ndots:5 search-list amplification.

kubelet gives pods `options ndots:5` and a search list of `<ns>.svc.cluster.local
svc.cluster.local cluster.local` plus the node's own search domains. A name with fewer than
five dots is first tried with every suffix: `api.github.com` costs three or more NXDOMAIN
round trips (times two for A and AAAA) before the real query. Under load that is slow lookups,
NXDOMAIN floods and upstream rate limiting; with a wildcard record in a node search domain the
expanded name even *succeeds* with the wrong address.

The proof is in CoreDNS's query log (the `log` plugin): NXDOMAIN answers for `<name>.<suffix>`
where `<name>` is an external name, counted per name, with the pod's resolv.conf when shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._cni_dns import ev_line, host_of_exec, raw_lines, raw_outputs
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector

KIND = "ndots-search-amplification"
QUERY = re.compile(r'"(?:A|AAAA) IN (\S+?)\.? (?:udp|tcp) \d+ \w+ \d+" (NXDOMAIN|NOERROR|SERVFAIL)')
CLUSTER_SUFFIX = re.compile(r"\.((?:[\w-]+\.)?svc\.cluster\.local|cluster\.local)$")
MIN_EXPANSIONS = 6  # at least two lookups' worth of A+AAAA expansions


@detector("E45", title="ndots:5 search-list amplification", needs=("logs",), mode="45")
def dns_ndots(ev: Evidence) -> Iterator[Finding]:
    search: list[str] = []
    ndots = 5
    resolv_line: EvidenceLine | None = None
    for raw in raw_outputs(ev, "resolv-conf", "resolv"):
        _, pod = host_of_exec(raw, ev)
        if pod is None:
            continue
        for ref, text in raw_lines(raw):
            words = text.split()
            if words[:1] == ["search"]:
                search = words[1:]
                resolv_line = ev_line(ref, text)
            if words[:1] == ["options"]:
                for w in words[1:]:
                    if w.startswith("ndots:") and w[6:].isdigit():
                        ndots = int(w[6:])
    suffixes = [s.rstrip(".") for s in search]
    expansions: dict[str, list[EvidenceLine]] = {}
    wildcard: list[EvidenceLine] = []
    answered: set[str] = set()
    total = 0
    for ln in ev.objects.logs:
        m = QUERY.search(ln.message)
        if m is None:
            continue
        total += 1
        name, rcode = m.group(1).rstrip("."), m.group(2)
        base = None
        for suffix in suffixes or []:
            if name.endswith("." + suffix):
                base = name[: -len(suffix) - 1]
                break
        if base is None:
            cm = CLUSTER_SUFFIX.search(name)
            base = name[: cm.start()] if cm else None
        if base is None:
            if rcode == "NOERROR":
                answered.add(name)
            continue
        if base.count(".") >= ndots or CLUSTER_SUFFIX.search(base) or "." not in base:
            continue  # a cluster name (svc, svc.ns) or a name the search list is meant for
        if rcode == "NXDOMAIN":
            expansions.setdefault(base, []).append(ev_line(ln.source, ln.text))
        elif rcode == "NOERROR" and not CLUSTER_SUFFIX.search(name):
            wildcard.append(ev_line(ln.source, ln.text))
    count = sum(len(v) for v in expansions.values())
    if count < MIN_EXPANSIONS and not wildcard:
        return
    worst = max(expansions, key=lambda k: len(expansions[k])) if expansions else None
    evidence = ([resolv_line] if resolv_line else []) + \
        (expansions[worst][:3] if worst else []) + wildcard[:2]
    detail = [f"{count} NXDOMAIN answers in the CoreDNS log are search-list expansions of "
              f"{len(expansions)} external name(s)"
              + (f" (e.g. {worst}: {len(expansions[worst])} wasted queries)" if worst else "")
              + f"; the pods use ndots:{ndots}" + (f" and {len(search)} search domains" if search
                                                   else "") + "."]
    if wildcard:
        detail.append("An expanded name was *answered* (a wildcard in a search domain): those "
                      "lookups return the wrong address.")
    yield Finding(
        detector="E45", kind="dns-nxdomain-flood", role=Role.SYMPTOM, key="dns-nxdomain-flood",
        title=f"{count} NXDOMAIN queries for search-list expansions of external names",
        confidence=0.9, why="CoreDNS's query log", evidence=tuple(evidence[:4]),
    )
    yield Finding(
        detector="E45", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@?",
        title=f"ndots:{ndots} makes every external lookup try the {len(search) or 3}+ search "
              "domains first",
        confidence=0.85 if count >= 2 * MIN_EXPANSIONS or wildcard else 0.7,
        why="external names with fewer than ndots dots are expanded with every search suffix "
            "before being tried as given (resolv.conf(5)); CoreDNS's log shows the NXDOMAINs",
        evidence=tuple(evidence), explains=("dns-nxdomain-flood",),
        fix=(Fix("in the pod spec: dnsConfig: {options: [{name: ndots, value: \"2\"}]}", "now",
                 "names with a dot are then tried as given first"),
             Fix(f"use fully qualified names with a trailing dot ({worst or 'api.example.com'}.)",
                 "permanent", "a trailing dot skips the search list entirely"),
             Fix("CoreDNS Corefile: `autopath @kubernetes` with `pods verified` in the "
                 "kubernetes block", "permanent", "CoreDNS answers the expansion chain "
                 "server-side in one round trip")),
        detail="\n".join(detail),
    )
