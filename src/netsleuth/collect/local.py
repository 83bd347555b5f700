"""Node snapshots: the command set of docs/node-snapshot.md, and collection on this host.

Every node collector (local, ssh, kubectl-debug, agent) produces the same directory: one file
per command output, named as in docs/node-snapshot.md. The commands are read-only. The JSON
forms of `ip` are preferred; iproute2 older than 4.14 (CentOS 7, still common on clusters)
has no `-j`, so the text form is taken instead when the JSON form fails.

On this host the lab engineer's `netlink.snapshot_namespace` (pyroute2 + iptables-save +
/proc/sys) is used when it is available; otherwise the same commands are run as
subprocesses, which gives the identical layout.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from netsleuth.collect.bundle import FAILED, OK, PARTIAL, BundleWriter, CollectIssue, NodeStatus
from netsleuth.collect.bundle import safe_component as _safe

# Exit status of a shell when the program does not exist (POSIX).
NOT_FOUND = 127


@dataclass(frozen=True, slots=True)
class NodeCommand:
    file: str
    argv: tuple[str, ...]
    optional: bool = False
    # The text form to run when the JSON form fails (old iproute2 without -j).
    fallback: NodeCommand | None = None

    @property
    def shell(self) -> str:
        return shlex.join(self.argv)


def _ip(name: str, *args: str, optional: bool = False) -> NodeCommand:
    text = NodeCommand(f"{name}.txt", ("ip", *args), optional=optional)
    return NodeCommand(f"{name}.json", ("ip", "-j", *args), optional=optional, fallback=text)


NODE_COMMANDS: tuple[NodeCommand, ...] = (
    NodeCommand("hostname", ("hostname",)),
    _ip("ip-addr", "addr", "show"),
    _ip("ip-link", "link", "show", optional=True),
    _ip("ip-route", "route", "show", "table", "all"),
    NodeCommand("ip6-route.json", ("ip", "-j", "-6", "route", "show", "table", "all"),
                optional=True),
    _ip("ip-rule", "rule", "show"),
    _ip("ip6-rule", "-6", "rule", "show", optional=True),
    NodeCommand("iptables-save.txt", ("iptables-save",)),
    NodeCommand("ip6tables-save.txt", ("ip6tables-save",), optional=True),
    NodeCommand("sysctl.txt", ("sysctl", "-a")),
    NodeCommand("conntrack.txt", ("conntrack", "-L"), optional=True),
    # Optional evidence that specific detectors read (docs/node-snapshot.md lists which).
    NodeCommand("conntrack-S.txt", ("conntrack", "-S"), optional=True),
    NodeCommand("iptables-legacy-save.txt", ("iptables-legacy-save",), optional=True),
    NodeCommand("iptables-nft-save.txt", ("iptables-nft-save",), optional=True),
    NodeCommand("iptables-V.txt", ("iptables", "-V"), optional=True),
    NodeCommand("nft-ruleset.txt", ("nft", "list", "ruleset"), optional=True),
    NodeCommand("ipvsadm-Ln.txt", ("ipvsadm", "-Ln"), optional=True),
    NodeCommand("lsmod.txt", ("lsmod",), optional=True),
    NodeCommand("uname.txt", ("uname", "-a"), optional=True),
    NodeCommand("dmesg.txt", ("sh", "-c", "dmesg | tail -n 2000"), optional=True),
    NodeCommand("bridge-link.txt", ("bridge", "-d", "link", "show"), optional=True),
    NodeCommand("ip-neigh.txt", ("ip", "neigh", "show"), optional=True),
    NodeCommand("cni-conf.txt", ("sh", "-c", 'for f in /etc/cni/net.d/*; do echo "==> $f <=="; '
                                 'cat "$f"; done'), optional=True),
)


@dataclass
class NodeSnapshot:
    """What one node collector got: file name → text, and what went wrong."""

    files: dict[str, str] = field(default_factory=dict)
    errors: list[CollectIssue] = field(default_factory=list)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def accept_output(
    snap: NodeSnapshot, cmd: NodeCommand, rc: int | None, stdout: str, stderr: str
) -> bool:
    """Record one command's result; True when the command succeeded.

    A failed command's partial stdout is still kept (`sysctl -a` prints every readable key
    even when some are not), and the failure is recorded. An optional command that fails is
    not an error.
    """
    if rc == 0:
        snap.files[cmd.file] = stdout
        return True
    if stdout.strip():
        snap.files[cmd.file] = stdout
    if cmd.optional:
        # Optional evidence (conntrack, IPv6 routes) is often unavailable for mundane reasons
        # (not installed, old iproute2); its absence is handled where it is read.
        return False
    reason = _last_line(stderr) or "no error output"
    status = "was killed" if rc is None else f"exited {rc}"
    snap.errors.append(CollectIssue(cmd.file, "command", f"`{cmd.shell}` {status}: {reason}"))
    return False


Runner = Callable[[NodeCommand], tuple[int | None, str, str]]


def run_node_commands(run: Runner, commands: tuple[NodeCommand, ...] = NODE_COMMANDS
                      ) -> NodeSnapshot:
    """Run the snapshot commands through `run` (local, SSH, ...), with the text fallbacks."""
    snap = NodeSnapshot()
    for cmd in commands:
        rc, out, err = run(cmd)
        if rc != 0 and cmd.fallback is not None:
            accept_output(snap, cmd.fallback, *run(cmd.fallback))
            continue
        accept_output(snap, cmd, rc, out, err)
    return snap


def node_status(snap: NodeSnapshot, via: str, files: tuple[str, ...]) -> NodeStatus:
    if not files:
        status = FAILED
    elif snap.errors:
        status = PARTIAL
    else:
        status = OK
    return NodeStatus(status=status, via=via, files=files, errors=tuple(snap.errors))


def write_node(writer: BundleWriter, node: str, via: str, snap: NodeSnapshot) -> NodeStatus:
    """Write one node's files (redacted like everything else) and return its manifest entry."""
    prefix = f"nodes/{_safe(node)}/"
    for name, text in sorted(snap.files.items()):
        writer.write_text(prefix + _safe(name), text)
    return node_status(snap, via, writer.files_under(prefix))


