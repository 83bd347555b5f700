"""Snapshot one network namespace from live kernel state, in the node snapshot layout.

Links, addresses, routes (every table, every family) and policy rules are read over netlink with
pyroute2 and written in exactly the JSON shape `ip -j` (iproute2 6.1) prints, so the parsers that
read a user's `ip -j addr show > ip-addr.json` read ours unchanged; tests/lab compares the two
byte for byte after JSON decoding. The field order and the "print only when not default" rules
follow iproute2's ip/ipaddress.c (print_linkinfo, print_addrinfo), ip/iproute.c (print_route)
and ip/iprule.c (print_rule).

`iptables-save`, `ip6tables-save`, `conntrack -L` (when installed) and the hostname come from
the commands themselves; sysctls are read from /proc/sys/net inside the namespace (the files resolve against
the namespace of the thread that opens them).

This is an edge module (collect/): it does I/O. docs/node-snapshot.md describes the layout.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute, NetNS

from netsleuth.errors import CollectError

Msg = Any  # a pyroute2 netlink message (dict-like, with get_attr)
Obj = dict[str, Any]

# --------------------------------------------------------------------------- iproute2 name tables
# The built-in tables of lib/rt_names.c, overridden by /etc/iproute2/* files as iproute2 does.

_PROTOS = {
    0: "unspec",
    1: "redirect",
    2: "kernel",
    3: "boot",
    4: "static",
    8: "gated",
    9: "ra",
    10: "mrt",
    11: "zebra",
    12: "bird",
    13: "dnrouted",
    14: "xorp",
    15: "ntk",
    16: "dhcp",
    18: "keepalived",
    42: "babel",
    99: "openr",
    186: "bgp",
    187: "isis",
    188: "ospf",
    189: "rip",
    192: "eigrp",
}
_SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
_TABLES = {0: "unspec", 253: "default", 254: "main", 255: "local"}
_GROUPS = {0: "default"}
_RTN_TYPES = {
    0: "none",
    1: "unicast",
    2: "local",
    3: "broadcast",
    4: "anycast",
    5: "multicast",
    6: "blackhole",
    7: "unreachable",
    8: "prohibit",
    9: "throw",
    10: "nat",
    11: "xresolve",
}
_OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
_LL_TYPES = {
    0: "netrom",
    1: "ether",
    772: "loopback",
    768: "ipip",
    769: "tunnel6",
    776: "sit",
    778: "gre",
    823: "ip6gre",
    0xFFFE: "none",
    0xFFFF: "void",
}

# include/uapi/linux/if.h net_device_flags, in the order print_link_flags() prints them.
_IFF = (
    ("LOOPBACK", 0x8),
    ("BROADCAST", 0x2),
    ("POINTOPOINT", 0x10),
    ("MULTICAST", 0x1000),
    ("NOARP", 0x80),
    ("ALLMULTI", 0x200),
    ("PROMISC", 0x100),
    ("MASTER", 0x400),
    ("SLAVE", 0x800),
    ("DEBUG", 0x4),
    ("DYNAMIC", 0x8000),
    ("AUTOMEDIA", 0x4000),
    ("PORTSEL", 0x2000),
    ("NOTRAILERS", 0x20),
    ("UP", 0x1),
    ("LOWER_UP", 0x10000),
    ("DORMANT", 0x20000),
    ("ECHO", 0x40000),
)
IFF_UP, IFF_RUNNING, IFF_POINTOPOINT = 0x1, 0x40, 0x10

# ifa_flag_names[] of ip/ipaddress.c: bit i has name i.
_IFA_FLAGS = (
    "secondary",
    "nodad",
    "optimistic",
    "dadfailed",
    "home",
    "deprecated",
    "tentative",
    "permanent",
    "mngtmpaddr",
    "noprefixroute",
    "autojoin",
    "stable-privacy",
)
IFA_F_PERMANENT = 0x80
IFA_F_SECONDARY = 0x01

# print_rt_flags() of ip/iproute.c, in print order.
_RT_FLAGS = (
    ("dead", 0x1),
    ("onlink", 0x4),
    ("pervasive", 0x2),
    ("offload", 0x8),
    ("rt_offload", 0x4000),
    ("rt_trap", 0x8000),
    ("notify", 0x100),
    ("linkdown", 0x10),
    ("unresolved", 0x20),
    ("rt_offload_failed", 0x20000000),
)
RTM_F_CLONED = 0x200
RTPROT_BOOT = 3
RTPROT_KERNEL = 2
RT_TABLE_MAIN = 254

FIB_RULE_INVERT = 0x2
FIB_RULE_UNRESOLVED = 0x4
FIB_RULE_IIF_DETACHED = 0x8
FIB_RULE_OIF_DETACHED = 0x10
FR_ACT_TO_TBL, FR_ACT_GOTO, FR_ACT_NOP = 1, 2, 3

_RTAX = {
    2: "mtu",
    3: "window",
    4: "rtt",
    5: "rttvar",
    6: "ssthresh",
    7: "cwnd",
    8: "advmss",
    9: "reordering",
    10: "hoplimit",
    11: "initcwnd",
    12: "features",
    13: "rto_min",
    14: "initrwnd",
    15: "quickack",
    16: "congestion",
    17: "fastopen_no_cookie",
}


def _read_names(path: str, base: dict[int, str]) -> dict[int, str]:
    """iproute2's rtnl_tab_initialize: `NUMBER NAME` lines, '#' comments; files override."""
    names = dict(base)
    files = [Path(path)]
    d = Path(path + ".d")
    if d.is_dir():
        files += sorted(d.glob("*.conf"))
    for f in files:
        try:
            lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 2:
                try:
                    names[int(parts[0], 0)] = parts[1]
                except ValueError:
                    continue
    return names


