"""Failure mode 50: TLS / kubeconfig failures that look like network faults.

A TLS-level error means the TCP handshake succeeded: the route, the firewall, kube-proxy and
the listener all worked, and the failure is in certificates or credentials. Seen as:
* `x509: certificate is valid for A, B, not C` — the certificate's SANs do not contain the
  address dialled (typically after the node was re-addressed);
* `x509: certificate signed by unknown authority` — a kubeconfig/CA from another cluster;
* `x509: certificate has expired or is not yet valid` — expired certs or clock skew;
* `remote error: tls: internal error` on `kubectl logs/exec` — kubelet has no serving
  certificate yet (its CSR is pending);
* `The connection to the server localhost:8080 was refused` — kubectl found no kubeconfig and
  fell back to its built-in default.

This detector yields a cause of kind `not-a-network-fault` that explains those symptoms, so
they are not left for network causes to claim. Where the client's data path is known, a trace
to the dialled address shows the network path exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from netsleuth.diagnose.detectors._common import is_service_ip, node_key
from netsleuth.diagnose.detectors._nodenet import (
    Candidate,
    Hit,
    first_ip,
    interface_of,
    passes,
    scan,
    trace_line,
)
from netsleuth.diagnose.evidence import Evidence
from netsleuth.diagnose.findings import EvidenceLine, Finding, Fix, Role
from netsleuth.diagnose.registry import detector
from netsleuth.model.net import IPAddress
from netsleuth.parse.logs import extract_net_error

KIND = "not-a-network-fault"
SAN = re.compile(r"x509: certificate is valid for ([^\n]+?), not ([^\s\"\\,]+)")
UNKNOWN_CA = re.compile(r"x509: certificate signed by unknown authority")
EXPIRED = re.compile(r"x509: certificate has expired or is not yet valid(?:: current time "
                     r"(\S+) is (?:after|before) (\S+))?")
KUBELET_TLS = re.compile(r"remote error: tls: (internal error|bad certificate|"
                         r"unrecognized name)")
NO_KUBECONFIG = re.compile(r"The connection to the server (localhost|127\.0\.0\.1):8080 was "
                           r"refused")
UNAUTHORIZED = re.compile(r"error: You must be logged in to the server \(Unauthorized\)")


def _dst_of(hit: Hit) -> tuple[IPAddress | None, int | None]:
    err = extract_net_error(hit.text)
    if err is not None and err.dst_ip is not None:
        return err.dst_ip, err.dst_port
    m = re.search(r"https://\[?([0-9a-fA-F.:]+?)\]?(?::(\d+))?[/\"\s]", hit.text)
    if m:
        return first_ip(m.group(1)), int(m.group(2)) if m.group(2) else 443
    return None, None


def _keys(ev: Evidence, host: str, hits: list[Hit], errno: str) -> list[str]:
    """The keys the log/kubectl symptom detectors give these lines."""
    out: list[str] = []
    for h in hits:
        dst, _ = _dst_of(h)
        out.append(f"{'svc-unreachable' if is_service_ip(ev, dst) else 'conn-error'}:{errno}"
                   f"@{host}")
    return out


@detector("F50", title="TLS / kubeconfig failures mistaken for network faults", needs=(),
          mode="50")
def tls_not_network(ev: Evidence) -> Iterator[Finding]:
    variants: dict[str, dict[str, list[Hit]]] = {}
    for name, rx in (("san", SAN), ("unknown-ca", UNKNOWN_CA), ("expired", EXPIRED),
                     ("kubelet-tls", KUBELET_TLS), ("no-kubeconfig", NO_KUBECONFIG),
                     ("unauthorized", UNAUTHORIZED)):
        for hit in scan(ev, rx):
            variants.setdefault(node_key(hit.node), {}).setdefault(name, []).append(hit)
    for host, found in sorted(variants.items()):
        yield _finding(ev, host, found)


def _finding(ev: Evidence, host: str, found: dict[str, list[Hit]]) -> Finding:
    evidence: list[EvidenceLine] = []
    explains: list[str] = []
    fixes: list[Fix] = []
    parts: list[str] = []
    titles: list[str] = []
    distro = _distro(ev)
    if "san" in found:
        hits = found["san"]
        m = hits[0].match
        sans, wanted = [s.strip() for s in m.group(1).split(",")], m.group(2)
        evidence.extend(h.evidence for h in hits[:2])
        explains += _keys(ev, host, hits, "TLS")
        wanted_ip = first_ip(wanted)
        owner = next((n.name for n in ev.nodes.values()
                      if wanted_ip is not None and interface_of(n.state, wanted_ip)), None)
        node_has = {a.ip for n in ev.nodes.values() for a in n.state.addresses}
        listed = [ip for s_ in sans if (ip := first_ip(s_)) is not None]
        covered = [ip for ip in listed if ip in node_has and not ip.is_loopback]
        titles.append(f"the apiserver certificate does not cover {wanted}")
        parts.append(
            f"The apiserver's certificate is valid for {', '.join(sans)}, not {wanted}."
            + (f" {wanted} is {owner}'s current address and none of the certificate's other "
               "addresses is on a node now: the node was re-addressed after the certificate "
               "was issued." if owner and not covered else
               f" {wanted} is {owner}'s current address." if owner else ""))
        reachable = covered[0] if covered else None
        fixes.append(Fix(_san_fix(distro, wanted), "now",
                         f"reissue the serving certificate with {wanted} in its SANs"))
        if reachable is not None:
            fixes.append(Fix(f"or point the kubeconfig at an address the certificate covers: "
                             f"kubectl config set-cluster <cluster> --server=https://{reachable}:"
                             f"{_port(hits[0])}", "now"))
    if "unknown-ca" in found:
        hits = found["unknown-ca"]
        evidence.extend(h.evidence for h in hits[:2])
        explains += _keys(ev, host, hits, "TLS")
        titles.append("the kubeconfig trusts a different CA")
        parts.append("The server's certificate is signed by a CA the client does not trust: "
                     "the kubeconfig (or the pod's service-account CA) belongs to another "
                     "cluster or to a previous `kubeadm init`.")
        fixes.append(Fix("cp /etc/kubernetes/admin.conf $HOME/.kube/config   # after a "
                         "kubeadm reset/init, the old ~/.kube/config has the old CA", "now"))
    if "expired" in found:
        hits = found["expired"]
        evidence.extend(h.evidence for h in hits[:2])
        explains += _keys(ev, host, hits, "TLS")
        titles.append("a certificate has expired (or the clock is wrong)")
        parts.append("A certificate is outside its validity period: expired cluster "
                     "certificates (kubeadm certs last one year) or clock skew on the client.")
        fixes.append(Fix("kubeadm certs check-expiration && kubeadm certs renew all && "
                         "systemctl restart kubelet   # and restart the control-plane static "
                         "pods; check `timedatectl` for clock skew", "now"))
    if "kubelet-tls" in found:
        hits = found["kubelet-tls"]
        evidence.extend(h.evidence for h in hits[:2])
        explains += [f"kubelet-unreachable@{h.node or '?'}" for h in hits]
        explains.append("kubelet-unreachable@?")
        titles.append("kubelet has no valid serving certificate")
        parts.append("The apiserver reached kubelet (TLS answered) but the handshake failed: "
                     "with serverTLSBootstrap the kubelet's serving certificate CSR is still "
                     "pending.")
        fixes.append(Fix("kubectl get csr | grep Pending; kubectl certificate approve <csr>",
                         "now", "approve the kubelet-serving CSRs"))
    if "no-kubeconfig" in found:
        hits = found["no-kubeconfig"]
        evidence.extend(h.evidence for h in hits[:2])
        titles.append("kubectl has no kubeconfig (it dials localhost:8080)")
        parts.append("kubectl found no kubeconfig and fell back to http://localhost:8080, "
                     "where nothing listens: the cluster itself may be fine.")
        if _only_refusals_are_8080(ev, host):
            explains.append(f"conn-error:ECONNREFUSED@{host}")
        fixes.append(Fix("mkdir -p $HOME/.kube && sudo cp -i /etc/kubernetes/admin.conf "
                         "$HOME/.kube/config && sudo chown $(id -u):$(id -g) $HOME/.kube/config"
                         "   # or: export KUBECONFIG=/etc/kubernetes/admin.conf", "now"))
    if "unauthorized" in found:
        hits = found["unauthorized"]
        evidence.extend(h.evidence for h in hits[:2])
        titles.append("the client's credentials are rejected")
        parts.append("The apiserver answered 401 Unauthorized: transport and TLS work, the "
                     "credentials (token, client certificate) do not.")
        fixes.append(Fix("refresh the kubeconfig's credentials (cloud: re-run the "
                         "get-credentials command; kubeadm: kubeadm kubeconfig user ...)",
                         "now"))
    transport = _transport_trace(ev, host, [h for hs in found.values() for h in hs])
    if transport is not None:
        evidence.append(transport)
    where = host
    return Finding(
        detector="F50", kind=KIND, role=Role.CAUSE, key=f"cause:{KIND}@{where}",
        title=f"Not a network fault: {'; '.join(titles)}"
              + (f" (on {host})" if host != "?" else ""),
        node=host if host in ev.nodes else None, confidence=0.9,
        why=("a TLS/credential error means the TCP connection was made: the network path "
             "works" if any(k in found for k in ("san", "unknown-ca", "expired", "kubelet-tls",
                                                 "unauthorized"))
             else "kubectl's own message: it is using its built-in default server"),
        evidence=tuple(dict.fromkeys(evidence)), explains=tuple(dict.fromkeys(explains)),
        fix=tuple(fixes),
        detail=" ".join(parts) + " Network checks (routes, firewalls, kube-proxy) for these "
                                 "errors are not needed.",
    )


def _port(hit: Hit) -> int:
    return _dst_of(hit)[1] or 6443


def _distro(ev: Evidence) -> str:
    for raw in ev.raw:
        cmd = (raw.command or "").strip().removeprefix("sudo ").strip()
        if cmd.startswith("microk8s"):
            return "microk8s"
        if cmd.startswith("k3s"):
            return "k3s"
    return "kubeadm"


def _san_fix(distro: str, wanted: str) -> str:
    if distro == "microk8s":
        return ("add `IP.99 = " + wanted + "` under [ alt_names ] in "
                "/var/snap/microk8s/current/certs/csr.conf.template, then: "
                "sudo microk8s refresh-certs --cert server.crt")
    if distro == "k3s":
        return (f"add `--tls-san={wanted}` to the k3s server flags (or tls-san in "
                "/etc/rancher/k3s/config.yaml), then: systemctl restart k3s")
    return ("mv /etc/kubernetes/pki/apiserver.{crt,key} /root/ && kubeadm init phase certs "
            f"apiserver --apiserver-cert-extra-sans={wanted} && crictl pods --name "
            "kube-apiserver -q | xargs crictl stopp   # the static pod restarts with the new "
            "certificate")


def _only_refusals_are_8080(ev: Evidence, host: str) -> bool:
    for ln in ev.objects.logs:
        err = ln.net_error
        if err is not None and err.errno == "ECONNREFUSED" and (ev.node_for(ln.host) or "?") \
                == host and err.dst_port != 8080:
            return False
    return True


def _transport_trace(ev: Evidence, host: str, hits: list[Hit]) -> EvidenceLine | None:
    node = ev.nodes.get(host)
    if node is None:
        return None
    for h in hits:
        dst, port = _dst_of(h)
        if dst is None or dst.is_loopback:
            continue
        t = Candidate("", dst, port or 443).run(node)
        if passes(t):
            return trace_line(t, f"the network path from {host} to {dst}:{port or 443} exists")
    return None
