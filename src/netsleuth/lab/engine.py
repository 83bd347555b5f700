"""Build a scenario in network namespaces, break it, fix it, probe it, snapshot it, remove it.

Naming: every namespace is `<prefix>-<node>` (pods `<prefix>-<node>-<pod>`, the segment bridges
live in `<prefix>-fabric`), with a per-run prefix `nsl` + 4 hex digits. Interfaces inside a
node's namespace keep the scenario's names (enp0s8, eth0, cali...): that is what a snapshot of
the node should show, and they cannot clash with anything outside the namespace. Fabric-side
interfaces carry the prefix too.

Failure handling: the state file is written before the first namespace is created and updated as
the build goes, and any exception (including Ctrl-C) during `up` removes everything made so far.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from netsleuth.errors import LabError
from netsleuth.lab import netns as ns
from netsleuth.lab import state as st
from netsleuth.lab.probe import ProbeResult, parse_target, probe
from netsleuth.lab.scenario import (
    Action,
    Attachment,
    Change,
    Expect,
    Listener,
    Node,
    ProbeSpec,
    Scenario,
)

# Applied to every namespace before the scenario's own sysctls. A new namespace inherits its
# IPv4 conf/all and conf/default values from the host (net.core.devconf_inherit_init_net=0,
# Documentation/admin-guide/sysctl/net.rst), so a lab on a host with rp_filter=1 or
# ip_forward=1 would differ from one on a laptop; pin them. IPv6 is off so router
# solicitations and neighbour discovery do not add traffic to observe.
BASELINE_SYSCTLS: tuple[tuple[str, str], ...] = (
    ("net.ipv4.ip_forward", "0"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv4.conf.all.accept_local", "0"),
    ("net.ipv6.conf.all.disable_ipv6", "1"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
    ("net.ipv4.ping_group_range", "0 2147483647"),
    # icmp_ratelimit throttles the ICMP errors REJECT and the router send; probes come fast.
    ("net.ipv4.icmp_ratelimit", "0"),
)


def new_prefix() -> str:
    return f"{st.PREFIX_BASE}{secrets.token_hex(2)}"


@contextlib.contextmanager
def _cleanup_on_error(state: st.LabState, state_dir: Path | None) -> Iterator[None]:
    try:
        yield
    except BaseException:
        _teardown(state, state_dir)
        raise


def up(
    scenario: Scenario,
    state_dir: Path | None = None,
    listeners: bool = True,
    prefix: str | None = None,
) -> st.LabState:
    """Build `scenario` for real. Raises LabError when it is already up or a step fails."""
    ns.require_privileges()
    old = st.load(scenario.name, state_dir)
    if old is not None:
        if any(ns.netns_exists(n) for n in old.all_namespaces()):
            raise LabError(
                f"lab {scenario.name} is already up (prefix {old.prefix}); "
                f"`netsleuth lab down {scenario.name}` first"
            )
        st.remove(old, state_dir)
    prefix = prefix or new_prefix()
    state = st.LabState(scenario=scenario.name, source=scenario.source, prefix=prefix)
    st.save(state, state_dir)
    with _cleanup_on_error(state, state_dir):
        _build(scenario, state, state_dir)
        if listeners:
            _start_listeners(scenario, state, state_dir)
        st.save(state, state_dir)
    return state


def _add_ns(state: st.LabState, key: str, name: str, state_dir: Path | None) -> str:
    if key == "@fabric":
        state.fabric = name
    else:
        state.namespaces[key] = name
    st.save(state, state_dir)  # before creating it, so a crash right after still cleans it up
    ns.add_netns(name)
    for k, v in BASELINE_SYSCTLS:
        ns.write_sysctl(name, k, v)
    return name


def _build(s: Scenario, state: st.LabState, state_dir: Path | None) -> None:
    p = state.prefix
    for node in s.nodes:
        _add_ns(state, node.name, f"{p}-{node.name}", state_dir)
        for pod in node.pods:
            _add_ns(state, f"{node.name}/{pod.name}", f"{p}-{node.name}-{pod.name}", state_dir)
    if s.segments:
        _add_ns(state, "@fabric", f"{p}-fabric", state_dir)
    # Per node: the `ip` commands that configure its side of every link, run as one batch.
    cmds: dict[str, list[str]] = {n.name: [] for n in s.nodes}

    def attach(att: Attachment) -> None:
        if att.mac:
            cmds[att.node].append(f"link set {att.ifname} address {att.mac}")
        cmds[att.node].append(f"link set {att.ifname} up")
        cmds[att.node].extend(f"addr add {a} dev {att.ifname}" for a in att.addresses)

    fabric = state.fabric
    for si, seg in enumerate(s.segments):
        assert fabric is not None
        bridge = f"{p}-b{si}"
        ns.ip_batch(fabric, [f"link add {bridge} type bridge", f"link set {bridge} up"])
        for mi, mem in enumerate(seg.members):
            port = f"{p}-s{si}m{mi}"
            ns.run(
                [
                    "ip",
                    "-n",
                    state.netns(mem.node),
                    "link",
                    "add",
                    mem.ifname,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    port,
                    "netns",
                    fabric,
                ]
            )
            ns.ip_batch(fabric, [f"link set {port} master {bridge}", f"link set {port} up"])
            attach(mem)
    for veth in s.veths:
        ns.run(
            [
                "ip",
                "-n",
                state.netns(veth.a.node),
                "link",
                "add",
                veth.a.ifname,
                "type",
                "veth",
                "peer",
                "name",
                veth.b.ifname,
                "netns",
                state.netns(veth.b.node),
            ]
        )
        attach(veth.a)
        attach(veth.b)
    for node in s.nodes:
        for pod in node.pods:
            pod_ns = state.netns(node.name, pod.name)
            ns.run(
                [
                    "ip",
                    "-n",
                    state.netns(node.name),
                    "link",
                    "add",
                    pod.host_ifname,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    pod_ns,
                ]
            )
            # Calico's wiring: the pod has a /32 and a default route via a link-local gateway
            # that nobody owns; the host side answers ARP for it by proxy_arp, and the node
            # routes the pod's /32 to the veth (felix route_table.go, "cali" interfaces).
            ns.ip_batch(
                pod_ns,
                [
                    "link set eth0 up",
                    f"addr add {pod.address}/32 dev eth0",
                    "route add 169.254.1.1 dev eth0 scope link",
                    "route add default via 169.254.1.1 dev eth0",
                ],
            )
            cmds[node.name] += [
                f"link set {pod.host_ifname} up",
                f"route add {pod.address}/32 dev {pod.host_ifname} scope link",
            ]
    for vx in s.vxlans:
        spec = f"link add {vx.ifname} type vxlan id {vx.vni} dstport {vx.dstport}"
        spec += f" local {vx.local}" if vx.local else ""
        spec += f" remote {vx.remote}" if vx.remote else ""
        spec += f" dev {vx.dev}" if vx.dev else ""
        cmds[vx.node].append(spec)
        cmds[vx.node].append(f"link set {vx.ifname} up")
        cmds[vx.node].extend(f"addr add {a} dev {vx.ifname}" for a in vx.addresses)
    for node in s.nodes:
        name = state.netns(node.name)
        ns.ip_batch(name, cmds[node.name])
        _node_sysctls(node, name)
        for pod in node.pods:
            ns.write_sysctl(name, f"net.ipv4.conf.{pod.host_ifname}.proxy_arp", "1")
            # As felix does: answer proxy ARP at once instead of after up to 0.8 s.
            ns.write_sysctl(name, f"net.ipv4.neigh.{pod.host_ifname}.proxy_delay", "0")
        ns.ip_batch(
            name,
            [
                *node.ip,
                *(f"route add {r}" for r in node.routes),
                *(f"rule add {r}" for r in node.rules),
            ],
        )
        if node.iptables_restore:
            ns.run(["iptables-restore"], netns=name, stdin=_ensure_newline(node.iptables_restore))


def _node_sysctls(node: Node, netns: str) -> None:
    if node.router:
        ns.write_sysctl(netns, "net.ipv4.ip_forward", "1")
    for key, value in node.sysctls:
        ns.write_sysctl(netns, key, value)


def _ensure_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _start_listeners(s: Scenario, state: st.LabState, state_dir: Path | None) -> None:
    run_dir = state.run_dir(state_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    wanted: list[tuple[str, str | None, Listener]] = []
    for node in s.nodes:
        wanted += [(node.name, None, lst) for lst in node.listeners]
        wanted += [(node.name, pod.name, lst) for pod in node.pods for lst in pod.listeners]
    for node_name, pod_name, lst in wanted:
        owner = f"{node_name}/{pod_name}" if pod_name else node_name
        name = f"{owner}:{lst.port}/{lst.proto}"
        netns = state.netns(node_name, pod_name)
        log = run_dir / (name.replace("/", "_").replace(":", "_") + ".jsonl")
        log.touch()
        cmd = [
            "ip",
            "netns",
            "exec",
            netns,
            sys.executable,
            "-m",
            "netsleuth.lab.listener",
            "--name",
            name,
            "--proto",
            lst.proto,
            "--address",
            lst.address,
            "--port",
            str(lst.port),
            "--log",
            str(log),
        ]
        err = log.with_suffix(".err")
        with err.open("w", encoding="utf-8") as errfh:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errfh,
                start_new_session=True,
            )
        state.listeners.append(st.ListenerProc(name=name, netns=netns, pid=proc.pid, log=str(log)))
        st.save(state, state_dir)
        _wait_ready(proc, log, err, name)


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, err: Path, name: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if '"ready"' in log.read_text(encoding="utf-8"):
            return
        if proc.poll() is not None:
            text = err.read_text(encoding="utf-8").strip()
            raise LabError(f"listener {name} exited: {text or proc.returncode}")
        time.sleep(0.02)
    raise LabError(f"listener {name} did not start within 10s")


# --------------------------------------------------------------------------- running labs


def find(scenario: str | None, state_dir: Path | None = None) -> st.LabState:
    """The running lab named `scenario`, or the only running lab when None."""
    if scenario is not None:
        state = st.load(scenario, state_dir)
        if state is None:
            raise LabError(f"lab {scenario} is not up (`netsleuth lab up {scenario}`)")
        return state
    labs = st.running(state_dir)
    if not labs:
        raise LabError("no lab is up (`netsleuth lab up SCENARIO`)")
    if len(labs) > 1:
        raise LabError(f"several labs are up ({', '.join(x.scenario for x in labs)}): name one")
    return labs[0]


def find_node(node: str, state_dir: Path | None = None) -> st.LabState:
    """The running lab that has a node called `node` (it must be unambiguous)."""
    labs = [x for x in st.running(state_dir) if node in x.namespaces]
    if not labs:
        raise LabError(f"no running lab has a node {node!r} (`netsleuth lab list`)")
    if len(labs) > 1:
        raise LabError(f"node {node!r} is in several labs ({', '.join(x.scenario for x in labs)})")
    return labs[0]


def apply(scenario: Scenario, state: st.LabState, change: Change, state_dir: Path | None = None) -> None:
    """Apply a fault or a fix to the running lab."""
    for action in change.actions:
        _apply_action(state, action)
    state.applied.append(change.name)
    st.save(state, state_dir)


def _apply_action(state: st.LabState, action: Action) -> None:
    node, _, pod = action.node.partition("/")
    netns = state.netns(node, pod or None)
    if action.ip:
        ns.ip_batch(netns, list(action.ip))
    for key, value in action.sysctls:
        ns.write_sysctl(netns, key, value)
    if action.iptables_restore is not None:
        ns.run(["iptables-restore"], netns=netns, stdin=_ensure_newline(action.iptables_restore))
    for line in action.iptables:
        ns.run(["iptables", *line.split()], netns=netns)


def probe_node(
    state: st.LabState,
    node: str,
    target: str,
    proto: str = "tcp",
    pod: str | None = None,
    timeout: float = 1.5,
) -> ProbeResult:
    dst, port = parse_target(target, proto)
    logs = [Path(lp.log) for lp in state.listeners]
    return probe(state.netns(node, pod), dst, port, proto, timeout=timeout, logs=logs)


def snapshot(state: st.LabState, node: str, out_dir: Path) -> list[str]:
    from netsleuth.collect.netlink import snapshot_namespace

    return snapshot_namespace(state.netns(node), out_dir, hostname=node)


def down(scenario: str, state_dir: Path | None = None) -> st.LabState:
    state = st.load(scenario, state_dir)
    if state is None:
        raise LabError(f"lab {scenario} is not up")
    _teardown(state, state_dir)
    return state


def _teardown(state: st.LabState, state_dir: Path | None) -> None:
    for lp in state.listeners:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(lp.pid, 15)
    for name in state.all_namespaces():
        ns.delete_netns(name)
    st.remove(state, state_dir)


def leftovers() -> list[str]:
    """Lab namespaces that exist now (whether or not a state file knows them)."""
    return [n for n in ns.list_netns() if st.PREFIX_RE.match(n)]


def down_all(state_dir: Path | None = None) -> list[str]:
    """Remove every lab namespace (by prefix), listener and state file. Returns what was removed."""
    state_dir = state_dir or st.default_dir()
    removed = []
    for state in st.running(state_dir):
        _teardown(state, state_dir)
        removed.append(state.scenario)
    for name in leftovers():
        ns.delete_netns(name)
        removed.append(name)
    if state_dir.is_dir():
        for p in state_dir.iterdir():
            if p.is_dir() and st.PREFIX_RE.match(p.name + "-"):
                for f in p.iterdir():
                    f.unlink(missing_ok=True)
                p.rmdir()
    return removed


# --------------------------------------------------------------------------- scenario checks


def check_probe(expect: Expect, res: ProbeResult) -> list[str]:
    """What differs between an expectation of a scenario and a probe result (empty: it held)."""
    problems = []
    if res.result != expect.result:
        problems.append(f"result {res.result} ({res.errno}), expected {expect.result}")
    if expect.errno is not None and res.errno != expect.errno:
        problems.append(f"errno {res.errno}, expected {expect.errno}")
    seen = res.listener or {}
    if expect.listener is not None and seen.get("listener") != expect.listener:
        problems.append(f"listener {seen.get('listener')}, expected {expect.listener}")
    if expect.listener_local is not None and seen.get("local") != expect.listener_local:
        problems.append(f"listener saw local {seen.get('local')}, expected {expect.listener_local}")
    if expect.listener_peer_ip is not None:
        peer_ip = str(seen.get("peer", "")).rpartition(":")[0] or None
        if peer_ip != expect.listener_peer_ip:
            problems.append(f"listener saw peer {peer_ip}, expected {expect.listener_peer_ip}")
    return problems


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    after: tuple[str, ...]
    probe: ProbeSpec
    result: ProbeResult
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def run_checks(scenario: Scenario, state_dir: Path | None = None) -> list[CheckOutcome]:
    """Build the scenario, and for each check apply its faults/fixes and run its probes.

    Checks whose `after` extends what is already applied continue on the same build; others
    start from a fresh one. The lab is down again when this returns.
    """
    outcomes: list[CheckOutcome] = []
    state: st.LabState | None = None
    try:
        for check in scenario.checks:
            applied = tuple(state.applied) if state else ()
            if state is None or check.after[: len(applied)] != applied:
                if state is not None:
                    _teardown(state, state_dir)
                state = up(scenario, state_dir)
                applied = ()
            for name in check.after[len(applied) :]:
                apply(scenario, state, scenario.any_change(name), state_dir)
            for spec in check.probes:
                res = probe_node(state, spec.node, spec.target, spec.proto, spec.pod)
                outcomes.append(CheckOutcome(check.after, spec, res, tuple(check_probe(spec.expect, res))))
    finally:
        if state is not None:
            _teardown(state, state_dir)
    return outcomes
