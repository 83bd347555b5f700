"""Everything the detectors may look at, built from one input (pure: texts in, values out).

Three shapes of input end up here:
* a bundle (docs/bundle.md) or a node snapshot: files by relative path;
* a `kubectl cluster-info dump`: files by relative path;
* a pasted terminal transcript: one text, split into command/output blocks.

Per node, the data path is rebuilt from whatever the input shows (routes, addresses, rules,
iptables, sysctls). What had to be assumed to fill gaps is recorded per node
(`NodeState.assumptions`) and globally (`Evidence.notes`), and what is missing altogether is
listed in `Evidence.missing` with the command that would collect it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import ip_address, ip_interface

from netsleuth.diagnose.kube_proxy_rules import kube_proxy_rules, service_port_views
from netsleuth.errors import ParseError
from netsleuth.model.k8s import (
    ClusterFacts,
    ClusterObjects,
    Fact,
    LogLine,
    Service,
    derive_cluster_facts,
    parse_ip,
)
from netsleuth.model.net import (
    TABLE_LOCAL,
    TABLE_MAIN,
    TABLE_NAMES,
    Address,
    IPAddress,
    Route,
    RouteType,
    Scope,
)
from netsleuth.model.netfilter import Ruleset, Table
from netsleuth.model.node import NodeState
from netsleuth.model.source import SourceRef
from netsleuth.parse.iproute2 import kernel_routes_for_addresses, parse_ip_route
from netsleuth.parse.iptables_list import parse_iptables_list
from netsleuth.parse.iptables_save import parse_iptables_save
from netsleuth.parse.kubectl_json import load_cluster_info_dump, parse_kube_json
from netsleuth.parse.logs import parse_logs
from netsleuth.parse.node_snapshot import KNOWN_FILES, node_from_files
from netsleuth.parse.probes_text import Traceroute, parse_traceroute
from netsleuth.parse.transcript import (
    Block,
    canonical_host,
    host_aliases,
    objects_from_blocks,
    parse_command,
    parse_transcript,
)

# Node evidence kinds and the snapshot file each transcript block kind stands for.
BLOCK_FILES: dict[str, str] = {
    "ip-route": "ip-route.txt",
    "ip-addr": "ip-addr.txt",
    "ip-rule": "ip-rule.txt",
    "ip-link": "ip-link.txt",
    "iptables-save": "iptables-save.txt",
    "iptables-list": "iptables-nvL.txt",
    "sysctl": "sysctl.txt",
}
FILE_KINDS: dict[str, str] = {
    "ip-route": "routes", "ip6-route": "routes", "ip-addr": "addresses", "ip-rule": "rules",
    "iptables-save": "iptables", "iptables-nvL": "iptables", "iptables-list": "iptables",
    "sysctl": "sysctl", "ip-link": "links",
}


@dataclass(frozen=True, slots=True)
class NodeEvidence:
    """One node's data path as far as the input shows it; `has` names the evidence kinds
    present (routes, addresses, rules, iptables, sysctl, links) and `host_guessed` says the
    input did not name the host for some of it."""

    name: str
    state: NodeState
    has: frozenset[str]
    ips: tuple[IPAddress, ...] = ()
    host_guessed: bool = False


@dataclass(frozen=True, slots=True)
class Probe:
    """A probe a person ran (traceroute, ping, curl) and its result, on a host."""

    host: str | None
    kind: str
    target: str | None
    errno: str | None
    text: str
    source: SourceRef


@dataclass(frozen=True, slots=True)
class RawOutput:
    """A command output kept as text for detectors that read formats no parser models yet
    (lsmod, dmesg, conntrack -S, ipvsadm, resolv.conf, calicoctl, journal, ...). `kind` is
    the transcript block kind, or for bundles the file name without extension; `source` is
    the output's first line (line numbers of the text count from there)."""

    kind: str
    command: str | None
    text: str
    source: SourceRef
    host: str | None
    pod: str | None = None  # "namespace/pod" when the command ran in a pod (`kubectl exec`)


@dataclass(frozen=True, slots=True)
class Missing:
    what: str
    why: str
    how: str


