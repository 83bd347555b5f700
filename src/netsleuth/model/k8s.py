"""Cluster objects as far as network diagnosis needs them (pods, services, nodes, events, logs).

These come from kubectl text (`describe`, `get` tables), kubectl/API JSON, `kubectl cluster-info
dump`, pod logs and node process listings. Tables show less than JSON, so most fields are
optional: `None` means "not shown in the evidence", never "false" or "empty". Every object keeps
the `SourceRef` of the line it was read from so findings can quote it.

IP addresses are kept as `ipaddress` objects where the evidence holds a valid address; a value
such as `<none>` or `<pending>` simply yields no address.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from netsleuth.model.net import IPAddress, IPNetwork
from netsleuth.model.source import SYNTHETIC, SourceRef

T = TypeVar("T")


def parse_ip(text: str | None) -> IPAddress | None:
    """An address from kubectl/log text (`10.96.0.1`, `[::1]`, `fe80::1%eth0`), else None."""
    if not text:
        return None
    value = text.strip().strip("[]")
    if "%" in value:  # IPv6 zone index (fe80::1%eth0) is not part of the address
        value = value.split("%", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def parse_cidr(text: str | None) -> IPNetwork | None:
    """A network from `10.96.0.0/12` (host bits tolerated, as the apiserver does), else None."""
    if not text:
        return None
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def split_hostport(text: str) -> tuple[str, int | None]:
    """`10.96.0.1:443` → ("10.96.0.1", 443); `[::1]:9099` → ("::1", 9099); `host` → (host, None)."""
    value = text.strip()
    if value.startswith("["):
        end = value.find("]")
        if end > 0:
            host = value[1:end]
            rest = value[end + 1 :]
            if rest.startswith(":") and rest[1:].isdigit():
                return host, int(rest[1:])
            return host, None
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        if port.isdigit():
            return host, int(port)
    return value, None


# --- conditions, containers, pods -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    """A pod or node condition (`Ready True`, `NetworkUnavailable False ... CalicoIsUp`)."""

    type: str
    status: str  # "True" / "False" / "Unknown" as Kubernetes spells them
    reason: str | None = None
    message: str | None = None
    source: SourceRef = SYNTHETIC

    @property
    def is_true(self) -> bool:
        return self.status == "True"


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    """One container of a pod: spec bits that matter for networking plus its runtime state.

    `state` is "running", "waiting" or "terminated" (lower case, as in the API's
    containerStatuses[].state keys); `reason` is the state's reason (CrashLoopBackOff,
    Completed, Error, ContainerCreating, ...).
    """

    name: str | None
    image: str | None = None
    state: str | None = None
    reason: str | None = None
    message: str | None = None
    exit_code: int | None = None
    started: str | None = None
    finished: str | None = None
    last_state: str | None = None
    last_reason: str | None = None
    last_exit_code: int | None = None
    ready: bool | None = None
    restart_count: int | None = None
    init: bool = False
    ports: tuple[str, ...] = ()  # "9099/TCP", "53/UDP" as shown
    host_ports: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    liveness: str | None = None
    readiness: str | None = None
    source: SourceRef = SYNTHETIC


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod. `status` is the STATUS column / describe `Status:` (CrashLoopBackOff, Completed,
    Running, ...), which is more telling than `phase`; both are kept when known.

    `host_network` is None when the evidence does not say (tables never do). When the pod IP
    equals its node's IP the parsers set it True: only hostNetwork pods share the node address.
    """

    namespace: str | None
    name: str | None
    node: str | None = None
    node_ip: IPAddress | None = None  # describe's `Node: admin/192.168.56.3`, JSON status.hostIP
    phase: str | None = None
    status: str | None = None
    reason: str | None = None
    ips: tuple[IPAddress, ...] = ()
    host_network: bool | None = None
    containers: tuple[ContainerStatus, ...] = ()
    conditions: tuple[Condition, ...] = ()
    owner_kind: str | None = None
    owner_name: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    ready: str | None = None  # "0/1" READY column
    restarts: int | None = None
    age: str | None = None
    events: tuple[Event, ...] = ()
    source: SourceRef = SYNTHETIC

    @property
    def ip(self) -> IPAddress | None:
        return self.ips[0] if self.ips else None

    @property
    def key(self) -> str:
        return f"{self.namespace or '?'}/{self.name or '?'}"


