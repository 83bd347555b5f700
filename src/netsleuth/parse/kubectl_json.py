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
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from netsleuth.errors import ParseError
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

    def line_of(self, name: str | None) -> int:
        if not name:
            return self._first + self._text.count("\n", 0, self._pos)
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


def _list(obj: Any) -> list[Any]:
    return list(obj) if isinstance(obj, list) else []


def _str(obj: Any) -> str | None:
    return None if obj is None else str(obj)


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
            code = body.get("exitCode")
            return (
                name,
                _str(body.get("reason")),
                int(code) if isinstance(code, int) else None,
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
            what = next(iter(ref)) if ref else "valueFrom"
            out[str(item["name"])] = f"<from {what}>"
    return out


def _probe(probe: Any) -> str | None:
    if not isinstance(probe, Mapping):
        return None
    if isinstance(probe.get("httpGet"), Mapping):
        h = probe["httpGet"]
        scheme = str(h.get("scheme", "HTTP")).lower()
        return f"http-get {scheme}://{h.get('host', '')}:{h.get('port')}{h.get('path', '')}"
    if isinstance(probe.get("tcpSocket"), Mapping):
        return f"tcp-socket :{probe['tcpSocket'].get('port')}"
    if isinstance(probe.get("exec"), Mapping):
        return "exec " + " ".join(str(c) for c in _list(probe["exec"].get("command")))
    return None


def pod_from_json(obj: JSONObj, source: SourceRef) -> Pod:
    meta = _d(obj, "metadata") or {}
    spec = _d(obj, "spec") or {}
    status = _d(obj, "status") or {}
    specs = {str(c.get("name")): c for c in _list(spec.get("containers")) if isinstance(c, Mapping)}
    init_specs = {str(c.get("name")): c for c in _list(spec.get("initContainers")) if isinstance(c, Mapping)}
    containers: list[ContainerStatus] = []
    for key, init, spec_map in (
        ("initContainerStatuses", True, init_specs),
        ("containerStatuses", False, specs),
    ):
        statuses = {str(s.get("name")): s for s in _list(status.get(key)) if isinstance(s, Mapping)}
        for name in unique([*spec_map, *statuses]):
            c_spec = spec_map.get(name, {})
            c_status = statuses.get(name, {})
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
                    restart_count=restart if isinstance(restart, int) else None,
                    init=init,
                    ports=tuple(f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}" for p in ports),
                    host_ports=tuple(
                        f"{p.get('hostPort')}/{p.get('protocol', 'TCP')}" for p in ports if p.get("hostPort")
                    ),
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
            type=str(c.get("type")),
            status=str(c.get("status")),
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
    meta = _d(obj, "metadata") or {}
    spec = _d(obj, "spec") or {}
    status = _d(obj, "status") or {}
    addresses = [a for a in _list(status.get("addresses")) if isinstance(a, Mapping)]
    cidrs: list[IPNetwork] = []
    for text in [spec.get("podCIDR"), *_list(spec.get("podCIDRs"))]:
        net = parse_cidr(_str(text))
        if net is not None and net not in cidrs:
            cidrs.append(net)
    conditions = tuple(
        Condition(
            type=str(c.get("type")),
            status=str(c.get("status")),
            reason=_str(c.get("reason")),
            message=_str(c.get("message")),
            source=source,
        )
        for c in _list(status.get("conditions"))
        if isinstance(c, Mapping)
    )
    labels = _strmap(meta.get("labels"))
    info: Mapping[str, Any] = status["nodeInfo"] if isinstance(status.get("nodeInfo"), Mapping) else {}
    ready = next((c for c in conditions if c.type == "Ready"), None)
    node_status = None if ready is None else ("Ready" if ready.is_true else "NotReady")
    if node_status and spec.get("unschedulable"):
        node_status += ",SchedulingDisabled"
    hostname = next((_str(a.get("address")) for a in addresses if a.get("type") == "Hostname"), None)
    return K8sNode(
        name=str(meta.get("name", "")),
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
        taints=tuple(
            f"{t.get('key')}{'=' + str(t['value']) if t.get('value') else ''}:{t.get('effect')}"
            for t in _list(spec.get("taints"))
            if isinstance(t, Mapping)
        ),
        source=source,
    )


def service_from_json(obj: JSONObj, source: SourceRef) -> Service:
    meta = _d(obj, "metadata") or {}
    spec = _d(obj, "spec") or {}
    cluster_ips = [spec.get("clusterIP"), *_list(spec.get("clusterIPs"))]
    ports = tuple(
        ServicePort(
            port=int(p.get("port", 0)),
            protocol=str(p.get("protocol", "TCP")),
            name=_str(p.get("name")),
            target_port=_str(p.get("targetPort")),
            node_port=int(p["nodePort"]) if isinstance(p.get("nodePort"), int) else None,
        )
        for p in _list(spec.get("ports"))
        if isinstance(p, Mapping)
    )
    ingress = [i for i in _list(_d(obj, "status", "loadBalancer", "ingress")) if isinstance(i, Mapping)]
    external = [str(e) for e in _list(spec.get("externalIPs"))]
    external += [str(i.get("ip") or i.get("hostname")) for i in ingress if i.get("ip") or i.get("hostname")]
    selector = spec.get("selector")
    return Service(
        namespace=_str(meta.get("namespace")),
        name=_str(meta.get("name")),
        type=_str(spec.get("type")) or "ClusterIP",
        cluster_ips=_ips(cluster_ips),
        headless=spec.get("clusterIP") == "None",
        external_ips=tuple(unique(external)),
        ports=ports,
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
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def endpoints_from_json(obj: JSONObj, source: SourceRef) -> Endpoints:
    meta = _d(obj, "metadata") or {}
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
                            raw=str(a.get("ip", "")),
                        )
                    )
        for p in _list(subset.get("ports")):
            if isinstance(p, Mapping) and isinstance(p.get("port"), int):
                port = EndpointPort(
                    port=p["port"], protocol=str(p.get("protocol", "TCP")), name=_str(p.get("name"))
                )
                if port not in ports:
                    ports.append(port)
    name = str(meta.get("name", ""))
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
    meta = _d(obj, "metadata") or {}
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
                    raw=str(addr),
                )
            )
    ports = tuple(
        EndpointPort(port=p["port"], protocol=str(p.get("protocol", "TCP")), name=_str(p.get("name")))
        for p in _list(obj.get("ports"))
        if isinstance(p, Mapping) and isinstance(p.get("port"), int)
    )
    labels = _strmap(meta.get("labels"))
    return Endpoints(
        namespace=_str(meta.get("namespace")),
        name=str(meta.get("name", "")),
        kind="EndpointSlice",
        service=labels.get("kubernetes.io/service-name"),
        addresses=tuple(addresses),
        ports=ports,
        address_type=_str(obj.get("addressType")),
        source=source,
    )


