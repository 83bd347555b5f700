#!/usr/bin/env python3
# ruff: noqa: E501 (command outputs and iptables rules quoted verbatim)
"""Regenerate the node snapshots used by the B/C detector tests and scenarios, from the REAL
kernel and tools (root needed; iptables 1.8.9 nf_tables + legacy, iproute2).

Each node below is built in a network namespace named `nsdb-*` (links, addresses, routes,
sysctls, a veth per pod in its own namespace, rules loaded with iptables-restore) and dumped
with the real commands (netns_node.py); the namespaces are deleted afterwards. Outputs go to
tests/diagnose/data/bc/<case>/<node>/ (snapshot files, plus text/ with the forms people paste
into transcripts) and to the scenario bundles that use them.

Usage: python3 tests/diagnose/data/bc/make_bc_data.py [case ...]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
TESTS = HERE.parents[1]  # tests/diagnose
SCEN = TESTS / "scenarios"

from kube_proxy_gen import Svc, restore_text, rules  # noqa: E402
from netns_node import NodeSpec, PodSpec, build_and_dump  # noqa: E402

CASES: dict[str, Callable[[], None]] = {}


def case(fn: Callable[[], None]) -> Callable[[], None]:
    CASES[fn.__name__.replace("_", "-")] = fn
    return fn


def emit(spec: NodeSpec, case_name: str, *scenarios: str) -> None:
    outs = [HERE / case_name / spec.name]
    outs += [SCEN / s / "bundle" / "nodes" / spec.name for s in scenarios]
    build_and_dump(spec, outs, text_dir=HERE / case_name / spec.name / "text")


# -- Docker and flannel rules of the era -------------------------------------------------------

def docker_1806(policy_counts: str) -> tuple[list[str], list[str], list[str], list[str], str]:
    """Docker 18.06's rules: FORWARD policy DROP (set since 1.13 when it enables forwarding)."""
    nat_chains = ["DOCKER"]
    nat = ["-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
           "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
           "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
           "-A DOCKER -i docker0 -j RETURN"]
    filt_chains = ["DOCKER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2",
                   "DOCKER-USER"]
    hooks = ["-A FORWARD -j DOCKER-USER",
             "-A FORWARD -j DOCKER-ISOLATION-STAGE-1",
             "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
             "-A FORWARD -o docker0 -j DOCKER",
             "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT",
             "-A FORWARD -i docker0 -o docker0 -j ACCEPT"]
    filt = ["-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2",
            "-A DOCKER-ISOLATION-STAGE-1 -j RETURN",
            "-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP",
            "-A DOCKER-ISOLATION-STAGE-2 -j RETURN",
            "-A DOCKER-USER -j RETURN"]
    return nat_chains, nat, filt_chains, hooks + filt, f"DROP {policy_counts}"


def flannel_masq(cluster: str, local: str) -> list[str]:
    """flannel's --ip-masq rules (v0.9-v0.15)."""
    return [f"-A POSTROUTING -s {cluster} -d {cluster} -j RETURN",
            f"-A POSTROUTING -s {cluster} ! -d 224.0.0.0/4 -j MASQUERADE",
            f"-A POSTROUTING ! -s {cluster} -d {local} -j RETURN",
            f"-A POSTROUTING ! -s {cluster} -d {cluster} -j MASQUERADE"]


# -- B11: Docker's FORWARD DROP, flannel v0.9.1 (no FORWARD rules), Kubernetes 1.12 -------------

B11_SVCS = [
    Svc("default", "kubernetes", "10.96.0.1", 443, port_name="https",
        endpoints=[("172.16.20.10", 6443, "k8s-master")]),
    Svc("kube-system", "kube-dns", "10.96.0.10", 53, "udp", "dns",
        endpoints=[("10.244.0.2", 53, "k8s-master"), ("10.244.0.3", 53, "k8s-master")]),
    Svc("kube-system", "kube-dns", "10.96.0.10", 53, "tcp", "dns-tcp",
        endpoints=[("10.244.0.2", 53, "k8s-master"), ("10.244.0.3", 53, "k8s-master")]),
    Svc("shop", "cart-api", "10.104.33.201", 8080, endpoints=[("10.244.2.15", 8080, "k8s-node-a2")],
        node_port=31080),
]


def _b11_node(name: str, nic_ip: str, n: int, pods: list[PodSpec], counts: str) -> NodeSpec:
    kp = rules(B11_SVCS, style="1.12", node=name, cluster_cidr="10.244.0.0/16")
    dnat_c, dnat, dfilt_c, dfilt, pol = docker_1806(counts)
    nat = [*dnat, *kp.nat, *flannel_masq("10.244.0.0/16", f"10.244.{n}.0/24")]
    filt = [*kp.filter_hooks, *dfilt, *kp.filter]
    text = restore_text(nat_chains=[*dnat_c, *kp.nat_chains], nat=nat,
                        filter_chains=[*dfilt_c, *kp.filter_chains], filter_rules=filt,
                        policies={"FORWARD": pol})
    routes = ["default via 172.16.20.1 dev ens160 proto static"]
    for other in (0, 1, 2):
        if other != n:
            routes.append(f"10.244.{other}.0/24 via 10.244.{other}.0 dev flannel.1 onlink")
    return NodeSpec(
        name, nics=[("ens160", f"{nic_ip}/24")],
        bridges=[("cni0", f"10.244.{n}.1/24"), ("docker0", "172.17.0.1/16")],
        vxlans=[("flannel.1", 1, 8472, f"10.244.{n}.0/32", "ens160")],
        pods=pods, routes=routes,
        sysctls={"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"},
        rules=text)