# --- nodes ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class K8sNode:
    """A Kubernetes Node object (not the Linux data path: that is `model.node.NodeState`)."""

    name: str
    internal_ips: tuple[IPAddress, ...] = ()
    external_ips: tuple[IPAddress, ...] = ()
    hostname: str | None = None
    conditions: tuple[Condition, ...] = ()
    pod_cidrs: tuple[IPNetwork, ...] = ()
    roles: tuple[str, ...] = ()
    status: str | None = None  # STATUS column: Ready, NotReady, Ready,SchedulingDisabled
    kubelet_version: str | None = None
    kube_proxy_version: str | None = None
    os_image: str | None = None
    kernel_version: str | None = None
    container_runtime: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()
    source: SourceRef = SYNTHETIC

    def condition(self, type_: str) -> Condition | None:
        for cond in self.conditions:
            if cond.type == type_:
                return cond
        return None

    @property
    def ready(self) -> bool | None:
        cond = self.condition("Ready")
        if cond is not None:
            return cond.is_true
        if self.status is not None:
            return self.status.split(",")[0] == "Ready"
        return None


# --- services and endpoints -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of a Service. `target_port` stays text: it may be a number or a port name."""

    port: int
    protocol: str = "TCP"
    name: str | None = None
    target_port: str | None = None
    node_port: int | None = None
    endpoints: tuple[str, ...] = ()  # describe's per-port `Endpoints:` ("192.168.56.3:6443")


@dataclass(frozen=True, slots=True)
class Service:
    """A Service. `cluster_ips` is empty for headless (`None`) services; `headless` says so."""

    namespace: str | None
    name: str | None
    type: str | None = None
    cluster_ips: tuple[IPAddress, ...] = ()
    headless: bool = False
    external_ips: tuple[str, ...] = ()  # may hold LoadBalancer hostnames, so text
    ports: tuple[ServicePort, ...] = ()
    selector: Mapping[str, str] | None = None  # None = not shown; {} = no selector
    endpoints: tuple[str, ...] = ()  # all endpoints shown by describe, "ip:port"
    endpoints_truncated: bool = False  # describe's "+ 3 more..."
    session_affinity: str | None = None
    external_traffic_policy: str | None = None
    internal_traffic_policy: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    age: str | None = None
    events: tuple[Event, ...] = ()
    source: SourceRef = SYNTHETIC

    @property
    def cluster_ip(self) -> IPAddress | None:
        return self.cluster_ips[0] if self.cluster_ips else None

    @property
    def key(self) -> str:
        return f"{self.namespace or '?'}/{self.name or '?'}"


@dataclass(frozen=True, slots=True)
class EndpointAddress:
    ip: IPAddress | None
    ready: bool = True
    node: str | None = None
    target: str | None = None  # "Pod/coredns-9d85f5447-sjs2j"
    hostname: str | None = None
    raw: str = ""  # as shown when the IP could not be parsed


@dataclass(frozen=True, slots=True)
class EndpointPort:
    port: int
    protocol: str = "TCP"
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Endpoints:
    """An Endpoints object or an EndpointSlice (`kind` tells which).

    For Endpoints, not-ready addresses carry ready=False. `service` is the Service the object
    belongs to (the same name for Endpoints; the kubernetes.io/service-name label for slices).
    `truncated` marks table output such as `10.0.0.1:53,10.0.0.2:53 + 3 more...`.
    """

    namespace: str | None
    name: str
    kind: str = "Endpoints"
    service: str | None = None
    addresses: tuple[EndpointAddress, ...] = ()
    ports: tuple[EndpointPort, ...] = ()
    address_type: str | None = None
    truncated: bool = False
    shown: tuple[str, ...] = ()  # table form: "ip:port" strings as shown
    source: SourceRef = SYNTHETIC

    @property
    def ready_addresses(self) -> tuple[EndpointAddress, ...]:
        return tuple(a for a in self.addresses if a.ready)