def _subprocess_runner(timeout: float) -> Runner:
    def run(cmd: NodeCommand) -> tuple[int | None, str, str]:
        if shutil.which(cmd.argv[0]) is None:
            return NOT_FOUND, "", f"{cmd.argv[0]}: command not found"
        try:
            proc = subprocess.run(
                cmd.argv, capture_output=True, text=True, timeout=timeout, check=False,
                errors="replace",
            )
        except subprocess.TimeoutExpired:
            return None, "", f"timed out after {timeout:g}s"
        return proc.returncode, proc.stdout, proc.stderr

    return run


def snapshot_dir_to_files(directory: Path) -> dict[str, str]:
    return {
        p.name: p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def collect_local(timeout: float = 60.0) -> NodeSnapshot:
    """This host's snapshot (its current network namespace)."""
    try:
        from netsleuth.collect.netlink import (  # type: ignore[import-not-found,unused-ignore]
            snapshot_namespace,
        )
    except ImportError:
        return run_node_commands(_subprocess_runner(timeout))
    snap = NodeSnapshot()
    with tempfile.TemporaryDirectory(prefix="netsleuth-local-") as tmp:
        try:
            # Returns the names of the files it wrote; the directory itself is the truth.
            snapshot_namespace(None, Path(tmp))
        except Exception as exc:  # any failure of the reader is recorded
            snap.errors.append(CollectIssue("local", "command", f"{type(exc).__name__}: {exc}"))
        snap.files.update(snapshot_dir_to_files(Path(tmp)))
    return snap

