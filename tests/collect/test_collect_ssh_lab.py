"""SSH and local node collection against real network namespaces and a real OpenSSH server.

Topology (all addresses exist only inside the test's own namespaces):

    nsc-cli  c1 10.250.1.1/24 ── eth0 10.250.1.2  nsc-n1   sshd, host key A (trusted)
             c2 10.250.2.1/24 ── eth0 10.250.2.2  nsc-n2   sshd, host key B (known_hosts: A2)
             c3 10.250.3.1/24 ── eth0 10.250.3.2  nsc-n3   no sshd, drops tcp/22 (timeout)
             c4 10.250.4.1/24 ── eth0 10.250.4.2  nsc-n4   sshd, host key C (trusted)

The collector runs inside nsc-cli (`ip netns exec`), exactly as a user would run it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netsleuth.collect.bundle import read_bundle

SSHD = "/usr/sbin/sshd"
PREFIX = "nsc-"
NODES = ("n1", "n2", "n3", "n4")

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2"),
    pytest.mark.skipif(not os.path.exists(SSHD), reason="needs OpenSSH server (/usr/sbin/sshd)"),
    pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen"),
]


def sh(*argv: str, netns: str | None = None, check: bool = True) -> str:
    full = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    proc = subprocess.run(full, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{full}: {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def _delete_our_namespaces() -> None:
    for line in sh("ip", "netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(PREFIX):
            sh("ip", "netns", "del", name, check=False)


def _keygen(path: Path) -> str:
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path))
    pub = path.with_suffix(".pub") if path.suffix else Path(str(path) + ".pub")
    return " ".join(pub.read_text().split()[:2])


@dataclass
class Lab:
    tmp: Path
    user_key: Path
    known_hosts: Path
    procs: list[subprocess.Popen[bytes]]

    def addr(self, node: str) -> str:
        return f"10.250.{node[1:]}.2"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("ssh-lab")
    _delete_our_namespaces()
    procs: list[subprocess.Popen[bytes]] = []
    made_run_sshd = not os.path.isdir("/run/sshd")
    try:
        sh("ip", "netns", "add", f"{PREFIX}cli")
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1", netns=f"{PREFIX}cli")
        sh("ip", "-n", f"{PREFIX}cli", "link", "set", "lo", "up")
        user_key = tmp / "id_ed25519"
        authorized = tmp / "authorized_keys"
        authorized.write_text(_keygen(user_key) + "\n")
        known: list[str] = []
        for node in NODES:
            ns, i = f"{PREFIX}{node}", node[1:]
            sh("ip", "netns", "add", ns)
            # No IPv6: its addresses come and go (DAD) and would make snapshots differ.
            sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
               "net.ipv6.conf.default.disable_ipv6=1", netns=ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "link", "add", f"nsc-c{i}", "netns", f"{PREFIX}cli", "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", f"{PREFIX}cli", "addr", "add", f"10.250.{i}.1/24", "dev", f"nsc-c{i}")
            sh("ip", "-n", f"{PREFIX}cli", "link", "set", f"nsc-c{i}", "up")
            sh("ip", "-n", ns, "addr", "add", f"10.250.{i}.2/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        # Recognisable state on n1, to find in the collected files.
        sh("ip", "-n", f"{PREFIX}n1", "route", "add", "198.51.100.0/24", "via", "10.250.1.1")
        sh("ip", "-n", f"{PREFIX}n1", "rule", "add", "fwmark", "0x4000", "table", "100",
           "priority", "1000")
        sh("iptables", "-t", "nat", "-A", "OUTPUT", "-d", "203.0.113.10/32", "-p", "tcp",
           "-m", "comment", "--comment", "nsc-test-dnat", "-j", "DNAT",
           "--to-destination", "10.250.1.1:6443", netns=f"{PREFIX}n1")
        sh("sysctl", "-w", "net.ipv4.ip_forward=1", netns=f"{PREFIX}n1")
        # n3 silently drops SSH: the client waits until its timeout.
        sh("iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP",
           netns=f"{PREFIX}n3")

        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
        for node in ("n1", "n2", "n4"):
            host_key = tmp / f"host_{node}"
            host_pub = _keygen(host_key)
            if node == "n2":
                # known_hosts holds a different key for n2's address: a spoofed host.
                host_pub = _keygen(tmp / "host_n2_expected")
            known.append(f"10.250.{node[1:]}.2 {host_pub}")
            cfg = tmp / f"sshd_{node}.conf"
            cfg.write_text(
                f"ListenAddress 10.250.{node[1:]}.2\nPort 22\nHostKey {host_key}\n"
                f"PidFile {tmp}/sshd_{node}.pid\nAuthorizedKeysFile {authorized}\n"
                "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                "PrintMotd no\nMaxSessions 20\n"
            )
            log = (tmp / f"sshd_{node}.log").open("wb")
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", f"{PREFIX}{node}", SSHD, "-D", "-e", "-f", str(cfg)],
                stdout=log, stderr=subprocess.STDOUT,
            ))
        # Operational state is updated asynchronously (linkwatch); wait until it settles so
        # that every later snapshot sees the same link state.
        deadline = time.monotonic() + 10
        for node in NODES:
            while '"operstate":"UP"' not in sh("ip", "-j", "link", "show", "eth0",
                                               netns=f"{PREFIX}{node}"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"eth0 in {node} did not come up")
                time.sleep(0.05)
        known_hosts = tmp / "known_hosts"
        known_hosts.write_text("\n".join(known) + "\n")
        deadline = time.monotonic() + 10
        for node in ("n1", "n2", "n4"):
            while ":22 " not in sh("ss", "-Htln", netns=f"{PREFIX}{node}"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sshd in {node} did not start: "
                                       f"{(tmp / f'sshd_{node}.log').read_text()}")
                time.sleep(0.05)
        yield Lab(tmp=tmp, user_key=user_key, known_hosts=known_hosts, procs=procs)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _delete_our_namespaces()
        if made_run_sshd:
            shutil.rmtree("/run/sshd", ignore_errors=True)


def _run_collect(netns: str, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SSH_AUTH_SOCK", "KUBECONFIG"}}
    env["HOME"] = str(home)  # no ~/.ssh/config, keys or known_hosts of the real user
    return subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "netsleuth.collect.cli", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


def test_ssh_collects_in_parallel_refuses_bad_host_key_and_records_timeout(lab: Lab) -> None:
    out = lab.tmp / "bundle.tar.gz"
    nodes = ",".join(f"{n}={lab.addr(n)}" for n in NODES)
    started = time.monotonic()
    proc = _run_collect(
        f"{PREFIX}cli", "-o", str(out), "--nodes-via", "ssh", "--nodes", nodes,
        "--ssh-user", "root", "--ssh-key", str(lab.user_key),
        "--known-hosts", str(lab.known_hosts), "--ssh-timeout", "4",
        "--ssh-concurrency", "4", "--kubeconfig", str(lab.tmp / "no-kubeconfig"), "--quiet",
        home=lab.tmp,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    # In parallel: the unreachable node's 4 s timeout is paid once, not added to the others.
    assert elapsed < 12

    bundle = read_bundle(out)
    st = bundle.manifest.nodes
    assert st["n1"].status == "ok" and st["n4"].status == "ok", (st["n1"].errors, st["n4"].errors)
    assert st["n1"].via == "ssh"
    assert {"hostname", "ip-addr.json", "ip-route.json", "ip-rule.json", "iptables-save.txt",
            "sysctl.txt", "ip-link.json"} <= set(st["n1"].files)

    assert st["n2"].status == "failed" and st["n2"].files == ()
    assert [e.kind for e in st["n2"].errors] == ["host-key"]
    assert not bundle.node_files("n2")  # nothing from a host that could not be verified

    assert st["n3"].status == "failed"
    assert [e.kind for e in st["n3"].errors] == ["timeout"]
    assert "10.250.3.2" in st["n3"].errors[0].message

    assert bundle.manifest.cluster.status == "failed"
    assert [e.kind for e in bundle.manifest.cluster.errors] == ["config"]

    # The files are the node's own state: same as running the commands in its namespace.
    n1 = bundle.node_files("n1")
    assert json.loads(n1["ip-addr.json"]) == json.loads(
        sh("ip", "-j", "addr", "show", netns=f"{PREFIX}n1"))
    routes = json.loads(n1["ip-route.json"])
    assert any(r.get("dst") == "198.51.100.0/24" and r.get("gateway") == "10.250.1.1"
               for r in routes)
    assert any(r.get("priority") == 1000 and r.get("table") == "100"
               for r in json.loads(n1["ip-rule.json"]))
    assert "--comment nsc-test-dnat" in n1["iptables-save.txt"]
    assert "net.ipv4.ip_forward = 1" in n1["sysctl.txt"]
    # n4 has none of n1's state: each connection reached its own node.
    assert "198.51.100.0/24" not in bundle.node_files("n4")["ip-route.json"]


def test_ssh_without_known_host_entry_is_refused(lab: Lab) -> None:
    empty = lab.tmp / "empty_known_hosts"
    empty.write_text("")
    out = lab.tmp / "refused"
    proc = _run_collect(
        f"{PREFIX}cli", "-o", str(out), "--nodes-via", "ssh", "--nodes", f"n1={lab.addr('n1')}",
        "--ssh-user", "root", "--ssh-key", str(lab.user_key), "--known-hosts", str(empty),
        "--ssh-timeout", "4", "--kubeconfig", str(lab.tmp / "no-kubeconfig"), "--quiet",
        home=lab.tmp,
    )
    # Nothing collected at all: exit 3, and the manifest says why.
    assert proc.returncode == 3, proc.stderr
    manifest = read_bundle(out).manifest
    assert [e.kind for e in manifest.nodes["n1"].errors] == ["host-key"]


def test_local_collection_matches_the_namespace_and_the_lab_snapshot(lab: Lab) -> None:
    out = lab.tmp / "local-bundle"
    proc = _run_collect(
        f"{PREFIX}n1", "-o", str(out), "--nodes-via", "local", "--nodes", "n1",
        "--kubeconfig", str(lab.tmp / "no-kubeconfig"), "--quiet", home=lab.tmp,
    )
    assert proc.returncode == 0, proc.stderr
    local = read_bundle(out)
    assert local.manifest.nodes["n1"].via == "local"
    files = local.node_files("n1")
    assert json.loads(files["ip-addr.json"]) == json.loads(
        sh("ip", "-j", "addr", "show", netns=f"{PREFIX}n1"))
    assert "--comment nsc-test-dnat" in files["iptables-save.txt"]

    # The same namespace read over SSH gives the same routes and rules.
    ssh_out = lab.tmp / "ssh-n1"
    proc = _run_collect(
        f"{PREFIX}cli", "-o", str(ssh_out), "--nodes-via", "ssh",
        "--nodes", f"n1={lab.addr('n1')}", "--ssh-user", "root",
        "--ssh-key", str(lab.user_key), "--known-hosts", str(lab.known_hosts),
        "--kubeconfig", str(lab.tmp / "no-kubeconfig"), "--quiet", home=lab.tmp,
    )
    assert proc.returncode == 0, proc.stderr
    remote = read_bundle(ssh_out).node_files("n1")
    for name in ("ip-addr.json", "ip-route.json", "ip-rule.json"):
        assert json.loads(remote[name]) == json.loads(files[name]), name
