"""kubectl JSON/YAML, `kubectl cluster-info dump` (directory and stdout) and API client JSON."""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
from collections.abc import Callable
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client import ApiClient
from typer.testing import CliRunner

from netsleuth.cli import app
from netsleuth.diagnose.evidence import evidence_from_transcript
from netsleuth.errors import ParseError, SnapshotError
from netsleuth.model.k8s import ClusterObjects, derive_cluster_facts
from netsleuth.parse.kubectl_json import (
    infer_kind,
    load_cluster_info_dump,
    looks_like_cluster_info_dump,
    objects_from_api,
    parse_kube_json,
    parse_kube_yaml,
)

ROOT = Path(__file__).resolve().parents[2]
DUMP = ROOT / "tests" / "data" / "kubectl" / "cluster-info-dump"
COLLECT_DUMP = ROOT / "tests" / "data" / "collect" / "cluster-info-dump"
SEED = ROOT / "examples" / "seed-incident"


def _dump_files() -> dict[str, str]:
    return {
        str(p.relative_to(DUMP)): p.read_text(encoding="utf-8")
        for p in sorted(DUMP.rglob("*"))
        if p.is_file()
    }


def test_cluster_info_dump_directory() -> None:
    objs = load_cluster_info_dump(_dump_files(), "dump/")
    assert objs.problems == ()
    admin, node2 = objs.nodes
    assert admin.internal_ips == (ip_address("192.168.56.3"),)
    assert admin.pod_cidrs == (ip_network("10.10.0.0/24"),)
    assert admin.roles == ("master",) and admin.kubelet_version == "v1.17.0"
    assert node2.ready is False and node2.status == "NotReady"
    ready = node2.condition("Ready")
    assert ready is not None and "cni config uninitialized" in (ready.message or "")
    calico = objs.pods[0]
    assert calico.status == "CrashLoopBackOff" and calico.host_network is True
    assert calico.ready == "0/1" and calico.restarts == 57
    assert calico.containers[0].last_exit_code == 1
    assert calico.containers[0].env["NODENAME"] == "<from fieldRef>"
    assert calico.source.file == "dump/kube-system/pods.json"
    assert calico.source.line == 8  # the line of its metadata name
    (event,) = objs.events
    assert (event.object, event.count, event.source_host) == ("pod/calico-node-7kvkf", 304, "node2")
    logs = [log for log in objs.logs if log.net_error is not None]
    assert len(logs) == 1 and logs[0].count == 2
    assert (logs[0].pod, logs[0].container, logs[0].namespace) == (
        "calico-node-7kvkf",
        "calico-node",
        "kube-system",
    )
    assert logs[0].source == logs[0].source.__class__("dump/kube-system/calico-node-7kvkf/logs.txt", 3)
    facts = derive_cluster_facts(objs)
    assert [f.value for f in facts.apiserver_endpoints] == ["192.168.56.3:6443"]
    assert [str(f.value) for f in facts.cluster_dns_ips] == ["10.96.0.10"]
    assert {str(f.value) for f in facts.pod_cidrs} >= {"10.10.0.0/16", "10.10.0.0/24"}
    assert facts.k8s_version[0].value == "v1.17.0"
    assert facts.cni[0].value == "calico"


def test_cluster_info_dump_stdout_form() -> None:
    files = _dump_files()
    text = "\n".join(files[k] for k in ("nodes.json", "kube-system/pods.json"))
    text += "\n" + files["kube-system/calico-node-7kvkf/logs.txt"]
    objs = parse_kube_json(text, "dump.txt")
    assert [n.name for n in objs.nodes] == ["admin", "node2"]
    assert [p.name for p in objs.pods] == ["calico-node-7kvkf", "kube-apiserver-admin"]
    assert sum(log.count for log in objs.logs) == 3


def test_broken_file_in_dump_is_reported_not_fatal() -> None:
    files = _dump_files()
    files["kube-system/services.json"] = '{"kind": "ServiceList", "items": [\n  {"metadata": '
    objs = load_cluster_info_dump(files)
    assert len(objs.problems) == 1 and "kube-system/services.json:2" in objs.problems[0]
    assert objs.services == () and len(objs.pods) == 2


def test_invalid_json_raises_parse_error_with_line() -> None:
    with pytest.raises(ParseError) as err:
        parse_kube_json('{\n  "kind": "Pod",\n  "metadata": {,\n}', "pod.json", 40)
    assert err.value.source == "pod.json" and err.value.line == 42


