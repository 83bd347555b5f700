#!/usr/bin/env python3
"""Generate kube-proxy (iptables mode) rulesets exactly as `iptables-save` 1.8.9 prints them.

Usage:  gen_kubeproxy.py N [--endpoints E] [--seed S] -o FILE

N counts service *ports*; each gets its own KUBE-SVC-* chain, as in kube-proxy. The first four
are the kubeadm defaults (`default/kubernetes:https` at 10.96.0.1 and kube-dns `dns`, `dns-tcp`,
`metrics` at 10.96.0.10); the rest are drawn from a seeded RNG: 15 % of services have 2-3 ports,
3 % are UDP, 5 % are NodePort and 1 % LoadBalancer (which also get a node port, as in
Kubernetes). Every service port has E endpoints. The same (N, E, seed) always gives the same
bytes; `generate()` is the importable entry point for tests and benchmarks.

The text is what iptables-save prints after kube-proxy's restore input was loaded, not what
kube-proxy writes: built-in options first (`-s -d -i -o -p`), `/32` on host addresses, `-m tcp`
after `-p tcp`, comments quoted by xtables_save_string's rule, MARK as `--set-xmark`, the
statistic probability after the kernel's 2^31 fixed-point rounding, built-in chains first and
then user chains sorted, rules grouped by chain. `tests/lab/` checks this by round-tripping the
output through the real iptables-restore/iptables-save in a network namespace.

Chain names use kube-proxy's hash (pkg/proxy/iptables/proxier.go, portProtoHash and
servicePortEndpointChainName): base32(sha256(servicePortName + protocol [+ endpoint]))[:16].
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import ipaddress
import math
import random
import sys
from dataclasses import dataclass

MASQ_MARK = "0x4000"
CLUSTER_CIDR = "10.128.0.0/14"  # pod addresses; large enough for 30k services x 3 endpoints
SERVICE_CIDR = "10.96.0.0/12"  # kubeadm's default --service-cluster-ip-range
LB_CIDR = "198.18.0.0/15"  # benchmarking range (RFC 2544): never routed anywhere
NODE_IPS = ("172.18.0.2", "172.18.0.3", "172.18.0.4", "172.18.0.5", "172.18.0.6")
NODE_PORT_RANGE = (30000, 32767)
# A fixed stamp keeps the output byte-for-byte reproducible (iptables-save prints ctime()).
STAMP = "Thu Jan  1 00:00:00 2026"

_NO_QUOTE = frozenset("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str  # "tcp" / "udp"
    cluster_ip: str
    port: int
    endpoints: tuple[tuple[str, int], ...]
    node_port: int | None = None
    lb_ip: str | None = None

    @property
    def spn(self) -> str:
        # ServicePortName.String(): "ns/name" plus ":port" only for a named port.
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port_name}" if self.port_name else base


def save_string(value: str) -> str:
    """Quote like xtables_save_string (libxtables/xtables.c), including the leading space."""
    if value and all(c in _NO_QUOTE for c in value):
        return " " + value
    escaped = "".join("\\" + c if c in "\"\\'" else c for c in value)
    return f' "{escaped}"'


def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def svc_chain(sp: ServicePort) -> str:
    return "KUBE-SVC-" + _hash16(sp.spn + sp.protocol)


def ext_chain(sp: ServicePort) -> str:
    return "KUBE-EXT-" + _hash16(sp.spn + sp.protocol)


def sep_chain(sp: ServicePort, ip: str, port: int) -> str:
    return "KUBE-SEP-" + _hash16(sp.spn + sp.protocol + f"{ip}:{port}")


def probability(remaining: int) -> str:
    """kube-proxy prints 1/n with %0.10f; libxt_statistic stores lround(p * 2^31) and
    iptables-save prints that back with %.11f (extensions/libxt_statistic.c)."""
    p = float(f"{1.0 / remaining:0.10f}")
    fixed = math.floor(p * 0x80000000 + 0.5)  # lround() for positive values
    return f"{fixed / 0x80000000:.11f}"


class _Pool:
    """Unique random addresses from a network, deterministic for a given RNG."""

    def __init__(self, rng: random.Random, cidr: str, taken: set[int] | None = None) -> None:
        net = ipaddress.IPv4Network(cidr)
        self._rng = rng
        self._base = int(net.network_address)
        self._size = net.num_addresses
        self._taken: set[int] = set(taken or ())
        self._taken.update({0, self._size - 1})

    def take(self) -> str:
        if len(self._taken) >= self._size:
            raise ValueError("address pool exhausted")
        while True:
            off = self._rng.randrange(self._size)
            if off not in self._taken:
                self._taken.add(off)
                return str(ipaddress.IPv4Address(self._base + off))


def build_services(n: int, endpoints: int, seed: int) -> list[ServicePort]:
    """The service ports of a cluster with n service ports, in kube-proxy's write order."""
    if n < 0 or endpoints < 1:
        raise ValueError("need n >= 0 and endpoints >= 1")
    rng = random.Random(seed)
    cluster_ips = _Pool(rng, SERVICE_CIDR, taken={1, 10})
    pod_ips = _Pool(rng, CLUSTER_CIDR)
    lb_ips = _Pool(rng, LB_CIDR)
    free_node_ports = list(range(NODE_PORT_RANGE[0], NODE_PORT_RANGE[1] + 1))
    rng.shuffle(free_node_ports)

    def eps(port: int, ips: list[str] | None = None) -> tuple[tuple[str, int], ...]:
        chosen = ips if ips is not None else [pod_ips.take() for _ in range(endpoints)]
        return tuple((ip, port) for ip in chosen)

    out: list[ServicePort] = []
    api_ips = [NODE_IPS[i % len(NODE_IPS)] for i in range(endpoints)]
    if endpoints > len(NODE_IPS):  # more apiservers than node IPs: give them pod-range IPs
        api_ips = [pod_ips.take() for _ in range(endpoints)]
    dns_ips = [pod_ips.take() for _ in range(endpoints)]
    defaults = [
        ServicePort("default", "kubernetes", "https", "tcp", "10.96.0.1", 443, eps(6443, api_ips)),
        ServicePort("kube-system", "kube-dns", "dns", "udp", "10.96.0.10", 53, eps(53, dns_ips)),
        ServicePort("kube-system", "kube-dns", "dns-tcp", "tcp", "10.96.0.10", 53, eps(53, dns_ips)),
        ServicePort("kube-system", "kube-dns", "metrics", "tcp", "10.96.0.10", 9153,
                    eps(9153, dns_ips)),
    ]
    out.extend(defaults[:n])
    namespaces = max(1, n // 25)
    index = 0
    while len(out) < n:
        index += 1
        ns = f"team-{rng.randrange(namespaces):04d}"
        name = f"svc-{index:05d}"
        nports = 1 if rng.random() >= 0.15 else rng.choice((2, 3))
        nports = min(nports, n - len(out))
        protocol = "udp" if rng.random() < 0.03 else "tcp"
        kind = rng.random()
        is_lb = kind < 0.01
        is_nodeport = kind < 0.06  # 5 % NodePort + the 1 % LoadBalancer (which has node ports)
        cluster_ip = cluster_ips.take()
        lb_ip = lb_ips.take() if is_lb else None
        ips = [pod_ips.take() for _ in range(endpoints)]
        names = ("http", "https", "metrics") if nports > 1 else (rng.choice(("", "http")),)
        for k in range(nports):
            port = (80, 443, 9090)[k] if nports > 1 else rng.choice((80, 8080, 443, 5432, 6379))
            target = port if port >= 1024 else 8000 + port
            node_port = free_node_ports.pop() if is_nodeport and free_node_ports else None
            out.append(ServicePort(ns, name, names[k], protocol, cluster_ip, port,
                                   eps(target, ips), node_port, lb_ip))
    return out


def _filter_table() -> list[str]:
    chains = ["KUBE-EXTERNAL-SERVICES", "KUBE-FIREWALL", "KUBE-FORWARD", "KUBE-KUBELET-CANARY",
              "KUBE-NODEPORTS", "KUBE-PROXY-CANARY", "KUBE-PROXY-FIREWALL", "KUBE-SERVICES"]
    new = "-m conntrack --ctstate NEW -m comment --comment"
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f":{c} - [0:0]" for c in chains]
    lines += [
        f'-A INPUT {new} "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
        f'-A INPUT {new} "kubernetes externally-visible service portals"'
        " -j KUBE-EXTERNAL-SERVICES",
        "-A INPUT -j KUBE-FIREWALL",
        f'-A FORWARD {new} "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        f'-A FORWARD {new} "kubernetes service portals" -j KUBE-SERVICES',
        f'-A FORWARD {new} "kubernetes externally-visible service portals"'
        " -j KUBE-EXTERNAL-SERVICES",
        f'-A OUTPUT {new} "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        f'-A OUTPUT {new} "kubernetes service portals" -j KUBE-SERVICES',
        "-A OUTPUT -j KUBE-FIREWALL",
        '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming'
        ' localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark'
        f" {MASQ_MARK}/{MASQ_MARK} -j ACCEPT",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack'
        " --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "COMMIT",
    ]
    return lines


