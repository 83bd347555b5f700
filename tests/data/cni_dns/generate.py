# ruff: noqa: E501  (iptables rules are written in their real width)
"""Regenerate the node outputs under tests/data/cni_dns/ from REAL commands in network namespaces.

Run as root: `python3 tests/data/cni_dns/generate.py` (needs iproute2, iptables, bridge, ethtool).
Every namespace is named `nsdd-...` and deleted at the end; no traffic is sent anywhere.

Each data set builds one namespace per "node" with the devices a CNI would create (veth, bridge,
vxlan with its real dstport/local/dev, static FDB and neighbour entries as flannel and Calico
program them, iptables rules loaded with iptables-restore) and saves what an engineer would
paste: `ip -d link show`, `ip addr show`, `ip route show`, `ip neigh show dev X`,
`bridge fdb show dev X`, `iptables-save`, `ethtool -k X`.

Not reproducible on this machine (the kernel has no ipip/dummy/geneve/wireguard modules): tunl0
(Calico IPIP), kube-ipvs0 and nodelocaldns (dummy). Tests that need them write those lines by
hand in the documented iproute2 format and say so.
"""

from __future__ import annotations

import subprocess
import sys
import zlib
from collections.abc import Sequence
from ipaddress import ip_address
from pathlib import Path

HERE = Path(__file__).resolve().parent
PREFIX = "nsdd-"
CREATED: list[str] = []


def sh(argv: Sequence[str], stdin: str | None = None) -> str:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def ns(name: str) -> str:
    full = PREFIX + name
    sh(["ip", "netns", "add", full])
    CREATED.append(full)
    sh(["ip", "-n", full, "link", "set", "lo", "up"])
    return full


def ip(netns: str, *args: str) -> str:
    return sh(["ip", "-n", netns, *args])


def ex(netns: str, *args: str, stdin: str | None = None) -> str:
    return sh(["ip", "netns", "exec", netns, *args], stdin=stdin)


def mac(netns: str, dev: str) -> str:
    out = ip(netns, "-br", "link", "show", dev).split()
    return out[2]


def uplink(node: str, dev: str, switch: str, tag: str, mtu: int = 1500) -> None:
    """`dev` in `node` is one end of a veth whose other end sits in `switch`'s bridge br0."""
    peer = f"p{tag}"[:15]
    sh(["ip", "link", "add", dev, "netns", node, "mtu", str(mtu), "type", "veth", "peer", "name",
        peer, "netns", switch, "mtu", str(mtu)])
    ip(switch, "link", "set", peer, "master", "br0")
    ip(switch, "link", "set", peer, "up")
    ip(node, "link", "set", dev, "up")


def switch(name: str) -> str:
    s = ns(name)
    ip(s, "link", "add", "br0", "type", "bridge")
    ip(s, "link", "set", "br0", "up")
    return s