@dataclass(frozen=True, slots=True)
class Evidence:
    origin: str  # "transcript", "bundle", "cluster-info-dump"
    sources: tuple[str, ...]
    nodes: Mapping[str, NodeEvidence]
    objects: ClusterObjects
    facts: ClusterFacts
    probes: tuple[Probe, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)  # name/IP → node name
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    raw: tuple[RawOutput, ...] = ()

    def outputs(self, *kinds: str, node: str | None = None) -> list[RawOutput]:
        """Raw outputs of these kinds (all kinds when none given), on `node` if given."""
        return [r for r in self.raw if (not kinds or r.kind in kinds)
                and (node is None or self.node_for(r.host) == node)]

    def node_for(self, host: str | None) -> str | None:
        if host is None:
            return None
        return self.aliases.get(host, host)

    def node_of_ip(self, ip: IPAddress | str) -> str | None:
        return self.aliases.get(str(ip))

    def pod_node(self, namespace: str | None, name: str | None) -> str | None:
        """Which node a pod runs on: its object, the kubelet that reported its events, or what
        its own log says (calico-node: "Determined node name: X")."""
        for pod in self.objects.pods:
            same_ns = namespace is None or pod.namespace in (None, namespace)
            if pod.name == name and same_ns and pod.node:
                return self.node_for(pod.node)
        for event in self.objects.events:
            if event.object and name and event.object.endswith(name) and event.source_host:
                return self.node_for(event.source_host)
        for line in self.objects.logs:
            if line.pod == name:
                m = NODE_NAME_IN_LOG.search(line.message)
                if m:
                    return self.node_for(m.group(1))
        return None

    @property
    def missing(self) -> tuple[Missing, ...]:
        return missing_evidence(self)


NODE_NAME_IN_LOG = re.compile(r"(?:Determined node name|Using node name|nodeName)[:=]?\s+\"?([\w.-]+)")


# -- building blocks -----------------------------------------------------------------------------


def _padded(text: str, first_line: int) -> str:
    """Text whose line numbers equal the transcript's: parsers count from line 1."""
    return "\n" * max(first_line - 1, 0) + text


def _derived_addresses(routes: Sequence[Route]) -> tuple[Address, ...]:
    """Addresses implied by kernel prefix routes: `NET dev X proto kernel scope link src A`."""
    out: list[Address] = []
    seen: set[str] = set()
    for r in routes:
        if r.prefsrc is None or r.dev is None or r.protocol != "kernel" or r.type != RouteType.UNICAST:
            continue
        key = f"{r.prefsrc}@{r.dev}"
        if key in seen:
            continue
        seen.add(key)
        out.append(Address(r.dev, ip_interface(f"{r.prefsrc}/{r.dst.prefixlen}"), Scope.UNIVERSE,
                           source=r.source))
    return tuple(out)


def complete_node(state: NodeState) -> NodeState:
    """Fill what a partial node needs to be traced: addresses from kernel routes when `ip
    addr` is missing (with table local rebuilt from them)."""
    if state.addresses or not state.routes:
        return state
    addresses = _derived_addresses(state.routes)
    if not addresses:
        return state
    routes = list(state.routes)
    if not any(r.table == TABLE_LOCAL for r in routes):
        routes.extend(r for r in kernel_routes_for_addresses(addresses) if r.table == TABLE_LOCAL)
    note = ("addresses derived from the `src` of kernel routes (" +
            ", ".join(f"{a.ip} on {a.ifname}" for a in addresses) + "); table local rebuilt")
    assumptions = tuple(a for a in state.assumptions if not a.startswith("no ip-addr"))
    return replace(state, addresses=addresses, routes=tuple(routes),
                   assumptions=assumptions + (note,))


def merge_rulesets(base: Ruleset, overlay: Ruleset) -> Ruleset:
    """Tables of both; a chain in `overlay` replaces the chain of the same name in `base`
    (a pasted listing of one chain is more direct evidence than a rebuilt one)."""
    tables: dict[str, Table] = dict(base.tables)
    for name, table in overlay.tables.items():
        chains = dict(tables[name].chains) if name in tables else {}
        for cname, chain in table.chains.items():
            if cname in chains and chains[cname].policy is not None and chain.policy is None:
                chain = replace(chain, policy=chains[cname].policy)
            chains[cname] = chain
        tables[name] = Table(name, chains)
    return Ruleset(tables, base.family, f"{base.origin}+{overlay.origin}",
                   base.issues + overlay.issues)


def _rebuilt_kube_proxy(objects: ClusterObjects, facts: ClusterFacts) -> Ruleset | None:
    """kube-proxy's iptables-mode Service rules from the Service objects; None when kube-proxy
    is known to run in another mode (IPVS, nftables) or nothing can be rebuilt."""
    mode = ClusterFacts.first(facts.kube_proxy_mode)
    if mode not in (None, "", "iptables"):
        return None
    views = service_port_views(objects.services, objects.endpoints)
    if not views:
        return None
    cidr = ClusterFacts.first(facts.pod_cidrs)
    text = kube_proxy_rules(views, str(cidr) if cidr else None)
    return replace(parse_iptables_save(text, "<kube-proxy rules rebuilt from Services>"),
                   origin="rebuilt")


