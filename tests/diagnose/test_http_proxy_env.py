"""F48: HTTP proxy variables hijack in-cluster calls."""

from __future__ import annotations

import pytest

from netsleuth.diagnose.detectors.http_proxy_env import http_proxy_env, no_proxy_matches
from tests.diagnose.sectiona import SCENARIOS, causes, run, scenario, transcript


def test_containerd_proxy_breaks_the_calico_cni_plugin() -> None:
    found = causes(run(http_proxy_env, scenario("f48-proxy-calico-cni")))
    assert [(f.kind, f.node) for f in found] == [("http-proxy-hijack", "k8s-w04")]
    f = found[0]
    assert {"sandbox-churn@k8s-w04", "pod-no-ip@k8s-w04"} <= set(f.explains)
    assert "Service Unavailable" in " ".join(e.text for e in f.evidence)
    fix = f.fix[0].command
    for needed in (".svc", ".cluster.local", "10.96.0.1", "10.20.0.0/16"):
        assert needed in fix
    assert "systemctl restart containerd" in fix
    assert f.confidence >= 0.9


def test_complete_no_proxy_is_not_flagged() -> None:
    text = (SCENARIOS / "f48-proxy-calico-cni" / "input.txt").read_text()
    good = "localhost,127.0.0.1,.corp.example,10.20.0.0/16,10.96.0.0/12,10.244.0.0/16,.svc,.cluster.local"
    text = text.replace("localhost,127.0.0.1,.corp.example,10.20.0.0/16", good)
    assert not run(http_proxy_env, transcript(text))


def test_proxy_in_a_pod_spec() -> None:
    ev = transcript("""\
dev@laptop:~$ kubectl -n batch describe pod report-sync-28514400-vx8kq
Name:             report-sync-28514400-vx8kq
Namespace:        batch
Priority:         0
Service Account:  report-sync
Node:             ip-10-4-1-77.eu-west-1.compute.internal/10.4.1.77
Start Time:       Tue, 05 Mar 2024 10:00:02 +0100
Labels:           job-name=report-sync-28514400
Status:           Failed
IP:               10.4.1.201
Containers:
  sync:
    Container ID:   containerd://4f0c2b9e7d1a
    Image:          registry.example.net/batch/report-sync:1.8.2
    State:          Terminated
      Reason:       Error
      Exit Code:    1
    Ready:          False
    Restart Count:  0
    Environment:
      HTTPS_PROXY:  http://egress-proxy.infra:8080
      NO_PROXY:     .internal,169.254.169.254
    Mounts:
      /var/run/secrets/kubernetes.io/serviceaccount from kube-api-access-6xk2d (ro)
Events:            <none>
dev@laptop:~$ kubectl -n batch logs report-sync-28514400-vx8kq
Error: Get "https://172.20.0.1:443/api/v1/namespaces/batch/configmaps/report-sync": Forbidden
""")
    found = causes(run(http_proxy_env, ev))
    assert len(found) == 1
    assert "pod batch/report-sync-28514400-vx8kq" in found[0].title
    assert "172.20.0.1" in found[0].fix[0].command


@pytest.mark.parametrize(("no_proxy", "host", "bypass"), [
    ("10.96.0.0/12", "10.96.0.1", True),
    ("10.96.0.0/12", "10.112.0.1", False),
    (".svc,.cluster.local", "kubernetes.default.svc", True),
    (".svc", "svc", False),  # a leading dot matches subdomains only
    ("cluster.local", "kube-dns.kube-system.svc.cluster.local", True),
    ("example.com:8080", "example.com", True),
    ("*", "10.96.0.1", True),
    ("", "127.0.0.1", True),  # loopback never goes to the proxy
    ("", "localhost", True),
    ("10.96.0.1", "10.96.0.10", False),
])
def test_go_no_proxy_rules(no_proxy: str, host: str, bypass: bool) -> None:
    assert no_proxy_matches(no_proxy, host) is bypass
