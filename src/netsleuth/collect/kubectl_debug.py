"""Node snapshots through `kubectl debug node/NAME`: no SSH access needed.

`kubectl debug node/NAME` creates a pod on that node with the host's network, PID and IPC
namespaces and the node's root filesystem mounted at /host. With `--profile=sysadmin` the
container is privileged, which `iptables-save` needs (reading netfilter tables requires
CAP_NET_ADMIN). The commands run as `chroot /host sh -c SCRIPT`, i.e. with the node's own
`ip`, `iptables-save` and `sysctl`, so the iptables backend (nft or legacy) is the one the
node uses. The image only has to provide `chroot` and `sh`; the default is busybox.

All outputs come back in one stdout stream, framed per file:

    @@NETSLEUTH-BEGIN ip-addr.json
    ...output...
    @@NETSLEUTH-RC ip-addr.json 0

and each command's stderr goes to stderr prefixed with its file name. The debug pod is
deleted afterwards (kubectl leaves node-debugger pods behind).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from netsleuth.collect.bundle import CollectIssue
from netsleuth.collect.local import NODE_COMMANDS, NodeCommand, NodeSnapshot, accept_output

DEFAULT_IMAGE = "docker.io/library/busybox:1.36"

_BEGIN = "@@NETSLEUTH-BEGIN"
_RC = "@@NETSLEUTH-RC"
_FRAME = re.compile(
    rf"^{_BEGIN} (?P<file>\S+)\n(?P<body>.*?)\n{_RC} (?P=file) (?P<rc>\d+)$",
    re.DOTALL | re.MULTILINE,
)
_POD_NAME = re.compile(r"Creating debugging pod (?P<pod>\S+) with container")


@dataclass(frozen=True, slots=True)
class DebugOptions:
    image: str = DEFAULT_IMAGE
    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str = "default"
    timeout: float = 180.0  # pod scheduling and image pull are part of it
    concurrency: int = 8
    kubectl: str = "kubectl"


def node_script(commands: Sequence[NodeCommand] = NODE_COMMANDS) -> str:
    """A POSIX sh script that runs the snapshot commands and frames their outputs."""
    # fd 3 is the real stdout; inside emit, the command's stdout goes to fd 3 and its stderr
    # through sed (prefixed with the file name) to stderr. `$?` is the command's status.
    lines = [
        "emit() {",
        '  f=$1; shift',
        f'  echo "{_BEGIN} $f"',
        '  { { "$@" 2>&1 1>&3 3>&-; '
        f'printf "\\n{_RC} %s %s\\n" "$f" "$?" >&3; }} | sed "s|^|$f: |" >&2; }} 3>&1',
        "}",
    ]
    for cmd in commands:
        run = f"emit {shlex.quote(cmd.file)} env LC_ALL=C {cmd.shell}"
        if cmd.fallback is not None:
            fb = cmd.fallback
            # Old iproute2 (no -j): probe the JSON form quietly, fall back to text.
            lines.append(
                f"if {cmd.shell} >/dev/null 2>&1; then {run}; "
                f"else emit {shlex.quote(fb.file)} env LC_ALL=C {fb.shell}; fi"
            )
        elif cmd.optional:
            probe = shlex.quote(cmd.argv[0])
            lines.append(f"if command -v {probe} >/dev/null 2>&1; then {run}; fi")
        else:
            lines.append(run)
    return "\n".join(lines) + "\n"


def _all_commands(commands: Sequence[NodeCommand]) -> dict[str, NodeCommand]:
    out: dict[str, NodeCommand] = {}
    for cmd in commands:
        out[cmd.file] = cmd
        if cmd.fallback is not None:
            out[cmd.fallback.file] = cmd.fallback
    return out


def parse_framed(stdout: str, stderr: str,
                 commands: Sequence[NodeCommand] = NODE_COMMANDS) -> NodeSnapshot:
    """Split the framed stream back into files; stderr lines are attributed by prefix."""
    known = _all_commands(commands)
    errs: dict[str, list[str]] = {}
    for line in stderr.splitlines():
        name, sep, rest = line.partition(": ")
        if sep and name in known:
            errs.setdefault(name, []).append(rest)
    snap = NodeSnapshot()
    seen: set[str] = set()
    for m in _FRAME.finditer(stdout):
        name = m.group("file")
        cmd = known.get(name)
        if cmd is None:
            continue
        seen.add(name)
        accept_output(snap, cmd, int(m.group("rc")), m.group("body"),
                      "\n".join(errs.get(name, [])))
    return snap


def kubectl_argv(node: str, options: DebugOptions, script: str) -> list[str]:
    argv = [options.kubectl]
    if options.kubeconfig is not None:
        argv += ["--kubeconfig", str(options.kubeconfig)]
    if options.context:
        argv += ["--context", options.context]
    argv += [
        "--namespace", options.namespace,
        "debug", f"node/{node}",
        f"--image={options.image}",
        "--profile=sysadmin",
        "-i",  # attach stdin/stdout without a TTY: a TTY would turn \n into \r\n
        "--",
        "chroot", "/host", "sh", "-c", script,
    ]
    return argv


def _delete_pod(pod: str, options: DebugOptions) -> CollectIssue | None:
    argv = [options.kubectl]
    if options.kubeconfig is not None:
        argv += ["--kubeconfig", str(options.kubeconfig)]
    if options.context:
        argv += ["--context", options.context]
    argv += ["--namespace", options.namespace, "delete", "pod", pod, "--wait=false",
             "--ignore-not-found"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CollectIssue(pod, "command", f"could not delete the debug pod: {exc}")
    if proc.returncode != 0:
        return CollectIssue(pod, "command",
                            f"could not delete the debug pod: {proc.stderr.strip()[-300:]}")
    return None


def snapshot_via_debug(node: str, options: DebugOptions) -> NodeSnapshot:
    argv = kubectl_argv(node, options, node_script())
    try:
        # Own session: on timeout the whole group goes (kubectl's credential plugins too), so
        # no child keeps the pipes open.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace",
                                start_new_session=True)
    except OSError as exc:
        snap = NodeSnapshot()
        snap.errors.append(CollectIssue(node, "config", f"cannot run {options.kubectl}: {exc}"))
        return snap
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=options.timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        timed_out = True
    snap = parse_framed(stdout, stderr)
    if timed_out:
        snap.errors.append(CollectIssue(
            node, "timeout", f"kubectl debug did not finish within {options.timeout:g}s"))
    elif proc.returncode != 0 and not snap.files:
        tail = "; ".join(line for line in stderr.strip().splitlines()[-3:] if line.strip())
        snap.errors.append(CollectIssue(
            node, "command", f"kubectl debug exited {proc.returncode}: {tail or 'no output'}"))
    pod = _POD_NAME.search(stderr)
    if pod is not None:
        issue = _delete_pod(pod.group("pod"), options)
        if issue is not None:
            snap.errors.append(issue)
    return snap


def collect_debug(
    nodes: Sequence[str], options: DebugOptions,
    on_done: Callable[[str, NodeSnapshot], None] | None = None,
) -> dict[str, NodeSnapshot]:
    """Snapshot each node with a debug pod, at most `concurrency` at a time."""

    def one(node: str) -> NodeSnapshot:
        snap = snapshot_via_debug(node, options)
        if on_done is not None:
            on_done(node, snap)
        return snap

    with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
        results = list(pool.map(one, nodes))
    return dict(zip(nodes, results, strict=True))
