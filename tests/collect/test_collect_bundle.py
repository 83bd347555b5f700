"""Bundle writing and reading: layout, manifest, tar.gz, schema versions, hostile archives."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from netsleuth.collect.bundle import (
    SCHEMA_VERSION,
    BundleWriter,
    ClusterStatus,
    CollectIssue,
    Manifest,
    NodeStatus,
    SourceEntry,
    parse_bundle,
    read_bundle,
    safe_component,
)
from netsleuth.errors import CollectError, ParseError, SnapshotError


def _write(out: Path) -> tuple[Path, Manifest]:
    writer = BundleWriter(out)
    writer.write_list("cluster/pods.json", [{"metadata": {"name": "p"},
                                             "spec": {"containers": [{"name": "c", "env": [
                                                 {"name": "API_TOKEN", "value": "t0ps3cret"}]}]}}])
    writer.write_text("logs/kube-system/kube-proxy-x/kube-proxy.log", "I0101 started\n")
    writer.write_text("nodes/n1/ip-route.txt", "default via 192.0.2.1 dev eth0\n")
    manifest = Manifest(
        created="2024-05-01T10:00:00Z",
        sources=(SourceEntry("kubernetes-api", "prod"), SourceEntry("ssh", "n1,n2")),
        cluster=ClusterStatus("partial", "prod", "https://192.0.2.1:6443",
                              (CollectIssue("networkpolicies", "forbidden", "HTTP 403: no"),)),
        nodes={"n1": NodeStatus("ok", "ssh", writer.files_under("nodes/n1/")),
               "n2": NodeStatus("failed", "ssh", (), (CollectIssue("n2", "timeout", "slow"),))},
        redactions=writer.redactions,
    )
    return writer.finish(manifest), manifest


@pytest.mark.parametrize("name", ["bundle", "bundle.tar.gz", "bundle.tgz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    path, manifest = _write(tmp_path / name)
    assert path == tmp_path / name
    bundle = read_bundle(path)
    assert bundle.manifest == manifest
    assert bundle.manifest.redactions == 1
    assert sorted(bundle.files) == ["cluster/pods.json",
                                    "logs/kube-system/kube-proxy-x/kube-proxy.log",
                                    "nodes/n1/ip-route.txt"]
    assert "t0ps3cret" not in bundle.files["cluster/pods.json"]
    pods = json.loads(bundle.files["cluster/pods.json"])
    assert (pods["apiVersion"], pods["kind"]) == ("v1", "List")
    assert bundle.node_names() == ("n1", "n2")
    assert bundle.node_files("n1") == {"ip-route.txt": "default via 192.0.2.1 dev eth0\n"}
    assert bundle.cluster_file("services.json") is None
    raw = json.loads((path / "manifest.json").read_text()) if path.is_dir() else None
    if raw is not None:
        assert raw["schema_version"] == SCHEMA_VERSION and raw["tool"] == "netsleuth"
        assert raw["cluster"]["errors"][0] == {"target": "networkpolicies", "kind": "forbidden",
                                               "message": "HTTP 403: no"}
    # No staging directory is left behind.
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_tar_has_one_top_directory(tmp_path: Path) -> None:
    path, _ = _write(tmp_path / "incident.tar.gz")
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert names and all(n.startswith("incident/") for n in names)
    assert "incident/manifest.json" in names


def test_existing_output_is_refused(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("keep me")
    with pytest.raises(CollectError, match="already exists"):
        BundleWriter(tmp_path / "b")
    (tmp_path / "empty").mkdir()
    BundleWriter(tmp_path / "empty").abort()  # an empty directory is fine


def test_newer_schema_is_refused_with_a_clear_message() -> None:
    text = json.dumps({"schema_version": SCHEMA_VERSION + 1, "tool": "netsleuth"})
    with pytest.raises(SnapshotError, match="newer than this netsleuth understands"):
        parse_bundle("b", text, {})


def test_bad_manifest_json_names_the_line() -> None:
    with pytest.raises(ParseError) as info:
        parse_bundle("b", '{\n  "schema_version": 1,\n  oops\n}', {})
    assert info.value.line == 3 and info.value.source == "b/manifest.json"


def test_version_0_hand_made_directory_is_migrated(tmp_path: Path) -> None:
    (tmp_path / "nodes" / "cp-1").mkdir(parents=True)
    (tmp_path / "nodes" / "cp-1" / "ip-route.txt").write_text("10.0.0.0/8 dev eth0\n")
    (tmp_path / "nodes" / "cp-1" / "iptables-save.txt").write_text("*nat\nCOMMIT\n")
    bundle = read_bundle(tmp_path)
    assert bundle.manifest.schema_version == SCHEMA_VERSION
    assert bundle.manifest.nodes["cp-1"] == NodeStatus(
        "ok", "manual", ("ip-route.txt", "iptables-save.txt"))
    assert bundle.manifest.cluster.status == "failed"


def test_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(SnapshotError, match="not a netsleuth bundle"):
        read_bundle(tmp_path)
    with pytest.raises(SnapshotError, match="no such bundle"):
        read_bundle(tmp_path / "missing.tar.gz")
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(SnapshotError, match="readable tar"):
        read_bundle(tmp_path / "junk.tar.gz")


def test_tar_members_that_climb_out_are_ignored(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("b/manifest.json", json.dumps({"schema_version": 1}).encode()),
                           ("b/nodes/n/hostname", b"n\n"),
                           ("../../etc/evil", b"x"), ("/abs", b"y")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tmp_path / "b.tar.gz").write_bytes(buf.getvalue())
    bundle = read_bundle(tmp_path / "b.tar.gz")
    assert list(bundle.files) == ["nodes/n/hostname"]


def test_paths_are_confined() -> None:
    assert safe_component("kube-proxy-x") == "kube-proxy-x"
    assert safe_component("../x") == ".._x"
    assert safe_component("..") == "___"
    assert "/" not in safe_component("a/b")


def test_write_outside_is_rejected(tmp_path: Path) -> None:
    writer = BundleWriter(tmp_path / "b")
    with pytest.raises(ValueError):
        writer.write_text("../escape", "x")
    with pytest.raises(ValueError):
        writer.write_text("/etc/passwd", "x")
    writer.abort()


@pytest.mark.parametrize(("field", "value", "words"), [
    ("sources", 5, "sources: expected a list"),
    ("sources", [5], "sources[0]: expected an object or a string"),
    ("sources", "abc", "sources: expected a list"),
    ("redactions", "many", "redactions: expected a non-negative integer"),
    ("redactions", None, "redactions: expected a non-negative integer"),
    ("tool", ["x"], "tool: expected a string"),
    ("created", 5, "created: expected a string"),
    ("cluster", [], "cluster: expected an object"),
    ("nodes", "cp-1", "nodes: expected an object"),
    ("nodes", {"cp-1": {"files": 5}}, "nodes.cp-1.files: expected a list of strings"),
    ("nodes", {"cp-1": {"files": [{"a": 1}]}}, "nodes.cp-1.files: expected a list of strings"),
    ("nodes", {"cp-1": {"status": 3}}, "nodes.cp-1.status: expected a string"),
    ("nodes", {"cp-1": {"errors": 3}}, "nodes.cp-1.errors: expected a list"),
    ("cluster", {"errors": {"a": 1}}, "cluster.errors: expected a list"),
    ("cluster", {"errors": [1]}, "cluster.errors[0]: expected an object"),
    ("cluster", {"status": {}}, "cluster.status: expected a string"),
], ids=lambda v: str(v)[:20])
def test_wrong_typed_manifest_fields_are_named(field: str, value: object, words: str) -> None:
    raw = Manifest(created="2024-01-01T00:00:00Z").to_json() | {field: value}
    with pytest.raises(SnapshotError) as info:
        parse_bundle("b", json.dumps(raw), {})
    message = str(info.value)
    assert message.startswith("b/manifest.json: ") and words in message, message
    assert "object is not iterable" not in message


def test_manifest_error_reaches_diagnose_as_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from netsleuth.cli import app

    bundle, _ = _write(tmp_path / "b")
    raw = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps(raw | {"sources": 5}))
    result = CliRunner().invoke(app, ["diagnose", str(bundle)])
    assert result.exit_code == 1
    assert "manifest.json: sources: expected a list" in " ".join(result.output.split())
