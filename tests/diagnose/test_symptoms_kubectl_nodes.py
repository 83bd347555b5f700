# ruff: noqa: E501  (kubectl tables, logs and iptables rules are pasted in their real width)
"""S-KCTL (kubectl's own error messages) and S-NODE (NotReady nodes)."""

from __future__ import annotations

from netsleuth.diagnose.detectors.symptoms_kubectl import kubectl_errors
from netsleuth.diagnose.detectors.symptoms_nodes import nodes_not_ready
from netsleuth.diagnose.findings import Role
from tests.diagnose.sectiona import run, saved_transcript, scenario, transcript


def test_logs_and_exec_failures_point_at_the_pods_node() -> None:
    found = run(kubectl_errors, scenario("a02-vagrant-node-ip"))
    assert {(f.key, f.role) for f in found} == {("kubelet-unreachable@k8s-node-1", Role.SYMPTOM),
                                               ("kubelet-unreachable@?", Role.SYMPTOM)}


def test_dial_backend_to_a_duplicate_address_has_no_single_node() -> None:
    ev = transcript("""\
ubuntu@k8s-cp-1:~$ kubectl get nodes -o wide
NAME       STATUS   ROLES           AGE   VERSION   INTERNAL-IP   EXTERNAL-IP   OS-IMAGE             KERNEL-VERSION      CONTAINER-RUNTIME
k8s-cp-1   Ready    control-plane   41m   v1.28.4   10.0.2.15     <none>        Ubuntu 22.04.3 LTS   5.15.0-88-generic   containerd://1.7.2
k8s-w-1    Ready    <none>          37m   v1.28.4   10.0.2.15     <none>        Ubuntu 22.04.3 LTS   5.15.0-88-generic   containerd://1.7.2
ubuntu@k8s-cp-1:~$ kubectl exec -it netshoot-6d8f7f9c5d-wl2xk -- bash
Error from server: error dialing backend: dial tcp 10.0.2.15:10250: connect: connection refused
""")
    assert [f.key for f in run(kubectl_errors, ev)] == ["kubelet-unreachable@?"]


def test_unable_to_connect_is_keyed_like_a_client_error() -> None:
    found = run(kubectl_errors, scenario("f50-x509-readdressed"))
    assert [f.key for f in found] == ["conn-error:TLS@homelab"]


def test_notready_nodes() -> None:
    found = run(nodes_not_ready, scenario("f49-swap-kubelet"))
    assert [f.key for f in found] == ["node-not-ready@worker-3"]
    assert not run(nodes_not_ready, saved_transcript("healthy_en.txt"))