@case
def forward_drop() -> None:
    a1 = _b11_node("k8s-node-a1", "172.16.20.11", 1,
                   [PodSpec("veth6c1f2e0a", "10.244.1.12/24", "cni0")], "[18271:1096260]")
    a2 = _b11_node("k8s-node-a2", "172.16.20.12", 2,
                   [PodSpec("vethb81d07c4", "10.244.2.15/24", "cni0")], "[9034:542040]")
    emit(a1, "forward-drop", "b11-docker-forward-drop")
    emit(a2, "forward-drop", "b11-docker-forward-drop")




# -- B12: firewalld (EL7, iptables backend) rejects forwarded pod and VXLAN traffic ------------

def firewalld_el7(nic: str, allow_tcp: list[int]) -> tuple[list[str], list[str], list[str]]:
    """firewalld 0.6 (CentOS 7) filter table: zone chains, then the catch-all REJECTs."""
    chains = ["FORWARD_IN_ZONES", "FORWARD_IN_ZONES_SOURCE", "FORWARD_OUT_ZONES",
              "FORWARD_OUT_ZONES_SOURCE", "FORWARD_direct", "FWDI_public", "FWDI_public_allow",
              "FWDI_public_deny", "FWDI_public_log", "FWDO_public", "FWDO_public_allow",
              "FWDO_public_deny", "FWDO_public_log", "INPUT_ZONES", "INPUT_ZONES_SOURCE",
              "INPUT_direct", "IN_public", "IN_public_allow", "IN_public_deny", "IN_public_log",
              "OUTPUT_direct"]
    hooks = ["-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
             "-A INPUT -i lo -j ACCEPT", "-A INPUT -j INPUT_direct",
             "-A INPUT -j INPUT_ZONES_SOURCE", "-A INPUT -j INPUT_ZONES",
             "-A INPUT -m conntrack --ctstate INVALID -j DROP",
             "-A INPUT -j REJECT --reject-with icmp-host-prohibited",
             "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
             "-A FORWARD -i lo -j ACCEPT", "-A FORWARD -j FORWARD_direct",
             "-A FORWARD -j FORWARD_IN_ZONES_SOURCE", "-A FORWARD -j FORWARD_IN_ZONES",
             "-A FORWARD -j FORWARD_OUT_ZONES_SOURCE", "-A FORWARD -j FORWARD_OUT_ZONES",
             "-A FORWARD -m conntrack --ctstate INVALID -j DROP",
             "-A FORWARD -j REJECT --reject-with icmp-host-prohibited",
             "-A OUTPUT -o lo -j ACCEPT", "-A OUTPUT -j OUTPUT_direct"]
    rules_ = [f"-A FORWARD_IN_ZONES -i {nic} -g FWDI_public", "-A FORWARD_IN_ZONES -g FWDI_public",
              f"-A FORWARD_OUT_ZONES -o {nic} -g FWDO_public",
              "-A FORWARD_OUT_ZONES -g FWDO_public",
              "-A FWDI_public -j FWDI_public_log", "-A FWDI_public -j FWDI_public_deny",
              "-A FWDI_public -j FWDI_public_allow", "-A FWDI_public -p icmp -j ACCEPT",
              "-A FWDO_public -j FWDO_public_log", "-A FWDO_public -j FWDO_public_deny",
              "-A FWDO_public -j FWDO_public_allow",
              f"-A INPUT_ZONES -i {nic} -g IN_public", "-A INPUT_ZONES -g IN_public",
              "-A IN_public -j IN_public_log", "-A IN_public -j IN_public_deny",
              "-A IN_public -j IN_public_allow", "-A IN_public -p icmp -j ACCEPT"]
    for port in allow_tcp:
        rules_.append(f"-A IN_public_allow -p tcp -m tcp --dport {port} -m conntrack --ctstate "
                      "NEW,UNTRACKED -j ACCEPT")
    return chains, hooks, rules_


B12_SVCS = [
    Svc("default", "kubernetes", "10.96.0.1", 443, port_name="https",
        endpoints=[("192.168.122.50", 6443, "cent-k8s-m1")]),
    Svc("kube-system", "kube-dns", "10.96.0.10", 53, "udp", "dns",
        endpoints=[("10.244.0.4", 53, "cent-k8s-m1"), ("10.244.2.3", 53, "cent-k8s-w2")]),
    Svc("kube-system", "kube-dns", "10.96.0.10", 53, "tcp", "dns-tcp",
        endpoints=[("10.244.0.4", 53, "cent-k8s-m1"), ("10.244.2.3", 53, "cent-k8s-w2")]),
    Svc("default", "inventory", "10.104.17.90", 8080, endpoints=[("10.244.2.7", 8080, "cent-k8s-w2")]),
]


@case
def firewalld() -> None:
    name = "cent-k8s-w1"
    kp = rules(B12_SVCS, style="1.18", node=name, cluster_cidr="10.244.0.0/16")
    fw_chains, fw_hooks, fw_rules = firewalld_el7("eth0", [22, 6443, 10250, 30000])
    flannel_fwd = ['-A FORWARD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
                   '-A FORWARD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT']
    filt = [*kp.filter_hooks, *fw_hooks, *flannel_fwd, *fw_rules, *kp.filter]
    text = restore_text(nat_chains=kp.nat_chains,
                        nat=[*kp.nat, *flannel_masq("10.244.0.0/16", "10.244.1.0/24")],
                        filter_chains=[*fw_chains, *kp.filter_chains], filter_rules=filt)
    spec = NodeSpec(
        name, nics=[("eth0", "192.168.122.51/24")], bridges=[("cni0", "10.244.1.1/24")],
        vxlans=[("flannel.1", 1, 8472, "10.244.1.0/32", "eth0")],
        pods=[PodSpec("veth2d41c9b6", "10.244.1.6/24", "cni0"),
              PodSpec("veth91aa03fe", "10.244.1.9/24", "cni0")],
        routes=["default via 192.168.122.1 dev eth0 proto static metric 100",
                "10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink",
                "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"],
        sysctls={"net.ipv4.ip_forward": "1"}, rules=text)
    emit(spec, "firewalld")


