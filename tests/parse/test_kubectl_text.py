"""kubectl describe / get / events text parsers."""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from netsleuth.errors import ParseError
from netsleuth.parse.kubectl_text import (
    normalize_spaces,
    parse_describe_node,
    parse_describe_pod,
    parse_describe_service,
    parse_events_table,
    parse_get_endpoints,
    parse_get_nodes,
    parse_get_pods,
    parse_get_services,
)

DATA = Path(__file__).resolve().parents[1] / "data"
TRANSCRIPTS = DATA / "transcripts"


def _lines(name: str, first: int, last: int) -> str:
    text = (TRANSCRIPTS / name).read_text(encoding="utf-8")
    return "\n".join(text.split("\n")[first - 1 : last])


def test_describe_pod_full() -> None:
    text = (DATA / "kubectl" / "describe_pod_calico_node.txt").read_text()
    pod = parse_describe_pod(text, "pod.txt")
    assert (pod.namespace, pod.name, pod.node) == ("kube-system", "calico-node-7kvkf", "node2")
    assert pod.node_ip == ip_address("192.168.56.5")
    assert pod.ips == (ip_address("192.168.56.5"),)
    assert pod.host_network is True  # the pod IP is the node's IP
    assert (pod.owner_kind, pod.owner_name) == ("DaemonSet", "calico-node")
    assert pod.labels["k8s-app"] == "calico-node"
    init, main = pod.containers
    assert init.init and init.name == "upgrade-ipam" and init.reason == "Completed"
    assert init.command == ("/opt/cni/bin/calico-ipam", "-upgrade")
    assert main.name == "calico-node" and main.state == "waiting"
    assert main.reason == "CrashLoopBackOff"
    assert (main.last_state, main.last_reason, main.last_exit_code) == ("terminated", "Error", 1)
    assert main.ready is False and main.restart_count == 57
    assert main.env["CALICO_IPV4POOL_CIDR"] == "10.10.0.0/16"
    assert main.env["IP"] == "autodetect"
    assert main.readiness is not None and "-felix-ready" in main.readiness
    assert [(c.type, c.status) for c in pod.conditions][:2] == [
        ("Initialized", "True"),
        ("Ready", "False"),
    ]
    assert pod.status == "Running"
    assert [(e.reason, e.count, e.over, e.source_host) for e in pod.events] == [
        ("Unhealthy", 304, "176m", "node2"),
        ("Pulled", 58, "3h", "node2"),
        ("BackOff", 574, "172m", "node2"),
    ]
    assert pod.events[0].object == "pod/calico-node-7kvkf"
    assert pod.events[0].source.line == 98
    assert "dial tcp [::1]:9099" in pod.events[0].message


def test_describe_pod_fragment_with_hints() -> None:
    frag = (
        "    State:          Terminated\n"
        "      Reason:       Completed\n"
        "      Exit Code:    0\n"
        "    Ready:          False\n"
        "    Restart Count:  36\n"
        "Conditions:\n"
        "  Type              Status\n"
        "  Ready             False \n"
        "---\n"
        "Events:\n"
        "  Type    Reason          Age                    From            Message\n"
        "  ----    ------          ----                   ----            -------\n"
        "  Normal  SandboxChanged  4m3s (x575 over 129m)  kubelet, admin  Pod sandbox changed,"
        " it will be killed and re-created.\n"
    )
    pod = parse_describe_pod(frag, "f", 18, name="coredns-x", namespace="kube-system")
    assert pod.key == "kube-system/coredns-x"
    (ctr,) = pod.containers
    assert (ctr.name, ctr.state, ctr.reason, ctr.exit_code) == (None, "terminated", "Completed", 0)
    assert ctr.restart_count == 36 and ctr.source.line == 18
    (event,) = pod.events
    assert (event.count, event.age, event.over) == (575, "4m3s", "129m")
    assert (event.source_component, event.source_host) == ("kubelet", "admin")
    assert event.source.line == 30


def test_describe_service_multi_port() -> None:
    svc = parse_describe_service(_lines("calico_ipvs_loop_zh.txt", 7, 31), "svc", 7)
    assert svc.key == "kube-system/coredns"
    assert svc.cluster_ips == (ip_address("10.233.0.3"),)
    assert svc.selector == {"k8s-app": "kube-dns"}
    assert [(p.name, p.port, p.protocol, p.target_port) for p in svc.ports] == [
        ("dns", 53, "UDP", "53"),
        ("dns-tcp", 53, "TCP", "53"),
        ("metrics", 9153, "TCP", "9153"),
    ]
    assert svc.ports[2].endpoints == ("10.233.105.66:9153", "10.233.92.3:9153")
    assert svc.labels["kubernetes.io/name"] == "coredns"
    assert svc.source.line == 7