class _Names:
    def __init__(self) -> None:
        self.protos = _read_names("/etc/iproute2/rt_protos", _PROTOS)
        self.scopes = _read_names("/etc/iproute2/rt_scopes", _SCOPES)
        self.tables = _read_names("/etc/iproute2/rt_tables", _TABLES)
        self.groups = _read_names("/etc/iproute2/group", _GROUPS)

    @staticmethod
    def get(table: dict[int, str], value: int) -> str:
        return table.get(value, str(value))


# --------------------------------------------------------------------------- helpers


def _attr(msg: Msg, name: str) -> Any:
    return msg.get_attr(name)


def _has(msg: Msg, name: str) -> bool:
    return any(a[0] == name for a in msg.get("attrs", ()))


def _host_len(family: int) -> int:
    return 32 if family == socket.AF_INET else 128


def _family_name(family: int) -> str:
    names: dict[int, str] = {int(socket.AF_INET): "inet", int(socket.AF_INET6): "inet6"}
    return names.get(family, str(family))


# --------------------------------------------------------------------------- links and addresses


def _link_objects(links: list[Msg], names: _Names, do_link: bool) -> list[Obj]:
    by_index = {ln["index"]: ln for ln in links}
    out = []
    for ln in links:
        o: Obj = {"ifindex": ln["index"]}
        mdown = False
        iflink = _attr(ln, "IFLA_LINK")
        if iflink is not None:
            if iflink == 0:
                o["link"] = None
            elif _has(ln, "IFLA_LINK_NETNSID"):
                o["link_index"] = iflink
            else:
                peer = by_index.get(iflink)
                o["link"] = _attr(peer, "IFLA_IFNAME") if peer else f"if{iflink}"
                mdown = peer is not None and not peer["flags"] & IFF_UP
        o["ifname"] = _attr(ln, "IFLA_IFNAME")
        o["flags"] = _link_flags(ln["flags"], mdown)
        if _has(ln, "IFLA_MTU"):
            o["mtu"] = _attr(ln, "IFLA_MTU")
        if _has(ln, "IFLA_QDISC"):
            o["qdisc"] = _attr(ln, "IFLA_QDISC")
        master = _attr(ln, "IFLA_MASTER")
        if master is not None:
            m = by_index.get(master)
            o["master"] = _attr(m, "IFLA_IFNAME") if m else f"if{master}"
        oper = _attr(ln, "IFLA_OPERSTATE")
        if oper is not None:
            o["operstate"] = oper if isinstance(oper, str) else _OPERSTATES[oper]
        if do_link and _has(ln, "IFLA_LINKMODE"):
            o["linkmode"] = "DORMANT" if _attr(ln, "IFLA_LINKMODE") else "DEFAULT"
        if _has(ln, "IFLA_GROUP"):
            o["group"] = names.get(names.groups, _attr(ln, "IFLA_GROUP"))
        if _has(ln, "IFLA_TXQLEN"):
            o["txqlen"] = _attr(ln, "IFLA_TXQLEN")
        o["link_type"] = _LL_TYPES.get(ln["ifi_type"], f"[{ln['ifi_type']}]")
        if _has(ln, "IFLA_ADDRESS"):
            o["address"] = _attr(ln, "IFLA_ADDRESS")
        if _has(ln, "IFLA_BROADCAST"):
            o["peer" if ln["flags"] & IFF_POINTOPOINT else "broadcast"] = _attr(ln, "IFLA_BROADCAST")
        if _has(ln, "IFLA_LINK_NETNSID"):
            o["link_netnsid"] = _attr(ln, "IFLA_LINK_NETNSID")
        if _attr(ln, "IFLA_PROTO_DOWN"):
            o["proto_down"] = True
        out.append(o)
    return out


