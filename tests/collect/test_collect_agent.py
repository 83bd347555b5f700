"""The node agent: record encoding, the entrypoint, the DaemonSet manifest, aggregation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from collect_replay import ReplayServer

from netsleuth.collect.agent import CHUNK, decode_records, encode_record, write_snapshot_dir
from netsleuth.collect.bundle import CollectIssue
from netsleuth.collect.k8s import K8sOptions, collect_agent_snapshots
from netsleuth.collect.local import NodeSnapshot

AGENT_DIR = Path(__file__).parents[2] / "src" / "netsleuth" / "collect" / "agent"


def test_records_round_trip_in_short_lines() -> None:
    big = "".join(f"-A KUBE-SVC-{i:06d} -j KUBE-SEP-{i:06d}\n" for i in range(20000))
    snap = NodeSnapshot(files={"iptables-save.txt": big, "hostname": "n1\n"},
                        errors=[CollectIssue("conntrack.txt", "command", "failed")])
    lines = encode_record("n1", "2024-05-01T10:00:00Z", snap)
    assert len(lines) > 3 and all(len(line) < CHUNK + 100 for line in lines)
    # Runtime timestamps in front of each line, and noise between records, are fine.
    log = "\n".join(f"2024-05-01T10:00:0{i % 10}.1Z {line}" for i, line in enumerate(lines))
    records = decode_records("agent starting\n" + log + "\nnetsleuth-agent: warning\n")
    assert records["n1"].created == "2024-05-01T10:00:00Z"
    assert records["n1"].snapshot.files == snap.files
    assert records["n1"].snapshot.errors == snap.errors


def test_damaged_records_are_dropped_and_the_last_good_one_wins() -> None:
    first = encode_record("n1", "t1", NodeSnapshot(files={"hostname": "a\n"}))
    second = encode_record("n1", "t2", NodeSnapshot(files={"hostname": "b\n"}))
    corrupt = [line.replace("DATA n1 0 H4", "DATA n1 0 X4") for line in second]
    truncated = second[:-1]
    assert decode_records("\n".join(first + corrupt))["n1"].created == "t1"
    assert decode_records("\n".join(first + truncated))["n1"].created == "t1"
    assert decode_records("\n".join(first + second))["n1"].created == "t2"
    assert decode_records("\n".join(truncated)) == {}


def test_snapshot_dir_is_replaced_whole(tmp_path: Path) -> None:
    write_snapshot_dir(tmp_path, "n1", NodeSnapshot(files={"a.txt": "1", "b.txt": "2"}))
    write_snapshot_dir(tmp_path, "n1", NodeSnapshot(files={"a.txt": "3"}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n1"]
    assert {p.name: p.read_text() for p in (tmp_path / "n1").iterdir()} == {"a.txt": "3"}


def test_entrypoint_once(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "netsleuth.collect.agent", "--once", "--stdout",
         "--out", str(tmp_path), "--node-name", "this-node"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    record = decode_records(proc.stdout)["this-node"]
    written = {p.name: p.read_text() for p in (tmp_path / "this-node").iterdir()}
    assert written == record.snapshot.files
    assert {"ip-addr.json", "ip-route.json", "sysctl.txt"} <= set(written)


def test_entrypoint_needs_an_output() -> None:
    proc = subprocess.run([sys.executable, "-m", "netsleuth.collect.agent", "--once"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "nothing to do" in proc.stderr


def test_daemonset_manifest() -> None:
    docs = list(yaml.safe_load_all((AGENT_DIR / "daemonset.yaml").read_text()))
    kinds = [d["kind"] for d in docs]
    assert kinds == ["Namespace", "ServiceAccount", "DaemonSet"]
    ds = docs[2]
    pod = ds["spec"]["template"]["spec"]
    assert ds["spec"]["selector"]["matchLabels"] == ds["spec"]["template"]["metadata"]["labels"]
    assert ds["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == (
        "netsleuth-agent")
    assert pod["hostNetwork"] is True and pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["command"] == ["python", "-m", "netsleuth.collect.agent"]
    assert "--stdout" in container["args"] and "--out" in container["args"]
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in (
        container["env"])
    caps = container["securityContext"]["capabilities"]
    assert caps == {"drop": ["ALL"], "add": ["NET_ADMIN", "NET_RAW"]}


def test_aggregation_from_agent_pod_logs(tmp_path: Path, replay_api: ReplayServer) -> None:
    kubeconfig = replay_api.kubeconfig(tmp_path / "kubeconfig")
    result = collect_agent_snapshots(
        K8sOptions(kubeconfig=kubeconfig, request_timeout=2.0), since_seconds=600)
    assert sorted(result.records) == ["worker-1"]
    rec = result.records["worker-1"]
    assert rec.created == "2020-03-02T09:40:00Z"  # the newer of the two records
    assert "default via 192.0.2.1 dev eth0" in rec.snapshot.files["ip-route.txt"]
    assert [e.target for e in rec.snapshot.errors] == ["conntrack.txt"]
    assert [(e.target, e.kind) for e in result.errors] == [("worker-2", "not-in-source")]
    log_calls = [r for r in replay_api.requests if r.path.endswith("/log")]
    assert log_calls and all(c.query["sinceSeconds"] == ["600"] for c in log_calls)