# -- B13: ufw "deny (routed)" on a bridge-CNI cluster (Kubernetes the hard way on Ubuntu) ------

def ufw_rules(allow_tcp: list[int]) -> tuple[list[str], list[str]]:
    chains = ["ufw-after-forward", "ufw-after-input", "ufw-after-logging-forward",
              "ufw-after-logging-input", "ufw-after-logging-output", "ufw-after-output",
              "ufw-before-forward", "ufw-before-input", "ufw-before-logging-forward",
              "ufw-before-logging-input", "ufw-before-logging-output", "ufw-before-output",
              "ufw-logging-allow", "ufw-logging-deny", "ufw-not-local", "ufw-reject-forward",
              "ufw-reject-input", "ufw-reject-output", "ufw-skip-to-policy-forward",
              "ufw-skip-to-policy-input", "ufw-skip-to-policy-output", "ufw-track-forward",
              "ufw-track-input", "ufw-track-output", "ufw-user-forward", "ufw-user-input",
              "ufw-user-limit", "ufw-user-limit-accept", "ufw-user-logging-forward",
              "ufw-user-logging-input", "ufw-user-logging-output", "ufw-user-output"]
    r = []
    for hook in ("input", "forward", "output"):
        H = hook.upper()
        r += [f"-A {H} -j ufw-before-logging-{hook}", f"-A {H} -j ufw-before-{hook}",
              f"-A {H} -j ufw-after-{hook}", f"-A {H} -j ufw-after-logging-{hook}",
              f"-A {H} -j ufw-reject-{hook}", f"-A {H} -j ufw-track-{hook}"]
    r += [
        "-A ufw-after-input -p udp -m udp --dport 137 -j ufw-skip-to-policy-input",
        "-A ufw-after-input -p udp -m udp --dport 138 -j ufw-skip-to-policy-input",
        "-A ufw-after-input -p tcp -m tcp --dport 139 -j ufw-skip-to-policy-input",
        "-A ufw-after-input -p tcp -m tcp --dport 445 -j ufw-skip-to-policy-input",
        "-A ufw-after-input -p udp -m udp --dport 67 -j ufw-skip-to-policy-input",
        "-A ufw-after-input -p udp -m udp --dport 68 -j ufw-skip-to-policy-input",
        "-A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input",
        '-A ufw-after-logging-forward -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "',
        '-A ufw-after-logging-input -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "',
        "-A ufw-before-forward -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A ufw-before-forward -p icmp -m icmp --icmp-type 3 -j ACCEPT",
        "-A ufw-before-forward -p icmp -m icmp --icmp-type 11 -j ACCEPT",
        "-A ufw-before-forward -p icmp -m icmp --icmp-type 12 -j ACCEPT",
        "-A ufw-before-forward -p icmp -m icmp --icmp-type 8 -j ACCEPT",
        "-A ufw-before-forward -j ufw-user-forward",
        "-A ufw-before-input -i lo -j ACCEPT",
        "-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A ufw-before-input -m conntrack --ctstate INVALID -j ufw-logging-deny",
        "-A ufw-before-input -m conntrack --ctstate INVALID -j DROP",
        "-A ufw-before-input -p icmp -m icmp --icmp-type 3 -j ACCEPT",
        "-A ufw-before-input -p icmp -m icmp --icmp-type 11 -j ACCEPT",
        "-A ufw-before-input -p icmp -m icmp --icmp-type 12 -j ACCEPT",
        "-A ufw-before-input -p icmp -m icmp --icmp-type 8 -j ACCEPT",
        "-A ufw-before-input -p udp -m udp --sport 67 --dport 68 -j ACCEPT",
        "-A ufw-before-input -j ufw-not-local",
        "-A ufw-before-input -d 224.0.0.251/32 -p udp -m udp --dport 5353 -j ACCEPT",
        "-A ufw-before-input -d 239.255.255.250/32 -p udp -m udp --dport 1900 -j ACCEPT",
        "-A ufw-before-input -j ufw-user-input",
        "-A ufw-before-output -o lo -j ACCEPT",
        "-A ufw-before-output -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A ufw-before-output -j ufw-user-output",
        '-A ufw-logging-allow -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW ALLOW] "',
        "-A ufw-logging-deny -m conntrack --ctstate INVALID -m limit --limit 3/min --limit-burst 10 -j RETURN",
        '-A ufw-logging-deny -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "',
        "-A ufw-not-local -m addrtype --dst-type LOCAL -j RETURN",
        "-A ufw-not-local -m addrtype --dst-type MULTICAST -j RETURN",
        "-A ufw-not-local -m addrtype --dst-type BROADCAST -j RETURN",
        "-A ufw-not-local -m limit --limit 3/min --limit-burst 10 -j ufw-logging-deny",
        "-A ufw-not-local -j DROP",
        "-A ufw-skip-to-policy-forward -j DROP",
        "-A ufw-skip-to-policy-input -j DROP",
        "-A ufw-skip-to-policy-output -j ACCEPT",
        "-A ufw-track-output -p tcp -m conntrack --ctstate NEW -j ACCEPT",
        "-A ufw-track-output -p udp -m conntrack --ctstate NEW -j ACCEPT",
        '-A ufw-user-limit -m limit --limit 3/min -j LOG --log-prefix "[UFW LIMIT BLOCK] "',
        "-A ufw-user-limit -j REJECT --reject-with icmp-port-unreachable",
        "-A ufw-user-limit-accept -j ACCEPT",
    ]
    for port in allow_tcp:
        r.append(f"-A ufw-user-input -p tcp -m tcp --dport {port} -j ACCEPT")
    return chains, r