def _link_flags(flags: int, mdown: bool) -> list[str]:
    names = []
    if flags & IFF_UP and not flags & IFF_RUNNING:
        names.append("NO-CARRIER")
    flags &= ~IFF_RUNNING
    for name, bit in _IFF:
        if flags & bit:
            flags &= ~bit
            names.append(name)
    if flags:
        names.append(f"{flags:x}")
    if mdown:
        names.append("M-DOWN")
    return names


def _addr_object(a: Msg, names: _Names) -> Obj:
    family = a["family"]
    o: Obj = {"family": _family_name(family)}
    local, address = _attr(a, "IFA_LOCAL"), _attr(a, "IFA_ADDRESS")
    if local is not None:
        o["local"] = local
        if address is not None and address != local:
            o["address"] = address
        o["prefixlen"] = a["prefixlen"]
        if _has(a, "IFA_RT_PRIORITY"):
            o["metric"] = _attr(a, "IFA_RT_PRIORITY")
    elif address is not None:
        # IPv6 addresses carry only IFA_ADDRESS (ipaddress.c prints it as "local")
        o["local"] = address
        o["prefixlen"] = a["prefixlen"]
        if _has(a, "IFA_RT_PRIORITY"):
            o["metric"] = _attr(a, "IFA_RT_PRIORITY")
    if _has(a, "IFA_BROADCAST"):
        o["broadcast"] = _attr(a, "IFA_BROADCAST")
    if _has(a, "IFA_ANYCAST"):
        o["anycast"] = _attr(a, "IFA_ANYCAST")
    o["scope"] = names.get(names.scopes, a["scope"])
    flags = _attr(a, "IFA_FLAGS")
    flags = a["flags"] if flags is None else flags
    for i, name in enumerate(_IFA_FLAGS):
        bit = 1 << i
        if bit == IFA_F_PERMANENT:
            if not flags & bit:
                o["dynamic"] = True
        elif flags & bit:
            o["temporary" if bit == IFA_F_SECONDARY and family == socket.AF_INET6 else name] = True
        flags &= ~bit
    if _has(a, "IFA_LABEL"):
        o["label"] = _attr(a, "IFA_LABEL")
    ci = _attr(a, "IFA_CACHEINFO")
    if ci is not None:
        o["valid_life_time"] = ci["ifa_valid"]
        o["preferred_life_time"] = ci["ifa_preferred"]
    return o


