"""Node command handling shared by all node collectors, and local collection."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from netsleuth.collect.local import (
    NODE_COMMANDS,
    NOT_FOUND,
    NodeCommand,
    collect_local,
    run_node_commands,
)


def test_old_iproute2_falls_back_to_text_forms() -> None:
    calls: list[tuple[str, ...]] = []

    def run(cmd: NodeCommand) -> tuple[int | None, str, str]:
        calls.append(cmd.argv)
        if "-j" in cmd.argv:
            return 255, "", 'Option "-j" is unknown, try "ip -help".'
        if cmd.argv[0] == "conntrack":
            return NOT_FOUND, "", "sh: conntrack: command not found"
        if cmd.argv[0] == "iptables-save":
            return 1, "", "iptables-save v1.4.21: Cannot initialize: Permission denied"
        return 0, f"output of {' '.join(cmd.argv)}\n", ""

    snap = run_node_commands(run)
    core = {"hostname", "ip-addr.txt", "ip-link.txt", "ip-route.txt", "ip-rule.txt", "sysctl.txt"}
    assert core <= set(snap.files)
    assert not any(f.endswith(".json") for f in snap.files)
    assert ("ip", "route", "show", "table", "all") in calls
    assert [(e.target, e.kind) for e in snap.errors] == [("iptables-save.txt", "command")]
    assert "Permission denied" in snap.errors[0].message


def test_partial_output_of_a_failed_command_is_kept() -> None:
    def run(cmd: NodeCommand) -> tuple[int | None, str, str]:
        if cmd.argv[0] == "sysctl":
            return 255, "net.ipv4.ip_forward = 1\n", "sysctl: permission denied on key x"
        return 0, "", ""

    snap = run_node_commands(run)
    assert snap.files["sysctl.txt"] == "net.ipv4.ip_forward = 1\n"
    assert [e.target for e in snap.errors] == ["sysctl.txt"]


@pytest.mark.skipif(os.geteuid() != 0, reason="iptables-save needs root")
def test_local_subprocess_fallback_matches_the_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the netlink reader (None in sys.modules makes the import fail) the same
    # commands run as subprocesses.
    monkeypatch.setitem(sys.modules, "netsleuth.collect.netlink", None)
    snap = collect_local()
    required = {c.file for c in NODE_COMMANDS if not c.optional}
    assert required <= set(snap.files)
    direct = subprocess.run(["ip", "-j", "rule", "show"], capture_output=True, text=True,
                            check=True).stdout
    assert json.loads(snap.files["ip-rule.json"]) == json.loads(direct)


def test_local_with_netlink_reader() -> None:
    snap = collect_local()
    assert {"hostname", "ip-addr.json", "ip-route.json", "ip-rule.json"} <= set(snap.files)
    direct = subprocess.run(["ip", "-j", "rule", "show"], capture_output=True, text=True,
                            check=True).stdout
    assert json.loads(snap.files["ip-rule.json"]) == json.loads(direct)
