"""The kernel's netfilter hook order, as data.

Each hook lists its tables in priority order (include/uapi/linux/netfilter_ipv4.h,
NF_IP_PRI_*: raw -300, conntrack -200, mangle -150, nat dst -100, filter 0, security 50,
nat src 100). The path a packet takes through the hooks (net/ipv4/ip_input.c, ip_output.c,
ip_forward.c) is declared in PATHS; trace.py walks it and never hard-codes an order of its own.
"""

from __future__ import annotations

import enum


class Hook(enum.StrEnum):
    PREROUTING = "PREROUTING"
    INPUT = "INPUT"
    FORWARD = "FORWARD"
    OUTPUT = "OUTPUT"
    POSTROUTING = "POSTROUTING"


# Tables in the order the kernel runs them at each hook. nat at INPUT/POSTROUTING is the
# source-NAT side (priority 100), so it comes after filter/security there.
# CONNTRACK is not a table but conntrack's own hook function (NF_IP_PRI_CONNTRACK, -200):
# from there on the packet belongs to a connection.
CONNTRACK = "conntrack"
HOOK_TABLES: dict[Hook, tuple[str, ...]] = {
    Hook.PREROUTING: ("raw", CONNTRACK, "mangle", "nat"),
    Hook.INPUT: ("mangle", "filter", "security", "nat"),
    Hook.FORWARD: ("mangle", "filter", "security"),
    Hook.OUTPUT: ("raw", CONNTRACK, "mangle", "nat", "filter", "security"),
    Hook.POSTROUTING: ("mangle", "nat"),
}


class Stage(enum.StrEnum):
    """Steps of a path that are not netfilter hooks."""

    ROUTE = "route"  # ip_route_output / ip_route_input
    REROUTE = "reroute"  # ip_route_me_harder after mangle/nat OUTPUT changed the packet
    DELIVER = "deliver"  # ip_local_deliver → socket
    TRANSMIT = "transmit"  # dev_queue_xmit on the output interface


# Where the packet goes, stage by stage, for each way it can enter the node's IP layer.
# "local-out": socket → route (at connect time) → OUTPUT → [reroute] → POSTROUTING → out/lo.
# "received": interface → PREROUTING → route → INPUT → socket, or FORWARD → POSTROUTING → out.
LOCAL_OUT: tuple[Hook | Stage, ...] = (Stage.ROUTE, Hook.OUTPUT, Stage.REROUTE, Hook.POSTROUTING)
RECEIVED: tuple[Hook | Stage, ...] = (Hook.PREROUTING, Stage.ROUTE)
TO_LOCAL: tuple[Hook | Stage, ...] = (Hook.INPUT, Stage.DELIVER)
FORWARDED: tuple[Hook | Stage, ...] = (Hook.FORWARD, Hook.POSTROUTING, Stage.TRANSMIT)

# Tables that only see the first packet of a connection: the nat table is consulted once per
# conntrack entry per direction (nf_nat_inet_fn: only when no NAT binding exists yet).
NAT_TABLE = "nat"

# OUTPUT tables after which the kernel re-routes a locally generated packet, and the fields
# whose change triggers it: ipt_mangle_out() checks saddr/daddr/mark/tos,
# nf_nat_ipv4_local_fn() checks only the destination address (ip_route_me_harder).
REROUTE_AFTER: dict[str, tuple[str, ...]] = {
    "mangle": ("src", "dst", "mark"),
    "nat": ("dst",),
}
