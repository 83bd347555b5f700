"""Helpers shared by the CNI/overlay (D29 to D41) and DNS (E42 to E47) detectors.

Most of what these modes need is not in `NodeState`: the details of `ip -d link` (VXLAN id,
local address, lower device, UDP port), neighbour and FDB entries of tunnel devices, `ethtool
-k`, resolv.conf, calicoctl tables. They come from the raw outputs (`Evidence.raw`), parsed
here without I/O, each value keeping the file:line it came from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network

from netsleuth.datapath.trace_model import Trace, Verdict
from netsleuth.diagnose.detectors._cluster import POD_IFACE, exec_pod, node_ips
from netsleuth.diagnose.detectors._common import datapath, is_service_ip, node_key
from netsleuth.diagnose.evidence import Evidence, NodeEvidence, RawOutput, log_node
from netsleuth.diagnose.findings import EvidenceLine
from netsleuth.model.k8s import Event, LogLine, parse_ip
from netsleuth.model.net import Address, IPAddress, IPNetwork, Route, RouteType
from netsleuth.model.node import NodeState
from netsleuth.model.source import SourceRef
from netsleuth.parse.transcript import parse_command

# Bytes each encapsulation adds in front of the inner packet (IPv4 underlay):
# VXLAN/Geneve 14 (inner Ethernet) + 8 (VXLAN/Geneve) + 8 (UDP) + 20 (IPv4) = 50;
# IPIP 20 (outer IPv4); GRE 24; WireGuard 60 (IPv4 20 + UDP 8 + WG 32).
# (drivers/net/vxlan/vxlan_core.c VXLAN_HEADROOM; Calico/Cilium/flannel MTU docs.)
ENCAP_OVERHEAD: dict[str, int] = {
    "vxlan": 50, "geneve": 50, "ipip": 20, "gre": 24, "gretap": 38, "wireguard": 60,
}
# UDP port a VXLAN device listens on when `dstport` is not shown: the CNI's default
# (flannel leaves Port=0, so the kernel's historic default 8472 applies; Calico and most others
# use the IANA port 4789; Cilium 8472).
VXLAN_DEFAULT_PORT = {"flannel": 8472, "cilium": 8472, "calico": 4789, "canal": 8472}
TUNNEL_NAME = re.compile(r"^(flannel\.\d+|flannel-wg|vxlan\.calico|vxlan-v6\.calico|tunl0|"
                         r"cilium_vxlan|cilium_geneve|weave|vxlan_sys_\d+|genev_sys_\d+|"
                         r"antrea-gw0|antrea-tun0|wireguard\.cali|cilium_wg0|kube-ipvs0)$")


# -- raw outputs -----------------------------------------------------------------------------


def raw_outputs(ev: Evidence, *kinds: str, command: re.Pattern[str] | None = None,
                node: str | None = None) -> list[RawOutput]:
    """Raw outputs of these kinds, or whose command matches `command`, on `node` if given."""
    out: list[RawOutput] = []
    for r in ev.raw:
        if node is not None and ev.node_for(r.host) != node:
            continue
        if r.kind in kinds or (command is not None and r.command and command.search(r.command)):
            out.append(r)
    return out


def raw_lines(raw: RawOutput) -> Iterator[tuple[SourceRef, str]]:
    for i, text in enumerate(raw.text.split("\n")):
        yield SourceRef(raw.source.file, raw.source.line + i), text


def find_line(ev: Evidence, pattern: re.Pattern[str], *, node: str | None = None,
              kinds: Sequence[str] = ()) -> EvidenceLine | None:
    """The first raw output line matching `pattern` (for quoting what parsers do not keep
    line by line, e.g. one annotation of a described node)."""
    for r in ev.raw:
        if kinds and r.kind not in kinds:
            continue
        if node is not None and ev.node_for(r.host) not in (node, None):
            continue
        for ref, text in raw_lines(r):
            if pattern.search(text):
                return EvidenceLine(ref.file, ref.line, text.strip())
    return None


def ev_line(source: SourceRef | None, text: str) -> EvidenceLine:
    if source is None:
        return EvidenceLine("<derived>", 0, text.strip())
    return EvidenceLine(source.file, source.line, text.strip())


def host_of_exec(raw: RawOutput, ev: Evidence) -> tuple[str | None, str | None]:
    """(node, pod) a command ran in: a `kubectl exec` output carries its pod (`RawOutput.pod`)
    and runs on that pod's node; `kubectl run ... -- CMD` runs in the pod it creates; anything
    else ran on the prompt's host."""
    if raw.pod:
        return exec_pod(ev, raw.pod)
    if raw.command:
        call = parse_command(raw.command).kubectl
        if call is not None and call.verb == "run" and call.names:
            return exec_pod(ev, f"{call.namespace or ''}/{call.names[0]}")
    return ev.node_for(raw.host), None


