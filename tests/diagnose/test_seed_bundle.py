"""Acceptance: the seed incident as a complete bundle (examples/seed-incident) is diagnosed right.

The same diagnosis must come out of the Python API and of `netsleuth diagnose --format json`,
from the bundle directory and from a .tar.gz of it. What the write-up's engineer found by hand
must be the first root cause: node admin cannot route the Service CIDR, which explains
calico-node's readiness failures and back-off, the sandbox churn (CoreDNS's among it), the pods
without IPs and DNS being down; the fix routes the Service CIDR out of enp0s8.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from netsleuth.cli import app
from netsleuth.collect.bundle import read_bundle
from netsleuth.diagnose.engine import diagnose
from netsleuth.snapshot.inputs import load_evidence

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "examples" / "seed-incident"
SEED = ROOT.parent / "shared" / "seed" / "000_e9d9eec0ae13dafa.txt"

SOURCES = ("api", "cli", "api-tar", "cli-tar")
RFC3339_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ")

# What the write-up's symptoms become, as symptom keys (src/netsleuth/diagnose/detectors).
CONSEQUENCES = {
    "cni-agent-not-ready@node2",  # calico-node-7kvkf: Unhealthy x304, BackOff x574
    "svc-unreachable:ENETUNREACH@node2",  # its log: dial tcp 10.96.0.1:443 ... unreachable
    "cni-agent-not-ready@admin",  # calico-node-qm2dx crash-looping on admin
    "sandbox-churn@admin",  # SandboxChanged x575 (CoreDNS) and the FailedCreatePodSandBox
    "pod-no-ip@admin",  # the pods stuck in ContainerCreating
    "dns-down",  # both CoreDNS pods Completed, kube-dns without endpoints
}

@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The diagnosis report as JSON from each form (`Report.to_dict()` is what the CLI
    prints). The archive is packed as `netsleuth collect` packs one: a single top directory
    named after the archive."""
    tarball = tmp_path_factory.mktemp("seed-bundle") / "seed-incident.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for path in sorted(BUNDLE.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=f"seed-incident/{path.relative_to(BUNDLE).as_posix()}",
                        recursive=False)
    out: dict[str, dict[str, Any]] = {}
    for source in SOURCES:
        path = tarball if source.endswith("-tar") else BUNDLE
        if source.startswith("api"):
            out[source] = diagnose(load_evidence(path)).to_dict()
            continue
        result = CliRunner().invoke(app, ["diagnose", str(path), "--format", "json"])
        assert result.exit_code == 3, result.output  # 3: root cause(s) found
        data: dict[str, Any] = json.loads(result.stdout)
        out[source] = data
    return out


