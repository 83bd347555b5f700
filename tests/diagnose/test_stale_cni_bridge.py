# ruff: noqa: E501  (kubectl output is pasted in its real width)
"""D39: stale cni0 address after worker-b re-joined with a new podCIDR."""

from __future__ import annotations

from tests.diagnose.cnidns import ev_transcript, kinds, out, report, run, shell, transcript

DESCRIBE_NODE = """Name:               worker-b
Roles:              <none>
Labels:             kubernetes.io/hostname=worker-b
Annotations:        flannel.alpha.coreos.com/backend-type: vxlan
                    flannel.alpha.coreos.com/public-ip: 192.168.50.11
CreationTimestamp:  Tue, 21 May 2024 09:14:02 +0000
Taints:             <none>
Addresses:
  InternalIP:  192.168.50.11
  Hostname:    worker-b
PodCIDR:                      10.88.1.0/24
PodCIDRs:                     10.88.1.0/24
Events:                       <none>"""

DESCRIBE_POD = """Name:             web-7c9d8b6f5-x2kqz
Namespace:        default
Node:             worker-b/192.168.50.11
Status:           Pending
IP:
Containers:
  web:
    Image:          nginx:1.25
    State:          Waiting
      Reason:       ContainerCreating
    Ready:          False
    Restart Count:  0
Events:
  Type     Reason                  Age                 From     Message
  ----     ------                  ----                ----     -------
  Warning  FailedCreatePodSandBox  2m (x41 over 11m)   kubelet  Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "4c1f0a": plugin type="flannel" failed (add): failed to delegate add: failed to set bridge addr: "cni0" already has an IP address different from 10.88.1.1/24"""


def incident(with_node: bool = True) -> str:
    parts = [shell("master", "kubectl describe node worker-b", DESCRIBE_NODE),
             shell("master", "kubectl describe pod web-7c9d8b6f5-x2kqz", DESCRIBE_POD)]
    if with_node:
        parts += [shell("worker-b", "ip addr", out("flannel_rejoin", "worker-b", "ip-addr.txt")),
                  shell("worker-b", "ip route", out("flannel_rejoin", "worker-b", "ip-route.txt"))]
    return transcript(*parts)


def test_stale_bridge_proven_and_fix_verified() -> None:
    found = run(ev_transcript(incident()), "D39")
    assert kinds(found) == [("stale-cni-bridge-address", "worker-b")]
    f = found[0]
    assert "10.88.7.1/24" in f.title and "10.88.1.1/24" in f.title
    assert f.confidence >= 0.95
    assert f.trace is not None and f.trace.main.interface == "eth0"  # not routed to cni0
    assert f.fix[0].command == "ip link set cni0 down && ip link delete cni0"
    assert "Verified by simulation: 10.88.1.2 is then sent out cni0" in f.fix[0].note


def test_from_the_plugin_error_alone() -> None:
    found = run(ev_transcript(incident(with_node=False)), "D39")
    assert kinds(found) == [("stale-cni-bridge-address", "worker-b")]
    assert found[0].trace is None and found[0].confidence < 0.8


def test_chain() -> None:
    r = report(ev_transcript(incident()))
    assert r.causes[0].finding.kind == "stale-cni-bridge-address"
    assert "sandbox-churn@worker-b" in {x.key for x in r.causes[0].explained}


def test_right_bridge_address_is_quiet() -> None:
    text = transcript(shell("master", "kubectl describe node worker-b", DESCRIBE_NODE.replace(
        "10.88.1.0/24", "10.88.7.0/24")),
        shell("worker-b", "ip addr", out("flannel_rejoin", "worker-b", "ip-addr.txt")))
    assert run(ev_transcript(text), "D39") == []
