"""Failure mode 46: NodeLocal DNSCache deployed in its iptables form on IPVS kube-proxy.

NodeLocal DNSCache has two wirings (kubernetes/website#18716): with kube-proxy in iptables
mode it listens on both its link-local address and the kube-dns ClusterIP
(`-localip 169.254.20.10,10.96.0.10`, NOTRACK rules for the ClusterIP), so pods keep using
the ClusterIP; with IPVS that cannot work, because kube-proxy binds every ClusterIP to the
`kube-ipvs0` dummy interface and IPVS owns traffic to it. In IPVS mode node-local-dns must
listen on the link-local address only and kubelet's `clusterDNS` must point there.

The proof: kube-proxy's mode, node-local-dns' `-localip`/Corefile `bind`, the addresses of
kube-ipvs0 and nodelocaldns, and a trace on the node of a pod's query to the ClusterIP: it is
delivered to a local address (IPVS's), so the node-local-dns listener on the same address and
its NOTRACK rules fight IPVS for the packets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from netsleuth.datapath.trace_model import Verdict
from netsleuth.diagnose.detectors._cni_dns import (
    ev_line,
    matching_logs,
    route_lines,
    trace_local,
    trace_summary,
)
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import ClusterFacts, parse_ip
from netsleuth.model.net import IPAddress
from netsleuth.model.netfilter import Ruleset

KIND = "nodelocaldns-ipvs-wiring"
NLD_POD = re.compile(r"^(node-local-dns|nodelocaldns)-")
NLD_ERR = re.compile(r"Error checking dummy device nodelocaldns|Failed to (?:add|setup) "
                     r"(?:non-existent )?interface nodelocaldns|Error (?:while )?(?:adding|"
                     r"deleting) iptables rules", re.IGNORECASE)
BIND = re.compile(r"^\s*bind\s+(.+)$", re.M)


def _localips(ev: Evidence) -> tuple[list[IPAddress], EvidenceLine | None]:
    for p in ev.objects.pods:
        if not NLD_POD.match(p.name or ""):
            continue
        for c in p.containers:
            argv = list(c.command) + list(c.args)
            for i, a in enumerate(argv):
                value = a.split("=", 1)[1] if a.startswith("-localip=") else (
                    argv[i + 1] if a == "-localip" and i + 1 < len(argv) else None)
                if value:
                    ips = [ip for ip in (parse_ip(x) for x in value.split(",")) if ip]
                    return ips, ev_line(c.source, f"{p.name}: -localip {value}")
    for cm in ev.objects.configmaps:
        if cm.name in ("node-local-dns", "nodelocaldns"):
            for text in cm.data.values():
                m = BIND.search(text)
                if m:
                    ips = [ip for ip in (parse_ip(x) for x in m.group(1).split()) if ip]
                    return ips, ev_line(cm.source, f"ConfigMap {cm.name}: bind {m.group(1)}")
    for ln, m in matching_logs(ev, BIND):
        if ln.component == "node-local-dns" or NLD_POD.match(ln.pod or ""):
            ips = [ip for ip in (parse_ip(x) for x in m.group(1).split()) if ip]
            if ips:
                return ips, ev_line(ln.source, ln.text)
    return [], None


@detector("E46", title="NodeLocal DNSCache wired for iptables on IPVS kube-proxy",
          needs=("pods", "configmaps", "logs", "addresses"), mode="46")
def nodelocaldns_ipvs(ev: Evidence) -> Iterator[Finding]:
    modes = {f.value for f in ev.facts.kube_proxy_mode}
    dns = ClusterFacts.first(ev.facts.cluster_dns_ips)
    if "ipvs" not in modes or dns is None:
        return
    localips, local_line = _localips(ev)
    errors = list(matching_logs(ev, NLD_ERR))
    on_nld = {n: [a for a in node.state.addresses if a.ifname == "nodelocaldns"]
              for n, node in ev.nodes.items()}
    grabs_clusterip = dns in localips or any(a.ip == dns for addrs in on_nld.values() for a in addrs)
    if not grabs_clusterip and not errors:
        return
    mode_fact = next(f for f in ev.facts.kube_proxy_mode if f.value == "ipvs")
    evidence: list[EvidenceLine] = [ev_line(mode_fact.sources[0] if mode_fact.sources else None,
                                            f"kube-proxy mode ipvs ({mode_fact.how})")]
    if local_line is not None:
        evidence.append(local_line)
    evidence.extend(ev_line(ln.source, ln.text) for ln, _ in errors[:2])
    link_local = next((ip for ip in localips if ip.is_link_local), None) or next(
        (a.ip for addrs in on_nld.values() for a in addrs if a.ip.is_link_local), None) \
        or parse_ip("169.254.20.10")
    trace = None
    node_name = None
    for name, node in sorted(ev.nodes.items()):
        ipvs = [a for a in node.state.addresses if a.ifname == "kube-ipvs0" and a.ip == dns]
        if not ipvs:
            continue
        node_name = node_name or name
        evidence.append(ev_line(ipvs[0].source, f"{name}: kube-ipvs0 inet {ipvs[0].interface}"))
        for a in on_nld.get(name, [])[:2]:
            evidence.append(ev_line(a.source, f"{name}: nodelocaldns inet {a.interface}"))
        state = node.state
        if "iptables" not in node.has:
            # Rules rebuilt from Services are kube-proxy's iptables mode; in IPVS mode it
            # programs no per-Service chains, so they would only mislead this trace.
            state = replace(state, ruleset=Ruleset(),
                            assumptions=state.assumptions + ("no iptables evidence; IPVS mode: "
                                                             "no per-Service iptables chains",))
        t = trace_local(state, dns, 53, "udp")
        if t.verdict == Verdict.DELIVERED_LOCAL and trace is None:
            trace = t
            evidence.extend(route_lines(t)[:1])
            evidence.append(ev_line(None, f"trace: {trace_summary(t)}"))
    detail = [f"kube-proxy runs in IPVS mode: the kube-dns ClusterIP {dns} is an address of "
              "kube-ipvs0 on every node and IPVS owns traffic to it"
              + (" (traced: the query is delivered to that local address)" if trace else "") + "."]
    if grabs_clusterip:
        detail.append(f"node-local-dns is deployed in its iptables form: it also listens on {dns}"
                      " and installs NOTRACK rules for it, so queries bypass IPVS's conntrack "
                      "and are lost between the two.")
    yield Finding(
        detector="E46", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node_name or '?'}",
        title=f"NodeLocal DNSCache claims the kube-dns ClusterIP {dns} while kube-proxy runs "
              "in IPVS mode",
        node=node_name, confidence=0.9 if grabs_clusterip and trace else 0.8,
        why="kube-proxy's mode and node-local-dns' listen addresses"
            + (", plus a trace showing the ClusterIP is a local (IPVS) address" if trace else ""),
        evidence=tuple(evidence),
        explains=("dns-errors@*", "dns-down", "svc-unreachable:TIMEOUT@*"),
        fix=(Fix(f"sed -e 's/__PILLAR__LOCAL__DNS__/{link_local}/g; s/__PILLAR__DNS__DOMAIN__/"
                 f"cluster.local/g; s/,__PILLAR__DNS__SERVER__//g; s/__PILLAR__CLUSTER__DNS__/"
                 f"{dns}/g' nodelocaldns.yaml | kubectl apply -f -", "now",
                 "the IPVS form of the manifest: node-local-dns binds only the link-local "
                 "address"),
             Fix(f"kubelet config clusterDNS: [{link_local}] (or --cluster-dns={link_local}) on "
                 "every node, then restart kubelet and recreate pods", "permanent",
                 "in IPVS mode pods must query node-local-dns at its link-local address")),
        detail="\n".join(detail), trace=trace,
    )