def ip_addr(ipr: IPRoute, names: _Names | None = None) -> list[Obj]:
    """`ip -j addr show`."""
    names = names or _Names()
    links = list(ipr.get_links())
    objs = _link_objects(links, names, do_link=False)
    addrs = list(ipr.get_addr())
    for o in objs:
        o["addr_info"] = [_addr_object(a, names) for a in addrs if a["index"] == o["ifindex"]]
    return objs


def ip_link(ipr: IPRoute, names: _Names | None = None) -> list[Obj]:
    """`ip -j link show`."""
    return _link_objects(list(ipr.get_links()), names or _Names(), do_link=True)


# --------------------------------------------------------------------------- routes


def _route_object(r: Msg, ifnames: dict[int, str], names: _Names) -> Obj:
    family = r["family"]
    host_len = _host_len(family)
    o: Obj = {}
    if r["type"] != 1:
        o["type"] = _RTN_TYPES.get(r["type"], str(r["type"]))
    dst = _attr(r, "RTA_DST")
    if dst is not None:
        o["dst"] = dst if r["dst_len"] == host_len else f"{dst}/{r['dst_len']}"
    elif r["dst_len"]:
        o["dst"] = f"0/{r['dst_len']}"
    else:
        o["dst"] = "default"
    src = _attr(r, "RTA_SRC")
    if src is not None:
        o["src"] = src if r["src_len"] == host_len else f"{src}/{r['src_len']}"
    elif r["src_len"]:
        o["src"] = f"0/{r['src_len']}"
    raw = _raw_route_attrs(r)
    if RTA_NH_ID in raw:
        o["nhid"] = struct.unpack("=I", raw[RTA_NH_ID][:4])[0]
    if r["tos"]:
        o["tos"] = f"0x{r['tos']:02x}"
    if _has(r, "RTA_GATEWAY"):
        o["gateway"] = _attr(r, "RTA_GATEWAY")
    via = _attr(r, "RTA_VIA")
    if via is not None:
        o["via"] = {"family": _family_name(via.get("family", 0)), "host": via.get("addr")}
    oif = _attr(r, "RTA_OIF")
    if oif is not None:
        o["dev"] = ifnames.get(oif, f"if{oif}")
    table = _attr(r, "RTA_TABLE") or r["table"]
    if table and table != RT_TABLE_MAIN:
        o["table"] = names.get(names.tables, table)
    if not r["flags"] & RTM_F_CLONED:
        if r["proto"] != RTPROT_BOOT:
            o["protocol"] = names.get(names.protos, r["proto"])
        if r["scope"] != 0:
            o["scope"] = names.get(names.scopes, r["scope"])
    if _has(r, "RTA_PREFSRC"):
        o["prefsrc"] = _attr(r, "RTA_PREFSRC")
    if _has(r, "RTA_PRIORITY"):
        o["metric"] = _attr(r, "RTA_PRIORITY")
    o["flags"] = _rt_flags(r["flags"])
    if _has(r, "RTA_MARK"):
        o["mark"] = _attr(r, "RTA_MARK")
    flow = _attr(r, "RTA_FLOW")
    if flow is not None:
        o["flow"] = _flow(flow)
    ci = _attr(r, "RTA_CACHEINFO")
    if ci is not None and ci.get("rta_expires"):
        o["expires"] = ci["rta_expires"] // 100  # jiffies at USER_HZ=100, as iproute2 prints
    if RTA_METRICS in raw:
        m = _metrics(_walk_nla(raw[RTA_METRICS]))
        if m:
            o["metrics"] = [m]
    iif = _attr(r, "RTA_IIF")
    if iif is not None:
        o["iif"] = ifnames.get(iif, f"if{iif}")
    pref = _attr(r, "RTA_PREF")
    if pref is not None:
        o["pref"] = {0: "medium", 1: "high", 3: "low"}.get(pref, str(pref))
    mp = _attr(r, "RTA_MULTIPATH")
    if mp is not None:
        hops = []
        for nh in mp:
            h: Obj = {}
            gw = nh.get_attr("RTA_GATEWAY") if hasattr(nh, "get_attr") else None
            if gw is not None:
                h["gateway"] = gw
            nvia = nh.get_attr("RTA_VIA") if hasattr(nh, "get_attr") else None
            if nvia is not None:
                h["via"] = {"family": _family_name(nvia.get("family", 0)), "host": nvia.get("addr")}
            if nh["oif"]:
                h["dev"] = ifnames.get(nh["oif"], f"if{nh['oif']}")
            h["weight"] = nh["hops"] + 1
            h["flags"] = _rt_flags(nh["flags"])
            hops.append(h)
        o["nexthops"] = hops
    return o