B13_SVCS = [
    Svc("default", "kubernetes", "10.32.0.1", 443, port_name="https",
        endpoints=[("192.168.1.50", 6443, "pi-ctrl-0")]),
    Svc("kube-system", "kube-dns", "10.32.0.10", 53, "udp", "dns",
        endpoints=[("10.200.0.5", 53, "pi-ctrl-0")]),
    Svc("kube-system", "kube-dns", "10.32.0.10", 53, "tcp", "dns-tcp",
        endpoints=[("10.200.0.5", 53, "pi-ctrl-0")]),
    Svc("home", "grafana", "10.32.0.155", 3000, endpoints=[("10.200.1.9", 3000, "pi-worker-1")]),
]


@case
def ufw() -> None:
    name = "pi-worker-2"
    kp = rules(B13_SVCS, style="1.18", node=name, cluster_cidr="10.200.0.0/16")
    ufw_chains, ufw_r = ufw_rules([22, 10250])
    text = restore_text(nat_chains=kp.nat_chains, nat=kp.nat,
                        filter_chains=[*kp.filter_chains, *ufw_chains],
                        filter_rules=[*kp.filter_hooks, *ufw_r, *kp.filter],
                        policies={"INPUT": "DROP [2291:137460]", "FORWARD": "DROP [4178:250680]"})
    spec = NodeSpec(
        name, nics=[("eth0", "192.168.1.52/24")], bridges=[("cnio0", "10.200.2.1/24")],
        pods=[PodSpec("veth5e0c7a1d", "10.200.2.14/24", "cnio0")],
        routes=["default via 192.168.1.1 dev eth0 proto dhcp src 192.168.1.52 metric 100",
                "10.200.0.0/24 via 192.168.1.50 dev eth0",
                "10.200.1.0/24 via 192.168.1.51 dev eth0"],
        sysctls={"net.ipv4.ip_forward": "1"}, rules=text)
    emit(spec, "ufw")


# -- B14: Debian 10 host on nf_tables, kube-proxy/flannel images on iptables-legacy ------------

B14_SVCS = [
    Svc("default", "kubernetes", "10.96.0.1", 443, port_name="https",
        endpoints=[("10.11.0.20", 6443, "deb-cp")]),
    Svc("kube-system", "kube-dns", "10.96.0.10", 53, "udp", "dns",
        endpoints=[("10.244.0.7", 53, "deb-cp"), ("10.244.0.8", 53, "deb-cp")]),
    Svc("web", "frontend", "10.103.7.44", 80, endpoints=[("10.244.2.21", 8080, "deb-w2")]),
]


@case
def legacy_split() -> None:
    name = "deb-w1"
    kp = rules(B14_SVCS, style="1.15", node=name, cluster_cidr="10.244.0.0/16")
    flannel_fwd = ["-A FORWARD -s 10.244.0.0/16 -j ACCEPT", "-A FORWARD -d 10.244.0.0/16 -j ACCEPT"]
    legacy = restore_text(nat_chains=kp.nat_chains,
                          nat=[*kp.nat, *flannel_masq("10.244.0.0/16", "10.244.1.0/24")],
                          filter_chains=kp.filter_chains,
                          filter_rules=[*kp.filter_hooks, *kp.filter, *flannel_fwd])
    dnat_c, dnat, dfilt_c, dfilt, pol = docker_1806("[20318:1219080]")
    nft = restore_text(nat_chains=dnat_c, nat=dnat, filter_chains=dfilt_c, filter_rules=dfilt,
                       policies={"FORWARD": pol})
    spec = NodeSpec(
        name, nics=[("ens3", "10.11.0.21/24")],
        bridges=[("cni0", "10.244.1.1/24"), ("docker0", "172.17.0.1/16")],
        vxlans=[("flannel.1", 1, 8472, "10.244.1.0/32", "ens3")],
        pods=[PodSpec("veth0f3e9b27", "10.244.1.5/24", "cni0")],
        routes=["default via 10.11.0.1 dev ens3 onlink",
                "10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink",
                "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"],
        sysctls={"net.ipv4.ip_forward": "1"}, rules=nft, legacy_rules=legacy)
    emit(spec, "legacy-split")




# -- B10: bridge-nf-call-iptables=0 on a flannel (bridge) node; CoreDNS on the same bridge -----

B10_SVCS = [
    Svc("default", "kubernetes", "10.43.0.1", 443, port_name="https",
        endpoints=[("10.30.8.11", 6443, "kcp-01")]),
    Svc("kube-system", "kube-dns", "10.43.0.10", 53, "udp", "dns",
        endpoints=[("10.42.1.9", 53, "kw-02"), ("10.42.3.4", 53, "kw-03")]),
    Svc("kube-system", "kube-dns", "10.43.0.10", 53, "tcp", "dns-tcp",
        endpoints=[("10.42.1.9", 53, "kw-02"), ("10.42.3.4", 53, "kw-03")]),
    Svc("apps", "orders", "10.43.118.20", 80, port_name="http",
        endpoints=[("10.42.3.12", 8080, "kw-03")]),
]