def test_describe_service_seed_shape_with_nbsp() -> None:
    text = (
        "Name:\u00a0\u00a0\u00a0\u00a0\u00a0\u00a0\u00a0\u00a0\u00a0 kubernetes\n"
        "Namespace:         default\n"
        "Selector:          <none>\n"
        "Type:              ClusterIP\n"
        "IP:                10.96.0.1\n"
        "Port:              https  443/TCP\n"
        "TargetPort:        6443/TCP\n"
        "Endpoints:         192.168.56.3:6443\n"
        "Session Affinity:  None\n"
        "Events:            <none> \n"
    )
    svc = parse_describe_service(text, "s")
    assert svc.name == "kubernetes" and svc.selector == {}
    assert svc.ports[0].name == "https" and svc.ports[0].target_port == "6443"
    assert svc.endpoints == ("192.168.56.3:6443",)


def test_describe_service_truncated_endpoints_and_nodeport() -> None:
    text = (
        "Name:                     web\n"
        "Namespace:                shop\n"
        "Type:                     NodePort\n"
        "IP:                       10.112.48.207\n"
        "Port:                     <unset>  80/TCP\n"
        "TargetPort:               http/TCP\n"
        "NodePort:                 <unset>  31380/TCP\n"
        "Endpoints:                10.113.21.7:8080,10.113.5.12:8080 + 1 more...\n"
        "External Traffic Policy:  Local\n"
    )
    svc = parse_describe_service(text, "s")
    (port,) = svc.ports
    assert (port.name, port.port, port.target_port, port.node_port) == (None, 80, "http", 31380)
    assert svc.endpoints_truncated and len(svc.endpoints) == 2
    assert svc.external_traffic_policy == "Local"


def test_describe_node() -> None:
    node = parse_describe_node(_lines("cilium_vpn_de.txt", 28, 97), "node", 28)
    assert node.name == "worker-2"
    assert node.internal_ips == (ip_address("10.20.30.12"),) and node.hostname == "worker-2"
    assert node.pod_cidrs == (ip_network("10.0.2.0/24"),)
    assert node.kubelet_version == "v1.29.2" and node.kernel_version == "6.1.0-18-amd64"
    assert node.container_runtime == "containerd://1.6.28"
    assert node.taints == ("node.cilium.io/agent-not-ready:NoSchedule",)
    assert node.ready is True
    cond = node.condition("NetworkUnavailable")
    assert cond is not None and cond.reason == "CiliumIsUp" and not cond.is_true
    assert node.annotations["node.alpha.kubernetes.io/ttl"] == "0"
    assert node.events == ()


def test_get_pods_wide_all_namespaces() -> None:
    pods = parse_get_pods(_lines("flannel_vagrant_en.txt", 14, 27), "p", 14)
    assert len(pods) == 13
    flannel = pods[0]
    assert (flannel.namespace, flannel.name, flannel.node) == (
        "kube-flannel",
        "kube-flannel-ds-2hxkq",
        "k8s-w-2",
    )
    assert flannel.host_network is True  # shares 10.0.2.15 with kube-proxy on k8s-w-2
    netshoot = pods[-1]
    assert netshoot.restarts == 2 and netshoot.ready == "1/1" and netshoot.age == "12m"
    assert netshoot.ips == (ip_address("10.244.2.4"),) and netshoot.host_network is None
    assert pods[3].source.line == 18


def test_get_pods_without_header_and_new_restarts_column() -> None:
    text = (
        "kube-system   calico-node-7kvkf    0/1   CrashLoopBackOff   57 (2m ago)   1d\n"
        "coredns-9d85f5447-sjs2j   0/1   Completed   36   1d   <none>   admin   <none>   <none>\n"
    )
    a, b = parse_get_pods(text, "g")
    assert (a.namespace, a.name, a.status, a.restarts, a.age) == (
        "kube-system",
        "calico-node-7kvkf",
        "CrashLoopBackOff",
        57,
        "1d",
    )
    assert (b.namespace, b.name, b.node, b.ips) == (None, "coredns-9d85f5447-sjs2j", "admin", ())