# --- events, logs, processes ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes event as shown by describe, `kubectl get events`, `kubectl events` or JSON.

    `object` is "kind/name" in lower case when known (`pod/calico-node-7kvkf`); for an events
    table inside `describe` it is the described object. `age` is the age column as written
    (`4m3s`), `over` the span of repeats (`129m` from `(x575 over 129m)`). `source_host` is the
    node of `From: kubelet, admin` (older kubectl) or the event's source.host.
    """

    type: str | None
    reason: str | None
    message: str
    object: str | None = None
    namespace: str | None = None
    count: int = 1
    age: str | None = None
    over: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    source_component: str | None = None
    source_host: str | None = None
    source: SourceRef = SYNTHETIC


@dataclass(frozen=True, slots=True)
class NetError:
    """A socket-level error as a program reported it, normalised for errno reasoning.

    `errno` is the errno name (ENETUNREACH, EHOSTUNREACH, ECONNREFUSED, ETIMEDOUT, ECONNRESET,
    EPIPE, EACCES, EPERM, EINVAL, EADDRINUSE), or a class where no single errno exists:
    "TIMEOUT" (Go i/o timeout, context deadline, client timeout: a silent drop somewhere),
    "TLS" (handshake or certificate: transport worked), "NXDOMAIN"/"SERVFAIL" (DNS answers).
    `text` is the phrase as written ("network is unreachable"); `detail` the whole error.
    """

    errno: str
    text: str
    op: str | None = None  # dial, read, write, connect, lookup, bind, sendmsg
    proto: str | None = None  # tcp, udp
    src: str | None = None  # "10.244.0.5:55742" for `read udp A->B`
    dst: str | None = None  # "10.96.0.1:443", "[::1]:9099"
    url: str | None = None  # the HTTP request that failed, when logged
    detail: str = ""

    @property
    def dst_ip(self) -> IPAddress | None:
        if self.dst is None:
            return None
        return parse_ip(split_hostport(self.dst)[0])

    @property
    def dst_port(self) -> int | None:
        if self.dst is None:
            return None
        return split_hostport(self.dst)[1]


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log line (or a run of identical ones: `count` > 1 after collapsing).

    `message` is the text without timestamp/level prefix; `text` the line as written (the first
    occurrence). `timestamp` is as written (`2024-02-16 04:58:08.483`, klog `0215 01:25:31.222664`
    has no year); `level` is normalised to DEBUG/INFO/WARNING/ERROR/FATAL. `host` is the node a
    journal line names (`Feb 15 09:25:15 admin kubelet[1234]: ...`).
    """

    text: str
    message: str
    pod: str | None = None
    container: str | None = None
    namespace: str | None = None
    component: str | None = None  # kubelet, containerd, calico, coredns, ... when recognisable
    timestamp: str | None = None
    level: str | None = None
    host: str | None = None
    net_error: NetError | None = None
    count: int = 1
    last_timestamp: str | None = None
    source: SourceRef = SYNTHETIC
    last_source: SourceRef | None = None


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """A process from `ps` (or a static-pod command line) with its flags parsed.

    `flags` maps the flag name without dashes to its value (`service-cluster-ip-range` →
    `10.96.0.0/12`); a boolean flag given without value maps to "true". A flag given twice keeps
    the last value, as Go's flag package does.
    """

    program: str  # basename of argv[0]: kube-apiserver, kubelet, kube-proxy, ...
    argv: tuple[str, ...]
    flags: Mapping[str, str] = field(default_factory=dict)
    pid: int | None = None
    ppid: int | None = None
    user: str | None = None
    host: str | None = None
    source: SourceRef = SYNTHETIC

    def flag(self, name: str) -> str | None:
        return self.flags.get(name.lstrip("-"))

    @property
    def cmdline(self) -> str:
        return " ".join(self.argv)