def event_from_json(obj: JSONObj, source: SourceRef) -> Event:
    meta = _d(obj, "metadata") or {}
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    kind = str(_d(involved, "kind") or "").lower()
    name = _d(involved, "name")
    count = obj.get("count") or obj.get("deprecatedCount") or _d(obj, "series", "count") or 1
    src = obj.get("source") or obj.get("deprecatedSource") or {}
    component = _d(src, "component") or obj.get("reportingComponent") or obj.get("reportingController")
    host = _d(src, "host") or obj.get("reportingInstance")
    return Event(
        type=_str(obj.get("type")),
        reason=_str(obj.get("reason")),
        message=str(obj.get("message") or obj.get("note") or ""),
        object=f"{kind}/{name}" if kind and name else _str(name),
        namespace=_str(_d(involved, "namespace") or meta.get("namespace")),
        count=int(count) if isinstance(count, int) else 1,
        first_seen=_str(
            obj.get("firstTimestamp") or obj.get("deprecatedFirstTimestamp") or obj.get("eventTime")
        ),
        last_seen=_str(
            obj.get("lastTimestamp")
            or obj.get("deprecatedLastTimestamp")
            or _d(obj, "series", "lastObservedTime")
            or obj.get("eventTime")
        ),
        source_component=_str(component) or None,
        source_host=_str(host) or None,
        source=source,
    )


def configmap_from_json(obj: JSONObj, source: SourceRef) -> ConfigMap:
    meta = _d(obj, "metadata") or {}
    return ConfigMap(
        namespace=_str(meta.get("namespace")),
        name=str(meta.get("name", "")),
        data=_strmap(obj.get("data")),
        source=source,
    )


