"""kubectl JSON/YAML, `kubectl cluster-info dump` (directory and stdout) and API client JSON."""

from __future__ import annotations

import json
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from netsleuth.errors import ParseError
from netsleuth.model.k8s import derive_cluster_facts
from netsleuth.parse.kubectl_json import (
    infer_kind,
    load_cluster_info_dump,
    objects_from_api,
    parse_kube_json,
    parse_kube_yaml,
)

DUMP = Path(__file__).resolve().parents[1] / "data" / "kubectl" / "cluster-info-dump"


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
