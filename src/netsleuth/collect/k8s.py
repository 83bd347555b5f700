"""Cluster objects and logs from the Kubernetes API, with the official `kubernetes` client.

Everything is read-only and Secrets are never requested. Each resource is listed with paging
(`limit` + `continue`, as kubectl does) and a request timeout; a failure on one resource (403
for lack of RBAC, 404 for an API group the cluster does not serve, a timeout) is recorded and
the others are still read. Only a failure to reach the API server at all stops the cluster
phase, because every further request would fail the same way after its own timeout.

Responses are kept as the API server's JSON (`_preload_content=False`) rather than going
through the generated models: the models reject objects that real servers do return (e.g.
an EndpointSlice with `endpoints: null` fails client-side validation) and drop fields the
client version does not know. The raw JSON has exactly the field names of the API (the names
`ApiClient.sanitize_for_serialization` produces) and loses nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from netsleuth.collect.agent import AgentRecord, decode_records
from netsleuth.collect.bundle import (
    FAILED,
    OK,
    PARTIAL,
    BundleWriter,
    ClusterStatus,
    CollectIssue,
    safe_component,
)
from netsleuth.errors import CollectError

Json = dict[str, Any]


class StepReporter(Protocol):
    """What the collectors tell the progress display (see cli.py)."""

    def start(self, task: str, total: int) -> None: ...

    def advance(self, task: str, note: str = "") -> None: ...


class NullReporter:
    def start(self, task: str, total: int) -> None:
        pass

    def advance(self, task: str, note: str = "") -> None:
        pass


@dataclass(frozen=True, slots=True)
class K8sOptions:
    kubeconfig: Path | None = None
    context: str | None = None
    tail: int = 500
    pods: tuple[str, ...] = ()  # "namespace/name" of pods whose logs the user wants
    request_timeout: float = 15.0
    connect_timeout: float = 5.0
    page_size: int = 500
    # Only DaemonSet pods (kube-proxy, CNI agents) on these nodes get their logs read; None
    # means all nodes. CoreDNS and user-named pods are always read.
    log_nodes: frozenset[str] | None = None
    log_limit_bytes: int = 8 * 1024 * 1024
    log_workers: int = 8


@dataclass(frozen=True, slots=True)
class Connection:
    api: Any  # kubernetes.client.ApiClient
    context: str
    server: str


@dataclass(frozen=True, slots=True)
class ClusterResult:
    status: ClusterStatus
    nodes: tuple[Json, ...] = ()  # Node objects, used to find node addresses for SSH


@dataclass(frozen=True, slots=True)
class Resource:
    """One list call: the bundle file, the kind of its items, and how to call the client."""

    name: str
    api_version: str
    kind: str
    list_call: Callable[[Any], Callable[..., Any]]
    keep: Callable[[Json], bool] | None = None


# ConfigMaps that describe the data path: kube-proxy mode and clusterCIDR, the CNI's settings
# (Calico IP pools and autodetection, flannel net-conf, Cilium), CoreDNS, and kubeadm's
# serviceSubnet/podSubnet. Other ConfigMaps are application data and are not written.
_NETWORK_CONFIGMAP_WORDS = (
    "kube-proxy", "coredns", "kubeadm-config", "kubelet-config", "calico", "flannel",
    "cilium", "canal", "weave", "antrea", "kube-router", "kindnet", "nodelocaldns",
    "node-local-dns", "tigera", "ovn", "multus",
)
# Pod name prefixes of the node agents whose logs explain data-path failures.
_DAEMON_POD_PREFIXES = (
    "kube-proxy", "calico-node", "calico-typha", "kube-flannel", "flannel", "cilium",
    "weave-net", "canal", "kube-router", "antrea-agent", "kindnet", "ovnkube", "kube-ovn",
    "nodelocaldns", "node-local-dns", "multus",
)
_CLUSTER_POD_PREFIXES = ("coredns", "kube-dns", "calico-kube-controllers", "cilium-operator",
                         "tigera-operator", "antrea-controller")
_DNS_LABELS = {"kube-dns", "coredns"}


def is_network_configmap(obj: Json) -> bool:
    name = str(obj.get("metadata", {}).get("name", ""))
    return any(word in name for word in _NETWORK_CONFIGMAP_WORDS)


def log_role(pod: Json) -> str | None:
    """'daemon' for per-node network agents, 'cluster' for CoreDNS and CNI controllers."""
    meta = pod.get("metadata", {})
    name = str(meta.get("name", ""))
    labels = meta.get("labels") or {}
    if labels.get("k8s-app") in _DNS_LABELS or name.startswith(_CLUSTER_POD_PREFIXES):
        return "cluster"
    if name.startswith(_DAEMON_POD_PREFIXES) or labels.get("k8s-app") in {
        "kube-proxy", "calico-node", "cilium", "kube-router",
    }:
        return "daemon"
    return None


RESOURCES: tuple[Resource, ...] = (
    Resource("nodes", "v1", "Node", lambda a: k8s_client.CoreV1Api(a).list_node),
    Resource("pods", "v1", "Pod", lambda a: k8s_client.CoreV1Api(a).list_pod_for_all_namespaces),
    Resource("services", "v1", "Service",
             lambda a: k8s_client.CoreV1Api(a).list_service_for_all_namespaces),
    Resource("endpointslices", "discovery.k8s.io/v1", "EndpointSlice",
             lambda a: k8s_client.DiscoveryV1Api(a).list_endpoint_slice_for_all_namespaces),
    Resource("endpoints", "v1", "Endpoints",
             lambda a: k8s_client.CoreV1Api(a).list_endpoints_for_all_namespaces),
    Resource("events", "v1", "Event",
             lambda a: k8s_client.CoreV1Api(a).list_event_for_all_namespaces),
    Resource("networkpolicies", "networking.k8s.io/v1", "NetworkPolicy",
             lambda a: k8s_client.NetworkingV1Api(a).list_network_policy_for_all_namespaces),
    Resource("configmaps", "v1", "ConfigMap",
             lambda a: k8s_client.CoreV1Api(a).list_config_map_for_all_namespaces,
             keep=is_network_configmap),
    Resource("daemonsets", "apps/v1", "DaemonSet",
             lambda a: k8s_client.AppsV1Api(a).list_daemon_set_for_all_namespaces),
)


class ApiUnreachable(Exception):
    """The API server cannot be reached at all; further requests are pointless."""

    def __init__(self, issue: CollectIssue) -> None:
        self.issue = issue
        super().__init__(issue.message)


def _status_message(exc: ApiException) -> str:
    """The `message` of the API's Status object when the body has one."""
    body = getattr(exc, "body", None)
    if body:
        try:
            data = json.loads(body)
        except (ValueError, TypeError):
            data = None
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
    reason = str(getattr(exc, "reason", "") or "").strip()
    return reason or "no message"


