"""Build one Kubernetes-like node in a network namespace and dump its snapshot files.

Test-data generation only (needs root): every output is what the real tools print for the
real kernel state — `ip -j addr/link/route/rule`, `iptables-save` (nf_tables and legacy
backends), `sysctl`, `bridge -d link`. Namespaces are named with the `nsdb-` prefix and deleted
when the dump is written. No packet ever leaves the namespaces.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "nsdb-"


def sh(*args: str, stdin: str | None = None, check: bool = True) -> str:
    res = subprocess.run(list(args), input=stdin, text=True, capture_output=True, check=False)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {res.stderr.strip()}")
    return res.stdout


def ns_exec_tty(ns: str, *args: str) -> str:
    """stdout then stderr, as a terminal shows a command that warns at its end."""
    res = subprocess.run(["ip", "netns", "exec", ns, *args], text=True, capture_output=True,
                         check=False)
    return res.stdout + res.stderr


def ns_exec(ns: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
    return sh("ip", "netns", "exec", ns, *args, stdin=stdin, check=check)


@dataclass
class PodSpec:
    """A pod: a veth whose host end is `host_if` (enslaved to `bridge`, or routed like Calico's
    cali* interfaces) and whose other end sits in the pod's own namespace."""

    host_if: str
    ip: str  # "10.244.1.5/24" (bridge) or "10.200.3.7/32" (routed)
    bridge: str | None = None
    hairpin: bool = False


@dataclass
class NodeSpec:
    name: str
    nics: list[tuple[str, str]] = field(default_factory=list)  # (ifname, "ip/len")
    bridges: list[tuple[str, str | None]] = field(default_factory=list)  # (ifname, ip/len|None)
    vxlans: list[tuple[str, int, int, str | None, str]] = field(default_factory=list)
    # (ifname, vni, dstport, ip/len, underlay device)
    down_addr_links: list[tuple[str, list[str]]] = field(default_factory=list)
    # kube-ipvs0-like: a NOARP link kept down holding /32 addresses
    pods: list[PodSpec] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)  # `ip route add` arguments
    sysctls: dict[str, str] = field(default_factory=dict)
    rules: str = ""  # iptables-restore -c input (nf_tables backend)
    legacy_rules: str = ""  # iptables-legacy-restore -c input
    sysctl_keys: tuple[str, ...] = ("net.ipv4.ip_forward", "net.ipv4.conf.", "net.bridge.",
                                    "net.netfilter.nf_conntrack_max",
                                    "net.netfilter.nf_conntrack_count",
                                    "net.netfilter.nf_conntrack_tcp_be_liberal",
                                    "net.netfilter.nf_conntrack_udp_timeout")
    sysctl_drop: tuple[str, ...] = ()  # key prefixes removed (a module that is not loaded)
    extras: dict[str, str] = field(default_factory=dict)  # text/<file> → extra snapshot file
    ipsets: list[tuple[str, str]] = field(default_factory=list)  # (name, type), created empty
    pod_mtu: int | None = None  # bridges and pod veths (the CNI sets the overlay's MTU); default:
    # the first VXLAN device's MTU


def _short(name: str) -> str:
    return PREFIX + "".join(ch for ch in name if ch.isalnum())[:10]


