"""kube-proxy (iptables mode) rules as kube-proxy itself writes them, for building test nodes.

The rule shapes follow kube-proxy's proxier.go of each era (and the rulesets of its own unit
tests, /work/shared/conformance/kube-proxy): "1.12" (no INVALID drop, masquerade rules in
KUBE-SERVICES, KUBE-XLB for externalTrafficPolicy Local), "1.18" (INVALID drop added) and
"1.28" (KUBE-EXT/KUBE-SVL chains, masquerade rule in KUBE-SVC, no-endpoint REJECT/DROP in the
filter table). Chain names use kube-proxy's hashing (netsleuth.diagnose.kube_proxy_rules).
This is test-data generation only: the output is loaded into a network namespace with
iptables-restore and dumped with the real iptables-save (make_bc_data.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netsleuth.diagnose.kube_proxy_rules import ServicePortView, sep_chain, svc_chain


@dataclass
class Svc:
    namespace: str
    name: str
    cluster_ip: str
    port: int
    proto: str = "tcp"
    port_name: str = ""
    endpoints: list[tuple[str, int, str]] = field(default_factory=list)  # (ip, port, node)
    node_port: int | None = None
    etp_local: bool = False
    external_ips: list[str] = field(default_factory=list)

    @property
    def spn(self) -> str:
        return f"{self.namespace}/{self.name}" + (f":{self.port_name}" if self.port_name else "")

    def view(self) -> ServicePortView:
        from ipaddress import ip_address
        eps = tuple(f"{ip}:{port}" for ip, port, _ in self.endpoints)
        return ServicePortView(self.namespace, self.name, self.port_name, self.proto,
                               ip_address(self.cluster_ip), self.port, eps)


def _hash(svc: Svc) -> str:
    return svc_chain(svc.view()).removeprefix("KUBE-SVC-")


@dataclass
class KubeProxyRules:
    nat_chains: list[str]
    nat: list[str]  # rules of kube-proxy's own nat chains and its jumps from built-in chains
    filter_chains: list[str]
    filter_hooks: list[str]  # kube-proxy's jumps from INPUT/FORWARD/OUTPUT (it prepends them)
    filter: list[str]  # rules of kube-proxy's own filter chains


def rules(services: list[Svc], *, style: str, node: str,
          cluster_cidr: str | None) -> KubeProxyRules:
    """kube-proxy's nat and filter rules on `node` for these Services."""
    new = style >= "1.2"  # "1.28"
    nat_chains = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]
    if not new:
        nat_chains.append("KUBE-MARK-DROP")
    nat: list[str] = [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    ]
    if new:
        nat += [
            "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
            "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
            "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
            '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring '
            'SNAT" -j MASQUERADE --random-fully',
        ]
    else:
        nat += [
            "-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000",
            "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
            '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring '
            'SNAT" -m mark --mark 0x4000/0x4000 -j MASQUERADE',
        ]
    filt_chains = ["KUBE-SERVICES", "KUBE-FORWARD", "KUBE-EXTERNAL-SERVICES", "KUBE-FIREWALL",
                   "KUBE-NODEPORTS"]
    hooks: list[str] = [
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals"'
        " -j KUBE-SERVICES",
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible'
        ' service portals" -j KUBE-EXTERNAL-SERVICES',
        "-A INPUT -j KUBE-FIREWALL",
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals"'
        " -j KUBE-SERVICES",
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals"'
        " -j KUBE-SERVICES",
        "-A OUTPUT -j KUBE-FIREWALL",
    ]
    filt: list[str] = []
    if new:
        hooks.insert(3, '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes '
                    'externally-visible service portals" -j KUBE-EXTERNAL-SERVICES')
        hooks.insert(0, '-A INPUT -m comment --comment "kubernetes health check service ports"'
                    " -j KUBE-NODEPORTS")
    else:
        filt.append('-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping '
                    'marked packets" -m mark --mark 0x8000/0x8000 -j DROP')
    filt.append('-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block '
                'incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT'
                " -j DROP")
    if style >= "1.15" or new:
        filt.append("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP")
    filt.append('-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark '
                "--mark 0x4000/0x4000 -j ACCEPT")
    if new:
        filt.append('-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule"'
                    " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    elif cluster_cidr:
        filt += [
            f"-A KUBE-FORWARD -s {cluster_cidr} -m comment --comment \"kubernetes forwarding "
            "conntrack pod source rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"-A KUBE-FORWARD -d {cluster_cidr} -m comment --comment \"kubernetes forwarding "
            "conntrack pod destination rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        ]

    for svc in services:
        h = _hash(svc)
        svc_name, ext, svl, xlb = f"KUBE-SVC-{h}", f"KUBE-EXT-{h}", f"KUBE-SVL-{h}", f"KUBE-XLB-{h}"
        p = svc.proto
        cmatch = (f"-d {svc.cluster_ip}/32 -p {p} -m comment --comment \"{svc.spn} cluster IP\" "
                  f"-m {p} --dport {svc.port}")
        local_eps = [e for e in svc.endpoints if e[2] == node]
        if not svc.endpoints:
            filt.append(f"-A KUBE-SERVICES {cmatch.replace('cluster IP', 'has no endpoints')} "
                        "-j REJECT --reject-with icmp-port-unreachable")
            if svc.node_port:
                filt.append(f"-A KUBE-EXTERNAL-SERVICES -p {p} -m comment --comment \"{svc.spn} "
                            f"has no endpoints\" -m addrtype --dst-type LOCAL -m {p} --dport "
                            f"{svc.node_port} -j REJECT --reject-with icmp-port-unreachable")
            continue
        nat_chains.append(svc_name)
        if not new and cluster_cidr:
            nat.append(f"-A KUBE-SERVICES ! -s {cluster_cidr} {cmatch} -j KUBE-MARK-MASQ")
        nat.append(f"-A KUBE-SERVICES {cmatch} -j {svc_name}")
        if new and cluster_cidr:
            nat.append(f"-A {svc_name} ! -s {cluster_cidr} {cmatch} -j KUBE-MARK-MASQ")
        for eip in svc.external_ips:
            ematch = (f"-d {eip}/32 -p {p} -m comment --comment \"{svc.spn} external IP\" "
                      f"-m {p} --dport {svc.port}")
            if new:
                nat_chains.append(ext)
                nat.append(f"-A KUBE-SERVICES {ematch} -j {ext}")
            else:
                nat.append(f"-A KUBE-SERVICES {ematch} -j KUBE-MARK-MASQ")
                nat.append(f"-A KUBE-SERVICES {ematch} -m physdev ! --physdev-is-in -m addrtype "
                           f"! --src-type LOCAL -j {svc_name}")
                nat.append(f"-A KUBE-SERVICES {ematch} -m addrtype --dst-type LOCAL -j {svc_name}")
        if svc.node_port:
            npm = f"-p {p} -m comment --comment \"{svc.spn}\" -m {p} --dport {svc.node_port}"
            if new:
                nat_chains.append(ext)
                nat.append(f"-A KUBE-NODEPORTS {npm} -j {ext}")
                if svc.etp_local:
                    if cluster_cidr:
                        nat.append(f"-A {ext} -s {cluster_cidr} -m comment --comment \"pod "
                                   f"traffic for {svc.spn} external destinations\" -j {svc_name}")
                    nat.append(f"-A {ext} -m comment --comment \"masquerade LOCAL traffic for "
                               f"{svc.spn} external destinations\" -m addrtype --src-type LOCAL "
                               "-j KUBE-MARK-MASQ")
                    nat.append(f"-A {ext} -m comment --comment \"route LOCAL traffic for "
                               f"{svc.spn} external destinations\" -m addrtype --src-type LOCAL "
                               f"-j {svc_name}")
                    if local_eps:
                        nat_chains.append(svl)
                        nat.append(f"-A {ext} -j {svl}")
                    else:
                        filt.append(f"-A KUBE-EXTERNAL-SERVICES -p {p} -m comment --comment "
                                    f"\"{svc.spn} has no local endpoints\" -m addrtype "
                                    f"--dst-type LOCAL -m {p} --dport {svc.node_port} -j DROP")
                else:
                    nat.append(f"-A {ext} -m comment --comment \"masquerade traffic for "
                               f"{svc.spn} external destinations\" -j KUBE-MARK-MASQ")
                    nat.append(f"-A {ext} -j {svc_name}")
            elif svc.etp_local:
                nat_chains.append(xlb)
                nat.append(f"-A KUBE-NODEPORTS -s 127.0.0.0/8 {npm} -j KUBE-MARK-MASQ")
                nat.append(f"-A KUBE-NODEPORTS {npm} -j {xlb}")
                if cluster_cidr:
                    nat.append(f"-A {xlb} -s {cluster_cidr} -m comment --comment \"Redirect pods "
                               "trying to reach external loadbalancer VIP to clusterIP\" "
                               f"-j {svc_name}")
                if not local_eps:
                    nat.append(f"-A {xlb} -m comment --comment \"{svc.spn} has no local "
                               "endpoints\" -j KUBE-MARK-DROP")
            else:
                nat.append(f"-A KUBE-NODEPORTS {npm} -j KUBE-MARK-MASQ")
                nat.append(f"-A KUBE-NODEPORTS {npm} -j {svc_name}")
        n = len(svc.endpoints)
        for i, (ip, port, _node) in enumerate(svc.endpoints):
            ep = f"{ip}:{port}"
            sep = sep_chain(svc.view(), ep)
            nat_chains.append(sep)
            stat = ""
            if n - i > 1:
                stat = f"-m statistic --mode random --probability {1 / (n - i):.11f} "
            comment = f"-m comment --comment \"{svc.spn} -> {ep}\" " if new else ""
            nat.append(f"-A {svc_name} {comment}{stat}-j {sep}")
            c = f"-m comment --comment \"{svc.spn}\" " if new else ""
            nat.append(f"-A {sep} -s {ip}/32 {c}-j KUBE-MARK-MASQ")
            nat.append(f"-A {sep} -p {p} {c}-m {p} -j DNAT --to-destination {ep}")
        if svc.etp_local and local_eps:
            k = len(local_eps)
            for i, (ip, port, _node) in enumerate(local_eps):
                ep = f"{ip}:{port}"
                sep = sep_chain(svc.view(), ep)
                stat = f"-m statistic --mode random --probability {1 / (k - i):.11f} " \
                    if k - i > 1 else ""
                target = svl if new else xlb
                comment = f"-m comment --comment \"{svc.spn} -> {ep}\" " if new else \
                    "-m comment --comment \"Balancing rule 0 for " + svc.spn + "\" "
                nat.append(f"-A {target} {comment}{stat}-j {sep}")
    nat.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this '
               'must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
    return KubeProxyRules(list(dict.fromkeys(nat_chains)), nat, filt_chains, hooks, filt)


def restore_text(*, nat_chains: list[str], nat: list[str], filter_chains: list[str],
                 filter_rules: list[str], policies: dict[str, str] | None = None,
                 extra_tables: str = "") -> str:
    """iptables-restore input (nat and filter) with every chain declared; `policies` maps a
    built-in filter chain to "POLICY [packets:bytes]"."""
    pol = {"INPUT": "ACCEPT [0:0]", "FORWARD": "ACCEPT [0:0]", "OUTPUT": "ACCEPT [0:0]"}
    pol.update(policies or {})
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]"]
    lines += [f":{c} - [0:0]" for c in dict.fromkeys(nat_chains)]
    lines += [*nat, "COMMIT", "*filter"]
    lines += [f":{c} {pol[c]}" for c in ("INPUT", "FORWARD", "OUTPUT")]
    lines += [f":{c} - [0:0]" for c in dict.fromkeys(filter_chains)]
    lines += [*filter_rules, "COMMIT"]
    return extra_tables + "\n".join(lines) + "\n"
