# ruff: noqa: E501  (kubectl tables, logs and iptables rules are pasted in their real width)
"""F50: TLS / kubeconfig failures mistaken for network faults."""

from __future__ import annotations

from ipaddress import ip_address

from netsleuth.datapath.trace_model import Verdict
from netsleuth.diagnose.detectors._nodenet import trace
from netsleuth.diagnose.detectors.tls_not_network import tls_not_network
from netsleuth.diagnose.engine import diagnose
from tests.diagnose.sectiona import causes, run, scenario, transcript


def test_certificate_without_the_new_address() -> None:
    found = causes(run(tls_not_network, scenario("f50-x509-readdressed")))
    assert [(f.kind, f.node) for f in found] == [("not-a-network-fault", "homelab")]
    f = found[0]
    assert "conn-error:TLS@homelab" in f.explains
    assert "re-addressed" in f.detail
    assert "microk8s refresh-certs" in f.fix[0].command  # the distribution's own tool
    # The transport path is shown to exist.
    assert any(e.source == "trace" and "exists" in e.text for e in f.evidence)


def test_network_causes_do_not_claim_tls_symptoms() -> None:
    report = diagnose(scenario("f50-x509-readdressed"))
    assert [c.finding.kind for c in report.causes] == ["not-a-network-fault"]
    assert not report.unexplained


def test_kubectl_without_kubeconfig() -> None:
    ev = transcript("""\
ubuntu@cp-1:~$ kubectl get pods -A
The connection to the server localhost:8080 was refused - did you specify the right host or port?
""")
    found = causes(run(tls_not_network, ev))
    assert [f.node for f in found] == [None]
    assert "conn-error:ECONNREFUSED@cp-1" in found[0].explains
    assert "admin.conf" in found[0].fix[0].command


def test_kubelet_serving_certificate_not_approved() -> None:
    ev = transcript("""\
admin@bastion:~$ kubectl -n monitoring logs prometheus-node-exporter-7xq2p
Error from server: Get "https://10.0.12.31:10250/containerLogs/monitoring/prometheus-node-exporter-7xq2p/node-exporter": remote error: tls: internal error
""")
    found = causes(run(tls_not_network, ev))
    assert len(found) == 1 and "kubelet-unreachable@?" in found[0].explains
    assert "certificate approve" in found[0].fix[0].command


def test_expired_certificates() -> None:
    ev = transcript("""\
root@master01:~# kubectl get nodes
Unable to connect to the server: x509: certificate has expired or is not yet valid: current time 2024-03-05T10:12:44+08:00 is after 2024-02-28T02:11:09Z
""")
    found = causes(run(tls_not_network, ev))
    assert len(found) == 1 and "kubeadm certs renew all" in found[0].fix[0].command


def test_transport_trace_uses_the_clients_own_state() -> None:
    found = causes(run(tls_not_network, scenario("f50-x509-readdressed")))
    assert found[0].node == "homelab"
    # homelab dials its own address: delivered locally, i.e. the path exists.
    ev = scenario("f50-x509-readdressed")
    assert trace(ev.nodes["homelab"], ip_address("192.168.0.142"), 16443).verdict == \
        Verdict.DELIVERED_LOCAL
