# ruff: noqa: E501  (CoreDNS query log lines are pasted in their real width)
"""E45: ndots:5 search-list amplification seen in CoreDNS's query log (log plugin)."""

from __future__ import annotations

from tests.diagnose.cnidns import ev_transcript, kinds, report, run, shell, transcript

RESOLV = """search payments.svc.cluster.local svc.cluster.local cluster.local us-east-2.compute.internal
nameserver 172.20.0.10
options ndots:5"""


def query_log(name: str, client: str = "10.42.3.17") -> str:
    lines = []
    ts = 0
    for suffix in ("payments.svc.cluster.local", "svc.cluster.local", "cluster.local",
                   "us-east-2.compute.internal"):
        for qtype in ("A", "AAAA"):
            ts += 1
            rcode = "NXDOMAIN"
            lines.append(f'[INFO] {client}:{41200 + ts} - {3000 + ts} "{qtype} IN {name}.{suffix}. udp 70 false 512" {rcode} qr,aa,rd 163 0.000{100 + ts}s')
    lines.append(f'[INFO] {client}:41300 - 3100 "A IN {name}. udp 45 false 512" NOERROR qr,rd,ra 120 0.011873s')
    return "\n".join(lines)


def incident() -> str:
    return transcript(
        "Payment pods are slow to call external APIs; the upstream DNS started rate limiting us.",
        shell("bastion", "kubectl -n payments exec deploy/payments-api -- cat /etc/resolv.conf", RESOLV, user="ec2-user"),
        shell("bastion", "kubectl -n kube-system logs coredns-6d8c4cb4d-8wq2z | grep 10.42.3.17 | tail -18",
              query_log("api.stripe.com") + "\n" + query_log("hooks.slack.com"), user="ec2-user"),
    )


def test_expansions_counted_and_fix_offered() -> None:
    found = run(ev_transcript(incident()), "E45")
    assert kinds(found) == [("dns-nxdomain-flood", None), ("ndots-search-amplification", None)]
    cause = found[1]
    assert "ndots:5" in cause.title and "4+ search domains" in cause.title
    assert "16 NXDOMAIN" in cause.detail
    assert cause.fix[0].command.startswith("in the pod spec: dnsConfig")
    assert any(e.text.startswith("search payments.svc.cluster.local") for e in cause.evidence)


def test_chain() -> None:
    r = report(ev_transcript(incident()))
    assert r.causes[0].finding.kind == "ndots-search-amplification"
    assert "dns-nxdomain-flood" in {x.key for x in r.causes[0].explained}


def test_cluster_names_are_not_amplification() -> None:
    log = "\n".join(
        f'[INFO] 10.42.3.17:4{i}100 - 3{i}00 "A IN orders.payments.svc.cluster.local. udp 52 false 512" NOERROR qr,aa,rd 106 0.000{i}88s'
        for i in range(1, 9))
    text = transcript(shell("bastion", "kubectl -n kube-system logs coredns-6d8c4cb4d-8wq2z", log))
    assert run(ev_transcript(text), "E45") == []