@case
def brnf_off() -> None:
    name = "kw-03"
    kp = rules(B10_SVCS, style="1.28", node=name, cluster_cidr="10.42.0.0/16")
    fl_chains = ["FLANNEL-FWD", "FLANNEL-POSTRTG"]
    text = restore_text(
        nat_chains=[*kp.nat_chains, "FLANNEL-POSTRTG"],
        nat=[*kp.nat, '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
             '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
             '-A FLANNEL-POSTRTG -s 10.42.3.0/24 -d 10.42.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
             '-A FLANNEL-POSTRTG -s 10.42.0.0/16 -d 10.42.3.0/24 -m comment --comment "flanneld masq" -j RETURN',
             '-A FLANNEL-POSTRTG ! -s 10.42.0.0/16 -d 10.42.3.0/24 -m comment --comment "flanneld masq" -j RETURN',
             '-A FLANNEL-POSTRTG -s 10.42.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
             '-A FLANNEL-POSTRTG ! -s 10.42.0.0/16 -d 10.42.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully'],
        filter_chains=[*kp.filter_chains, *fl_chains[:1]],
        filter_rules=[*kp.filter_hooks, '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
                      *kp.filter,
                      '-A FLANNEL-FWD -s 10.42.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
                      '-A FLANNEL-FWD -d 10.42.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT'])
    spec = NodeSpec(
        name, nics=[("ens18", "10.30.8.13/24")], bridges=[("cni0", "10.42.3.1/24")],
        vxlans=[("flannel.1", 1, 8472, "10.42.3.0/32", "ens18")],
        pods=[PodSpec("veth7a1e52c0", "10.42.3.4/24", "cni0"),
              PodSpec("veth3c09d8f1", "10.42.3.7/24", "cni0"),
              PodSpec("vethe45b0a93", "10.42.3.12/24", "cni0")],
        routes=["default via 10.30.8.1 dev ens18 proto static",
                "10.42.0.0/24 via 10.42.0.0 dev flannel.1 onlink",
                "10.42.1.0/24 via 10.42.1.0 dev flannel.1 onlink",
                "10.42.2.0/24 via 10.42.2.0 dev flannel.1 onlink"],
        sysctls={"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "0",
                 "net.bridge.bridge-nf-call-ip6tables": "0"},
        rules=text)
    emit(spec, "brnf-off", "b10-brnf-flannel")


# -- C25: hairpin off on a kubenet-style bridge (cbr0) ----------------------------------------

C25_SVCS = [
    Svc("default", "kubernetes", "10.0.0.1", 443, port_name="https",
        endpoints=[("10.128.0.2", 6443, "gke-ctrl")]),
    Svc("kube-system", "kube-dns", "10.0.0.10", 53, "udp", "dns",
        endpoints=[("10.4.1.3", 53, "aks-pool1-31337-vmss000001")]),
    Svc("store", "catalog", "10.0.171.239", 80, port_name="http",
        endpoints=[("10.4.0.12", 8080, "aks-pool1-31337-vmss000000"),
                   ("10.4.1.15", 8080, "aks-pool1-31337-vmss000001")]),
]


@case
def hairpin() -> None:
    name = "aks-pool1-31337-vmss000000"
    kp = rules(C25_SVCS, style="1.28", node=name, cluster_cidr="10.4.0.0/16")
    text = restore_text(nat_chains=kp.nat_chains, nat=[
        *kp.nat, "-A POSTROUTING ! -d 10.0.0.0/8 -m comment --comment \"kubenet: SNAT for "
        "outbound traffic from cluster\" -m addrtype ! --dst-type LOCAL -j MASQUERADE"],
        filter_chains=kp.filter_chains, filter_rules=[*kp.filter_hooks, *kp.filter])
    spec = NodeSpec(
        name, nics=[("eth0", "10.240.0.4/16")], bridges=[("cbr0", "10.4.0.1/24")],
        pods=[PodSpec("veth2a6f13bd", "10.4.0.12/24", "cbr0", hairpin=False),
              PodSpec("veth9c0e7712", "10.4.0.14/24", "cbr0", hairpin=False)],
        routes=["default via 10.240.0.1 dev eth0 proto dhcp src 10.240.0.4 metric 100"],
        sysctls={"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"},
        rules=text, extras={"bridge-d-link.txt": "bridge-link.txt"})
    emit(spec, "hairpin")




# -- C18: kube-proxy without clusterCIDR on Vagrant nodes (identical NAT address on eth0) -------

C18_SVCS = [
    Svc("default", "kubernetes", "10.96.0.1", 443, port_name="https",
        endpoints=[("192.168.50.10", 6443, "kmaster")]),
    Svc("kube-system", "kube-dns", "10.96.0.10", 53, "udp", "dns",
        endpoints=[("10.244.0.2", 53, "kmaster"), ("10.244.0.3", 53, "kmaster")]),
]


def _vagrant(name: str, ip: str, n: int) -> NodeSpec:
    kp = rules(C18_SVCS, style="1.18", node=name, cluster_cidr=None)
    text = restore_text(nat_chains=kp.nat_chains,
                        nat=[*kp.nat, *flannel_masq("10.244.0.0/16", f"10.244.{n}.0/24")],
                        filter_chains=kp.filter_chains,
                        filter_rules=[*kp.filter_hooks, *kp.filter,
                                      "-A FORWARD -s 10.244.0.0/16 -j ACCEPT",
                                      "-A FORWARD -d 10.244.0.0/16 -j ACCEPT"])
    routes = ["default via 10.0.2.2 dev eth0 proto dhcp src 10.0.2.15 metric 100"]
    for other in (0, 1):
        if other != n:
            routes.append(f"10.244.{other}.0/24 via 10.244.{other}.0 dev flannel.1 onlink")
    return NodeSpec(
        name, nics=[("eth0", "10.0.2.15/24"), ("eth1", f"{ip}/24")],
        bridges=[("cni0", f"10.244.{n}.1/24")],
        vxlans=[("flannel.1", 1, 8472, f"10.244.{n}.0/32", "eth1")],
        pods=[PodSpec(f"veth{n}a41c07e", f"10.244.{n}.2/24", "cni0")],
        routes=routes, sysctls={"net.ipv4.ip_forward": "1"}, rules=text)


@case
def no_cluster_cidr() -> None:
    emit(_vagrant("kmaster", "192.168.50.10", 0), "no-cluster-cidr")
    emit(_vagrant("knode1", "192.168.50.11", 1), "no-cluster-cidr")


# -- C18b: kube-proxy clusterCIDR 10.244.0.0/16, Calico pool 192.168.0.0/16 --------------------

