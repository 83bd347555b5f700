# ruff: noqa: E501  (command output is pasted in its real width)
"""E47: a default-deny egress NetworkPolicy without an allow for DNS (Cilium 1.15)."""

from __future__ import annotations

from tests.diagnose.cnidns import ev_transcript, kinds, report, run, shell, transcript

POLICIES = """apiVersion: v1
items:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    creationTimestamp: "2024-05-27T08:02:11Z"
    generation: 1
    name: default-deny-all
    namespace: payments
    resourceVersion: "48213377"
    uid: 6f0c1a2e-9d8b-4c7a-b1e2-3f4a5b6c7d8e
  spec:
    podSelector: {}
    policyTypes:
    - Ingress
    - Egress
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    creationTimestamp: "2024-05-27T08:02:11Z"
    generation: 1
    name: allow-egress-postgres
    namespace: payments
    resourceVersion: "48213378"
    uid: 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
  spec:
    egress:
    - ports:
      - port: 5432
        protocol: TCP
      to:
      - ipBlock:
          cidr: 10.60.0.0/16
    podSelector:
      matchLabels:
        app: payments-api
    policyTypes:
    - Egress
kind: List
metadata:
  resourceVersion: ""
"""

ALLOW_DNS = """
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    name: allow-dns
    namespace: payments
  spec:
    podSelector: {}
    policyTypes:
    - Egress
    egress:
    - to:
      - namespaceSelector:
          matchLabels:
            kubernetes.io/metadata.name: kube-system
        podSelector:
          matchLabels:
            k8s-app: kube-dns
      ports:
      - protocol: UDP
        port: 53
      - protocol: TCP
        port: 53
"""

PODS = """NAMESPACE     NAME                            READY   STATUS    RESTARTS   AGE   IP             NODE       NOMINATED NODE   READINESS GATES
kube-system   cilium-7hx2d                    1/1     Running   0          44d   10.11.0.21     wk-a       <none>           <none>
kube-system   cilium-qz9f4                    1/1     Running   0          44d   10.11.0.22     wk-b       <none>           <none>
kube-system   coredns-76f75df574-8m2kq        1/1     Running   0          44d   10.0.1.201     wk-b       <none>           <none>
payments      payments-api-7d9c8b6f5d-2xkqp   1/1     Running   0          3h    10.0.0.114     wk-a       <none>           <none>"""

CURL = "curl: (6) Could not resolve host: api.stripe.com"


def incident(policies: str = POLICIES, cni_pods: str = PODS) -> str:
    return transcript(
        "Since the security team rolled out default-deny policies, payments-api cannot reach Stripe.",
        shell("admin-1", "kubectl get pods -A -o wide", cni_pods, user="sre"),
        shell("admin-1", "kubectl -n payments get networkpolicy -o yaml", policies, user="sre"),
        shell("admin-1", "kubectl -n payments exec payments-api-7d9c8b6f5d-2xkqp -- curl -sS https://api.stripe.com/v1/charges", CURL, user="sre"),
    )


def test_default_deny_without_dns_allow() -> None:
    found = run(ev_transcript(incident()), "E47")
    assert kinds(found) == [("netpol-blocks-dns", None)]
    f = found[0]
    assert "payments" in f.title and "every pod" in f.title
    assert f.confidence >= 0.9
    assert any("default-deny-all" in e.text for e in f.evidence)
    assert "k8s-app: kube-dns" in f.fix[0].command and "protocol: UDP, port: 53" in f.fix[0].command
    assert "dns-errors@wk-a" in f.explains


def test_chain_with_the_curl_symptom() -> None:
    r = report(ev_transcript(incident()))
    first = r.causes[0]
    assert first.finding.kind == "netpol-blocks-dns"
    assert "dns-errors@wk-a" in {x.key for x in first.explained}


def test_allow_dns_policy_makes_it_quiet() -> None:
    with_allow = POLICIES.replace("kind: List", ALLOW_DNS.strip("\n").replace("\n", "\n", 1) + "\nkind: List", 1)
    assert "allow-dns" in with_allow
    assert run(ev_transcript(incident(with_allow)), "E47") == []


def test_flannel_does_not_enforce_policies() -> None:
    pods = PODS.replace("cilium-7hx2d                ", "kube-flannel-ds-7hx2d       ").replace(
        "cilium-qz9f4                ", "kube-flannel-ds-qz9f4       ")
    assert run(ev_transcript(incident(cni_pods=pods)), "E47") == []
