"""The rules kube-proxy (iptables mode) programs for a set of Services.

When a transcript shows the Services but not a full `iptables-save`, netsleuth rebuilds what
kube-proxy writes for them, so a trace can still say whether a packet would be DNATed and to
where. Chain names use kube-proxy's own hashing (servicePortChainName /
servicePortEndpointChainName in pkg/proxy/iptables/proxier.go: "KUBE-SVC-"/"KUBE-SEP-" +
the first 16 base32 characters of sha256(servicePortName + protocol [+ endpoint])), so the
rebuilt chains have the same names as the real ones and a pasted listing lines up with them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from netsleuth.model.k8s import Endpoints, Service
from netsleuth.model.net import IPAddress

MASQ_MARK = "0x4000/0x4000"


@dataclass(frozen=True, slots=True)
class ServicePortView:
    """One ClusterIP service port and the endpoints ("ip:port") it load-balances to."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # lower case, as kube-proxy hashes it
    cluster_ip: IPAddress
    port: int
    endpoints: tuple[str, ...]

    @property
    def service_port_name(self) -> str:
        return f"{self.namespace}/{self.name}" + (f":{self.port_name}" if self.port_name else "")


def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def svc_chain(view: ServicePortView) -> str:
    return "KUBE-SVC-" + _hash16(view.service_port_name + view.protocol)


def sep_chain(view: ServicePortView, endpoint: str) -> str:
    return "KUBE-SEP-" + _hash16(view.service_port_name + view.protocol + endpoint)


def service_port_views(
    services: Iterable[Service], endpoints: Sequence[Endpoints] = ()
) -> list[ServicePortView]:
    """ClusterIP service ports with their endpoints, from describe/get/JSON objects."""
    by_name = {(e.namespace, e.service or e.name): e for e in endpoints}
    views: list[ServicePortView] = []
    for svc in services:
        ip = svc.cluster_ip
        if ip is None or svc.headless or not svc.name:
            continue
        eps_obj = by_name.get((svc.namespace, svc.name))
        for port in svc.ports:
            eps = port.endpoints
            if not eps and len(svc.ports) == 1:
                eps = svc.endpoints
            if not eps and eps_obj is not None:
                eps = tuple(
                    f"{a.ip}:{p.port}" for a in eps_obj.addresses if a.ip is not None and a.ready
                    for p in eps_obj.ports if p.name == port.name or len(eps_obj.ports) == 1
                )
            if not eps and eps_obj is None:
                # Endpoints not shown is not "no endpoints": without them kube-proxy's rules
                # for this port cannot be rebuilt (neither DNAT nor the no-endpoints REJECT).
                continue
            views.append(ServicePortView(svc.namespace or "default", svc.name, port.name or "",
                                         port.protocol.lower(), ip, port.port, tuple(eps)))
    return views


def kube_proxy_rules(views: Sequence[ServicePortView], cluster_cidr: str | None) -> str:
    """iptables-save text of kube-proxy's nat and filter rules for these service ports."""
    nat_chains = ["KUBE-SERVICES", "KUBE-MARK-MASQ", "KUBE-POSTROUTING"]
    nat: list[str] = [
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" "
        "-j KUBE-POSTROUTING",
        f"-A KUBE-MARK-MASQ -j MARK --set-xmark {MASQ_MARK}",
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\""
        f" -m mark --mark {MASQ_MARK} -j MASQUERADE",
    ]
    filt: list[str] = [
        "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service "
        "portals\" -j KUBE-SERVICES",
        "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service "
        "portals\" -j KUBE-SERVICES",
    ]
    for v in views:
        proto = v.protocol
        comment = f'"{v.service_port_name} cluster IP"'
        match = f"-d {v.cluster_ip}/32 -p {proto} -m comment --comment {comment} -m {proto} " \
                f"--dport {v.port}"
        if not v.endpoints:
            filt.append(f"-A KUBE-SERVICES {match.replace('cluster IP', 'has no endpoints')} "
                        "-j REJECT --reject-with icmp-port-unreachable")
            continue
        svc = svc_chain(v)
        nat_chains.append(svc)
        if cluster_cidr:
            nat.append(f"-A KUBE-SERVICES ! -s {cluster_cidr} {match} -j KUBE-MARK-MASQ")
        nat.append(f"-A KUBE-SERVICES {match} -j {svc}")
        n = len(v.endpoints)
        for i, ep in enumerate(v.endpoints):
            sep = sep_chain(v, ep)
            nat_chains.append(sep)
            remaining = n - i
            if remaining > 1:
                nat.append(f"-A {svc} -m statistic --mode random --probability "
                           f"{1 / remaining:.11f} -j {sep}")
            else:
                nat.append(f"-A {svc} -j {sep}")
            ep_ip = ep.rsplit(":", 1)[0].strip("[]")
            nat.append(f"-A {sep} -s {ep_ip}/32 -j KUBE-MARK-MASQ")
            nat.append(f"-A {sep} -p {proto} -m {proto} -j DNAT --to-destination {ep}")
    head = [":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
            ":POSTROUTING ACCEPT [0:0]"]
    lines = ["*nat", *head, *(f":{c} - [0:0]" for c in dict.fromkeys(nat_chains)), *nat,
             "COMMIT", "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]",
             ":OUTPUT ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]", *filt, "COMMIT"]
    return "\n".join(lines) + "\n"