# -- cluster nodes -----------------------------------------------------------------------------


def node_of_ip(ev: Evidence, ip: IPAddress | None) -> str | None:
    if ip is None:
        return None
    for name, ips in ev.facts.node_ips.items():
        if ip in ips:
            return ev.node_for(name)
    for node in ev.nodes.values():
        if ip in node.ips:
            return node.name
    return None


def cluster_address(ev: Evidence, node: NodeEvidence) -> Address | None:
    """The address that carries the node's cluster traffic: its InternalIP when one of its
    interfaces holds it, else an address on a subnet that other nodes' IPs are on."""
    for ip in node_ips(ev, node.name):  # the InternalIP first, then other known addresses
        for addr in node.state.addresses:
            if addr.ip == ip and addr.ifname != "lo" and not TUNNEL_NAME.match(addr.ifname) \
                    and not POD_IFACE.match(addr.ifname):
                return addr
    peers = {ip for name, ips in ev.facts.node_ips.items() if ev.node_for(name) != node.name
             for ip in ips}
    for addr in node.state.addresses:
        if addr.ifname == "lo" or TUNNEL_NAME.match(addr.ifname) or POD_IFACE.match(addr.ifname):
            continue
        if addr.network.prefixlen < addr.network.max_prefixlen and any(
                p in addr.network for p in peers if p.version == addr.ip.version):
            return addr
    return None


def cni_names(ev: Evidence) -> set[str]:
    return {f.value for f in ev.facts.cni}


# -- logs and events -----------------------------------------------------------------------------


def matching_logs(ev: Evidence, rx: re.Pattern[str]) -> Iterator[tuple[LogLine, re.Match[str]]]:
    for ln in ev.objects.logs:
        m = rx.search(ln.message) or rx.search(ln.text)
        if m is not None:
            yield ln, m


def all_events(ev: Evidence) -> list[Event]:
    """Events of the cluster, including those shown inside describe outputs (kept once)."""
    seen: set[tuple[str, int]] = set()
    out: list[Event] = []
    pools: list[Iterable[Event]] = [ev.objects.events]
    pools.extend(p.events for p in ev.objects.pods)
    pools.extend(n.events for n in ev.objects.nodes)
    for pool in pools:
        for e in pool:
            key = (e.source.file, e.source.line)
            if key in seen and e.source.line:
                continue
            seen.add(key)
            out.append(e)
    return out


def matching_events(ev: Evidence, rx: re.Pattern[str]) -> Iterator[tuple[Event, re.Match[str]]]:
    for e in all_events(ev):
        m = rx.search(e.message)
        if m is not None:
            yield e, m


def event_node(ev: Evidence, e: Event) -> str | None:
    """The node an event is about: its reporting kubelet, or the node of the pod it names."""
    if e.source_host:
        return ev.node_for(e.source_host)
    if e.object:
        kind, _, name = e.object.partition("/")
        if kind == "node":
            return ev.node_for(name)
        if kind == "pod":
            return ev.pod_node(e.namespace, name)
    return None