def _with_shared_rules(
    nodes: dict[str, NodeEvidence], shared: Ruleset | None, rebuilt: Ruleset | None
) -> dict[str, NodeEvidence]:
    """Nodes without iptables evidence get the cluster-wide kube-proxy rules: kube-proxy
    programs the same Service rules on every node."""
    base = rebuilt
    if shared is not None:
        base = merge_rulesets(base, shared) if base is not None else shared
    if base is None:
        return nodes
    out: dict[str, NodeEvidence] = {}
    for name, ev in nodes.items():
        if "iptables" in ev.has:
            out[name] = ev
            continue
        note = ("no iptables evidence for this node: using kube-proxy's Service rules "
                + ("rebuilt from the Service objects" if rebuilt is not None else "")
                + (" and " if rebuilt is not None and shared is not None else "")
                + ("from the listing pasted without a host" if shared is not None else "")
                + " (kube-proxy programs the same Service rules on every node)")
        assumptions = tuple(a for a in ev.state.assumptions if not a.startswith("no iptables"))
        state = replace(ev.state, ruleset=base, assumptions=assumptions + (note,))
        out[name] = replace(ev, state=state)
    return out


def lenient_node(
    files: Mapping[str, str], *, name: str, origin: str,
    sources: Mapping[str, str] | None = None,
) -> tuple[NodeState | None, list[str]]:
    """node_from_files, but a file that does not parse is left out (and reported) instead of
    costing the whole node: a partial node still supports every diagnosis it can."""
    problems: list[str] = []
    remaining = dict(files)
    while remaining:
        try:
            return node_from_files(remaining, name=name, origin=origin, sources=sources), problems
        except ParseError as exc:
            bad = _failed_file(exc, remaining, origin, sources)
            if bad is None:
                problems.append(f"{exc} (node {name})")
                return None, problems
            problems.append(f"{exc} (node {name}: {bad} left out, the rest is used)")
            del remaining[bad]
    return None, problems


def _failed_file(exc: ParseError, files: Mapping[str, str], origin: str,
                 sources: Mapping[str, str] | None) -> str | None:
    for fname in files:
        if (sources or {}).get(fname, f"{origin}/{fname}") != exc.source:
            continue
        lines = files[fname].splitlines()
        if sources is None or (0 < exc.line <= len(lines) and lines[exc.line - 1].strip()):
            return fname
    return None


KUBERNETES_COMMENT = "default/kubernetes:https"


# Routes that only a given CNI installs: `proto bird` is Calico's BGP daemon.
ROUTE_PROTOCOL_CNI = {"bird": "calico"}


def facts_from_rules(facts: ClusterFacts, nodes: Mapping[str, NodeEvidence]) -> ClusterFacts:
    """Facts the nodes' own state shows when the cluster objects do not: the CNI from the
    routes it installs, and the `kubernetes` Service from kube-proxy's rules (its dispatch
    rule carries the comment "default/kubernetes:https cluster IP" and the ClusterIP as
    `-d IP/32`; every kube-proxy version writes it so)."""
    if not facts.cni:
        for node in nodes.values():
            route = next((r for r in node.state.routes if r.protocol in ROUTE_PROTOCOL_CNI), None)
            if route is not None and route.protocol is not None:
                cni = ROUTE_PROTOCOL_CNI[route.protocol]
                facts = replace(facts, cni=(Fact(cni, f"`proto {route.protocol}` routes on "
                                                      f"{node.name}", (route.source,)),))
                break
    if facts.kubernetes_service_ips:
        return facts
    for node in nodes.values():
        if node.state.ruleset.origin == "rebuilt":
            continue
        chain = node.state.ruleset.chain("nat", "KUBE-SERVICES")
        for rule in chain.rules if chain else ():
            comment = rule.comment or ""
            if not comment.startswith(KUBERNETES_COMMENT) or "cluster IP" not in comment:
                continue
            builtin = rule.match("")
            dst = builtin.option("-d") if builtin else None
            ip = parse_ip(dst.value.split("/")[0]) if dst is not None and not dst.negated else None
            if ip is not None:
                fact = Fact(ip, f"kube-proxy rule on {node.name}", (rule.source,))
                return replace(facts, kubernetes_service_ips=(fact,))
    return facts


