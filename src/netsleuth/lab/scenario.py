"""Lab scenarios: a YAML description of namespaces, links, addresses, routes, rules and faults.

The schema is documented in docs/lab.md. Loading validates every key and value and raises
`ParseError(file, line, "key.path: value", expected)` on the first problem, so a typo in a
scenario says where it is instead of failing half-way through a build.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from netsleuth.errors import LabError, ParseError

SCENARIO_DIR = Path(__file__).parent / "scenarios"

IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$")  # IFNAMSIZ is 16 incl. the NUL
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
PROTOS = ("tcp", "udp")
PROBE_PROTOS = ("tcp", "udp", "icmp")
RESULTS = ("connected", "errno", "timeout")


# --------------------------------------------------------------------------- the schema


@dataclass(frozen=True, slots=True)
class Listener:
    """A tiny server on `address:port` that reports the local and peer address it saw."""

    port: int
    proto: str = "tcp"
    address: str = "0.0.0.0"


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod: its own namespace, joined to its node by a veth like Calico's `cali*` interfaces."""

    name: str
    address: ipaddress.IPv4Address
    host_ifname: str
    listeners: tuple[Listener, ...] = ()


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    sysctls: tuple[tuple[str, str], ...] = ()
    ip: tuple[str, ...] = ()  # extra `ip ...` commands, run after links and addresses
    routes: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    iptables_restore: str | None = None
    listeners: tuple[Listener, ...] = ()
    pods: tuple[Pod, ...] = ()
    router: bool = False  # sets ip_forward=1 (documentation sugar for routers between segments)


@dataclass(frozen=True, slots=True)
class Attachment:
    """One end of a link or a segment member: an interface in a node, with its addresses."""

    node: str
    ifname: str
    addresses: tuple[str, ...] = ()
    mac: str | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """A shared L2 segment: a bridge in the fabric namespace, one veth per member node."""

    name: str
    members: tuple[Attachment, ...]


@dataclass(frozen=True, slots=True)
class VethLink:
    a: Attachment
    b: Attachment


