"""`netsleuth collect` end to end (typer runner), exit codes and orchestration."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import typer
from collect_replay import ReplayServer
from typer.testing import CliRunner

from netsleuth.collect.bundle import read_bundle
from netsleuth.collect.cli import (
    EXIT_NOTHING,
    EXIT_OUTPUT,
    CollectOptions,
    NothingCollected,
    _this_host_is_a_node,
    collect,
    collect_bundle,
    parse_node_specs,
)
from netsleuth.collect.ssh import SshTarget, bounded_gather

DATA = Path(__file__).parent.parent / "data" / "collect"

app = typer.Typer()
app.command()(collect)


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_offline_dumps_make_a_bundle_without_an_api(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "must-not-be-read"))
    out = tmp_path / "incident.tar.gz"
    code, output = _invoke("-o", str(out), "--from-dump", str(DATA / "cluster-info-dump"),
                           "--from-dump", str(DATA / "sosreport-worker-3"), "--nodes-via",
                           "none", "--quiet")
    assert code == 0, output
    assert output.strip() == str(out)
    bundle = read_bundle(out)
    assert [s.type for s in bundle.manifest.sources] == ["cluster-info-dump", "sosreport"]
    assert bundle.manifest.nodes["worker-3"].via == "sosreport"
    assert "cluster/nodes.json" in bundle.files
    assert bundle.manifest.cluster.status == "partial"


def test_live_api_and_agent_nodes(tmp_path: Path, replay_api: ReplayServer) -> None:
    kubeconfig = replay_api.kubeconfig(tmp_path / "kubeconfig")
    out = tmp_path / "live"
    code, output = _invoke("-o", str(out), "--kubeconfig", str(kubeconfig),
                           "--nodes-via", "agent", "--nodes", "worker-1,worker-2",
                           "--api-timeout", "1", "--tail", "50")
    assert code == 0, output
    assert "node worker-1: partial" in output  # progress lines on stderr (mixed by runner)
    bundle = read_bundle(out)
    m = bundle.manifest
    assert [s.type for s in m.sources] == ["kubernetes-api", "agent"]
    assert m.nodes["worker-1"].status == "partial" and m.nodes["worker-1"].via == "agent"
    assert m.nodes["worker-2"].status == "failed"
    assert "ip-route.txt" in bundle.node_files("worker-1")
    assert m.cluster.status == "partial"
    assert ("worker-2", "not-in-source") in {(e.target, e.kind) for e in m.cluster.errors}
    # --nodes limits the node agents' logs to those nodes: calico-node runs on cp-1.
    assert not any("calico-node" in rel for rel in bundle.logs())
    assert any("kube-proxy" in rel for rel in bundle.logs())


def test_nothing_collected_exits_3_and_keeps_the_manifest(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    code, output = _invoke("-o", str(out), "--kubeconfig", str(tmp_path / "nope"),
                           "--nodes-via", "none", "--quiet")
    assert code == EXIT_NOTHING
    assert "nothing could be collected" in output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["cluster"]["errors"][0]["kind"] == "config"


def test_collect_bundle_raises_nothing_collected(tmp_path: Path) -> None:
    with pytest.raises(NothingCollected) as info:
        collect_bundle(CollectOptions(output=tmp_path / "b", kubeconfig=tmp_path / "nope",
                                      nodes_via="none", quiet=True))
    assert info.value.path == tmp_path / "b"


def test_usage_and_output_errors(tmp_path: Path) -> None:
    code, output = _invoke("-o", str(tmp_path / "x"), "--nodes-via", "telnet")
    assert code == 2 and "--nodes-via" in output
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "file").write_text("x")
    code, output = _invoke("-o", str(taken), "--kubeconfig", str(tmp_path / "nope"), "--quiet")
    assert code == EXIT_OUTPUT and "already exists" in output
    assert sorted(p.name for p in taken.iterdir()) == ["file"]


def test_ssh_without_nodes_and_without_api_is_explained(tmp_path: Path) -> None:
    out = tmp_path / "b"
    code, _ = _invoke("-o", str(out), "--kubeconfig", str(tmp_path / "nope"),
                      "--nodes-via", "ssh", "--quiet")
    assert code == EXIT_NOTHING
    errors = json.loads((out / "manifest.json").read_text())["cluster"]["errors"]
    assert any("needs --nodes" in e["message"] for e in errors)


def test_node_specs() -> None:
    assert parse_node_specs(("cp-1", "w1=192.0.2.4")) == [SshTarget("cp-1", "cp-1"),
                                                          SshTarget("w1", "192.0.2.4")]
    with pytest.raises(typer.BadParameter):
        parse_node_specs(("=192.0.2.4",))


def test_auto_detects_this_host_by_name() -> None:
    me = socket.gethostname()
    assert _this_host_is_a_node({me: "192.0.2.1", "other": "192.0.2.2"})
    assert not _this_host_is_a_node({"other": "192.0.2.2"})


def test_bounded_gather_limits_concurrency() -> None:
    running = 0
    peak = 0

    def job(i: int) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1
            return i

        return run

    results = asyncio.run(bounded_gather([job(i) for i in range(10)], 3))
    assert results == list(range(10))
    assert peak == 3


def test_unreadable_dump_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "dump.txt"
    bad.write_text('{"kind": "NodeList", "items": [\n')
    out = tmp_path / "b"
    code, output = _invoke("-o", str(out), "--from-dump", str(bad), "--quiet")
    assert code == 2
    assert "dump.txt" in output and "expected" in output
    assert not out.exists()  # nothing half-written


@pytest.mark.parametrize(("files", "message"), [
    ({"services.json": "[1, 2]"}, "error: {dump}: neither a kubectl cluster-info dump"),
    ({"nodes.json": '{"kind": "NodeList", "items": [7]}'},
     "error: {dump}: nodes.json: expected items[0] to be a Kubernetes object"),
], ids=["neither", "bad-item"])
def test_bad_dump_errors_name_the_path_once(tmp_path: Path, files: dict[str, str],
                                            message: str) -> None:
    dump = tmp_path / "cid_svc"
    dump.mkdir()
    for name, text in files.items():
        (dump / name).write_text(text)
    code, output = _invoke("-o", str(tmp_path / "b"), "--from-dump", str(dump), "--quiet")
    assert code == 2
    flat = " ".join(output.split())  # rich wraps long lines
    assert message.format(dump=dump) in flat, output
    assert flat.count(str(dump)) == 1, output
