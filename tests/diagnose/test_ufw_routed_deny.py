"""B13: ufw's default deny (routed) on a Kubernetes-the-hard-way node (bridge CNI)."""

from __future__ import annotations

from netsleuth.diagnose.detectors.ufw_routed_deny import ufw_routed_deny

from .sectionbc import bundle, case_evidence, causes, node_files, run, transcript


def test_forwarded_pod_traffic_ends_at_ufws_policy() -> None:
    found = causes(run(ufw_routed_deny, transcript("b13_ufw_kthw_pi.txt")))
    assert [(f.kind, f.node) for f in found] == [("ufw-routed-deny", "pi-worker-2")]
    f = found[0]
    assert f.trace is not None and f.trace.verdict.value == "dropped"
    texts = [e.text for e in f.evidence]
    assert any(t.startswith(":FORWARD DROP [4178:250680]") for t in texts)
    assert any("ufw-before-forward" in t for t in texts)
    assert any("[UFW BLOCK] IN=cnio0" in t for t in texts)  # the kernel log corroborates
    assert any(t.startswith("Default: deny (incoming), allow (outgoing), deny (routed)")
               for t in texts)
    # No pod list: the traced pod address is assumed, but the kernel's [UFW BLOCK] lines show
    # real pod packets dying there, so the cap for assumed addresses is the corroborated one.
    assert f.confidence >= 0.85


def test_fixes_are_ufw_commands_verified_by_simulation() -> None:
    f = causes(run(ufw_routed_deny, transcript("b13_ufw_kthw_pi.txt")))[0]
    cmds = [x.command for x in f.fix]
    assert any("DEFAULT_FORWARD_POLICY=\"ACCEPT\"" in c for c in cmds)
    assert all("Verified by simulation" in x.note for x in f.fix if "ufw" in x.command
               and x.when == "now")


def test_kubelet_port_is_allowed_so_no_peer_finding() -> None:
    f = causes(run(ufw_routed_deny, case_evidence("ufw")))[0]
    assert "10250" not in f.title


def test_ufw_with_routed_allow_is_healthy() -> None:
    files = node_files("ufw")
    key = next(k for k in files if k.endswith("iptables-save.txt"))
    files[key] = files[key].replace(":FORWARD DROP", ":FORWARD ACCEPT")
    assert not causes(run(ufw_routed_deny, bundle(files)))