def event_text(e: Event) -> str:
    count = f" (x{e.count})" if e.count > 1 else ""
    return f"{e.type or ''} {e.reason or ''}{count}: {e.message}".strip()


def slog_key(ev: Evidence, ln: LogLine) -> str | None:
    """The symptom key S-LOG gives a log line with a socket error (so causes can explain it)."""
    err = ln.net_error
    if err is None:
        return None
    service = is_service_ip(ev, err.dst_ip)
    return (f"svc-unreachable:{err.errno}" if service else f"conn-error:{err.errno}") + \
        f"@{node_key(log_node(ev, ln))}"


# -- links ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """One interface with the `ip -d link` details the overlay modes need."""

    name: str
    kind: str | None = None
    mtu: int | None = None
    mac: str | None = None
    up: bool | None = None
    master: str | None = None
    vni: int | None = None
    port: int | None = None
    local: IPAddress | None = None
    lower: str | None = None  # `dev X` of a tunnel: the underlay device
    source: SourceRef = field(default_factory=lambda: SourceRef("<derived>"))
    text: str = ""  # the header line as written
    detail: str = ""  # the kind line as written (`vxlan id 1 local ... dstport 8472`)
    detail_source: SourceRef | None = None


_LINK_HEAD = re.compile(r"^(\d+):\s+([^:@\s]+)(?:@[^:\s]+)?:\s+<([^>]*)>(.*)$")
_MTU = re.compile(r"\bmtu\s+(\d+)")
_MASTER = re.compile(r"\bmaster\s+(\S+)")
_LINK_ETHER = re.compile(r"^\s+link/\S+\s+((?:[0-9a-f]{2}:){5}[0-9a-f]{2})")
_VXLAN = re.compile(r"^\s+vxlan\s+(?:external\s+)?id\s+(\d+)(.*)$")
_KIND_LINE = re.compile(r"^\s+(vxlan|ipip|geneve|gre|gretap|wireguard|bridge|veth|dummy|"
                        r"ip6tnl|sit|macvlan|ipvlan|vlan|bond|tun)\b")
_BR_LINK = re.compile(r"^(\S+?)(?:@\S+)?\s+(UP|DOWN|UNKNOWN|LOWERLAYERDOWN)\s+"
                      r"((?:[0-9a-f]{2}:){5}[0-9a-f]{2})\s+<([^>]*)>")


