"""kubectl's human-readable output: `describe pod|svc|node`, `get` tables and events tables.

`describe` output is an indented key/value tree (kubectl/pkg/describe, PrefixWriter: two spaces
per level) with embedded tables (Conditions, Events, Non-terminated Pods). The tree parser here
reads any describe text, including fragments pasted from the middle (the seed's starts at a
container's `State:`), and the per-kind functions pick the fields diagnosis needs.

`get` tables come from kubectl's tabwriter (left-aligned columns, padding 3): a header line
gives the column offsets. Pasted tables lose alignment (tabs, proportional fonts, grep without
header), so rows are cut by header offsets when they fit, else by runs of 2+ spaces, and the
pods/services/nodes tables also accept header-less rows anchored on a typed column (READY
`1/1`, TYPE `ClusterIP`, STATUS `Ready`).

All functions take the text, a source name and the file line of the text's first line, and
raise `ParseError` (file, line, text, expectation) when the text is not what they parse.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from netsleuth.errors import ParseError
from netsleuth.model.k8s import (
    Condition,
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
    split_hostport,
    unique,
)
from netsleuth.model.net import IPAddress, IPNetwork
from netsleuth.model.source import SourceRef

# Web pages and chat tools turn spaces into NO-BREAK SPACE (U+00A0) and friends; the seed has
# hundreds. Every Unicode space separator becomes an ASCII space (same column), CR goes.
_UNICODE_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\ufeff\u200b]")


def normalize_spaces(text: str) -> str:
    """Unicode spaces → ASCII space, CRLF/CR → LF (column positions are kept)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _UNICODE_SPACES.sub(lambda m: "" if m.group(0) in "\ufeff\u200b" else " ", text)


# --- generic describe tree ------------------------------------------------------------------

_KEY_LINE = re.compile(
    r"^(?P<indent> *)(?P<key>[A-Za-z_][\w.()/\-]*(?: [\w.()/\-]+)*):"
    r"(?:[ \t]+(?P<value>.*?))?[ \t]*$"
)
_TABLE_HEADERS = (
    re.compile(r"^\s*Type\s{2,}Status\b"),
    re.compile(r"^\s*Type\s{2,}Reason\s{2,}Age\b"),
    re.compile(r"^\s*Namespace\s{2,}Name\b"),
    re.compile(r"^\s*Resource\s{2,}Requests\b"),
)
_DASHES = re.compile(r"^\s*-{2,}(\s+-{2,})*\s*$")


@dataclass
class _DNode:
    key: str
    value: str
    line: int
    indent: int
    value_col: int
    children: list[_DNode] = field(default_factory=list)
    items: list[tuple[str, int]] = field(default_factory=list)  # continuation lines
    table: list[dict[str, str]] = field(default_factory=list)
    table_lines: list[int] = field(default_factory=list)

    def child(self, *keys: str) -> _DNode | None:
        for node in self.children:
            if node.key in keys:
                return node
        return None

    def get(self, *keys: str) -> str | None:
        node = self.child(*keys)
        return node.value if node is not None else None

    def values(self) -> list[str]:
        """The inline value plus continuation items (labels, annotations, tolerations)."""
        out = [self.value] if self.value else []
        out.extend(text for text, _ in self.items)
        return [v for v in out if v and v != "<none>"]


def _describe_tree(lines: Sequence[str], first_line: int) -> _DNode:
    root = _DNode("", "", first_line, -1, 0)
    stack: list[_DNode] = [root]
    last: _DNode | None = None
    i = 0
    while i < len(lines):
        raw = lines[i].rstrip()
        lineno = first_line + i
        i += 1
        if not raw.strip() or raw.strip() == "---" or _DASHES.match(raw):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        # A table header right after a section key: read rows until the indent falls back.
        if last is not None and not last.value and any(h.match(raw) for h in _TABLE_HEADERS):
            section = last
            header = raw
            rows: list[tuple[str, int]] = []
            while i < len(lines):
                row = lines[i].rstrip()
                if not row.strip():
                    break
                row_indent = len(row) - len(row.lstrip(" "))
                if row_indent <= section.indent and _KEY_LINE.match(row):
                    break
                if not _DASHES.match(row) and row.strip() != "---":
                    rows.append((row, first_line + i))
                i += 1
            section.table = _table_rows(header, [r for r, _ in rows])
            section.table_lines = [n for _, n in rows]
            continue
        # Continuation of a multi-valued key (Labels, Annotations, Tolerations): the line starts
        # exactly at that key's value column.
        if last is not None and last.value and indent == last.value_col and indent > last.indent:
            last.items.append((raw.strip(), lineno))
            continue
        match = _KEY_LINE.match(raw)
        if match is None:
            # A list item (Command/Args entries) or wrapped text: belongs to the nearest
            # shallower key.
            owner = stack[-1]
            while len(stack) > 1 and owner.indent >= indent:
                stack.pop()
                owner = stack[-1]
            if owner is not root:
                owner.items.append((raw.strip(), lineno))
            continue
        key = match.group("key")
        value = (match.group("value") or "").strip()
        value_col = match.start("value") if match.group("value") else indent + len(key) + 2
        while len(stack) > 1 and stack[-1].indent >= indent:
            stack.pop()
        node = _DNode(key, value, lineno, indent, value_col)
        stack[-1].children.append(node)
        stack.append(node)
        last = node
    return root


