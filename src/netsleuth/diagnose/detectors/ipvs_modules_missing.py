"""Failure mode 21: kube-proxy is configured for IPVS but the IPVS kernel modules are not
loaded.

kube-proxy checks for ip_vs, ip_vs_rr, ip_vs_wrr, ip_vs_sh and nf_conntrack(_ipv4) before
using IPVS ("IPVS proxier will not be used because the following required kernel modules are
not loaded: [...]"). Up to about 1.26 it then falls back to the iptables proxier ("Using
iptables Proxier"): Services work, but not in the mode configured — schedulers, sessions and
tools (ipvsadm) behave differently; newer releases refuse to start ("can't use the IPVS
proxier"), leaving the node without Service rules (kubernetes/kubeadm#975,
kubernetes/kubernetes#92033).

Proof: kube-proxy's log, the configured mode (ConfigMap/flag) and lsmod; the node's rules are
traced to show which proxier actually serves Services (KUBE-SVC DNAT = iptables fallback; no
DNAT = no proxy at all).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._common import datapath, kubernetes_target, line
from netsleuth.diagnose.detectors._host_evidence import (
    kube_proxy_config,
    kube_proxy_flag,
    kube_proxy_logs,
    loaded_modules,
)
from netsleuth.diagnose.detectors._paths import real_rules
from netsleuth.diagnose.evidence import Evidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import LogLine

KIND = "ipvs-modules-missing"
MISSING = re.compile(r"IPVS proxier will not be used because the following required kernel "
                     r"modules are not loaded: \[(?P<mods>[^\]]*)\]")
FALLBACK = re.compile(r"Using iptables [Pp]roxier")
FATAL = re.compile(r"Error running ProxyServer|can't use the IPVS proxier|command failed")
IPVS_MODULES = ("ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh")


@detector("C21", title="IPVS mode without the IPVS kernel modules", needs=("logs",), mode="21")
def ipvs_modules(ev: Evidence) -> Iterator[Finding]:
    logs = kube_proxy_logs(ev) or list(ev.objects.logs)
    by_node: dict[str, list[LogLine]] = {}
    for ln in logs:
        if MISSING.search(ln.text):
            by_node.setdefault(log_node(ev, ln) or "?", []).append(ln)
    for node_name, lines in sorted(by_node.items()):
        m = MISSING.search(lines[0].text)
        assert m is not None
        mods = m.group("mods").split()
        same_pod = [ln for ln in logs if ln.pod == lines[0].pod]
        fell_back = [ln for ln in same_pod if FALLBACK.search(ln.text)]
        fatal = [ln for ln in same_pod if FATAL.search(ln.text) and ln is not lines[0]]
        evidence: list[EvidenceLine] = [line(lines[0].source, lines[0].text)]
        evidence += [line(ln.source, ln.text) for ln in (fell_back or fatal)[:1]]
        for key, value, ev_line in kube_proxy_config(ev):
            if key == "mode" and value == "ipvs":
                evidence.append(ev_line)
        flag = kube_proxy_flag(ev, "proxy-mode")
        if flag is not None and flag[0] == "ipvs":
            evidence.append(flag[1])
        found = loaded_modules(ev, node_name)
        if found is not None:
            absent = [m for m in IPVS_MODULES if m not in found.names]
            evidence.append(line(found.source, "lsmod: " + (f"no {', '.join(absent)}" if absent
                                                            else "ip_vs modules present now")))
        node = ev.nodes.get(node_name)
        trace = None
        dnat = None
        target = kubernetes_target(ev)
        if node is not None and real_rules(node) and target is not None:
            trace = datapath(node.state).trace(dst=target[0], dport=target[1])
            dnat = any(s.action.startswith("DNAT") for s in trace.main.steps)
            evidence.append(line(None, f"trace on {node_name}: {target[0]}:{target[1]} "
                                       + ("is DNATed by KUBE-SVC rules: the iptables proxier "
                                          "serves Services" if dnat else
                                          "is not DNATed: no proxier serves Services")))
        down = (bool(fatal) and not fell_back) or dnat is False
        explains = [f"svc-unreachable:TIMEOUT@{node_name}", f"svc-unreachable:ETIMEDOUT@{node_name}",
                    f"dns-errors@{node_name}"] if down else []
        detail = (f"kube-proxy on {node_name} wanted IPVS but {', '.join(mods)} are not loaded. "
                  + ("It fell back to the iptables proxier: Services work, but not in the "
                     "configured mode (IPVS schedulers, ipvsadm, IPVS-only settings do nothing)."
                     if fell_back or dnat else
                     "It did not start a proxier: Services have no rules on this node."
                     if down else ""))
        yield Finding(
            detector="C21", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node_name}",
            title=f"kube-proxy on {node_name} cannot use IPVS: kernel modules "
                  f"{', '.join(mods)} not loaded"
                  + (" (running in iptables mode instead)" if fell_back or dnat else
                     " (no Service proxy)" if down else ""),
            node=None if node_name == "?" else node_name,
            confidence=0.9 if down else 0.75,
            why="kube-proxy's own check lists the missing modules"
                + ("; the node's rules, traced, show which proxier serves Services"
                   if trace is not None else ""),
            evidence=tuple(evidence), explains=tuple(explains),
            fix=(Fix(f"modprobe -a {' '.join(dict.fromkeys([*IPVS_MODULES, 'nf_conntrack']))}",
                     "now", "then restart kube-proxy: kubectl -n kube-system delete pod "
                            f"{lines[0].pod or '<kube-proxy pod>'}"),
                 Fix("printf '%s\\n' ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh nf_conntrack > "
                     "/etc/modules-load.d/ipvs.conf", "permanent",
                     "or set mode: iptables explicitly in the kube-proxy ConfigMap")),
            detail=detail, trace=trace,
        )