C18B_SVCS = [
    Svc("default", "kubernetes", "10.96.0.1", 443, port_name="https",
        endpoints=[("172.31.40.10", 6443, "cp-a")]),
    Svc("kube-system", "kube-dns", "10.96.0.10", 53, "udp", "dns",
        endpoints=[("192.168.84.130", 53, "cp-a"), ("192.168.171.66", 53, "worker-b")]),
    Svc("billing", "ledger", "10.98.140.3", 5432, endpoints=[("192.168.84.140", 5432, "cp-a")]),
]


@case
def wrong_cluster_cidr() -> None:
    name = "worker-b"
    kp = rules(C18B_SVCS, style="1.28", node=name, cluster_cidr="10.244.0.0/16")
    nat = [*kp.nat,
           '-A POSTROUTING -m comment --comment "cali:O3lYWMrLQYEMJtB5" -j cali-POSTROUTING',
           '-A cali-POSTROUTING -m comment --comment "cali:Z-c7XtVd2Bq7s_hA" -j cali-fip-snat',
           '-A cali-POSTROUTING -m comment --comment "cali:nYKhEzDlr11Jccal" -j cali-nat-outgoing',
           '-A cali-nat-outgoing -m comment --comment "cali:flqWnvo8yq4ULQLa" -m set '
           "--match-set cali40masq-ipam-pools src -m set ! --match-set cali40all-ipam-pools dst "
           "-j MASQUERADE --random-fully"]
    text = restore_text(nat_chains=[*kp.nat_chains, "cali-POSTROUTING", "cali-fip-snat",
                                    "cali-nat-outgoing"], nat=nat,
                        filter_chains=kp.filter_chains,
                        filter_rules=[*kp.filter_hooks, *kp.filter])
    spec = NodeSpec(
        name, nics=[("ens5", "172.31.40.22/20")],
        vxlans=[("vxlan.calico", 4096, 4789, "192.168.171.64/32", "ens5")],
        pods=[PodSpec("cali3f1b0c9d2e4", "192.168.171.66/32"),
              PodSpec("cali8e07a65b14c", "192.168.171.70/32")],
        routes=["default via 172.31.32.1 dev ens5 proto dhcp src 172.31.40.22 metric 100",
                "192.168.84.128/26 via 192.168.84.128 dev vxlan.calico onlink",
                "blackhole 192.168.171.64/26 proto 80",
                "192.168.171.66 dev cali3f1b0c9d2e4 scope link",
                "192.168.171.70 dev cali8e07a65b14c scope link"],
        sysctls={"net.ipv4.ip_forward": "1"}, rules=text,
        ipsets=[("cali40masq-ipam-pools", "hash:net"), ("cali40all-ipam-pools", "hash:net")])
    emit(spec, "wrong-cluster-cidr", "c18-calico-pool-mismatch")


# -- C26: externalTrafficPolicy Local, endpoint only on one node (EKS-like, VPC CNI) ----------

C26_SVCS = [
    Svc("default", "kubernetes", "172.20.0.1", 443, port_name="https",
        endpoints=[("10.0.1.200", 443, "eks-cp"), ("10.0.2.200", 443, "eks-cp")]),
    Svc("ingress-nginx", "ingress-nginx-controller", "172.20.61.9", 443, port_name="https",
        endpoints=[("10.0.1.140", 443, "ip-10-0-1-17.ec2.internal")], node_port=31443,
        etp_local=True),
]


def _eks(name: str, ip: str, pod_ip: str, pod_if: str) -> NodeSpec:
    kp = rules(C26_SVCS, style="1.28", node=name, cluster_cidr="10.0.0.0/16")
    text = restore_text(nat_chains=[*kp.nat_chains, "AWS-SNAT-CHAIN-0"], nat=[
        *kp.nat, '-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0',
        '-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN',
        '-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! '
        f"--dst-type LOCAL -j SNAT --to-source {ip} --random-fully"],
        filter_chains=kp.filter_chains, filter_rules=[*kp.filter_hooks, *kp.filter])
    sub = ip.rsplit(".", 1)[0]
    return NodeSpec(
        name, nics=[("eth0", f"{ip}/24")], pods=[PodSpec(pod_if, f"{pod_ip}/32")],
        routes=[f"default via {sub}.1 dev eth0", f"{pod_ip} dev {pod_if} scope link"],
        sysctls={"net.ipv4.ip_forward": "1"}, rules=text)


@case
def etp_local() -> None:
    emit(_eks("ip-10-0-1-17.ec2.internal", "10.0.1.17", "10.0.1.140", "eni3c8d1f2a6b0"),
         "etp-local", "c26-etp-local-eks")
    emit(_eks("ip-10-0-2-33.ec2.internal", "10.0.2.33", "10.0.2.91", "eni9a0b7e44c12"),
         "etp-local", "c26-etp-local-eks")


# -- C28: hostPort on a Calico node whose conflist lost the portmap plugin --------------------

C28_SVCS = [Svc("default", "kubernetes", "10.96.0.1", 443, port_name="https",
                endpoints=[("10.20.0.10", 6443, "lab-cp")])]


@case
def hostport() -> None:
    name = "lab-w2"
    kp = rules(C28_SVCS, style="1.28", node=name, cluster_cidr="10.85.0.0/16")
    text = restore_text(nat_chains=kp.nat_chains, nat=kp.nat, filter_chains=kp.filter_chains,
                        filter_rules=[*kp.filter_hooks, *kp.filter])
    spec = NodeSpec(
        name, nics=[("enp1s0", "10.20.0.12/24")],
        vxlans=[("vxlan.calico", 4096, 4789, "10.85.27.192/32", "enp1s0")],
        pods=[PodSpec("cali0d3f6e21a9b", "10.85.27.197/32")],
        routes=["default via 10.20.0.1 dev enp1s0 proto static",
                "10.85.27.197 dev cali0d3f6e21a9b scope link",
                "10.85.150.64/26 via 10.85.150.64 dev vxlan.calico onlink"],
        sysctls={"net.ipv4.ip_forward": "1"}, rules=text)
    emit(spec, "hostport")