def test_sanitized_api_client_json() -> None:
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="coredns-6d4b75cb6d-2qkxz", namespace="kube-system"),
        spec=client.V1PodSpec(
            node_name="worker-1",
            containers=[client.V1Container(name="coredns", image="registry.k8s.io/coredns:v1.9.3")],
        ),
        status=client.V1PodStatus(
            phase="Running",
            pod_ip="10.244.1.7",
            host_ip="10.0.0.11",
            container_statuses=[
                client.V1ContainerStatus(
                    name="coredns",
                    image="registry.k8s.io/coredns:v1.9.3",
                    image_id="",
                    ready=False,
                    restart_count=4,
                    state=client.V1ContainerState(running=client.V1ContainerStateRunning(started_at=None)),
                )
            ],
        ),
    )
    svc = client.V1Service(
        metadata=client.V1ObjectMeta(name="kubernetes", namespace="default"),
        spec=client.V1ServiceSpec(
            cluster_ip="10.100.0.1",
            cluster_ips=["10.100.0.1"],
            ports=[client.V1ServicePort(name="https", port=443, target_port=6443, protocol="TCP")],
        ),
    )
    slice_ = client.V1EndpointSlice(
        address_type="IPv4",
        metadata=client.V1ObjectMeta(
            name="kubernetes",
            namespace="default",
            labels={"kubernetes.io/service-name": "kubernetes"},
        ),
        endpoints=[
            client.V1Endpoint(addresses=["10.0.0.10"], conditions=client.V1EndpointConditions(ready=True))
        ],
        ports=[client.DiscoveryV1EndpointPort(name="https", port=6443, protocol="TCP")],
    )
    api = ApiClient()
    docs = [
        api.sanitize_for_serialization(client.V1PodList(items=[pod])),
        api.sanitize_for_serialization(client.V1ServiceList(items=[svc])),
        api.sanitize_for_serialization(client.V1EndpointSliceList(items=[slice_])),
    ]
    for doc in docs:  # the client drops kind on items; shape inference must cope
        assert "kind" not in doc["items"][0]
    objs = parse_kube_json("\n".join(json.dumps(d, indent=2) for d in docs), "api.json")
    (p,) = objs.pods
    assert (p.key, p.node, p.status, p.ips) == (
        "kube-system/coredns-6d4b75cb6d-2qkxz",
        "worker-1",
        "Running",
        (ip_address("10.244.1.7"),),
    )
    assert p.host_network is False and p.containers[0].restart_count == 4
    (s,) = objs.services
    assert s.cluster_ips == (ip_address("10.100.0.1"),) and s.ports[0].target_port == "6443"
    (es,) = objs.endpoints
    assert es.kind == "EndpointSlice" and es.service == "kubernetes"
    facts = derive_cluster_facts(objs)
    assert [f.value for f in facts.apiserver_endpoints] == ["10.0.0.10:6443"]
    # a dict straight from the client works without the text round trip
    assert objects_from_api(docs[0], "mem").pods[0].name == "coredns-6d4b75cb6d-2qkxz"


def test_yaml_documents() -> None:
    text = (
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: kube-proxy\n"
        "  namespace: kube-system\n"
        "data:\n"
        "  config.conf: |-\n"
        "    apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
        "    clusterCIDR: 10.244.0.0/16\n"
        '    mode: ""\n'
        "---\n"
        "apiVersion: v1\n"
        "kind: Endpoints\n"
        "metadata:\n"
        "  name: kube-dns\n"
        "  namespace: kube-system\n"
        "subsets:\n"
        "- notReadyAddresses:\n"
        "  - ip: 10.244.0.5\n"
        "    nodeName: cp\n"
        "  ports:\n"
        "  - name: dns\n"
        "    port: 53\n"
        "    protocol: UDP\n"
    )
    objs = parse_kube_yaml(text, "x.yaml", 100)
    (cm,) = objs.configmaps
    assert cm.source.line == 103
    (ep,) = objs.endpoints
    assert ep.addresses[0].ready is False and ep.ready_addresses == ()
    assert ep.source.line == 114
    facts = derive_cluster_facts(objs)
    assert [f.value for f in facts.kube_proxy_mode] == ["iptables"]
    assert [str(f.value) for f in facts.pod_cidrs] == ["10.244.0.0/16"]


def test_yaml_error_names_line() -> None:
    with pytest.raises(ParseError) as err:
        parse_kube_yaml("kind: Pod\nmetadata:\n  name: [unclosed\n", "p.yaml", 1)
    assert err.value.source == "p.yaml" and err.value.line >= 3


