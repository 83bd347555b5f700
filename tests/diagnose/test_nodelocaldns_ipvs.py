# ruff: noqa: E501  (command output is pasted in its real width)
"""E46: NodeLocal DNSCache in its iptables form on a kubespray cluster with IPVS kube-proxy.

kube-ipvs0 and nodelocaldns are dummy devices; this machine's kernel has no dummy module, so
their `ip addr` lines are written by hand in iproute2's format (the ens192/lo part is the same
shape as the namespace-generated outputs elsewhere)."""

from __future__ import annotations

from netsleuth.datapath.trace_model import Verdict
from tests.diagnose.cnidns import ev_transcript, kinds, report, run, shell, transcript

IP_ADDR = """1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
2: ens192: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP group default qlen 1000
    link/ether 00:50:56:8a:3c:1f brd ff:ff:ff:ff:ff:ff
    inet 10.40.8.21/24 brd 10.40.8.255 scope global ens192
       valid_lft forever preferred_lft forever
3: kube-ipvs0: <BROADCAST,NOARP> mtu 1500 qdisc noop state DOWN group default
    link/ether 3e:7d:52:9b:0a:61 brd ff:ff:ff:ff:ff:ff
    inet 10.233.0.1/32 scope global kube-ipvs0
       valid_lft forever preferred_lft forever
    inet 10.233.0.3/32 scope global kube-ipvs0
       valid_lft forever preferred_lft forever
4: nodelocaldns: <BROADCAST,NOARP> mtu 1500 qdisc noop state DOWN group default
    link/ether 7a:11:09:c4:de:2f brd ff:ff:ff:ff:ff:ff
    inet 169.254.25.10/32 scope global nodelocaldns
       valid_lft forever preferred_lft forever
    inet 10.233.0.3/32 scope global nodelocaldns
       valid_lft forever preferred_lft forever"""

PODS = """NAMESPACE     NAME                       READY   STATUS    RESTARTS   AGE   IP           NODE     NOMINATED NODE   READINESS GATES
kube-system   coredns-5c54d6d5d8-kq7tn   1/1     Running   0          21d   10.233.64.2  node1    <none>           <none>
kube-system   nodelocaldns-8xq2k         1/1     Running   0          12m   10.40.8.21   node1    <none>           <none>"""

SVC = """NAME      TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)                  AGE
coredns   ClusterIP   10.233.0.3   <none>        53/UDP,53/TCP,9153/TCP   21d"""

PROXY_LOG = """I0524 09:01:12.401133       1 server_others.go:218] "Using ipvs Proxier"
I0524 09:01:12.401171       1 server_others.go:220] "Creating dualStackProxier for ipvs\""""

NLD_LOG = """2024/05/24 09:13:02 [INFO] Starting node-cache image: 1.22.28
2024/05/24 09:13:02 [INFO] Using Corefile /etc/coredns/Corefile
2024/05/24 09:13:02 [INFO] Updated Corefile with 0 custom stubdomains and upstream servers /etc/resolv.conf
2024/05/24 09:13:02 [INFO] Using config file:
cluster.local:53 {
    errors
    cache {
            success 9984 30
            denial 9984 5
    }
    reload
    loop
    bind 169.254.25.10 10.233.0.3
    forward . 10.233.0.3 {
            force_tcp
    }
    prometheus :9253
    health 169.254.25.10:8080
    }
2024/05/24 09:13:02 [ERROR] Error checking dummy device nodelocaldns - operation not permitted"""


def incident(variant: str = "iptables") -> str:
    addr = IP_ADDR if variant == "iptables" else IP_ADDR.replace(
        "    inet 10.233.0.3/32 scope global nodelocaldns\n       valid_lft forever preferred_lft forever", "")
    nld = NLD_LOG if variant == "iptables" else NLD_LOG.replace(
        "bind 169.254.25.10 10.233.0.3", "bind 169.254.25.10").replace(
        "2024/05/24 09:13:02 [ERROR] Error checking dummy device nodelocaldns - operation not permitted", "")
    return transcript(
        "kubespray v2.24, kube-proxy IPVS. All DNS lookups fail since node-local-dns was enabled.",
        shell("node1", "kubectl get pods -n kube-system -o wide", PODS),
        shell("node1", "kubectl -n kube-system get svc coredns", SVC),
        shell("node1", "kubectl -n kube-system logs kube-proxy-7bq2m | grep -i proxier", PROXY_LOG),
        shell("node1", "kubectl -n kube-system logs nodelocaldns-8xq2k", nld),
        shell("node1", "ip addr", addr),
    )


def test_iptables_form_on_ipvs() -> None:
    found = run(ev_transcript(incident()), "E46")
    assert kinds(found) == [("nodelocaldns-ipvs-wiring", "node1")]
    f = found[0]
    assert f.trace is not None and f.trace.verdict == Verdict.DELIVERED_LOCAL
    assert any("kube-ipvs0 inet 10.233.0.3/32" in e.text for e in f.evidence)
    assert "s/,__PILLAR__DNS__SERVER__//g" in f.fix[0].command and "169.254.25.10" in f.fix[0].command
    assert "clusterDNS: [169.254.25.10]" in f.fix[1].command


def test_in_the_report() -> None:
    r = report(ev_transcript(incident()))
    assert "nodelocaldns-ipvs-wiring" in {c.finding.kind for c in r.causes}


def test_ipvs_form_is_quiet() -> None:
    assert run(ev_transcript(incident("ipvs")), "E46") == []