# -- C24: localhost NodePort with route_localnet reset to 0 by a hardening profile -------------

C24_SVCS = [
    Svc("default", "kubernetes", "10.233.0.1", 443, port_name="https",
        endpoints=[("10.30.0.11", 6443, "kube-ctl-1")]),
    Svc("web", "nginx", "10.233.17.4", 80, port_name="http",
        endpoints=[("10.233.96.12", 80, "kube-node-3")], node_port=30080),
]


@case
def localhost_nodeport() -> None:
    name = "kube-node-2"
    kp = rules(C24_SVCS, style="1.28", node=name, cluster_cidr="10.233.64.0/18")
    text = restore_text(nat_chains=kp.nat_chains, nat=kp.nat, filter_chains=kp.filter_chains,
                        filter_rules=[*kp.filter_hooks, *kp.filter])
    spec = NodeSpec(
        name, nics=[("ens3", "10.30.0.22/24")],
        vxlans=[("vxlan.calico", 4096, 4789, "10.233.75.0/32", "ens3")],
        pods=[PodSpec("cali9b1e2f07c33", "10.233.75.8/32")],
        routes=["default via 10.30.0.1 dev ens3 proto static",
                "10.233.75.8 dev cali9b1e2f07c33 scope link",
                "10.233.96.0/24 via 10.233.96.0 dev vxlan.calico onlink"],
        sysctls={"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.route_localnet": "0"},
        rules=text)
    emit(spec, "localhost-nodeport")


# -- C22: IPVS mode; a Service externalIP equal to the NFS server on the node LAN -------------

@case
def ipvs_capture() -> None:
    name = "k8s-ipvs-w3"
    nat_chains = ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-NODE-PORT",
                  "KUBE-LOAD-BALANCER"]
    nat = ['-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
           '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
           '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
           "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
           '-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip '
           'for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE',
           "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
           "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
           '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
           "-j MASQUERADE --random-fully",
           '-A KUBE-SERVICES -s 127.0.0.0/8 -m comment --comment "Kubernetes service cluster ip + '
           'port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ',
           '-A KUBE-SERVICES ! -s 10.233.64.0/18 -m comment --comment "Kubernetes service cluster '
           'ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j '
           "KUBE-MARK-MASQ",
           '-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port for '
           'masquerade and filter purpose" -m set --match-set KUBE-EXTERNAL-IP dst,dst -j '
           "KUBE-MARK-MASQ",
           '-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT',
           '-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT',
           '-A KUBE-SERVICES -m set --match-set KUBE-EXTERNAL-IP dst,dst -j ACCEPT']
    filt_chains = ["KUBE-FIREWALL", "KUBE-FORWARD", "KUBE-IPVS-FILTER", "KUBE-PROXY-FIREWALL",
                   "KUBE-SOURCE-RANGES-FIREWALL", "KUBE-NODE-PORT"]
    filt = ['-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER',
            '-A INPUT -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL',
            '-A INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT',
            "-A INPUT -j KUBE-FIREWALL",
            '-A FORWARD -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL',
            '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
            "-A OUTPUT -j KUBE-FIREWALL",
            '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming '
            'localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
            "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
            '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark '
            "0x4000/0x4000 -j ACCEPT",
            '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m '
            "conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN",
            "-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN",
            "-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN",
            "-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN",
            "-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN",
            "-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst "
            "-j REJECT --reject-with icmp-port-unreachable",
            '-A KUBE-SOURCE-RANGES-FIREWALL -j DROP']
    text = restore_text(nat_chains=nat_chains, nat=nat, filter_chains=filt_chains,
                        filter_rules=filt)
    sets = [("KUBE-LOOP-BACK", "hash:ip,port,ip"), ("KUBE-CLUSTER-IP", "hash:ip,port"),
            ("KUBE-EXTERNAL-IP", "hash:ip,port"), ("KUBE-EXTERNAL-IP-LOCAL", "hash:ip,port"),
            ("KUBE-LOAD-BALANCER", "hash:ip,port"), ("KUBE-HEALTH-CHECK-NODE-PORT", "bitmap:port range 0-65535"),
            ("KUBE-IPVS-IPS", "hash:ip")]
    spec = NodeSpec(
        name, nics=[("ens192", "10.10.20.23/24")],
        vxlans=[("vxlan.calico", 4096, 4789, "10.233.110.0/32", "ens192")],
        down_addr_links=[("kube-ipvs0", ["10.233.0.1/32", "10.233.0.3/32", "10.233.21.90/32",
                                         "10.10.20.5/32"])],
        pods=[PodSpec("calia71f0e9c2d4", "10.233.110.14/32")],
        routes=["default via 10.10.20.1 dev ens192 proto static",
                "10.233.110.14 dev calia71f0e9c2d4 scope link",
                "10.233.105.0/24 via 10.233.105.0 dev vxlan.calico onlink"],
        sysctls={"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.route_localnet": "1"},
        rules=text, ipsets=sets)
    emit(spec, "ipvs-capture", "c22-ipvs-externalip-nfs")




# -- B16: Kubernetes 1.14 kube-proxy (no INVALID drop) on a flannel node -----------------------

B16_SVCS = [
    Svc("default", "kubernetes", "10.96.0.1", 443, port_name="https",
        endpoints=[("10.8.0.2", 6443, "node-01")]),
    Svc("media", "minio", "10.101.44.9", 9000, endpoints=[("10.244.1.30", 9000, "node-02")]),
]