@pytest.mark.parametrize(
    ("obj", "kind"),
    [
        ({"spec": {"containers": []}}, "Pod"),
        ({"status": {"nodeInfo": {}}}, "Node"),
        ({"spec": {"clusterIP": "10.0.0.1"}}, "Service"),
        ({"subsets": []}, "Endpoints"),
        ({"addressType": "IPv4"}, "EndpointSlice"),
        ({"involvedObject": {}}, "Event"),
        ({"data": {}}, "ConfigMap"),
        ({"metadata": {}}, None),
    ],
)
def test_infer_kind(obj: dict[str, object], kind: str | None) -> None:
    assert infer_kind(obj) == kind


# --- wrong-typed and wrong-shaped input -----------------------------------------------------
#
# Everything below is valid JSON/YAML whose values have the wrong type or shape. Each object
# that cannot be read becomes one `problems` line naming file, line, kind and name; the other
# objects still load; nothing raises.


def _seed_list(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SEED / "cluster" / name).read_text())
    return data


def _names(objs: ClusterObjects) -> set[str | None]:
    return {o.name for group in (objs.pods, objs.services, objs.nodes, objs.endpoints,
                                  objs.configmaps) for o in group}


def test_pod_with_list_metadata_is_reported_and_the_rest_load() -> None:
    pods = _seed_list("pods.json")
    pods["items"][0]["metadata"] = [1]
    objs = parse_kube_json(json.dumps(pods, indent=2), "cluster/pods.json")
    assert len(objs.pods) == len(pods["items"]) - 1
    (problem,) = objs.problems
    # a nameless object is placed where the scan stands: the start of the document here
    assert problem == ("cluster/pods.json:1: malformed Pod (no name): metadata: expected an "
                       "object, got [1]")


@pytest.mark.parametrize(("port", "shown"), [(None, "None"), ("https", "'https'"),
                                              ({"a": 1}, "{'a': 1}"), (True, "True")])
def test_service_port_that_is_not_a_number(port: object, shown: str) -> None:
    services = _seed_list("services.json")
    services["items"][0]["spec"]["ports"][0]["port"] = port
    objs = parse_kube_json(json.dumps(services, indent=2), "svc.json")
    assert [s.name for s in objs.services] == ["kube-dns"]
    (problem,) = objs.problems
    assert problem == (f"svc.json:17: malformed Service kubernetes: spec.ports[0].port: "
                       f"expected a port number, got {shown}")


def test_service_json_in_a_transcript_with_a_named_port() -> None:
    text = ('$ kubectl get svc kubernetes -o json\n'
            '{"kind":"Service","metadata":{"name":"kubernetes"},"spec":{"clusterIP":"10.96.0.1",'
            '"ports":[{"port":"https"}]}}\n')
    ev = evidence_from_transcript(text, "t.txt")
    assert ev.objects.services == ()
    assert any("t.txt:2: malformed Service kubernetes: spec.ports[0].port" in p
               for p in ev.problems), ev.problems


@pytest.mark.parametrize("mutate", [
    lambda d: d["items"][0].__setitem__("metadata", [1]),
    lambda d: d["items"][0]["metadata"].__setitem__("labels", "x"),
    lambda d: d["items"][0]["spec"].__setitem__("containers", {"a": 1}),
    lambda d: d["items"][0]["status"].__setitem__("containerStatuses", [1, None, "x"]),
    lambda d: d["items"][0]["status"].__setitem__("podIP", {"ip": 1}),
], ids=["metadata-list", "labels-str", "containers-map", "statuses-scalars", "podip-map"])
def test_diagnose_a_bundle_with_wrong_typed_pods_does_not_crash(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None]
) -> None:
    bundle = tmp_path / "seed"
    shutil.copytree(SEED, bundle)
    pods = _seed_list("pods.json")
    mutate(pods)
    (bundle / "cluster" / "pods.json").write_text(json.dumps(pods, indent=2))
    result = CliRunner().invoke(app, ["diagnose", str(bundle), "--format", "json"])
    assert result.exit_code in (0, 3), result.output
    json.loads(result.stdout)


def test_service_port_null_in_a_bundle_does_not_crash(tmp_path: Path) -> None:
    bundle = tmp_path / "seed"
    shutil.copytree(SEED, bundle)
    services = _seed_list("services.json")
    services["items"][0]["spec"]["ports"][0]["port"] = None
    (bundle / "cluster" / "services.json").write_text(json.dumps(services, indent=2))
    result = CliRunner().invoke(app, ["diagnose", str(bundle), "--format", "json"])
    assert result.exit_code in (0, 3), result.output