def test_get_pods_rejects_other_text() -> None:
    with pytest.raises(ParseError) as err:
        parse_get_pods("default via 10.0.0.1 dev eth0\n", "x.txt", 7)
    assert err.value.source == "x.txt" and err.value.line == 7
    assert "READY" in err.value.expected
    assert parse_get_pods("No resources found in default namespace.\n", "x") == ()


def test_get_services_wide() -> None:
    svcs = parse_get_services(_lines("ansible_forwarding_mixed.txt", 7, 11), "s", 7)
    by_name = {s.name: s for s in svcs}
    assert by_name["kube-dns"].cluster_ips == (ip_address("10.112.0.10"),)
    assert [(p.port, p.protocol) for p in by_name["kube-dns"].ports] == [
        (53, "UDP"),
        (53, "TCP"),
        (9153, "TCP"),
    ]
    assert by_name["frontend"].ports[0].node_port == 31380
    assert by_name["orders"].headless and by_name["orders"].cluster_ips == ()
    assert by_name["kubernetes"].selector == {}
    assert by_name["frontend"].selector == {"app": "frontend"}


def test_get_nodes_wide_with_spaces_in_os_image() -> None:
    nodes = parse_get_nodes(_lines("healthy_en.txt", 5, 7), "n", 5)
    assert [(n.name, str(n.internal_ips[0]), n.os_image) for n in nodes] == [
        ("node-a", "172.31.4.10", "Rocky Linux 9.4 (Blue Onyx)"),
        ("node-b", "172.31.4.11", "Rocky Linux 9.4 (Blue Onyx)"),
    ]
    assert nodes[0].roles == ("control-plane",) and nodes[1].roles == ()
    assert all(n.ready for n in nodes)


def test_get_endpoints_and_slices() -> None:
    (ep, kcm, _sched) = parse_get_endpoints(_lines("calico_ipvs_loop_zh.txt", 33, 36), "e", 33)
    assert ep.name == "coredns" and ep.truncated
    assert [str(a.ip) for a in ep.addresses] == ["10.233.105.66", "10.233.92.3"]
    assert kcm.addresses == () and not kcm.truncated
    slices = parse_get_endpoints(_lines("ansible_forwarding_mixed.txt", 13, 15), "s", 13)
    assert [(s.kind, s.service, len(s.addresses)) for s in slices] == [
        ("EndpointSlice", "frontend", 2),
        ("EndpointSlice", "orders", 1),
    ]


@pytest.mark.parametrize(
    ("name", "first", "last", "expected"),
    [
        ("cilium_vpn_de.txt", 20, 23, [("BackOff", "pod/cilium-rt6kd", "kube-system", 1)]),
        (
            "k3s_markdown_repl.md",
            17,
            19,
            [
                ("FailedScheduling", "pod/coredns-59b4f5bfd5-zx9c2", None, 41),
                ("BackOff", "pod/svclb-traefik-edge2", None, 132),
            ],
        ),
    ],
)
def test_get_events_layouts(
    name: str, first: int, last: int, expected: list[tuple[str, str, str | None, int]]
) -> None:
    events = parse_events_table(_lines(name, first, last), "ev", first)
    got = [(e.reason, e.object, e.namespace, e.count) for e in events]
    assert got[: len(expected)] == expected


def test_kubectl_events_new_layout_with_repeat_counts() -> None:
    text = (DATA / "kubectl" / "kubectl_events_new.txt").read_text()
    events = parse_events_table(text, "ev")
    assert [(e.reason, e.count, e.object) for e in events] == [
        ("Starting", 1, "node/worker-3"),
        ("FailedCreatePodSandBox", 2, "pod/coredns-5d78c9869d-x7kq4"),
        ("SandboxChanged", 301, "pod/coredns-5d78c9869d-x7kq4"),
    ]
    assert "already has an IP address different from 10.244.3.1/24" in events[1].message


def test_events_table_errors_name_the_line() -> None:
    with pytest.raises(ParseError) as err:
        parse_events_table("\nhello world\n", "e.txt", 10)
    assert err.value.line == 11 and err.value.text == "hello world"


def test_describe_errors_name_the_line() -> None:
    with pytest.raises(ParseError) as err:
        parse_describe_node("Name:  foo\nFoo:  bar\n", "n.txt", 3)
    assert (err.value.source, err.value.line) == ("n.txt", 3)


def test_normalize_spaces_keeps_columns() -> None:
    assert normalize_spaces("a\u00a0\u00a0b\r\nc\u3000d") == "a  b\nc d"