# -- from a transcript -----------------------------------------------------------------------------


def evidence_from_transcript(text: str, source: str) -> Evidence:
    transcript = parse_transcript(text, source)
    blocks = transcript.blocks
    aliases_raw = host_aliases(blocks)
    objects = objects_from_blocks(blocks)
    facts = derive_cluster_facts(objects)
    notes: list[str] = []
    problems: list[str] = list(objects.problems)

    per_host: dict[str, dict[str, Block]] = {}
    table_blocks: dict[str, dict[int, Block]] = {}  # host → table id → `ip route show table N`
    sysctl_more: dict[str, list[Block]] = {}  # host → earlier sysctl blocks
    hostless: list[Block] = []
    guessed: set[str] = set()
    for block in blocks:
        fname = BLOCK_FILES.get(block.kind)
        if fname is None:
            continue
        host = canonical_host(block.host, aliases_raw)
        if host is None:
            hostless.append(block)
            continue
        if block.guessed_host:
            if block.kind in ("iptables-list", "iptables-save"):
                # Which node a bare listing came from matters less than that it exists:
                # kube-proxy's Service chains are the same on every node.
                hostless.append(block)
                continue
            guessed.add(host)
            notes.append(f"{block.source}: {block.kind} output assigned to {host} "
                         f"({block.host_reason})")
        if block.kind == "ip-route" and _route_view(block.command) != "table":
            # `ip route get X` (one answer) and `ip route show table N` (another table)
            # are not the main table: kept apart so they do not replace it.
            if _route_view(block.command) == "get":
                continue
            table_blocks.setdefault(host, {})[_route_view_table(block.command)] = block
            continue
        if block.kind == "sysctl" and fname in per_host.get(host, {}):
            # Several `sysctl KEY` commands on one host show different keys: keep them all.
            sysctl_more.setdefault(host, []).append(per_host[host][fname])
        per_host.setdefault(host, {})[fname] = block
    for host in table_blocks:
        per_host.setdefault(host, {})

    nodes: dict[str, NodeEvidence] = {}
    for host, files in per_host.items():
        texts = {f: _padded(b.output, b.output_line) for f, b in files.items()}
        if host in sysctl_more:
            texts["sysctl.txt"] = _merged_lines([*sysctl_more[host], files["sysctl.txt"]])
        built, trouble = lenient_node(texts, name=host, origin=source,
                                      sources={f: source for f in texts})
        problems.extend(trouble)
        if built is None:
            continue
        try:
            state = _with_route_tables(built, table_blocks.get(host, {}), source)
        except ParseError as exc:
            problems.append(f"{exc} (node {host})")
            state = built
        if table_blocks.get(host) and "ip-route.txt" not in files:
            files = {**files, "ip-route.txt": next(iter(table_blocks[host].values()))}
        state = replace(state, name=host, files=tuple(sorted(files)))
        state = complete_node(state)
        has = frozenset(FILE_KINDS[f.rsplit(".", 1)[0]] for f in files)
        ips = _host_ips(host, aliases_raw)
        nodes[host] = NodeEvidence(host, state, has, ips, host in guessed)

    shared: Ruleset | None = None
    for block in hostless:
        if block.kind not in ("iptables-list", "iptables-save"):
            continue
        try:
            text = _padded(block.output, block.output_line)
            rs = (parse_iptables_list(text, source) if block.kind == "iptables-list"
                  else parse_iptables_save(text, source))
        except ParseError as exc:
            problems.append(str(exc))
            continue
        shared = merge_rulesets(shared, rs) if shared is not None else rs
        notes.append(f"{block.source}: {block.kind} output without a host: treated as "
                     "kube-proxy's cluster-wide rules")
    nodes = _with_shared_rules(nodes, shared, _rebuilt_kube_proxy(objects, facts))
    facts = facts_from_rules(facts, nodes)

    probes = tuple(_probes(blocks, aliases_raw))
    aliases = {alias: ident.name for alias, ident in aliases_raw.items() if ident.name}
    for name in nodes:
        aliases.setdefault(name, name)
    raw = tuple(RawOutput(b.kind, b.command, b.output, b.ref(0), canonical_host(b.host, aliases_raw),
                          b.exec_pod)
                for b in blocks)
    return Evidence("transcript", (source,), nodes, objects, facts, probes, aliases,
                    tuple(notes), tuple(problems), raw)


