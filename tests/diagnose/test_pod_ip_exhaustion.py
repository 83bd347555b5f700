# ruff: noqa: E501  (kubectl tables and logs are pasted in their real width)
"""D40: pod IP exhaustion (host-local leak; AWS VPC CNI)."""

from __future__ import annotations

from tests.diagnose.cnidns import ev_transcript, kinds, run, shell, transcript

EVENTS = """LAST SEEN   TYPE      REASON                   OBJECT                          MESSAGE
12s         Warning   FailedCreatePodSandBox   pod/api-5f7d9c8b6d-8m2qw        Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "6a1f7c": plugin type="flannel" failed (add): failed to delegate add: failed to allocate for range 0: no IP addresses available in range set: 10.244.5.1-10.244.5.254"""

PODS = """NAME                       READY   STATUS              RESTARTS   AGE   IP            NODE      NOMINATED NODE   READINESS GATES
api-5f7d9c8b6d-8m2qw       0/1     ContainerCreating   0          9m    <none>        node-05   <none>           <none>
api-5f7d9c8b6d-k2x7v       1/1     Running             0          2d    10.244.5.17   node-05   <none>           <none>
worker-7c8d9b5f4-p4r6t     1/1     Running             0          2d    10.244.5.33   node-05   <none>           <none>"""


def listing() -> str:
    names = [f"10.244.5.{i}" for i in range(2, 255)] + ["last_reserved_ip.0", "lock"]
    rows = []
    for i in range(0, len(names), 8):
        rows.append("  ".join(names[i:i + 8]))
    return "\n".join(rows)


def test_leaked_reservations() -> None:
    text = transcript(
        shell("cp", "kubectl get events -n prod --field-selector reason=FailedCreatePodSandBox", EVENTS),
        shell("cp", "kubectl -n prod get pods -o wide", PODS),
        shell("node-05", "ls /var/lib/cni/networks/cbr0", listing()),
    )
    found = run(ev_transcript(text), "D40")
    assert kinds(found) == [("pod-ip-leak", "node-05")]
    f = found[0]
    assert "253 reservations" in f.why and "2 running pods" in f.why
    assert "/var/lib/cni/networks/cbr0" in f.fix[0].command and "crictl inspectp" in f.fix[0].command


def test_without_counts_only_exhausted() -> None:
    text = transcript(shell("cp", "kubectl get events -n prod", EVENTS),
                      shell("cp", "kubectl -n prod get pods -o wide", PODS))
    found = run(ev_transcript(text), "D40")
    assert kinds(found) == [("pod-ip-exhausted", "node-05")]


def test_aws_vpc_cni() -> None:
    log = """{"level":"error","ts":"2024-05-17T09:12:44.118Z","caller":"ipamd/rpc_handler.go:230","msg":"DataStore has no available IP addresses"}
{"level":"info","ts":"2024-05-17T09:12:44.119Z","caller":"rpc/rpc.pb.go:731","msg":"Send AddNetworkReply: IPv4Addr , IPv6Addr: , DeviceNumber: -1, err: assignPodIPv4Address: no available IP/Prefix addresses"}"""
    pods = """NAME             READY   STATUS    RESTARTS   AGE   IP             NODE                                          NOMINATED NODE   READINESS GATES
aws-node-7xq2m   2/2     Running   0          6d    10.30.14.201   ip-10-30-14-201.eu-west-1.compute.internal   <none>           <none>"""
    text = transcript(shell("bastion", "kubectl -n kube-system get pods -o wide -l k8s-app=aws-node", pods, user="ec2-user"),
                      shell("bastion", "kubectl -n kube-system logs aws-node-7xq2m -c aws-node | grep -i -e error -e Reply | tail -2", log, user="ec2-user"))
    found = run(ev_transcript(text), "D40")
    assert kinds(found) == [("eni-ip-exhausted", "ip-10-30-14-201.eu-west-1.compute.internal")]
    assert "ENABLE_PREFIX_DELEGATION=true" in found[0].fix[0].command


def test_quiet_without_the_error() -> None:
    assert run(ev_transcript(transcript(shell("cp", "kubectl -n prod get pods -o wide", PODS))), "D40") == []
