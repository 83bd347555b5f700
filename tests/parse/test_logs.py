"""Log lines: formats, levels, timestamps, socket errors and collapsing of repeats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netsleuth.model.source import SourceRef
from netsleuth.parse.logs import collapse_repeats, extract_net_error, parse_log_line, parse_logs

CALICO = (
    "2024-02-16 04:58:0{s}.485 [INFO][8] startup.go 334: Hit error connecting to datastore - "
    "retry error=Get https://10.96.0.1:443/api/v1/nodes/foo: dial tcp 10.96.0.1:443: connect: "
    "network is unreachable"
)


def test_seed_calico_error_every_second_collapses_to_one() -> None:
    text = "\n".join(
        ["2024-02-16 04:58:08.483 [INFO][8] startup.go 259: Early log level set to info"]
        + [CALICO.format(s=s) for s in range(1, 10)]
    )
    lines = parse_logs(text, "calico.log", 67, pod="calico-node-7kvkf", namespace="kube-system")
    assert len(lines) == 2
    err = lines[1]
    assert err.count == 9 and err.component == "calico" and err.level == "INFO"
    assert (err.timestamp, err.last_timestamp) == ("2024-02-16 04:58:01.485", "2024-02-16 04:58:09.485")
    assert (err.source.line, err.last_source) == (68, SourceRef("calico.log", 76))
    assert err.net_error is not None
    ne = err.net_error
    assert (ne.op, ne.proto, ne.dst, ne.errno, ne.text) == (
        "dial",
        "tcp",
        "10.96.0.1:443",
        "ENETUNREACH",
        "network is unreachable",
    )
    assert ne.url == "https://10.96.0.1:443/api/v1/nodes/foo"
    assert str(ne.dst_ip) == "10.96.0.1" and ne.dst_port == 443


def test_collapse_off_keeps_every_line() -> None:
    text = "\n".join(CALICO.format(s=s) for s in range(3))
    assert len(parse_logs(text, "x", collapse=False)) == 3
    assert len(collapse_repeats(parse_logs(text, "x", collapse=False))) == 1


@pytest.mark.parametrize(
    ("text", "errno", "op", "proto", "dst"),
    [
        (
            "dial tcp 10.96.0.1:443: connect: network is unreachable",
            "ENETUNREACH",
            "dial",
            "tcp",
            "10.96.0.1:443",
        ),
        ("dial tcp 10.96.0.1:443: connect: no route to host", "EHOSTUNREACH", "dial", "tcp", "10.96.0.1:443"),
        (
            "Get http://localhost:9099/readiness: dial tcp [::1]:9099: connect: connection refused",
            "ECONNREFUSED",
            "dial",
            "tcp",
            "[::1]:9099",
        ),
        (
            "[ERROR] plugin/errors: 2 2847295.123. HINFO: read udp 10.244.0.5:55742->223.5.5.5:53: "
            "i/o timeout",
            "TIMEOUT",
            "read",
            "udp",
            "223.5.5.5:53",
        ),
        (
            "dial tcp 10.96.0.1:443: connect: connection timed out",
            "ETIMEDOUT",
            "dial",
            "tcp",
            "10.96.0.1:443",
        ),
        (
            "read tcp 10.0.0.1:5432->10.0.0.2:443: read: connection reset by peer",
            "ECONNRESET",
            "read",
            "tcp",
            "10.0.0.2:443",
        ),
        (
            'Get "https://10.96.0.1:443/api?timeout=32s": context deadline exceeded',
            "TIMEOUT",
            None,
            None,
            "10.96.0.1:443",
        ),
        ("Unable to connect to the server: net/http: TLS handshake timeout", "TLS", None, None, None),
        ("x509: certificate is valid for 10.0.0.1, not 10.96.0.1", "TLS", None, None, None),
        (
            "dial tcp: lookup kubernetes.default on 10.96.0.10:53: no such host",
            "NXDOMAIN",
            "lookup",
            None,
            "10.96.0.10:53",
        ),
        (
            "listen tcp 0.0.0.0:6443: bind: address already in use",
            "EADDRINUSE",
            "listen",
            "tcp",
            "0.0.0.0:6443",
        ),
        (
            "curl: (7) Failed to connect to 10.96.0.1 port 443 after 0 ms: Network is unreachable",
            "ENETUNREACH",
            "connect",
            None,
            "10.96.0.1:443",
        ),
        ("Error: connect ECONNREFUSED 10.96.0.1:443", "ECONNREFUSED", "connect", None, "10.96.0.1:443"),
        ("ping: sendmsg: Operation not permitted", "EPERM", "sendmsg", None, None),
    ],
)
def test_net_errors(text: str, errno: str, op: str | None, proto: str | None, dst: str | None) -> None:
    ne = extract_net_error(text)
    assert ne is not None
    assert (ne.errno, ne.op, ne.proto, ne.dst) == (errno, op, proto, dst)


@pytest.mark.parametrize(
    "text",
    [
        "open /proc/sys/net/netfilter/nf_conntrack_max: permission denied",
        "I0215 01:25:31.222664       1 server.go:12] Using iptables Proxier",
        "[INFO] plugin/reload: Running configuration MD5 = 4e235fcc3696966e76816bcd9034ebc7",
    ],
)
def test_no_net_error(text: str) -> None:
    assert extract_net_error(text) is None


@pytest.mark.parametrize(
    ("line", "level", "timestamp", "message", "component"),
    [
        (
            "W0215 01:25:31.222664       1 client_config.go:541] Neither --kubeconfig nor --master",
            "WARNING",
            "0215 01:25:31.222664",
            "Neither --kubeconfig nor --master",
            None,
        ),
        (
            "[ERROR] plugin/errors: 2 x. A: read udp 1.1.1.1:1->2.2.2.2:53: i/o timeout",
            "ERROR",
            None,
            "plugin/errors: 2 x. A: read udp 1.1.1.1:1->2.2.2.2:53: i/o timeout",
            None,
        ),
        (
            '2024-02-15T01:25:31.222664123Z [INFO] plugin/ready: Still waiting on: "kubernetes"',
            "INFO",
            "2024-02-15T01:25:31.222664123Z",
            'plugin/ready: Still waiting on: "kubernetes"',
            None,
        ),
        (
            'time="2024-03-12T09:45:13.001Z" level=info msg="TearDown network for sandbox \\"8a\\""',
            "INFO",
            "2024-03-12T09:45:13.001Z",
            'TearDown network for sandbox "8a"',
            None,
        ),
        (
            '{"level":"error","ts":1710236712.5,"msg":"failed to sync","error":"dial tcp: i/o timeout"}',
            "ERROR",
            "1710236712.5",
            "failed to sync error=dial tcp: i/o timeout",
            None,
        ),
        (
            "Mar 12 09:45:02 ip-10-0-1-23 kubelet[1187]: E0312 09:45:02.102913    1187 "
            'pod_workers.go:1298] "Error syncing pod, skipping"',
            "ERROR",
            "Mar 12 09:45:02",
            '"Error syncing pod, skipping"',
            "kubelet",
        ),
        (
            'level=error msg="Unable to contact k8s api-server" error="dial tcp 172.20.0.1:443: '
            'i/o timeout" subsys=k8s-client',
            "ERROR",
            None,
            "Unable to contact k8s api-server error=dial tcp 172.20.0.1:443: i/o timeout",
            None,
        ),
        ("plain text without any format", None, None, "plain text without any format", None),
    ],
)
def test_formats(
    line: str, level: str | None, timestamp: str | None, message: str, component: str | None
) -> None:
    parsed = parse_log_line(line, SourceRef("x", 1))
    assert (parsed.level, parsed.timestamp, parsed.message, parsed.component) == (
        level,
        timestamp,
        message,
        component,
    )


def test_journal_line_keeps_host() -> None:
    parsed = parse_log_line(
        "Mar 12 09:41:07 ip-10-0-1-23 kubelet[1187]: I0312 09:41:07.212348    1187 flags.go:64] "
        'FLAG: --resolv-conf="/etc/resolv.conf"',
        SourceRef("j", 1),
    )
    assert parsed.host == "ip-10-0-1-23" and parsed.level == "INFO"


def test_component_from_pod_name() -> None:
    lines = parse_logs(
        'I0301 08:14:55.102316 1 server_others.go:274] "Using ipvs Proxier"', "k", pod="kube-proxy-7bq2m"
    )
    assert lines[0].component == "kube-proxy"


@given(st.text())
def test_parse_logs_is_total(text: str) -> None:
    for line in parse_logs(text, "fuzz"):
        assert line.count >= 1
