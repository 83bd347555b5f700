# ruff: noqa: E501  (kubectl tables, logs and iptables rules are pasted in their real width)
"""A03: the apiserver advertised on the wrong NIC."""

from __future__ import annotations

from ipaddress import ip_address

from netsleuth.datapath.trace_model import Verdict
from netsleuth.diagnose.detectors.apiserver_advertise_nic import apiserver_advertise_nic, retarget
from netsleuth.parse.iptables_save import parse_iptables_save
from tests.diagnose.sectiona import bundle, bundle_files, causes, run, scenario

SCN = "a03-advertise-nat-weave"


def test_nat_address_advertised_is_local_on_every_worker() -> None:
    found = causes(run(apiserver_advertise_nic, scenario(SCN)))
    assert len(found) == 1
    f = found[0]
    assert f.kind == "apiserver-advertise-wrong-nic" and f.node == "vbox-cp"
    assert f.trace is not None and f.trace.verdict == Verdict.DELIVERED_LOCAL
    assert f.trace.main.packet.dst == ip_address("10.0.2.15")
    assert {"svc-unreachable:ECONNREFUSED@vbox-w1", "svc-unreachable:ECONNREFUSED@vbox-w2",
            "cni-agent-not-ready@vbox-w1"} <= set(f.explains)
    commands = [x.command for x in f.fix]
    assert any("--advertise-address=192.168.99.10" in c for c in commands)
    # Advertising the right address alone leaves the host clients' source address wrong
    # (checked on the real kernel by data/netns_build.py); the route fix is verified too.
    route = [x for x in f.fix if "ip route add 10.96.0.1/32 dev enp0s8" in x.command]
    assert route and "Verified by simulation" in route[0].note


def test_right_endpoint_is_not_flagged() -> None:
    files = {k: v.replace("10.0.2.15:6443", "192.168.99.10:6443")
             .replace("10.0.2.15/32 -j KUBE-MARK-MASQ", "192.168.99.10/32 -j KUBE-MARK-MASQ")
             for k, v in bundle_files(SCN).items()}
    files["cluster/endpoints.json"] = files["cluster/endpoints.json"].replace(
        '"ip": "10.0.2.15"', '"ip": "192.168.99.10"')
    assert not causes(run(apiserver_advertise_nic, bundle(files)))


def test_other_scenarios_are_not_flagged() -> None:
    for name in ("a06-rpfilter-calico", "a08-tailscale-k3s", "healthy-multinic-kubespray"):
        assert not causes(run(apiserver_advertise_nic, scenario(name))), name


def test_retarget_rewrites_dnat_and_hairpin_masquerade() -> None:
    rs = parse_iptables_save("""*nat
:KUBE-SEP-X - [0:0]
:KUBE-SEP-Y - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A KUBE-SEP-X -s 10.0.2.15/32 -m comment --comment "default/kubernetes:https" -j KUBE-MARK-MASQ
-A KUBE-SEP-X -p tcp -m comment --comment "default/kubernetes:https" -m tcp -j DNAT --to-destination 10.0.2.15:6443
-A KUBE-SEP-Y -s 10.0.2.15/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-Y -p udp -m udp -j DNAT --to-destination 10.32.0.2:53
COMMIT
""", "rules")
    out = retarget(rs, ip_address("10.0.2.15"), ip_address("192.168.99.10"))
    x = out.chain("nat", "KUBE-SEP-X")
    y = out.chain("nat", "KUBE-SEP-Y")
    assert x is not None and y is not None
    assert "192.168.99.10/32" in x.rules[0].raw and "192.168.99.10:6443" in x.rules[1].raw
    target = x.rules[1].target
    assert target is not None and target.option("--to-destination") is not None
    assert target.option("--to-destination").value == "192.168.99.10:6443"  # type: ignore[union-attr]
    assert "10.0.2.15/32" in y.rules[0].raw  # a chain that does not DNAT to it is untouched
