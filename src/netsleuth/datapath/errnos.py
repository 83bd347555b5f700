"""Errno names: what a client sees, and what each one means for diagnosis.

The meaning column is the "errno reasoning" of docs/DESIGN: it separates routing verdicts from
firewall verdicts from silence, in both directions (log line → candidate causes, trace → the
error a client would print).
"""

from __future__ import annotations

import errno
import os

MEANING: dict[str, str] = {
    "ENETUNREACH": "the local routing table has no route (or an ICMP net-unreachable came "
                   "back); nothing reached a firewall",
    "EHOSTUNREACH": "a route of type unreachable, a failed ARP on a connected route, or an "
                    "ICMP host-unreachable/-prohibited (e.g. a REJECT rule)",
    "EACCES": "a route or rule of type prohibit",
    "EINVAL": "a blackhole route or rule",
    "ECONNREFUSED": "a RST or ICMP port-unreachable: nothing listening, or a REJECT rule "
                    "(kube-proxy rejects Services without endpoints)",
    "EPERM": "a netfilter DROP of a locally generated packet (sendmsg fails at once)",
    "ETIMEDOUT": "silence: a DROP somewhere on the path or a peer that never answers",
    "ENOPROTOOPT": "an ICMP protocol-unreachable",
}


def strerror(name: str) -> str:
    """`ENETUNREACH` → `Network is unreachable` (the text Go and libc print)."""
    code = getattr(errno, name, None)
    return os.strerror(code) if isinstance(code, int) else name
