"""Where a traced packet starts: the host itself, or received on an interface from an IP."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address

from netsleuth.datapath.fib import Fib
from netsleuth.errors import NetsleuthError
from netsleuth.model.net import IPAddress
from netsleuth.model.node import NodeState


class OriginError(NetsleuthError):
    """A --from/--to value that does not name a usable source or destination."""


@dataclass(frozen=True, slots=True)
class Origin:
    src: IPAddress | None  # None: the kernel picks the source (an unbound socket)
    iif: str | None  # None: locally generated

    @property
    def label(self) -> str:
        if self.iif is None:
            return "host" if self.src is None else f"host ({self.src})"
        return f"{self.src}@{self.iif}"


def parse_endpoint(text: str) -> tuple[IPAddress, int | None]:
    """`10.96.0.1:443`, `10.96.0.1`, `[fd00::1]:443` or `fd00::1`."""
    value = text.strip()
    try:
        if value.startswith("["):
            host, _, rest = value[1:].partition("]")
            return ip_address(host), int(rest[1:]) if rest.startswith(":") else None
        if value.count(":") == 1:
            host, port = value.split(":")
            number = int(port)
            if not 0 <= number <= 65535:
                raise ValueError(port)
            return ip_address(host), number
        return ip_address(value), None
    except ValueError:
        raise OriginError(f"{text!r}: expected IP[:PORT] (e.g. 10.96.0.1:443 or "
                          "[fd00::1]:443)") from None


def resolve_origin(node: NodeState, text: str) -> Origin:
    """`host`, `IP` or `IP@IFACE`. A bare IP that is local to the node means the host with
    that source address; any other bare IP is taken as received on the interface the node
    routes that IP to (a pod behind its veth, a peer on a segment)."""
    value = text.strip()
    if value in ("host", "node", "local"):
        return Origin(None, None)
    ip_text, _, iface = value.partition("@")
    try:
        src = ip_address(ip_text)
    except ValueError:
        raise OriginError(f"{text!r}: expected 'host', IP or IP@INTERFACE "
                          "(e.g. 10.10.0.130@cali3d6a8137e9b)") from None
    if iface:
        known = {link.name for link in node.links} | {a.ifname for a in node.addresses}
        if known and iface not in known:
            raise OriginError(f"{text!r}: node {node.name} has no interface {iface!r} "
                              f"(known: {', '.join(sorted(known))})")
        return Origin(src, iface)
    fib = Fib(node.routes, node.rules, node.addresses, src.version)
    if fib.is_local(src):
        return Origin(src, None)
    result = fib.lookup(src, iif="lo")
    if not result.ok or not result.route or not result.route.dev:
        raise OriginError(f"{text!r}: node {node.name} has no route to {src}, so the "
                          "interface it arrives on is unknown; give it as IP@INTERFACE")
    return Origin(src, result.route.dev)


def check_families(origin: Origin, dst: IPAddress) -> None:
    """A packet has one address family: an IPv6 source cannot reach an IPv4 destination."""
    if origin.src is not None and origin.src.version != dst.version:
        raise OriginError(f"source {origin.src} is IPv{origin.src.version} but the destination "
                          f"{dst} is IPv{dst.version}")
