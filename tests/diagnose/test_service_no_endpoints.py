# ruff: noqa: E501 (command outputs and iptables rules quoted verbatim)
"""C27: Services with no endpoints (selector mismatch) or with a wrong targetPort."""

from __future__ import annotations

from netsleuth.diagnose.detectors.service_no_endpoints import service_no_endpoints

from .sectionbc import causes, report, run, transcript, transcript_text


def test_selector_mismatch_traced_to_the_reject_rule() -> None:
    found = causes(run(service_no_endpoints, transcript("c27_selector_mismatch_eks.txt")))
    assert [f.kind for f in found] == ["service-no-endpoints"]
    f = found[0]
    assert f.key == "cause:service-no-endpoints@payments/payments-api"
    assert "matches no pod" in f.title
    assert f.trace is not None and f.trace.errno == "ECONNREFUSED"
    reject = [e for e in f.evidence if "has no endpoints" in e.text and "REJECT" in e.text]
    assert reject
    assert any("app=payment-api" in e.text for e in f.evidence)  # the closest pod's labels
    assert '"app":"payment-api"' in f.fix[0].command
    assert "conn-error:ECONNREFUSED@?" in f.explains
    r = report(transcript("c27_selector_mismatch_eks.txt"))
    assert r.causes[0].finding.kind == "service-no-endpoints" and not r.unexplained


DESCRIBE_UNREADY = """$ kubectl -n shop get ep cart
NAME   ENDPOINTS   AGE
cart   <none>      2d
$ kubectl -n shop get svc cart -o wide
NAME   TYPE        CLUSTER-IP     EXTERNAL-IP   PORT(S)    AGE   SELECTOR
cart   ClusterIP   10.96.44.120   <none>        8080/TCP   2d    app=cart
$ kubectl -n shop describe pod cart-7d9f8b6c5-2xq8w
Name:             cart-7d9f8b6c5-2xq8w
Namespace:        shop
Node:             w1/10.0.0.11
Labels:           app=cart
                  pod-template-hash=7d9f8b6c5
Status:           Running
IP:               10.244.1.33
Containers:
  cart:
    Image:          shop/cart:1.4.2
    Port:           8080/TCP
    State:          Running
      Started:      Mon, 04 Mar 2024 10:02:11 +0000
    Ready:          False
    Restart Count:  0
    Readiness:      http-get http://:8080/ready delay=0s timeout=1s period=10s #success=1 #failure=3
Conditions:
  Type              Status
  Ready             False
Events:
  Type     Reason     Age                 From     Message
  ----     ------     ----                ----     -------
  Warning  Unhealthy  2m (x41 over 9m)    kubelet  Readiness probe failed: HTTP probe failed with statuscode: 503
"""


def test_unready_pods_make_it_a_symptom_not_a_cause() -> None:
    found = run(service_no_endpoints, transcript_text(DESCRIBE_UNREADY))
    assert [(f.kind, f.role.value, f.key) for f in found] == [
        ("service-no-ready-endpoints", "symptom", "svc-no-ready-endpoints:shop/cart")]


TARGET_PORT = """$ kubectl -n web describe svc frontend
Name:              frontend
Namespace:         web
Labels:            <none>
Annotations:       <none>
Selector:          app=frontend
Type:              ClusterIP
IP:                10.100.80.7
IPs:               10.100.80.7
Port:              http  80/TCP
TargetPort:        8080/TCP
Endpoints:         10.244.2.41:8080
Session Affinity:  None
Events:            <none>
$ kubectl -n web get ep frontend
NAME       ENDPOINTS          AGE
frontend   10.244.2.41:8080   5h
$ kubectl -n web describe pod frontend-5b8c9d7f6-kq2lp
Name:             frontend-5b8c9d7f6-kq2lp
Namespace:        web
Node:             w2/10.0.0.12
Labels:           app=frontend
Status:           Running
IP:               10.244.2.41
Containers:
  nginx:
    Image:          nginx:1.25
    Port:           80/TCP
    State:          Running
      Started:      Mon, 04 Mar 2024 05:02:11 +0000
    Ready:          True
    Restart Count:  0
Conditions:
  Type              Status
  Ready             True
Events:             <none>
$ kubectl -n web exec deploy/toolbox -- curl -sS -m 3 http://10.100.80.7/
curl: (7) Failed to connect to 10.100.80.7 port 80: Connection refused
"""


def test_target_port_mismatch_traced_to_the_dnat() -> None:
    found = causes(run(service_no_endpoints, transcript_text(TARGET_PORT)))
    assert [f.kind for f in found] == ["service-targetport-mismatch"]
    f = found[0]
    assert "port 8080" in f.title and "declare 80" in f.title
    assert any("DNAT --to-destination 10.244.2.41:8080" in e.text for e in f.evidence)
    assert '"value":80' in f.fix[0].command
    assert "conn-error:ECONNREFUSED@?" in f.explains


def test_service_with_endpoints_on_the_right_port_is_healthy() -> None:
    fixed = TARGET_PORT.replace("TargetPort:        8080/TCP", "TargetPort:        80/TCP") \
        .replace("10.244.2.41:8080", "10.244.2.41:80")
    assert not run(service_no_endpoints, transcript_text(fixed))