@pytest.fixture(scope="module", params=SOURCES)
def report(request: pytest.FixtureRequest, reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    chosen: dict[str, Any] = reports[request.param]
    return chosen


def _first(report: dict[str, Any]) -> dict[str, Any]:
    assert report["verdict"] == "root-cause-found"
    cause: dict[str, Any] = report["root_causes"][0]
    return cause


def _symptom(report: dict[str, Any], key: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in report["symptoms"] if s["key"] == key]
    assert found, f"no symptom {key}; have {[s['key'] for s in report['symptoms']]}"
    return found[0]


# -- the bundle itself ---------------------------------------------------------------------------


def test_bundle_reads_cleanly() -> None:
    bundle = read_bundle(BUNDLE)
    assert bundle.manifest.schema_version == 1
    assert [s.type for s in bundle.manifest.sources] == ["manual"]
    assert "write-up" in bundle.manifest.sources[0].detail
    assert bundle.node_names() == ("admin", "node1", "node2")
    for name, status in bundle.manifest.nodes.items():
        assert set(status.files) == set(bundle.node_files(name)), name
    kinds = {"nodes.json": "Node", "pods.json": "Pod", "services.json": "Service",
             "endpoints.json": "Endpoints", "events.json": "Event", "configmaps.json": "ConfigMap"}
    for file, kind in kinds.items():
        text = bundle.cluster_file(file)
        assert text is not None, file
        doc = json.loads(text)
        assert (doc["apiVersion"], doc["kind"]) == ("v1", "List")
        assert doc["items"] and all((i["apiVersion"], i["kind"]) == ("v1", kind)
                                    for i in doc["items"]), file
    for rel, text in bundle.logs().items():
        # `kubectl logs --timestamps`: every line starts with the runtime's RFC 3339 time.
        assert all(RFC3339_PREFIX.match(line) for line in text.splitlines()), rel
    ev = load_evidence(BUNDLE)
    assert ev.problems == ()
    assert len(ev.objects.pods) == 23 and len(ev.objects.events) == 12


def _squash(text: str) -> str:
    # The write-up went through a web page: runs of spaces became NBSP/space pairs.
    return " ".join(text.split())


@pytest.mark.skipif(not SEED.is_file(), reason=f"seed write-up not found at {SEED}")
def test_pasted_outputs_are_verbatim() -> None:
    seed = "\n".join(_squash(line) for line in SEED.read_text(encoding="utf-8").splitlines())
    seed_lines = set(seed.splitlines())
    for node in ("admin", "node1", "node2"):
        routes = (BUNDLE / "nodes" / node / "ip-route.txt").read_text().splitlines()
        assert all(_squash(r) in seed_lines for r in routes), node
    logs = BUNDLE / "logs" / "kube-system"
    for rel, pasted in (("calico-node-7kvkf/calico-node.log", 15),
                        ("coredns-9d85f5447-sjs2j/coredns.log", 6),
                        ("calico-kube-controllers-7489ff5b7c-6nl5p/calico-kube-controllers.log", 9)):
        head = [_squash(RFC3339_PREFIX.sub("", line))
                for line in (logs / rel).read_text().splitlines()[:pasted]]
        # Each log starts with the lines the write-up pasted, in the write-up's order.
        assert all(line in seed_lines for line in head), rel
        at = [seed.index(line) for line in head]
        assert at == sorted(at) and len(set(at)) == len(at), rel
    pods = json.loads((BUNDLE / "cluster" / "pods.json").read_text())["items"]
    apiserver = next(p for p in pods if p["metadata"]["name"] == "kube-apiserver-admin")
    command = " ".join(apiserver["spec"]["containers"][0]["command"])
    assert f"00:04:00 {command}" in seed  # `ps -ef|grep apiserver` on admin
    events = json.loads((BUNDLE / "cluster" / "events.json").read_text())["items"]
    messages = {e["message"] for e in events}
    for shown in ("Pod sandbox changed, it will be killed and re-created.",
                  "Readiness probe failed: calico/node is not ready: felix is not ready: Get "
                  "http://localhost:9099/readiness: dial tcp [::1]:9099: connect: connection refused",
                  "Back-off restarting failed container"):
        assert shown in seed and shown in messages


# -- the diagnosis -------------------------------------------------------------------------------


def test_first_root_cause_is_the_missing_route_on_admin(report: dict[str, Any]) -> None:
    cause = _first(report)
    assert (cause["kind"], cause["node"]) == ("service-cidr-unroutable", "admin")
    assert "no default route" in cause["title"]
    assert cause["trace"]["verdict"] == "unroutable"
    assert cause["trace"]["errno"] == "ENETUNREACH"
    evidence = cause["evidence"]
    # kube-proxy's DNAT exists on admin but is never reached; quoted by its line.
    assert any(e["source"].endswith("nodes/admin/iptables-save.txt") and e["line"] > 0
               and "192.168.56.3:6443" in e["text"] for e in evidence)
    # node2's calico-node log line (the write-up's) backs it.
    assert any(e["source"].endswith("calico-node-7kvkf/calico-node.log")
               and "connect: network is unreachable" in e["text"] for e in evidence)


def test_root_cause_explains_the_consequences(report: dict[str, Any]) -> None:
    explained = {e["key"] for e in _first(report)["explains"]}
    missing = CONSEQUENCES - explained
    assert not missing, f"not explained: {sorted(missing)}; explained: {sorted(explained)}"


def test_symptoms_quote_the_bundle(report: dict[str, Any]) -> None:
    agent = " | ".join(e["text"] for e in _symptom(report, "cni-agent-not-ready@node2")["evidence"])
    assert "Unhealthy (x304)" in agent and "felix is not ready" in agent
    assert "BackOff (x574)" in agent and "kubelet, node2" in agent
    no_ip = _symptom(report, "pod-no-ip@admin")
    assert no_ip["title"].startswith("3 pod(s) on admin")
    texts = " | ".join(e["text"] for e in no_ip["evidence"])
    for pod in ("nginx-86c57db685-4xwqz", "nginx-86c57db685-p5lnx", "tomcat-5f9bc4c69d-m9dqx"):
        assert pod in texts
    dns = " | ".join(e["text"] for e in _symptom(report, "dns-down")["evidence"])
    assert "coredns-9d85f5447-sjs2j" in dns and "restarts=36" in dns
    churn = _symptom(report, "sandbox-churn@admin")
    assert any("SandboxChanged" in e["text"] or "FailedCreatePodSandBox" in e["text"]
               for e in churn["evidence"])


def test_coredns_sandbox_churn_is_what_takes_dns_down() -> None:
    r = diagnose(load_evidence(BUNDLE))
    tree = [(depth, f.key) for depth, f in r.causes[0].tree]
    keys = [k for _, k in tree]
    churn, dns = keys.index("sandbox-churn@admin"), keys.index("dns-down")
    assert dns > churn and tree[dns][0] == tree[churn][0] + 1


def test_fixes_are_verified_routes_out_of_enp0s8(report: dict[str, Any]) -> None:
    fixes = _first(report)["fix"]
    now = [f for f in fixes if f["when"] == "now"]
    assert now and all("Verified by simulation" in f["note"] for f in now)
    assert re.fullmatch(r"ip route add \S+ dev enp0s8", now[0]["command"])
    assert any(f["command"].startswith("ip route add default via 192.168.56.") for f in now)
    assert any(f["when"] == "permanent" for f in fixes)


def test_fix_routes_the_whole_service_cidr(report: dict[str, Any]) -> None:
    cause = _first(report)
    assert "10.96.0.0/12" in cause["title"]
    assert cause["fix"][0]["command"] == "ip route add 10.96.0.0/12 dev enp0s8"


def test_nothing_is_left_unexplained(report: dict[str, Any]) -> None:
    assert report["unexplained_symptoms"] == []


def test_every_form_gives_the_same_diagnosis(reports: dict[str, dict[str, Any]]) -> None:
    def summary(r: dict[str, Any]) -> list[tuple[str, str | None, tuple[str, ...], tuple[str, ...]]]:
        return [(c["kind"], c["node"], tuple(e["key"] for e in c["explains"]),
                 tuple(f["command"] for f in c["fix"])) for c in r["root_causes"]]

    first = summary(reports[SOURCES[0]])
    for source in SOURCES[1:]:
        assert summary(reports[source]) == first, source


# -- the node alone ------------------------------------------------------------------------------


def test_trace_from_admin_host_to_the_kubernetes_service_is_enetunreach() -> None:
    result = CliRunner().invoke(app, ["trace", "--node", str(BUNDLE / "nodes" / "admin"),
                                      "--from", "host", "--to", "10.96.0.1:443",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    trace = json.loads(result.stdout)
    assert (trace["node"], trace["verdict"], trace["errno"]) == ("admin", "unroutable",
                                                                  "ENETUNREACH")
    assert any("192.168.56.3:6443" in json.dumps(step) for step in trace["unreached"])