def classify(exc: BaseException, target: str) -> tuple[CollectIssue, bool]:
    """Turn a client exception into a manifest error; the flag says "API unreachable"."""
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        kinds = {401: "auth", 403: "forbidden", 404: "not-found"}
        if status == 0:
            # The REST layer wraps TLS failures as status 0: the server cannot be talked to.
            return CollectIssue(target, "unreachable", _status_message(exc)), True
        kind = kinds.get(status, "http")
        return CollectIssue(target, kind, f"HTTP {status}: {_status_message(exc)}"), status == 401
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return classify(exc.reason, target)
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return CollectIssue(target, "timeout", f"no answer in time: {exc}"), False
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return CollectIssue(target, "unreachable", f"connect timed out: {exc}"), True
    if isinstance(exc, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
        return CollectIssue(target, "unreachable", f"cannot connect: {exc}"), True
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return CollectIssue(target, "http", f"connection broken: {exc}"), False
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return CollectIssue(target, "unreachable", f"{type(exc).__name__}: {exc}"), True
    if isinstance(exc, ValueError):
        return CollectIssue(target, "http", f"unreadable response: {exc}"), False
    raise exc


def _kubeconfig_paths(explicit: Path | None) -> str:
    if explicit is not None:
        return str(explicit)
    return os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def connect(kubeconfig: Path | None, context: str | None) -> Connection:
    """An API client from a kubeconfig (KUBECONFIG, ~/.kube/config) or the in-cluster config.

    Raises CollectError when there is no usable configuration; that is recorded in the
    manifest and node collection goes on.
    """
    cfg = k8s_client.Configuration()
    paths = _kubeconfig_paths(kubeconfig)
    existing = [p for p in paths.split(os.pathsep) if p and os.path.exists(os.path.expanduser(p))]
    try:
        if existing:
            k8s_config.load_kube_config(
                config_file=os.pathsep.join(existing), context=context,
                client_configuration=cfg, persist_config=False,
            )  # type: ignore[no-untyped-call]
            contexts, current = k8s_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                os.pathsep.join(existing)
            )
            ctx_name = context or (current or {}).get("name", "")
            del contexts
        elif kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=cfg
            )
            ctx_name = "in-cluster"
        else:
            raise CollectError(
                "kubeconfig",
                f"no kubeconfig at {paths} and not running inside a pod",
            )
    except ConfigException as exc:
        raise CollectError("kubeconfig", str(exc)) from exc
    # One retry for a failed connect only: a read that timed out is not repeated (it would
    # double the wait on a slow endpoint), and HTTP errors are answers, not transient.
    cfg.retries = urllib3.util.Retry(total=1, connect=1, read=0, status=0, redirect=0, other=0)
    return Connection(api=k8s_client.ApiClient(configuration=cfg), context=str(ctx_name),
                      server=str(cfg.host))


