# ruff: noqa: E501  (kubectl output is pasted in its real width)
"""The helpers every detector shares: one compiled datapath per node state, and one answer to
"which addresses are this node's", "which pod is behind this address", "where did this
`kubectl exec` run" (detectors/_cluster.py)."""

from __future__ import annotations

import importlib
import pkgutil
from ipaddress import ip_address
from pathlib import Path

import pytest

from netsleuth.datapath.trace import NodeDatapath
from netsleuth.diagnose import detectors
from netsleuth.diagnose.detectors import _bridge, _cluster, _cni_dns, _common, _nodenet, _paths
from netsleuth.diagnose.detectors._cluster import (
    exec_pod,
    k8s_nodes,
    node_ips,
    pod_by_ip,
    route_text,
    sysctl_line,
)
from netsleuth.diagnose.detectors._cni_dns import host_of_exec
from netsleuth.diagnose.evidence import Evidence, evidence_from_transcript
from netsleuth.model.node import NodeState
from netsleuth.parse.iproute2 import parse_ip_route
from netsleuth.snapshot.inputs import load_evidence
from tests.diagnose.cnidns import run, shell, transcript

SCENARIOS = Path(__file__).parent / "scenarios"
TRANSCRIPTS = Path(__file__).resolve().parents[1] / "data" / "transcripts"


def multinic() -> Evidence:
    return load_evidence(SCENARIOS / "healthy-multinic-kubespray" / "input.txt")


# -- one datapath per node state -----------------------------------------------------------------


