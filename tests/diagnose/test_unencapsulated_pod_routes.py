# ruff: noqa: E501  (kubectl tables, logs and iptables rules are pasted in their real width)
"""A07: pod traffic leaves un-encapsulated where the fabric cannot carry it."""

from __future__ import annotations

from netsleuth.datapath.trace_model import Verdict
from netsleuth.diagnose.detectors.unencapsulated_pod_routes import unencapsulated_pod_routes
from tests.diagnose.sectiona import causes, netns_output, run, scenario, transcript

ROUTES = netns_output("a07", "k8s-a-01", "ip-route")


def test_bgp_route_through_the_rack_gateway() -> None:
    found = causes(run(unencapsulated_pod_routes, scenario("a07-calico-bgp-cross-subnet")))
    assert [(f.kind, f.node) for f in found] == [("unencapsulated-pod-traffic", "k8s-a-01")]
    f = found[0]
    assert f.trace is not None and f.trace.verdict == Verdict.FORWARDED
    assert f.trace.main.interface == "eth0" and f.trace.main.next_hop == "10.1.1.1"
    assert str(f.trace.main.packet.src) == "10.244.77.130"  # the pod's own address on the wire
    assert "cannot be seen from the node" in f.detail  # says what it cannot prove
    assert f.confidence < 0.9


def _nodes(names: tuple[str, str, str], routes: str) -> str:
    a, b, c = names
    return f"""\
netops@{a}:~$ kubectl get nodes -o wide
NAME   STATUS   ROLES           AGE   VERSION   INTERNAL-IP   EXTERNAL-IP   OS-IMAGE                       KERNEL-VERSION                 CONTAINER-RUNTIME
{a}   Ready    control-plane   63d   v1.28.7   10.1.1.10     <none>        Red Hat Enterprise Linux 9.3   5.14.0-362.18.1.el9_3.x86_64   containerd://1.6.28
{b}   Ready    <none>          63d   v1.28.7   10.1.1.11     <none>        Red Hat Enterprise Linux 9.3   5.14.0-362.18.1.el9_3.x86_64   containerd://1.6.28
{c}   Ready    <none>          12d   v1.28.7   10.1.2.30     <none>        Red Hat Enterprise Linux 9.3   5.14.0-362.18.1.el9_3.x86_64   containerd://1.6.28
netops@{a}:~$ ip route
{routes}
"""


def test_direct_routes_between_nodes_of_one_subnet_are_fine_on_premises() -> None:
    same_subnet = "\n".join(r for r in ROUTES.splitlines() if "via 10.1.1.1 dev eth0 proto bird" not in r)
    ev = transcript(_nodes(("k8s-a-01", "k8s-a-02", "k8s-b-01"), same_subnet))
    assert not causes(run(unencapsulated_pod_routes, ev))


def test_direct_routes_on_aws_are_flagged_for_the_source_destination_check() -> None:
    same_subnet = "\n".join(r for r in ROUTES.splitlines() if "via 10.1.1.1 dev eth0 proto bird" not in r)
    names = ("ip-10-1-1-10.ec2.internal", "ip-10-1-1-11.ec2.internal", "ip-10-1-2-30.ec2.internal")
    found = causes(run(unencapsulated_pod_routes, transcript(_nodes(names, same_subnet))))
    assert len(found) == 1
    assert "AWS" in found[0].title and "sourceDestCheck" in found[0].detail
    assert any("no-source-dest-check" in x.command for x in found[0].fix)


def test_encapsulated_clusters_are_not_flagged() -> None:
    for name in ("a06-rpfilter-calico", "a08-tailscale-k3s", "healthy-multinic-kubespray",
                 "a09-calico-pool-overlap"):
        assert not causes(run(unencapsulated_pod_routes, scenario(name))), name