@case
def invalid_rst() -> None:
    name = "node-04"
    kp = rules(B16_SVCS, style="1.12", node=name, cluster_cidr="10.244.0.0/16")
    text = restore_text(nat_chains=kp.nat_chains,
                        nat=[*kp.nat, *flannel_masq("10.244.0.0/16", "10.244.3.0/24")],
                        filter_chains=kp.filter_chains,
                        filter_rules=[*kp.filter_hooks, *kp.filter,
                                      "-A FORWARD -s 10.244.0.0/16 -j ACCEPT",
                                      "-A FORWARD -d 10.244.0.0/16 -j ACCEPT"])
    spec = NodeSpec(
        name, nics=[("eno1", "10.8.0.5/24")], bridges=[("cni0", "10.244.3.1/24")],
        vxlans=[("flannel.1", 1, 8472, "10.244.3.0/32", "eno1")],
        pods=[PodSpec("veth1b2c3d4e", "10.244.3.18/24", "cni0")],
        routes=["default via 10.8.0.1 dev eno1 proto static",
                "10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink",
                "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink",
                "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"],
        sysctls={"net.ipv4.ip_forward": "1"}, rules=text)
    emit(spec, "invalid-rst")


# -- C20: an LXD container node where kube-proxy never programmed anything ---------------------

@case
def kube_proxy_down() -> None:
    name = "lxd-k8s-2"
    text = restore_text(nat_chains=["CILIUM_POST_nat", "CILIUM_OUTPUT_nat", "CILIUM_PRE_nat"],
                        nat=['-A PREROUTING -m comment --comment "cilium-feeder: CILIUM_PRE_nat" -j CILIUM_PRE_nat',
                             '-A OUTPUT -m comment --comment "cilium-feeder: CILIUM_OUTPUT_nat" -j CILIUM_OUTPUT_nat',
                             '-A POSTROUTING -m comment --comment "cilium-feeder: CILIUM_POST_nat" -j CILIUM_POST_nat',
                             '-A CILIUM_POST_nat -s 10.0.1.0/24 ! -d 10.0.0.0/8 ! -o cilium_+ -m comment --comment "cilium masquerade non-cluster" -j MASQUERADE'],
                        filter_chains=["CILIUM_FORWARD", "CILIUM_INPUT", "CILIUM_OUTPUT"],
                        filter_rules=['-A INPUT -m comment --comment "cilium-feeder: CILIUM_INPUT" -j CILIUM_INPUT',
                                      '-A FORWARD -m comment --comment "cilium-feeder: CILIUM_FORWARD" -j CILIUM_FORWARD',
                                      '-A OUTPUT -m comment --comment "cilium-feeder: CILIUM_OUTPUT" -j CILIUM_OUTPUT',
                                      '-A CILIUM_FORWARD -o cilium_host -m comment --comment "cilium: any->cluster on cilium_host forward accept" -j ACCEPT',
                                      '-A CILIUM_FORWARD -i cilium_host -m comment --comment "cilium: cluster->any on cilium_host forward accept (nodeport)" -j ACCEPT',
                                      '-A CILIUM_FORWARD -i lxc+ -m comment --comment "cilium: cluster->any on lxc+ forward accept" -j ACCEPT'])
    spec = NodeSpec(
        name, nics=[("eth0", "10.161.37.12/24")],
        routes=["default via 10.161.37.1 dev eth0 proto dhcp src 10.161.37.12 metric 100"],
        sysctls={"net.ipv4.ip_forward": "1"}, rules=text)
    emit(spec, "kube-proxy-down")




# -- negative: Docker's FORWARD DROP on a flannel ≥ 0.10 node whose FLANNEL-FWD accepts pods --

HEALTHY_SVCS = [
    Svc("default", "kubernetes", "10.96.0.1", 443, port_name="https",
        endpoints=[("10.50.0.10", 6443, "hc-cp")]),
    Svc("kube-system", "kube-dns", "10.96.0.10", 53, "udp", "dns",
        endpoints=[("10.244.0.4", 53, "hc-cp"), ("10.244.1.6", 53, "hc-w1")]),
    Svc("web", "shop", "10.107.9.200", 80, endpoints=[("10.244.2.8", 8080, "hc-w2")],
        node_port=30480),
]


@case
def healthy() -> None:
    name = "hc-w1"
    kp = rules(HEALTHY_SVCS, style="1.28", node=name, cluster_cidr="10.244.0.0/16")
    dnat_c, dnat, dfilt_c, dfilt, pol = docker_1806("[0:0]")
    text = restore_text(
        nat_chains=[*dnat_c, *kp.nat_chains, "FLANNEL-POSTRTG"],
        nat=[*dnat, *kp.nat, '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
             '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
             '-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
             '-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
             '-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully'],
        filter_chains=[*dfilt_c, *kp.filter_chains, "FLANNEL-FWD"],
        filter_rules=[*kp.filter_hooks, '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
                      *dfilt, *kp.filter,
                      '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
                      '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT'],
        policies={"FORWARD": pol})
    spec = NodeSpec(
        name, nics=[("enp3s0", "10.50.0.11/24")],
        bridges=[("cni0", "10.244.1.1/24"), ("docker0", "172.17.0.1/16")],
        vxlans=[("flannel.1", 1, 8472, "10.244.1.0/32", "enp3s0")],
        # flannel's conflist delegates to the bridge plugin with "hairpinMode": true
        pods=[PodSpec("veth40c7a2e1", "10.244.1.6/24", "cni0", hairpin=True),
              PodSpec("vethc3f9e012", "10.244.1.9/24", "cni0", hairpin=True)],
        routes=["default via 10.50.0.1 dev enp3s0 proto static",
                "10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink",
                "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"],
        sysctls={"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"},
        rules=text, extras={"bridge-d-link.txt": "bridge-link.txt"})
    emit(spec, "healthy", "bc-healthy-flannel-docker")


def _main(argv: list[str]) -> None:
    names = argv or list(CASES)
    for name in names:
        print("building", name)
        CASES[name]()


if __name__ == "__main__":
    _main(sys.argv[1:])
