"""Redaction: credentials go, evidence stays."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from netsleuth.collect.redact import REDACTED, Redactor

JWT = ("eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0."
       "c2lnbmF0dXJlLXNpZ25hdHVyZQ")


def test_text_rules() -> None:
    r = Redactor()
    cases = {
        "--token=abcdef123456 --kubeconfig=/etc/kubernetes/kubelet.conf":
            "--token=<redacted> --kubeconfig=/etc/kubernetes/kubelet.conf",
        f"Authorization: Bearer {JWT}": "Authorization: Bearer <redacted>",
        "Authorization: Basic dXNlcjpwYXNz": "Authorization: Basic <redacted>",
        "  password: hunter2\n  tokenFile: /var/run/secrets/token":
            "  password: <redacted>\n  tokenFile: /var/run/secrets/token",
        '{"level":"info","client_secret":"abc","msg":"ok"}':
            '{"level":"info","client_secret":"<redacted>","msg":"ok"}',
        "dial postgres://app:pw123@db:5432/x": "dial postgres://app:<redacted>@db:5432/x",
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----":
            "-----BEGIN EC PRIVATE KEY-----<redacted>-----END EC PRIVATE KEY-----",
    }
    for before, after in cases.items():
        assert r.text(before) == after
    assert r.count == len(cases)


def test_evidence_is_kept() -> None:
    r = Redactor()
    evidence = [
        "Hit error connecting to datastore - retry error=Get https://10.96.0.1:443/api/v1/"
        "nodes/foo: dial tcp 10.96.0.1:443: connect: network is unreachable",
        "token expired, refreshing",
        "-A KUBE-SEP-X -p tcp -m comment --comment default/kubernetes:https -j DNAT "
        "--to-destination 192.0.2.3:6443",
        "net.ipv4.conf.all.rp_filter = 1",
        "secretName: default-token-abcde",
        "ETCD_KEY_FILE=/calico-secrets/etcd-key",
    ]
    for line in evidence:
        assert r.text(line) == line
    assert r.count == 0


def test_base64_kubeconfig_and_private_key_blobs() -> None:
    r = Redactor()
    kubeconfig = base64.b64encode(
        b"apiVersion: v1\nkind: Config\nclusters:\n- cluster: {server: https://k}\n"
        b"users:\n- name: u\n  user:\n    token: abcdefabcdefabcdef\n").decode()
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n" + b"MIIC" * 30 +
                          b"\n-----END CERTIFICATE-----\n").decode()
    key = base64.b64encode(b"-----BEGIN RSA PRIVATE KEY-----\n" + b"MIIE" * 30 +
                           b"\n-----END RSA PRIVATE KEY-----\n").decode()
    assert r.text(f"KUBECONFIG_DATA {kubeconfig}") == f"KUBECONFIG_DATA {REDACTED}"
    assert r.text(f"certificate-authority-data: {ca}") == f"certificate-authority-data: {ca}"
    assert r.text(f"x {key}") == f"x {REDACTED}"
    assert r.count == 2


def test_objects_env_configmaps_annotations() -> None:
    r = Redactor()
    pod = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                     json.dumps({"env": [{"name": "DB_PASS", "value": "pw"}]})}},
        "spec": {"containers": [{"env": [
            {"name": "DB_PASS", "value": "pw"},
            {"name": "CALICO_IPV4POOL_CIDR", "value": "10.244.0.0/16"},
            {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "k", "key": "api"}}},
        ], "volumes": [{"secret": {"secretName": "web-token-x"}}]}]},
    }
    out = r.obj(pod)
    env = out["spec"]["containers"][0]["env"]
    assert env[0]["value"] == REDACTED
    assert env[1]["value"] == "10.244.0.0/16"
    assert env[2] == pod["spec"]["containers"][0]["env"][2]
    assert out["spec"]["containers"][0]["volumes"] == [{"secret": {"secretName": "web-token-x"}}]
    applied = json.loads(out["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert applied["env"][0]["value"] == REDACTED
    assert r.count == 2
    cm = r.obj({"data": {"token": "abc", "config.yaml": "mode: ipvs\npassword: x\n"}})
    assert cm == {"data": {"token": REDACTED, "config.yaml": f"mode: ipvs\npassword: {REDACTED}\n"}}
    # The input object is not modified.
    assert pod["spec"]["containers"][0]["env"][0]["value"] == "pw"


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_redaction_is_idempotent(text: str) -> None:
    r = Redactor()
    once = r.text(text)
    count = r.count
    assert r.text(once) == once
    assert r.count == count


@given(st.lists(st.from_regex(r"[a-z ]{0,30}", fullmatch=True), max_size=10))
def test_plain_prose_is_untouched(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert Redactor().text(text) == text