RTA_METRICS, RTA_NH_ID = 8, 30
RTMSG_LEN, NLMSG_HDRLEN = 12, 16


def _walk_nla(data: bytes) -> dict[int, bytes]:
    """Attributes of a netlink attribute stream by type (first occurrence wins)."""
    out: dict[int, bytes] = {}
    off = 0
    while off + 4 <= len(data):
        length, typ = struct.unpack_from("=HH", data, off)
        if length < 4:
            break
        out.setdefault(typ & 0x3FFF, data[off + 4 : off + length])
        off += (length + 3) & ~3
    return out


def _raw_route_attrs(r: Msg) -> dict[int, bytes]:
    # pyroute2 0.9 has no decoder for RTA_NH_ID or the newest RTAX_* metrics; read the raw
    # attributes from the message buffer instead.
    data = getattr(r, "data", None)
    if not data:
        return {}
    start = r.offset + NLMSG_HDRLEN + RTMSG_LEN
    return _walk_nla(bytes(data[start : r.offset + r["header"]["length"]]))


def _rt_flags(flags: int) -> list[str]:
    return [name for name, bit in _RT_FLAGS if flags & bit]


def _flow(value: int) -> Obj:
    # RTA_FLOW: realm "to" in the low 16 bits, "from" in the high 16 (print_rta_flow)
    out: Obj = {}
    if value >> 16:
        out["from"] = str(value >> 16)
    out["to"] = str(value & 0xFFFF)
    return out


def _metrics(attrs: dict[int, bytes]) -> Obj:
    """print_rta_metrics(): RTAX_* in numeric order; rtt/rttvar are stored scaled by 8/4."""
    out: Obj = {}
    for typ in sorted(attrs):
        name = _RTAX.get(typ)
        if name is None:
            continue  # RTAX_LOCK (1) only adds the word "lock" in text output
        raw = attrs[typ]
        if name == "congestion":
            out[name] = raw.split(b"\0", 1)[0].decode()
            continue
        value = struct.unpack("=I", raw[:4])[0]
        if name == "rtt":
            out[name] = value // 8
        elif name == "rttvar":
            out[name] = value // 4
        elif name == "features":
            if value & 1:  # RTAX_FEATURE_ECN
                out["ecn"] = None
        else:
            out[name] = value
    return out


def ip_route(ipr: IPRoute, names: _Names | None = None, family: int = socket.AF_UNSPEC) -> list[Obj]:
    """`ip -j route show table all` (all families, like iproute2 without -4/-6)."""
    names = names or _Names()
    ifnames = {ln["index"]: ln.get_attr("IFLA_IFNAME") for ln in ipr.get_links()}
    out = []
    for fam in (socket.AF_INET, socket.AF_INET6) if family == socket.AF_UNSPEC else (family,):
        for r in ipr.get_routes(family=fam):
            if r["flags"] & RTM_F_CLONED:
                continue  # route cache entries: `ip route show` hides them (filter.cloned)
            if (
                fam == socket.AF_INET6
                and r["type"] == 7
                and _attr(r, "RTA_DST") is None
                and r["dst_len"] == 0
                and (_attr(r, "RTA_TABLE") or r["table"]) == 255
            ):
                continue  # the kernel's ip6_null_entry placeholder, hidden by iproute2
            out.append(_route_object(r, ifnames, names))
    return out


# --------------------------------------------------------------------------- rules