def _nat_table(services: list[ServicePort]) -> list[str]:
    rules: dict[str, list[str]] = {
        "KUBE-KUBELET-CANARY": [],
        "KUBE-MARK-MASQ": [f"-A KUBE-MARK-MASQ -j MARK --set-xmark {MASQ_MARK}/{MASQ_MARK}"],
        "KUBE-NODEPORTS": [],
        "KUBE-POSTROUTING": [
            f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
            f"-A KUBE-POSTROUTING -j MARK --set-xmark {MASQ_MARK}/0x0",
            '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT"'
            " -j MASQUERADE --random-fully",
        ],
        "KUBE-PROXY-CANARY": [],
        "KUBE-SERVICES": [],
    }
    services_rules = rules["KUBE-SERVICES"]
    for sp in services:
        proto, spn = sp.protocol, sp.spn
        svc = svc_chain(sp)
        match = f"-p {proto} -m comment --comment{save_string(spn + ' cluster IP')} -m {proto}"
        services_rules.append(
            f"-A KUBE-SERVICES -d {sp.cluster_ip}/32 {match} --dport {sp.port} -j {svc}")
        svc_rules = [f"-A {svc} ! -s {CLUSTER_CIDR} -d {sp.cluster_ip}/32 {match}"
                     f" --dport {sp.port} -j KUBE-MARK-MASQ"]
        count = len(sp.endpoints)
        for i, (ip, port) in enumerate(sp.endpoints):
            sep = sep_chain(sp, ip, port)
            stat = (f" -m statistic --mode random --probability {probability(count - i)}"
                    if i < count - 1 else "")
            svc_rules.append(
                f"-A {svc} -m comment --comment{save_string(f'{spn} -> {ip}:{port}')}{stat}"
                f" -j {sep}")
            rules[sep] = [
                f"-A {sep} -s {ip}/32 -m comment --comment{save_string(spn)} -j KUBE-MARK-MASQ",
                f"-A {sep} -p {proto} -m comment --comment{save_string(spn)} -m {proto}"
                f" -j DNAT --to-destination {ip}:{port}",
            ]
        rules[svc] = svc_rules
        if sp.lb_ip is not None:
            lb_match = f"-p {proto} -m comment --comment{save_string(spn + ' loadbalancer IP')}"
            services_rules.append(f"-A KUBE-SERVICES -d {sp.lb_ip}/32 {lb_match} -m {proto}"
                                  f" --dport {sp.port} -j {ext_chain(sp)}")
        if sp.node_port is not None:
            ext = ext_chain(sp)
            rules["KUBE-NODEPORTS"].append(
                f"-A KUBE-NODEPORTS -p {proto} -m comment --comment{save_string(spn)} -m {proto}"
                f" --dport {sp.node_port} -j {ext}")
            rules[ext] = [
                f"-A {ext} -m comment --comment"
                f"{save_string(f'masquerade traffic for {spn} external destinations')}"
                " -j KUBE-MARK-MASQ",
                f"-A {ext} -j {svc}",
            ]
    services_rules.append(
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be'
        ' the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')

    user = sorted(rules)  # libiptc and nft both list user chains by name (strcmp order)
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]"]
    lines += [f":{c} - [0:0]" for c in user]
    lines += [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    ]
    for chain in user:
        lines += rules[chain]
    lines.append("COMMIT")
    return lines


def generate(n: int, endpoints: int = 3, seed: int = 1) -> str:
    """The iptables-save text (filter, then nat) of a kube-proxy node with n service ports."""
    services = build_services(n, endpoints, seed)
    out: list[str] = []
    for table in (_filter_table(), _nat_table(services)):
        out.append(f"# Generated by iptables-save v1.8.9 (nf_tables) on {STAMP}")
        out.extend(table)
        out.append(f"# Completed on {STAMP}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("n", type=int, help="number of service ports")
    ap.add_argument("--endpoints", type=int, default=3, help="endpoints per service (default 3)")
    ap.add_argument("--seed", type=int, default=1, help="RNG seed (default 1)")
    ap.add_argument("-o", "--output", default="-", help="output file ('-' for stdout)")
    args = ap.parse_args(argv)
    text = generate(args.n, args.endpoints, args.seed)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