def parse_link_details(text: str, source: SourceRef) -> dict[str, LinkInfo]:
    """`ip [-d] link|addr show` text, `ip -br link` or `ip -j [-d] link|addr` JSON → links by
    name. Lines that are none of these are skipped (a pasted output may be cut anywhere)."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, list):
            return _links_from_json(data, source)
    out: dict[str, LinkInfo] = {}
    current: LinkInfo | None = None
    for i, line in enumerate(text.split("\n")):
        ref = SourceRef(source.file, source.line + i)
        head = _LINK_HEAD.match(line)
        if head is not None:
            if current is not None:
                out[current.name] = current
            flags = head.group(3).split(",")
            rest = head.group(4)
            mtu = _MTU.search(rest)
            master = _MASTER.search(rest)
            current = LinkInfo(head.group(2), mtu=int(mtu.group(1)) if mtu else None,
                               up="UP" in flags and "LOWER_UP" in flags,
                               master=master.group(1) if master else None, source=ref,
                               text=line.strip())
            continue
        br = _BR_LINK.match(line)
        if br is not None and current is None:
            out[br.group(1)] = LinkInfo(br.group(1), mac=br.group(3), source=ref,
                                        text=line.strip(), up=br.group(2) != "DOWN")
            continue
        if current is None:
            continue
        ether = _LINK_ETHER.match(line)
        if ether is not None:
            current = _with(current, mac=ether.group(1))
            continue
        vx = _VXLAN.match(line)
        if vx is not None:
            words = vx.group(2).split()
            current = _with(current, kind="vxlan", vni=int(vx.group(1)),
                            local=parse_ip(_after(words, "local")), lower=_after(words, "dev"),
                            port=_int(_after(words, "dstport")), detail=line.strip(),
                            detail_source=ref)
            continue
        kind = _KIND_LINE.match(line)
        if kind is not None and current.kind is None:
            words = line.split()
            current = _with(current, kind=kind.group(1), detail=line.strip(), detail_source=ref,
                            local=parse_ip(_after(words, "local")))
    if current is not None:
        out[current.name] = current
    return out


def _links_from_json(data: list[object], source: SourceRef) -> dict[str, LinkInfo]:
    out: dict[str, LinkInfo] = {}
    for obj in data:
        if not isinstance(obj, dict) or not isinstance(obj.get("ifname"), str):
            continue
        info = obj.get("linkinfo") if isinstance(obj.get("linkinfo"), dict) else {}
        assert isinstance(info, dict)
        idata = info.get("info_data") if isinstance(info.get("info_data"), dict) else {}
        assert isinstance(idata, dict)
        kind = info.get("info_kind")
        flags = obj.get("flags") if isinstance(obj.get("flags"), list) else []
        assert isinstance(flags, list)
        name = obj["ifname"]
        out[name] = LinkInfo(
            name, kind=kind if isinstance(kind, str) else None,
            mtu=obj.get("mtu") if isinstance(obj.get("mtu"), int) else None,
            mac=obj.get("address") if isinstance(obj.get("address"), str) else None,
            up="UP" in flags and "LOWER_UP" in flags,
            master=obj.get("master") if isinstance(obj.get("master"), str) else None,
            vni=idata.get("id") if isinstance(idata.get("id"), int) else None,
            port=idata.get("port") if isinstance(idata.get("port"), int) else None,
            local=parse_ip(str(idata.get("local"))) if idata.get("local") else None,
            lower=idata.get("link") if isinstance(idata.get("link"), str) else None,
            source=source, text=f'"ifname": "{name}"',
        )
    return out


def _with(link: LinkInfo, **changes: object) -> LinkInfo:
    values = {f: getattr(link, f) for f in LinkInfo.__dataclass_fields__}
    values.update(changes)
    return LinkInfo(**values)


def _after(words: Sequence[str], key: str) -> str | None:
    for i, w in enumerate(words[:-1]):
        if w == key:
            return words[i + 1]
    return None


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def links_of(ev: Evidence, node: NodeEvidence | str) -> dict[str, LinkInfo]:
    """A node's links: the parsed NodeState links, completed with the details of any raw
    `ip [-d] link/addr` output of that node (the richest view of each link wins)."""
    name = node if isinstance(node, str) else node.name
    state = ev.nodes[name].state if name in ev.nodes else None
    out: dict[str, LinkInfo] = {}
    if state is not None:
        for link in state.links:
            out[link.name] = LinkInfo(link.name, kind=link.kind, mtu=link.mtu, mac=link.mac,
                                      up=link.up, master=link.master, source=link.source,
                                      text=f"{link.name}: mtu {link.mtu}")
    for raw in raw_outputs(ev, "ip-link", "ip-addr", "ip-d-link", node=name):
        for lname, info in parse_link_details(raw.text, raw.source).items():
            old = out.get(lname)
            if old is None:
                out[lname] = info
                continue
            out[lname] = LinkInfo(
                lname, kind=info.kind or old.kind, mtu=info.mtu or old.mtu,
                mac=info.mac or old.mac, up=info.up if info.up is not None else old.up,
                master=info.master or old.master, vni=info.vni, port=info.port,
                local=info.local, lower=info.lower,
                source=info.source if info.text.startswith(tuple("0123456789")) else old.source,
                text=info.text if info.text.startswith(tuple("0123456789")) else old.text,
                detail=info.detail or old.detail,
                detail_source=info.detail_source or old.detail_source)
    return out


def tunnel_kind(link: LinkInfo) -> str | None:
    """The encapsulation of a tunnel device, from its kind or its well-known name."""
    if link.kind in ENCAP_OVERHEAD:
        return link.kind
    name = link.name
    if name.startswith(("flannel.", "vxlan", "cilium_vxlan", "vxlan_sys_")):
        return "vxlan"
    if name == "tunl0":
        return "ipip"
    if name.startswith(("cilium_geneve", "genev_sys_")):
        return "geneve"
    if name in ("flannel-wg", "wireguard.cali", "cilium_wg0"):
        return "wireguard"
    return None


def vxlan_port(link: LinkInfo, cnis: set[str]) -> tuple[int, str]:
    """(UDP port, how it is known) of a VXLAN device."""
    if link.port:
        return link.port, f"`dstport {link.port}` of {link.name}"
    if link.name.startswith("flannel."):
        return 8472, "flannel's default (Port=0: the kernel default 8472)"
    if link.name.startswith("vxlan.calico"):
        return 4789, "Calico's default VXLAN port"
    if link.name.startswith("cilium_vxlan"):
        return 8472, "Cilium's default VXLAN port"
    for cni in sorted(cnis):
        if cni in VXLAN_DEFAULT_PORT:
            return VXLAN_DEFAULT_PORT[cni], f"{cni}'s default VXLAN port"
    return 4789, "the IANA VXLAN port"


# -- neighbours and forwarding database -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Neigh:
    ip: IPAddress
    mac: str | None
    dev: str | None
    state: str
    source: SourceRef
    text: str


@dataclass(frozen=True, slots=True)
class FdbEntry:
    mac: str
    dev: str | None
    dst: IPAddress | None
    source: SourceRef
    text: str


_NEIGH = re.compile(r"^(?P<ip>[0-9a-f.:]+)(?:\s+dev\s+(?P<dev>\S+))?(?:\s+lladdr\s+(?P<mac>\S+))?"
                    r"(?:\s+\w+)*?\s+(?P<state>PERMANENT|REACHABLE|STALE|DELAY|PROBE|FAILED|"
                    r"INCOMPLETE|NOARP|NONE)\s*$")
_FDB = re.compile(r"^(?P<mac>(?:[0-9a-f]{2}:){5}[0-9a-f]{2})(?:\s+dev\s+(?P<dev>\S+))?.*?"
                  r"(?:\s+dst\s+(?P<dst>[0-9a-f.:]+))?(?:\s|$)")


def _dev_of_command(command: str | None) -> str | None:
    if not command:
        return None
    words = command.split()
    return _after(words, "dev")


def neighbours(ev: Evidence, node: str) -> list[Neigh]:
    out: list[Neigh] = []
    for raw in raw_outputs(ev, "ip-neigh", node=node):
        dev = _dev_of_command(raw.command)
        for ref, text in raw_lines(raw):
            m = _NEIGH.match(text.strip())
            ip = parse_ip(m.group("ip")) if m else None
            if m is None or ip is None:
                continue
            out.append(Neigh(ip, m.group("mac"), m.group("dev") or dev, m.group("state"), ref,
                             text.strip()))
    return out


def fdb_entries(ev: Evidence, node: str) -> list[FdbEntry]:
    out: list[FdbEntry] = []
    for raw in raw_outputs(ev, "bridge-fdb", command=re.compile(r"\bbridge\s+fdb\b"), node=node):
        dev = _dev_of_command(raw.command)
        for ref, text in raw_lines(raw):
            line = text.strip()
            m = _FDB.match(line)
            if m is None:
                continue
            dst = re.search(r"\bdst\s+(\S+)", line)
            devm = re.search(r"\bdev\s+(\S+)", line)
            out.append(FdbEntry(m.group("mac"), devm.group(1) if devm else dev,
                                parse_ip(dst.group(1)) if dst else None, ref, line))
    return out


# -- data path -----------------------------------------------------------------------------------


def route_to(state: NodeState, dst: IPAddress) -> Route | None:
    """The route a locally generated packet to `dst` takes (None when unroutable)."""
    result = datapath(state).fibs[dst.version].lookup(dst, iif="lo")
    return result.route if result.ok else None


def pod_iface(state: NodeState, pod_ip: IPAddress) -> str | None:
    """The interface a pod's packets arrive on: the device of the node's route to the pod
    (a cali*/lxc* veth for routed CNIs, the bridge (cni0) for bridged ones; with
    br_netfilter the bridge is what iptables' -i sees)."""
    route = route_to(state, pod_ip)
    if route is None or route.type != RouteType.UNICAST or route.gateway is not None:
        return None
    return route.dev


def trace_from_pod(node: NodeEvidence, pod_ip: IPAddress, dst: IPAddress, dport: int | None,
                   proto: str) -> Trace | None:
    """A pod's packet as the node receives it (None when the node has no route to the pod)."""
    iif = pod_iface(node.state, pod_ip)
    if iif is None:
        return None
    return datapath(node.state).trace(dst=dst, dport=dport, proto=proto, src=pod_ip, iif=iif)


def trace_received(state: NodeState, *, src: IPAddress, dst: IPAddress, dport: int | None,
                   proto: str, iif: str) -> Trace:
    return datapath(state).trace(dst=dst, dport=dport, proto=proto, src=src, iif=iif)


def trace_local(state: NodeState, dst: IPAddress, dport: int | None, proto: str) -> Trace:
    return datapath(state).trace(dst=dst, dport=dport, proto=proto)


def passes(trace: Trace) -> bool:
    return trace.verdict in (Verdict.DELIVERED_LOCAL, Verdict.SENT, Verdict.FORWARDED)


def deciding_step_lines(trace: Trace, limit: int = 3) -> list[EvidenceLine]:
    """The rule/route lines that decided a trace's main outcome (last steps first)."""
    out: list[EvidenceLine] = []
    for step in reversed(trace.main.steps):
        if step.source is None or not step.rule or step.rule.startswith("policy ") \
                or step.source.file.startswith("<"):
            continue
        out.append(EvidenceLine(step.source.file, step.source.line,
                                f"{step.rule}   ← {step.hook} {step.table}: {step.action}"))
        if len(out) >= limit:
            break
    if not out:
        last = trace.main.steps[-1] if trace.main.steps else None
        if last is not None:
            where = f"{last.hook} {last.table} {last.chain}".strip()
            out.append(EvidenceLine("trace", 0, f"{where}: {last.action}"))
    return out


def trace_summary(trace: Trace) -> str:
    o = trace.main
    where = f" out {o.interface}" if o.interface else ""
    nh = f" to next hop {o.next_hop}" if o.next_hop else ""
    icmp = f" (ICMP {o.icmp})" if o.icmp else ""
    return (f"{trace.origin} → {trace.packet.endpoint('dst')}/{trace.packet.proto} on "
            f"{trace.node}: {o.verdict.value}{where}{nh}{icmp}")


def route_mtu(route: Route) -> int | None:
    m = re.search(r"\bmtu\s+(?:lock\s+)?(\d+)", route.raw)
    return int(m.group(1)) if m else None


def host_of(net: IPNetwork, n: int = 0) -> IPAddress:
    """The n-th usable address of a network (the address itself for /32 and /31)."""
    if net.prefixlen >= net.max_prefixlen - 1:
        return net.network_address
    return net.network_address + 1 + n


def in_any(ip: IPAddress, nets: Iterable[IPNetwork]) -> bool:
    return any(ip.version == n.version and ip in n for n in nets)


def network_of(text: str) -> IPNetwork | None:
    try:
        return ip_network(text, strict=False)
    except ValueError:
        return None


def address(text: str | None) -> IPAddress | None:
    if text is None:
        return None
    try:
        return ip_address(text)
    except ValueError:
        return None


# -- what-if rulesets and firewall flavours ------------------------------------------------------


def with_rule_first(state: NodeState, table: str, chain: str, rule: str,
                    source: str = "fix") -> NodeState:
    """The node with `-I CHAIN 1 RULE` applied (a proposed fix, to be re-traced)."""
    from dataclasses import replace

    from netsleuth.model.netfilter import Chain, Ruleset, Table
    from netsleuth.parse.iptables_save import parse_iptables_save

    text = f"*{table}\n:{chain} ACCEPT [0:0]\n-A {chain} {rule}\nCOMMIT\n"
    new_rule = parse_iptables_save(text, source).tables[table].chains[chain].rules[0]
    tables = dict(state.ruleset.tables)
    old_table = tables.get(table)
    chains = dict(old_table.chains) if old_table is not None else {}
    old = chains.get(chain)
    policy = old.policy if old is not None else "ACCEPT"
    chains[chain] = Chain(chain, (new_rule,) + (old.rules if old is not None else ()),
                          policy=policy if chain.isupper() else None)
    tables[table] = Table(table, chains)
    ruleset = Ruleset(tables, state.ruleset.family, state.ruleset.origin, state.ruleset.issues)
    return replace(state, ruleset=ruleset,
                   assumptions=state.assumptions + (f"what-if: iptables -t {table} -I {chain} 1 "
                                                    f"{rule}",))


def firewall_flavour(state: NodeState) -> str:
    """Which host firewall wrote the rules: firewalld, ufw, iptables-services or plain."""
    chains = {name for t in state.ruleset.tables.values() for name in t.chains}
    if any(c.startswith(("IN_public", "INPUT_direct", "IN_", "FWDI_")) for c in chains):
        return "firewalld"
    if any(c.startswith("ufw-") for c in chains):
        return "ufw"
    for t in state.ruleset.tables.values():
        for c in t.chains.values():
            if any("icmp-host-prohibited" in r.raw for r in c.rules):
                return "iptables-services"
    return "iptables"


def permanent_allow(state: NodeState, proto: str, port: int, src: str | None) -> str:
    flavour = firewall_flavour(state)
    if flavour == "firewalld":
        if src:
            return (f"firewall-cmd --permanent --add-rich-rule='rule family=ipv4 source "
                    f"address={src} port port={port} protocol={proto} accept' && "
                    "firewall-cmd --reload")
        return f"firewall-cmd --permanent --add-port={port}/{proto} && firewall-cmd --reload"
    if flavour == "ufw":
        return f"ufw allow proto {proto} from {src or 'any'} to any port {port}"
    if flavour == "iptables-services":
        return (f"add `-A INPUT {'-s ' + src + ' ' if src else ''}-p {proto} -m {proto} "
                f"--dport {port} -j ACCEPT` before the REJECT line of /etc/sysconfig/iptables, "
                "then: systemctl restart iptables")
    return (f"persist the ACCEPT rule with the node's firewall tooling (iptables-save > "
            f"/etc/iptables/rules.v4), allowing {proto}/{port}" + (f" from {src}" if src else ""))


def route_lines(trace: Trace) -> list[EvidenceLine]:
    """The route(s) the trace's main outcome took, quoted from their source."""
    out: list[EvidenceLine] = []
    for step in trace.main.steps:
        if step.hook in ("route", "reroute") and step.source is not None and step.rule \
                and not step.source.file.startswith("<"):
            out.append(EvidenceLine(step.source.file, step.source.line,
                                    f"{step.rule}   ← {step.action}"))
    return out


KUBECTL_KINDS = ("kubectl-describe-node", "kubectl-describe", "kubectl-json", "kubectl-yaml",
                 "kubectl-get-nodes", "kubectl-logs", "kubectl-describe-pod")