def pod(node: str, podns: str, host_if: str, addr: str, mtu: int, *, bridge: str | None,
        gateway: str | None = None) -> None:
    """A pod: veth `host_if` in the node (on `bridge`, or routed /32 as Calico/Cilium do)."""
    p = ns(podns)
    sh(["ip", "link", "add", host_if, "netns", node, "mtu", str(mtu), "type", "veth", "peer", "name",
        "eth0", "netns", p, "mtu", str(mtu)])
    ip(p, "addr", "add", addr, "dev", "eth0")
    ip(p, "link", "set", "eth0", "up")
    ip(node, "link", "set", host_if, "up")
    if bridge:
        ip(node, "link", "set", host_if, "master", bridge)
        if gateway:
            ip(p, "route", "add", "default", "via", gateway)
    else:
        pod_ip = addr.split("/")[0]
        ip(node, "route", "add", pod_ip, "dev", host_if, "scope", "link")
        ip(p, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
        ip(p, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")


def save(dataset: str, node: str, files: dict[str, str]) -> None:
    out = HERE / dataset / node
    out.mkdir(parents=True, exist_ok=True)
    for fname, text in files.items():
        (out / fname).write_text(text)


def kube_proxy(services: Sequence[tuple[str, str, str, str, int, Sequence[str]]], cidr: str) -> str:
    """kube-proxy's rules for (ns, name, port name, proto, ip:port, endpoints), as the project
    rebuilds them (same chain hashing as kube-proxy)."""
    sys.path.insert(0, str(HERE.parents[2] / "src"))
    from netsleuth.diagnose.kube_proxy_rules import ServicePortView, kube_proxy_rules

    views = []
    for namespace, name, pname, proto, ipport, eps in services:
        cip, port = ipport.rsplit(":", 1)
        views.append(ServicePortView(namespace, name, pname, proto, ip_address(cip), int(port),
                                     tuple(eps)))
    return kube_proxy_rules(views, cidr)


def merge_save(*texts: str) -> str:
    """One iptables-restore input from several iptables-save texts (chains and rules of each
    table concatenated in order)."""
    tables: dict[str, tuple[list[str], list[str]]] = {}
    for text in texts:
        current = None
        for line in text.splitlines():
            if line.startswith("*"):
                current = tables.setdefault(line[1:].strip(), ([], []))
            elif line.startswith(":") and current is not None:
                name = line[1:].split()[0]
                if not any(c[1:].split()[0] == name for c in current[0]):
                    current[0].append(line)
            elif line.startswith(("-A", "-I")) and current is not None:
                current[1].append(line)
    out: list[str] = []
    for table, (chains, rules) in tables.items():
        out += [f"*{table}", *chains, *rules, "COMMIT"]
    return "\n".join(out) + "\n"


def flannel_rules(network: str, subnet: str) -> str:
    return f"""*nat
:POSTROUTING ACCEPT [0:0]
:FLANNEL-POSTRTG - [0:0]
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s {subnet} -d {network} -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s {network} -d {subnet} -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG ! -s {network} -d {subnet} -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s {network} ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A FLANNEL-POSTRTG ! -s {network} -d {network} -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
COMMIT
*filter
:FORWARD ACCEPT [0:0]
:FLANNEL-FWD - [0:0]
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A FLANNEL-FWD -s {network} -m comment --comment "flanneld forward" -j ACCEPT
-A FLANNEL-FWD -d {network} -m comment --comment "flanneld forward" -j ACCEPT
COMMIT
"""


def capture(node: str, *, tunnel: str | None = None, route_all: bool = False) -> dict[str, str]:
    files = {
        "ip-link.txt": ip(node, "-d", "link", "show"),
        "ip-addr.txt": ip(node, "addr", "show"),
        "ip-route.txt": ip(node, "route", "show", *(("table", "all") if route_all else ())),
        "iptables-save.txt": ex(node, "iptables-save"),
    }
    if tunnel:
        files["ip-neigh.txt"] = ip(node, "neigh", "show", "dev", tunnel)
        files["bridge-fdb.txt"] = sh(["bridge", "-n", node, "fdb", "show", "dev", tunnel])
        files["ethtool-k.txt"] = ex(node, "ethtool", "-k", tunnel)
    return files


# --- data sets ---------------------------------------------------------------------------------


def flannel_cluster(dataset: str, tag: str, names: Sequence[str], nic: str, lan: str, network: str,
                    *, nat_nic: str | None = None, mtu: int = 1500, firewall: dict[str, str] | None = None,
                    kube: str | None = None, lower_mtu_after: int | None = None,
                    no_kube_proxy: Sequence[str] = (), mac_rewrite: str | None = None,
                    stale_cni0: dict[str, int] | None = None) -> None:
    """Flannel VXLAN nodes. With `nat_nic`, every node also has the Vagrant NAT NIC 10.0.2.15/24
    and flannel bound to it (the wrong interface): VTEP local and peers' FDB dst 10.0.2.15."""
    sw = switch(f"{tag}-sw")
    net_prefix = network.split(".")[0] + "." + network.split(".")[1]
    nodes: list[tuple[str, str, str, str]] = []  # (node name, netns, node ip, subnet)
    for i, name in enumerate(names):
        n = ns(f"{tag}-{i}")
        node_ip = lan.format(10 + i)
        subnet = f"{net_prefix}.{i}.0/24"
        uplink(n, nic, sw, f"{tag}{i}", mtu)
        ip(n, "addr", "add", f"{node_ip}/24", "dev", nic)
        vtep_ip, vtep_dev = node_ip, nic
        if nat_nic:
            nat = ns(f"{tag}-nat{i}")
            ip(nat, "link", "add", "br0", "type", "bridge")
            ip(nat, "link", "set", "br0", "up")
            uplink(n, nat_nic, nat, f"n{tag}{i}")
            ip(nat, "addr", "add", "10.0.2.2/24", "dev", "br0")
            ip(n, "addr", "add", "10.0.2.15/24", "dev", nat_nic, "metric", "100")
            ip(n, "route", "add", "default", "via", "10.0.2.2", "dev", nat_nic, "proto", "dhcp",
               "src", "10.0.2.15", "metric", "100")
            vtep_ip, vtep_dev = "10.0.2.15", nat_nic
        else:
            ip(n, "route", "add", "default", "via", lan.format(1), "dev", nic, "proto", "static")
        ip(n, "link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", vtep_ip, "dev",
           vtep_dev, "nolearning", "dstport", "8472")
        ip(n, "addr", "add", f"{net_prefix}.{i}.0/32", "dev", "flannel.1")
        ip(n, "link", "set", "flannel.1", "up")
        vx_mtu = int(ip(n, "link", "show", "flannel.1").split(" mtu ")[1].split()[0])
        ip(n, "link", "add", "cni0", "type", "bridge")
        ip(n, "link", "set", "cni0", "mtu", str(vx_mtu))
        # A node re-joined with a new podCIDR keeps the bridge of its old one (mode 39).
        cni_idx = (stale_cni0 or {}).get(name, i)
        ip(n, "addr", "add", f"{net_prefix}.{cni_idx}.1/24", "dev", "cni0")
        ip(n, "link", "set", "cni0", "up")
        for j in (2, 3):
            if name in (stale_cni0 or {}):
                break  # no pod gets an address there: the bridge plugin fails
            pod(n, f"{tag}-{i}p{j}", f"veth{zlib.crc32(f'{name}{j}'.encode()):08x}",
                f"{net_prefix}.{i}.{j}/24", vx_mtu, bridge="cni0", gateway=f"{net_prefix}.{i}.1")
        if lower_mtu_after:
            ip(n, "link", "set", nic, "mtu", str(lower_mtu_after))
        nodes.append((name, n, node_ip if not nat_nic else "10.0.2.15", subnet))
    for _name, n, _, _subnet in nodes:
        for _other, o, pub, osub in nodes:
            if o == n:
                continue
            omac = mac(o, "flannel.1")
            oidx = osub.split(".")[2]
            ip(n, "route", "add", osub, "via", f"{net_prefix}.{oidx}.0", "dev", "flannel.1", "onlink")
            ip(n, "neigh", "add", f"{net_prefix}.{oidx}.0", "lladdr", omac, "dev", "flannel.1",
               "nud", "permanent")
            sh(["bridge", "-n", n, "fdb", "append", omac, "dev", "flannel.1", "dst", pub])
    for name, n, _, _subnet in nodes:
        if name == mac_rewrite:
            # systemd's MACAddressPolicy=persistent gives flannel.1 a new MAC after flanneld
            # published the old one; the peers keep the old one in their neighbour/FDB tables.
            ip(n, "link", "set", "flannel.1", "address", "6e:3a:51:0c:9d:27")
    for name, n, _, subnet in nodes:
        rules = [flannel_rules(network, subnet)]
        if kube and name not in no_kube_proxy:
            rules.insert(0, kube)
        if firewall and name in firewall:
            rules.append(firewall[name])
        ex(n, "iptables-restore", stdin=merge_save(*rules))
        save(dataset, name, capture(n, tunnel="flannel.1"))


BR = "br-4f1c2d9e8a7b"

# The part of felix's iptables that pod egress meets (Calico v3.27, iptables dataplane).
CALICO_FELIX = """*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:cali-POSTROUTING - [0:0]
:cali-fip-snat - [0:0]
:cali-nat-outgoing - [0:0]
-A POSTROUTING -m comment --comment "cali:O3lYWMrLQYEMJtB5" -j cali-POSTROUTING
-A cali-POSTROUTING -m comment --comment "cali:Z-c7XtVd2Bq7s_hA" -j cali-fip-snat
-A cali-POSTROUTING -m comment --comment "cali:nYKhEzDlr11Jccal" -j cali-nat-outgoing
{natout}COMMIT
*filter
:FORWARD ACCEPT [0:0]
:cali-FORWARD - [0:0]
-A FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" -j cali-FORWARD
-A cali-FORWARD -i cali+ -m comment --comment "cali:8ZoYfO5HKXWbB3pk" -j ACCEPT
-A cali-FORWARD -o cali+ -m comment --comment "cali:jdEuaPBe14V2hutn" -j ACCEPT
COMMIT
"""

IPTABLES_SERVICES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT
{extra}-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A FORWARD -j REJECT --reject-with icmp-host-prohibited
COMMIT
"""


def calico_cluster(dataset: str, tag: str, names: Sequence[str], nic: str, lan: str, block_prefix: str,
                   *, mode: str, docker0_bind: bool = False, firewall: dict[str, str] | None = None,
                   mtu: int = 1500, veth_mtu: int | None = None, kube: str | None = None,
                   calico_rules: str | None = None) -> None:
    """Calico nodes: `mode` "vxlan" (vxlan.calico, VNI 4096, port 4789, routes proto 80) or
    "bgp" (no encapsulation, routes `proto bird` via the peer's address). With `docker0_bind`,
    every node also has a docker-compose bridge (br-..., 172.18.0.1/16) and Calico's
    first-found autodetection took it: vxlan.calico's local address and the peers' FDB entries
    are 172.18.0.1."""
    sw = switch(f"{tag}-sw")
    nodes: list[tuple[str, str, str, str]] = []
    for i, name in enumerate(names):
        n = ns(f"{tag}-{i}")
        node_ip = lan.format(11 + i)
        uplink(n, nic, sw, f"{tag}{i}", mtu)
        ip(n, "addr", "add", f"{node_ip}/24", "dev", nic)
        ip(n, "route", "add", "default", "via", lan.format(1), "dev", nic, "proto", "static",
           "metric", "100")
        block = f"{block_prefix}.{i * 64}"
        advertised = node_ip
        if docker0_bind:
            # A docker-compose network: same name pattern and the same default subnet
            # (172.18.0.0/16, the first user-defined network) on every host.
            ip(n, "link", "add", BR, "type", "bridge")
            ip(n, "addr", "add", "172.18.0.1/16", "dev", BR)
            ip(n, "link", "set", BR, "up")
            advertised = "172.18.0.1"
        if mode == "vxlan":
            args = ["link", "add", "vxlan.calico", "type", "vxlan", "id", "4096", "local", advertised,
                    "dev", BR if docker0_bind else nic, "nolearning", "dstport", "4789"]
            ip(n, *args)
            ip(n, "addr", "add", f"{block}/32", "dev", "vxlan.calico")
            ip(n, "link", "set", "vxlan.calico", "up")
        ip(n, "route", "add", "blackhole", f"{block}/26", "proto", "80" if mode == "vxlan" else "bird")
        vmtu = veth_mtu or (mtu - 50 if mode == "vxlan" else mtu)
        for j in (3, 4):
            pod(n, f"{tag}-{i}p{j}", f"cali{zlib.crc32(f'{name}/{j}'.encode()):08x}{i}{j}e"[:15],
                f"{block_prefix}.{i * 64 + j}/32", vmtu, bridge=None)
        nodes.append((name, n, advertised, block))
    for name, n, _, _block in nodes:
        for other, o, adv, oblock in nodes:
            if o == n:
                continue
            if mode == "vxlan":
                omac = mac(o, "vxlan.calico")
                ip(n, "neigh", "add", oblock, "lladdr", omac, "dev", "vxlan.calico", "nud", "permanent")
                sh(["bridge", "-n", n, "fdb", "add", omac, "dev", "vxlan.calico", "dst", adv])
                ip(n, "route", "add", f"{oblock}/26", "via", oblock, "dev", "vxlan.calico", "onlink",
                   "proto", "80")
            elif not _bgp_down(name, other, nodes, firewall or {}):
                ip(n, "route", "add", f"{oblock}/26", "via", adv, "dev", nic, "proto", "bird")
    for name, n, _, _block in nodes:
        rules = []
        if calico_rules:
            # felix's ipsets: the IPAM pools (what natOutgoing masquerades from).
            for setname in ("cali40masq-ipam-pools", "cali40all-ipam-pools"):
                ex(n, "ipset", "create", setname, "hash:net", "family", "inet")
                ex(n, "ipset", "add", setname, f"{block_prefix}.0/24")
            rules.append(calico_rules)
        if kube:
            rules.append(kube)
        if firewall and name in firewall:
            rules.append(firewall[name])
        if rules:
            ex(n, "iptables-restore", stdin=merge_save(*rules))
        save(dataset, name, capture(n, tunnel="vxlan.calico" if mode == "vxlan" else None))


def _bgp_down(a: str, b: str, nodes: Sequence[tuple[str, str, str, str]],
              firewall: dict[str, str]) -> bool:
    """Calico's node-to-node mesh is unidirectional: the node with the higher address connects
    to the lower one (bird template: `passive on` towards higher peers). A node whose firewall
    rejects 179/tcp loses exactly its sessions with higher-addressed peers, and with them the
    routes to and from their blocks."""
    addr = {name: ip_address(adv) for name, _, adv, _ in nodes}
    return any(low in firewall and addr[high] > addr[low] for low, high in ((a, b), (b, a)))


def cilium_cluster(dataset: str, tag: str, names: Sequence[str], nic: str, lan: str,
                   *, firewall: dict[str, str] | None = None, mtu: int = 1500) -> None:
    """Cilium 1.15 in tunnel mode (VXLAN, kube-proxy replacement off): cilium_vxlan in
    collect-metadata mode on port 8472, the cilium_host/cilium_net pair holding the node's
    router address, per-node pod CIDRs 10.0.N.0/24 routed via cilium_host with `mtu 1450`,
    lxc* veths for pods."""
    sw = switch(f"{tag}-sw")
    for i, name in enumerate(names):
        n = ns(f"{tag}-{i}")
        uplink(n, nic, sw, f"{tag}{i}", mtu)
        ip(n, "addr", "add", f"{lan.format(20 + i)}/24", "dev", nic)
        ip(n, "route", "add", "default", "via", lan.format(1), "dev", nic, "proto", "dhcp",
           "src", lan.format(20 + i), "metric", "1024")
        ip(n, "link", "add", "cilium_host", "type", "veth", "peer", "name", "cilium_net")
        ip(n, "link", "set", "cilium_net", "up")
        ip(n, "link", "set", "cilium_host", "up")
        router = f"10.0.{i}.{37 + i}"
        ip(n, "addr", "add", f"{router}/32", "dev", "cilium_host")
        ip(n, "link", "add", "cilium_vxlan", "type", "vxlan", "external", "dstport", "8472")
        ip(n, "link", "set", "cilium_vxlan", "up")
        for j in range(len(names)):
            if j == i:
                ip(n, "route", "add", f"10.0.{j}.0/24", "via", router, "dev", "cilium_host",
                   "proto", "kernel", "src", router)
            else:
                ip(n, "route", "add", f"10.0.{j}.0/24", "via", router, "dev", "cilium_host",
                   "proto", "kernel", "src", router, "mtu", "1450")
        for j in (101, 214):
            pod(n, f"{tag}-{i}p{j}", f"lxc{zlib.crc32(f'{name}{j}'.encode()):08x}",
                f"10.0.{i}.{j}/32", 1500, bridge=None)
        if firewall and name in firewall:
            ex(n, "iptables-restore", stdin=firewall[name])
        save(dataset, name, capture(n, route_all=False))


def main() -> None:
    try:
        # D32: Vagrant, every node's flannel on the NAT NIC eth0 (10.0.2.15), cluster NIC eth1.
        flannel_cluster("flannel_vagrant", "fv", ["k8s-cp-1", "k8s-w-1", "k8s-w-2"], "eth1",
                        "192.168.60.{}", "10.244.0.0/16", nat_nic="eth0")
        # D35/D37: CentOS 7 nodes, firewall of iptables-services on kube-node2 (no 8472/udp).
        kube = kube_proxy([
            ("default", "kubernetes", "https", "tcp", "10.254.0.1:443", ["10.10.0.10:6443"]),
            ("kube-system", "kube-dns", "dns", "udp", "10.254.0.2:53", ["172.30.0.2:53", "172.30.1.2:53"]),
            ("kube-system", "kube-dns", "dns-tcp", "tcp", "10.254.0.2:53", ["172.30.0.2:53", "172.30.1.2:53"]),
        ], "172.30.0.0/16")
        fw = IPTABLES_SERVICES.format(extra=(
            "-A INPUT -p tcp -m state --state NEW -m tcp --dport 10250 -j ACCEPT\n"
            "-A INPUT -p tcp -m state --state NEW -m tcp --dport 30000:32767 -j ACCEPT\n"))
        flannel_cluster("flannel_firewall", "ff", ["kube-master", "kube-node1", "kube-node2"], "ens33",
                        "10.10.0.{}", "172.30.0.0/16", firewall={"kube-node2": fw}, kube=kube)
        # D36: the NIC's MTU was lowered to 1400 after flannel.1 (1450) was created.
        flannel_cluster("flannel_mtu", "fm", ["node-a", "node-b"], "enp1s0", "10.77.0.{}",
                        "10.244.0.0/16", lower_mtu_after=1400)
        # E44: kube-proxy's rules missing on worker-3 (kube-proxy not running there).
        kube44 = kube_proxy([
            ("default", "kubernetes", "https", "tcp", "10.96.0.1:443", ["192.168.1.10:6443"]),
            ("kube-system", "kube-dns", "dns", "udp", "10.96.0.10:53", ["10.244.0.2:53", "10.244.0.3:53"]),
            ("kube-system", "kube-dns", "dns-tcp", "tcp", "10.96.0.10:53", ["10.244.0.2:53", "10.244.0.3:53"]),
        ], "10.244.0.0/16")
        flannel_cluster("flannel_noproxy", "fn", ["cp", "worker-1", "worker-2", "worker-3"], "ens18",
                        "192.168.1.{}", "10.244.0.0/16", kube=kube44, no_kube_proxy=["worker-3"])
        # D38: flannel.1 of gke-ish node-2 got a new MAC after a reboot (systemd link policy).
        flannel_cluster("flannel_vtep_mac", "fx", ["node-1", "node-2", "node-3"], "ens4",
                        "10.128.0.{}", "10.200.0.0/16", mac_rewrite="node-2")
        # D39: worker-b re-joined with podCIDR 10.88.1.0/24; its cni0 still has 10.88.7.1/24.
        flannel_cluster("flannel_rejoin", "fr", ["master", "worker-b"], "eth0", "192.168.50.{}",
                        "10.88.0.0/16", stale_cni0={"worker-b": 7})
        # D33: Calico VXLAN, first-found autodetection took a compose bridge (172.18.0.1) everywhere.
        calico_cluster("calico_compose_br", "cd", ["master-0", "worker-0", "worker-1"], "ens192",
                       "172.20.1.{}", "10.42.0", mode="vxlan", docker0_bind=True)
        # D34: Calico BGP (no encapsulation), k8s-node-02 rejects new connections to 179/tcp.
        fw34 = IPTABLES_SERVICES.format(extra=(
            "-A INPUT -p tcp -m state --state NEW -m tcp --dport 10250 -j ACCEPT\n"
            "-A INPUT -p tcp -m state --state NEW -m tcp --dport 9099 -j ACCEPT\n"))
        calico_cluster("calico_bgp", "cb", ["k8s-master-01", "k8s-node-02", "k8s-node-01"], "eth0",
                       "172.16.10.{}", "10.233.64", mode="bgp", firewall={"k8s-node-02": fw34})
        # D36 (Calico): OpenStack underlay 1450, vxlan.calico 1400, pods' veths left at 1450.
        calico_cluster("calico_mtu", "cm", ["os-node-1", "os-node-2"], "ens3", "10.30.0.{}",
                       "192.168.112", mode="vxlan", mtu=1450, veth_mtu=1450)
        # E43: Calico with natOutgoing false (cali-nat-outgoing empty) / true (felix's rule).
        felix = CALICO_FELIX.format(natout="")
        calico_cluster("calico_nonat", "cn", ["ip-10-0-1-11", "ip-10-0-1-12"], "ens5", "10.0.1.{}",
                       "192.168.87", mode="vxlan", calico_rules=felix)
        felix = CALICO_FELIX.format(natout=(
            '-A cali-nat-outgoing -m comment --comment "cali:flqWnvo8yq4ULQLa" -m set '
            '--match-set cali40masq-ipam-pools src -m set ! --match-set cali40all-ipam-pools dst '
            '-j MASQUERADE --random-fully\n'))
        calico_cluster("calico_natout", "co", ["ip-10-0-1-11", "ip-10-0-1-12"], "ens5",
                       "10.0.1.{}", "192.168.87", mode="vxlan", calico_rules=felix)
        # D35 (Cilium): a hardened Debian node with INPUT policy DROP and no 8472/udp.
        hardened = """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "ssh" -j ACCEPT
-A INPUT -p tcp -m tcp --dport 6443 -m comment --comment "kube-apiserver" -j ACCEPT
-A INPUT -p tcp -m tcp --dport 10250 -m comment --comment "kubelet" -j ACCEPT
-A INPUT -p tcp -m tcp --dport 4240 -m comment --comment "cilium-health" -j ACCEPT
COMMIT
"""
        cilium_cluster("cilium_hardened", "ci", ["k8s-m1", "k8s-w1", "k8s-w2"], "eth0",
                       "172.31.20.{}", firewall={"k8s-w2": hardened})
        # D36 (Cilium): vSwitch underlay of 1400; Cilium's routes still allow 1450.
        cilium_cluster("cilium_vswitch", "cv", ["hz-node-1", "hz-node-2"], "enp7s0", "10.20.0.{}",
                       mtu=1400)
        # A healthy Calico VXLAN cluster (no fault): false-alarm checks.
        calico_cluster("calico_healthy", "ch", ["cp-1", "wk-1", "wk-2"], "enp6s0", "10.50.0.{}",
                       "10.100.5", mode="vxlan")
    finally:
        for name in reversed(CREATED):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


if __name__ == "__main__":
    main()
