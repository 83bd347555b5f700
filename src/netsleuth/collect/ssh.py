"""Node snapshots over SSH (asyncssh), many nodes at once.

Host keys are verified against known_hosts by default (the user's ~/.ssh/known_hosts, or
`--known-hosts FILE`): a node whose key does not match is refused and recorded, because the
commands' output is evidence and a man in the middle could forge it. Authentication uses the
SSH agent and the default keys, or `--ssh-key`. Each node has one overall timeout (connect,
login and all commands) and at most `concurrency` nodes are worked on at the same time, so a
large cluster neither exhausts file descriptors nor hammers a bastion.

Commands are the read-only set of local.NODE_COMMANDS, each in its own SSH channel of one
connection so that every file gets its own exit status and stderr. `sudo -n` (never prompt)
is prepended with `--sudo`: iptables-save needs CAP_NET_ADMIN.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from netsleuth.collect.bundle import CollectIssue
from netsleuth.collect.local import (
    NODE_COMMANDS,
    NodeCommand,
    NodeSnapshot,
    accept_output,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SshOptions:
    user: str | None = None
    key: Path | None = None
    port: int = 22
    sudo: bool = False
    # None: the user's ~/.ssh/known_hosts. Verification can only be switched off explicitly.
    known_hosts: Path | None = None
    verify_host_keys: bool = True
    timeout: float = 60.0
    concurrency: int = 16


@dataclass(frozen=True, slots=True)
class SshTarget:
    name: str  # the node name used in the bundle
    host: str  # what to connect to: an address or a resolvable name


def remote_command(cmd: NodeCommand, sudo: bool) -> str:
    # LC_ALL=C: messages and number formats must not depend on the node's locale.
    argv = ("env", "LC_ALL=C", *cmd.argv)
    if sudo:
        argv = ("sudo", "-n", *argv)
    return shlex.join(argv)


def classify_ssh_error(exc: BaseException, target: str) -> CollectIssue:
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return CollectIssue(target, "host-key", f"host key not verified, refused: {exc}")
    if isinstance(exc, asyncssh.PermissionDenied):
        return CollectIssue(target, "auth", f"authentication failed: {exc}")
    if isinstance(exc, asyncssh.KeyImportError | asyncssh.KeyEncryptionError):
        return CollectIssue(target, "config", f"cannot use the SSH key: {exc}")
    if isinstance(exc, asyncssh.DisconnectError | asyncssh.ChannelOpenError):
        return CollectIssue(target, "ssh", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, FileNotFoundError | IsADirectoryError):
        return CollectIssue(target, "config", f"cannot read a key or known_hosts file: {exc}")
    if isinstance(exc, TimeoutError):
        return CollectIssue(target, "timeout", str(exc) or "timed out")
    if isinstance(exc, OSError):
        return CollectIssue(target, "unreachable", f"{type(exc).__name__}: {exc}")
    raise exc


SESSIONS_PER_CONNECTION = 8


async def _run(conn: Any, cmd: NodeCommand, sudo: bool) -> tuple[int | None, str, str]:
    result = await conn.run(remote_command(cmd, sudo), check=False)
    out = result.stdout if isinstance(result.stdout, str) else ""
    err = result.stderr if isinstance(result.stderr, str) else ""
    status = result.exit_status
    return (int(status) if status is not None else None), out, err


async def snapshot_over_ssh(
    target: SshTarget, options: SshOptions,
    commands: Sequence[NodeCommand] = NODE_COMMANDS,
) -> NodeSnapshot:
    """Connect, run the snapshot commands, return the outputs; errors are recorded, not raised."""
    snap = NodeSnapshot()
    connect_kwargs: dict[str, Any] = {"port": options.port}
    if options.user:
        connect_kwargs["username"] = options.user
    if options.key is not None:
        connect_kwargs["client_keys"] = [str(options.key)]
    if not options.verify_host_keys:
        connect_kwargs["known_hosts"] = None
    elif options.known_hosts is not None:
        connect_kwargs["known_hosts"] = str(options.known_hosts)

    async def work() -> None:
        async with asyncssh.connect(target.host, **connect_kwargs) as conn:
            # The commands run side by side on one connection, each in its own channel;
            # OpenSSH allows 10 sessions per connection by default (MaxSessions).
            channels = asyncio.Semaphore(SESSIONS_PER_CONNECTION)

            async def one(cmd: NodeCommand) -> None:
                async with channels:
                    rc, out, err = await _run(conn, cmd, options.sudo)
                    if rc != 0 and cmd.fallback is not None:
                        fallback = cmd.fallback
                        accept_output(snap, fallback, *await _run(conn, fallback, options.sudo))
                        return
                    accept_output(snap, cmd, rc, out, err)

            await asyncio.gather(*(one(cmd) for cmd in commands))

    try:
        await asyncio.wait_for(work(), timeout=options.timeout)
    except TimeoutError:
        done = ", ".join(sorted(snap.files)) or "nothing"
        snap.errors.append(CollectIssue(
            target.name, "timeout",
            f"{target.host}:{options.port}: no result within {options.timeout:g}s "
            f"(collected: {done})",
        ))
    except (asyncssh.Error, asyncssh.KeyImportError, asyncssh.KeyEncryptionError, OSError) as exc:
        issue = classify_ssh_error(exc, target.name)
        snap.errors.append(CollectIssue(issue.target, issue.kind,
                                        f"{target.host}:{options.port}: {issue.message}"))
    return snap


async def bounded_gather(
    jobs: Iterable[Callable[[], Awaitable[T]]], limit: int
) -> list[T]:
    """Run the jobs with at most `limit` in flight; results in job order."""
    semaphore = asyncio.Semaphore(max(1, limit))

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


def collect_ssh(
    targets: Sequence[SshTarget], options: SshOptions,
    on_done: Callable[[SshTarget, NodeSnapshot], None] | None = None,
) -> dict[str, NodeSnapshot]:
    """Snapshot every target; returns node name → snapshot (failed nodes have errors only)."""

    def job(target: SshTarget) -> Callable[[], Awaitable[NodeSnapshot]]:
        async def run() -> NodeSnapshot:
            snap = await snapshot_over_ssh(target, options)
            if on_done is not None:
                on_done(target, snap)
            return snap

        return run

    async def main() -> list[NodeSnapshot]:
        return await bounded_gather([job(t) for t in targets], options.concurrency)

    results = asyncio.run(main())
    return {t.name: snap for t, snap in zip(targets, results, strict=True)}