def _read_json(response: Any) -> Json:
    try:
        raw = response.read()
    finally:
        response.release_conn()
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _read_text(response: Any) -> str:
    try:
        raw: bytes = response.read()
    finally:
        response.release_conn()
    return raw.decode("utf-8", errors="replace")


@dataclass
class _LogJob:
    namespace: str
    pod: str
    container: str
    previous: bool

    @property
    def rel(self) -> str:
        suffix = ".previous.log" if self.previous else ".log"
        return (f"logs/{safe_component(self.namespace)}/{safe_component(self.pod)}/"
                f"{safe_component(self.container)}{suffix}")


@dataclass
class ClusterCollector:
    conn: Connection
    writer: BundleWriter
    options: K8sOptions
    reporter: StepReporter = field(default_factory=NullReporter)
    errors: list[CollectIssue] = field(default_factory=list)

    @property
    def _timeout(self) -> tuple[float, float]:
        return (self.options.connect_timeout, self.options.request_timeout)

    def run(self) -> ClusterResult:
        listed: dict[str, list[Json]] = {}
        self.reporter.start("cluster", len(RESOURCES))
        try:
            for res in RESOURCES:
                try:
                    listed[res.name] = self._list(res)
                except Exception as exc:  # classify() re-raises what it does not know
                    issue, unreachable = classify(exc, res.name)
                    if unreachable:
                        raise ApiUnreachable(issue) from exc
                    self.errors.append(issue)
                self.reporter.advance("cluster", res.name)
            self._logs(listed.get("pods"))
        except ApiUnreachable as stop:
            self.errors.append(stop.issue)
        if not listed:
            status = FAILED
        elif self.errors:
            status = PARTIAL
        else:
            status = OK
        return ClusterResult(
            status=ClusterStatus(status=status, context=self.conn.context,
                                 server=self.conn.server, errors=tuple(self.errors)),
            nodes=tuple(listed.get("nodes", ())),
        )

    def _list(self, res: Resource) -> list[Json]:
        call = res.list_call(self.conn.api)
        items: list[Json] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": self.options.page_size,
                                      "_preload_content": False,
                                      "_request_timeout": self._timeout}
            if token:
                kwargs["_continue"] = token
            page = _read_json(call(**kwargs))
            for item in page.get("items") or []:
                if not isinstance(item, dict):
                    continue
                if res.keep is not None and not res.keep(item):
                    continue
                # The API omits kind/apiVersion on list items; kubectl fills them in, and so
                # do we, so each item stands on its own.
                items.append({"apiVersion": res.api_version, "kind": res.kind, **item})
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                break
        self.writer.write_list(f"cluster/{res.name}.json", items)
        return items

    # -- logs ----------------------------------------------------------------------------

    def _wanted_pods(self, pods: list[Json] | None) -> list[Json]:
        wanted: dict[tuple[str, str], Json] = {}
        for pod in pods or []:
            role = log_role(pod)
            node = pod.get("spec", {}).get("nodeName")
            if role == "daemon" and self.options.log_nodes is not None and (
                node not in self.options.log_nodes
            ):
                continue
            if role is not None:
                meta = pod.get("metadata", {})
                wanted[(str(meta.get("namespace", "")), str(meta.get("name", "")))] = pod
        by_key = {
            (str(p.get("metadata", {}).get("namespace", "")),
             str(p.get("metadata", {}).get("name", ""))): p
            for p in pods or []
        }
        core = k8s_client.CoreV1Api(self.conn.api)
        for spec in self.options.pods:
            namespace, _, name = spec.partition("/")
            if not name:
                namespace, name = "default", namespace
            key = (namespace, name)
            if key in wanted:
                continue
            if key in by_key:
                wanted[key] = by_key[key]
                continue
            try:
                pod = _read_json(core.read_namespaced_pod(
                    name, namespace, _preload_content=False, _request_timeout=self._timeout))
            except Exception as exc:
                issue, unreachable = classify(exc, f"pod {namespace}/{name}")
                if unreachable:
                    raise ApiUnreachable(issue) from exc
                self.errors.append(issue)
                continue
            wanted[key] = pod
        return list(wanted.values())

    def _log_jobs(self, pods: Iterable[Json]) -> list[_LogJob]:
        jobs: list[_LogJob] = []
        for pod in pods:
            meta = pod.get("metadata", {})
            spec = pod.get("spec", {})
            status = pod.get("status", {})
            statuses: Mapping[str, Json] = {
                str(s.get("name")): s
                for s in (status.get("initContainerStatuses") or [])
                + (status.get("containerStatuses") or [])
                if isinstance(s, dict)
            }
            for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                cname = str(container.get("name", ""))
                st = statuses.get(cname)
                if st is None:
                    continue  # never created: no log exists, and the pod status says why
                state = st.get("state") or {}
                last = st.get("lastState") or {}
                # A container in CrashLoopBackOff is "waiting", yet its last run's log is what
                # `kubectl logs` shows and usually the most telling evidence.
                if "running" in state or "terminated" in state or "terminated" in last:
                    jobs.append(_LogJob(meta["namespace"], meta["name"], cname, False))
                if int(st.get("restartCount") or 0) > 0 or "terminated" in last:
                    jobs.append(_LogJob(meta["namespace"], meta["name"], cname, True))
        return jobs

    def _fetch_log(self, job: _LogJob) -> str:
        core = k8s_client.CoreV1Api(self.conn.api)
        response = core.read_namespaced_pod_log(
            job.pod, job.namespace, container=job.container, previous=job.previous,
            tail_lines=self.options.tail, timestamps=True,
            limit_bytes=self.options.log_limit_bytes,
            _preload_content=False, _request_timeout=self._timeout,
        )
        return _read_text(response)

    def _logs(self, pods: list[Json] | None) -> None:
        jobs = self._log_jobs(self._wanted_pods(pods))
        self.reporter.start("logs", len(jobs))
        if not jobs:
            return
        # Log requests are independent and mostly waiting on the network; a small pool keeps
        # a 1000-node cluster's kube-proxy/CNI logs from taking minutes. Writes (and the
        # redaction counter) stay on this thread.
        with ThreadPoolExecutor(max_workers=self.options.log_workers) as pool:
            futures = [(job, pool.submit(self._fetch_log, job)) for job in jobs]
            unreachable: ApiUnreachable | None = None
            for job, future in futures:
                try:
                    text = future.result()
                except Exception as exc:
                    issue, down = classify(exc, job.rel)
                    if job.previous and issue.kind in {"http", "not-found"}:
                        pass  # "previous terminated container not found" is not an error
                    elif down:
                        unreachable = unreachable or ApiUnreachable(issue)
                    else:
                        self.errors.append(issue)
                else:
                    self.writer.write_text(job.rel, text)
                self.reporter.advance("logs", job.rel)
        if unreachable is not None:
            raise unreachable