def _route_view(command: str | None) -> str:
    """What an `ip route` command shows: "get" (one lookup's answer), "other" (one table
    other than main: `ip route show table 52`) or "table" (main, or all tables)."""
    if not command:
        return "table"
    argv = [w for w in parse_command(command).argv[1:] if not w.startswith("-")]
    if len(argv) >= 2 and "get".startswith(argv[1]):
        return "get"
    if "table" in argv[:-1]:
        name = argv[argv.index("table") + 1]
        if name not in ("all", "main", str(TABLE_MAIN), "0"):
            return "other"
    return "table"


def _route_view_table(command: str | None) -> int:
    argv = [w for w in parse_command(command or "").argv[1:] if not w.startswith("-")]
    name = argv[argv.index("table") + 1]
    return TABLE_NAMES.get(name, int(name) if name.isdigit() else -1)


def _merged_lines(blocks: Sequence[Block]) -> str:
    """Several outputs of one transcript as one text whose line numbers are the file's."""
    lines: list[str] = []
    for b in blocks:
        for i, text in enumerate(b.output.split("\n")):
            at = b.output_line - 1 + i
            lines.extend([""] * (at + 1 - len(lines)))
            lines[at] = text
    return "\n".join(lines)


def _with_route_tables(state: NodeState, blocks: Mapping[int, Block], source: str) -> NodeState:
    """Routes of `ip route show table N` outputs (their lines do not say `table N`)."""
    extra: list[Route] = []
    for table, b in blocks.items():
        if table < 0:
            continue
        extra.extend(r for r in parse_ip_route(_padded(b.output, b.output_line), source,
                                               default_table=table) if r.table == table)
    if not extra:
        return state
    return replace(state, routes=tuple(r for r in state.routes if r.table not in blocks)
                   + tuple(extra))


def _host_ips(host: str, aliases: Mapping[str, object]) -> tuple[IPAddress, ...]:
    ident = aliases.get(host)
    ips: list[IPAddress] = []
    for text in getattr(ident, "ips", ()):
        try:
            ips.append(ip_address(text))
        except ValueError:
            continue
    return tuple(ips)


def _probes(blocks: Iterable[Block], aliases: Mapping[str, object]) -> Iterable[Probe]:
    for block in blocks:
        if block.kind != "traceroute":
            continue
        host = canonical_host(block.host, aliases)  # type: ignore[arg-type]
        try:
            tr: Traceroute = parse_traceroute(block.output, block.source.file, block.output_line)
        except ParseError:
            continue
        errno = tr.error.errno if tr.error else None
        if errno is None and tr.unreachable_annotations:
            errno = {"!H": "EHOSTUNREACH", "!N": "ENETUNREACH", "!X": "EACCES"}.get(
                tr.unreachable_annotations[-1])
        text = tr.error.text if tr.error else (
            f"{len(tr.hops)} hops, " + ("reached" if tr.reached else "target not reached")
            + (f" ({' '.join(tr.unreachable_annotations)})" if tr.unreachable_annotations else ""))
        yield Probe(host, "traceroute", tr.target_ip or tr.target, errno, text,
                    tr.error.source if tr.error and hasattr(tr.error, "source") else tr.source)


# -- from bundles and dumps --------------------------------------------------------------------


LOG_PATH = re.compile(r"^logs/(?P<ns>[^/]+)/(?P<pod>[^/]+)/(?P<ctr>[^/]+?)(?P<prev>\.previous)?\.log$")


