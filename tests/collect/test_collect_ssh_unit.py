"""SSH collector pieces that need no server: command lines and error classification."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import asyncssh
import pytest

from netsleuth.collect.local import NODE_COMMANDS, NodeCommand
from netsleuth.collect.ssh import (
    SshOptions,
    SshTarget,
    classify_ssh_error,
    remote_command,
    snapshot_over_ssh,
)


def test_remote_command() -> None:
    cmd = NodeCommand("ip-route.json", ("ip", "-j", "route", "show", "table", "all"))
    assert remote_command(cmd, sudo=False) == "env LC_ALL=C ip -j route show table all"
    assert remote_command(cmd, sudo=True) == "sudo -n env LC_ALL=C ip -j route show table all"
    # Every command survives the remote shell's word splitting unchanged.
    for c in NODE_COMMANDS:
        assert shlex.split(remote_command(c, sudo=True)) == ["sudo", "-n", "env", "LC_ALL=C",
                                                             *c.argv]


@pytest.mark.parametrize("exc,kind", [
    (asyncssh.HostKeyNotVerifiable("Host key is not trusted"), "host-key"),
    (asyncssh.PermissionDenied("Permission denied"), "auth"),
    (asyncssh.ConnectionLost("gone"), "ssh"),
    (TimeoutError(), "timeout"),
    (ConnectionRefusedError(111, "Connection refused"), "unreachable"),
])
def test_classification(exc: BaseException, kind: str) -> None:
    assert classify_ssh_error(exc, "n1").kind == kind


def test_unknown_errors_are_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        classify_ssh_error(ZeroDivisionError(), "n1")


def test_connection_refused_is_recorded_quickly(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback: nothing listens, the kernel answers RST at once.
    snap = asyncio.run(snapshot_over_ssh(
        SshTarget("n1", "127.0.0.1"),
        SshOptions(port=9, known_hosts=tmp_path / "none", timeout=5),
    ))
    assert snap.files == {}
    assert [e.kind for e in snap.errors] == ["unreachable"]
    assert "127.0.0.1:9" in snap.errors[0].message


def test_bad_key_file_is_a_config_error(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("not a key\n")
    snap = asyncio.run(snapshot_over_ssh(
        SshTarget("n1", "127.0.0.1"), SshOptions(port=9, key=key, timeout=5)))
    assert [e.kind for e in snap.errors] == ["config"]