@pytest.mark.parametrize(("text", "expected"), [
    ("[1, 2]", ["f.json:1: expected a Kubernetes object (a JSON object), got 1",
                "f.json:1: expected a Kubernetes object (a JSON object), got 2"]),
    ('{"items": "x"}', ["f.json:1: expected 'items' to be a list of Kubernetes objects, "
                        "got 'x'"]),
    ('\n{"kind": "List",\n "items": [1, "a"]}',
     ["f.json:2: expected a Kubernetes object (a JSON object) in 'items', got 1",
      "f.json:2: expected a Kubernetes object (a JSON object) in 'items', got 'a'"]),
    ('\n\n5', ["f.json:3: expected a Kubernetes object (a JSON object), got 5"]),
    ('[[{"kind": "Pod", "metadata": {"name": "p"}}]]',
     ['f.json:1: expected a Kubernetes object (a JSON object), got '
      "[{'kind': 'Pod', 'metadata': {'name': 'p'}}]"]),
])
def test_wrong_shaped_documents_are_reported(text: str, expected: list[str]) -> None:
    objs = parse_kube_json(text, "f.json")
    assert list(objs.problems) == expected
    assert _names(objs) == set()


def test_wrong_shaped_items_do_not_hide_the_good_ones() -> None:
    services = _seed_list("services.json")
    services["items"].insert(1, 7)
    objs = parse_kube_json(json.dumps(services, indent=2), "s.json")
    assert [s.name for s in objs.services] == ["kubernetes", "kube-dns"]
    (problem,) = objs.problems
    assert "s.json:" in problem and "in 'items', got 7" in problem


def test_wrong_shaped_yaml_is_reported() -> None:
    objs = parse_kube_yaml("kind: List\nitems: 3\n---\n- 1\n", "x.yaml")
    assert list(objs.problems) == [
        "x.yaml:1: expected 'items' to be a list of Kubernetes objects, got 3",
        "x.yaml:4: expected a Kubernetes object (a JSON object), got 1",
    ]


def test_self_referencing_yaml_does_not_recurse_forever() -> None:
    objs = parse_kube_yaml("&a [*a, {kind: Pod, metadata: {name: p}}]\n", "r.yaml")
    assert [p.name for p in objs.pods] == ["p"]
    assert len(objs.problems) == 1


@pytest.mark.parametrize("text", ["[" * 100_000, '{"port": ' + "9" * 5000 + "}"],
                         ids=["deep", "long-int"])
def test_json_python_cannot_decode_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_kube_json(text, "deep.json")
    assert err.value.source == "deep.json"


@pytest.mark.parametrize("text", ["[" * 100_000, "port: " + "9" * 5000], ids=["deep", "long-int"])
def test_yaml_python_cannot_decode_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_kube_yaml(text, "deep.yaml")
    assert err.value.source == "deep.yaml"


def test_optional_fields_of_the_wrong_type_are_ignored() -> None:
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": {"x": 1}, "labels": [1]},
           "spec": {"nodeName": ["n"], "containers": [{"name": "c", "ports": [
               {"containerPort": "x"}, {"containerPort": 80, "hostPort": True}]}]},
           "status": {"containerStatuses": [{"name": "c", "restartCount": True, "ready": "yes",
                                             "state": {"terminated": {"exitCode": False}}}]}}
    (p,) = objects_from_api(pod, "p.json").pods
    assert (p.name, p.namespace, p.node, p.labels) == ("p", None, None, {})
    (c,) = p.containers
    assert (c.restart_count, c.ready, c.exit_code, c.ports) == (None, None, None, ("80/TCP",))


# --- hypothesis: random JSON values in realistic objects ------------------------------------

_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)


def _realistic_lists() -> list[dict[str, Any]]:
    docs = [json.loads(p.read_text()) for p in sorted(COLLECT_DUMP.rglob("*.json"))]
    docs += [json.loads(p.read_text()) for p in sorted(DUMP.rglob("*.json"))]
    docs += [_seed_list(n) for n in ("endpoints.json", "configmaps.json")]
    api = ApiClient()
    docs.append({"kind": "List", "items": [
        api.sanitize_for_serialization(client.V1EndpointSlice(
            address_type="IPv4",
            metadata=client.V1ObjectMeta(name="kubernetes", namespace="default",
                                         labels={"kubernetes.io/service-name": "kubernetes"}),
            endpoints=[client.V1Endpoint(addresses=["10.0.0.10"], node_name="cp",
                                         conditions=client.V1EndpointConditions(ready=True))],
            ports=[client.DiscoveryV1EndpointPort(name="https", port=6443, protocol="TCP")],
        )) | {"kind": "EndpointSlice"}]})
    return [d for d in docs if isinstance(d.get("items"), list) and d["items"]]


