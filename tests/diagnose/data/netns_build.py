#!/usr/bin/env python3
"""Build the node states of the section A/F diagnosis tests in real network namespaces.

Run as root (`python3 tests/diagnose/data/netns_build.py`). Each setup creates namespaces named
`nsda-*`, configures them the way the failure mode leaves a real node (addresses, routes,
policy rules, VXLAN/tun devices, sysctls, kube-proxy rules restored with iptables-restore),
checks the kernel's own behaviour for the fault (`ip route get`, pings that must fail, and
succeed once the fix is applied), captures the outputs with the real tools, and deletes the
namespaces. The outputs go to:

* `tests/diagnose/scenarios/<name>/bundle/nodes/<node>/` (bundle node snapshots), and
* `tests/diagnose/data/netns/<setup>/<node>/<file>` (text outputs pasted into transcripts by
  the scenario templates `tests/diagnose/data/templates/*.txt.in`, filled in here too).

Physical NICs are veth pairs here; their `@ifN` peer suffix is removed from the text of
`ip addr` (a real NIC has none). Nothing else is edited. The pure tests never run this file:
they read its committed outputs.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "src"))

from netsleuth.diagnose.kube_proxy_rules import ServicePortView, kube_proxy_rules  # noqa: E402

SCENARIOS = HERE.parent / "scenarios"
TEXT = HERE / "netns"
TEMPLATES = HERE / "templates"
PREFIX = "nsda-"
SYSCTL_KEYS = re.compile(r"^net\.(ipv4\.(ip_forward|conf\.[^.]+\.(rp_filter|forwarding|"
                         r"accept_local|src_valid_mark))|bridge\.bridge-nf-call-ip6?tables) ")


def sh(*argv: str, ns: str | None = None, check: bool = True, stdin: str | None = None) -> str:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def ip(ns: str, *args: str) -> str:
    return sh("ip", *args, ns=ns)


class Lab:
    """Namespaces of one setup; all deleted on exit, whatever happens."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def ns(self, name: str) -> str:
        full = PREFIX + name
        sh("ip", "netns", "add", full)
        self.made.append(full)
        ip(full, "link", "set", "lo", "up")
        return full

    def veth(self, a: str, a_if: str, b: str, b_if: str) -> None:
        sh("ip", "link", "add", "nsdatmp0", "type", "veth", "peer", "name", "nsdatmp1")
        sh("ip", "link", "set", "nsdatmp0", "netns", a)
        sh("ip", "link", "set", "nsdatmp1", "netns", b)
        ip(a, "link", "set", "nsdatmp0", "name", a_if)
        ip(b, "link", "set", "nsdatmp1", "name", b_if)
        ip(a, "link", "set", a_if, "up")
        ip(b, "link", "set", b_if, "up")

    def cleanup(self) -> None:
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.made.clear()


@contextmanager
def lab() -> Iterator[Lab]:
    lb = Lab()
    try:
        yield lb
    finally:
        lb.cleanup()


def sysctls(ns: str, *pairs: tuple[str, str]) -> None:
    for key, value in pairs:
        sh("sysctl", "-qw", f"{key}={value}", ns=ns)


def restore(ns: str, text: str) -> None:
    sh("iptables-restore", ns=ns, stdin=text)


def strip_peer(text: str) -> str:
    """`3: eth1@if12: <...>` → `3: eth1: <...>`: the veth peer index a real NIC does not show."""
    return re.sub(r"^(\d+: [^:@\s]+)@if\d+:", r"\1:", text, flags=re.M)