def collect_cluster(
    options: K8sOptions, writer: BundleWriter, reporter: StepReporter | None = None
) -> ClusterResult:
    """Connect and collect; a missing configuration becomes a failed status, not an exception."""
    try:
        conn = connect(options.kubeconfig, options.context)
    except CollectError as exc:
        issue = CollectIssue(exc.target, "config", str(exc).removeprefix(f"{exc.target}: "))
        return ClusterResult(status=ClusterStatus(status=FAILED, context=options.context or "",
                                                  errors=(issue,)))
    try:
        return ClusterCollector(conn, writer, options, reporter or NullReporter()).run()
    finally:
        conn.api.close()


def node_addresses(nodes: Iterable[Json]) -> dict[str, str]:
    """Node name → the address to reach it (InternalIP first, then ExternalIP, Hostname)."""
    order = {"InternalIP": 0, "ExternalIP": 1, "Hostname": 2}
    out: dict[str, str] = {}
    for node in nodes:
        name = str(node.get("metadata", {}).get("name", ""))
        addrs = [a for a in (node.get("status", {}).get("addresses") or []) if isinstance(a, dict)]
        addrs.sort(key=lambda a: order.get(str(a.get("type")), 9))
        if name:
            out[name] = str(addrs[0]["address"]) if addrs else name
    return out