@dataclass(frozen=True, slots=True)
class VxlanLink:
    node: str
    ifname: str
    vni: int
    local: str | None = None
    remote: str | None = None
    dev: str | None = None
    dstport: int = 4789
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Action:
    """One step of a fault or fix, applied to one node (or pod namespace)."""

    node: str
    ip: tuple[str, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    iptables: tuple[str, ...] = ()  # `iptables ARGS` lines
    iptables_restore: str | None = None  # replaces the node's whole ruleset


@dataclass(frozen=True, slots=True)
class Change:
    """A named fault or fix."""

    name: str
    description: str
    actions: tuple[Action, ...]


@dataclass(frozen=True, slots=True)
class Expect:
    result: str
    errno: str | None = None
    listener: str | None = None  # "node:port" or "node/pod:port" of the listener that answered
    listener_local: str | None = None
    listener_peer_ip: str | None = None


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    node: str
    target: str
    proto: str
    expect: Expect
    pod: str | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """Probes to run after applying `after` (fault/fix names, in order) to a fresh build."""

    after: tuple[str, ...]
    probes: tuple[ProbeSpec, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    nodes: tuple[Node, ...]
    segments: tuple[Segment, ...] = ()
    veths: tuple[VethLink, ...] = ()
    vxlans: tuple[VxlanLink, ...] = ()
    faults: tuple[Change, ...] = ()
    fixes: tuple[Change, ...] = ()
    checks: tuple[Check, ...] = ()
    source: str = ""

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise LabError(f"scenario {self.name}: no node {name!r} (nodes: {self.node_names()})")

    def node_names(self) -> str:
        return ", ".join(n.name for n in self.nodes)

    def change(self, kind: str, name: str) -> Change:
        pool = self.faults if kind == "fault" else self.fixes
        for change in pool:
            if change.name == name:
                return change
        known = ", ".join(c.name for c in pool) or "none"
        raise LabError(f"scenario {self.name}: no {kind} {name!r} (known: {known})")

    def any_change(self, name: str) -> Change:
        for change in (*self.faults, *self.fixes):
            if change.name == name:
                return change
        raise LabError(f"scenario {self.name}: no fault or fix {name!r}")


# --------------------------------------------------------------------------- YAML with lines


class _LineDict(dict[str, Any]):
    line: int = 0
    key_lines: dict[str, int]


class _LineList(list[Any]):
    line: int = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    """A SafeLoader that remembers the line of every mapping key and list item."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    result = _LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[str(key)] = loader.construct_object(value_node, deep=True)
        result.key_lines[str(key)] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    result = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class _Ctx:
    """Where we are in the document, for error messages: file, key path, line."""

    def __init__(self, source: str, path: str, line: int) -> None:
        self.source = source
        self.path = path
        self.line = line

    def fail(self, value: object, expected: str) -> ParseError:
        shown = value if isinstance(value, str) else repr(value)
        return ParseError(self.source, self.line, f"{self.path}: {shown}", expected)

    def key(self, mapping: _LineDict, key: str) -> _Ctx:
        line = mapping.key_lines.get(key, mapping.line)
        return _Ctx(self.source, f"{self.path}.{key}" if self.path else key, line)

    def item(self, seq: _LineList, index: int) -> _Ctx:
        line = seq.item_lines[index] if index < len(seq.item_lines) else seq.line
        return _Ctx(self.source, f"{self.path}[{index}]", line)


def _mapping(ctx: _Ctx, value: object, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> _LineDict:
    if value is None:
        value = _LineDict()
        value.key_lines = {}
        value.line = ctx.line
    if not isinstance(value, _LineDict):
        raise ctx.fail(value, "a mapping")
    for key in value:
        if key not in allowed:
            raise ctx.key(value, key).fail(key, f"one of the keys {', '.join(allowed)}")
    for key in required:
        if key not in value:
            raise ctx.fail(f"(keys: {', '.join(value) or 'none'})", f"the required key {key!r}")
    return value


def _list(ctx: _Ctx, value: object) -> _LineList:
    if value is None:
        value = _LineList()
        value.item_lines = []
        value.line = ctx.line
    if not isinstance(value, _LineList):
        raise ctx.fail(value, "a list")
    return value


def _str(ctx: _Ctx, value: object, expected: str = "a string") -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ctx.fail(value, expected)
    return str(value)


def _strings(ctx: _Ctx, value: object) -> tuple[str, ...]:
    seq = _list(ctx, value)
    return tuple(_str(ctx.item(seq, i), v) for i, v in enumerate(seq))


def _int(ctx: _Ctx, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ctx.fail(value, f"an integer in {lo}..{hi}")
    return value


def _name(ctx: _Ctx, value: object, what: str, longest: int = 20) -> str:
    # Node and pod names become part of namespace names; keep them short and shell-safe.
    text = _str(ctx, value)
    if not NAME_RE.match(text) or len(text) > longest:
        raise ctx.fail(text, f"a {what} name: lowercase letters, digits and '-', at most {longest} chars")
    return text


def _ifname(ctx: _Ctx, value: object) -> str:
    text = _str(ctx, value)
    if not IFNAME_RE.match(text):
        raise ctx.fail(text, "an interface name of at most 15 characters (letters, digits, _.-:)")
    return text


def _cidr(ctx: _Ctx, value: object) -> str:
    """An address with prefix length, optionally followed by `ip addr add` options (metric 101)."""
    text = _str(ctx, value)
    first = text.split()[0] if text.split() else ""
    expected = "an address with prefix length, like 192.168.56.3/24 [metric 101]"
    try:
        ipaddress.ip_interface(first)
    except ValueError:
        raise ctx.fail(text, expected) from None
    if "/" not in first:
        raise ctx.fail(text, expected)
    return text


def _ip(ctx: _Ctx, value: object) -> str:
    text = _str(ctx, value)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ctx.fail(text, "an IP address") from None
    return text


def _sysctls(ctx: _Ctx, value: object) -> tuple[tuple[str, str], ...]:
    mapping = _mapping(ctx, value, tuple(value) if isinstance(value, dict) else ())
    out = []
    for key, val in mapping.items():
        kctx = ctx.key(mapping, key)
        if not re.match(r"^net\.[A-Za-z0-9_./-]+$", key):
            raise kctx.fail(key, "a network sysctl key like net.ipv4.ip_forward")
        out.append((key, _str(kctx, val, "a sysctl value")))
    return tuple(out)


def _listeners(ctx: _Ctx, value: object) -> tuple[Listener, ...]:
    seq = _list(ctx, value)
    out = []
    for i, item in enumerate(seq):
        ictx = ctx.item(seq, i)
        m = _mapping(ictx, item, ("port", "proto", "address"), ("port",))
        proto = _str(ictx.key(m, "proto"), m.get("proto", "tcp"))
        if proto not in PROTOS:
            raise ictx.key(m, "proto").fail(proto, "tcp or udp")
        out.append(
            Listener(
                port=_int(ictx.key(m, "port"), m["port"], 1, 65535),
                proto=proto,
                address=_ip(ictx.key(m, "address"), m.get("address", "0.0.0.0")),
            )
        )
    return tuple(out)


def _attachment(ctx: _Ctx, value: object, node_key: str = "node") -> Attachment:
    m = _mapping(ctx, value, (node_key, "ifname", "addresses", "mac"), (node_key, "ifname"))
    addrs = _list(ctx.key(m, "addresses"), m.get("addresses"))
    return Attachment(
        node=_name(ctx.key(m, node_key), m[node_key], "node"),
        ifname=_ifname(ctx.key(m, "ifname"), m["ifname"]),
        addresses=tuple(_cidr(ctx.key(m, "addresses").item(addrs, i), a) for i, a in enumerate(addrs)),
        mac=_str(ctx.key(m, "mac"), m["mac"]) if "mac" in m else None,
    )


def _pods(ctx: _Ctx, value: object, node: str) -> tuple[Pod, ...]:
    pods = _mapping(ctx, value, tuple(value) if isinstance(value, dict) else ())
    out = []
    for index, (name, spec) in enumerate(pods.items()):
        pctx = ctx.key(pods, name)
        pname = _name(pctx, name, "pod")
        m = _mapping(pctx, spec, ("address", "host_ifname", "listeners"), ("address",))
        address = _ip(pctx.key(m, "address"), m["address"])
        default_if = f"cali{index:02d}{node[:5]}{pname[:4]}"[:15]
        out.append(
            Pod(
                name=pname,
                address=ipaddress.IPv4Address(address),
                host_ifname=_ifname(pctx.key(m, "host_ifname"), m.get("host_ifname", default_if)),
                listeners=_listeners(pctx.key(m, "listeners"), m.get("listeners")),
            )
        )
    return tuple(out)


def _node(ctx: _Ctx, name: str, value: object) -> Node:
    keys = ("sysctls", "ip", "routes", "rules", "iptables_restore", "listeners", "pods", "router")
    m = _mapping(ctx, value, keys)
    ipt = m.get("iptables_restore")
    if ipt is not None:
        ipt = _str(ctx.key(m, "iptables_restore"), ipt, "iptables-restore text")
    router = m.get("router", False)
    if not isinstance(router, bool):
        raise ctx.key(m, "router").fail(router, "true or false")
    return Node(
        name=name,
        sysctls=_sysctls(ctx.key(m, "sysctls"), m.get("sysctls")),
        ip=_strings(ctx.key(m, "ip"), m.get("ip")),
        routes=_strings(ctx.key(m, "routes"), m.get("routes")),
        rules=_strings(ctx.key(m, "rules"), m.get("rules")),
        iptables_restore=ipt,
        listeners=_listeners(ctx.key(m, "listeners"), m.get("listeners")),
        pods=_pods(ctx.key(m, "pods"), m.get("pods"), name),
        router=router,
    )


def _changes(ctx: _Ctx, value: object) -> tuple[Change, ...]:
    changes = _mapping(ctx, value, tuple(value) if isinstance(value, dict) else ())
    out = []
    for name, spec in changes.items():
        cctx = ctx.key(changes, name)
        m = _mapping(cctx, spec, ("description", "actions"), ("actions",))
        acts = _list(cctx.key(m, "actions"), m["actions"])
        actions = []
        for i, act in enumerate(acts):
            actx = cctx.key(m, "actions").item(acts, i)
            a = _mapping(actx, act, ("node", "ip", "sysctls", "iptables", "iptables_restore"), ("node",))
            ipt = a.get("iptables_restore")
            actions.append(
                Action(
                    node=_str(actx.key(a, "node"), a["node"]),
                    ip=_strings(actx.key(a, "ip"), a.get("ip")),
                    sysctls=_sysctls(actx.key(a, "sysctls"), a.get("sysctls")),
                    iptables=_strings(actx.key(a, "iptables"), a.get("iptables")),
                    iptables_restore=_str(actx.key(a, "iptables_restore"), ipt) if ipt else None,
                )
            )
        out.append(
            Change(
                name=_name(cctx, name, "fault/fix", longest=60),
                description=_str(cctx.key(m, "description"), m.get("description", "")),
                actions=tuple(actions),
            )
        )
    return tuple(out)


def _expect(ctx: _Ctx, value: object) -> Expect:
    keys = ("result", "errno", "listener", "listener_local", "listener_peer_ip")
    m = _mapping(ctx, value, keys, ("result",))
    result = _str(ctx.key(m, "result"), m["result"])
    if result not in RESULTS:
        raise ctx.key(m, "result").fail(result, "connected, errno or timeout")

    def opt(key: str) -> str | None:
        return _str(ctx.key(m, key), m[key]) if m.get(key) is not None else None

    return Expect(
        result=result,
        errno=opt("errno"),
        listener=opt("listener"),
        listener_local=opt("listener_local"),
        listener_peer_ip=opt("listener_peer_ip"),
    )


def _checks(ctx: _Ctx, value: object) -> tuple[Check, ...]:
    seq = _list(ctx, value)
    out = []
    for i, item in enumerate(seq):
        cctx = ctx.item(seq, i)
        m = _mapping(cctx, item, ("after", "probes"), ("probes",))
        probes_seq = _list(cctx.key(m, "probes"), m["probes"])
        probes = []
        for j, p in enumerate(probes_seq):
            pctx = cctx.key(m, "probes").item(probes_seq, j)
            pm = _mapping(pctx, p, ("node", "pod", "target", "proto", "expect"), ("node", "target", "expect"))
            proto = _str(pctx.key(pm, "proto"), pm.get("proto", "tcp"))
            if proto not in PROBE_PROTOS:
                raise pctx.key(pm, "proto").fail(proto, "tcp, udp or icmp")
            probes.append(
                ProbeSpec(
                    node=_str(pctx.key(pm, "node"), pm["node"]),
                    pod=_str(pctx.key(pm, "pod"), pm["pod"]) if pm.get("pod") else None,
                    target=_str(pctx.key(pm, "target"), pm["target"]),
                    proto=proto,
                    expect=_expect(pctx.key(pm, "expect"), pm["expect"]),
                )
            )
        out.append(Check(after=_strings(cctx.key(m, "after"), m.get("after")), probes=tuple(probes)))
    return tuple(out)


def parse_scenario(text: str, source: str) -> Scenario:
    """Parse and validate scenario YAML `text`; `source` names it in errors."""
    try:
        doc = yaml.load(text, Loader=_Loader)  # _Loader derives from SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 0
        raise ParseError(source, line, str(exc.problem), "valid YAML") from None
    except yaml.YAMLError as exc:
        raise ParseError(source, 0, str(exc), "valid YAML") from None
    root = _Ctx(source, "", 1)
    keys = ("name", "description", "nodes", "segments", "links", "faults", "fixes", "checks")
    m = _mapping(root, doc, keys, ("nodes",))
    default_name = Path(source).stem
    name = _name(root.key(m, "name"), m.get("name", default_name), "scenario")
    nodes_map = _mapping(root.key(m, "nodes"), m["nodes"], tuple(m["nodes"] or ()))
    nodes = tuple(
        _node(
            root.key(m, "nodes").key(nodes_map, k),
            _name(root.key(m, "nodes").key(nodes_map, k), k, "node"),
            v,
        )
        for k, v in nodes_map.items()
    )
    if not nodes:
        raise root.key(m, "nodes").fail("{}", "at least one node")
    node_names = {n.name for n in nodes}

    segs_ctx = root.key(m, "segments")
    segs_map = _mapping(segs_ctx, m.get("segments"), tuple(m.get("segments") or ()))
    segments = []
    for sname, spec in segs_map.items():
        sctx = segs_ctx.key(segs_map, sname)
        sm = _mapping(sctx, spec, ("members",), ("members",))
        members_seq = _list(sctx.key(sm, "members"), sm["members"])
        members = tuple(
            _attachment(sctx.key(sm, "members").item(members_seq, i), mem)
            for i, mem in enumerate(members_seq)
        )
        segments.append(Segment(name=_name(sctx, sname, "segment"), members=members))

    links_ctx = root.key(m, "links")
    links_seq = _list(links_ctx, m.get("links"))
    veths, vxlans = [], []
    for i, spec in enumerate(links_seq):
        lctx = links_ctx.item(links_seq, i)
        kind = spec.get("kind") if isinstance(spec, dict) else None
        if kind == "veth":
            lm = _mapping(lctx, spec, ("kind", "ends"), ("ends",))
            ends = _list(lctx.key(lm, "ends"), lm["ends"])
            if len(ends) != 2:
                raise lctx.key(lm, "ends").fail(f"{len(ends)} ends", "exactly two ends")
            a, b = (_attachment(lctx.key(lm, "ends").item(ends, j), ends[j]) for j in (0, 1))
            veths.append(VethLink(a=a, b=b))
        elif kind == "vxlan":
            keys_vx = (
                "kind",
                "node",
                "ifname",
                "vni",
                "local",
                "remote",
                "dev",
                "dstport",
                "addresses",
            )
            lm = _mapping(lctx, spec, keys_vx, ("node", "ifname", "vni"))
            addrs = _list(lctx.key(lm, "addresses"), lm.get("addresses"))
            vxlans.append(
                VxlanLink(
                    node=_name(lctx.key(lm, "node"), lm["node"], "node"),
                    ifname=_ifname(lctx.key(lm, "ifname"), lm["ifname"]),
                    vni=_int(lctx.key(lm, "vni"), lm["vni"], 1, 16777215),
                    local=_ip(lctx.key(lm, "local"), lm["local"]) if "local" in lm else None,
                    remote=_ip(lctx.key(lm, "remote"), lm["remote"]) if "remote" in lm else None,
                    dev=_ifname(lctx.key(lm, "dev"), lm["dev"]) if "dev" in lm else None,
                    dstport=_int(lctx.key(lm, "dstport"), lm.get("dstport", 4789), 1, 65535),
                    addresses=tuple(
                        _cidr(lctx.key(lm, "addresses").item(addrs, j), a) for j, a in enumerate(addrs)
                    ),
                )
            )
        else:
            raise lctx.fail(kind, "a link with kind: veth or kind: vxlan")

    faults = _changes(root.key(m, "faults"), m.get("faults"))
    fixes = _changes(root.key(m, "fixes"), m.get("fixes"))
    checks = _checks(root.key(m, "checks"), m.get("checks"))
    scenario = Scenario(
        name=name,
        description=_str(root.key(m, "description"), m.get("description", "")),
        nodes=nodes,
        segments=tuple(segments),
        veths=tuple(veths),
        vxlans=tuple(vxlans),
        faults=faults,
        fixes=fixes,
        checks=checks,
        source=source,
    )
    _cross_check(scenario, node_names, root, m)
    return scenario


def _cross_check(s: Scenario, node_names: set[str], root: _Ctx, m: _LineDict) -> None:
    """References between sections: nodes named in links/faults/checks must exist."""
    pod_names = {f"{n.name}/{p.name}" for n in s.nodes for p in n.pods}

    def need_node(ctx: _Ctx, name: str, pods_ok: bool = False) -> None:
        if name not in node_names and not (pods_ok and name in pod_names):
            raise ctx.fail(name, f"a node of this scenario ({', '.join(sorted(node_names))})")

    for seg in s.segments:
        for mem in seg.members:
            need_node(root.key(m, "segments"), mem.node)
    for veth in s.veths:
        need_node(root.key(m, "links"), veth.a.node)
        need_node(root.key(m, "links"), veth.b.node)
    for vx in s.vxlans:
        need_node(root.key(m, "links"), vx.node)
    names: set[str] = set()
    for kind, pool in (("faults", s.faults), ("fixes", s.fixes)):
        for change in pool:
            if change.name in names:
                raise root.key(m, kind).fail(change.name, "fault and fix names unique across both")
            names.add(change.name)
            for act in change.actions:
                need_node(root.key(m, kind), act.node, pods_ok=True)
    for check in s.checks:
        for step in check.after:
            if step not in names:
                raise root.key(m, "checks").fail(step, f"a fault or fix name ({', '.join(sorted(names))})")
        for probe in check.probes:
            need_node(root.key(m, "checks"), probe.node)
            if probe.pod and f"{probe.node}/{probe.pod}" not in pod_names:
                raise root.key(m, "checks").fail(probe.pod, f"a pod of node {probe.node}")


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    """Load a shipped scenario by name (`seed`) or any scenario file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise LabError(
                f"no scenario {name_or_path!r}; shipped: {', '.join(scenario_names())} "
                "(or give a path to a .yaml file)"
            )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabError(f"cannot read scenario {path}: {exc.strerror}") from exc
    return parse_scenario(text, str(path))