# --- tables ---------------------------------------------------------------------------------

_COLUMN = re.compile(r"\S+(?: \S+)*")


def _columns(header: str) -> list[tuple[str, int]]:
    return [(m.group(0), m.start()) for m in _COLUMN.finditer(header.rstrip())]


def _table_rows(header: str, rows: Sequence[str]) -> list[dict[str, str]]:
    cols = _columns(header)
    return [_cut_row(cols, row) for row in rows]


def _cut_row(cols: list[tuple[str, int]], row: str) -> dict[str, str]:
    names = [name for name, _ in cols]
    starts = [start for _, start in cols]
    text = row.rstrip()
    aligned = True
    for start in starts[1:]:
        if start >= len(text):
            break
        if start > 0 and text[start - 1] != " ":
            aligned = False
            break
    if aligned and starts and (len(text) <= starts[0] or text[: starts[0]].strip() == ""):
        out: dict[str, str] = {}
        for j, name in enumerate(names):
            end = starts[j + 1] if j + 1 < len(starts) else len(text)
            out[name] = text[starts[j] : end].strip() if starts[j] < len(text) else ""
        return out
    parts = re.split(r"\s{2,}|\t+", text.strip())
    if len(parts) > len(names):
        parts = [*parts[: len(names) - 1], "  ".join(parts[len(names) - 1 :])]
    parts += [""] * (len(names) - len(parts))
    return dict(zip(names, parts, strict=True))


def _find_header(lines: Sequence[str], first: str) -> int | None:
    for i, line in enumerate(lines):
        if re.match(rf"^\s*{first}\b", line):
            return i
    return None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    match = re.match(r"^\s*(-?\d+)", text)
    return int(match.group(1)) if match else None


def _ips(text: str | None) -> tuple[IPAddress, ...]:
    if not text:
        return ()
    out = [parse_ip(part) for part in re.split(r"[,\s]+", text)]
    return unique(ip for ip in out if ip is not None)


