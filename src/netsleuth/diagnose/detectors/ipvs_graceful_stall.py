"""Failure mode 23: IPVS connection reuse and graceful termination stall connections.

With net.ipv4.vs.conn_reuse_mode=1 on kernels before 5.9, a new connection whose source port
reuses a tuple still in the IPVS connection table has its first SYN dropped so the entry can
be expired: the client retransmits after 1 s (kubernetes/kubernetes#81775). Separately, kube-
proxy's graceful termination sets a deleted endpoint's weight to 0 and keeps it while
connections to it exist; with expire_nodest_conn=0 packets of those connections are blackholed
for minutes (kubernetes/kubernetes#70747, #71358).

Evidence: the IPVS sysctls and the kernel version; `ipvsadm -Ln` real servers with weight 0
still holding connections; `ipvsadm -Lnc` entries to them. The simulator does not model IPVS,
so this is reasoned from those tables, not traced.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._cluster import sysctl_line
from netsleuth.diagnose.detectors._common import line
from netsleuth.diagnose.detectors._host_evidence import (
    kernel_version,
    numbered,
    outputs,
    sysctl,
    version_tuple,
)
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector

KIND = "ipvs-conn-reuse-stall"
RS = re.compile(r"^\s*->\s+(?P<addr>[\d.]+):(?P<port>\d+)\s+\S+\s+(?P<w>\d+)\s+(?P<act>\d+)\s+"
                r"(?P<inact>\d+)")
VS = re.compile(r"^(?P<proto>TCP|UDP|SCTP)\s+(?P<vip>[\d.]+):(?P<port>\d+)\s+\w+")
TIME_1S = re.compile(r"(?:time_)?connect[:=\s]+1\.0\d+|^real\s+0m ?1\.0\d+s", re.MULTILINE)


@detector("C23", title="IPVS connection reuse / graceful termination stalls",
          needs=("sysctl", "logs"), mode="23")
def ipvs_stalls(ev: Evidence) -> Iterator[Finding]:
    for name, node in sorted(ev.nodes.items()):
        reuse = sysctl(node, "net.ipv4.vs.conn_reuse_mode")
        nodest = sysctl(node, "net.ipv4.vs.expire_nodest_conn")
        if reuse is None and nodest is None:
            continue
        kver = kernel_version(ev, name)
        old_kernel = bool(version_tuple(kver)) and version_tuple(kver) < (5, 9)
        evidence: list[EvidenceLine] = []
        problems: list[str] = []
        fixes: list[Fix] = []
        if reuse == "1" and old_kernel:
            evidence.append(sysctl_line(node, "net.ipv4.vs.conn_reuse_mode"))
            problems.append(f"conn_reuse_mode=1 on kernel {kver} (< 5.9): the first SYN of a "
                            "connection reusing a port still in the IPVS table is dropped, the "
                            "client retries after 1 s")
            fixes.append(Fix("upgrade the node kernel to ≥ 5.9 (or sysctl -w "
                             "net.ipv4.vs.conn_reuse_mode=0, accepting that new connections on "
                             "reused ports may go to removed backends)", "permanent"))
        stale: list[EvidenceLine] = []
        for raw in outputs(ev, "ipvsadm", name):
            vip = None
            for ref, text in numbered(raw):
                vm = VS.match(text)
                if vm:
                    vip = f"{vm.group('vip')}:{vm.group('port')}"
                rm = RS.match(text)
                if rm and rm.group("w") == "0" and (int(rm.group("act")) + int(rm.group("inact"))):
                    stale.append(line(ref, f"{vip}: {text.strip()}   ← weight 0, still holds "
                                           "connections"))
        if nodest == "0" and stale:
            evidence.append(sysctl_line(node, "net.ipv4.vs.expire_nodest_conn"))
            evidence += stale[:3]
            problems.append("removed endpoints stay in IPVS with weight 0 and their connections "
                            "are not expired (expire_nodest_conn=0): clients keep sending into "
                            "them")
            fixes.insert(0, Fix("sysctl -w net.ipv4.vs.expire_nodest_conn=1 && sysctl -w "
                                "net.ipv4.vs.expire_quiescent_template=1", "now",
                                "IPVS then drops connections to removed real servers at once so "
                                "clients reconnect"))
        if not problems:
            continue
        timing = []
        for raw in ev.outputs(node=name):
            for ref, text in numbered(raw):
                if TIME_1S.search(text):
                    timing.append(line(ref, text.strip()))
        evidence += timing[:2]
        yield Finding(
            detector="C23", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{name}",
            title=f"IPVS on {name} stalls connections: " + "; ".join(
                p.split(":")[0] for p in problems),
            node=name, confidence=0.8 if timing or stale else 0.6,
            why="from the IPVS sysctls, the kernel version and the IPVS tables (the simulator "
                "does not model IPVS: not traced)",
            evidence=tuple(evidence),
            explains=(f"svc-unreachable:TIMEOUT@{name}", f"svc-unreachable:ETIMEDOUT@{name}"),
            fix=tuple(fixes), detail=". ".join(problems) + ".",
        )