# --- aggregates -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClusterObjects:
    """Everything cluster-level parsed from one input (a transcript, a dump, a bundle)."""

    pods: tuple[Pod, ...] = ()
    services: tuple[Service, ...] = ()
    nodes: tuple[K8sNode, ...] = ()
    endpoints: tuple[Endpoints, ...] = ()
    events: tuple[Event, ...] = ()
    logs: tuple[LogLine, ...] = ()
    processes: tuple[ProcessInfo, ...] = ()
    configmaps: tuple[ConfigMap, ...] = ()
    versions: tuple[Fact[str], ...] = ()  # "v1.17.0" from `kubectl version`, images, ...
    apiserver_urls: tuple[Fact[str], ...] = ()  # `kubectl cluster-info`, kubeconfig
    problems: tuple[str, ...] = ()  # inputs that could not be parsed, with file:line

    def merge(self, other: ClusterObjects) -> ClusterObjects:
        return ClusterObjects(
            pods=self.pods + other.pods,
            services=self.services + other.services,
            nodes=self.nodes + other.nodes,
            endpoints=self.endpoints + other.endpoints,
            events=self.events + other.events,
            logs=self.logs + other.logs,
            processes=self.processes + other.processes,
            configmaps=self.configmaps + other.configmaps,
            versions=self.versions + other.versions,
            apiserver_urls=self.apiserver_urls + other.apiserver_urls,
            problems=self.problems + other.problems,
        )


@dataclass(frozen=True, slots=True)
class ConfigMap:
    """A ConfigMap's data (kube-proxy's config.conf, flannel's net-conf.json, coredns Corefile)."""

    namespace: str | None
    name: str
    data: Mapping[str, str] = field(default_factory=dict)
    source: SourceRef = SYNTHETIC