def test_every_helper_traces_through_the_one_shared_datapath(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[NodeDatapath] = []

    def counting(state: NodeState) -> NodeDatapath:
        # A factory, not a subclass: the compiled NodeDatapath cannot be subclassed here.
        built.append(NodeDatapath(state))
        return built[-1]

    monkeypatch.setattr(_common, "NodeDatapath", counting)
    monkeypatch.setattr(_common, "_DATAPATHS", {})
    ev = multinic()
    node = ev.nodes["kube-w1"]
    pod, peer = ip_address("10.233.97.4"), ip_address("10.233.70.66")
    _paths.route_dev(node, pod)
    _paths.trace_flow(node, _paths.Flow("pod-pod-out", "t", pod, peer, 80, "tcp", "cali7f3e1b2a9d0"))
    _nodenet.trace(node, peer, 80)
    _cni_dns.trace_local(node.state, peer, 80, "tcp")
    _cni_dns.route_to(node.state, peer)
    _bridge.bridge_of(node, pod)
    _common.trace_from_host(node, ip_address("10.233.0.1"), 443)
    assert len(built) == 1
    assert _common.datapath(node.state) is built[0]


def test_no_helper_module_keeps_a_datapath_cache_of_its_own() -> None:
    for mod in (_paths, _nodenet, _cni_dns, _bridge):
        caches = [name for name, value in vars(mod).items()
                  if isinstance(value, dict) and ("DATAPATH" in name.upper() or name == "_DP")]
        assert not caches, (mod.__name__, caches)
    assert isinstance(_common._DATAPATHS, dict)  # the one cache


SHARED = ("k8s_nodes", "node_ips", "pods_on_node", "pod_by_ip", "pod_cidrs", "route_text",
          "sysctl_line", "datapath", "POD_IFACE")


def test_shared_helpers_have_one_definition() -> None:
    for info in pkgutil.iter_modules(detectors.__path__):
        mod = importlib.import_module(f"{detectors.__name__}.{info.name}")
        for name in SHARED:
            value = vars(mod).get(name)
            if value is None:
                continue
            home = _common if name == "datapath" else _cluster
            assert value is getattr(home, name), f"{info.name}.{name} is not {home.__name__}.{name}"


# -- nodes ---------------------------------------------------------------------------------------


GET_NODES = """NAME    STATUS     ROLES           AGE   VERSION   INTERNAL-IP    EXTERNAL-IP   OS-IMAGE             KERNEL-VERSION      CONTAINER-RUNTIME
cp-1    Ready      control-plane   12d   v1.29.4   10.30.0.10     <none>        Ubuntu 22.04.4 LTS   5.15.0-105-generic  containerd://1.7.13
wk-1    NotReady   <none>          12d   v1.29.4   10.30.0.21     <none>        Ubuntu 22.04.4 LTS   5.15.0-105-generic  containerd://1.7.13"""
DESCRIBE_WK1 = """Name:               wk-1
Roles:              <none>
Labels:             kubernetes.io/hostname=wk-1
Annotations:        flannel.alpha.coreos.com/public-ip: 10.30.0.21
CreationTimestamp:  Tue, 02 Apr 2024 09:12:44 +0000
Taints:             node.kubernetes.io/unreachable:NoSchedule
Conditions:
  Type             Status    LastHeartbeatTime                 LastTransitionTime                Reason              Message
  ----             ------    -----------------                 ------------------                ------              -------
  Ready            Unknown   Sun, 14 Apr 2024 07:55:02 +0000   Sun, 14 Apr 2024 07:56:10 +0000   NodeStatusUnknown   Kubelet stopped posting node status.
Addresses:
  InternalIP:  10.30.0.21
  Hostname:    wk-1
PodCIDR:                      10.244.1.0/24
PodCIDRs:                     10.244.1.0/24
Events:              <none>"""


def test_views_of_one_node_are_merged_under_its_name() -> None:
    ev = evidence_from_transcript(transcript(
        shell("cp-1", "kubectl get nodes -o wide", GET_NODES),
        shell("cp-1", "kubectl describe node wk-1", DESCRIBE_WK1)), "incident.txt")
    wk1 = k8s_nodes(ev)["wk-1"]
    assert wk1.status == "NotReady"  # from `get nodes`
    assert wk1.condition("Ready") is not None  # from `describe`
    assert [str(n) for n in wk1.pod_cidrs] == ["10.244.1.0/24"]
    assert wk1.annotations.get("flannel.alpha.coreos.com/public-ip") == "10.30.0.21"
    assert [str(ip) for ip in wk1.internal_ips] == ["10.30.0.21"]


def test_node_ips_are_the_addresses_the_cluster_uses_not_every_nic() -> None:
    # kube-w1 also has 10.10.10.21 on its management NIC and 10.233.97.0 on vxlan.calico:
    # its own, but no other node sends cluster traffic there.
    ev = multinic()
    assert node_ips(ev, "kube-w1") == [ip_address("172.16.20.21")]


def test_host_network_pods_own_no_address() -> None:
    ev = load_evidence(TRANSCRIPTS / "flannel_vagrant_en.txt")
    assert pod_by_ip(ev, ip_address("10.0.2.15")) is None  # kube-proxy, flannel, etcd...: the node's
    pod = pod_by_ip(ev, ip_address("10.244.2.4"))
    assert pod is not None and pod.name == "netshoot-6d8f7f9c5d-wl2xk"
    assert pod_by_ip(ev, None) is None


# -- quoting -------------------------------------------------------------------------------------


def test_route_text_is_the_line_as_read_or_reformatted_json() -> None:
    text = parse_ip_route("10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink\n", "r.txt")[0]
    assert route_text(text) == "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"
    js = parse_ip_route('[{"dst":"10.244.2.0/24","gateway":"10.244.2.0","dev":"flannel.1","flags":["onlink"]}]',
                        "r.json")[0]
    assert route_text(js).startswith("10.244.2.0/24 via 10.244.2.0 dev flannel.1")
    assert route_text('{"dst":"default","gateway":"10.0.0.1","dev":"eth0","flags":[]}') == \
        "default via 10.0.0.1 dev eth0"
    assert route_text("default via 10.0.0.1 dev eth0") == "default via 10.0.0.1 dev eth0"


def test_sysctl_line_from_a_node_its_state_or_its_sysctls() -> None:
    ev = multinic()
    node = ev.nodes["kube-w1"]
    key = "net.ipv4.conf.all.rp_filter"
    lines = {sysctl_line(x, key) for x in (node, node.state, node.state.sysctls)}
    assert len(lines) == 1
    (only,) = lines
    assert only.text == f"{key} = 1" and only.line > 0


# -- where a `kubectl exec` ran ------------------------------------------------------------------


PODS = """NAMESPACE   NAME                        READY   STATUS    RESTARTS   AGE   IP            NODE    NOMINATED NODE   READINESS GATES
shop        web-7d9f8b6c5d-x2x9z        1/1     Running   0          3h    10.244.1.7    wk-1    <none>           <none>
shop        web-7d9f8b6c5d-q8r4m        1/1     Running   0          3h    10.244.1.9    wk-1    <none>           <none>
shop        api-6b5f8d7c9-h2kxw         1/1     Running   0          3h    10.244.2.4    wk-2    <none>           <none>
shop        api-6b5f8d7c9-zz7pq         1/1     Running   0          3h    10.244.1.12   wk-1    <none>           <none>"""


def exec_evidence(*cmds: tuple[str, str]) -> Evidence:
    return evidence_from_transcript(transcript(
        shell("cp-1", "kubectl get pods -A -o wide", PODS),
        *(shell("cp-1", c, o) for c, o in cmds)), "incident.txt")


TIMEOUT = "curl: (28) Connection timed out after 3001 milliseconds\ncommand terminated with exit code 28"


def test_exec_without_namespace_flag_finds_the_pod_in_the_contexts_namespace() -> None:
    # kubectl's context namespace is "shop": no -n typed, the transcript says "default".
    ev = exec_evidence(("kubectl exec -it web-7d9f8b6c5d-x2x9z -- curl -sS -m 3 http://10.244.2.4:8080/", TIMEOUT))
    raw = next(r for r in ev.raw if r.pod)
    assert host_of_exec(raw, ev) == ("wk-1", "web-7d9f8b6c5d-x2x9z")
    assert [f.key for f in run(ev, "S-CLIENT")] == ["conn-error:TIMEOUT@wk-1"]


def test_exec_into_a_deployment_uses_its_pods_node() -> None:
    ev = exec_evidence(("kubectl -n shop exec deploy/web -- curl -sS -m 3 http://10.244.2.4:8080/", TIMEOUT))
    raw = next(r for r in ev.raw if r.pod)
    assert host_of_exec(raw, ev) == ("wk-1", "web")
    assert [f.key for f in run(ev, "S-CLIENT")] == ["conn-error:TIMEOUT@wk-1"]


def test_exec_into_a_deployment_spread_over_nodes_stays_unknown() -> None:
    ev = exec_evidence(("kubectl -n shop exec deploy/api -- curl -sS -m 3 http://10.244.1.7:8080/", TIMEOUT))
    assert exec_pod(ev, "shop/api") == (None, "api")
    assert [f.key for f in run(ev, "S-CLIENT")] == ["conn-error:TIMEOUT@?"]
