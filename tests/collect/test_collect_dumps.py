"""Ingesting kubectl cluster-info dumps and sosreports into bundles."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from netsleuth.collect.bundle import Bundle, BundleWriter, Manifest, read_bundle
from netsleuth.collect.dumps import (
    DumpError,
    DumpResult,
    ingest,
    ingest_sosreport,
    split_dump_logs,
)
from netsleuth.collect.local import write_node
from netsleuth.errors import CollectError, ParseError

DATA = Path(__file__).parent.parent / "data" / "collect"


def _bundle(tmp_path: Path, source: Path) -> tuple[Bundle, DumpResult]:
    writer = BundleWriter(tmp_path / "out")
    result = ingest(source, writer)
    nodes = {name: write_node(writer, name, "sosreport", snap)
             for name, snap in result.nodes.items()}
    manifest = Manifest(created="x", sources=tuple(result.sources),
                        cluster=result.cluster or Manifest().cluster, nodes=nodes,
                        redactions=writer.redactions)
    return read_bundle(writer.finish(manifest)), result


@pytest.mark.parametrize("form", ["cluster-info-dump", "cluster-info-dump.txt"])
def test_cluster_info_dump(tmp_path: Path, form: str) -> None:
    bundle, result = _bundle(tmp_path, DATA / form)
    assert [s.type for s in result.sources] == ["cluster-info-dump"]
    nodes = json.loads(bundle.files["cluster/nodes.json"])
    assert [n["metadata"]["name"] for n in nodes["items"]] == ["cp-1", "worker-1", "worker-2"]
    assert nodes["items"][0]["kind"] == "Node"
    pods = json.loads(bundle.files["cluster/pods.json"])
    assert {p["metadata"]["namespace"] for p in pods["items"]} == {"kube-system", "shop"}
    assert len(pods["items"]) == 5
    assert "hunter2-db" not in bundle.files["cluster/pods.json"]  # redacted like live data
    assert bundle.manifest.redactions >= 2
    ds = json.loads(bundle.files["cluster/daemonsets.json"])["items"]
    assert [(d["apiVersion"], d["kind"]) for d in ds] == [("apps/v1", "DaemonSet")]
    logs = bundle.logs()
    assert logs["logs/kube-system/coredns-6955765f44-4csvp/coredns.log"] == (
        "[INFO] SIGTERM: Shutting down servers then terminating\n")
    assert "Using iptables Proxier." in logs["logs/kube-system/kube-proxy-q8w5m/kube-proxy.log"]
    # What a dump never has is said, not silently missing.
    status = bundle.manifest.cluster
    assert status.status == "partial"
    assert {e.target for e in status.errors if e.kind == "not-in-source"} == {
        "endpointslices", "endpoints", "networkpolicies", "configmaps"}


def test_dump_log_sections_must_match() -> None:
    text = ("==== START logs for container a of pod ns/p ====\nline\n"
            "==== END logs for container b of pod ns/p ====\n")
    with pytest.raises(ParseError) as info:
        list(split_dump_logs(text, "logs.txt"))
    assert info.value.line == 3


def test_truncated_stream_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "dump.txt"
    bad.write_text('{\n    "kind": "NodeList",\n    "items": [\n')
    with pytest.raises(DumpError) as info:
        _bundle(tmp_path, bad)
    cause = info.value.__cause__
    assert isinstance(cause, ParseError) and cause.source == str(bad) and cause.line == 4


def test_sosreport_directory() -> None:
    node, snap = ingest_sosreport(DATA / "sosreport-worker-3")
    assert node == "worker-3"
    assert set(snap.files) == {"hostname", "ip-addr.txt", "ip-route.txt", "ip-rule.txt",
                               "iptables-nvL.txt", "sysctl.txt"}
    assert "inet 192.0.2.31/24" in snap.files["ip-addr.txt"]
    assert "default via 192.0.2.1 dev eth0" in snap.files["ip-route.txt"]
    nvl = snap.files["iptables-nvL.txt"]
    assert nvl.index("# table: nat") < nvl.index("Chain KUBE-SERVICES") < nvl.index(
        "# table: filter")
    assert "net.ipv4.ip_forward" in snap.files["sysctl.txt"]
    assert snap.errors == []


@pytest.mark.parametrize("mode,suffix", [("w:xz", ".tar.xz"), ("w:gz", ".tar.gz")])
def test_sosreport_archive(tmp_path: Path, mode: str, suffix: str) -> None:
    archive = tmp_path / f"sosreport-worker-3-2024-05-01-abcdef{suffix}"
    with tarfile.open(archive, mode) as tar:
        tar.add(DATA / "sosreport-worker-3", arcname="sosreport-worker-3-2024-05-01-abcdef")
    bundle, result = _bundle(tmp_path, archive)
    assert [s.type for s in result.sources] == ["sosreport"]
    assert bundle.manifest.nodes["worker-3"].status == "ok"
    files = bundle.node_files("worker-3")
    assert files["hostname"] == "worker-3\n"  # read through the archive's symlink too
    assert "192.0.2.10:6443" in files["iptables-nvL.txt"]


def test_sosreport_missing_outputs_are_recorded(tmp_path: Path) -> None:
    root = tmp_path / "sos"
    shutil.copytree(DATA / "sosreport-worker-3", root, symlinks=True)
    (root / "sos_commands" / "kernel" / "sysctl_-a").unlink()
    _, snap = ingest_sosreport(root)
    assert [(e.target, e.kind) for e in snap.errors] == [("sysctl.txt", "not-in-source")]


def test_unknown_input(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(CollectError, match="neither"):
        ingest(tmp_path / "x", BundleWriter(tmp_path / "o"))
    with pytest.raises(CollectError, match="no such file"):
        ingest(tmp_path / "nope", BundleWriter(tmp_path / "o2"))


# -- wrong-shaped input: one clear error, naming the file and what was expected ---------------


def _dump_dir(tmp_path: Path, nodes: str) -> Path:
    root = tmp_path / "dump"
    root.mkdir()
    (root / "nodes.json").write_text(nodes)
    return root


@pytest.mark.parametrize(("nodes", "expected"), [
    ('{"kind": "NodeList", "items": [1, {"metadata": {"name": "n"}}]}',
     "items[0] to be a Kubernetes object (a JSON object)"),
    ('{"kind": "NodeList", "items": "x"}', "a Kubernetes List with items"),
    ("[1, 2]", "a Kubernetes List with items"),
    ('{"kind": "NodeList", "items": [' + "9" * 5000 + "]}", "a JSON (or YAML) List"),
    ("[" * 100_000, "a JSON (or YAML) List"),
], ids=["int-item", "items-str", "array", "long-int", "deep"])
def test_wrong_shaped_dump_file_is_refused(tmp_path: Path, nodes: str, expected: str) -> None:
    root = _dump_dir(tmp_path, nodes)
    with pytest.raises(DumpError) as info:
        ingest(root, BundleWriter(tmp_path / "o"))
    assert info.value.target == str(root)
    message = str(info.value)
    assert message.startswith("nodes.json") and f"expected {expected}" in message
    assert str(root) not in message  # the caller names the dump; the error names the file
    assert isinstance(info.value.__cause__, ParseError)
    assert info.value.__cause__.source == str(root / "nodes.json")


def test_stdout_dump_with_an_unhashable_kind_is_not_a_crash(tmp_path: Path) -> None:
    text = (DATA / "cluster-info-dump.txt").read_text() + '\n{"kind": [1], "items": []}\n'
    (tmp_path / "dump.txt").write_text(text)
    bundle, _ = _bundle(tmp_path, tmp_path / "dump.txt")
    assert "cluster/nodes.json" in bundle.files


def test_errors_do_not_repeat_the_path(tmp_path: Path) -> None:
    (tmp_path / "cid_svc").mkdir()
    (tmp_path / "cid_svc" / "services.json").write_text("[1, 2]")
    with pytest.raises(DumpError) as info:
        ingest(tmp_path / "cid_svc", BundleWriter(tmp_path / "o"))
    assert info.value.target == str(tmp_path / "cid_svc")
    assert str(info.value).startswith("neither a kubectl cluster-info dump")
    bad = tmp_path / "dump.txt"
    bad.write_text('{"kind": "NodeList", "items": [\n')
    with pytest.raises(DumpError) as info:
        ingest(bad, BundleWriter(tmp_path / "o2"))
    assert str(info.value).startswith("line 2: expected a JSON object")
