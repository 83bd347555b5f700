#!/usr/bin/env python3
"""Regenerate the golden iptables outputs in this directory from the REAL tools.

Needs root, iptables 1.8.9 (nft and legacy), ipset. For every `<dataset>/input.rules` it
creates a fresh network namespace, creates the ipsets named in `<dataset>/ipsets`, loads the
ruleset with `iptables-restore -c` (counters in the input are set, no traffic is ever sent) and
writes what the tools print:

    save.txt            iptables-save                   (nf_tables backend)
    save-c.txt          iptables-save -c
    nvL.txt             iptables -t T -nvL for each table, each after a `# table: T` line
    nL.txt              iptables -t T -nL
    nvL-lines.txt       iptables -t T -nvL --line-numbers
    nvxL.txt            iptables -t T -nvxL
    legacy-save.txt     iptables-legacy-save            (when the legacy backend loads it)
    legacy-nvL.txt      iptables-legacy -t T -nvL
    transcript.txt      the nvL listings as a pasted shell session (prompt + command lines)

Usage: python3 tests/data/iptables/make_golden.py [dataset ...]
Namespaces are named nsipt-gold-*, and deleted afterwards.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NS = "nsipt-gold"


def sh(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), input=stdin, text=True, capture_output=True, check=check)


def in_ns(ns: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
    res = sh("ip", "netns", "exec", ns, *args, stdin=stdin, check=False)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed in {ns}: {res.stderr.strip()}")
    return res.stdout


def fresh_ns(name: str, ipsets: list[str]) -> None:
    sh("ip", "netns", "del", name, check=False)
    sh("ip", "netns", "add", name)
    for line in ipsets:
        set_name, set_type = line.split()
        in_ns(name, "ipset", "create", set_name, set_type)


def tables_of(save: str) -> list[str]:
    return [line[1:].strip() for line in save.splitlines() if line.startswith("*")]


def listing(ns: str, tool: str, tables: list[str], flags: list[str], header: str) -> str:
    parts = []
    for table in tables:
        out = in_ns(ns, tool, "-t", table, *flags)
        parts.append(header.format(table=table, tool=tool, flags=" ".join(flags)) + out)
    return "\n".join(parts)


def build(dataset: Path) -> None:
    rules = (dataset / "input.rules").read_text()
    sets_file = dataset / "ipsets"
    ipsets = sets_file.read_text().split("\n") if sets_file.exists() else []
    ipsets = [s for s in ipsets if s.strip()]
    ns = f"{NS}-{dataset.name[:8]}"
    try:
        fresh_ns(ns, ipsets)
        in_ns(ns, "iptables-restore", "-c", stdin=rules)
        save = in_ns(ns, "iptables-save")
        (dataset / "save.txt").write_text(save)
        (dataset / "save-c.txt").write_text(in_ns(ns, "iptables-save", "-c"))
        tables = tables_of(save)
        hint = "# table: {table}\n"
        (dataset / "nvL.txt").write_text(listing(ns, "iptables", tables, ["-nvL"], hint))
        (dataset / "nL.txt").write_text(listing(ns, "iptables", tables, ["-nL"], hint))
        (dataset / "nvL-lines.txt").write_text(
            listing(ns, "iptables", tables, ["-nvL", "--line-numbers"], hint))
        (dataset / "nvxL.txt").write_text(listing(ns, "iptables", tables, ["-nvxL"], hint))
        prompt = "[root@node-1 ~]# {tool} -t {table} {flags}\n"
        (dataset / "transcript.txt").write_text(
            listing(ns, "iptables", tables, ["-nvL"], prompt) + "[root@node-1 ~]#\n")
    finally:
        sh("ip", "netns", "del", ns, check=False)
    try:
        fresh_ns(ns, ipsets)
        res = sh("ip", "netns", "exec", ns, "iptables-legacy-restore", "-c", stdin=rules,
                 check=False)
        if res.returncode != 0:
            print(f"{dataset.name}: legacy backend refuses it: {res.stderr.strip()}")
            for name in ("legacy-save.txt", "legacy-nvL.txt"):
                (dataset / name).unlink(missing_ok=True)
            return
        save = in_ns(ns, "iptables-legacy-save")
        (dataset / "legacy-save.txt").write_text(save)
        (dataset / "legacy-nvL.txt").write_text(
            listing(ns, "iptables-legacy", tables_of(save), ["-nvL"], "# table: {table}\n"))
    finally:
        sh("ip", "netns", "del", ns, check=False)


def main(argv: list[str]) -> int:
    names = argv or sorted(p.parent.name for p in HERE.glob("*/input.rules"))
    for name in names:
        build(HERE / name)
        print(f"{name}: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
