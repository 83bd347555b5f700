"""Failure mode 30: a CNI plugin binary the network config names is not in the runtime's bin dir.

The runtime executes each plugin of the conflist (`type: "bridge"`, `"portmap"`, `"loopback"`,
`"flannel"`, ...) from its CNI bin dir(s); when one is missing every sandbox fails with
`failed to find plugin "X" in path [/opt/cni/bin]` and kubelet re-creates the sandbox over and
over. The path list in the error is what the runtime searched; a listing of that directory
proves the binary is absent (or shows it lives elsewhere: the runtime's `bin_dir` and where
the plugins were installed differ, as on k3s/RKE2 with their own data dirs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._cluster import pods_on_node
from netsleuth.diagnose.detectors._cni_dns import (
    all_events,
    ev_line,
    event_node,
    event_text,
    matching_logs,
    raw_lines,
    raw_outputs,
)
from netsleuth.diagnose.detectors._common import dns_pod
from netsleuth.diagnose.evidence import Evidence, log_node
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector

KIND = "cni-plugin-missing"
MISSING = re.compile(r'failed to find plugin \\?"([\w.-]+)\\?" in path \[([^\]]*)\]')
PLUGINS_VERSION = "v1.4.1"  # containernetworking/plugins release used in the fix command


def _listing(ev: Evidence, node: str, directory: str) -> tuple[set[str], EvidenceLine] | None:
    """Names in an `ls DIR` output of that node."""
    for raw in raw_outputs(ev, "unknown", command=re.compile(r"\bls\b.*" + re.escape(directory)),
                           node=node):
        names: set[str] = set()
        first: EvidenceLine | None = None
        for ref, text in raw_lines(raw):
            words = text.split()
            if not words:
                continue
            if text.startswith("total "):
                continue
            # `ls -l` rows end with the name; plain `ls` prints several names per line.
            cand = [words[-1]] if re.match(r"^[-dlrwx]{10}", text) else words
            names.update(w.rstrip("*/@") for w in cand)
            first = first or ev_line(ref, text)
        if first is not None:
            return names, ev_line(raw.source, f"ls {directory}: {', '.join(sorted(names))}")
    return None


@detector("D30", title="CNI plugin binaries missing", needs=("events", "logs"), mode="30")
def cni_plugin_missing(ev: Evidence) -> Iterator[Finding]:
    found: dict[str, tuple[set[str], list[str], list[EvidenceLine]]] = {}
    for e in all_events(ev):
        for m in MISSING.finditer(e.message):
            node = event_node(ev, e) or "?"
            entry = found.setdefault(node, (set(), [], []))
            entry[0].add(m.group(1))
            entry[1].extend(p for p in m.group(2).split() if p not in entry[1])
            entry[2].append(ev_line(e.source, event_text(e)))
    for ln, m in matching_logs(ev, MISSING):
        node = log_node(ev, ln) or "?"
        entry = found.setdefault(node, (set(), [], []))
        entry[0].add(m.group(1))
        entry[1].extend(p for p in m.group(2).split() if p not in entry[1])
        entry[2].append(ev_line(ln.source, ln.text))
    for node, (plugins, paths, lines) in sorted(found.items()):
        yield _finding(ev, node, sorted(plugins), paths, lines)


def _finding(ev: Evidence, node: str, plugins: list[str], paths: list[str],
             lines: list[EvidenceLine]) -> Finding:
    evidence = list(dict.fromkeys(lines))[:3]
    proven = False
    elsewhere: list[str] = []
    for d in paths:
        listed = _listing(ev, node, d) if node != "?" else None
        if listed is None:
            continue
        names, quote = listed
        evidence.append(quote)
        if all(p not in names for p in plugins):
            proven = True
        else:
            elsewhere.append(d)
    bin_dir = paths[0] if paths else "/opt/cni/bin"
    where = f"on {node}: " if node != "?" else ""
    dns_here = [p for p in pods_on_node(ev, node) if dns_pod(p.name)] if node != "?" else []
    explains = [f"sandbox-churn@{node}", f"pod-no-ip@{node}"]
    if dns_here:
        explains.append("dns-down")
    return Finding(
        detector="D30", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node}",
        title=f"CNI plugin{'s' if len(plugins) > 1 else ''} {', '.join(plugins)} missing from "
              f"{' '.join(paths) or bin_dir}" + (f" on {node}" if node != "?" else ""),
        node=None if node == "?" else node, confidence=0.95 if proven else 0.85,
        why="the runtime's own error names the plugin and the directories it searched"
            + (", and the listing of that directory lacks it" if proven else ""),
        evidence=tuple(evidence), explains=tuple(explains),
        fix=(Fix(f"{where}curl -sSL https://github.com/containernetworking/plugins/releases/"
                 f"download/{PLUGINS_VERSION}/cni-plugins-linux-$(dpkg --print-architecture 2>/dev/"
                 f"null || echo amd64)-{PLUGINS_VERSION}.tgz | tar -C {bin_dir} -xz", "now",
                 "installs the reference plugins (bridge, host-local, loopback, portmap, ...) "
                 "where the runtime looks; the next sandbox attempt succeeds"),
             Fix(f"{where}grep -n bin_dir /etc/containerd/config.toml  # must list {bin_dir}",
                 "permanent", "the runtime's bin_dir and the directory the CNI installer writes "
                              "to must be the same")),
        detail=("The listing of " + ", ".join(elsewhere) + " does show the plugin: it may have "
                "been installed after the error, or be unreadable/for another architecture."
                if elsewhere else ""),
    )
