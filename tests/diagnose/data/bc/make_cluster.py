#!/usr/bin/env python3
"""Write the cluster/*.json files of the B/C scenario bundles: `kubectl get <kind> -A -o json`
lists with the API's own field names (docs/bundle.md), for the clusters make_bc_data.py builds
the nodes of. Deterministic; rerun after editing.

Usage: python3 tests/diagnose/data/bc/make_cluster.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCEN = HERE.parents[1] / "scenarios"
TS = "2024-03-04T09:12:44Z"


def lst(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def node(name: str, ip: str, pod_cidr: str, version: str, os_image: str, kernel: str,
         runtime: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                              "kubernetes.io/os": "linux"},
                     "annotations": annotations or {}, "creationTimestamp": TS},
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]} if pod_cidr else {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname",
                                                                  "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                            "lastTransitionTime": TS}],
            "nodeInfo": {"kubeletVersion": version, "kubeProxyVersion": version,
                         "osImage": os_image, "kernelVersion": kernel,
                         "containerRuntimeVersion": runtime, "architecture": "amd64",
                         "operatingSystem": "linux"},
        },
    }


def pod(ns: str, name: str, node_name: str, ip: str, image: str, *, labels: dict[str, str] | None
        = None, ports: list[dict[str, Any]] | None = None, host_network: bool = False,
        ready: bool = True, owner: tuple[str, str] | None = None,
        env: list[dict[str, str]] | None = None, host_ip: str = "") -> dict[str, Any]:
    cname = name.split("-")[0] if not name.startswith("kube-") else name.rsplit("-", 1)[0]
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels or {},
                            "creationTimestamp": TS}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                    "controller": True}]
    ctr: dict[str, Any] = {"name": cname, "image": image}
    if ports:
        ctr["ports"] = ports
    if env:
        ctr["env"] = env
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"nodeName": node_name, "hostNetwork": host_network, "containers": [ctr]},
        "status": {
            "phase": "Running", "hostIP": host_ip or ip, "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": cname, "image": image, "ready": ready,
                                   "restartCount": 0, "started": True,
                                   "state": {"running": {"startedAt": TS}}}],
        },
    }


def svc(ns: str, name: str, ip: str, ports: list[dict[str, Any]], selector: dict[str, str],
        typ: str = "ClusterIP", etp: str | None = None,
        external_ips: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": typ, "clusterIP": ip, "clusterIPs": [ip], "ports": ports,
                            "selector": selector, "sessionAffinity": "None",
                            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}
    if etp:
        spec["externalTrafficPolicy"] = etp
    if external_ips:
        spec["externalIPs"] = external_ips
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": TS}, "spec": spec,
            "status": {"loadBalancer": {}}}


def eps(ns: str, name: str, addrs: list[tuple[str, str]], ports: list[dict[str, Any]]
        ) -> dict[str, Any]:
    subsets = [{"addresses": [{"ip": ip, "nodeName": n} for ip, n in addrs], "ports": ports}] \
        if addrs else []
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": TS},
            "subsets": subsets}


def write(scenario: str, **lists: list[dict[str, Any]]) -> None:
    out = SCEN / scenario / "bundle" / "cluster"
    out.mkdir(parents=True, exist_ok=True)
    for kind, items in lists.items():
        (out / f"{kind}.json").write_text(json.dumps(lst(items), indent=2) + "\n")


def p(port: int, proto: str = "TCP", name: str | None = None, target: int | None = None,
      node_port: int | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"port": port, "protocol": proto, "targetPort": target or port}
    if name:
        d["name"] = name
    if node_port:
        d["nodePort"] = node_port
    return d


def b11() -> None:
    ver, osi, k, rt = "v1.12.10", "Ubuntu 16.04.6 LTS", "4.4.0-173-generic", "docker://18.6.3"
    nodes = [node("k8s-master", "172.16.20.10", "10.244.0.0/24", ver, osi, k, rt),
             node("k8s-node-a1", "172.16.20.11", "10.244.1.0/24", ver, osi, k, rt),
             node("k8s-node-a2", "172.16.20.12", "10.244.2.0/24", ver, osi, k, rt)]
    pods = [pod("kube-system", "coredns-576cbf47c7-8l2xk", "k8s-master", "10.244.0.2",
                "k8s.gcr.io/coredns:1.2.2", labels={"k8s-app": "kube-dns"}),
            pod("kube-system", "coredns-576cbf47c7-vz9qm", "k8s-master", "10.244.0.3",
                "k8s.gcr.io/coredns:1.2.2", labels={"k8s-app": "kube-dns"}),
            pod("kube-system", "kube-flannel-ds-amd64-5wq2d", "k8s-node-a1", "172.16.20.11",
                "quay.io/coreos/flannel:v0.9.1-amd64", host_network=True),
            pod("shop", "storefront-6d9c7b8f5-tq4x2", "k8s-node-a1", "10.244.1.12",
                "registry.shop.internal/storefront:2.14.0", labels={"app": "storefront"},
                ports=[{"containerPort": 8000, "protocol": "TCP"}]),
            pod("shop", "cart-api-7f8b9d6c4-m5r8w", "k8s-node-a2", "10.244.2.15",
                "registry.shop.internal/cart-api:1.9.3", labels={"app": "cart-api"},
                ports=[{"containerPort": 8080, "protocol": "TCP"}])]
    services = [svc("default", "kubernetes", "10.96.0.1", [p(443, name="https", target=6443)], {}),
                svc("kube-system", "kube-dns", "10.96.0.10",
                    [p(53, "UDP", "dns"), p(53, "TCP", "dns-tcp")], {"k8s-app": "kube-dns"}),
                svc("shop", "cart-api", "10.104.33.201", [p(8080, node_port=31080)],
                    {"app": "cart-api"}, typ="NodePort")]
    endpoints = [eps("default", "kubernetes", [("172.16.20.10", "k8s-master")],
                     [{"name": "https", "port": 6443, "protocol": "TCP"}]),
                 eps("kube-system", "kube-dns", [("10.244.0.2", "k8s-master"),
                                                 ("10.244.0.3", "k8s-master")],
                     [{"name": "dns", "port": 53, "protocol": "UDP"},
                      {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]),
                 eps("shop", "cart-api", [("10.244.2.15", "k8s-node-a2")],
                     [{"port": 8080, "protocol": "TCP"}])]
    write("b11-docker-forward-drop", nodes=nodes, pods=pods, services=services,
          endpoints=endpoints)


def b10() -> None:
    ver, osi, k, rt = "v1.27.6", "Ubuntu 22.04.3 LTS", "5.15.0-86-generic", "containerd://1.7.2"
    nodes = [node("kcp-01", "10.30.8.11", "10.42.0.0/24", ver, osi, k, rt,
                  {"flannel.alpha.coreos.com/backend-type": "vxlan"}),
             node("kw-02", "10.30.8.12", "10.42.1.0/24", ver, osi, k, rt,
                  {"flannel.alpha.coreos.com/backend-type": "vxlan"}),
             node("kw-03", "10.30.8.13", "10.42.3.0/24", ver, osi, k, rt,
                  {"flannel.alpha.coreos.com/backend-type": "vxlan"})]
    pods = [pod("kube-system", "coredns-5d78c9869d-8xk2w", "kw-03", "10.42.3.4",
                "registry.k8s.io/coredns/coredns:v1.10.1", labels={"k8s-app": "kube-dns"},
                ports=[{"containerPort": 53, "protocol": "UDP", "name": "dns"}]),
            pod("kube-system", "coredns-5d78c9869d-q2nhc", "kw-02", "10.42.1.9",
                "registry.k8s.io/coredns/coredns:v1.10.1", labels={"k8s-app": "kube-dns"},
                ports=[{"containerPort": 53, "protocol": "UDP", "name": "dns"}]),
            pod("apps", "report-worker-84c6d7f9b8-zr6kd", "kw-03", "10.42.3.7",
                "ghcr.io/acme/report-worker:3.2.1", labels={"app": "report-worker"}),
            pod("apps", "orders-6b7c9d5f4-hx8pl", "kw-03", "10.42.3.12",
                "ghcr.io/acme/orders:5.0.4", labels={"app": "orders"},
                ports=[{"containerPort": 8080, "protocol": "TCP"}]),
            pod("kube-flannel", "kube-flannel-ds-7r2mq", "kw-03", "10.30.8.13",
                "docker.io/flannel/flannel:v0.22.3", host_network=True),
            pod("kube-system", "kube-proxy-4xlq7", "kw-03", "10.30.8.13",
                "registry.k8s.io/kube-proxy:v1.27.6", host_network=True)]
    services = [svc("default", "kubernetes", "10.43.0.1", [p(443, name="https", target=6443)], {}),
                svc("kube-system", "kube-dns", "10.43.0.10",
                    [p(53, "UDP", "dns"), p(53, "TCP", "dns-tcp")], {"k8s-app": "kube-dns"}),
                svc("apps", "orders", "10.43.118.20", [p(80, name="http", target=8080)],
                    {"app": "orders"})]
    endpoints = [eps("kube-system", "kube-dns", [("10.42.1.9", "kw-02"), ("10.42.3.4", "kw-03")],
                     [{"name": "dns", "port": 53, "protocol": "UDP"},
                      {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]),
                 eps("apps", "orders", [("10.42.3.12", "kw-03")],
                     [{"name": "http", "port": 8080, "protocol": "TCP"}])]
    write("b10-brnf-flannel", nodes=nodes, pods=pods, services=services, endpoints=endpoints)


def c18b() -> None:
    ver, osi, k, rt = "v1.28.4", "Rocky Linux 9.3 (Blue Onyx)", "5.14.0-362.8.1.el9_3.x86_64", \
        "containerd://1.7.11"
    nodes = [node("cp-a", "172.31.40.10", "10.244.0.0/24", ver, osi, k, rt,
                  {"projectcalico.org/IPv4VXLANTunnelAddr": "192.168.84.128"}),
             node("worker-b", "172.31.40.22", "10.244.1.0/24", ver, osi, k, rt,
                  {"projectcalico.org/IPv4VXLANTunnelAddr": "192.168.171.64"})]
    calico_env = [{"name": "CALICO_IPV4POOL_CIDR", "value": "192.168.0.0/16"},
                  {"name": "CALICO_IPV4POOL_VXLAN", "value": "Always"}]
    pods = [pod("calico-system", "calico-node-x7k2p", "worker-b", "172.31.40.22",
                "docker.io/calico/node:v3.26.4", host_network=True, env=calico_env),
            pod("kube-system", "coredns-5dd5756b68-7wlt6", "worker-b", "192.168.171.66",
                "registry.k8s.io/coredns/coredns:v1.10.1", labels={"k8s-app": "kube-dns"}),
            pod("billing", "invoice-api-5c4f8b7d9-d2kqs", "worker-b", "192.168.171.70",
                "quay.io/acme/invoice-api:4.1.0", labels={"app": "invoice-api"}),
            pod("billing", "ledger-0", "cp-a", "192.168.84.140", "docker.io/library/postgres:15.5",
                labels={"app": "ledger"}, ports=[{"containerPort": 5432, "protocol": "TCP"}])]
    services = [svc("default", "kubernetes", "10.96.0.1", [p(443, name="https", target=6443)], {}),
                svc("kube-system", "kube-dns", "10.96.0.10", [p(53, "UDP", "dns")],
                    {"k8s-app": "kube-dns"}),
                svc("billing", "ledger", "10.98.140.3", [p(5432)], {"app": "ledger"})]
    endpoints = [eps("billing", "ledger", [("192.168.84.140", "cp-a")],
                     [{"port": 5432, "protocol": "TCP"}])]
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
          "data": {"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
                                  "bindAddress: 0.0.0.0\nclusterCIDR: 10.244.0.0/16\n"
                                  "kind: KubeProxyConfiguration\nmode: \"\"\n"}}
    write("c18-calico-pool-mismatch", nodes=nodes, pods=pods, services=services,
          endpoints=endpoints, configmaps=[cm])


def c26() -> None:
    ver, osi, k, rt = "v1.28.5-eks-5e0fdde", "Amazon Linux 2", "5.10.205-195.807.amzn2.x86_64", \
        "containerd://1.7.11"
    nodes = [node("ip-10-0-1-17.ec2.internal", "10.0.1.17", "", ver, osi, k, rt),
             node("ip-10-0-2-33.ec2.internal", "10.0.2.33", "", ver, osi, k, rt)]
    pods = [pod("ingress-nginx", "ingress-nginx-controller-7d4db76476-8tj5c",
                "ip-10-0-1-17.ec2.internal", "10.0.1.140",
                "registry.k8s.io/ingress-nginx/controller:v1.9.5",
                labels={"app.kubernetes.io/name": "ingress-nginx",
                        "app.kubernetes.io/component": "controller"},
                ports=[{"containerPort": 443, "protocol": "TCP", "name": "https"}]),
            pod("kube-system", "aws-node-4mzq9", "ip-10-0-2-33.ec2.internal", "10.0.2.33",
                "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.16.0",
                host_network=True)]
    services = [svc("ingress-nginx", "ingress-nginx-controller", "172.20.61.9",
                    [p(443, name="https", node_port=31443)],
                    {"app.kubernetes.io/name": "ingress-nginx",
                     "app.kubernetes.io/component": "controller"}, typ="NodePort", etp="Local")]
    endpoints = [eps("ingress-nginx", "ingress-nginx-controller",
                     [("10.0.1.140", "ip-10-0-1-17.ec2.internal")],
                     [{"name": "https", "port": 443, "protocol": "TCP"}])]
    write("c26-etp-local-eks", nodes=nodes, pods=pods, services=services, endpoints=endpoints)


def c22() -> None:
    ver, osi, k, rt = "v1.24.17", "Ubuntu 20.04.6 LTS", "5.4.0-169-generic", "containerd://1.6.24"
    nodes = [node("k8s-ipvs-w3", "10.10.20.23", "10.233.110.0/24", ver, osi, k, rt)]
    pods = [pod("media", "nfs-client-provisioner-6f9b8c7d5-kq2xs", "k8s-ipvs-w3",
                "10.233.110.14", "registry.k8s.io/sig-storage/nfs-subdir-external-provisioner:v4.0.2",
                labels={"app": "nfs-client-provisioner"})]
    services = [svc("media", "jellyfin", "10.233.21.90", [p(8096, name="http")],
                    {"app": "jellyfin"}, external_ips=["10.10.20.5"])]
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
          "data": {"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
                                  "clusterCIDR: 10.233.64.0/18\nipvs:\n  strictARP: false\n"
                                  "kind: KubeProxyConfiguration\nmode: ipvs\n"}}
    write("c22-ipvs-externalip-nfs", nodes=nodes, pods=pods, services=services, configmaps=[cm])


def healthy() -> None:
    ver, osi, k, rt = "v1.29.2", "Debian GNU/Linux 12 (bookworm)", "6.1.0-18-amd64", \
        "containerd://1.6.28"
    nodes = [node("hc-cp", "10.50.0.10", "10.244.0.0/24", ver, osi, k, rt),
             node("hc-w1", "10.50.0.11", "10.244.1.0/24", ver, osi, k, rt),
             node("hc-w2", "10.50.0.12", "10.244.2.0/24", ver, osi, k, rt)]
    pods = [pod("kube-system", "coredns-76f75df574-h2kqz", "hc-cp", "10.244.0.4",
                "registry.k8s.io/coredns/coredns:v1.11.1", labels={"k8s-app": "kube-dns"}),
            pod("kube-system", "coredns-76f75df574-xw8mp", "hc-w1", "10.244.1.6",
                "registry.k8s.io/coredns/coredns:v1.11.1", labels={"k8s-app": "kube-dns"}),
            pod("web", "checkout-6c9f7d8b5-p4t2n", "hc-w1", "10.244.1.9",
                "ghcr.io/acme/checkout:2.3.0", labels={"app": "checkout"}),
            pod("web", "shop-5d7b9c6f4-9kqzr", "hc-w2", "10.244.2.8", "ghcr.io/acme/shop:7.1.2",
                labels={"app": "shop"}, ports=[{"containerPort": 8080, "protocol": "TCP"}])]
    services = [svc("default", "kubernetes", "10.96.0.1", [p(443, name="https", target=6443)], {}),
                svc("kube-system", "kube-dns", "10.96.0.10", [p(53, "UDP", "dns")],
                    {"k8s-app": "kube-dns"}),
                svc("web", "shop", "10.107.9.200", [p(80, target=8080, node_port=30480)],
                    {"app": "shop"}, typ="NodePort")]
    endpoints = [eps("default", "kubernetes", [("10.50.0.10", "hc-cp")],
                     [{"name": "https", "port": 6443, "protocol": "TCP"}]),
                 eps("kube-system", "kube-dns", [("10.244.0.4", "hc-cp"), ("10.244.1.6", "hc-w1")],
                     [{"name": "dns", "port": 53, "protocol": "UDP"}]),
                 eps("web", "shop", [("10.244.2.8", "hc-w2")], [{"port": 8080, "protocol": "TCP"}])]
    write("bc-healthy-flannel-docker", nodes=nodes, pods=pods, services=services,
          endpoints=endpoints)


if __name__ == "__main__":
    for fn in (b11, b10, c18b, c26, c22, healthy):
        fn()