def _rule_object(r: Msg, names: _Names) -> Obj:
    family = r["family"]
    host_len = _host_len(family)
    o: Obj = {"priority": _attr(r, "FRA_PRIORITY") or 0}
    if r["flags"] & FIB_RULE_INVERT:
        o["not"] = None
    src = _attr(r, "FRA_SRC")
    if src is not None:
        o["src"] = src
        if r["src_len"] != host_len:
            o["srclen"] = r["src_len"]
    elif r["src_len"]:
        o["src"] = "0"
        o["srclen"] = r["src_len"]
    else:
        o["src"] = "all"
    dst = _attr(r, "FRA_DST")
    if dst is not None:
        o["dst"] = dst
        if r["dst_len"] != host_len:
            o["dstlen"] = r["dst_len"]
    elif r["dst_len"]:
        o["dst"] = "0"
        o["dstlen"] = r["dst_len"]
    if r["tos"]:
        o["tos"] = f"0x{r['tos']:02x}"
    mark, mask = _attr(r, "FRA_FWMARK"), _attr(r, "FRA_FWMASK")
    if mark is not None or mask is not None:
        o["fwmark"] = hex(mark or 0)
        if mask is not None and mask != 0xFFFFFFFF:
            o["fwmask"] = hex(mask)
    iif = _attr(r, "FRA_IIFNAME")
    if iif is not None:
        o["iif"] = iif
        if r["flags"] & FIB_RULE_IIF_DETACHED:
            o["iif_detached"] = None
    oif = _attr(r, "FRA_OIFNAME")
    if oif is not None:
        o["oif"] = oif
        if r["flags"] & FIB_RULE_OIF_DETACHED:
            o["oif_detached"] = None
    if _attr(r, "FRA_L3MDEV"):
        o["l3mdev"] = None
    uid = _range(_attr(r, "FRA_UID_RANGE"))
    if uid is not None:
        o["uid_start"], o["uid_end"] = uid
    proto = _attr(r, "FRA_IP_PROTO")
    if proto is not None:
        o["ipproto"] = {6: "tcp", 17: "udp", 1: "icmp", 132: "sctp"}.get(proto, f"ipproto-{proto}")
    for key, attr in (("sport", "FRA_SPORT_RANGE"), ("dport", "FRA_DPORT_RANGE")):
        rng = _range(_attr(r, attr))
        if rng is not None:
            if rng[0] == rng[1]:
                o[key] = rng[0]
            else:
                o[f"{key}_start"], o[f"{key}_end"] = rng
    table = _attr(r, "FRA_TABLE") or r["table"]
    if table:
        o["table"] = names.get(names.tables, table)
        spl = _attr(r, "FRA_SUPPRESS_PREFIXLEN")
        if spl is not None and spl != 0xFFFFFFFF:
            o["suppress_prefixlen"] = spl
        sig = _attr(r, "FRA_SUPPRESS_IFGROUP")
        if sig is not None and sig != 0xFFFFFFFF:
            o["suppress_ifgroup"] = names.get(names.groups, sig)
    flow = _attr(r, "FRA_FLOW")
    if flow is not None:
        o["flow"] = _flow(flow)
    action = r["action"]
    if action == FR_ACT_GOTO:
        goto = _attr(r, "FRA_GOTO")
        o["goto"] = goto if goto is not None else "none"
        if r["flags"] & FIB_RULE_UNRESOLVED:
            o["unresolved"] = None
    elif action == FR_ACT_NOP:
        o["nop"] = None
    elif action != FR_ACT_TO_TBL:
        o["action"] = _RTN_TYPES.get(action, str(action))
    protocol = _attr(r, "FRA_PROTOCOL")
    if protocol and protocol != RTPROT_KERNEL:
        o["protocol"] = names.get(names.protos, protocol)
    return o


def _range(value: Any) -> tuple[int, int] | None:
    # pyroute2 decodes FRA_*_RANGE as "start:end"
    if value is None:
        return None
    start, _, end = str(value).partition(":")
    return int(start), int(end or start)