AGENT_SELECTOR = "app.kubernetes.io/name=netsleuth-agent"


@dataclass(frozen=True, slots=True)
class AgentResult:
    records: Mapping[str, AgentRecord]  # node name → its latest snapshot record
    errors: tuple[CollectIssue, ...] = ()


def collect_agent_snapshots(
    options: K8sOptions, namespace: str = "netsleuth", since_seconds: int = 900,
    selector: str = AGENT_SELECTOR,
) -> AgentResult:
    """Read the latest snapshot record of every agent pod from its log (see agent/)."""
    try:
        conn = connect(options.kubeconfig, options.context)
    except CollectError as exc:
        message = str(exc).removeprefix(f"{exc.target}: ")
        return AgentResult({}, (CollectIssue(exc.target, "config", message),))
    core = k8s_client.CoreV1Api(conn.api)
    timeout = (options.connect_timeout, options.request_timeout)
    errors: list[CollectIssue] = []
    try:
        pods: list[Json] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"label_selector": selector, "limit": options.page_size,
                                      "_preload_content": False, "_request_timeout": timeout}
            if token:
                kwargs["_continue"] = token
            page = _read_json(core.list_namespaced_pod(namespace, **kwargs))
            pods += [p for p in page.get("items") or [] if isinstance(p, dict)]
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                break
    except Exception as exc:
        issue, _ = classify(exc, f"agent pods in {namespace}")
        conn.api.close()
        return AgentResult({}, (issue,))

    def fetch(pod: Json) -> str:
        meta = pod.get("metadata", {})
        response = core.read_namespaced_pod_log(
            meta.get("name"), namespace, since_seconds=since_seconds,
            limit_bytes=options.log_limit_bytes, _preload_content=False,
            _request_timeout=timeout,
        )
        return _read_text(response)

    records: dict[str, AgentRecord] = {}
    try:
        with ThreadPoolExecutor(max_workers=options.log_workers) as pool:
            futures = [(pod, pool.submit(fetch, pod)) for pod in pods]
            for pod, future in futures:
                name = str(pod.get("metadata", {}).get("name", ""))
                node = str(pod.get("spec", {}).get("nodeName") or "")
                try:
                    found = decode_records(future.result())
                except Exception as exc:
                    errors.append(classify(exc, f"agent pod {namespace}/{name}")[0])
                    continue
                record = found.get(node) or (next(iter(found.values())) if found else None)
                if record is None:
                    errors.append(CollectIssue(
                        node or name, "not-in-source",
                        f"agent pod {namespace}/{name} logged no complete snapshot in the "
                        f"last {since_seconds}s"))
                    continue
                records[node or record.node] = record
    finally:
        conn.api.close()
    return AgentResult(records, tuple(errors))