@dataclass(frozen=True, slots=True)
class Fact(Generic[T]):
    """One derived fact with where it came from and how (`--service-cluster-ip-range` flag)."""

    value: T
    how: str
    sources: tuple[SourceRef, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterFacts:
    """Cluster-wide settings derived from all evidence. Each list holds every distinct value
    seen (disagreements are evidence too: two service CIDRs mean a misconfiguration), best
    evidence first: flags of the running process before defaults inferred from objects."""

    service_cidrs: tuple[Fact[IPNetwork], ...] = ()
    pod_cidrs: tuple[Fact[IPNetwork], ...] = ()
    cluster_dns_ips: tuple[Fact[IPAddress], ...] = ()
    apiserver_endpoints: tuple[Fact[str], ...] = ()  # "192.168.56.3:6443"
    kubernetes_service_ips: tuple[Fact[IPAddress], ...] = ()  # default/kubernetes ClusterIP
    cni: tuple[Fact[str], ...] = ()  # calico, flannel, cilium, weave, canal, kube-router, ...
    kube_proxy_mode: tuple[Fact[str], ...] = ()  # iptables, ipvs, nftables, none
    k8s_version: tuple[Fact[str], ...] = ()
    node_ips: Mapping[str, tuple[IPAddress, ...]] = field(default_factory=dict)

    @staticmethod
    def first(facts: tuple[Fact[T], ...]) -> T | None:
        return facts[0].value if facts else None


def _add_fact(bucket: list[Fact[T]], value: T, how: str, source: SourceRef) -> None:
    for i, fact in enumerate(bucket):
        if fact.value == value:
            if source not in fact.sources:
                bucket[i] = Fact(fact.value, fact.how, (*fact.sources, source))
            return
    bucket.append(Fact(value, how, (source,)))


_CNI_POD_PREFIXES: tuple[tuple[str, str], ...] = (
    ("calico-node", "calico"),
    ("canal", "canal"),
    ("kube-flannel", "flannel"),
    ("flannel", "flannel"),
    ("cilium", "cilium"),
    ("weave-net", "weave"),
    ("kube-router", "kube-router"),
    ("antrea-agent", "antrea"),
    ("aws-node", "aws-vpc-cni"),
    ("kube-ovn", "kube-ovn"),
)
_CNI_PROGRAMS: dict[str, str] = {
    "calico-node": "calico",
    "flanneld": "flannel",
    "cilium-agent": "cilium",
    "weaver": "weave",
    "kube-router": "kube-router",
    "antrea-agent": "antrea",
}
_KUBE_PROXY_MODE_LOG = (
    ("using ipvs proxier", "ipvs"),
    ("using ipvs proxy", "ipvs"),
    ("using iptables proxier", "iptables"),
    ("using iptables proxy", "iptables"),
    ("using nftables proxy", "nftables"),
    ("using nftables proxier", "nftables"),
)


def _pod_processes(pods: Iterable[Pod]) -> Iterator[ProcessInfo]:
    """Static pods and DaemonSets carry their component's command line in the pod spec
    (kube-apiserver's --service-cluster-ip-range, kube-proxy's --cluster-cidr): read them as
    the processes they start."""
    for pod in pods:
        for ctr in pod.containers:
            argv = (*ctr.command, *ctr.args)
            if not argv or not any(a.startswith("--") for a in argv):
                continue
            flags: dict[str, str] = {}
            for i, arg in enumerate(argv):
                if not arg.startswith("--"):
                    continue
                key, eq, value = arg[2:].partition("=")
                if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                    value = argv[i + 1]
                flags[key] = value
            yield ProcessInfo(program=argv[0].rsplit("/", 1)[-1], argv=argv, flags=flags,
                              host=pod.node, source=ctr.source)


def derive_cluster_facts(objects: ClusterObjects) -> ClusterFacts:
    """Derive cluster-wide settings from parsed objects (pure).

    Order of evidence within each fact list: process flags (what the running component was
    told), then API objects, then conventions (the `kubernetes` Service gets the first address
    of the service range: kube-apiserver allocates it that way, pkg/controlplane/services.go).
    """
    service_cidrs: list[Fact[IPNetwork]] = []
    pod_cidrs: list[Fact[IPNetwork]] = []
    dns_ips: list[Fact[IPAddress]] = []
    api_eps: list[Fact[str]] = []
    kube_svc_ips: list[Fact[IPAddress]] = []
    cni: list[Fact[str]] = []
    proxy_mode: list[Fact[str]] = []
    versions: list[Fact[str]] = []
    node_ips: dict[str, list[IPAddress]] = {}

    def add_node_ip(node: str, ip: IPAddress | None) -> None:
        if ip is None:
            return
        ips = node_ips.setdefault(node, [])
        if ip not in ips:
            ips.append(ip)

    for proc in (*objects.processes, *_pod_processes(objects.pods)):
        for flag in ("service-cluster-ip-range", "service-cidr"):
            for part in (proc.flag(flag) or "").split(","):
                net = parse_cidr(part)
                if net is not None:
                    _add_fact(service_cidrs, net, f"{proc.program} --{flag}", proc.source)
        for flag in ("cluster-cidr",):
            for part in (proc.flag(flag) or "").split(","):
                net = parse_cidr(part)
                if net is not None:
                    _add_fact(pod_cidrs, net, f"{proc.program} --{flag}", proc.source)
        for part in (proc.flag("cluster-dns") or "").split(","):
            ip = parse_ip(part)
            if ip is not None:
                _add_fact(dns_ips, ip, f"{proc.program} --cluster-dns", proc.source)
        if proc.program in ("kube-apiserver", "k3s", "kubelite"):
            addr = proc.flag("advertise-address") or proc.flag("bind-address")
            port = proc.flag("secure-port") or ("6443" if proc.program == "kube-apiserver" else None)
            if addr and port and parse_ip(addr) is not None and addr not in ("0.0.0.0", "::"):
                _add_fact(api_eps, f"{addr}:{port}", f"{proc.program} --advertise-address", proc.source)
                if proc.host:
                    add_node_ip(proc.host, parse_ip(addr))
        if proc.program == "kubelet" and proc.host:
            add_node_ip(proc.host, parse_ip(proc.flag("node-ip")))
        mode = proc.flag("proxy-mode")
        if proc.program == "kube-proxy" and mode:
            _add_fact(proxy_mode, mode, "kube-proxy --proxy-mode", proc.source)
        if proc.program in _CNI_PROGRAMS:
            _add_fact(cni, _CNI_PROGRAMS[proc.program], f"process {proc.program}", proc.source)

    for node in objects.nodes:
        for net in node.pod_cidrs:
            _add_fact(pod_cidrs, net, f"node {node.name} podCIDR", node.source)
        for ip in node.internal_ips:
            add_node_ip(node.name, ip)
        if node.kubelet_version:
            _add_fact(versions, node.kubelet_version, f"node {node.name} kubelet version", node.source)
        for key in node.annotations:
            if key.startswith("projectcalico.org/"):
                _add_fact(cni, "calico", f"node annotation {key}", node.source)
                break
            if key.startswith("flannel.alpha.coreos.com/"):
                _add_fact(cni, "flannel", f"node annotation {key}", node.source)
                break
            if key.startswith(("io.cilium", "network.cilium.io")):
                _add_fact(cni, "cilium", f"node annotation {key}", node.source)
                break

    for svc in objects.services:
        if svc.namespace in ("default", None) and svc.name == "kubernetes":
            for ip in svc.cluster_ips:
                _add_fact(kube_svc_ips, ip, "default/kubernetes Service ClusterIP", svc.source)
            for ep in svc.endpoints:
                _add_fact(api_eps, ep, "default/kubernetes Service endpoints", svc.source)
        if svc.namespace in ("kube-system", None) and svc.name in ("kube-dns", "coredns"):
            for ip in svc.cluster_ips:
                _add_fact(dns_ips, ip, f"kube-system/{svc.name} Service ClusterIP", svc.source)
    for eps in objects.endpoints:
        if eps.namespace in ("default", None) and eps.service == "kubernetes":
            for ep_addr in eps.addresses:
                if ep_addr.ip is None:
                    continue
                for ep_port in eps.ports:
                    _add_fact(
                        api_eps,
                        _fmt_hostport(ep_addr.ip, ep_port.port),
                        f"{eps.kind} default/kubernetes",
                        eps.source,
                    )
            if not eps.ports:
                for shown in eps.shown:
                    _add_fact(api_eps, shown, f"{eps.kind} default/kubernetes", eps.source)

    for pod in objects.pods:
        name = pod.name or ""
        for prefix, cni_name in _CNI_POD_PREFIXES:
            if name.startswith(prefix):
                _add_fact(cni, cni_name, f"pod {pod.key}", pod.source)
                break
        for ctr in pod.containers:
            for key in ("CALICO_IPV4POOL_CIDR", "CALICO_IPV6POOL_CIDR"):
                net = parse_cidr(ctr.env.get(key))
                if net is not None:
                    _add_fact(pod_cidrs, net, f"pod {pod.key} env {key}", ctr.source)
            if ctr.image and name.startswith("kube-apiserver"):
                tag = ctr.image.rsplit(":", 1)[-1]
                if tag.startswith("v"):
                    _add_fact(versions, tag, f"kube-apiserver image {ctr.image}", ctr.source)
        if pod.host_network and pod.node:
            for ip in pod.ips:
                add_node_ip(pod.node, ip)

    for cm in objects.configmaps:
        if cm.name == "kubeadm-config":
            # kubeadm's ClusterConfiguration: networking.serviceSubnet / podSubnet.
            for text in cm.data.values():
                for line in text.splitlines():
                    key, _, value = line.strip().partition(":")
                    net = parse_cidr(value.strip().strip("\"'"))
                    if net is None:
                        continue
                    if key == "serviceSubnet":
                        _add_fact(service_cidrs, net, "kubeadm-config serviceSubnet", cm.source)
                    elif key == "podSubnet":
                        _add_fact(pod_cidrs, net, "kubeadm-config podSubnet", cm.source)
        if cm.name == "kube-proxy":
            for text in cm.data.values():
                for line in text.splitlines():
                    stripped = line.strip()
                    if stripped.startswith("mode:"):
                        mode = stripped.split(":", 1)[1].strip().strip("\"'")
                        _add_fact(
                            proxy_mode,
                            mode or "iptables",
                            "kube-proxy ConfigMap mode (empty means iptables)",
                            cm.source,
                        )
                    if stripped.startswith("clusterCIDR:"):
                        net = parse_cidr(stripped.split(":", 1)[1].strip().strip("\"'"))
                        if net is not None:
                            _add_fact(pod_cidrs, net, "kube-proxy ConfigMap clusterCIDR", cm.source)
        if "net-conf.json" in cm.data:
            try:
                conf = json.loads(cm.data["net-conf.json"])
            except ValueError:
                conf = None
            if isinstance(conf, dict):
                net = parse_cidr(str(conf.get("Network", "")))
                if net is not None:
                    _add_fact(pod_cidrs, net, f"ConfigMap {cm.name} net-conf.json Network", cm.source)
                _add_fact(cni, "flannel", f"ConfigMap {cm.name} net-conf.json", cm.source)

    calico_log_pods: set[str | None] = set()
    for log in objects.logs:
        low = log.message.lower()
        if (log.component == "kube-proxy") or (log.pod or "").startswith("kube-proxy"):
            for needle, mode in _KUBE_PROXY_MODE_LOG:
                if needle in low:
                    _add_fact(proxy_mode, mode, "kube-proxy log", log.source)
        is_calico = (log.pod or "").startswith("calico") or log.component == "calico"
        if is_calico and log.pod not in calico_log_pods:  # one reference per pod is enough
            calico_log_pods.add(log.pod)
            _add_fact(cni, "calico", "calico log", log.source)

    for vfact in objects.versions:
        for src in vfact.sources or (SYNTHETIC,):
            _add_fact(versions, vfact.value, vfact.how, src)
    for ufact in objects.apiserver_urls:
        url_host, url_port = split_hostport(ufact.value.split("://", 1)[-1].split("/", 1)[0])
        if parse_ip(url_host) is not None:
            for src in ufact.sources or (SYNTHETIC,):
                _add_fact(api_eps, f"{url_host}:{url_port or 443}", ufact.how, src)

    # Convention: no flag seen, but the `kubernetes` Service IP is the first address of the
    # range. The prefix cannot be known; say so instead of guessing a /12.
    if not service_cidrs:
        for ipfact in kube_svc_ips:
            bits = 32 if ipfact.value.version == 4 else 128
            net = ipaddress.ip_network(f"{ipfact.value}/{bits}")
            service_cidrs.append(
                Fact(
                    net,
                    "only the kubernetes Service IP is known (range size unknown)",
                    ipfact.sources,
                )
            )

    # Cluster-wide pod CIDRs (flags, kube-proxy/kubeadm/CNI config) before each node's slice.
    pod_cidrs.sort(key=lambda f: f.how.startswith("node "))
    return ClusterFacts(
        service_cidrs=tuple(service_cidrs),
        pod_cidrs=tuple(pod_cidrs),
        cluster_dns_ips=tuple(dns_ips),
        apiserver_endpoints=tuple(api_eps),
        kubernetes_service_ips=tuple(kube_svc_ips),
        cni=tuple(cni),
        kube_proxy_mode=tuple(proxy_mode),
        k8s_version=tuple(versions),
        node_ips={k: tuple(v) for k, v in node_ips.items()},
    )


def _fmt_hostport(ip: IPAddress, port: int) -> str:
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def unique(values: Iterable[T]) -> tuple[T, ...]:
    """Order-preserving de-duplication (small helper shared by the parsers)."""
    seen: list[T] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return tuple(seen)