# --- documents ------------------------------------------------------------------------------


def objects_from_api(
    obj: Any,
    source: str,
    *,
    locator: _Locator | None = None,
    line: int = 0,
    list_kind: str | None = None,
) -> ClusterObjects:
    """Model objects from one decoded API object or List (kubectl JSON, sanitized client JSON).

    Kinds netsleuth does not use (Deployments, DaemonSets, ...) are skipped silently; a
    document that is not an object at all is reported in `problems`.
    """
    if isinstance(obj, list):
        out = ClusterObjects()
        for item in obj:
            out = out.merge(objects_from_api(item, source, locator=locator, line=line, list_kind=list_kind))
        return out
    if not isinstance(obj, Mapping):
        return ClusterObjects(problems=(f"{source}:{line}: not a Kubernetes object",))
    kind = infer_kind(obj, list_kind)
    if "items" in obj and isinstance(obj.get("items"), list) and (kind is None or kind.endswith("List")):
        return objects_from_api(
            obj["items"],
            source,
            locator=locator,
            line=line,
            list_kind=_str(obj.get("kind")) or list_kind,
        )
    name = _str(_d(obj, "metadata", "name"))
    ref = SourceRef(source, locator.line_of(name) if locator is not None else line)
    if kind == "Pod":
        return ClusterObjects(pods=(pod_from_json(obj, ref),))
    if kind == "Node":
        return ClusterObjects(nodes=(node_from_json(obj, ref),))
    if kind == "Service":
        return ClusterObjects(services=(service_from_json(obj, ref),))
    if kind == "Endpoints":
        return ClusterObjects(endpoints=(endpoints_from_json(obj, ref),))
    if kind == "EndpointSlice":
        return ClusterObjects(endpoints=(endpointslice_from_json(obj, ref),))
    if kind == "Event":
        return ClusterObjects(events=(event_from_json(obj, ref),))
    if kind == "ConfigMap":
        return ClusterObjects(configmaps=(configmap_from_json(obj, ref),))
    return ClusterObjects()


def parse_kube_json(text: str, source: str, first_line: int = 1) -> ClusterObjects:
    """`kubectl get -o json` output, one or several concatenated JSON documents (the stdout form
    of `kubectl cluster-info dump`, including its pod log sections)."""
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
            line_no = first_line + text.count("\n", 0, exc.pos)
            bad = text[exc.pos : text.find("\n", exc.pos) if "\n" in text[exc.pos :] else len(text)]
            raise ParseError(source, line_no, bad or text[pos : pos + 80], f"JSON ({exc.msg})") from None
        lines_before = first_line + text.count("\n", 0, pos)
        segment = text[pos:end]
        out = out.merge(objects_from_api(doc, source, locator=_Locator(segment, lines_before)))
        pos = end
        found = True
    if not found:
        raise ParseError(source, first_line, text[:80], "a JSON document")
    return out


def parse_kube_yaml(text: str, source: str, first_line: int = 1) -> ClusterObjects:
    """`kubectl get -o yaml` output (one or several `---` separated documents)."""
    text = normalize_spaces(text)
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first_line + (mark.line if mark is not None else 0)
        lines = text.splitlines()
        bad = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
        raise ParseError(source, line, bad, f"YAML ({getattr(exc, 'problem', exc)})") from None
    if not docs:
        raise ParseError(source, first_line, text[:80], "a YAML document")
    locator = _Locator(text, first_line, yaml_style=True)
    out = ClusterObjects()
    for doc in docs:
        out = out.merge(objects_from_api(doc, source, locator=locator))
    return out


def load_cluster_info_dump(files: Mapping[str, str], source_prefix: str = "") -> ClusterObjects:
    """A `kubectl cluster-info dump --output-directory` tree given as relative path → text.

    `nodes.json`, `<ns>/{pods,services,events,endpoints,...}.json|yaml`, `<ns>/<pod>/logs.txt`.
    Unknown files are ignored; a broken file is reported in `problems` and the rest still read.
    """
    out = ClusterObjects()
    for path in sorted(files):
        text = files[path]
        rel = path.replace("\\", "/").lstrip("./")
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
