"""Kubernetes objects as JSON or YAML: `kubectl get -o json|yaml`, `kubectl cluster-info dump`,
and raw API objects as the official Python client's `ApiClient.sanitize_for_serialization`
produces them (camelCase keys like kubectl's, but list items without `kind`/`apiVersion` and
without null fields).

`kubectl cluster-info dump` writes one JSON List after another to stdout, with pod logs between
`==== START logs for container C of pod NS/POD ====` / `==== END logs ... ====` markers; with
`--output-directory` it writes `nodes.json`, `<ns>/{events,services,pods,...}.json` and
`<ns>/<pod>/logs.txt` (kubectl/pkg/cmd/clusterinfo/clusterinfo_dump.go). Both are handled: the
pure part parses text per file, `load_cluster_info_dump` takes a path → text mapping.

Line numbers: JSON carries none per object, so each object's SourceRef points at the line where
its `"name": "..."` (metadata) first appears after the previous object: good enough to quote.

Wrong types: the input is often hand-edited or pasted, so any field may hold any JSON value.
Optional fields of the wrong type are ignored; an object whose `metadata`/`spec`/`status` is
not an object, or whose Service port is not a port number, cannot be read and becomes one
`problems` line (`file:line: malformed <Kind> <name>: <what>`) while the other objects load.
Only text that is not JSON/YAML at all raises ParseError.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from netsleuth.errors import ParseError, SnapshotError
from netsleuth.model.k8s import (
    ClusterObjects,
    Condition,
    ConfigMap,
    ContainerStatus,
    EndpointAddress,
    EndpointPort,
    Endpoints,
    Event,
    K8sNode,
    Pod,
    Service,
    ServicePort,
    parse_cidr,
    parse_ip,
    unique,
)
from netsleuth.model.net import IPAddress, IPNetwork
from netsleuth.model.source import SourceRef
from netsleuth.parse.kubectl_text import normalize_spaces
from netsleuth.parse.logs import parse_logs

JSONObj = Mapping[str, Any]

_LOG_START = re.compile(
    r"^==== START logs for container (?P<c>\S+) of pod (?P<ns>[^/\s]+)/(?P<pod>\S+) ====$"
)
_LOG_END = re.compile(r"^==== END logs for container \S+ of pod \S+ ====$")


class _Locator:
    """Finds the line of each object's metadata name, scanning forward through the text."""

    def __init__(self, text: str, first_line: int, yaml_style: bool = False) -> None:
        self._text = text
        self._first = first_line
        self._pos = 0
        self._yaml = yaml_style

    def here(self) -> int:
        """The line the scan has reached (for objects without a name, and non-objects)."""
        return self._first + self._text.count("\n", 0, self._pos)

    def line_of(self, name: str | None) -> int:
        if not name:
            return self.here()
        if self._yaml:
            pattern = re.compile(rf"^\s*name:\s*[\"']?{re.escape(name)}[\"']?\s*$", re.MULTILINE)
        else:
            pattern = re.compile(rf"\"name\"\s*:\s*\"{re.escape(name)}\"")
        match = pattern.search(self._text, self._pos)
        if match is None:
            match = pattern.search(self._text)
            if match is None:
                return self._first + self._text.count("\n", 0, self._pos)
        self._pos = match.end()
        return self._first + self._text.count("\n", 0, match.start())


# --- helpers --------------------------------------------------------------------------------


def _d(obj: Any, *path: str) -> Any:
    cur = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def _map(obj: Any) -> Mapping[str, Any]:
    """`obj` when it is a JSON object, else an empty one (a wrong-typed optional field)."""
    return obj if isinstance(obj, Mapping) else {}


def _list(obj: Any) -> list[Any]:
    return list(obj) if isinstance(obj, list) else []


def _str(obj: Any) -> str | None:
    """A scalar as text; None for null and for objects/arrays where a scalar belongs."""
    if obj is None or isinstance(obj, (Mapping, list)):
        return None
    return str(obj)


def _int(obj: Any) -> int | None:
    """An integer field: a JSON integer, or decimal digits (hand-written YAML quotes them).
    Booleans are not integers here, although Python's bool is an int subclass."""
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj
    if isinstance(obj, str) and obj.isascii() and obj.isdigit() and len(obj) <= 18:  # int64
        return int(obj)
    return None


def _port(obj: Any) -> int | None:
    """A TCP/UDP/SCTP port number (1-65535, the API server's validation), else None."""
    value = _int(obj)
    return value if value is not None and 0 < value <= 65535 else None