def evidence_from_files(
    files: Mapping[str, str], source: str, *, extra_services: Sequence[Service] = ()
) -> Evidence:
    """A bundle (nodes/, cluster/, logs/) or a cluster-info dump, as relative path → text.
    `extra_services` are Services known from elsewhere (the agent knows the `kubernetes`
    Service from its environment)."""
    problems: list[str] = []
    notes: list[str] = []
    is_bundle = any(p.startswith(("nodes/", "cluster/", "logs/")) or p == "manifest.json"
                    for p in files)
    objects = ClusterObjects()
    if is_bundle:
        for rel, text in sorted(files.items()):
            if rel.startswith("cluster/") and rel.endswith(".json"):
                try:
                    objects = objects.merge(parse_kube_json(text, f"{source}/{rel}"))
                except ParseError as exc:
                    problems.append(str(exc))
            m = LOG_PATH.match(rel)
            if m:
                lines = parse_logs(text, f"{source}/{rel}", pod=m["pod"], container=m["ctr"],
                                   namespace=m["ns"])
                objects = objects.merge(ClusterObjects(logs=lines))
        problems.extend(objects.problems)
        origin = "bundle"
    else:
        objects = load_cluster_info_dump(files, source_prefix=f"{source}/")
        problems.extend(objects.problems)
        origin = "cluster-info-dump"
    if extra_services:
        objects = objects.merge(ClusterObjects(services=tuple(extra_services)))
    facts = derive_cluster_facts(objects)
    nodes: dict[str, NodeEvidence] = {}
    by_node: dict[str, dict[str, str]] = {}
    for rel, text in files.items():
        parts = rel.split("/")
        if len(parts) == 3 and parts[0] == "nodes":
            by_node.setdefault(parts[1], {})[parts[2]] = text
    hostnames: dict[str, str] = {}
    for name, node_files in sorted(by_node.items()):
        built, trouble = lenient_node(node_files, name=name, origin=f"{source}/nodes/{name}")
        problems.extend(trouble)
        if built is None:
            continue
        if built.name != name:
            # In a bundle the directory is the node's Kubernetes name; its `hostname` (often an
            # FQDN) is another name for the same machine.
            hostnames[built.name] = name
        state = complete_node(replace(built, name=name))
        has = frozenset(FILE_KINDS[f.rsplit(".", 1)[0]] for f in node_files
                        if f.rsplit(".", 1)[0] in FILE_KINDS)
        nodes[name] = NodeEvidence(name, state, has, tuple(facts.node_ips.get(name, ())))
    nodes = _with_shared_rules(nodes, None, _rebuilt_kube_proxy(objects, facts))
    facts = facts_from_rules(facts, nodes)
    aliases: dict[str, str] = dict(hostnames)
    for name, ips in facts.node_ips.items():
        aliases[name] = name
        for ip in ips:
            aliases[str(ip)] = name
    for name in nodes:
        aliases.setdefault(name, name)
    raw = tuple(
        RawOutput(rel.split("/")[2].rsplit(".", 1)[0], None, text,
                  SourceRef(f"{source}/{rel}", 1), rel.split("/")[1])
        for rel, text in sorted(files.items())
        if rel.startswith("nodes/") and rel.count("/") == 2
        and (rel.split("/")[2] not in KNOWN_FILES
             # `ip -d link` details (VXLAN port/local/lower device) that Link does not model
             or rel.split("/")[2].startswith("ip-link."))
    ) + tuple(
        # Objects no parser models yet (NetworkPolicy), for the detectors that read them.
        RawOutput(rel.split("/")[1].rsplit(".", 1)[0], None, text,
                  SourceRef(f"{source}/{rel}", 1), None)
        for rel, text in sorted(files.items())
        if rel in ("cluster/networkpolicies.json",)
    )
    return Evidence(origin, (source,), nodes, objects, facts, (), aliases, tuple(notes),
                    tuple(problems), raw)


# -- what is missing -----------------------------------------------------------------------------


def missing_evidence(ev: Evidence) -> tuple[Missing, ...]:
    out: list[Missing] = []
    if not ev.nodes:
        out.append(Missing("node data-path state (routes, addresses, iptables)",
                           "no node's routing table or rules were in the input, so no packet "
                           "could be traced",
                           "netsleuth collect --nodes-via ssh (or on each node: ip -j route "
                           "show table all; ip -j addr; iptables-save)"))
    for kind, how in (("routes", "ip route show table all"), ("addresses", "ip addr"),
                      ("iptables", "iptables-save"), ("sysctl", "sysctl -a")):
        lacking = sorted(name for name, node in ev.nodes.items() if kind not in node.has)
        if lacking:
            out.append(Missing(f"{kind} of {', '.join(lacking)}",
                               "filled in by assumption (each node's trace lists what)",
                               f"on each: {how}"))
    if not ev.objects.services:
        out.append(Missing("Service objects", "ClusterIPs and endpoints come from conventions",
                           "kubectl get svc,endpoints -A -o wide"))
    if not ev.objects.pods:
        out.append(Missing("Pod list", "which pods run where is unknown",
                           "kubectl get pods -A -o wide"))
    if not ev.objects.events:
        out.append(Missing("Events", "no sandbox/readiness history",
                           "kubectl get events -A --sort-by=.lastTimestamp"))
    return tuple(out)



def log_node(ev: Evidence, line: LogLine) -> str | None:
    """The node a log line was written on: its host, or its pod's node."""
    if line.host:
        return ev.node_for(line.host)
    return ev.pod_node(line.namespace, line.pod)