def ip_rule(ipr: IPRoute, names: _Names | None = None, family: int = socket.AF_INET) -> list[Obj]:
    """`ip -j rule show` (IPv4, as iproute2 defaults to)."""
    names = names or _Names()
    return [_rule_object(r, names) for r in ipr.get_rules(family=family)]


# --------------------------------------------------------------------------- the rest


def read_sysctls(netns: str | None) -> dict[str, str]:
    """net.ipv4.*, net.bridge.* and net.ipv6.conf.all.* of a namespace, like `sysctl -a`."""
    from netsleuth.lab.netns import in_netns

    values: dict[str, str] = {}
    roots = ("/proc/sys/net/ipv4", "/proc/sys/net/bridge", "/proc/sys/net/ipv6/conf/all")
    with in_netns(netns):
        for root in roots:
            for path in _walk(root):
                try:
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        text = fh.read()
                except OSError:
                    continue  # write-only (route.flush) or vanished: sysctl -a skips them too
                rel = path[len("/proc/sys/") :].split("/")
                # sysctl(8) shows dots inside a name (an interface eth0.100) as slashes
                key = ".".join(part.replace(".", "/") for part in rel)
                values[key] = text.rstrip("\n")
    return dict(sorted(values.items()))


def _walk(root: str) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield os.path.join(dirpath, name)


def _command(argv: list[str], netns: str | None) -> str | None:
    cmd = ["ip", "netns", "exec", netns, *argv] if netns else argv
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _dump(path: Path, objs: list[Obj]) -> None:
    # `ip -j` prints one line of compact JSON; keep that form.
    path.write_text(json.dumps(objs, separators=(",", ":")) + "\n", encoding="utf-8")


def snapshot_namespace(netns: str | None, out_dir: Path, hostname: str | None = None) -> list[str]:
    """Write a node snapshot of network namespace `netns` (None: this process's) to `out_dir`.

    Returns the names of the files written. `hostname` names the node (a network namespace
    has no hostname of its own; default: the namespace name, or this host's name).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    names = _Names()
    written: list[str] = []
    try:
        ipr = NetNS(netns) if netns else IPRoute()
    except OSError as exc:
        raise CollectError(netns or "localhost", f"cannot open netlink: {exc}") from exc
    try:
        for fname, objs in (
            ("ip-link.json", ip_link(ipr, names)),
            ("ip-addr.json", ip_addr(ipr, names)),
            ("ip-route.json", ip_route(ipr, names)),
            ("ip-rule.json", ip_rule(ipr, names)),
            ("ip6-rule.json", ip_rule(ipr, names, socket.AF_INET6)),
        ):
            _dump(out_dir / fname, objs)
            written.append(fname)
    finally:
        ipr.close()

    (out_dir / "hostname").write_text((hostname or netns or socket.gethostname()) + "\n", encoding="utf-8")
    written.append("hostname")

    if shutil.which("iptables-save"):
        text = _command(["iptables-save"], netns)
        if text is None:
            raise CollectError(netns or "localhost", "iptables-save failed")
        (out_dir / "iptables-save.txt").write_text(text, encoding="utf-8")
        written.append("iptables-save.txt")
    if shutil.which("ip6tables-save"):
        # IPv6 packets meet ip6tables' rules only; without this file a trace says so.
        text = _command(["ip6tables-save"], netns)
        if text is not None:
            (out_dir / "ip6tables-save.txt").write_text(text, encoding="utf-8")
            written.append("ip6tables-save.txt")

    sysctls = read_sysctls(netns)
    (out_dir / "sysctl.txt").write_text("".join(f"{k} = {v}\n" for k, v in sysctls.items()), encoding="utf-8")
    written.append("sysctl.txt")

    if shutil.which("conntrack"):
        text = _command(["conntrack", "-L"], netns)
        if text is not None:
            (out_dir / "conntrack.txt").write_text(text, encoding="utf-8")
            written.append("conntrack.txt")
    return written
