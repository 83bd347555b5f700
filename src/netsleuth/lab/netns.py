"""Thin wrappers around network namespaces: run a command in one, enter one from this thread.

The lab is an edge of netsleuth: it is allowed to run `ip`, `iptables-restore` and friends. Every
command goes through `run()`, so a failure becomes one `LabError` line naming the command and the
kernel's complaint instead of a traceback.

Entering a namespace uses setns(2) on the *calling thread* only (a network namespace is a
per-thread attribute, see setns(2) "CLONE_NEWNET"). A socket keeps the namespace it was created
in for its whole life, so the lab creates probe and listener sockets inside `in_netns()` and then
uses them from anywhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from netsleuth.errors import LabError

NETNS_RUN_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def require_privileges() -> None:
    """Refuse politely when the lab cannot work here: not root, or tools missing."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, iptables): run it with sudo")
    for tool in ("ip", "iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            raise LabError(f"the lab needs `{tool}` on PATH (apt-get install iproute2 iptables)")


def run(
    argv: Sequence[str],
    netns: str | None = None,
    stdin: str | None = None,
    check: bool = True,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """Run `argv`, inside `netns` when given (`ip netns exec`), and return the finished process."""
    cmd = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise LabError(f"`{cmd[0]}` not found: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`{' '.join(cmd)}` timed out after {timeout:.0f}s") from exc
    if check and proc.returncode != 0:
        where = f" in {netns}" if netns else ""
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"`{' '.join(argv)}`{where} failed: {msg[-1] if msg else proc.returncode}")
    return proc


def ip_batch(netns: str, commands: Sequence[str]) -> None:
    """Run many `ip` commands in one process (`ip -n NS -batch -`): one fork instead of dozens.

    `-force` is not used: the first failing line stops the batch, and its message (which names
    the line number) is reported.
    """
    if not commands:
        return
    proc = run(["ip", "-n", netns, "-batch", "-"], stdin="\n".join(commands) + "\n", check=False)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip()
        # iproute2 says "Command failed -:LINE"; name the offending command itself.
        failed = ""
        for part in msg.split():
            if part.startswith("-:") and part[2:].isdigit():
                idx = int(part[2:]) - 1
                if 0 <= idx < len(commands):
                    failed = commands[idx]
        first = msg.splitlines()[0] if msg else str(proc.returncode)
        raise LabError(f"in {netns}: `ip {failed}` failed: {first}" if failed else f"in {netns}: {msg}")


def list_netns() -> list[str]:
    """Names of the named network namespaces (those under /run/netns)."""
    if not NETNS_RUN_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_RUN_DIR.iterdir())


def netns_exists(name: str) -> bool:
    return (NETNS_RUN_DIR / name).exists()


def add_netns(name: str) -> None:
    run(["ip", "netns", "add", name])
    # A new namespace starts with lo down; nothing local (not even 127.0.0.1) works until it is up.
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def kill_netns_processes(name: str) -> None:
    """Terminate the processes living in a lab namespace (listeners the lab started there)."""
    proc = run(["ip", "netns", "pids", name], check=False)
    for word in proc.stdout.split():
        if word.isdigit():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(word), 15)


def delete_netns(name: str) -> None:
    if netns_exists(name):
        kill_netns_processes(name)
        run(["ip", "netns", "del", name], check=False)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise LabError(f"setns failed: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(name: str | None) -> Iterator[None]:
    """Run the body with this thread inside network namespace `name` (None: stay where we are)."""
    if name is None:
        yield
        return
    path = NETNS_RUN_DIR / name
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise LabError(f"network namespace {name!r} does not exist") from exc
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def write_sysctl(netns: str, key: str, value: str) -> None:
    """Set `key` (dotted, as sysctl(8) spells it) inside `netns` by writing /proc/sys.

    /proc/sys/net resolves against the network namespace of the thread that opens the file, so
    opening it inside `in_netns` reaches that namespace's copy.
    """
    path = sysctl_path(key)
    with in_netns(netns):
        try:
            with open(path, "w", encoding="ascii") as fh:
                fh.write(value + "\n")
        except FileNotFoundError as exc:
            raise LabError(f"in {netns}: no sysctl {key} ({path})") from exc
        except OSError as exc:
            raise LabError(f"in {netns}: cannot set {key}={value}: {exc.strerror}") from exc


def sysctl_path(key: str) -> str:
    # sysctl(8) writes an interface name's dots as slashes (net.ipv4.conf.eth0/100.rp_filter).
    return "/proc/sys/" + "/".join(part.replace("/", ".") for part in key.split("."))
