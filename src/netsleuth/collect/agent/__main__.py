"""`python -m netsleuth.collect.agent`: the DaemonSet entrypoint (see daemonset.yaml)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType

from netsleuth.collect.agent import (
    diagnose_node,
    encode_record,
    redact_snapshot,
    write_snapshot_dir,
)
from netsleuth.collect.bundle import utc_now
from netsleuth.collect.local import collect_local


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m netsleuth.collect.agent",
        description="Snapshot this node's network state (node snapshot layout), periodically.",
    )
    parser.add_argument("--out", type=Path, default=None,
                        help="directory to write <node>/ snapshots into (a hostPath)")
    parser.add_argument("--stdout", action="store_true",
                        help="also print each snapshot as a record on stdout (read by "
                             "`netsleuth collect --nodes-via agent` through pod logs)")
    parser.add_argument("--interval", type=float, default=300.0,
                        help="seconds between snapshots (default 300)")
    parser.add_argument("--once", action="store_true", help="take one snapshot and exit")
    parser.add_argument("--no-diagnose", action="store_true",
                        help="do not add diagnosis.json (this node's diagnosis) to each snapshot")
    parser.add_argument("--node-name", default=os.environ.get("NODE_NAME") or None,
                        help="node name (default: $NODE_NAME from the downward API, "
                             "else the hostname)")
    args = parser.parse_args(argv)
    if args.out is None and not args.stdout:
        parser.error("nothing to do: give --out DIR and/or --stdout")
    node = args.node_name or socket.gethostname()

    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    while True:
        snap = redact_snapshot(collect_local())
        created = utc_now()
        if not args.no_diagnose:
            # In a pod, KUBERNETES_SERVICE_HOST/PORT name the `kubernetes` Service: the agent
            # can check the path every host-network client of this node depends on.
            snap.files["diagnosis.json"] = diagnose_node(
                node, snap.files, os.environ.get("KUBERNETES_SERVICE_HOST"),
                os.environ.get("KUBERNETES_SERVICE_PORT"))
        if args.out is not None:
            try:
                write_snapshot_dir(args.out, node, snap)
            except OSError as exc:
                print(f"netsleuth-agent: cannot write {args.out}: {exc}", file=sys.stderr)
        if args.stdout:
            sys.stdout.write("\n".join(encode_record(node, created, snap)) + "\n")
            sys.stdout.flush()
        for issue in snap.errors:
            print(f"netsleuth-agent: {issue.target}: {issue.message}", file=sys.stderr)
        if args.once or stop.wait(args.interval):
            return 0


if __name__ == "__main__":
    sys.exit(main())