def _kv_pairs(values: Sequence[str], sep: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        for part in item.split(",") if sep == "=" else [item]:
            key, found, value = part.strip().partition(sep)
            if found and key:
                out[key.strip()] = value.strip()
    return out


# --- events ---------------------------------------------------------------------------------

_AGE_REPEAT = re.compile(r"^(?P<age>\S+)\s+\(x(?P<count>\d+)\s+over\s+(?P<over>[^)]+)\)$")


def _event_from_row(row: dict[str, str], source: SourceRef, obj: str | None, namespace: str | None) -> Event:
    age_text = row.get("Age") or row.get("LAST SEEN") or ""
    count = _int(row.get("COUNT")) or 1
    age: str | None = age_text or None
    over: str | None = None
    match = _AGE_REPEAT.match(age_text.strip())
    if match is not None:
        age, count, over = match.group("age"), int(match.group("count")), match.group("over")
    src = row.get("From") or row.get("SOURCE") or ""
    component: str | None = src or None
    host: str | None = None
    if "," in src:  # `kubelet, admin` (kubectl before 1.20 printed the source host)
        component, host = (part.strip() or None for part in src.split(",", 1))
    object_ = obj
    if row.get("OBJECT"):
        object_ = row["OBJECT"].lower() if "/" in row["OBJECT"] else row["OBJECT"]
    elif row.get("NAME") and row.get("KIND"):
        # old layout NAME is "pod-name.16f3a..." (event name); the object is KIND + name part
        object_ = f"{row['KIND'].lower()}/{row['NAME'].rsplit('.', 1)[0]}"
    return Event(
        type=row.get("Type") or row.get("TYPE") or None,
        reason=row.get("Reason") or row.get("REASON") or None,
        message=row.get("Message") or row.get("MESSAGE") or "",
        object=object_,
        namespace=row.get("NAMESPACE") or namespace,
        count=count,
        age=age,
        over=over,
        first_seen=row.get("FIRST SEEN") or None,
        last_seen=row.get("LAST SEEN") or None,
        source_component=component,
        source_host=host,
        source=source,
    )


def _events_of(node: _DNode | None, source: str, obj: str | None, ns: str | None) -> tuple[Event, ...]:
    if node is None or not node.table:
        return ()
    return tuple(
        _event_from_row(row, SourceRef(source, line), obj, ns)
        for row, line in zip(node.table, node.table_lines, strict=True)
        if row.get("Type") or row.get("Reason")
    )


def parse_events_table(
    text: str,
    source: str,
    first_line: int = 1,
    *,
    obj: str | None = None,
    namespace: str | None = None,
) -> tuple[Event, ...]:
    """A describe-style `Events:` table, or any `kubectl get events` / `kubectl events` table.

    `obj`/`namespace` name the described object when the table has no OBJECT column.
    """
    lines = normalize_spaces(text).splitlines()
    get_header = _find_header(lines, "(?:NAMESPACE\\s+)?LAST SEEN")
    if get_header is not None:
        cols = _columns(lines[get_header])
        events = []
        for j in range(get_header + 1, len(lines)):
            if not lines[j].strip():
                continue
            row = _cut_row(cols, lines[j])
            events.append(_event_from_row(row, SourceRef(source, first_line + j), obj, namespace))
        return tuple(events)
    root = _describe_tree(lines, first_line)
    node = root.child("Events")
    if node is None:
        for child in root.children:  # a describe tree where Events sits deeper (fragments)
            node = child.child("Events")
            if node is not None:
                break
    if node is None or (not node.table and node.value != "<none>"):
        bad = next((j for j, line in enumerate(lines) if line.strip()), 0)
        raise ParseError(
            source,
            first_line + bad,
            lines[bad] if lines else "",
            "an events table (`Events:` + `Type Reason Age From Message`, or `LAST SEEN ...`)",
        )
    return _events_of(node, source, obj, namespace)


# --- describe pod ---------------------------------------------------------------------------

_CONTAINER_KEYS = {
    "Container ID",
    "Image",
    "Image ID",
    "State",
    "Ready",
    "Restart Count",
    "Last State",
    "Port",
    "Ports",
    "Host Port",
    "Host Ports",
    "Liveness",
    "Readiness",
    "Mounts",
    "Limits",
    "Requests",
    "Environment",
    "Command",
    "Args",
}
_POD_KEYS = {
    "Name",
    "Namespace",
    "Priority",
    "Node",
    "Start Time",
    "Status",
    "IP",
    "IPs",
    "Controlled By",
    "Containers",
    "Init Containers",
    "Conditions",
    "QoS Class",
    "Volumes",
    "Service Account",
    "Priority Class Name",
    "Node-Selectors",
    "Tolerations",
}


def _container(node: _DNode, name: str | None, source: str, init: bool) -> ContainerStatus:
    def state_of(
        key: str,
    ) -> tuple[str | None, str | None, int | None, str | None, str | None, str | None]:
        st = node.child(key)
        if st is None:
            return None, None, None, None, None, None
        return (
            st.value.lower() or None,
            st.get("Reason"),
            _int(st.get("Exit Code")),
            st.get("Started"),
            st.get("Finished"),
            st.get("Message"),
        )

    state, reason, exit_code, started, finished, message = state_of("State")
    last_state, last_reason, last_exit, _s, _f, _m = state_of("Last State")
    ready_text = node.get("Ready")
    env_node = node.child("Environment")
    env: dict[str, str] = {}
    if env_node is not None:
        for child in env_node.children:
            env[child.key] = child.value
    cmd = node.child("Command")
    args = node.child("Args")
    ports = node.child("Port", "Ports")
    host_ports = node.child("Host Port", "Host Ports")
    return ContainerStatus(
        name=name,
        image=node.get("Image"),
        state=state,
        reason=reason,
        message=message,
        exit_code=exit_code,
        started=started,
        finished=finished,
        last_state=last_state,
        last_reason=last_reason,
        last_exit_code=last_exit,
        ready=None if ready_text is None else ready_text == "True",
        restart_count=_int(node.get("Restart Count")),
        init=init,
        ports=tuple(
            p.strip()
            for v in (ports.values() if ports else [])
            for p in v.split(",")
            if p.strip() and p.strip() != "<none>"
        ),
        host_ports=tuple(
            p.strip()
            for v in (host_ports.values() if host_ports else [])
            for p in v.split(",")
            if p.strip() and p.strip() not in ("<none>", "0/TCP")
        ),
        command=tuple(text for text, _ in cmd.items) if cmd else (),
        args=tuple(text for text, _ in args.items) if args else (),
        env=env,
        liveness=node.get("Liveness"),
        readiness=node.get("Readiness"),
        source=SourceRef(source, node.line),
    )


def _conditions(node: _DNode | None, source: str) -> tuple[Condition, ...]:
    if node is None:
        return ()
    return tuple(
        Condition(
            type=row.get("Type", ""),
            status=row.get("Status", ""),
            reason=row.get("Reason") or None,
            message=row.get("Message") or None,
            source=SourceRef(source, line),
        )
        for row, line in zip(node.table, node.table_lines, strict=True)
        if row.get("Type")
    )


def parse_describe_pod(
    text: str,
    source: str,
    first_line: int = 1,
    *,
    name: str | None = None,
    namespace: str | None = None,
) -> Pod:
    """`kubectl describe pod` output (whole, or a fragment: then `name`/`namespace` from the
    command line fill in what the text does not show)."""
    lines = normalize_spaces(text).splitlines()
    root = _describe_tree(lines, first_line)
    keys = {c.key for c in root.children}
    if not keys & (_POD_KEYS | _CONTAINER_KEYS | {"Events"}):
        bad = next((j for j, line in enumerate(lines) if line.strip()), 0)
        raise ParseError(
            source,
            first_line + bad,
            lines[bad] if lines else "",
            "kubectl describe pod output (Name:, Status:, Containers:, State: ...)",
        )
    pod_name = root.get("Name") or name
    pod_ns = root.get("Namespace") or namespace
    node_text = root.get("Node") or ""
    node_name, _, node_ip_text = node_text.partition("/")
    containers: list[ContainerStatus] = []
    for section, init in (("Init Containers", True), ("Containers", False)):
        sec = root.child(section)
        if sec is not None:
            containers.extend(_container(c, c.key, source, init) for c in sec.children)
    if not containers and keys & _CONTAINER_KEYS:
        # Fragment starting inside one container: its keys sit at the root.
        containers.append(_container(root, None, source, False))
        containers[-1] = _with_source(containers[-1], SourceRef(source, _first_key_line(root)))
    ips = list(_ips(root.get("IP")))
    ips_node = root.child("IPs")
    if ips_node is not None:
        for child in ips_node.children:
            ips.extend(_ips(child.value))
        ips.extend(ip for v in ips_node.values() for ip in _ips(v.replace("IP:", " ")))
    ips_t = unique(ips)
    node_ip = parse_ip(node_ip_text)
    owner = root.get("Controlled By")
    owner_kind, _, owner_name = (owner or "").partition("/")
    labels = root.child("Labels")
    annotations = root.child("Annotations")
    status = root.get("Status")
    reason = root.get("Reason")
    obj = f"pod/{pod_name}" if pod_name else None
    events = _events_of(root.child("Events"), source, obj, pod_ns)
    return Pod(
        namespace=pod_ns,
        name=pod_name,
        node=node_name or None if node_name != "<none>" else None,
        node_ip=node_ip,
        phase=status if status in ("Pending", "Running", "Succeeded", "Failed", "Unknown") else None,
        status=reason or status,
        reason=reason,
        ips=ips_t,
        host_network=(node_ip in ips_t) if (node_ip is not None and ips_t) else None,
        containers=tuple(containers),
        conditions=_conditions(root.child("Conditions"), source),
        owner_kind=owner_kind or None,
        owner_name=owner_name or None,
        labels=_kv_pairs(labels.values(), "=") if labels else {},
        annotations=_kv_pairs(annotations.values(), ":") if annotations else {},
        restarts=sum(c.restart_count or 0 for c in containers) if containers else None,
        events=events,
        source=SourceRef(source, _first_key_line(root)),
    )


def _first_key_line(root: _DNode) -> int:
    return root.children[0].line if root.children else root.line


def _with_source(ctr: ContainerStatus, src: SourceRef) -> ContainerStatus:
    return replace(ctr, source=src)


# --- describe service -----------------------------------------------------------------------

_PORT_VALUE = re.compile(r"^(?:(?P<name>\S+)\s+)?(?P<port>\d+|[\w-]+)/(?P<proto>TCP|UDP|SCTP)$")


def parse_describe_service(
    text: str,
    source: str,
    first_line: int = 1,
    *,
    name: str | None = None,
    namespace: str | None = None,
) -> Service:
    """`kubectl describe svc` output; several `Port:` groups become several ServicePorts."""
    lines = normalize_spaces(text).splitlines()
    root = _describe_tree(lines, first_line)
    keys = {c.key for c in root.children}
    if not keys & {"Type", "IP", "IPs", "Port", "Endpoints", "Selector", "TargetPort"}:
        bad = next((j for j, line in enumerate(lines) if line.strip()), 0)
        raise ParseError(
            source,
            first_line + bad,
            lines[bad] if lines else "",
            "kubectl describe service output (Type:, IP:, Port:, Endpoints: ...)",
        )
    ports: list[ServicePort] = []
    all_endpoints: list[str] = []
    truncated = False
    for child in root.children:
        value = child.value
        if child.key == "Port":
            match = _PORT_VALUE.match(value)
            if match is None:
                raise ParseError(source, child.line, value, "`Port: [name] NUMBER/PROTO`")
            pname = match.group("name")
            ports.append(
                ServicePort(
                    port=int(match.group("port")) if match.group("port").isdigit() else 0,
                    protocol=match.group("proto"),
                    name=None if pname in (None, "<unset>") else pname,
                )
            )
        elif ports and child.key == "TargetPort":
            tp = value.split("/", 1)[0] or None
            ports[-1] = _replace_port(ports[-1], target_port=tp)
        elif ports and child.key == "NodePort":
            match = _PORT_VALUE.match(value)
            if match is not None and match.group("port").isdigit():
                ports[-1] = _replace_port(ports[-1], node_port=int(match.group("port")))
        elif child.key == "Endpoints":
            eps, more = _endpoint_list(value)
            truncated = truncated or more
            all_endpoints.extend(eps)
            if ports:
                ports[-1] = _replace_port(ports[-1], endpoints=tuple(eps))
    selector_node = root.child("Selector")
    selector: dict[str, str] | None = None
    if selector_node is not None:
        selector = _kv_pairs(selector_node.values(), "=")
    ips: list[IPAddress] = list(_ips(root.get("IP")))
    ips_node = root.child("IPs")
    ips.extend(ip for v in (ips_node.values() if ips_node else []) for ip in _ips(v))
    ip_text = (root.get("IP") or root.get("IPs") or "").strip()
    ext_node = root.child("External IPs")
    ext = [e.strip() for v in (ext_node.values() if ext_node else []) for e in v.split(",")]
    lb_node = root.child("LoadBalancer Ingress")
    ext += [e.strip() for v in (lb_node.values() if lb_node else []) for e in v.split(",")]
    svc_name = root.get("Name") or name
    svc_ns = root.get("Namespace") or namespace
    labels = root.child("Labels")
    return Service(
        namespace=svc_ns,
        name=svc_name,
        type=root.get("Type"),
        cluster_ips=unique(ips),
        headless=ip_text == "None",
        external_ips=tuple(e for e in ext if e and e != "<none>"),
        ports=tuple(ports),
        selector=selector,
        endpoints=tuple(unique(all_endpoints)),
        endpoints_truncated=truncated,
        session_affinity=root.get("Session Affinity"),
        external_traffic_policy=root.get("External Traffic Policy"),
        internal_traffic_policy=root.get("Internal Traffic Policy"),
        labels=_kv_pairs(labels.values(), "=") if labels else {},
        events=_events_of(root.child("Events"), source, f"service/{svc_name}", svc_ns),
        source=SourceRef(source, _first_key_line(root)),
    )


def _replace_port(port: ServicePort, **changes: object) -> ServicePort:
    return replace(port, **changes)  # type: ignore[arg-type]


def _endpoint_list(value: str) -> tuple[list[str], bool]:
    """`10.0.0.1:53,10.0.0.2:53 + 1 more...` → (["10.0.0.1:53", "10.0.0.2:53"], True)."""
    text = value.strip()
    more = False
    match = re.search(r"\s*\+\s*\d+\s+more\.*\s*$", text)
    if match is not None:
        more = True
        text = text[: match.start()]
    if text in ("", "<none>", "<unset>"):
        return [], more
    return [e.strip() for e in text.split(",") if e.strip()], more


# --- describe node --------------------------------------------------------------------------


def parse_describe_node(text: str, source: str, first_line: int = 1, *, name: str | None = None) -> K8sNode:
    """`kubectl describe node` output."""
    lines = normalize_spaces(text).splitlines()
    root = _describe_tree(lines, first_line)
    keys = {c.key for c in root.children}
    if not keys & {
        "Roles",
        "Addresses",
        "PodCIDR",
        "PodCIDRs",
        "System Info",
        "Taints",
        "Capacity",
    }:
        bad = next((j for j, line in enumerate(lines) if line.strip()), 0)
        raise ParseError(
            source,
            first_line + bad,
            lines[bad] if lines else "",
            "kubectl describe node output (Roles:, Addresses:, PodCIDR: ...)",
        )
    node_name = root.get("Name") or name or ""
    addresses = root.child("Addresses")
    internal: list[IPAddress] = []
    external: list[IPAddress] = []
    hostname: str | None = None
    if addresses is not None:
        for child in addresses.children:
            if child.key == "InternalIP":
                internal.extend(_ips(child.value))
            elif child.key == "ExternalIP":
                external.extend(_ips(child.value))
            elif child.key == "Hostname":
                hostname = child.value
    cidrs: list[IPNetwork] = []
    for key in ("PodCIDR", "PodCIDRs"):
        for part in (root.get(key) or "").split(","):
            net = parse_cidr(part)
            if net is not None:
                cidrs.append(net)
    info = root.child("System Info")
    roles = root.get("Roles") or ""
    labels = root.child("Labels")
    annotations = root.child("Annotations")
    taints = root.child("Taints")
    return K8sNode(
        name=node_name,
        internal_ips=unique(internal),
        external_ips=unique(external),
        hostname=hostname,
        conditions=_conditions(root.child("Conditions"), source),
        pod_cidrs=unique(cidrs),
        roles=tuple(r for r in roles.split(",") if r and r != "<none>"),
        kubelet_version=info.get("Kubelet Version") if info else None,
        kube_proxy_version=info.get("Kube-Proxy Version") if info else None,
        os_image=info.get("OS Image") if info else None,
        kernel_version=info.get("Kernel Version") if info else None,
        container_runtime=info.get("Container Runtime Version") if info else None,
        labels=_kv_pairs(labels.values(), "=") if labels else {},
        annotations=_kv_pairs(annotations.values(), ":") if annotations else {},
        taints=tuple(taints.values()) if taints else (),
        events=_events_of(root.child("Events"), source, f"node/{node_name}", None),
        source=SourceRef(source, _first_key_line(root)),
    )


# --- get tables -----------------------------------------------------------------------------


def _table(
    text: str, first_line: int, header_first: str
) -> Iterator[tuple[dict[str, str] | None, list[str], int, str]]:
    """Rows of a `kubectl get` table: (row by header or None, whitespace tokens, line, raw)."""
    lines = normalize_spaces(text).splitlines()
    header = _find_header(lines, header_first)
    cols = _columns(lines[header]) if header is not None else None
    for j, line in enumerate(lines):
        if header is not None and j <= header:
            continue
        if not line.strip() or _no_resources(line):
            continue
        if re.match(r"^\s*NAMESPACE\s{2,}|^\s*NAME\s{2,}", line):
            cols = _columns(line)  # another table (`kubectl get po,svc`) starts here
            continue
        row = _cut_row(cols, line) if cols is not None else None
        yield row, line.split(), first_line + j, line


_READY = re.compile(r"^\d+/\d+$")
_RESTARTS_AGO = re.compile(r"^\(\S+ ago\)$")


def parse_get_pods(
    text: str, source: str, first_line: int = 1, *, namespace: str | None = None
) -> tuple[Pod, ...]:
    """`kubectl get pods [-A] [-o wide]`, with or without the header line (grep)."""
    pods: list[Pod] = []
    for row, tokens, line, raw in _table(text, first_line, "(?:NAMESPACE\\s+)?NAME"):
        if row is not None and _READY.match(row.get("READY", "")):
            ns = row.get("NAMESPACE") or namespace
            name, ready, status = row.get("NAME"), row.get("READY"), row.get("STATUS")
            restarts, age = row.get("RESTARTS"), row.get("AGE")
            ip, node = row.get("IP"), row.get("NODE")
        else:
            idx = next((k for k, tok in enumerate(tokens) if _READY.match(tok)), None)
            if idx is None or idx == 0 or idx > 2 or len(tokens) < idx + 4:
                raise ParseError(
                    source,
                    line,
                    raw,
                    "a pods table row: [NAMESPACE] NAME READY STATUS RESTARTS AGE",
                )
            ns = tokens[0] if idx == 2 else namespace
            name, ready, status = tokens[idx - 1], tokens[idx], tokens[idx + 1]
            rest = tokens[idx + 2 :]
            restarts = rest[0]
            rest = rest[1:]
            if len(rest) >= 2 and _RESTARTS_AGO.match(" ".join(rest[:2])):  # `5 (2m ago)`
                rest = rest[2:]
            age = rest[0] if rest else None
            ip = rest[1] if len(rest) > 1 else None
            node = rest[2] if len(rest) > 2 else None
        pods.append(
            Pod(
                namespace=ns,
                name=name,
                node=None if node in (None, "", "<none>") else node,
                status=status or None,
                phase=status if status in ("Pending", "Running", "Succeeded", "Failed", "Unknown") else None,
                ips=_ips(ip),
                ready=ready,
                restarts=_int(restarts),
                age=age or None,
                source=SourceRef(source, line),
            )
        )
    if not pods and text.strip() and not _no_resources(text):
        raise ParseError(source, first_line, text.splitlines()[0], "a kubectl get pods table")
    return _mark_host_network(tuple(pods))


def _mark_host_network(pods: tuple[Pod, ...]) -> tuple[Pod, ...]:
    """Pods sharing one IP on the same node are hostNetwork pods: pod IPs are unique per pod
    (IPAM), only hostNetwork pods report the node's address. Mark them (a table never says)."""
    seen: dict[tuple[str | None, IPAddress], int] = {}
    for pod in pods:
        if pod.ip is not None:
            seen[(pod.node, pod.ip)] = seen.get((pod.node, pod.ip), 0) + 1
    return tuple(
        replace(pod, host_network=True)
        if pod.ip is not None and pod.node is not None and seen[(pod.node, pod.ip)] > 1
        else pod
        for pod in pods
    )


def _no_resources(text: str) -> bool:
    return bool(re.search(r"^No resources found", text, re.MULTILINE))


_SVC_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


def _svc_ports(text: str) -> tuple[ServicePort, ...]:
    ports: list[ServicePort] = []
    for part in text.split(","):
        match = re.match(r"^(?P<port>\d+)(?::(?P<node>\d+))?/(?P<proto>\w+)$", part.strip())
        if match is not None:
            ports.append(
                ServicePort(
                    port=int(match.group("port")),
                    protocol=match.group("proto"),
                    node_port=int(match.group("node")) if match.group("node") else None,
                )
            )
    return tuple(ports)


def parse_get_services(
    text: str, source: str, first_line: int = 1, *, namespace: str | None = None
) -> tuple[Service, ...]:
    """`kubectl get svc [-A] [-o wide]` (wide adds SELECTOR)."""
    services: list[Service] = []
    for row, tokens, line, raw in _table(text, first_line, "(?:NAMESPACE\\s+)?NAME"):
        if row is not None and row.get("TYPE") in _SVC_TYPES:
            ns, name, type_ = row.get("NAMESPACE") or namespace, row.get("NAME"), row.get("TYPE")
            cip, ext, ports, age = (
                row.get("CLUSTER-IP", ""),
                row.get("EXTERNAL-IP", ""),
                row.get("PORT(S)", ""),
                row.get("AGE"),
            )
            sel = row.get("SELECTOR")
        else:
            idx = next((k for k, tok in enumerate(tokens) if tok in _SVC_TYPES), None)
            if idx is None or idx == 0 or idx > 2 or len(tokens) < idx + 4:
                raise ParseError(
                    source,
                    line,
                    raw,
                    "a services table row: [NAMESPACE] NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE",
                )
            ns = tokens[0] if idx == 2 else namespace
            name, type_ = tokens[idx - 1], tokens[idx]
            cip, ext, ports = tokens[idx + 1], tokens[idx + 2], tokens[idx + 3]
            age = tokens[idx + 4] if len(tokens) > idx + 4 else None
            sel = tokens[idx + 5] if len(tokens) > idx + 5 else None
        selector: dict[str, str] | None = None
        if sel is not None:
            selector = {} if sel == "<none>" else _kv_pairs([sel], "=")
        services.append(
            Service(
                namespace=ns,
                name=name,
                type=type_,
                cluster_ips=_ips(cip),
                headless=cip == "None",
                external_ips=tuple(e for e in ext.split(",") if e and e not in ("<none>", "<pending>")),
                ports=_svc_ports(ports),
                selector=selector,
                age=age,
                source=SourceRef(source, line),
            )
        )
    if not services and text.strip() and not _no_resources(text):
        raise ParseError(source, first_line, text.splitlines()[0], "a kubectl get svc table")
    return tuple(services)


_NODE_STATUS = re.compile(r"^(Ready|NotReady|Unknown)(,\S+)?$")


def parse_get_nodes(text: str, source: str, first_line: int = 1) -> tuple[K8sNode, ...]:
    """`kubectl get nodes [-o wide]`."""
    nodes: list[K8sNode] = []
    for row, tokens, line, raw in _table(text, first_line, "NAME"):
        if row is not None and _NODE_STATUS.match(row.get("STATUS", "")):
            name, status, roles = row.get("NAME", ""), row.get("STATUS"), row.get("ROLES", "")
            version, internal, external = (
                row.get("VERSION"),
                row.get("INTERNAL-IP"),
                row.get("EXTERNAL-IP"),
            )
            os_image, kernel, runtime = (
                row.get("OS-IMAGE"),
                row.get("KERNEL-VERSION"),
                row.get("CONTAINER-RUNTIME"),
            )
        else:
            if len(tokens) < 5 or not _NODE_STATUS.match(tokens[1]):
                raise ParseError(source, line, raw, "a nodes table row: NAME STATUS ROLES AGE VERSION")
            name, status, roles, version = tokens[0], tokens[1], tokens[2], tokens[4]
            internal = tokens[5] if len(tokens) > 5 else None
            external = tokens[6] if len(tokens) > 6 else None
            os_image = " ".join(tokens[7:-2]) if len(tokens) > 9 else None
            kernel = tokens[-2] if len(tokens) > 9 else None
            runtime = tokens[-1] if len(tokens) > 9 else None
        nodes.append(
            K8sNode(
                name=name,
                status=status,
                roles=tuple(r for r in (roles or "").split(",") if r and r != "<none>"),
                kubelet_version=version or None,
                internal_ips=_ips(internal),
                external_ips=_ips(external),
                os_image=os_image or None,
                kernel_version=kernel or None,
                container_runtime=runtime or None,
                source=SourceRef(source, line),
            )
        )
    if not nodes and text.strip() and not _no_resources(text):
        raise ParseError(source, first_line, text.splitlines()[0], "a kubectl get nodes table")
    return tuple(nodes)


def parse_get_endpoints(
    text: str, source: str, first_line: int = 1, *, namespace: str | None = None
) -> tuple[Endpoints, ...]:
    """`kubectl get ep` (`NAME ENDPOINTS AGE`) or `kubectl get endpointslices`
    (`NAME ADDRESSTYPE PORTS ENDPOINTS AGE`), optionally with NAMESPACE."""
    out: list[Endpoints] = []
    for row, tokens, line, raw in _table(text, first_line, "(?:NAMESPACE\\s+)?NAME"):
        if row is not None and "ENDPOINTS" in row:
            ns, name, shown_text = (
                row.get("NAMESPACE") or namespace,
                row.get("NAME", ""),
                row["ENDPOINTS"],
            )
            addr_type = row.get("ADDRESSTYPE")
            ports_text = row.get("PORTS")
        else:
            if len(tokens) < 3:
                raise ParseError(source, line, raw, "an endpoints table row: NAME ENDPOINTS AGE")
            ns, name = namespace, tokens[0]
            shown_text = " ".join(tokens[1:-1])
            addr_type, ports_text = None, None
        kind = "EndpointSlice" if addr_type is not None else "Endpoints"
        shown, more = _endpoint_list(shown_text)
        addresses: list[EndpointAddress] = []
        ports: list[EndpointPort] = []
        for item in shown:
            host, port = split_hostport(item)
            ip = parse_ip(host)
            if not any(a.ip == ip and a.raw == host for a in addresses):
                addresses.append(EndpointAddress(ip=ip, raw=host))
            if port is not None and not any(p.port == port for p in ports):
                ports.append(EndpointPort(port=port))
        if ports_text:
            for part in ports_text.split(","):
                if part.strip().isdigit() and not any(p.port == int(part) for p in ports):
                    ports.append(EndpointPort(port=int(part)))
        service = name
        if kind == "EndpointSlice":
            # slice names are `<service>-<5 random chars>` (EndpointSlice controller GenerateName)
            service = re.sub(r"-[a-z0-9]{5}$", "", name)
        out.append(
            Endpoints(
                namespace=ns,
                name=name,
                kind=kind,
                service=service,
                addresses=tuple(addresses),
                ports=tuple(ports),
                address_type=addr_type,
                truncated=more,
                shown=tuple(shown),
                source=SourceRef(source, line),
            )
        )
    if not out and text.strip() and not _no_resources(text):
        raise ParseError(source, first_line, text.splitlines()[0], "a kubectl get endpoints table")
    return tuple(out)