REALISTIC = _realistic_lists()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """A realistic List, the index of one item, and the List with one value in that item
    replaced by a random JSON value."""
    doc = draw(st.sampled_from(REALISTIC))
    index = draw(st.integers(0, len(doc["items"]) - 1))
    path = draw(st.sampled_from(_paths(doc["items"][index])))
    value = draw(_JSON_VALUES)
    mutated = copy.deepcopy(doc)
    mutated["items"][index] = _replace(mutated["items"][index], path, value)
    return doc, index, mutated


def _identities(objs: ClusterObjects) -> list[tuple[str, str | None, str | None]]:
    out: list[tuple[str, str | None, str | None]] = []
    for kind, group in (("pod", objs.pods), ("svc", objs.services), ("node", objs.nodes),
                        ("ep", objs.endpoints), ("cm", objs.configmaps)):
        out += [(kind, o.namespace if kind != "node" else None, o.name) for o in group]
    out += [("event", e.namespace, e.object) for e in objs.events]
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated(), st.sampled_from(["json", "yaml"]))
def test_random_values_in_realistic_objects_never_crash(
    case: tuple[dict[str, Any], int, dict[str, Any]], form: str
) -> None:
    original, index, mutated = case
    others = copy.deepcopy(original)
    del others["items"][index]
    if form == "json":
        objs = parse_kube_json(json.dumps(mutated, indent=2), "m.json")
        expected = parse_kube_json(json.dumps(others, indent=2), "o.json")
    else:
        objs = parse_kube_yaml(yaml.safe_dump(mutated), "m.yaml")
        expected = parse_kube_yaml(yaml.safe_dump(others), "o.yaml")
    # every other item still loads, whatever became of the mutated one
    got = _identities(objs)
    for ident in _identities(expected):
        assert ident in got
    assert len(objs.problems) <= 1
    for problem in objs.problems:
        assert problem.startswith(f"m.{form}:")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | _JSON_VALUES.map(json.dumps))
def test_random_text_raises_only_parse_error(text: str) -> None:
    for parse in (parse_kube_json, parse_kube_yaml):
        with contextlib.suppress(ParseError):
            parse(text, "r")


# --- is it a cluster-info dump at all? ------------------------------------------------------


def test_dump_directories_look_like_dumps() -> None:
    assert looks_like_cluster_info_dump(_dump_files())
    collect = {str(p.relative_to(COLLECT_DUMP)): p.read_text()
               for p in COLLECT_DUMP.rglob("*") if p.is_file()}
    assert looks_like_cluster_info_dump(collect)
    # without nodes.json (a namespaced dump), the namespace files are enough
    assert looks_like_cluster_info_dump({"shop/pods.json": collect["shop/pods.json"]})
    assert looks_like_cluster_info_dump({"kube-system/calico-node-7kvkf/logs.txt":
                                         _dump_files()["kube-system/calico-node-7kvkf/logs.txt"]})
    # the stdout form saved into a directory
    stdout = (COLLECT_DUMP.parent / "cluster-info-dump.txt").read_text()
    assert looks_like_cluster_info_dump({"dump.json": stdout})


@pytest.mark.parametrize("files", [
    {},
    {"a.json": "{}", "b.txt": "hello", "c/d.log": "x"},
    {"notes/pods.txt": "kubectl get pods", "x/y/logs.txt": "just a log line\n"},
    {"deep/a/b/pods.json": '{"kind": "PodList", "items": []}'},
])
def test_junk_directories_do_not_look_like_dumps(files: dict[str, str]) -> None:
    assert not looks_like_cluster_info_dump(files)
    with pytest.raises(SnapshotError, match="kubectl cluster-info dump") as err:
        load_cluster_info_dump(files, "junk/")
    assert "junk" in str(err.value)


def test_junk_directory_is_refused_by_diagnose(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"hello": 1}')
    (tmp_path / "b.txt").write_text("random words\n")
    result = CliRunner().invoke(app, ["diagnose", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "cluster-info dump" in result.output