_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother, _SHOW.maxlong = 3, 60, 60, 40


def _show(obj: Any) -> str:
    """A short quote of an offending value (bounded in depth and length)."""
    return _SHOW.repr(obj)


def _section(obj: JSONObj, key: str) -> Mapping[str, Any]:
    """`metadata`, `spec` or `status`: an object, or absent/null. Anything else means the whole
    object cannot be trusted, so it is reported rather than read half-way."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}: expected an object, got {_show(value)}")
    return value


def _strmap(obj: Any) -> dict[str, str]:
    if not isinstance(obj, Mapping):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in obj.items()}


def _ips(values: Sequence[Any]) -> tuple[IPAddress, ...]:
    return unique(ip for ip in (parse_ip(_str(v)) for v in values) if ip is not None)


def infer_kind(obj: JSONObj, list_kind: str | None = None) -> str | None:
    """The object's kind, from `kind`, the enclosing List's kind (`PodList` → Pod) or shape.

    Shapes matter for the Python client's sanitized output, whose list items carry no kind.
    """
    kind = obj.get("kind")
    if isinstance(kind, str) and kind:
        return kind
    if list_kind and list_kind.endswith("List") and list_kind != "List":
        return list_kind[: -len("List")]
    spec: Mapping[str, Any] = obj["spec"] if isinstance(obj.get("spec"), Mapping) else {}
    status: Mapping[str, Any] = obj["status"] if isinstance(obj.get("status"), Mapping) else {}
    if "containers" in spec:
        return "Pod"
    if "nodeInfo" in status or "podCIDR" in spec or "providerID" in spec:
        return "Node"
    if "clusterIP" in spec or ("ports" in spec and "selector" in spec and "template" not in spec):
        return "Service"
    if "subsets" in obj:
        return "Endpoints"
    if "addressType" in obj:
        return "EndpointSlice"
    if "involvedObject" in obj or "regarding" in obj:
        return "Event"
    if "data" in obj and "spec" not in obj:
        return "ConfigMap"
    return None


# --- converters -----------------------------------------------------------------------------


def _state(
    state: Any,
) -> tuple[str | None, str | None, int | None, str | None, str | None, str | None]:
    if not isinstance(state, Mapping):
        return None, None, None, None, None, None
    for name in ("waiting", "running", "terminated"):
        body = state.get(name)
        if isinstance(body, Mapping):
            return (
                name,
                _str(body.get("reason")),
                _int(body.get("exitCode")),
                _str(body.get("startedAt")),
                _str(body.get("finishedAt")),
                _str(body.get("message")),
            )
    return None, None, None, None, None, None


def _env(spec: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in _list(_d(spec, "env")):
        if not isinstance(item, Mapping) or "name" not in item:
            continue
        if "value" in item:
            out[str(item["name"])] = _str(item.get("value")) or ""
        elif isinstance(item.get("valueFrom"), Mapping):
            ref = item["valueFrom"]
            what = str(next(iter(ref))) if ref else "valueFrom"
            out[str(item["name"])] = f"<from {what}>"
    return out


def _probe(probe: Any) -> str | None:
    if not isinstance(probe, Mapping):
        return None
    if isinstance(probe.get("httpGet"), Mapping):
        h = probe["httpGet"]
        scheme = (_str(h.get("scheme")) or "HTTP").lower()
        return (f"http-get {scheme}://{_str(h.get('host')) or ''}:{_str(h.get('port'))}"
                f"{_str(h.get('path')) or ''}")
    if isinstance(probe.get("tcpSocket"), Mapping):
        return f"tcp-socket :{_str(probe['tcpSocket'].get('port'))}"
    if isinstance(probe.get("exec"), Mapping):
        return "exec " + " ".join(str(c) for c in _list(probe["exec"].get("command")))
    return None


def _port_text(value: Any, protocol: Any) -> str | None:
    port = _port(value)
    return None if port is None else f"{port}/{_str(protocol) or 'TCP'}"


def pod_from_json(obj: JSONObj, source: SourceRef) -> Pod:
    """Raises ValueError when the object cannot be read (see the module docstring)."""
    meta = _section(obj, "metadata")
    spec = _section(obj, "spec")
    status = _section(obj, "status")
    specs = {str(c.get("name")): c for c in _list(spec.get("containers")) if isinstance(c, Mapping)}
    init_specs = {str(c.get("name")): c for c in _list(spec.get("initContainers")) if isinstance(c, Mapping)}
    containers: list[ContainerStatus] = []
    for key, init, spec_map in (
        ("initContainerStatuses", True, init_specs),
        ("containerStatuses", False, specs),
    ):
        statuses = {str(s.get("name")): s for s in _list(status.get(key)) if isinstance(s, Mapping)}
        for name in unique([*spec_map, *statuses]):
            c_spec: Mapping[str, Any] = spec_map.get(name, {})
            c_status: Mapping[str, Any] = statuses.get(name, {})
            state, reason, code, started, finished, message = _state(c_status.get("state"))
            last, last_reason, last_code, _s, _f, _m = _state(c_status.get("lastState"))
            ports = [p for p in _list(c_spec.get("ports")) if isinstance(p, Mapping)]
            restart = c_status.get("restartCount")
            ready = c_status.get("ready")
            containers.append(
                ContainerStatus(
                    name=name,
                    image=_str(c_spec.get("image") or c_status.get("image")),
                    state=state,
                    reason=reason,
                    message=message,
                    exit_code=code,
                    started=started,
                    finished=finished,
                    last_state=last,
                    last_reason=last_reason,
                    last_exit_code=last_code,
                    ready=ready if isinstance(ready, bool) else None,
                    restart_count=_int(restart),
                    init=init,
                    ports=tuple(t for p in ports if (t := _port_text(p.get("containerPort"),
                                                                     p.get("protocol")))),
                    host_ports=tuple(t for p in ports if (t := _port_text(p.get("hostPort"),
                                                                          p.get("protocol")))),
                    command=tuple(str(c) for c in _list(c_spec.get("command"))),
                    args=tuple(str(c) for c in _list(c_spec.get("args"))),
                    env=_env(c_spec),
                    liveness=_probe(c_spec.get("livenessProbe")),
                    readiness=_probe(c_spec.get("readinessProbe")),
                    source=source,
                )
            )
    ips = [status.get("podIP")] + [p.get("ip") for p in _list(status.get("podIPs")) if isinstance(p, Mapping)]
    owners = [o for o in _list(meta.get("ownerReferences")) if isinstance(o, Mapping)]
    phase = _str(status.get("phase"))
    conditions = tuple(
        Condition(
            type=_str(c.get("type")) or "",
            status=_str(c.get("status")) or "",
            reason=_str(c.get("reason")),
            message=_str(c.get("message")),
            source=source,
        )
        for c in _list(status.get("conditions"))
        if isinstance(c, Mapping)
    )
    host_network = spec.get("hostNetwork")
    return Pod(
        namespace=_str(meta.get("namespace")),
        name=_str(meta.get("name")),
        node=_str(spec.get("nodeName")),
        node_ip=parse_ip(_str(status.get("hostIP"))),
        phase=phase,
        status=_display_status(
            phase, _str(status.get("reason")), containers, meta.get("deletionTimestamp") is not None
        ),
        reason=_str(status.get("reason")),
        ips=_ips(ips),
        host_network=bool(host_network) if isinstance(host_network, bool) else False,
        containers=tuple(containers),
        conditions=conditions,
        owner_kind=_str(owners[0].get("kind")) if owners else None,
        owner_name=_str(owners[0].get("name")) if owners else None,
        labels=_strmap(meta.get("labels")),
        annotations=_strmap(meta.get("annotations")),
        ready=f"{sum(1 for c in containers if not c.init and c.ready)}/"
        f"{sum(1 for c in containers if not c.init)}"
        if containers
        else None,
        restarts=sum(c.restart_count or 0 for c in containers if not c.init) if containers else None,
        source=source,
    )


def _display_status(
    phase: str | None, reason: str | None, containers: list[ContainerStatus], deleting: bool
) -> str | None:
    """What `kubectl get pods` prints in STATUS (kubectl's printPod, simplified)."""
    status = reason or phase
    for c in containers:
        if c.init and c.state in ("waiting", "terminated") and c.reason and c.reason != "Completed":
            return f"Init:{c.reason}"
    for c in reversed([c for c in containers if not c.init]):
        if (c.state == "waiting" and c.reason) or (c.state == "terminated" and c.reason):
            status = c.reason
    if deleting:
        return "Terminating"
    return status


def node_from_json(obj: JSONObj, source: SourceRef) -> K8sNode:
    """Raises ValueError when the object cannot be read (see the module docstring)."""
    meta = _section(obj, "metadata")
    spec = _section(obj, "spec")
    status = _section(obj, "status")
    addresses = [a for a in _list(status.get("addresses")) if isinstance(a, Mapping)]
    cidrs: list[IPNetwork] = []
    for text in [spec.get("podCIDR"), *_list(spec.get("podCIDRs"))]:
        net = parse_cidr(_str(text))
        if net is not None and net not in cidrs:
            cidrs.append(net)
    conditions = tuple(
        Condition(
            type=_str(c.get("type")) or "",
            status=_str(c.get("status")) or "",
            reason=_str(c.get("reason")),
            message=_str(c.get("message")),
            source=source,
        )
        for c in _list(status.get("conditions"))
        if isinstance(c, Mapping)
    )
    labels = _strmap(meta.get("labels"))
    info = _map(status.get("nodeInfo"))
    ready = next((c for c in conditions if c.type == "Ready"), None)
    node_status = None if ready is None else ("Ready" if ready.is_true else "NotReady")
    if node_status and spec.get("unschedulable") is True:
        node_status += ",SchedulingDisabled"
    hostname = next((_str(a.get("address")) for a in addresses if a.get("type") == "Hostname"), None)
    return K8sNode(
        name=_str(meta.get("name")) or "",
        internal_ips=_ips([a.get("address") for a in addresses if a.get("type") == "InternalIP"]),
        external_ips=_ips([a.get("address") for a in addresses if a.get("type") == "ExternalIP"]),
        hostname=hostname,
        conditions=conditions,
        pod_cidrs=tuple(cidrs),
        roles=tuple(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")),
        status=node_status,
        kubelet_version=_str(info.get("kubeletVersion")),
        kube_proxy_version=_str(info.get("kubeProxyVersion")),
        os_image=_str(info.get("osImage")),
        kernel_version=_str(info.get("kernelVersion")),
        container_runtime=_str(info.get("containerRuntimeVersion")),
        labels=labels,
        annotations=_strmap(meta.get("annotations")),
        taints=tuple(_taint(t) for t in _list(spec.get("taints")) if isinstance(t, Mapping)),
        source=source,
    )


def _taint(taint: Mapping[str, Any]) -> str:
    """`key=value:effect` (or `key:effect`), as `kubectl describe node` prints taints."""
    value = _str(taint.get("value"))
    return f"{_str(taint.get('key'))}{'=' + value if value else ''}:{_str(taint.get('effect'))}"


def service_from_json(obj: JSONObj, source: SourceRef) -> Service:
    """Raises ValueError when the object cannot be read (see the module docstring): a Service
    port without a port number would make every rule rebuilt from it wrong."""
    meta = _section(obj, "metadata")
    spec = _section(obj, "spec")
    status = _section(obj, "status")
    cluster_ips = [spec.get("clusterIP"), *_list(spec.get("clusterIPs"))]
    ports: list[ServicePort] = []
    for i, p in enumerate(_list(spec.get("ports"))):
        if not isinstance(p, Mapping):
            continue
        port = _port(p.get("port"))
        if port is None:
            raise ValueError(f"spec.ports[{i}].port: expected a port number, got {_show(p.get('port'))}")
        ports.append(
            ServicePort(
                port=port,
                protocol=_str(p.get("protocol")) or "TCP",
                name=_str(p.get("name")),
                target_port=_str(p.get("targetPort")),
                node_port=_port(p.get("nodePort")),
            )
        )
    ingress = [i for i in _list(_d(status, "loadBalancer", "ingress")) if isinstance(i, Mapping)]
    external = [e for e in (_str(x) for x in _list(spec.get("externalIPs"))) if e]
    external += [e for e in (_str(i.get("ip")) or _str(i.get("hostname")) for i in ingress) if e]
    selector = spec.get("selector")
    return Service(
        namespace=_str(meta.get("namespace")),
        name=_str(meta.get("name")),
        type=_str(spec.get("type")) or "ClusterIP",
        cluster_ips=_ips(cluster_ips),
        headless=spec.get("clusterIP") == "None",
        external_ips=tuple(unique(external)),
        ports=tuple(ports),
        selector=_strmap(selector) if isinstance(selector, Mapping) else {},
        session_affinity=_str(spec.get("sessionAffinity")),
        external_traffic_policy=_str(spec.get("externalTrafficPolicy")),
        internal_traffic_policy=_str(spec.get("internalTrafficPolicy")),
        labels=_strmap(meta.get("labels")),
        source=source,
    )


def _target(ref: Any) -> str | None:
    if not isinstance(ref, Mapping):
        return None
    return f"{_str(ref.get('kind')) or ''}/{_str(ref.get('name')) or ''}"


def endpoints_from_json(obj: JSONObj, source: SourceRef) -> Endpoints:
    """Raises ValueError when the object cannot be read (see the module docstring)."""
    meta = _section(obj, "metadata")
    addresses: list[EndpointAddress] = []
    ports: list[EndpointPort] = []
    for subset in _list(obj.get("subsets")):
        if not isinstance(subset, Mapping):
            continue
        for key, ready in (("addresses", True), ("notReadyAddresses", False)):
            for a in _list(subset.get(key)):
                if isinstance(a, Mapping):
                    addresses.append(
                        EndpointAddress(
                            ip=parse_ip(_str(a.get("ip"))),
                            ready=ready,
                            node=_str(a.get("nodeName")),
                            target=_target(a.get("targetRef")),
                            hostname=_str(a.get("hostname")),
                            raw=_str(a.get("ip")) or "",
                        )
                    )
        for p in _list(subset.get("ports")):
            number = _port(p.get("port")) if isinstance(p, Mapping) else None
            if isinstance(p, Mapping) and number is not None:
                port = EndpointPort(
                    port=number, protocol=_str(p.get("protocol")) or "TCP", name=_str(p.get("name"))
                )
                if port not in ports:
                    ports.append(port)
    name = _str(meta.get("name")) or ""
    return Endpoints(
        namespace=_str(meta.get("namespace")),
        name=name,
        kind="Endpoints",
        service=name,
        addresses=tuple(addresses),
        ports=tuple(ports),
        source=source,
    )


def endpointslice_from_json(obj: JSONObj, source: SourceRef) -> Endpoints:
    """Raises ValueError when the object cannot be read (see the module docstring)."""
    meta = _section(obj, "metadata")
    addresses: list[EndpointAddress] = []
    for ep in _list(obj.get("endpoints")):
        if not isinstance(ep, Mapping):
            continue
        ready = _d(ep, "conditions", "ready")
        for addr in _list(ep.get("addresses")):
            addresses.append(
                EndpointAddress(
                    # A nil `ready` means ready (discovery/v1 EndpointConditions doc).
                    ip=parse_ip(_str(addr)),
                    ready=ready is not False,
                    node=_str(ep.get("nodeName")),
                    target=_target(ep.get("targetRef")),
                    hostname=_str(ep.get("hostname")),
                    raw=_str(addr) or "",
                )
            )
    ports = tuple(
        EndpointPort(port=number, protocol=_str(p.get("protocol")) or "TCP", name=_str(p.get("name")))
        for p in _list(obj.get("ports"))
        if isinstance(p, Mapping) and (number := _port(p.get("port"))) is not None
    )
    labels = _strmap(meta.get("labels"))
    return Endpoints(
        namespace=_str(meta.get("namespace")),
        name=_str(meta.get("name")) or "",
        kind="EndpointSlice",
        service=labels.get("kubernetes.io/service-name"),
        addresses=tuple(addresses),
        ports=ports,
        address_type=_str(obj.get("addressType")),
        source=source,
    )


def event_from_json(obj: JSONObj, source: SourceRef) -> Event:
    """Raises ValueError when the object cannot be read (see the module docstring)."""
    meta = _section(obj, "metadata")
    # core/v1 Events name `involvedObject`/`source`/`count`, events.k8s.io/v1 `regarding`/
    # `reportingController`/`series.count`; either may be present.
    involved = _map(obj.get("involvedObject")) or _map(obj.get("regarding"))
    kind = (_str(involved.get("kind")) or "").lower()
    name = _str(involved.get("name"))
    count = _int(obj.get("count")) or _int(obj.get("deprecatedCount")) or _int(
        _d(obj, "series", "count")) or 1
    src = _map(obj.get("source")) or _map(obj.get("deprecatedSource"))
    component = (_str(src.get("component")) or _str(obj.get("reportingComponent"))
                 or _str(obj.get("reportingController")))
    host = _str(src.get("host")) or _str(obj.get("reportingInstance"))
    return Event(
        type=_str(obj.get("type")),
        reason=_str(obj.get("reason")),
        message=_str(obj.get("message")) or _str(obj.get("note")) or "",
        object=f"{kind}/{name}" if kind and name else name,
        namespace=_str(involved.get("namespace")) or _str(meta.get("namespace")),
        count=count,
        first_seen=_str(
            obj.get("firstTimestamp") or obj.get("deprecatedFirstTimestamp") or obj.get("eventTime")
        ),
        last_seen=_str(
            obj.get("lastTimestamp")
            or obj.get("deprecatedLastTimestamp")
            or _d(obj, "series", "lastObservedTime")
            or obj.get("eventTime")
        ),
        source_component=component or None,
        source_host=host or None,
        source=source,
    )


def configmap_from_json(obj: JSONObj, source: SourceRef) -> ConfigMap:
    """Raises ValueError when the object cannot be read (see the module docstring)."""
    meta = _section(obj, "metadata")
    return ConfigMap(
        namespace=_str(meta.get("namespace")),
        name=_str(meta.get("name")) or "",
        data=_strmap(obj.get("data")),
        source=source,
    )


# --- documents ------------------------------------------------------------------------------

_Converter = Callable[[JSONObj, SourceRef], ClusterObjects]
_CONVERTERS: Mapping[str, _Converter] = {
    "Pod": lambda o, r: ClusterObjects(pods=(pod_from_json(o, r),)),
    "Node": lambda o, r: ClusterObjects(nodes=(node_from_json(o, r),)),
    "Service": lambda o, r: ClusterObjects(services=(service_from_json(o, r),)),
    "Endpoints": lambda o, r: ClusterObjects(endpoints=(endpoints_from_json(o, r),)),
    "EndpointSlice": lambda o, r: ClusterObjects(endpoints=(endpointslice_from_json(o, r),)),
    "Event": lambda o, r: ClusterObjects(events=(event_from_json(o, r),)),
    "ConfigMap": lambda o, r: ClusterObjects(configmaps=(configmap_from_json(o, r),)),
}


def _problem(source: str, line: int, text: str) -> ClusterObjects:
    return ClusterObjects(problems=(f"{source}:{line}: {text}",))


def objects_from_api(
    obj: Any,
    source: str,
    *,
    locator: _Locator | None = None,
    line: int = 0,
    list_kind: str | None = None,
) -> ClusterObjects:
    """Model objects from one decoded API object or List (kubectl JSON, sanitized client JSON),
    or from an array of them (`kubectl get -o json | jq .items`, a YAML sequence).

    Kinds netsleuth does not use (Deployments, DaemonSets, ...) are skipped silently. Never
    raises on any decoded JSON/YAML value: a document or List item that is not an object,
    `items` that is not a list, and an object that cannot be read are each reported in
    `problems` (`file:line: ...`), and everything else still loads.
    """
    loc = locator if locator is not None else _Locator("", line)
    if isinstance(obj, list):
        out = ClusterObjects()
        for item in obj:
            out = out.merge(_document(item, source, loc, list_kind))
        return out
    return _document(obj, source, loc, list_kind)


def _document(obj: Any, source: str, loc: _Locator, list_kind: str | None) -> ClusterObjects:
    if not isinstance(obj, Mapping):
        return _problem(source, loc.here(),
                        f"expected a Kubernetes object (a JSON object), got {_show(obj)}")
    kind = infer_kind(obj, list_kind)
    if "items" in obj and (kind is None or kind.endswith("List")):
        items = obj["items"]
        if items is None:  # Go marshals an empty List's nil slice as null
            return ClusterObjects()
        if not isinstance(items, list):
            return _problem(source, loc.here(), "expected 'items' to be a list of Kubernetes "
                            f"objects, got {_show(items)}")
        inner_kind = _str(obj.get("kind")) or list_kind
        out = ClusterObjects()
        for item in items:
            # Items are objects, never Lists again: no recursion, so a self-referencing YAML
            # alias (`&a {items: [*a]}`) cannot loop.
            if isinstance(item, Mapping):
                out = out.merge(_object(item, source, loc, infer_kind(item, inner_kind)))
            else:
                out = out.merge(_problem(source, loc.here(), "expected a Kubernetes object "
                                         f"(a JSON object) in 'items', got {_show(item)}"))
        return out
    return _object(obj, source, loc, kind)


def _object(obj: JSONObj, source: str, loc: _Locator, kind: str | None) -> ClusterObjects:
    convert = _CONVERTERS.get(kind) if kind is not None else None
    name = _str(_d(obj, "metadata", "name"))
    line = loc.line_of(name)
    if convert is None:
        return ClusterObjects()
    try:
        return convert(obj, SourceRef(source, line))
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        # ValueError is what the converters raise on purpose; the others would be a converter
        # missing a type check, which must cost one object, not the whole input.
        return _problem(source, line, f"malformed {kind} {name or '(no name)'}: {exc}")


def _decode_error(source: str, text: str, pos: int, first_line: int, what: str) -> ParseError:
    line_no = first_line + text.count("\n", 0, pos)
    end = text.find("\n", pos)
    bad = text[pos : end if end >= 0 else len(text)]
    return ParseError(source, line_no, bad or text[pos : pos + 80], what)


def parse_kube_json(text: str, source: str, first_line: int = 1) -> ClusterObjects:
    """`kubectl get -o json` output, one or several concatenated JSON documents (the stdout form
    of `kubectl cluster-info dump`, including its pod log sections).

    Raises ParseError only when the text is not JSON; wrong-shaped or wrong-typed JSON is
    reported in `problems` (see `objects_from_api`)."""
    text = normalize_spaces(text)
    decoder = json.JSONDecoder()
    out = ClusterObjects()
    pos = 0
    found = False
    lines_before = 0
    while pos < len(text):
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            break
        if text.startswith("====", pos):
            # a log section of the dump's stdout form
            end = text.find("\n", pos)
            line_no = first_line + text.count("\n", 0, pos)
            header = text[pos : end if end >= 0 else len(text)]
            start = _LOG_START.match(header)
            if start is None:
                pos = end + 1 if end >= 0 else len(text)
                continue
            close = re.compile(r"^==== END logs for container .*$", re.MULTILINE).search(text, pos)
            body_start = end + 1 if end >= 0 else len(text)
            body_end = close.start() if close is not None else len(text)
            out = out.merge(
                ClusterObjects(
                    logs=parse_logs(
                        text[body_start:body_end],
                        source,
                        line_no + 1,
                        pod=start.group("pod"),
                        container=start.group("c"),
                        namespace=start.group("ns"),
                    )
                )
            )
            pos = close.end() if close is not None else len(text)
            found = True
            continue
        try:
            doc, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise _decode_error(source, text, exc.pos, first_line, f"JSON ({exc.msg})") from None
        except RecursionError:
            raise _decode_error(source, text, pos, first_line,
                                "JSON nested less deeply than Python can decode") from None
        except ValueError as exc:  # an integer longer than sys.get_int_max_str_digits()
            raise _decode_error(source, text, pos, first_line, f"JSON ({exc})") from None
        lines_before = first_line + text.count("\n", 0, pos)
        segment = text[pos:end]
        out = out.merge(objects_from_api(doc, source, locator=_Locator(segment, lines_before)))
        pos = end
        found = True
    if not found:
        raise ParseError(source, first_line, text[:80], "a JSON document")
    return out


def parse_kube_yaml(text: str, source: str, first_line: int = 1) -> ClusterObjects:
    """`kubectl get -o yaml` output (one or several `---` separated documents).

    Raises ParseError only when the text is not YAML; see `parse_kube_json` for the rest."""
    text = normalize_spaces(text)
    lines = text.splitlines()
    docs: list[tuple[Any, int, int]] = []  # (value, start offset, end offset)
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # the reader already refuses control characters
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            value = loader.construct_document(node)
            if value is not None:
                docs.append((value, node.start_mark.index, node.end_mark.index))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first_line + (mark.line if mark is not None else 0)
        bad = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
        raise ParseError(source, line, bad, f"YAML ({getattr(exc, 'problem', exc)})") from None
    except RecursionError:
        raise ParseError(source, first_line, text[:80],
                         "YAML nested less deeply than Python can decode") from None
    except ValueError as exc:  # an integer longer than sys.get_int_max_str_digits()
        raise ParseError(source, first_line, text[:80], f"YAML ({exc})") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not docs:
        raise ParseError(source, first_line, text[:80], "a YAML document")
    out = ClusterObjects()
    for doc, start, end in docs:
        where = first_line + text.count("\n", 0, start)
        locator = _Locator(text[start:end], where, yaml_style=True)
        out = out.merge(objects_from_api(doc, source, locator=locator))
    return out


# `kubectl cluster-info dump --output-directory` (clusterinfo_dump.go): nodes.<ext> at the top,
# these per namespace, and <namespace>/<pod>/logs.txt; <ext> is json or yaml (-o).
_DUMP_NAMESPACE_FILES = frozenset({
    "events", "replication-controllers", "services", "daemonsets", "deployments", "replicasets",
    "pods",
})
_DUMP_EXTENSIONS = (".json", ".yaml")
_STDOUT_HEAD = re.compile(r'"kind"\s*:\s*"NodeList"')


def _rel(path: str) -> str:
    return path.replace("\\", "/").lstrip("./")


def looks_like_cluster_info_dump(files: Mapping[str, str]) -> bool:
    """True when at least one file is laid out as `kubectl cluster-info dump` writes it:
    `nodes.json|yaml` at the top, `<namespace>/{pods,services,events,...}.json|yaml`,
    `<namespace>/<pod>/logs.txt` holding `==== START logs ...` sections, or the command's
    stdout (a NodeList first) saved as a .json file. `files` maps relative path → text.

    A directory of anything else is not a dump and must be refused, not diagnosed as an
    empty cluster."""
    for path, text in files.items():
        parts = _rel(path).split("/")
        name = parts[-1]
        stem, dot, ext = name.rpartition(".")
        if len(parts) == 1 and dot and f".{ext}" in _DUMP_EXTENSIONS and stem == "nodes":
            return True
        if len(parts) == 2 and dot and f".{ext}" in _DUMP_EXTENSIONS and stem in _DUMP_NAMESPACE_FILES:
            return True
        if len(parts) == 3 and name == "logs.txt" and any(
            _LOG_START.match(line) for line in text[:65536].splitlines()
        ):
            return True
        if name.endswith(".json") and _STDOUT_HEAD.search(text[:4096]):
            return True
    return False


def load_cluster_info_dump(files: Mapping[str, str], source_prefix: str = "") -> ClusterObjects:
    """A `kubectl cluster-info dump --output-directory` tree given as relative path → text.

    `nodes.json`, `<ns>/{pods,services,events,endpoints,...}.json|yaml`, `<ns>/<pod>/logs.txt`.
    Unknown files are ignored; a broken file is reported in `problems` and the rest still read.
    Raises SnapshotError when nothing looks like a dump (`looks_like_cluster_info_dump`).
    """
    if not looks_like_cluster_info_dump(files):
        seen = ", ".join(sorted(_rel(p) for p in files)[:5]) or "no files"
        more = f" and {len(files) - 5} more" if len(files) > 5 else ""
        raise SnapshotError(
            f"{source_prefix.rstrip('/') or 'input'}: nothing here looks like a kubectl "
            "cluster-info dump (expected nodes.json, <namespace>/pods.json or "
            f"<namespace>/<pod>/logs.txt; found {seen}{more})"
        )
    out = ClusterObjects()
    for path in sorted(files):
        text = files[path]
        rel = _rel(path)
        source = f"{source_prefix}{rel}"
        parts = rel.split("/")
        try:
            if rel.endswith(".json"):
                out = out.merge(parse_kube_json(text, source))
            elif rel.endswith((".yaml", ".yml")):
                out = out.merge(parse_kube_yaml(text, source))
            elif parts[-1] == "logs.txt" and len(parts) >= 3:
                out = out.merge(_dump_logs(text, source, namespace=parts[-3], pod=parts[-2]))
        except ParseError as exc:
            out = out.merge(ClusterObjects(problems=(str(exc),)))
    return out


def _dump_logs(text: str, source: str, *, namespace: str, pod: str) -> ClusterObjects:
    text = normalize_spaces(text)
    lines = text.splitlines()
    logs: list[tuple[str | None, int, list[str]]] = []
    container: str | None = None
    start = 1
    buf: list[str] = []
    for i, line in enumerate(lines, 1):
        match = _LOG_START.match(line)
        if match is not None:
            if buf:
                logs.append((container, start, buf))
            container, start, buf = match.group("c"), i + 1, []
            continue
        if _LOG_END.match(line):
            logs.append((container, start, buf))
            container, start, buf = None, i + 1, []
            continue
        buf.append(line)
    if any(line.strip() for line in buf):
        logs.append((container, start, buf))
    result: list[Any] = []
    for ctr, first, body in logs:
        result.extend(parse_logs("\n".join(body), source, first, pod=pod, container=ctr, namespace=namespace))
    return ClusterObjects(logs=tuple(result))
