"""Node-side evidence the B/C detectors read beyond the parsed data path: raw command outputs
(lsmod, dmesg, `conntrack -S`/`-L`, ipvsadm, `bridge -d link`, CNI config, iptables backends),
sysctls with the line they came from, kube-proxy's logs and configuration.

A raw output is recognised by its transcript block kind, by the program of its command line,
or (in a bundle) by its file name in `nodes/<node>/`: `lsmod.txt`, `dmesg.txt`,
`conntrack-S.txt`, `conntrack.txt` (`conntrack -L`), `ipvsadm-Ln.txt`, `bridge-link.txt`,
`cni-conf.txt` (the CNI conflist), `iptables-legacy-save.txt`, `iptables-nft-save.txt`,
`nft-ruleset.txt`, `iptables-V.txt`, `uname.txt`. Pure: text in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from netsleuth.diagnose.detectors._cluster import pod_by_ip
from netsleuth.diagnose.detectors._common import line
from netsleuth.diagnose.evidence import Evidence, NodeEvidence, RawOutput, log_node
from netsleuth.diagnose.findings import EvidenceLine
from netsleuth.model.k8s import LogLine, Pod, parse_ip
from netsleuth.model.net import IPAddress
from netsleuth.model.source import SourceRef
from netsleuth.parse.transcript import CommandInfo, parse_command

# What a raw output is: (programs and a test on argv) or bundle file stems.
_SOURCES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "lsmod": (("lsmod",), ("lsmod",)),
    "dmesg": (("dmesg",), ("dmesg", "kernel-log")),
    "conntrack-stats": (("conntrack",), ("conntrack-S", "conntrack-stats")),
    "conntrack-list": (("conntrack",), ("conntrack", "conntrack-L")),
    "ipvsadm": (("ipvsadm",), ("ipvsadm-Ln", "ipvsadm")),
    "ipvsadm-conn": (("ipvsadm",), ("ipvsadm-Lnc",)),
    "bridge-link": (("bridge",), ("bridge-link", "bridge-d-link")),
    "cni-conf": (("cat", "ls"), ("cni-conf", "cni-conflist")),
    "iptables-legacy-save": (("iptables-legacy-save",), ("iptables-legacy-save",)),
    "iptables-nft-save": (("iptables-nft-save",), ("iptables-nft-save",)),
    "nft": (("nft",), ("nft-ruleset", "nft-list-ruleset")),
    "iptables-version": (("iptables",), ("iptables-V",)),
    "uname": (("uname",), ("uname",)),
    "hairpin-sysfs": (("cat", "grep", "for"), ("hairpin-mode",)),
}


def _argv_ok(what: str, cmd: CommandInfo) -> bool:
    argv = cmd.argv[1:]
    flags = "".join(a for a in argv if a.startswith("-") and not a.startswith("--"))
    if what == "conntrack-stats":
        return "S" in flags or "--stats" in argv
    if what == "conntrack-list":
        return "L" in flags or "--dump" in argv or "-L" in argv
    if what == "ipvsadm":
        return "c" not in flags
    if what == "ipvsadm-conn":
        return "c" in flags
    if what == "bridge-link":
        return "link" in argv or "l" in argv[:2]
    if what == "cni-conf":
        return any("/cni/net.d" in a or a.endswith((".conflist", ".conf")) for a in argv)
    if what == "iptables-version":
        return "-V" in argv or "--version" in argv
    if what == "hairpin-sysfs":
        return "hairpin_mode" in cmd.raw
    return True


def outputs(ev: Evidence, what: str, node: str | None = None) -> list[RawOutput]:
    """Raw outputs of one kind (see _SOURCES), on `node` if given."""
    programs, stems = _SOURCES[what]
    out: list[RawOutput] = []
    for raw in ev.outputs(node=node):
        if raw.command is None:
            if raw.kind in stems:
                out.append(raw)
            continue
        cmd = parse_command(raw.command)
        prog = cmd.program
        if cmd.kubectl is not None:
            continue
        if prog in programs and _argv_ok(what, cmd):
            out.append(raw)
    return out


def numbered(raw: RawOutput) -> Iterator[tuple[SourceRef, str]]:
    """Each output line with the file line it is on."""
    for i, text in enumerate(raw.text.split("\n")):
        yield SourceRef(raw.source.file, raw.source.line + i), text


def raw_node(ev: Evidence, raw: RawOutput) -> str | None:
    return ev.node_for(raw.host)


# -- sysctls -------------------------------------------------------------------------------


def sysctl(node: NodeEvidence, key: str) -> str | None:
    value = node.state.sysctls.get(key)
    return value.strip() if value is not None else None


CANNOT_STAT = re.compile(r"sysctl: cannot stat /proc/sys/(?P<path>\S+): No such file or directory")


def missing_sysctl_lines(ev: Evidence, node: str, key: str) -> list[EvidenceLine]:
    """procps' "cannot stat" diagnostics for `key` (the key does not exist: its module is not
    loaded), in any output on `node`."""
    path = key.replace(".", "/")
    out: list[EvidenceLine] = []
    for raw in ev.outputs(node=node):
        for ref, text in numbered(raw):
            m = CANNOT_STAT.search(text)
            if m and m.group("path") == path:
                out.append(line(ref, text))
    return out


def full_sysctl_dump(node: NodeEvidence) -> bool:
    """Whether the sysctl evidence looks like `sysctl -a` (so an absent key does not exist)
    rather than a few keys asked for by name."""
    return len(node.state.sysctls.values) >= 40


# -- lsmod -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Modules:
    names: frozenset[str]
    source: SourceRef
    text: str


def loaded_modules(ev: Evidence, node: str) -> Modules | None:
    """Modules from `lsmod` (first column; `lsmod | grep x` output counts as filtered)."""
    for raw in outputs(ev, "lsmod", node):
        names: set[str] = set()
        for _ref, text in numbered(raw):
            parts = text.split()
            if not parts or parts[0] == "Module":
                continue
            names.add(parts[0])
        cmd = parse_command(raw.command) if raw.command else None
        filtered = cmd is not None and len(cmd.stages) > 1
        if filtered:
            continue  # `lsmod | grep br_netfilter` with no output proves little on its own
        return Modules(frozenset(names), raw.source, raw.text)
    return None


def lsmod_grep_empty(ev: Evidence, node: str, module: str) -> EvidenceLine | None:
    """`lsmod | grep MODULE` that printed nothing: the module is not loaded."""
    for raw in outputs(ev, "lsmod", node):
        if raw.command and module in raw.command and "grep" in raw.command and not any(
                module in t for _r, t in numbered(raw)):
            return line(raw.source, f"$ {raw.command}   (no output: {module} is not loaded)")
    return None


# -- kernel log ----------------------------------------------------------------------------


def kernel_lines(ev: Evidence, pattern: re.Pattern[str], node: str | None = None
                 ) -> list[tuple[str | None, EvidenceLine, str]]:
    """Kernel log lines (dmesg output, journal `kernel:` lines, any log) matching `pattern`:
    (node, evidence, text)."""
    out: list[tuple[str | None, EvidenceLine, str]] = []
    seen: set[tuple[str, int]] = set()
    for raw in ev.outputs(node=node):
        for ref, text in numbered(raw):
            if pattern.search(text) and (ref.file, ref.line) not in seen:
                seen.add((ref.file, ref.line))
                out.append((raw_node(ev, raw), line(ref, text), text))
    for ln in ev.objects.logs:
        n = log_node(ev, ln)
        if node is not None and n != node:
            continue
        if pattern.search(ln.text) and (ln.source.file, ln.source.line) not in seen:
            seen.add((ln.source.file, ln.source.line))
            out.append((n, line(ln.source, ln.text), ln.text))
    return out


# -- conntrack -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConntrackStats:
    """`conntrack -S` summed over CPUs (or /proc/net/stat/nf_conntrack): counter → value."""

    counters: dict[str, int]
    source: SourceRef
    lines: tuple[EvidenceLine, ...]
    cpus: int

    def get(self, name: str) -> int:
        return self.counters.get(name, 0)


_KV = re.compile(r"\b([a-z_]+)=(\d+)\b")


def conntrack_stats(ev: Evidence, node: str) -> ConntrackStats | None:
    for raw in outputs(ev, "conntrack-stats", node):
        counters: dict[str, int] = {}
        lines: list[EvidenceLine] = []
        cpus = 0
        for ref, text in numbered(raw):
            pairs = _KV.findall(text)
            if not pairs:
                continue
            if text.lstrip().startswith("cpu="):
                cpus += 1
            for k, v in pairs:
                if k == "cpu":
                    continue
                counters[k] = counters.get(k, 0) + int(v)
            lines.append(line(ref, text))
        if counters:
            return ConntrackStats(counters, raw.source, tuple(lines), cpus)
    return None


@dataclass(frozen=True, slots=True)
class CtEntry:
    """One `conntrack -L` entry: original and reply tuples, state, flags."""

    proto: str
    state: str | None
    orig_src: IPAddress | None
    orig_dst: IPAddress | None
    orig_sport: int | None
    orig_dport: int | None
    reply_src: IPAddress | None
    reply_dst: IPAddress | None
    reply_sport: int | None
    reply_dport: int | None
    flags: tuple[str, ...]
    timeout: int | None
    evidence: EvidenceLine
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def dnat(self) -> bool:
        return self.reply_src is not None and self.reply_src != self.orig_dst


_CT_STATES = {"ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
              "TIME_WAIT", "CLOSE", "LISTEN", "UNREPLIED"}


def parse_conntrack_line(text: str, ref: SourceRef) -> CtEntry | None:
    """`udp      17 29 src=10.244.1.5 dst=10.96.0.10 sport=5353 dport=53 [UNREPLIED] src=... `"""
    words = text.split()
    if len(words) < 4 or words[0] not in ("tcp", "udp", "icmp", "sctp", "ipv4"):
        return None
    if words[0] == "ipv4" and len(words) > 2:
        words = words[2:]
    proto = words[0]
    timeout = int(words[2]) if len(words) > 2 and words[2].isdigit() else None
    state = next((w for w in words[3:6] if w in _CT_STATES and w != "UNREPLIED"), None)
    tuples: list[dict[str, str]] = [{}]
    flags: list[str] = []
    extra: dict[str, str] = {}
    for w in words[3:]:
        if w.startswith("[") and w.endswith("]"):
            flags.append(w.strip("[]"))
            continue
        key, sep, value = w.partition("=")
        if not sep:
            continue
        if key in ("src", "dst", "sport", "dport"):
            if key in tuples[-1]:
                tuples.append({})
            tuples[-1][key] = value
        else:
            extra[key] = value
    if len(tuples) < 2:
        return None
    o, r = tuples[0], tuples[1]

    def port(d: dict[str, str], k: str) -> int | None:
        v = d.get(k)
        return int(v) if v and v.isdigit() else None

    return CtEntry(proto, state, parse_ip(o.get("src")), parse_ip(o.get("dst")),
                   port(o, "sport"), port(o, "dport"), parse_ip(r.get("src")),
                   parse_ip(r.get("dst")), port(r, "sport"), port(r, "dport"), tuple(flags),
                   timeout, line(ref, text), extra)


def conntrack_entries(ev: Evidence, node: str | None = None) -> list[tuple[str | None, CtEntry]]:
    out: list[tuple[str | None, CtEntry]] = []
    for raw in outputs(ev, "conntrack-list", node):
        for ref, text in numbered(raw):
            entry = parse_conntrack_line(text.strip(), ref)
            if entry is not None:
                out.append((raw_node(ev, raw), entry))
    return out


# -- kube-proxy ----------------------------------------------------------------------------


def kube_proxy_logs(ev: Evidence) -> list[LogLine]:
    return [ln for ln in ev.objects.logs
            if (ln.pod or "").startswith("kube-proxy") or ln.component == "kube-proxy"
            or (ln.container or "") == "kube-proxy"]


def kube_proxy_pods(ev: Evidence) -> list[Pod]:
    return [p for p in ev.objects.pods if (p.name or "").startswith("kube-proxy")]


def kube_proxy_config(ev: Evidence) -> list[tuple[str, str, EvidenceLine]]:
    """(key, value, evidence) of the kube-proxy ConfigMap's config.conf (`mode`,
    `clusterCIDR`, `maxPerCore`, ...) — top-level and nested keys alike, in file order."""
    out: list[tuple[str, str, EvidenceLine]] = []
    for cm in ev.objects.configmaps:
        if cm.name != "kube-proxy":
            continue
        for text in cm.data.values():
            for i, raw_line in enumerate(text.splitlines()):
                stripped = raw_line.strip()
                key, sep, value = stripped.partition(":")
                if not sep or " " in key or key.startswith("#"):
                    continue
                ref = SourceRef(cm.source.file, cm.source.line + i if cm.source.line else 0)
                out.append((key, value.strip().strip("\"'"), line(ref, f"kube-proxy ConfigMap: "
                                                                        f"{stripped}")))
    return out


def kube_proxy_flag(ev: Evidence, name: str) -> tuple[str, EvidenceLine] | None:
    """A kube-proxy command-line flag (ps output, static pod command)."""
    for proc in ev.objects.processes:
        if proc.program == "kube-proxy" and proc.flag(name) is not None:
            return proc.flag(name) or "", line(proc.source, proc.cmdline)
    for pod in kube_proxy_pods(ev):
        for ctr in pod.containers:
            for arg in (*ctr.command, *ctr.args):
                if arg.startswith(f"--{name}="):
                    return arg.split("=", 1)[1], line(ctr.source, arg)
    return None


def logs_matching(lines: Iterable[LogLine], pattern: re.Pattern[str]) -> list[LogLine]:
    return [ln for ln in lines if pattern.search(ln.text)]


def first_lines(found: Iterable[LogLine], n: int = 3) -> list[EvidenceLine]:
    return [line(ln.source, ln.text) for ln in list(found)[:n]]


# -- pods and nodes --------------------------------------------------------------------------


def node_of_pod_ip(ev: Evidence, ip: IPAddress) -> str | None:
    """The node a pod address is on: its pod, an endpoint naming its node, or (a hostNetwork
    pod's address) the node that has it."""
    pod = pod_by_ip(ev, ip)
    if pod is not None and pod.node:
        return ev.node_for(pod.node)
    for eps in ev.objects.endpoints:
        for addr in eps.addresses:
            if addr.ip == ip and addr.node:
                return ev.node_for(addr.node)
    for p in ev.objects.pods:
        if ip in p.ips and p.node:
            return ev.node_for(p.node)
    return None


def kernel_version(ev: Evidence, node: str) -> str | None:
    for k8s in ev.objects.nodes:
        if ev.node_for(k8s.name) == node and k8s.kernel_version:
            return k8s.kernel_version
    for raw in outputs(ev, "uname", node):
        m = re.search(r"\b(\d+\.\d+(?:\.\d+)?[-\w.+]*)", raw.text)
        if m:
            return m.group(1)
    return None


def version_tuple(text: str | None) -> tuple[int, ...]:
    """`v1.27.6` / `5.4.0-150-generic` → (1, 27, 6) / (5, 4, 0); () when unknown."""
    if not text:
        return ()
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        return ()
    return tuple(int(g) for g in m.groups() if g is not None)
