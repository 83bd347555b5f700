"""Failure mode 37: VXLAN TX checksum offload corrupts NATed node traffic: ~63 s stalls.

On kernels before 5.7 a node-originated packet that kube-proxy DNATs (node → ClusterIP or
NodePort) and that then leaves through a VXLAN device with `tx-checksum-ip-generic: on` gets a
wrong UDP/TCP checksum; the receiver drops it. TCP retransmits the SYN after 1, 2, 4, 8, 16 and
32 s and a retransmission eventually passes: the request takes ~63 s (kubernetes#88986,
projectcalico/calico#3145; Calico's feature detection treats checksum offload as broken below
5.7). Pod → pod traffic is not NATed on the node and is not affected.

The proof: the timing fingerprint (a `time`d client that took 61 to 66 s) on a node, and a trace
of that client's packet showing it is DNATed and leaves through a VXLAN device; `ethtool -k`
of that device showing the offload on and the node's kernel version raise confidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.datapath.trace_model import Trace
from netsleuth.diagnose.detectors._cluster import k8s_nodes
from netsleuth.diagnose.detectors._cni_dns import (
    ev_line,
    host_of_exec,
    links_of,
    raw_lines,
    raw_outputs,
    trace_local,
    trace_summary,
    tunnel_kind,
)
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.k8s import parse_ip, split_hostport
from netsleuth.model.net import IPAddress

KIND = "vxlan-checksum-offload"
TIME_REAL = re.compile(r"^real\s+(\d+)m([\d.]+)s\s*$")
FEATURES = re.compile(r"^Features for (\S+):")
TX_GENERIC = re.compile(r"^\s*tx-checksum-ip-generic:\s+(on|off)")


def _kernel(ev: Evidence, node: str) -> tuple[str | None, EvidenceLine | None]:
    k = k8s_nodes(ev).get(node)
    if k is not None and k.kernel_version:
        return k.kernel_version, ev_line(k.source, f"{node} kernel {k.kernel_version}")
    for raw in raw_outputs(ev, "unknown", command=re.compile(r"\buname\b"), node=node):
        for ref, text in raw_lines(raw):
            if re.match(r"^\d+\.\d+", text.strip()):
                return text.strip(), ev_line(ref, text)
    return None, None


def _old_kernel(version: str | None) -> bool | None:
    if version is None:
        return None
    m = re.match(r"^(\d+)\.(\d+)", version)
    if m is None:
        return None
    return (int(m.group(1)), int(m.group(2))) < (5, 7)


def _offload(ev: Evidence, node: str, device: str) -> tuple[bool | None, EvidenceLine | None]:
    for raw in raw_outputs(ev, "ethtool-k", command=re.compile(r"\bethtool\s+(-k|--show-features)"),
                           node=node):
        current = raw.command.split()[-1] if raw.command else None
        for ref, text in raw_lines(raw):
            head = FEATURES.match(text.strip())
            if head is not None:
                current = head.group(1)
                continue
            m = TX_GENERIC.match(text)
            if m is not None and current == device:
                return m.group(1) == "on", ev_line(ref, f"{device}: {text.strip()}")
    return None, None


def _target(command: str) -> tuple[IPAddress, int] | None:
    """The address:port a timed curl/nc/wget went to."""
    for word in command.split():
        if word.startswith("@"):  # dig @SERVER: DNS over port 53
            ip = parse_ip(word[1:])
            if ip is not None:
                return ip, 53
            continue
        https = word.startswith("https://")
        host = word.split("://", 1)[-1].split("/", 1)[0]
        name, port = split_hostport(host)
        ip = parse_ip(name)
        if ip is not None and ("." in name or ":" in name):
            return ip, port or (443 if https else 80)
    return None


@detector("D37", title="VXLAN checksum offload bug: ~63 s stalls", needs=("links",), mode="37")
def vxlan_csum_offload(ev: Evidence) -> Iterator[Finding]:
    seen: set[str] = set()
    for raw in ev.raw:
        if not raw.command or not re.search(r"\btime\b", raw.command):
            continue
        for ref, text in raw_lines(raw):
            m = TIME_REAL.match(text.strip())
            if m is None:
                continue
            seconds = int(m.group(1)) * 60 + float(m.group(2))
            if not 61.0 <= seconds <= 66.0:
                continue
            node, pod = host_of_exec(raw, ev)
            if node is None or node in seen or node not in ev.nodes or pod is not None:
                continue
            found = _target(raw.command)
            if found is None:
                continue
            ip, port = found
            t = trace_local(ev.nodes[node].state, ip, port, "tcp")
            links = links_of(ev, node)
            out_dev = links.get(t.main.interface or "")
            if out_dev is None or tunnel_kind(out_dev) != "vxlan":
                continue
            seen.add(node)
            yield _finding(ev, node, seconds, ev_line(ref, text), raw.command, t, out_dev.name)


def _finding(ev: Evidence, node: str, seconds: float, timing: EvidenceLine, command: str,
             t: Trace, device: str) -> Finding:
    evidence = [timing, ev_line(None, f"trace: {trace_summary(t)}")]
    natted = t.main.packet.dnat
    dnat = [s for s in t.main.steps if s.action.startswith("DNAT")]
    for s in dnat[:1]:
        evidence.append(ev_line(s.source, f"{s.rule}   ← {s.action}"))
    offload, off_line = _offload(ev, node, device)
    kernel, k_line = _kernel(ev, node)
    old = _old_kernel(kernel)
    if off_line is not None:
        evidence.append(off_line)
    if k_line is not None:
        evidence.append(k_line)
    confidence = 0.6 + (0.15 if natted else 0) + (0.15 if offload else 0) + (0.05 if old else 0)
    if offload is False or old is False:
        confidence -= 0.3
    detail = [f"`{command}` on {node} took {seconds:.1f} s: 1+2+4+8+16+32 s of SYN "
              "retransmissions before one got through.",
              f"The trace shows the packet is {'DNATed by kube-proxy and ' if natted else ''}"
              f"sent out {device} (VXLAN): the path the offload bug corrupts."]
    if offload:
        detail.append(f"`ethtool -k {device}`: tx-checksum-ip-generic is on.")
    if kernel:
        detail.append(f"Kernel {kernel}: " + ("older than 5.7, affected." if old else
                                              "5.7 or newer, normally fixed: check the checksum "
                                              "in a capture before applying the workaround."))
    return Finding(
        detector="D37", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{node}",
        title=f"VXLAN TX checksum offload on {node}'s {device} stalls NATed node traffic "
              f"(~{seconds:.0f} s)",
        node=node, confidence=max(0.3, min(confidence, 0.95)),
        why="the ~63 s timing fingerprint plus a trace showing the NATed packet leaves through "
            "the VXLAN device" + (" with TX checksum offload on" if offload else ""),
        evidence=tuple(evidence),
        explains=(f"stall-63s@{node}",),
        fix=(Fix(f"ethtool -K {device} tx-checksum-ip-generic off", "now",
                 f"on {node} (and every node with {device}); takes effect at once"),
             Fix(f"persist it: a udev rule ACTION==\"add\", KERNEL==\"{device}\", RUN+=\"/sbin/ethtool"
                 f" -K {device} tx-checksum-ip-generic off\" (the device is re-created when the CNI "
                 "restarts), or Calico FELIX_FEATUREDETECTOVERRIDE=ChecksumOffloadBroken=true",
                 "permanent", "or upgrade the kernel to 5.7+ / a CNI release with the workaround")),
        detail="\n".join(detail), trace=t,
    )
