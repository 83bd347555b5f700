# ruff: noqa: E501  (kubectl tables and logs are pasted in their real width)
"""D30: CNI plugin binaries missing (RKE2/containerd events, `ls /opt/cni/bin`)."""

from __future__ import annotations

from tests.diagnose.cnidns import ev_transcript, kinds, report, run, shell, transcript

DESCRIBE = """Name:             coredns-6799fbcd5-v7m2k
Namespace:        kube-system
Priority:         2000000000
Node:             agent-2/10.1.1.32
Start Time:       Wed, 15 May 2024 13:20:44 +0000
Labels:           k8s-app=kube-dns
Status:           Pending
IP:
Controlled By:    ReplicaSet/coredns-6799fbcd5
Containers:
  coredns:
    Image:         rancher/mirrored-coredns-coredns:1.10.1
    State:          Waiting
      Reason:       ContainerCreating
    Ready:          False
    Restart Count:  0
Events:
  Type     Reason                  Age                  From               Message
  ----     ------                  ----                 ----               -------
  Normal   Scheduled               4m                   default-scheduler  Successfully assigned kube-system/coredns-6799fbcd5-v7m2k to agent-2
  Warning  FailedCreatePodSandBox  4m                   kubelet            Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "2b1f9c0e4a": plugin type="loopback" failed (add): failed to find plugin "loopback" in path [/opt/cni/bin]
  Normal   SandboxChanged          3m58s (x12 over 4m)  kubelet            Pod sandbox changed, it will be killed and re-created."""

LS = """bandwidth  calico  calico-ipam  flannel  install"""


def incident(with_listing: bool = True) -> str:
    parts = [shell("server-1", "kubectl -n kube-system describe pod coredns-6799fbcd5-v7m2k", DESCRIBE)]
    if with_listing:
        parts.append(shell("agent-2", "ls /opt/cni/bin", LS))
    return transcript(*parts)


def test_missing_loopback_proven_by_the_listing() -> None:
    found = run(ev_transcript(incident()), "D30")
    assert kinds(found) == [("cni-plugin-missing", "agent-2")]
    f = found[0]
    assert f.confidence >= 0.95
    assert "tar -C /opt/cni/bin -xz" in f.fix[0].command
    assert any("ls /opt/cni/bin" in e.text for e in f.evidence)


def test_without_listing_still_named_from_the_error() -> None:
    found = run(ev_transcript(incident(False)), "D30")
    assert kinds(found) == [("cni-plugin-missing", "agent-2")]
    assert found[0].confidence < 0.95


def test_chain_sandbox_churn_and_dns() -> None:
    r = report(ev_transcript(incident()))
    first = r.causes[0]
    assert first.finding.kind == "cni-plugin-missing"
    assert "sandbox-churn@agent-2" in {f.key for f in first.explained}


def test_plugin_present_is_quiet() -> None:
    text = transcript(shell("agent-2", "ls /opt/cni/bin", "bandwidth  bridge  host-local  loopback  portmap"))
    assert run(ev_transcript(text), "D30") == []
