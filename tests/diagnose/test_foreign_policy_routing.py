# ruff: noqa: E501  (kubectl tables, logs and iptables rules are pasted in their real width)
"""A08: foreign policy routing (VPN) captures cluster traffic."""

from __future__ import annotations

from netsleuth.diagnose.detectors.foreign_policy_routing import foreign_policy_routing
from tests.diagnose.sectiona import (
    bundle,
    bundle_files,
    causes,
    run,
    saved_transcript,
    scenario,
    texts,
    transcript,
)

SCN = "a08-tailscale-k3s"


def test_tailscale_table_52_captures_the_pod_cidr() -> None:
    found = causes(run(foreign_policy_routing, scenario(SCN)))
    assert [(f.kind, f.node) for f in found] == [("foreign-policy-routing", "edge-b")]
    f = found[0]
    assert f.trace is not None and f.trace.main.interface == "tailscale0"
    assert "5270:\tfrom all lookup 52" in texts(f)  # the rule, as `ip rule` prints it
    assert "svc-unreachable:TIMEOUT@edge-b" in f.explains
    now = f.fix[0]
    assert "ip route add throw 10.42.0.0/24 table 52" in now.command
    assert "Verified by simulation" in now.note and "flannel.1" in now.note
    assert any(x.command.startswith("tailscale set --accept-routes=false") for x in f.fix)


def test_same_prefix_in_the_foreign_table_is_replaced_not_added() -> None:
    files = bundle_files(SCN)
    # The node's pod CIDR fact becomes the cluster-wide /16, exactly tailscale's route.
    files["cluster/nodes.json"] = files["cluster/nodes.json"].replace(
        '"podCIDR": "10.42.0.0/24"', '"podCIDR": "10.42.0.0/16"').replace(
        '"10.42.0.0/24"', '"10.42.0.0/16"')
    found = causes(run(foreign_policy_routing, bundle(files)))
    assert "ip route replace throw 10.42.0.0/16 table 52" in found[0].fix[0].command


def test_wg_quick_full_tunnel_on_a_node() -> None:
    found = causes(run(foreign_policy_routing, saved_transcript("cilium_vpn_de.txt")))
    assert [(f.node, f.trace is not None) for f in found] == [("worker-2", True)]
    assert "table 51820" in found[0].title and "wg0" in found[0].title
    assert "conn-error:TIMEOUT@worker-2" in found[0].explains


def test_source_based_management_routing_is_not_a_hijack() -> None:
    assert not run(foreign_policy_routing, scenario("healthy-multinic-kubespray"))


SPLIT = """\
root@n1:~# kubectl get nodes -o wide
NAME   STATUS   ROLES           AGE   VERSION   INTERNAL-IP   EXTERNAL-IP   OS-IMAGE             KERNEL-VERSION      CONTAINER-RUNTIME
n1     Ready    control-plane   20d   v1.29.1   10.7.0.11     <none>        Ubuntu 22.04.4 LTS   5.15.0-97-generic   containerd://1.7.12
n2     Ready    <none>          20d   v1.29.1   10.7.0.12     <none>        Ubuntu 22.04.4 LTS   5.15.0-97-generic   containerd://1.7.12
root@n1:~# ip rule
0:	from all lookup local
{suppress}100:	from all lookup 200
32766:	from all lookup main
32767:	from all lookup default
root@n1:~# ip route show table 200
{table200}
root@n1:~# ip route
default via 10.7.0.1 dev ens3 proto static
10.7.0.0/24 dev ens3 proto kernel scope link src 10.7.0.11
10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink
"""


def test_split_routing_that_only_replaces_the_default_route_is_deliberate() -> None:
    # wg-quick style: main's specific routes first, the other table only for the rest.
    ev = transcript(SPLIT.format(suppress="99:\tfrom all lookup main suppress_prefixlength 0\n",
                                 table200="default via 10.9.0.1 dev ens4 proto static"))
    assert not run(foreign_policy_routing, ev)


def test_a_default_route_tried_before_main_captures_the_node_subnet_too() -> None:
    ev = transcript(SPLIT.format(suppress="", table200="default via 10.9.0.1 dev ens4 proto static"))
    found = causes(run(foreign_policy_routing, ev))
    assert [f.node for f in found] == ["n1"]


def test_table_that_overrides_a_cluster_route_is_flagged_whatever_the_device() -> None:
    ev = transcript(SPLIT.format(suppress="",
                                 table200="10.244.0.0/16 via 10.9.0.1 dev ens4 proto static"))
    found = causes(run(foreign_policy_routing, ev))
    assert [(f.node, f.trace is not None) for f in found] == [("n1", True)]
    assert found[0].trace is not None and found[0].trace.main.interface == "ens4"
