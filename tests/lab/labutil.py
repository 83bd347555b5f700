"""Helpers shared by the lab tests (importable as `labutil`: pytest puts this dir on sys.path)."""

from __future__ import annotations

import os
import shutil
import subprocess

from netsleuth.lab import netns


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces, iptables): run them as root"
    for tool in ("ip", "iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            return f"lab tests need `{tool}` on PATH (apt-get install iproute2 iptables)"
    probe = f"nsl{os.getpid() % 0xFFFF:04x}-canary"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"`ip netns add` does not work here: {proc.stderr.strip()}"
    try:
        proc = subprocess.run(["ip", "netns", "exec", probe, "iptables-save"], capture_output=True, text=True)
        if proc.returncode != 0:
            return f"iptables does not work inside a network namespace: {proc.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


_REASON: list[str | None] = []


def lab_missing() -> str | None:
    if not _REASON:
        _REASON.append(_missing())
    return _REASON[0]


def namespaces_with(prefix: str) -> list[str]:
    return [n for n in netns.list_netns() if n.startswith(prefix + "-")]
