# ruff: noqa: E501  (kubectl tables, logs and iptables rules are pasted in their real width)
"""A04: kube-proxy cannot find its Node and falls back to nodeIP 127.0.0.1."""

from __future__ import annotations

from netsleuth.diagnose.detectors.kube_proxy_node_ip import kube_proxy_node_ip
from netsleuth.diagnose.findings import Role
from tests.diagnose.sectiona import causes, run, scenario, transcript


def test_fqdn_hostname_against_short_node_names() -> None:
    found = run(kube_proxy_node_ip, scenario("a04-kube-proxy-fqdn"))
    cause = causes(found, "kube-proxy-node-not-found")
    assert [(c.node, c.key) for c in cause] == [("node07", "cause:kube-proxy-node-not-found@node07")]
    assert "kube-proxy-nodeip-fallback@node07" in cause[0].explains
    assert "node07.infra.example.com" in cause[0].title and "'node07'" in cause[0].title
    symptoms = [f for f in found if f.role == Role.SYMPTOM]
    assert [s.key for s in symptoms] == ["kube-proxy-nodeip-fallback@node07"]
    assert cause[0].confidence >= 0.9


NEW_FORMAT = """\
ubuntu@bastion:~$ kubectl get nodes
NAME                          STATUS   ROLES    AGE   VERSION
ip-10-0-23-78.ec2.internal    Ready    <none>   3d    v1.21.14
ip-10-0-41-9.ec2.internal     Ready    <none>   3d    v1.21.14
ubuntu@bastion:~$ kubectl -n kube-system logs kube-proxy-8tq4w
E1101 07:45:11.124028       1 node.go:161] Failed to retrieve node info: nodes "ip-10-0-23-78" not found
I1101 07:45:11.124136       1 server.go:843] "Can't determine this node's IP, assuming 127.0.0.1; if this is incorrect, please set the --bind-address flag"
I1101 07:45:11.124159       1 server_others.go:138] "Detected node IP" address="127.0.0.1"
I1101 07:45:11.447948       1 server_others.go:206] "Using iptables Proxier"
"""


def test_structured_log_format_and_short_name_against_fqdn_nodes() -> None:
    found = causes(run(kube_proxy_node_ip, transcript(NEW_FORMAT)))
    assert len(found) == 1
    assert "'ip-10-0-23-78.ec2.internal'" in found[0].title


def test_lookup_that_failed_on_the_network_is_only_a_symptom() -> None:
    text = NEW_FORMAT.replace(
        'Failed to retrieve node info: nodes "ip-10-0-23-78" not found',
        'Failed to retrieve node info: Get "https://127.0.0.1:6443/api/v1/nodes/ip-10-0-23-78": '
        'dial tcp 127.0.0.1:6443: connect: connection refused')
    found = run(kube_proxy_node_ip, transcript(text))
    assert not causes(found)
    assert [f.kind for f in found] == ["kube-proxy-nodeip-fallback"]


def test_existing_node_name_is_not_a_mismatch() -> None:
    text = NEW_FORMAT.replace('nodes "ip-10-0-23-78" not found',
                              'nodes "ip-10-0-23-78.ec2.internal" not found')
    assert not causes(run(kube_proxy_node_ip, transcript(text)))


def test_healthy_inputs() -> None:
    assert not run(kube_proxy_node_ip, scenario("healthy-multinic-kubespray"))
