"""The Kubernetes collector, with the official client, against the replay server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from collect_replay import CONTINUE, SLOW_SECONDS, ReplayServer

from netsleuth.collect.bundle import BundleWriter, Manifest, read_bundle
from netsleuth.collect.k8s import K8sOptions, collect_cluster, log_role, node_addresses


def _collect(tmp_path: Path, options: K8sOptions) -> tuple[Manifest, Path, ReplayServer | None]:
    writer = BundleWriter(tmp_path / "out")
    result = collect_cluster(options, writer)
    manifest = Manifest(created="2020-03-02T09:45:00Z", cluster=result.status,
                        redactions=writer.redactions)
    return manifest, writer.finish(manifest), None


def _options(kubeconfig: Path, **kw: object) -> K8sOptions:
    base: dict[str, object] = {"kubeconfig": kubeconfig, "request_timeout": 1.0,
                               "connect_timeout": 1.0}
    base.update(kw)
    return K8sOptions(**base)  # type: ignore[arg-type]


def test_full_collection_against_replayed_api(tmp_path: Path, replay_api: ReplayServer) -> None:
    kubeconfig = replay_api.kubeconfig(tmp_path / "kubeconfig")
    opts = _options(kubeconfig, pods=("shop/web-5c9f7b8d6-tq2lx", "shop/missing"), tail=200)
    started = time.monotonic()
    manifest, out, _ = _collect(tmp_path, opts)
    elapsed = time.monotonic() - started
    bundle = read_bundle(out)

    # The slow endpoint was abandoned after the read timeout, not waited for.
    assert elapsed < SLOW_SECONDS + 1.5

    # Every request authenticated with the kubeconfig's token.
    assert {r.authorization for r in replay_api.requests} == {"Bearer replay-test-token"}

    # Paging: the second nodes request carried the continue token of the first page.
    node_calls = replay_api.calls("/api/v1/nodes")
    assert [c.query.get("continue") for c in node_calls] == [None, [CONTINUE]]
    assert all(c.query["limit"] == ["500"] for c in node_calls)

    nodes = json.loads(bundle.files["cluster/nodes.json"])
    assert nodes["apiVersion"] == "v1" and nodes["kind"] == "List"
    assert [n["metadata"]["name"] for n in nodes["items"]] == ["cp-1", "worker-1", "worker-2"]
    assert {(n["apiVersion"], n["kind"]) for n in nodes["items"]} == {("v1", "Node")}
    assert nodes["items"][0]["status"]["addresses"][0] == {"type": "InternalIP",
                                                           "address": "192.0.2.3"}

    # Manifest errors: 404, 403, timeout on their resources; a missing named pod.
    status = manifest.cluster
    assert status.status == "partial"
    assert status.server == replay_api.url and status.context == "replay"
    errors = {(e.target, e.kind) for e in status.errors}
    assert errors == {
        ("endpointslices", "not-found"),
        ("networkpolicies", "forbidden"),
        ("endpoints", "timeout"),
        ("pod shop/missing", "not-found"),
    }
    forbidden = next(e for e in status.errors if e.kind == "forbidden")
    assert "cannot list resource \"networkpolicies\"" in forbidden.message
    assert "cluster/endpointslices.json" not in bundle.files
    assert "cluster/networkpolicies.json" not in bundle.files
    assert "cluster/endpoints.json" not in bundle.files
    # The manifest as read back says the same.
    assert bundle.manifest.cluster.errors == status.errors

    for name in ("pods", "services", "events", "configmaps", "daemonsets"):
        doc = json.loads(bundle.files[f"cluster/{name}.json"])
        assert doc["kind"] == "List" and doc["items"], name

    # Only data-path ConfigMaps are kept; application config is not written at all.
    cms = json.loads(bundle.files["cluster/configmaps.json"])["items"]
    assert [c["metadata"]["name"] for c in cms] == ["kube-proxy", "calico-config", "coredns"]
    assert all("app-config-password" not in text for text in bundle.files.values())
    assert "tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token" in (
        cms[0]["data"]["kubeconfig.conf"]
    )

    # Redaction in env values and in the last-applied annotation; evidence kept.
    pods_text = bundle.files["cluster/pods.json"]
    for secret in ("hunter2-db", "s3cr3t-bgp-passw0rd"):
        assert secret not in pods_text
    pods = {p["metadata"]["name"]: p for p in json.loads(pods_text)["items"]}
    calico_env = pods["calico-node-7xk2p"]["spec"]["containers"][0]["env"]
    env = {e["name"]: e.get("value") for e in calico_env}
    assert env["BGP_PASSWORD"] == "<redacted>"
    assert env["CALICO_IPV4POOL_CIDR"] == "10.244.0.0/16"
    assert env["ETCD_KEY_FILE"] == "/calico-secrets/etcd-key"

    # Logs: network agents, CoreDNS (with previous), the named pod; not the others.
    logs = bundle.logs()
    assert sorted(logs) == [
        "logs/kube-system/calico-node-7xk2p/calico-node.log",
        "logs/kube-system/calico-node-7xk2p/calico-node.previous.log",
        "logs/kube-system/calico-node-7xk2p/install-cni.log",
        "logs/kube-system/coredns-6955765f44-4csvp/coredns.log",
        "logs/kube-system/coredns-6955765f44-4csvp/coredns.previous.log",
        "logs/kube-system/kube-proxy-q8w5m/kube-proxy.log",
        "logs/shop/web-5c9f7b8d6-tq2lx/web.log",
    ]
    calico = logs["logs/kube-system/calico-node-7xk2p/calico-node.previous.log"]
    assert "connect: network is unreachable" in calico
    assert "Authorization: Bearer <redacted>" in calico and "eyJ" not in calico
    assert "pg-pass-123" not in logs["logs/shop/web-5c9f7b8d6-tq2lx/web.log"]
    assert "SIGTERM" in logs["logs/kube-system/coredns-6955765f44-4csvp/coredns.previous.log"]
    log_calls = [r for r in replay_api.requests if r.path.endswith("/log")]
    assert all(c.query["tailLines"] == ["200"] for c in log_calls)
    assert all(c.query["timestamps"] == ["true"] for c in log_calls)

    # BGP_PASSWORD, DB_PASSWORD (env + annotation), the bearer JWT in two calico logs and the
    # URL password: nothing else in the replay is a credential.
    assert manifest.redactions == 6


def test_daemon_logs_limited_to_selected_nodes(tmp_path: Path, replay_api: ReplayServer) -> None:
    kubeconfig = replay_api.kubeconfig(tmp_path / "kubeconfig")
    _, out, _ = _collect(tmp_path, _options(kubeconfig, log_nodes=frozenset({"worker-1"})))
    logs = read_bundle(out).logs()
    assert "logs/kube-system/kube-proxy-q8w5m/kube-proxy.log" in logs  # on worker-1
    assert not any("calico-node" in rel for rel in logs)  # on cp-1
    assert any("coredns" in rel for rel in logs)  # cluster-wide, always read


def test_api_down_is_recorded_once(tmp_path: Path, replay_api: ReplayServer) -> None:
    kubeconfig = replay_api.kubeconfig(tmp_path / "kubeconfig")
    manifest, out, _ = _collect(tmp_path, _options(kubeconfig, context="down"))
    assert manifest.cluster.status == "failed"
    assert manifest.cluster.context == "down"
    assert [(e.target, e.kind) for e in manifest.cluster.errors] == [("nodes", "unreachable")]
    assert not any(rel.startswith("cluster/") for rel in read_bundle(out).files)
    assert replay_api.requests == []


def test_no_kubeconfig_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    manifest, _, _ = _collect(tmp_path, _options(tmp_path / "nope"))
    assert manifest.cluster.status == "failed"
    assert [e.kind for e in manifest.cluster.errors] == ["config"]
    assert "nope" in manifest.cluster.errors[0].message


def test_unknown_context_is_a_config_error(tmp_path: Path, replay_api: ReplayServer) -> None:
    kubeconfig = replay_api.kubeconfig(tmp_path / "kubeconfig")
    manifest, _, _ = _collect(tmp_path, _options(kubeconfig, context="prod"))
    assert [e.kind for e in manifest.cluster.errors] == ["config"]
    assert "prod" in manifest.cluster.errors[0].message


def test_wrong_token_stops_after_first_request(tmp_path: Path, replay_api: ReplayServer) -> None:
    kubeconfig = replay_api.kubeconfig(tmp_path / "kubeconfig")
    kubeconfig.write_text(kubeconfig.read_text().replace("replay-test-token", "stale"))
    manifest, _, _ = _collect(tmp_path, _options(kubeconfig))
    assert [(e.target, e.kind) for e in manifest.cluster.errors] == [("nodes", "auth")]
    assert len(replay_api.requests) == 1


def test_log_role_and_node_addresses() -> None:
    assert log_role({"metadata": {"name": "kube-proxy-abcde"}}) == "daemon"
    assert log_role({"metadata": {"name": "x", "labels": {"k8s-app": "kube-dns"}}}) == "cluster"
    assert log_role({"metadata": {"name": "web-1"}}) is None
    nodes = [
        {"metadata": {"name": "a"}, "status": {"addresses": [
            {"type": "Hostname", "address": "a"}, {"type": "InternalIP", "address": "192.0.2.9"}]}},
        {"metadata": {"name": "b"}, "status": {}},
    ]
    assert node_addresses(nodes) == {"a": "192.0.2.9", "b": "b"}