def build_and_dump(spec: NodeSpec, outdirs: list[Path], *, text_dir: Path | None = None) -> None:
    ns = _short(spec.name)
    lan = ns + "-l"
    pod_ns: list[str] = []
    sh("ip", "netns", "del", ns, check=False)
    sh("ip", "netns", "add", ns)
    sh("ip", "netns", "del", lan, check=False)
    sh("ip", "netns", "add", lan)
    try:
        ns_exec(ns, "ip", "link", "set", "lo", "up")
        for i, (ifname, addr) in enumerate(spec.nics):
            peer = f"lan{i}"
            ns_exec(ns, "ip", "link", "add", ifname, "type", "veth", "peer", "name", peer)
            ns_exec(ns, "ip", "link", "set", peer, "netns", lan)
            ns_exec(lan, "ip", "link", "set", peer, "up")
            ns_exec(ns, "ip", "addr", "add", addr, "brd", "+", "dev", ifname)
            ns_exec(ns, "ip", "link", "set", ifname, "up")
        mtu = spec.pod_mtu or (1450 if spec.vxlans else None)
        for ifname, addr in spec.bridges:
            ns_exec(ns, "ip", "link", "add", ifname, "type", "bridge")
            if mtu and not ifname.startswith("docker"):
                ns_exec(ns, "ip", "link", "set", ifname, "mtu", str(mtu))
            if addr:
                ns_exec(ns, "ip", "addr", "add", addr, "brd", "+", "dev", ifname)
            ns_exec(ns, "ip", "link", "set", ifname, "up")
        for ifname, vni, port, addr, dev in spec.vxlans:
            ns_exec(ns, "ip", "link", "add", ifname, "type", "vxlan", "id", str(vni), "dev", dev,
                    "dstport", str(port), "nolearning")
            ns_exec(ns, "ip", "link", "set", ifname, "mtu", "1450")
            if addr:
                ns_exec(ns, "ip", "addr", "add", addr, "dev", ifname)
            ns_exec(ns, "ip", "link", "set", ifname, "up")
        for ifname, addrs in spec.down_addr_links:
            # IPVS's kube-ipvs0 is a dummy device kept down; its /32s still get local routes.
            ns_exec(ns, "ip", "link", "add", ifname, "type", "bridge")
            ns_exec(ns, "ip", "link", "set", ifname, "arp", "off")
            for a in addrs:
                ns_exec(ns, "ip", "addr", "add", a, "dev", ifname)
        for i, pod in enumerate(spec.pods):
            pns = f"{ns}-p{i}"
            pod_ns.append(pns)
            sh("ip", "netns", "del", pns, check=False)
            sh("ip", "netns", "add", pns)
            tmp = f"podtmp{i}"
            ns_exec(ns, "ip", "link", "add", pod.host_if, "type", "veth", "peer", "name", tmp)
            ns_exec(ns, "ip", "link", "set", tmp, "netns", pns)
            ns_exec(pns, "ip", "link", "set", tmp, "name", "eth0")
            if mtu:
                ns_exec(ns, "ip", "link", "set", pod.host_if, "mtu", str(mtu))
                ns_exec(pns, "ip", "link", "set", "eth0", "mtu", str(mtu))
            ns_exec(pns, "ip", "addr", "add", pod.ip, "dev", "eth0")
            ns_exec(pns, "ip", "link", "set", "eth0", "up")
            ns_exec(pns, "ip", "link", "set", "lo", "up")
            if pod.bridge:
                ns_exec(ns, "ip", "link", "set", pod.host_if, "master", pod.bridge)
                ns_exec(ns, "ip", "link", "set", pod.host_if, "type", "bridge_slave",
                        "hairpin", "on" if pod.hairpin else "off")
            ns_exec(ns, "ip", "link", "set", pod.host_if, "up")
        for route in spec.routes:
            ns_exec(ns, "ip", "route", "add", *route.split())
        # kube-proxy (iptables mode) turns route_localnet on at start.
        sysctls = {"net.ipv4.conf.all.route_localnet": "1", **spec.sysctls}
        for key, value in sysctls.items():
            ns_exec(ns, "sysctl", "-q", "-w", f"{key}={value}")
        for set_name, set_type in spec.ipsets:
            ns_exec(ns, "ipset", "create", set_name, *set_type.split())
        if spec.rules:
            ns_exec(ns, "iptables-restore", "-c", stdin=spec.rules)
        if spec.legacy_rules:
            ns_exec(ns, "iptables-legacy-restore", "-c", stdin=spec.legacy_rules)
        files = _dump(ns, spec)
        for out in outdirs:
            out.mkdir(parents=True, exist_ok=True)
            for fname, text in files.items():
                if not fname.startswith("text/"):
                    (out / fname).write_text(text)
            for src, dst in spec.extras.items():
                (out / dst).write_text(files["text/" + src])
        if text_dir is not None:
            text_dir.mkdir(parents=True, exist_ok=True)
            for fname, text in files.items():
                if fname.startswith("text/"):
                    (text_dir / fname.removeprefix("text/")).write_text(text)
    finally:
        for pns in pod_ns:
            sh("ip", "netns", "del", pns, check=False)
        sh("ip", "netns", "del", lan, check=False)
        sh("ip", "netns", "del", ns, check=False)


def _pretty_json(text: str) -> str:
    return json.dumps(json.loads(text), indent=2) + "\n"


def _dump(ns: str, spec: NodeSpec) -> dict[str, str]:
    out: dict[str, str] = {"hostname": spec.name + "\n"}
    out["ip-addr.json"] = _pretty_json(ns_exec(ns, "ip", "-j", "addr", "show"))
    out["ip-link.json"] = _pretty_json(ns_exec(ns, "ip", "-j", "link", "show"))
    out["ip-route.json"] = _pretty_json(ns_exec(ns, "ip", "-j", "route", "show", "table", "all"))
    out["ip-rule.json"] = _pretty_json(ns_exec(ns, "ip", "-j", "rule", "show"))
    save = ns_exec(ns, "iptables-save")
    out["iptables-save.txt"] = save
    sysctl = []
    for line in ns_exec(ns, "sysctl", "-a", check=False).splitlines():
        key = line.split(" = ", 1)[0]
        if any(key.startswith(k) for k in spec.sysctl_keys) and not any(
                key.startswith(d) for d in spec.sysctl_drop):
            sysctl.append(line)
    out["sysctl.txt"] = "\n".join(sysctl) + "\n"
    if spec.legacy_rules:
        out["iptables-legacy-save.txt"] = ns_exec(ns, "iptables-legacy-save")
        out["iptables-nft-save.txt"] = ns_exec(ns, "iptables-nft-save")
    # Text forms, for transcripts (pasted as people paste them).
    out["text/ip-addr.txt"] = ns_exec(ns, "ip", "addr", "show")
    out["text/ip-route.txt"] = ns_exec(ns, "ip", "route")
    out["text/iptables-save.txt"] = ns_exec_tty(ns, "iptables-save")
    out["text/iptables-save-c.txt"] = ns_exec(ns, "iptables-save", "-c")
    for table in ("filter", "nat"):
        out[f"text/iptables-{table}-nvL.txt"] = ns_exec(ns, "iptables", "-t", table, "-nvL")
    out["text/bridge-d-link.txt"] = ns_exec(ns, "bridge", "-d", "link", "show")
    out["text/sysctl.txt"] = out["sysctl.txt"]
    if spec.legacy_rules:
        out["text/iptables-legacy-save.txt"] = out["iptables-legacy-save.txt"]
        out["text/iptables-nft-save.txt"] = ns_exec_tty(ns, "iptables-nft-save")
        out["text/iptables-V.txt"] = ns_exec(ns, "iptables", "-V")
    return out