def snapshot(ns: str, node: str, out: Path) -> None:
    """The node snapshot layout of docs/node-snapshot.md, from the real tools."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "hostname").write_text(node + "\n")
    (out / "ip-addr.json").write_text(ip(ns, "-j", "addr", "show"))
    (out / "ip-link.json").write_text(ip(ns, "-j", "link", "show"))
    (out / "ip-route.json").write_text(ip(ns, "-j", "route", "show", "table", "all"))
    (out / "ip-rule.json").write_text(ip(ns, "-j", "rule", "show"))
    (out / "iptables-save.txt").write_text(sh("iptables-save", ns=ns))
    lines = [ln for ln in sh("sysctl", "-a", ns=ns, check=False).splitlines()
             if SYSCTL_KEYS.match(ln)]
    (out / "sysctl.txt").write_text("\n".join(lines) + "\n")


def texts(ns: str, setup: str, node: str, commands: dict[str, Sequence[str]]) -> None:
    """Text outputs of commands as a person would paste them."""
    out = TEXT / setup / node
    out.mkdir(parents=True, exist_ok=True)
    for name, argv in commands.items():
        proc = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True,
                              text=True, timeout=30, check=False)
        text = proc.stdout + proc.stderr  # a terminal shows both
        if argv[0] == "ip" and "addr" in argv:
            text = strip_peer(text)
        (out / name).write_text(text)


def fill(template: str, setup: str, dest: Path) -> None:
    """Replace `{{node/file}}` in a transcript template with the captured output."""
    text = (TEMPLATES / template).read_text()

    def sub(m: re.Match[str]) -> str:
        return (TEXT / setup / m.group(1)).read_text().rstrip("\n")

    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(re.sub(r"\{\{([\w./-]+)\}\}", sub, text))


def expect(ns: str, argv: Sequence[str], pattern: str, what: str) -> None:
    """A kernel fact the setup must show (the fault is real, or the fix works)."""
    out = sh(*argv, ns=ns, check=False)
    if not re.search(pattern, out):
        raise RuntimeError(f"kernel check failed ({what}): {' '.join(argv)} → {out!r}")
    print(f"  ok: {what}")


def ping_ok(ns: str, dst: str) -> bool:
    """An ICMP echo from `ns` gets its reply (the lab's probe: no ping binary needed)."""
    from netsleuth.lab.probe import probe
    return probe(ns, dst, None, "icmp", timeout=1.0).result == "connected"


def kube_proxy(views: list[ServicePortView], cluster_cidr: str | None) -> str:
    return kube_proxy_rules(views, cluster_cidr)


def view(ns: str, name: str, port_name: str, proto: str, ip_: str, port: int,
         *eps: str) -> ServicePortView:
    from ipaddress import ip_address
    return ServicePortView(ns, name, port_name, proto, ip_address(ip_), port, tuple(eps))


def pod(lab_: Lab, node_ns: str, name: str, bridge: str | None, host_if: str, addr: str,
        gw: str, calico: bool = False, mtu: int = 1450) -> str:
    """A pod: its own namespace, a veth to the node (into a bridge, or Calico-style with a
    /32 route and proxy ARP), with the overlay's MTU on both ends as the CNI sets it."""
    p = lab_.ns(name)
    lab_.veth(p, "eth0", node_ns, host_if)
    ip(p, "link", "set", "eth0", "mtu", str(mtu))
    ip(node_ns, "link", "set", host_if, "mtu", str(mtu))
    ip(p, "addr", "add", addr, "dev", "eth0")
    if calico:
        ip(p, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
        ip(p, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
        sysctls(node_ns, (f"net.ipv4.conf.{host_if}.proxy_arp", "1"))
        ip(node_ns, "route", "add", addr.split("/")[0], "dev", host_if, "scope", "link")
    else:
        ip(node_ns, "link", "set", host_if, "master", bridge or "cni0")
        ip(p, "route", "add", "default", "via", gw, "dev", "eth0")
    return p


def listen(ns: str, addr: str, port: int) -> socket.socket:
    """A TCP listener inside `ns` (the kernel completes handshakes without accept())."""
    from netsleuth.lab.netns import in_netns
    with in_netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((addr, port))
    sock.listen(16)
    return sock


def tcp(ns: str, dst: str, port: int) -> tuple[str, str | None]:
    from netsleuth.lab.probe import probe
    res = probe(ns, dst, port, "tcp", timeout=1.5)
    return res.result, res.errno


def attach_tun(ns: str, name: str) -> int:
    """Open the tun device like its daemon does (TUNSETIFF), so its carrier is up."""
    from netsleuth.lab.netns import in_netns
    with in_netns(ns):
        fd = os.open("/dev/net/tun", os.O_RDWR)
    # linux/if_tun.h: TUNSETIFF = _IOW('T', 202, int); IFF_TUN | IFF_NO_PI.
    fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", name.encode(), 0x0001 | 0x1000))
    return fd


def vxlan(ns: str, name: str, vni: int, local: str, dev: str, port: int, addr: str) -> str:
    ip(ns, "link", "add", name, "type", "vxlan", "id", str(vni), "local", local, "dev", dev,
       "dstport", str(port), "nolearning")
    ip(ns, "addr", "add", addr, "dev", name)
    ip(ns, "link", "set", name, "up")
    return str(json.loads(ip(ns, "-j", "link", "show", name))[0]["address"])


def vtep(ns: str, dev: str, inner: str, mac: str, underlay: str) -> None:
    ip(ns, "neigh", "replace", inner, "lladdr", mac, "dev", dev, "nud", "permanent")
    sh("bridge", "fdb", "append", mac, "dev", dev, "dst", underlay, ns=ns)


# ---------------------------------------------------------------------------------------------
# A08: Tailscale's table 52 captures the k3s pod CIDR on one node (bundle)
# ---------------------------------------------------------------------------------------------


def a08_tailscale() -> None:
    print("a08-tailscale-k3s")
    out = SCENARIOS / "a08-tailscale-k3s" / "bundle" / "nodes"
    with lab() as lb:
        ea, eb = lb.ns("edgea"), lb.ns("edgeb")
        lb.veth(ea, "enp1s0", eb, "enp1s0")
        ip(ea, "addr", "add", "192.168.8.21/24", "dev", "enp1s0")
        ip(eb, "addr", "add", "192.168.8.22/24", "dev", "enp1s0")
        for n in (ea, eb):
            ip(n, "route", "add", "default", "via", "192.168.8.1", "dev", "enp1s0", "proto",
               "dhcp", "src", "192.168.8.21" if n == ea else "192.168.8.22", "metric", "100")
            sysctls(n, ("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "2"),
                    ("net.ipv4.conf.default.rp_filter", "2"))
        mac_a = vxlan(ea, "flannel.1", 1, "192.168.8.21", "enp1s0", 8472, "10.42.0.0/32")
        mac_b = vxlan(eb, "flannel.1", 1, "192.168.8.22", "enp1s0", 8472, "10.42.1.0/32")
        for n, addr in ((ea, "10.42.0.1/24"), (eb, "10.42.1.1/24")):
            ip(n, "link", "add", "cni0", "mtu", "1450", "type", "bridge")
            ip(n, "addr", "add", addr, "dev", "cni0")
            ip(n, "link", "set", "cni0", "up")
        ip(ea, "route", "add", "10.42.1.0/24", "via", "10.42.1.0", "dev", "flannel.1", "onlink")
        ip(eb, "route", "add", "10.42.0.0/24", "via", "10.42.0.0", "dev", "flannel.1", "onlink")
        vtep(ea, "flannel.1", "10.42.1.0", mac_b, "192.168.8.22")
        vtep(eb, "flannel.1", "10.42.0.0", mac_a, "192.168.8.21")
        coredns = pod(lb, ea, "corednspod", "cni0", "veth6c1e9a2f", "10.42.0.4/24", "10.42.0.1")
        web = pod(lb, eb, "webpod", "cni0", "veth3b8d07e1", "10.42.1.5/24", "10.42.1.1")
        if not ping_ok(web, "10.42.0.4"):
            raise RuntimeError("pod-to-pod over flannel.1 must work before tailscale")
        print("  ok: pod 10.42.1.5 → 10.42.0.4 over flannel.1 before tailscale")
        # tailscaled: tun device, its rules, and table 52 with an accepted subnet route
        # (another site advertises its own k3s pod range, the same default 10.42.0.0/16).
        ip(eb, "tuntap", "add", "mode", "tun", "tailscale0")
        tun = attach_tun(eb, "tailscale0")  # tailscaled holds the device: carrier up
        ip(eb, "addr", "add", "100.101.7.3/32", "dev", "tailscale0")
        ip(eb, "link", "set", "tailscale0", "mtu", "1280", "up")
        for pref, action in (("5210", ["fwmark", "0x80000/0xff0000", "lookup", "main"]),
                             ("5230", ["fwmark", "0x80000/0xff0000", "lookup", "default"]),
                             ("5250", ["fwmark", "0x80000/0xff0000", "unreachable"]),
                             ("5270", ["lookup", "52"])):
            ip(eb, "rule", "add", "pref", pref, *action)
        for dst in ("100.100.100.100", "100.64.12.7", "100.88.3.41", "10.42.0.0/16"):
            ip(eb, "route", "add", dst, "dev", "tailscale0", "table", "52")
        expect(eb, ["ip", "route", "get", "10.42.0.4"], r"dev tailscale0 table 52",
               "edge-b routes the pod 10.42.0.4 into tailscale0 (table 52)")
        if ping_ok(web, "10.42.0.4"):
            raise RuntimeError("pod-to-pod must fail once table 52 captures 10.42.0.0/16")
        print("  ok: pod 10.42.1.5 → 10.42.0.4 fails with table 52")
        views = [view("default", "kubernetes", "https", "tcp", "10.43.0.1", 443,
                      "192.168.8.21:6443"),
                 view("kube-system", "kube-dns", "dns", "udp", "10.43.0.10", 53, "10.42.0.4:53"),
                 view("kube-system", "kube-dns", "dns-tcp", "tcp", "10.43.0.10", 53,
                      "10.42.0.4:53"),
                 view("kube-system", "metrics-server", "https", "tcp", "10.43.97.12", 443,
                      "10.42.1.6:10250"),
                 view("shop", "orders", "http", "tcp", "10.43.148.9", 8080, "10.42.0.9:8080")]
        for n in (ea, eb):
            restore(n, kube_proxy(views, "10.42.0.0/16"))
        snapshot(ea, "edge-a", out / "edge-a")
        snapshot(eb, "edge-b", out / "edge-b")
        ip(eb, "route", "replace", "throw", "10.42.0.0/16", "table", "52")
        expect(eb, ["ip", "route", "get", "10.42.0.4"], r"via 10\.42\.0\.0 dev flannel\.1",
               "with `replace throw 10.42.0.0/16 table 52` the pod goes via flannel.1 again")
        if not ping_ok(web, "10.42.0.4"):
            raise RuntimeError("the throw route must fix pod-to-pod")
        print("  ok: the throw route fixes pod-to-pod")
        del coredns
        os.close(tun)


# ---------------------------------------------------------------------------------------------
# A06: strict rp_filter + Calico VXLAN endpoint on the management NIC (bundle)
# ---------------------------------------------------------------------------------------------


def a06_rp_filter() -> None:
    """k8s-m1 has a management NIC (eth0, default route) and a cluster NIC (eth1). k8s-w2 sits
    in another rack's subnet, reached through the router on the cluster side; k8s-m1 has no
    route for that subnet, so its replies (and its reverse-path check) use eth0."""
    print("a06-rpfilter-calico")
    out = SCENARIOS / "a06-rpfilter-calico" / "bundle" / "nodes"
    with lab() as lb:
        m1, w2, rt = lb.ns("m1"), lb.ns("w2"), lb.ns("rt")
        lb.veth(m1, "eth0", rt, "mgmt-m1")
        lb.veth(m1, "eth1", rt, "rack1-m1")
        lb.veth(w2, "eth0", rt, "rack2-w2")
        ip(rt, "addr", "add", "10.0.1.1/24", "dev", "mgmt-m1")
        ip(rt, "addr", "add", "10.0.2.1/24", "dev", "rack1-m1")
        ip(rt, "addr", "add", "10.0.3.1/24", "dev", "rack2-w2")
        sysctls(rt, ("net.ipv4.ip_forward", "1"))
        ip(m1, "addr", "add", "10.0.1.5/24", "dev", "eth0")
        ip(m1, "addr", "add", "10.0.2.5/24", "dev", "eth1")
        ip(m1, "route", "add", "default", "via", "10.0.1.1", "dev", "eth0", "proto", "static",
           "metric", "100")
        ip(w2, "addr", "add", "10.0.3.7/24", "dev", "eth0")
        ip(w2, "route", "add", "default", "via", "10.0.3.1", "dev", "eth0", "proto", "static",
           "metric", "100")
        for n in (m1, w2):
            sysctls(n, ("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "1"),
                    ("net.ipv4.conf.default.rp_filter", "1"))
            for dev in ("eth0", "eth1") if n == m1 else ("eth0",):
                sysctls(n, (f"net.ipv4.conf.{dev}.rp_filter", "1"))
        mac_m = vxlan(m1, "vxlan.calico", 4096, "10.0.2.5", "eth1", 4789, "10.244.23.192/32")
        mac_w = vxlan(w2, "vxlan.calico", 4096, "10.0.3.7", "eth0", 4789, "10.244.87.0/32")
        ip(m1, "route", "add", "blackhole", "10.244.23.192/26", "proto", "80")
        ip(w2, "route", "add", "blackhole", "10.244.87.0/26", "proto", "80")
        ip(m1, "route", "add", "10.244.87.0/26", "via", "10.244.87.0", "dev", "vxlan.calico",
           "onlink", "proto", "80")
        ip(w2, "route", "add", "10.244.23.192/26", "via", "10.244.23.192", "dev",
           "vxlan.calico", "onlink", "proto", "80")
        vtep(m1, "vxlan.calico", "10.244.87.0", mac_w, "10.0.3.7")
        vtep(w2, "vxlan.calico", "10.244.23.192", mac_m, "10.0.2.5")
        pod(lb, m1, "dnspod", None, "cali5d2e8f01a9c", "10.244.23.194/32", "", True)
        pod(lb, m1, "dnspod2", None, "cali93b7e60d1f8", "10.244.23.195/32", "", True)
        web = pod(lb, w2, "webpod2", None, "cali1a7f3c9e2b4", "10.244.87.3/32", "", True)
        views = [view("default", "kubernetes", "https", "tcp", "10.96.0.1", 443,
                      "10.0.2.5:6443"),
                 view("kube-system", "kube-dns", "dns", "udp", "10.96.0.10", 53,
                      "10.244.23.194:53", "10.244.23.195:53"),
                 view("kube-system", "kube-dns", "dns-tcp", "tcp", "10.96.0.10", 53,
                      "10.244.23.194:53", "10.244.23.195:53")]
        for n in (m1, w2):
            restore(n, kube_proxy(views, "10.244.0.0/16"))
        if ping_ok(web, "10.244.23.194"):
            raise RuntimeError("w2 pod → m1 pod must fail: m1 drops the VXLAN packets")
        if ping_ok(w2, "10.0.2.5"):
            raise RuntimeError("w2 → m1's InternalIP must fail too")
        print("  ok: k8s-w2 (pod and host) → k8s-m1 fails (rp_filter=1 on k8s-m1 eth1)")
        snapshot(m1, "k8s-m1", out / "k8s-m1")
        snapshot(w2, "k8s-w2", out / "k8s-w2")
        sysctls(m1, ("net.ipv4.conf.eth1.rp_filter", "2"))
        if not ping_ok(web, "10.244.23.194"):
            raise RuntimeError("loose rp_filter on m1 eth1 must fix it")
        print("  ok: rp_filter=2 on k8s-m1 eth1 fixes it")
        sysctls(m1, ("net.ipv4.conf.eth1.rp_filter", "1"))
        ip(m1, "route", "add", "10.0.3.0/24", "via", "10.0.2.1", "dev", "eth1")
        if not ping_ok(web, "10.244.23.194"):
            raise RuntimeError("a symmetric route must fix it too")
        print("  ok: or a route for 10.0.3.0/24 via eth1 (symmetric) fixes it")


# ---------------------------------------------------------------------------------------------
# A03: apiserver advertised on the VirtualBox NAT address (bundle)
# ---------------------------------------------------------------------------------------------


def a03_advertise() -> None:
    print("a03-advertise-nat-weave")
    out = SCENARIOS / "a03-advertise-nat-weave" / "bundle" / "nodes"
    with lab() as lb:
        sw = lb.ns("sw")
        ip(sw, "link", "add", "hostonly", "type", "bridge")
        ip(sw, "link", "set", "hostonly", "up")
        nodes = {"vbox-cp": ("cp", "192.168.99.10", "10.32.0.1/12"),
                 "vbox-w1": ("w1", "192.168.99.21", "10.44.0.0/12"),
                 "vbox-w2": ("wtwo", "192.168.99.22", "10.36.0.0/12")}
        made: dict[str, str] = {}
        for node, (short, hostonly, weave) in nodes.items():
            n = lb.ns(short)
            nat = lb.ns(short + "nat")
            made[node] = n
            lb.veth(n, "enp0s3", nat, "natgw")
            ip(nat, "addr", "add", "10.0.2.2/24", "dev", "natgw")
            ip(n, "addr", "add", "10.0.2.15/24", "dev", "enp0s3")
            ip(n, "route", "add", "default", "via", "10.0.2.2", "dev", "enp0s3", "proto",
               "dhcp", "src", "10.0.2.15", "metric", "100")
            lb.veth(n, "enp0s8", sw, f"ho-{short}")
            ip(sw, "link", "set", f"ho-{short}", "master", "hostonly")
            ip(n, "addr", "add", f"{hostonly}/24", "dev", "enp0s8")
            ip(n, "link", "add", "weave", "type", "bridge")
            ip(n, "addr", "add", weave, "dev", "weave")
            ip(n, "link", "set", "weave", "up")
            sysctls(n, ("net.ipv4.ip_forward", "1"))
        views = [view("default", "kubernetes", "https", "tcp", "10.96.0.1", 443,
                      "10.0.2.15:6443"),
                 view("kube-system", "kube-dns", "dns", "udp", "10.96.0.10", 53,
                      "10.32.0.2:53", "10.32.0.3:53"),
                 view("kube-system", "kube-dns", "dns-tcp", "tcp", "10.96.0.10", 53,
                      "10.32.0.2:53", "10.32.0.3:53")]
        for n in made.values():
            restore(n, kube_proxy(views, None))
        expect(made["vbox-w1"], ["ip", "route", "get", "10.0.2.15"], r"^local 10\.0\.2\.15",
               "on vbox-w1 the advertised apiserver address 10.0.2.15 is local")
        api = listen(made["vbox-cp"], "0.0.0.0", 6443)
        if tcp(made["vbox-w1"], "10.96.0.1", 443) != ("errno", "ECONNREFUSED"):
            raise RuntimeError("vbox-w1 → kubernetes Service must be refused (local 10.0.2.15)")
        print("  ok: vbox-w1 → 10.96.0.1:443 is refused (DNAT to its own 10.0.2.15)")
        for node, n in made.items():
            snapshot(n, node, out / node)
        # The fix the detector proposes, checked with the real kernel: the new endpoint alone
        # is not enough from a host client (its source stays 10.0.2.15), with the Service
        # route on enp0s8 it connects.
        views[0] = view("default", "kubernetes", "https", "tcp", "10.96.0.1", 443,
                        "192.168.99.10:6443")
        restore(made["vbox-w1"], kube_proxy(views, None))
        if tcp(made["vbox-w1"], "10.96.0.1", 443)[0] == "connected":
            raise RuntimeError("the new endpoint alone must not be enough from a host client")
        ip(made["vbox-w1"], "route", "add", "10.96.0.1/32", "dev", "enp0s8")
        if tcp(made["vbox-w1"], "10.96.0.1", 443)[0] != "connected":
            raise RuntimeError("endpoint 192.168.99.10 + Service route via enp0s8 must connect")
        print("  ok: advertise 192.168.99.10 + `ip route add 10.96.0.1/32 dev enp0s8` connects")
        api.close()


# ---------------------------------------------------------------------------------------------
# Transcript setups: outputs pasted into the templates
# ---------------------------------------------------------------------------------------------


def a05_forwarding() -> None:
    print("a05-forwarding-canal")
    setup = "a05"
    with lab() as lb:
        r3, r1 = lb.ns("r3"), lb.ns("r1")
        lb.veth(r3, "ens192", r1, "ens192")
        ip(r3, "addr", "add", "10.30.4.23/24", "dev", "ens192")
        ip(r1, "addr", "add", "10.30.4.11/24", "dev", "ens192")
        ip(r3, "route", "add", "default", "via", "10.30.4.1", "dev", "ens192", "proto",
           "static", "metric", "100")
        vxlan(r3, "flannel.1", 1, "10.30.4.23", "ens192", 8472, "10.42.3.0/32")
        for dst in ("10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"):
            ip(r3, "route", "add", dst, "via", dst.split("/")[0], "dev", "flannel.1", "onlink")
        p = pod(lb, r3, "checkout", None, "cali8e0b2f7c1a4", "10.42.3.14/32", "", True)
        ip(r1, "route", "add", "10.42.3.0/24", "via", "10.30.4.23")
        sysctls(r3, ("net.ipv4.ip_forward", "0"))
        if ping_ok(p, "10.30.4.11"):
            raise RuntimeError("pod traffic must not be forwarded with ip_forward=0")
        print("  ok: pod 10.42.3.14 → 10.30.4.11 fails with ip_forward=0")
        texts(r3, setup, "rke2-agent-3", {
            "ip-route": ["ip", "route"],
            "sysctl": ["sysctl", "net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding"],
        })
        sysctls(r3, ("net.ipv4.ip_forward", "1"))
        if not ping_ok(p, "10.30.4.11"):
            raise RuntimeError("ip_forward=1 must fix it")
        print("  ok: ip_forward=1 fixes it")
    fill("a05.txt.in", setup, SCENARIOS / "a05-forwarding-canal" / "input.txt")


def a09_overlap() -> None:
    print("a09-calico-pool-overlap")
    setup = "a09"
    with lab() as lb:
        p1, lan = lb.ns("pi1"), lb.ns("lan")
        lb.veth(p1, "eth0", lan, "lan0")
        ip(lan, "addr", "add", "192.168.1.1/24", "dev", "lan0")
        ip(p1, "addr", "add", "192.168.1.23/24", "dev", "eth0")
        ip(p1, "route", "add", "default", "via", "192.168.1.1", "dev", "eth0", "proto", "dhcp",
           "src", "192.168.1.23", "metric", "100")
        if not ping_ok(p1, "192.168.1.1"):
            raise RuntimeError("the gateway must answer before Calico")
        mac = vxlan(p1, "vxlan.calico", 4096, "192.168.1.23", "eth0", 4789, "192.168.33.64/32")
        del mac
        ip(p1, "route", "add", "blackhole", "192.168.33.64/26", "proto", "80")
        pod(lb, p1, "pipod", None, "calie0f1d2c3b4a", "192.168.33.66/32", "", True)
        # pi-node2's block: Calico handed it 192.168.1.0/26 from the default pool.
        ip(p1, "route", "add", "192.168.1.0/26", "via", "192.168.1.0", "dev", "vxlan.calico",
           "onlink", "proto", "80")
        ip(p1, "route", "add", "192.168.161.128/26", "via", "192.168.161.128", "dev",
           "vxlan.calico", "onlink", "proto", "80")
        expect(p1, ["ip", "route", "get", "192.168.1.1"], r"dev vxlan\.calico",
               "pi-node1 routes its gateway 192.168.1.1 into vxlan.calico")
        texts(p1, setup, "pi-node1", {
            "ip-route": ["ip", "route"],
            "ip-addr": ["ip", "-4", "addr", "show", "eth0"],
            "route-get": ["ip", "route", "get", "192.168.1.1"],
            "curl": ["curl", "-sS", "-m", "3", "http://192.168.1.1/"],
        })
    fill("a09.txt.in", setup, SCENARIOS / "a09-calico-pool-overlap" / "input.txt")


def a02_vagrant() -> None:
    print("a02-vagrant-node-ip")
    setup = "a02"
    with lab() as lb:
        m, nat, sw = lb.ns("vm"), lb.ns("vmnat"), lb.ns("vmsw")
        lb.veth(m, "enp0s3", nat, "natgw")
        ip(nat, "addr", "add", "10.0.2.2/24", "dev", "natgw")
        ip(m, "addr", "add", "10.0.2.15/24", "dev", "enp0s3")
        ip(m, "route", "add", "default", "via", "10.0.2.2", "dev", "enp0s3", "proto", "dhcp",
           "src", "10.0.2.15", "metric", "100")
        lb.veth(m, "enp0s8", sw, "vboxnet0")
        ip(m, "addr", "add", "172.28.128.10/24", "dev", "enp0s8")
        vxlan(m, "vxlan.calico", 4096, "10.0.2.15", "enp0s3", 4789, "10.233.101.0/32")
        ip(m, "route", "add", "blackhole", "10.233.101.0/26", "proto", "80")
        pod(lb, m, "vmpod", None, "cali2b9d4e7f013", "10.233.101.3/32", "", True)
        for blk in ("10.233.118.64/26", "10.233.75.128/26"):
            ip(m, "route", "add", blk, "via", blk.split("/")[0], "dev", "vxlan.calico",
               "onlink", "proto", "80")
        expect(m, ["ip", "route", "get", "10.0.2.15"], r"^local 10\.0\.2\.15",
               "10.0.2.15 is the master's own address")
        texts(m, setup, "k8s-master", {
            "ip-addr": ["ip", "-4", "addr"],
            "ip-route": ["ip", "route"],
        })
    fill("a02.txt.in", setup, SCENARIOS / "a02-vagrant-node-ip" / "input.txt")


def healthy_multinic() -> None:
    print("healthy-multinic-kubespray")
    setup = "healthy"
    with lab() as lb:
        sw = lb.ns("hsw")
        for br, addr in (("br-mgmt", "10.10.10.1/24"), ("br-k8s", "172.16.20.1/24")):
            ip(sw, "link", "add", br, "type", "bridge")
            ip(sw, "addr", "add", addr, "dev", br)
            ip(sw, "link", "set", br, "up")
        nodes = {"kube-cp1": ("hcp", 11, "10.233.84.128"), "kube-w1": ("hw1", 21, "10.233.97.0"),
                 "kube-w2": ("hw2", 22, "10.233.70.64")}
        made: dict[str, str] = {}
        macs: dict[str, str] = {}
        for node, (short, host, block) in nodes.items():
            n = lb.ns(short)
            made[node] = n
            lb.veth(n, "ens18", sw, f"m-{short}")
            lb.veth(n, "ens19", sw, f"k-{short}")
            ip(sw, "link", "set", f"m-{short}", "master", "br-mgmt")
            ip(sw, "link", "set", f"k-{short}", "master", "br-k8s")
            ip(n, "addr", "add", f"10.10.10.{host}/24", "dev", "ens18")
            ip(n, "addr", "add", f"172.16.20.{host}/24", "dev", "ens19")
            ip(n, "route", "add", "default", "via", "172.16.20.1", "dev", "ens19", "proto",
               "static", "metric", "101")
            # Management NIC answers from its own address: source-based policy routing.
            ip(n, "route", "add", "default", "via", "10.10.10.1", "dev", "ens18", "table", "100")
            ip(n, "route", "add", "10.10.10.0/24", "dev", "ens18", "scope", "link", "src",
               f"10.10.10.{host}", "table", "100")
            ip(n, "rule", "add", "pref", "1000", "from", f"10.10.10.{host}", "lookup", "100")
            sysctls(n, ("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "1"),
                    ("net.ipv4.conf.default.rp_filter", "1"),
                    ("net.ipv4.conf.ens18.rp_filter", "1"), ("net.ipv4.conf.ens19.rp_filter", "1"))
            macs[node] = vxlan(n, "vxlan.calico", 4096, f"172.16.20.{host}", "ens19", 4789,
                               f"{block}/32")
            ip(n, "route", "add", "blackhole", f"{block}/26", "proto", "80")
        for node, n in made.items():
            for other, (_s, host, block) in nodes.items():
                if other == node:
                    continue
                ip(n, "route", "add", f"{block}/26", "via", block, "dev", "vxlan.calico",
                   "onlink", "proto", "80")
                vtep(n, "vxlan.calico", block, macs[other], f"172.16.20.{host}")
        w1pod = pod(lb, made["kube-w1"], "hpod1", None, "cali7f3e1b2a9d0", "10.233.97.4/32", "",
                    True)
        pod(lb, made["kube-w2"], "hpod2", None, "calib81c4d0e6f2", "10.233.70.66/32", "", True)
        if not ping_ok(w1pod, "10.233.70.66"):
            raise RuntimeError("healthy cluster: pod-to-pod across nodes must work")
        print("  ok: pod on kube-w1 → pod on kube-w2 works with rp_filter=1 (symmetric)")
        if not ping_ok(made["kube-w1"], "10.10.10.11"):
            raise RuntimeError("healthy cluster: management network must work")
        texts(made["kube-w1"], setup, "kube-w1", {
            "ip-addr": ["ip", "-4", "addr"],
            "ip-route": ["ip", "route"],
            "ip-rule": ["ip", "rule"],
            "ip-route-100": ["ip", "route", "show", "table", "100"],
            "sysctl": ["sysctl", "net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter",
                       "net.ipv4.conf.ens18.rp_filter", "net.ipv4.conf.ens19.rp_filter"],
        })
    fill("healthy.txt.in", setup, SCENARIOS / "healthy-multinic-kubespray" / "input.txt")


def f50_readdressed() -> None:
    print("f50-x509-readdressed")
    setup = "f50"
    with lab() as lb:
        n, lan = lb.ns("mk"), lb.ns("mklan")
        lb.veth(n, "wlp2s0", lan, "ap0")
        ip(n, "addr", "add", "192.168.0.142/24", "dev", "wlp2s0")
        ip(n, "route", "add", "default", "via", "192.168.0.1", "dev", "wlp2s0", "proto", "dhcp",
           "src", "192.168.0.142", "metric", "600")
        ip(n, "link", "add", "cni0", "type", "bridge")
        ip(n, "addr", "add", "10.1.128.193/26", "dev", "cni0")
        ip(n, "link", "set", "cni0", "up")
        texts(n, setup, "homelab", {"ip-addr": ["ip", "-4", "addr"], "ip-route": ["ip", "route"]})
    fill("f50.txt.in", setup, SCENARIOS / "f50-x509-readdressed" / "input.txt")


def a07_unencapsulated() -> None:
    print("a07-calico-bgp-cross-subnet")
    setup = "a07"
    with lab() as lb:
        a1, rt = lb.ns("a01"), lb.ns("a01rt")
        lb.veth(a1, "eth0", rt, "gw0")
        ip(rt, "addr", "add", "10.1.1.1/24", "dev", "gw0")
        ip(a1, "addr", "add", "10.1.1.10/24", "dev", "eth0")
        ip(a1, "route", "add", "default", "via", "10.1.1.1", "dev", "eth0", "proto", "static",
           "metric", "100")
        sysctls(a1, ("net.ipv4.ip_forward", "1"))
        # BIRD's routes: the same-subnet peer directly, the other subnet's node (10.1.2.30)
        # resolved through the gateway; no tunnel device (ipipMode/vxlanMode Never).
        ip(a1, "route", "add", "blackhole", "10.244.77.128/26", "proto", "bird")
        pod(lb, a1, "a01pod", None, "cali6b1f0e2d9c4", "10.244.77.130/32", "", True, mtu=1500)
        ip(a1, "route", "add", "10.244.140.0/26", "via", "10.1.1.11", "dev", "eth0", "proto",
           "bird")
        ip(a1, "route", "add", "10.244.201.64/26", "via", "10.1.1.1", "dev", "eth0", "proto",
           "bird")
        expect(a1, ["ip", "route", "get", "10.244.201.66", "from", "10.244.77.130", "iif",
                    "cali6b1f0e2d9c4"], r"via 10\.1\.1\.1 dev eth0",
               "a pod's packet to the other subnet's pods goes to the gateway un-encapsulated")
        texts(a1, setup, "k8s-a-01", {"ip-route": ["ip", "route"]})
    fill("a07.txt.in", setup, SCENARIOS / "a07-calico-bgp-cross-subnet" / "input.txt")


SETUPS = {f.__name__: f for f in (a08_tailscale, a06_rp_filter, a03_advertise, a05_forwarding,
                                  a09_overlap, a02_vagrant, healthy_multinic, f50_readdressed,
                                  a07_unencapsulated)}

if __name__ == "__main__":
    wanted = sys.argv[1:] or list(SETUPS)
    for name in wanted:
        SETUPS[name]()
