#!/usr/bin/env python3
"""Time netsleuth's iptables-save parser against `iptables-restore --test` on the same dumps.

Usage:  bench_parse.py [--sizes 1000,10000,30000] [--runs 3] [--endpoints 3] [--seed 1]

For every size N a kube-proxy dump is generated (gen_kubeproxy.generate, N service ports) and
parsed R times by each contender, each run in a fresh process, the contenders taking turns:

* netsleuth: `python3 bench_parse.py --child FILE` reads the file, then times
  parse_iptables_save() alone (interpreter start-up and import are reported separately);
* iptables-legacy-restore -w --test and iptables-nft-restore -w --test (the C parsers, which
  also build the kernel blobs but do not commit them), each in a fresh, empty network namespace
  `nsipt-bench-*`, timed around `ip netns exec` as perf-anchors.md does.

Prints a markdown table of min / median wall times and max RSS (from wait4). Needs root and
iptables 1.8 for the C columns; without them only netsleuth is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import gen_kubeproxy  # noqa: E402


def child(path: str) -> None:
    """Runs in a fresh interpreter: parse once, print timings as JSON."""
    t0 = time.perf_counter()
    from netsleuth.parse.iptables_save import parse_iptables_save

    t1 = time.perf_counter()
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    t2 = time.perf_counter()
    rs = parse_iptables_save(text, path)
    t3 = time.perf_counter()
    print(json.dumps({"import": t1 - t0, "read": t2 - t1, "parse": t3 - t2,
                      "rules": rs.rule_count,
                      "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def run_timed(cmd: list[str]) -> tuple[float, str]:
    """Wall time and stdout of one process."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): "
                           f"{proc.stderr.decode()[-300:]}")
    return elapsed, proc.stdout.decode()


def run_wait4(cmd: list[str], stdin_path: str) -> tuple[float, int]:
    """Wall time and max RSS of a process whose output we do not need."""
    with open(stdin_path, "rb") as stdin:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-300:]}")
    return elapsed, usage.ru_maxrss


def c_tools_available() -> str | None:
    if os.geteuid() != 0:
        return "not root: network namespaces need root"
    for tool in ("ip", "iptables-legacy-restore", "iptables-nft-restore"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    return None


def restore_test(tool: str, path: str) -> tuple[float, int]:
    ns = f"nsipt-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        return run_wait4(["ip", "netns", "exec", ns, tool, "-w", "--test"], path)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def fmt(values: list[float]) -> str:
    lo, med = min(values), statistics.median(values)
    if med < 1:
        return f"{lo * 1000:.0f} ms / {med * 1000:.0f} ms"
    return f"{lo:.2f} s / {med:.2f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="1000,10000,30000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--endpoints", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child)
        return 0

    no_c = c_tools_available()
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nsipt-bench-") as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            path = os.path.join(tmp, f"kp{n}.txt")
            text = gen_kubeproxy.generate(n, args.endpoints, args.seed)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            lines = text.count("\n")
            ours: list[float] = []
            proc: list[float] = []
            rss = 0
            rules = 0
            tools = ("iptables-legacy-restore", "iptables-nft-restore") if no_c is None else ()
            c_times: dict[str, list[float]] = {tool: [] for tool in tools}
            c_rss: list[int] = []
            # Runs are interleaved (netsleuth, legacy, nft, netsleuth, ...) so that a change in
            # the machine's load during the benchmark weighs on every contender alike.
            for _ in range(args.runs):
                elapsed, out = run_timed([sys.executable, __file__, "--child", path])
                data = json.loads(out)
                ours.append(data["parse"])
                proc.append(elapsed)
                rss = max(rss, data["rss_kb"])
                rules = data["rules"]
                for tool in tools:
                    t, r = restore_test(tool, path)
                    c_times[tool].append(t)
                    c_rss.append(r)
            cols = [f"{n:,}", f"{lines:,}", f"{rules:,}", fmt(ours), fmt(proc)]
            if no_c is None:
                cols += [fmt(c_times[tool]) for tool in tools]
                legacy = c_times["iptables-legacy-restore"]
                ratio = statistics.median(ours) / statistics.median(legacy)
                cols.append(f"{ratio:.2f}")
                cols.append(f"{rss // 1024} / {max(c_rss) // 1024} MB")
            else:
                cols.append(f"{rss // 1024} MB")
            rows.append("| " + " | ".join(cols) + " |")
            print(f"done N={n}", file=sys.stderr)

    head = ["N services", "lines", "rules", "netsleuth parse (min / median)",
            "netsleuth process (min / median)"]
    if no_c is None:
        head += ["legacy `restore --test`", "nft `restore --test`",
                 "parse / legacy (medians)", "max RSS netsleuth / C"]
    else:
        head += ["max RSS"]
        print(f"(C tools not timed: {no_c})")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
