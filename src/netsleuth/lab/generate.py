"""Seeded random node configurations for kernel-differential testing.

A `Case` is one node (the device under test, "DUT") with two links, eth0 and eth1, plus probes
to send through it. Everything is drawn from small address pools so that routes, rules and
iptables rules overlap and interact (longest prefix vs metric vs policy rule, DNAT into a
blackhole, MASQUERADE choosing the egress address, REJECT types, rp_filter on spoofed sources).
The same seed always gives the same case (`random.Random(seed)`), so a disagreement found by
`netsleuth lab diff --seed S` is reproduced by the same seed, and stored as JSON for regression.

Every rule is valid by construction for the hook it is in (iptables refuses e.g. `-i` in
OUTPUT or DNAT in POSTROUTING), so `iptables-restore` accepts every generated ruleset.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import asdict, dataclass, field
from typing import Any

LINKS = ("eth0", "eth1")
PORTS = (53, 80, 443, 8080, 9090)  # the DUT listens (tcp and udp) on all of them
TABLES = (100, 200)
MARKS = (0x1, 0x2, 0x4000)
REJECT_WITH = (
    None,
    "icmp-port-unreachable",
    "icmp-host-unreachable",
    "icmp-net-unreachable",
    "icmp-host-prohibited",
    "icmp-net-prohibited",
    "icmp-admin-prohibited",
    "tcp-reset",
)


@dataclass(frozen=True)
class Probe:
    """One packet: `kind` local (the DUT connects) or received (injected on `iif`)."""

    kind: str
    proto: str
    dst: str
    dport: int
    sport: int
    src: str | None = None
    iif: str | None = None

    def describe(self) -> str:
        where = "from the node" if self.kind == "local" else f"{self.src} in on {self.iif}"
        return f"{self.proto} {where} -> {self.dst}:{self.dport} (sport {self.sport})"


@dataclass(frozen=True)
class Case:
    """A node configuration plus probes; `to_dict()`/`from_dict()` round-trip through JSON."""

    seed: int
    addresses: dict[str, list[str]]  # link -> CIDRs ("lo" too)
    routes: list[str]  # `ip route add` specs
    rules: list[str]  # `ip rule add` specs
    iptables: str  # iptables-restore text
    sysctls: dict[str, str]
    probes: list[Probe]
    neighbors: list[str] = field(default_factory=list)  # possible next hops (static neigh)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Case:
        return Case(
            seed=int(d["seed"]),
            addresses={k: list(v) for k, v in d["addresses"].items()},
            routes=list(d["routes"]),
            rules=list(d["rules"]),
            iptables=str(d["iptables"]),
            sysctls=dict(d["sysctls"]),
            probes=[Probe(**p) for p in d["probes"]],
            neighbors=list(d.get("neighbors", [])),
        )

    def script(self) -> str:
        """Shell commands that build the DUT by hand (the minimal reproduction in reports)."""
        lines = []
        for link, addrs in self.addresses.items():
            lines += [f"ip addr add {a} dev {link}" for a in addrs]
        lines += [f"ip route add {r}" for r in self.routes]
        lines += [f"ip rule add {r}" for r in self.rules]
        lines += [f"sysctl -w {k}={v}" for k, v in self.sysctls.items()]
        lines.append("iptables-restore <<'EOF'\n" + self.iptables.rstrip() + "\nEOF")
        return "\n".join(lines)


class _Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.seed = seed
        r = self.r
        nets = r.sample([f"10.{a}.{b}.0/24" for a in range(1, 6) for b in range(0, 3)], 4)
        self.subnet = {"eth0": nets[0], "eth1": nets[1]}
        self.extra_subnet = {"eth0": nets[2], "eth1": nets[3]}
        self.far = [
            "172.16.0.0/16",
            "172.16.0.0/22",
            "172.16.1.0/24",
            "172.16.2.0/24",
            "192.168.7.0/24",
            "10.96.0.0/12",
            "10.96.0.0/24",
            "0.0.0.0/0",
        ]
        self.vips = ["10.96.0.1", "10.96.0.10", "10.96.5.5"]
        self.lo_vips: list[str] = []
        self.addrs: dict[str, list[str]] = {"eth0": [], "eth1": [], "lo": []}
        self.local_ips: list[str] = []  # addresses configured on the DUT
        self.anyip: list[str] = []  # local by an AnyIP `local` route, not by an address

    # ------------------------------------------------------------------ pools
    def host(self, cidr: str, lo: int = 2, hi: int = 250) -> str:
        net = ipaddress.ip_network(cidr)
        if net.prefixlen >= 31:
            return str(net.network_address)
        span = min(net.num_addresses - 2, hi)
        return str(net.network_address + self.r.randint(lo, max(lo, span)))

    def gateway(self, link: str) -> str:
        net = ipaddress.ip_network(self.subnet[link])
        return str(net.network_address + self.r.choice((254, 253)))

    def prefix(self) -> str:
        r = self.r
        pool = [*self.far, *self.subnet.values(), *self.extra_subnet.values()]
        pick = r.choice(pool)
        if r.random() < 0.2:
            return f"{self.host(pick)}/32"
        return pick

    def dst_ip(self) -> str:
        r = self.r
        choice = r.random()
        if choice < 0.35:
            return self.host(r.choice(["172.16.1.0/24", "172.16.2.0/24", "172.16.3.0/24", "192.168.7.0/24"]))
        if choice < 0.55:
            return r.choice(self.vips)
        if choice < 0.75 and self.local_ips:
            return r.choice(self.local_ips + self.anyip)
        if choice < 0.9:
            return self.host(self.subnet[r.choice(LINKS)], 20, 200)
        return self.host(self.extra_subnet[r.choice(LINKS)], 20, 200)

    # ------------------------------------------------------------------ sections
    def addresses(self) -> None:
        r = self.r
        for link in LINKS:
            ip = self.host(self.subnet[link], 1, 9)
            self.addrs[link].append(f"{ip}/24")
            self.local_ips.append(ip)
            if r.random() < 0.3:
                ip2 = self.host(self.extra_subnet[link], 1, 9)
                self.addrs[link].append(f"{ip2}/24")
                self.local_ips.append(ip2)
        if r.random() < 0.4:
            vip = f"10.255.0.{r.randint(1, 9)}"
            self.addrs["lo"].append(f"{vip}/32")
            self.local_ips.append(vip)
            self.lo_vips.append(vip)

    def route(self, table: int | None, seen: set[tuple[str, int | None, int]]) -> str | None:
        r = self.r
        dst = self.prefix()
        metric = r.choice((0, 0, 10, 100))
        key = (str(ipaddress.ip_network(dst, strict=False)), table, metric)
        connected = {*self.subnet.values(), *self.extra_subnet.values()}
        if key in seen or (table is None and metric == 0 and dst in connected):
            return None
        seen.add(key)
        kind = r.random()
        where = "" if table is None else f" table {table}"
        met = f" metric {metric}" if metric else ""
        dst_text = "default" if dst == "0.0.0.0/0" else dst
        if kind < 0.12:
            return f"blackhole {dst_text}{where}{met}"
        if kind < 0.22:
            return f"unreachable {dst_text}{where}{met}"
        if kind < 0.3:
            return f"prohibit {dst_text}{where}{met}"
        if kind < 0.36 and table is not None:
            return f"throw {dst_text}{where}{met}"
        link = r.choice(LINKS)
        how = r.random()
        if how < 0.5:
            via = f"via {self.gateway(link)} dev {link}"
        elif how < 0.7:
            via = f"via {self.gateway(link)}"
        elif how < 0.85:
            via = f"dev {link}"
        else:
            via = f"via 10.200.{LINKS.index(link)}.1 dev {link} onlink"
        src = ""
        if r.random() < 0.1 and self.local_ips:
            src = f" src {r.choice(self.local_ips)}"
        return f"{dst_text} {via}{where}{met}{src}"

    def routes(self) -> list[str]:
        r = self.r
        out: list[str] = []
        seen: set[tuple[str, int | None, int]] = set()
        if r.random() < 0.6:
            # most nodes have a default route; without one most probes end in ENETUNREACH
            link = r.choice(LINKS)
            out.append(f"default via {self.gateway(link)} dev {link}")
            seen.add(("0.0.0.0/0", None, 0))
        for table, count in ((None, r.randint(0, 4)), (100, r.randint(0, 3)), (200, r.randint(0, 2))):
            for _ in range(count):
                spec = self.route(table, seen)
                if spec:
                    out.append(spec)
        if r.random() < 0.1:
            out.append("local 10.250.0.0/24 dev lo table local")
            self.anyip.append(self.host("10.250.0.0/24"))
        return out

    def rules(self) -> list[str]:
        r = self.r
        out = []
        prios = r.sample(range(100, 30000, 7), r.randint(0, 3))
        for prio in sorted(prios):
            sel = []
            if r.random() < 0.4:
                sel.append(f"from {self.prefix()}")
            if r.random() < 0.4:
                sel.append(f"to {self.prefix()}")
            if r.random() < 0.25:
                mark = r.choice(MARKS)
                sel.append(f"fwmark {mark:#x}" + (f"/{mark:#x}" if r.random() < 0.5 else ""))
            if r.random() < 0.25:
                sel.append(f"iif {r.choice((*LINKS, 'lo'))}")
            neg = "not " if sel and r.random() < 0.1 else ""
            act = r.random()
            if act < 0.75:
                action = f"lookup {r.choice((*TABLES, 'main'))}"
            else:
                action = r.choice(("unreachable", "prohibit", "blackhole"))
            out.append(f"priority {prio} {neg}{' '.join(sel)} {action}".replace("  ", " "))
        return out

    def sysctls(self) -> dict[str, str]:
        r = self.r
        out = {"net.ipv4.ip_forward": r.choice("0111")}
        for link in ("all", *LINKS):
            out[f"net.ipv4.conf.{link}.rp_filter"] = r.choice("00012")
        return out

    # ------------------------------------------------------------------ iptables
    def match(self, chain: str, proto_ok: bool = True) -> str:
        """Random matches valid in `chain` (a built-in chain name or GEN-* custom chain)."""
        r = self.r
        parts = []
        for opt, chance in (("-s", 0.35), ("-d", 0.45)):
            if r.random() < chance:
                pfx = self.prefix()
                # `! -s 0.0.0.0/0` matches nothing and iptables refuses it
                neg = "! " if r.random() < 0.15 and pfx != "0.0.0.0/0" else ""
                parts.append(f"{neg}{opt} {pfx}")
        if proto_ok and r.random() < 0.5:
            proto = r.choice(("tcp", "udp"))
            parts.append(f"-p {proto}")
            if r.random() < 0.7:
                parts.append(f"-m {proto} --dport {r.choice(PORTS)}")
        if chain in ("PREROUTING", "INPUT", "FORWARD") and r.random() < 0.25:
            parts.append(f"-i {r.choice(LINKS)}")
        if chain in ("OUTPUT", "FORWARD", "POSTROUTING") and r.random() < 0.25:
            parts.append(f"-o {r.choice(LINKS)}")
        if r.random() < 0.12:
            parts.append(f"-m addrtype {'! ' if r.random() < 0.3 else ''}--dst-type LOCAL")
        if r.random() < 0.1:
            parts.append("-m conntrack --ctstate NEW")
        if r.random() < 0.12:
            mark = r.choice(MARKS)
            parts.append(f"-m mark --mark {mark:#x}/{mark:#x}")
        return " ".join(parts)

    def nat_dnat_target(self) -> str:
        r = self.r
        if r.random() < 0.25:
            return f"-j REDIRECT --to-ports {r.choice(PORTS)}"
        pool = [*self.local_ips, self.host("172.16.1.0/24"), self.host(self.subnet[r.choice(LINKS)])]
        ip = r.choice(pool)
        port = f":{r.choice(PORTS)}" if r.random() < 0.6 else ""
        return f"-j DNAT --to-destination {ip}{port}"

    def nat(self) -> list[str]:
        r = self.r
        rules: list[str] = []
        use_dnat_chain = r.random() < 0.4
        for chain in ("PREROUTING", "OUTPUT"):
            for _ in range(r.randint(0, 2)):
                roll = r.random()
                if roll < 0.15 and use_dnat_chain:
                    jump = "-g" if r.random() < 0.3 else "-j"
                    rules.append(f"-A {chain} {self.match(chain)} {jump} GEN-DNAT")
                elif roll < 0.25:
                    rules.append(f"-A {chain} {self.match(chain)} -j ACCEPT")
                else:
                    proto = r.choice(("tcp", "udp"))
                    m = f"-d {r.choice([*self.vips, *self.local_ips, *self.anyip])}/32 -p {proto}"
                    if r.random() < 0.7:
                        m += f" -m {proto} --dport {r.choice(PORTS)}"
                    rules.append(f"-A {chain} {m} {self.nat_dnat_target()}")
        if use_dnat_chain:
            for _ in range(r.randint(1, 3)):
                roll = r.random()
                if roll < 0.2:
                    rules.append(f"-A GEN-DNAT {self.match('GEN-DNAT')} -j RETURN")
                elif roll < 0.35:
                    mark = r.choice(MARKS)
                    rules.append(f"-A GEN-DNAT -j MARK --set-xmark {mark:#x}/{mark:#x}")
                elif roll < 0.5:
                    proto = r.choice(("tcp", "udp"))
                    rules.append(
                        f"-A GEN-DNAT -p {proto} -m statistic --mode random --probability 0.5 "
                        f"{self.nat_dnat_target()}"
                    )
                else:
                    proto = r.choice(("tcp", "udp"))
                    rules.append(f"-A GEN-DNAT -p {proto} {self.nat_dnat_target()}")
        for _ in range(r.randint(0, 2)):
            m = self.match("POSTROUTING")
            roll = r.random()
            if roll < 0.45:
                rules.append(f"-A POSTROUTING {m} -j MASQUERADE")
            elif roll < 0.8:
                rules.append(f"-A POSTROUTING {m} -j SNAT --to-source {r.choice(self.local_ips)}")
            else:
                rules.append(f"-A POSTROUTING {m} -j ACCEPT")
        if r.random() < 0.1:
            rules.append(f"-A INPUT {self.match('INPUT')} -j SNAT --to-source {r.choice(self.local_ips)}")
        chains = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]
        return _table("nat", chains, ["GEN-DNAT"] if use_dnat_chain else [], rules, {})

    def filter(self) -> list[str]:
        r = self.r
        rules: list[str] = []
        policies = {c: ("DROP" if r.random() < 0.12 else "ACCEPT") for c in ("INPUT", "FORWARD", "OUTPUT")}
        use_chain = r.random() < 0.3
        for chain in ("INPUT", "FORWARD", "OUTPUT"):
            for _ in range(r.randint(0, 3)):
                roll = r.random()
                if roll < 0.15 and use_chain:
                    jump = "-g" if r.random() < 0.3 else "-j"
                    rules.append(f"-A {chain} {self.match(chain)} {jump} GEN-FW")
                else:
                    rules.append(f"-A {chain} {self.filter_rule(chain)}")
        if use_chain:
            for _ in range(r.randint(1, 3)):
                rules.append(f"-A GEN-FW {self.filter_rule('GEN-FW')}")
        return _table(
            "filter", ["INPUT", "FORWARD", "OUTPUT"], ["GEN-FW"] if use_chain else [], rules, policies
        )

    def filter_rule(self, chain: str) -> str:
        r = self.r
        roll = r.random()
        if roll < 0.3:
            return f"{self.match(chain)} -j ACCEPT"
        if roll < 0.5:
            return f"{self.match(chain)} -j DROP"
        if roll < 0.6 and chain.startswith("GEN"):
            return f"{self.match(chain)} -j RETURN"
        kind = r.choice(REJECT_WITH)
        if kind == "tcp-reset":
            m = self.match(chain, proto_ok=False)
            return f"-p tcp {m} -j REJECT --reject-with tcp-reset".replace("  ", " ")
        with_ = f" --reject-with {kind}" if kind else ""
        return f"{self.match(chain)} -j REJECT{with_}"

    def mangle(self) -> list[str]:
        r = self.r
        rules = []
        for chain in ("PREROUTING", "OUTPUT", "FORWARD", "POSTROUTING"):
            if r.random() < 0.3:
                mark = r.choice(MARKS)
                rules.append(f"-A {chain} {self.match(chain)} -j MARK --set-xmark {mark:#x}/{mark:#x}")
            if r.random() < 0.05:
                rules.append(f"-A {chain} {self.match(chain)} -j DROP")
        chains = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]
        return _table("mangle", chains, [], rules, {})

    def raw(self) -> list[str]:
        r = self.r
        rules = []
        for chain in ("PREROUTING", "OUTPUT"):
            if r.random() < 0.08:
                rules.append(f"-A {chain} {self.match(chain)} -j DROP")
            if r.random() < 0.08:
                rules.append(f"-A {chain} {self.match(chain)} -j NOTRACK")
        return _table("raw", ["PREROUTING", "OUTPUT"], [], rules, {})

    # ------------------------------------------------------------------ probes
    def probes(self) -> list[Probe]:
        r = self.r
        out = []
        for i in range(2):
            out.append(
                Probe(
                    "local",
                    r.choice(("tcp", "udp")),
                    self.dst_ip(),
                    r.choice(PORTS),
                    41000 + 10 * i + r.randint(0, 9),
                )
            )
        for i in range(2):
            iif = r.choice(LINKS)
            roll = r.random()
            if roll < 0.6:
                src = self.host(self.subnet[iif], 20, 200)
            elif roll < 0.85:
                src = self.host(r.choice(["172.16.1.0/24", "172.16.2.0/24", "192.168.7.0/24"]))
            else:
                other = LINKS[1 - LINKS.index(iif)]
                src = self.host(self.subnet[other], 20, 200)
            out.append(
                Probe(
                    "received",
                    r.choice(("tcp", "udp")),
                    self.dst_ip(),
                    r.choice(PORTS),
                    42000 + 10 * i + r.randint(0, 9),
                    src,
                    iif,
                )
            )
        return out

    def neighbors(self, probes: list[Probe], routes: list[str], ipt: str) -> list[str]:
        """Every address that can be a next hop: gateways, probe ends, NAT targets."""
        cands: set[str] = set()
        for link in LINKS:
            net = ipaddress.ip_network(self.subnet[link])
            cands |= {str(net.network_address + 254), str(net.network_address + 253)}
            cands.add(f"10.200.{LINKS.index(link)}.1")
        for p in probes:
            cands.add(p.dst)
            if p.src:
                cands.add(p.src)
        for text in (*routes, ipt):
            for word in text.replace(":", " ").split():
                try:
                    cands.add(str(ipaddress.IPv4Address(word)))
                except ValueError:
                    continue
        cands -= {*self.local_ips, *self.anyip}
        return sorted(c for c in cands if not c.startswith(("0.", "127.", "255.")))


def _table(
    name: str, builtins: list[str], custom: list[str], rules: list[str], policies: dict[str, str]
) -> list[str]:
    lines = [f"*{name}"]
    lines += [f":{c} {policies.get(c, 'ACCEPT')} [0:0]" for c in builtins]
    lines += [f":{c} - [0:0]" for c in custom]
    lines += [" ".join(rule.split()) for rule in rules]
    lines.append("COMMIT")
    return lines


def generate(seed: int) -> Case:
    """The random node configuration and probes for `seed`."""
    g = _Gen(seed)
    g.addresses()
    routes = g.routes()
    rules = g.rules()
    sysctls = g.sysctls()
    ipt = "\n".join([*g.raw(), *g.mangle(), *g.nat(), *g.filter()]) + "\n"
    probes = g.probes()
    return Case(
        seed=seed,
        addresses={k: v for k, v in g.addrs.items() if v},
        routes=routes,
        rules=rules,
        iptables=ipt,
        sysctls=sysctls,
        probes=probes,
        neighbors=g.neighbors(probes, routes, ipt),
    )
