"""kubectl debug node collection: the framed script with a real shell, and the kubectl wiring.

No cluster can run here, so `kubectl` is replaced by a small script on PATH that records its
arguments, prints what kubectl prints when it creates a node debug pod, and runs the command
after `--` without the `chroot /host` (this host is the node).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from netsleuth.collect.kubectl_debug import (
    DEFAULT_IMAGE,
    DebugOptions,
    collect_debug,
    kubectl_argv,
    node_script,
    parse_framed,
)
from netsleuth.collect.local import NODE_COMMANDS, NodeCommand

FAKE_KUBECTL = """#!/bin/sh
printf '%s\\n' "$*" >> "$KUBECTL_LOG"
case " $* " in
  *" delete pod "*) exit 0 ;;
esac
if [ -n "$KUBECTL_HANG" ]; then sleep 30; fi
node=$(printf '%s\\n' "$@" | sed -n 's|^node/||p')
echo "Creating debugging pod node-debugger-$node-x7k2q with container debugger on node $node." >&2
while [ "$1" != "--" ]; do shift; done
shift 3  # -- chroot /host
exec "$@"
"""


def test_script_output_round_trips_through_a_real_shell() -> None:
    proc = subprocess.run(["sh", "-c", node_script()], capture_output=True, text=True,
                          check=False)
    snap = parse_framed(proc.stdout, proc.stderr)
    assert snap.errors == []
    direct = subprocess.run(["ip", "-j", "route", "show", "table", "all"], capture_output=True,
                            text=True, check=True).stdout
    assert json.loads(snap.files["ip-route.json"]) == json.loads(direct)
    assert snap.files["hostname"].strip() == subprocess.run(
        ["hostname"], capture_output=True, text=True, check=True).stdout.strip()
    assert "net.ipv4.ip_forward = " in snap.files["sysctl.txt"]


def test_failures_fallbacks_and_output_without_newline() -> None:
    commands = (
        NodeCommand("hostname", ("printf", "no-newline")),
        NodeCommand("ip-addr.json", ("false",),
                    fallback=NodeCommand("ip-addr.txt", ("echo", "1: lo: <LOOPBACK>"))),
        NodeCommand("iptables-save.txt", ("sh", "-c", "echo partial; echo boom >&2; exit 4")),
        NodeCommand("conntrack.txt", ("netsleuth-no-such-program",), optional=True),
    )
    proc = subprocess.run(["sh", "-c", node_script(commands)], capture_output=True, text=True,
                          check=False)
    snap = parse_framed(proc.stdout, proc.stderr, commands)
    assert snap.files == {"hostname": "no-newline", "ip-addr.txt": "1: lo: <LOOPBACK>\n",
                          "iptables-save.txt": "partial\n"}
    assert [(e.target, e.kind) for e in snap.errors] == [("iptables-save.txt", "command")]
    assert "exited 4: boom" in snap.errors[0].message


def test_argv() -> None:
    argv = kubectl_argv("worker-1", DebugOptions(context="prod", kubeconfig=Path("/k")), "S")
    assert argv == ["kubectl", "--kubeconfig", "/k", "--context", "prod", "--namespace",
                    "default", "debug", "node/worker-1", f"--image={DEFAULT_IMAGE}",
                    "--profile=sysadmin", "-i", "--", "chroot", "/host", "sh", "-c", "S"]


@pytest.fixture
def fake_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exe = tmp_path / "kubectl"
    exe.write_text(FAKE_KUBECTL)
    exe.chmod(0o755)
    log = tmp_path / "kubectl.log"
    monkeypatch.setenv("KUBECTL_LOG", str(log))
    return exe


def test_collect_runs_kubectl_debug_and_deletes_the_pod(fake_kubectl: Path) -> None:
    done: list[str] = []
    opts = DebugOptions(kubectl=str(fake_kubectl), image="registry.local/busybox:1.36",
                        concurrency=2)
    snaps = collect_debug(["worker-1", "worker-2"], opts,
                          on_done=lambda n, s: done.append(n))
    assert sorted(done) == ["worker-1", "worker-2"]
    for snap in snaps.values():
        assert snap.errors == []
        assert {c.file for c in NODE_COMMANDS if not c.optional} <= set(snap.files)
    calls = (fake_kubectl.parent / "kubectl.log").read_text().splitlines()
    assert sum("debug node/" in c and "--image=registry.local/busybox:1.36" in c
               for c in calls) == 2
    deletes = sorted(c for c in calls if " delete pod " in c)
    assert deletes == [
        "--namespace default delete pod node-debugger-worker-1-x7k2q --wait=false "
        "--ignore-not-found",
        "--namespace default delete pod node-debugger-worker-2-x7k2q --wait=false "
        "--ignore-not-found",
    ]


def test_timeout_is_recorded(fake_kubectl: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECTL_HANG", "1")
    snaps = collect_debug(["worker-1"], DebugOptions(kubectl=str(fake_kubectl), timeout=0.5))
    assert [e.kind for e in snaps["worker-1"].errors] == ["timeout"]
    assert snaps["worker-1"].files == {}


def test_missing_kubectl_is_a_config_error(tmp_path: Path) -> None:
    snaps = collect_debug(["n"], DebugOptions(kubectl=str(tmp_path / "no-kubectl")))
    assert [e.kind for e in snaps["n"].errors] == ["config"]
    assert os.path.basename(str(tmp_path / "no-kubectl")) in snaps["n"].errors[0].message
