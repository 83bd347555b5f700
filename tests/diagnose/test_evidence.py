"""Evidence building: partial and broken inputs still yield what they support."""

from __future__ import annotations

from pathlib import Path

from netsleuth.diagnose.engine import diagnose
from netsleuth.diagnose.evidence import evidence_from_files, evidence_from_transcript

SEED_NODES = Path(__file__).resolve().parents[2] / "examples" / "seed-incident" / "nodes"


def node_files(node: str) -> dict[str, str]:
    return {f"nodes/{node}/{p.name}": p.read_text() for p in (SEED_NODES / node).iterdir()}


def test_a_broken_file_costs_only_itself() -> None:
    files = node_files("admin")
    files["nodes/admin/iptables-save.txt"] = "*nat\n-A NOCHAIN -j ACCEPT\nCOMMIT\n"
    ev = evidence_from_files(files, "bundle")
    assert "admin" in ev.nodes and "routes" in ev.nodes["admin"].has
    assert any("iptables-save.txt left out" in p for p in ev.problems)


def test_missing_pieces_are_listed_with_the_command_to_collect_them() -> None:
    ev = evidence_from_files({"nodes/n1/ip-route.txt": "default via 10.0.0.1 dev eth0\n"}, "b")
    whats = " ".join(m.what for m in ev.missing)
    assert "addresses of n1" in whats and "iptables of n1" in whats
    assert all(m.how for m in ev.missing)


def test_transcript_without_any_problem_reports_what_was_checked() -> None:
    text = (
        "[root@cp-1 ~]# ip route\n"
        "default via 10.20.0.1 dev ens192 proto static metric 100\n"
        "10.20.0.0/24 dev ens192 proto kernel scope link src 10.20.0.11 metric 100\n"
        "[root@cp-1 ~]# kubectl get pods -n kube-system\n"
        "NAME                       READY   STATUS    RESTARTS   AGE\n"
        "coredns-5d78c9869d-8xk2p   1/1     Running   0          3d\n"
        "kube-proxy-9f7cz           1/1     Running   0          3d\n"
    )
    report = diagnose(evidence_from_transcript(text, "ok.txt"))
    assert not report.causes
    assert any(c.ran for c in report.checks)
    assert report.nodes == ("cp-1",)


def test_calico_is_recognised_from_its_bird_routes() -> None:
    text = (
        "root@w1:~# ip route\n"
        "default via 10.1.0.1 dev eth0 proto static\n"
        "10.1.0.0/24 dev eth0 proto kernel scope link src 10.1.0.21\n"
        "10.233.90.0/26 via 10.1.0.22 dev tunl0 proto bird onlink\n"
    )
    ev = evidence_from_transcript(text, "t.txt")
    assert [f.value for f in ev.facts.cni] == ["calico"]


def test_list_detectors_covers_the_catalog() -> None:
    from typer.testing import CliRunner

    from netsleuth.cli import app

    result = CliRunner().invoke(app, ["diagnose", "--list-detectors"])
    assert result.exit_code == 0
    for mode in ("A01", "B11", "C27", "D35", "E42", "F50"):
        assert mode in result.output
