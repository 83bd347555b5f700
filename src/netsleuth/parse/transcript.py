"""Pasted terminal sessions → command/output blocks, each with its format and its node.

Engineers paste what they saw: shell prompts of every shape, `ansible HOSTS -m shell -a CMD`
output split by `HOST | CHANGED | rc=0 >>` banners, `ssh host cmd` and ssh loops, outputs
pasted with no command at all, and prose in any language between them. `split_transcript`
turns such text into `Block`s; it never raises (a transcript is never "invalid", only more or
less understood) and every block keeps its file lines so findings can quote it.

How it works, in order:
1. Each line is classified: blank, shell prompt (+ command), `>>>` REPL, code fence, or text.
2. A prompt starts a block; text after it is its output until the next prompt, a fence, a line
   of prose, or a blank line followed by the start of a different, recognisable output.
3. Text outside blocks is prose unless it starts a recognisable output (`Chain KUBE-...`,
   `Events:`, `default via ...`): then it is an output block without a command.
4. Blocks of `ansible` and ssh loops are split per host at their banners/separators.
5. Each block gets a `kind` from its command (`k describe po` → kubectl-describe-pod) or, when
   there is none or it says nothing, from its content; kinds live in a registry of
   `FormatKind`s (a scoring function per kind) so new formats plug in.
6. Each block gets a host and the reason: prompt, ansible banner, ssh target, loop separator,
   or a guess (prose naming a known host just before, or the host of earlier prompts).

Prose detection is a heuristic on purpose, tuned on the seed write-up (Chinese prose between
blocks, NO-BREAK SPACEs everywhere): CJK-dominated lines and natural-language sentences
(mostly plain words, function words of en/de/fr/es/it/nl, no column layout) end an output;
known tool messages (`No resources found ...`, `curl: (7) ...`) never count as prose.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from netsleuth.errors import ParseError
from netsleuth.model.k8s import ClusterObjects, Fact, parse_ip
from netsleuth.model.source import SourceRef
from netsleuth.parse import kubectl_json, kubectl_text, logs, probes_text
from netsleuth.parse.kubectl_text import normalize_spaces

# --- the block ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """One command and its output (or an output pasted without command).

    `source` is the block's first line (the prompt, or the ansible banner, or the first output
    line); `output_line` the file line of `output`'s first line: output lines are contiguous,
    so output line i (0-based) is file line `output_line + i` (see `ref`). `command` is what
    produced the output (for ansible/ssh the inner command); `typed` the command line as typed.
    `host` is where the command ran, `host_reason` why we think so ("prompt", "ansible banner",
    "ssh target", "ssh loop separator", "kubectl debug node", or "guessed: ..."), None if unknown.
    """

    command: str | None
    output: str
    host: str | None
    host_reason: str
    prompt: str | None
    source: SourceRef
    end_line: int
    kind: str
    output_line: int
    typed: str | None = None
    via: str | None = None  # "ansible", "ssh", "ssh-loop", "kubectl-debug", "kubectl-exec"
    exit_code: int | None = None
    kind_reason: str = ""
    exec_pod: str | None = None  # "ns/pod" for `kubectl exec`

    def ref(self, index: int = 0) -> SourceRef:
        """SourceRef of output line `index` (0-based)."""
        return SourceRef(self.source.file, self.output_line + index)

    @property
    def lines(self) -> list[str]:
        return self.output.split("\n") if self.output else []

    @property
    def guessed_host(self) -> bool:
        return self.host_reason.startswith("guessed")


@dataclass(frozen=True, slots=True)
class ProseLine:
    line: int
    text: str


@dataclass(frozen=True, slots=True)
class Transcript:
    blocks: tuple[Block, ...]
    prose: tuple[ProseLine, ...]
    source: str


# --- commands -------------------------------------------------------------------------------

KUBECTL_NAMES = {"kubectl", "k", "kc", "kubectl.exe", "kubecolor", "oc", "kubectl1"}
_WRAPPERS = {"sudo", "time", "nohup", "command", "exec", "doas"}
_FILTERS = {
    "grep",
    "egrep",
    "fgrep",
    "head",
    "tail",
    "less",
    "more",
    "sort",
    "uniq",
    "column",
    "tee",
    "cat",
    "rg",
    "nl",
}
_TRANSFORMERS = {"jq", "yq", "awk", "sed", "cut", "tr", "xargs", "python", "python3", "wc"}

# fmt: off
KNOWN_COMMANDS = KUBECTL_NAMES | _WRAPPERS | _FILTERS | _TRANSFORMERS | {
    "microk8s", "k3s", "crictl", "docker", "nerdctl", "ctr", "podman", "ip", "ifconfig", "route",
    "iptables", "iptables-save", "iptables-legacy", "iptables-legacy-save", "iptables-nft",
    "iptables-nft-save", "ip6tables", "ip6tables-save", "ip6tables-legacy-save", "nft", "ipvsadm",
    "conntrack", "sysctl", "ps", "pgrep", "lsof", "ss", "netstat", "traceroute", "traceroute6",
    "tracepath", "mtr", "ping", "ping6", "curl", "wget", "dig", "nslookup", "host", "calicoctl",
    "cilium", "systemctl", "journalctl", "service", "ansible", "ansible-playbook", "ssh", "for",
    "while", "echo", "ls", "tcpdump", "ethtool", "bridge", "brctl", "arp", "modprobe", "lsmod",
    "swapoff", "free", "df", "hostname", "uname", "cd", "vi", "vim", "nano", "export", "env",
    "sh", "bash", "zsh", "kubeadm", "helm", "watch", "telnet", "nc", "ncat", "openssl", "getent",
    "resolvectl", "mount", "find", "dmesg", "nmcli", "ifup", "ifdown", "netplan", "dhclient",
    "kube-proxy", "kubelet", "containerd", "stat", "readlink", "sestatus", "getenforce",
    "firewall-cmd", "ufw", "cilium-dbg", "calico-node", "flanneld", "etcdctl", "pdsh", "clush",
    "which", "whoami", "id", "date", "uptime", "top", "htop", "reboot", "ipset", "nmap", "arping",
    "minikube",
}
# fmt: on


@dataclass(frozen=True, slots=True)
class KubectlCall:
    verb: str | None
    resources: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    namespace: str | None = None
    all_namespaces: bool = False
    output: str | None = None
    container: str | None = None
    after_dashdash: tuple[str, ...] = ()  # `kubectl exec POD -- CMD...`


@dataclass(frozen=True, slots=True)
class CommandInfo:
    """A command line understood well enough to pick an output format."""

    raw: str
    argv: tuple[str, ...]  # first pipeline stage, wrappers (sudo, env, time) removed
    program: str
    stages: tuple[str, ...] = ()  # programs of all pipeline stages
    several: bool = False  # `a; b` or `a && b`: outputs of several commands
    kubectl: KubectlCall | None = None

    @property
    def transformed(self) -> bool:
        """A pipeline stage (jq, awk, ...) rewrote the output: trust content, not command."""
        return any(stage in _TRANSFORMERS for stage in self.stages[1:])


# fmt: off
_RESOURCE_ALIASES = {
    "po": "pods", "pod": "pods", "pods": "pods",
    "svc": "services", "service": "services", "services": "services",
    "no": "nodes", "node": "nodes", "nodes": "nodes",
    "ep": "endpoints", "endpoints": "endpoints",
    "endpointslice": "endpointslices", "endpointslices": "endpointslices",
    "endpointslices.discovery.k8s.io": "endpointslices",
    "ev": "events", "event": "events", "events": "events", "events.events.k8s.io": "events",
    "cm": "configmaps", "configmap": "configmaps", "configmaps": "configmaps",
    "ds": "daemonsets", "daemonset": "daemonsets", "daemonsets": "daemonsets",
    "deploy": "deployments", "deployment": "deployments", "deployments": "deployments",
    "all": "all",
}
_KUBECTL_VALUE_FLAGS = {
    "-n", "--namespace", "-o", "--output", "-l", "--selector", "-c", "--container", "--context",
    "--kubeconfig", "--cluster", "--user", "-s", "--server", "--tail", "--since", "--since-time",
    "--field-selector", "--sort-by", "--image", "--as", "--token", "-f", "--filename",
    "--for", "--template", "-L", "--label-columns", "--chunk-size", "--request-timeout",
}
# Flags that take no value although they look like the ones above in some verbs.
_KUBECTL_BOOL_FLAGS = {"-A", "--all-namespaces", "-w", "--watch", "-p", "--previous", "-i", "-t",
                       "-it", "-ti", "--timestamps", "--show-labels", "--no-headers", "--follow"}
# fmt: on


def _option_value(args: list[str], i: int, short: str, long: str,
                  glued: bool = True) -> tuple[str | None, int] | None:
    """`-n ns`, `-n=ns`, `--namespace ns`, `--namespace=ns` and (when `glued`) `-nns` at
    args[i]: (the value, None if the command line ends first; the index of the last word
    read). None: args[i] is not this option."""
    name, eq, value = args[i].partition("=")
    attached = glued and name.startswith(short) and len(name) > 2 and not name.startswith("--")
    if name not in (short, long) and not attached:
        return None
    if attached and not eq:
        return name[2:], i
    if eq:
        return value, i
    if i + 1 < len(args):
        return args[i + 1], i + 1
    return None, i


def parse_kubectl(args: Sequence[str]) -> KubectlCall:
    """kubectl's arguments (after the program name) → verb, resources, names, flags."""
    verb: str | None = None
    positional: list[str] = []
    namespace: str | None = None
    all_ns = False
    output: str | None = None
    container: str | None = None
    after: tuple[str, ...] = ()
    i = 0
    args = list(args)
    while i < len(args):
        word = args[i]
        if word == "--":
            after = tuple(args[i + 1 :])
            break
        if word.startswith("-") and len(word) > 1:
            name = word.partition("=")[0]
            if (got := _option_value(args, i, "-o", "--output")) is not None:
                output = got[0] if got[0] is not None else output
                i = got[1]
            elif (got := _option_value(args, i, "-n", "--namespace")) is not None:
                namespace = got[0] if got[0] is not None else namespace
                i = got[1]
            elif (got := _option_value(args, i, "-c", "--container", glued=False)) is not None:
                container = got[0] if got[0] is not None else container
                i = got[1]
            elif name in ("-A", "--all-namespaces"):
                all_ns = True
            elif name in _KUBECTL_VALUE_FLAGS and "=" not in word and name not in _KUBECTL_BOOL_FLAGS:
                i += 1
            i += 1
            continue
        if verb is None:
            verb = word
        else:
            positional.append(word)
        i += 1
    resources: list[str] = []
    names: list[str] = []
    if verb in ("get", "describe", "edit", "delete") and positional:
        first = positional[0]
        for part in first.split(","):
            res, slash, name = part.partition("/")
            resources.append(_RESOURCE_ALIASES.get(res.lower(), res.lower()))
            if slash:
                names.append(name)
        names.extend(positional[1:])
    elif verb in ("logs", "exec", "attach", "port-forward", "debug", "top", "events"):
        for word in positional:
            res, slash, name = word.partition("/")
            if slash:
                resources.append(_RESOURCE_ALIASES.get(res.lower(), res.lower()))
                names.append(name)
            else:
                names.append(word)
    elif verb == "cluster-info":
        resources = positional[:1]
    return KubectlCall(verb, tuple(resources), tuple(names), namespace, all_ns, output, container, after)


def _split_words(text: str) -> list[str]:
    try:
        return shlex.split(text, posix=True)
    except ValueError:
        return text.split()


def _strip_wrappers(argv: list[str]) -> list[str]:
    while argv:
        head = argv[0]
        if head in _WRAPPERS:
            argv = argv[1:]
            while argv and argv[0].startswith("-"):  # sudo -E, time -p
                argv = argv[1:]
        elif re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", head) or head == "env":  # KUBECONFIG=... kubectl
            argv = argv[1:]
        elif head == "watch":
            argv = argv[1:]
            while argv and argv[0].startswith("-"):
                argv = argv[2:] if argv[0] in ("-n", "--interval") else argv[1:]
        elif head in ("bash", "sh", "zsh") and len(argv) >= 3 and argv[1] == "-c":
            argv = _split_words(argv[2])
        elif head in ("microk8s", "k3s") and len(argv) > 1 and argv[1] in ("kubectl", "ctr", "crictl"):
            argv = argv[1:]
        elif head == "minikube" and len(argv) > 1 and argv[1] == "kubectl":
            argv = [a for a in argv[1:] if a != "--"]
        else:
            break
    return argv


def _split_unquoted(text: str) -> list[tuple[str, str]]:
    """Split a shell line at unquoted `|`, `||`, `&&`, `;` → [(separator before, segment)]."""
    parts: list[tuple[str, str]] = []
    sep = ""
    buf: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < len(text):
                buf.append(ch)
                i += 1
                ch = text[i]
            buf.append(ch)
        elif ch in "'\"":
            quote = ch
            buf.append(ch)
        elif ch == "\\" and i + 1 < len(text):
            buf.extend((ch, text[i + 1]))
            i += 1
        elif text.startswith(("||", "&&"), i) or ch in "|;":
            token = text[i : i + 2] if text.startswith(("||", "&&"), i) else ch
            parts.append((sep, "".join(buf)))
            sep, buf = token, []
            i += len(token)
            continue
        else:
            buf.append(ch)
        i += 1
    parts.append((sep, "".join(buf)))
    return [(sp, seg) for sp, seg in parts if seg.strip()]


def parse_command(text: str) -> CommandInfo:
    """A command line → program, argv of the first stage, pipeline stages, kubectl call."""
    raw = text.strip()
    parts = _split_unquoted(raw)
    several = any(sep in (";", "&&", "||") for sep, _ in parts)
    first_cmd = parts[0][1] if parts else raw
    argv = _strip_wrappers(_split_words(first_cmd))
    program = argv[0].rsplit("/", 1)[-1] if argv else ""
    if program.lower().endswith(".exe"):
        program = "kubectl" if program.lower() == "kubectl.exe" else program[:-4].lower()
    stages = [program]
    for sep, stage in parts[1:]:
        if sep != "|":
            break
        words = _strip_wrappers(_split_words(stage))
        stages.append(words[0].rsplit("/", 1)[-1] if words else "")
    kubectl = parse_kubectl(argv[1:]) if program in KUBECTL_NAMES else None
    return CommandInfo(raw, tuple(argv), program, tuple(stages), several, kubectl)


# --- format kinds ---------------------------------------------------------------------------

Lines = Sequence[str]


@dataclass(frozen=True)
class FormatKind:
    """A recognisable output format.

    `by_command` scores a command (1.0 = this command prints exactly this format), `by_content`
    scores output lines (0..1), `start` matches a line that begins a fresh output of this kind
    (used to find outputs pasted without command and to split outputs pasted back to back),
    `contains` lists kinds whose start lines legitimately appear inside this one.
    """

    name: str
    by_command: Callable[[CommandInfo], float]
    by_content: Callable[[Lines], float]
    start: re.Pattern[str] | None = None
    contains: frozenset[str] = frozenset()


KINDS: dict[str, FormatKind] = {}


def register_kind(kind: FormatKind) -> FormatKind:
    """Add (or replace) a format kind; detection considers every registered kind."""
    KINDS[kind.name] = kind
    return kind


def _nonblank(lines: Lines) -> list[str]:
    return [line for line in lines if line.strip()]


def _frac(lines: Lines, rx: re.Pattern[str]) -> float:
    nb = _nonblank(lines)
    return sum(1 for line in nb if rx.search(line)) / len(nb) if nb else 0.0


def _has(lines: Lines, rx: re.Pattern[str]) -> bool:
    return any(rx.search(line) for line in lines)


def _none(_: CommandInfo) -> float:
    return 0.0


def _prog(*names: str, score: float = 1.0) -> Callable[[CommandInfo], float]:
    def by_command(cmd: CommandInfo) -> float:
        return score if cmd.program in names else 0.0

    return by_command


def _ip_sub(*subs: str) -> Callable[[CommandInfo], float]:
    """`ip [-4|-6|-j|-d|-s|-br ...] OBJECT ...`: iproute2 accepts any unique prefix of OBJECT."""

    def by_command(cmd: CommandInfo) -> float:
        if cmd.program != "ip":
            return 0.0
        words = [w for w in cmd.argv[1:] if not w.startswith("-")]
        i = 0
        # options that take a value: -n NETNS, -family X, -rc FILE
        for j, w in enumerate(cmd.argv[1:]):
            if w in ("-n", "-netns", "-f", "-family", "-rc", "-b", "-batch") and j + 1 < len(cmd.argv) - 1:
                nxt = cmd.argv[j + 2]
                if nxt in words:
                    words.remove(nxt)
        if not words:
            return 0.0
        obj = words[i]
        for sub in subs:
            if sub.startswith(obj) and (len(obj) >= 1):
                return 1.0
        return 0.0

    return by_command


def _kubectl(pred: Callable[[KubectlCall], bool]) -> Callable[[CommandInfo], float]:
    def by_command(cmd: CommandInfo) -> float:
        return 1.0 if cmd.kubectl is not None and pred(cmd.kubectl) else 0.0

    return by_command


def _out_fmt(call: KubectlCall) -> str:
    return (call.output or "").split("=", 1)[0].lower()


def _get_table(resource: str) -> Callable[[KubectlCall], bool]:
    def pred(call: KubectlCall) -> bool:
        return call.verb == "get" and call.resources == (resource,) and _out_fmt(call) in ("", "wide")

    return pred


def _keys_score(lines: Lines, keys: set[str], need: int = 3) -> float:
    found = set()
    for line in lines:
        match = re.match(r"^\s*([A-Za-z][\w .()/-]*?):(?:\s|$)", line)
        if match is not None and match.group(1) in keys:
            found.add(match.group(1))
    return min(1.0, len(found) / need) * 0.9


# fmt: off
_POD_DESCRIBE_KEYS = {"Containers", "Restart Count", "Controlled By", "QoS Class", "Last State",
                      "Container ID", "Image ID", "Liveness", "Readiness", "Mounts", "State",
                      "Exit Code", "Init Containers", "Start Time", "Node-Selectors"}
_SVC_DESCRIBE_KEYS = {"Session Affinity", "TargetPort", "Endpoints", "Selector", "IP Families",
                      "IP Family Policy", "NodePort", "External Traffic Policy", "Port"}
_NODE_DESCRIBE_KEYS = {"Roles", "Taints", "Addresses", "PodCIDR", "PodCIDRs", "Capacity",
                       "Allocatable", "System Info", "Kubelet Version", "Non-terminated Pods",
                       "Allocated resources", "Unschedulable", "Kernel Version"}
# fmt: on

_RX = {
    "route": re.compile(
        r"^(?:default|\d{1,3}(?:\.\d{1,3}){3}(?:/\d+)?|[0-9a-f]*:[0-9a-f:]*(?:/\d+)?|blackhole|"
        r"unreachable|prohibit|local|broadcast|throw|multicast|anycast|unicast)\s+.*?"
        r"\b(?:via|dev|proto|scope|src|metric|table)\b|^(?:blackhole|unreachable|prohibit)\s+\S+"
        r"|^\s+nexthop\s+via"
    ),
    "link_head": re.compile(r"^\d+:\s+\S+?(?:@\S+)?:\s+<[^>]*>"),
    "inet": re.compile(r"^\s+inet6?\s+[0-9a-f:.]+/\d+"),
    "linkline": re.compile(r"^\s+link/\S+"),
    "br_addr": re.compile(r"^\S+\s+(?:UP|DOWN|UNKNOWN|LOWERLAYERDOWN)\s+[0-9a-f.:]+/\d+"),
    "br_link": re.compile(r"^\S+\s+(?:UP|DOWN|UNKNOWN|LOWERLAYERDOWN)\s+(?:[0-9a-f]{2}:){5}[0-9a-f]{2}"),
    "rule": re.compile(r"^\d+:\s+(?:not\s+)?(?:from|to|iif|oif|fwmark|lookup|ipproto|sport|dport)\b"),
    "neigh": re.compile(
        r"^\S+ dev \S+ .*\b(?:REACHABLE|STALE|DELAY|PROBE|FAILED|INCOMPLETE|PERMANENT|NOARP)\s*$"
    ),
    "save_table": re.compile(r"^\*(?:filter|nat|mangle|raw|security)\s*$"),
    "save_rule": re.compile(r"^(?:-A|-I|-N|-P)\s+\S+|^:\S+\s+\S+\s+\[\d+:\d+\]|^COMMIT\s*$|^#"),
    "chain": re.compile(r"^Chain \S+ \((?:policy \w+|\d+ references?)"),
    "list_header": re.compile(r"^\s*(?:num\s+)?(?:pkts\s+bytes\s+)?target\s+prot\s+opt\b"),
    "nft_table": re.compile(r"^table (?:ip|ip6|inet|arp|bridge|netdev) \S+ \{"),
    "events": re.compile(r"^\s*Events:\s*$"),
    "events_header": re.compile(r"^\s*Type\s+Reason\s+Age\s+From\s+Message"),
    "get_events": re.compile(r"^(?:NAMESPACE\s+)?LAST SEEN\s+(?:TYPE|FIRST SEEN)\s"),
    "get_pods": re.compile(r"^(?:NAMESPACE\s+)?NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE"),
    "pod_row": re.compile(r"^(?:\S+\s+)?\S+\s+\d+/\d+\s+\S+\s+\d+(?: \(\S+ ago\))?\s+\S+"),
    "get_svc": re.compile(r"^(?:NAMESPACE\s+)?NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)"),
    "svc_row": re.compile(
        r"^(?:\S+\s+)?\S+\s+(?:ClusterIP|NodePort|LoadBalancer|ExternalName)\s+\S+\s+\S+\s+\S+"
    ),
    "get_nodes": re.compile(r"^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION"),
    "node_row": re.compile(r"^\S+\s+(?:Ready|NotReady|Unknown)(?:,\S+)?\s+\S+\s+\S+\s+v\d"),
    "get_ep": re.compile(r"^(?:NAMESPACE\s+)?NAME\s+(?:ADDRESSTYPE\s+PORTS\s+)?ENDPOINTS\s+AGE"),
    "json_start": re.compile(r"^\s*[\[{]\s*$|^\s*\{\s*\"(?:apiVersion|kind|items|metadata)\""),
    "json_key": re.compile(r"\"(?:apiVersion|kind|metadata|items)\"\s*:"),
    "yaml_api": re.compile(r"^(?:- )?\s*apiVersion:\s"),
    "yaml_kind": re.compile(r"^\s*(?:- )?kind:\s+[A-Z]"),
    "klog": re.compile(r"^[IWEF]\d{4}\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\S+\]"),
    "logline": re.compile(
        r"^(?:\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d|[IWEF]\d{4}\s+\d\d:\d\d:\d\d"
        r"|\[(?:INFO|ERROR|WARNING|WARN|DEBUG|FATAL)\]"
        r"|time=\"|level=|\{\"(?:level|ts|time|msg)\"|(?:INFO|WARN|ERROR|DEBUG):\s+\d{4}/)"
    ),
    "journal": re.compile(r"^[A-Z][a-z]{2}\s+\d{1,2}\s+\d\d:\d\d:\d\d\s+\S+\s+[\w./@-]+(?:\[\d+\])?:\s"),
    "ps_header": re.compile(r"^\s*(?:UID\s+PID\s+PPID|USER\s+PID\s+%CPU)"),
    "ps_row": re.compile(r"^\S+\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+\s+[\d:-]+\s+\S"),
    "lsof_header": re.compile(r"^COMMAND\s+PID\s+USER\s+FD\s+TYPE"),
    "ss_header": re.compile(r"^(?:Netid\s+)?State\s+Recv-Q\s+Send-Q\s+Local"),
    "netstat": re.compile(r"^Active Internet connections|^Proto\s+Recv-Q\s+Send-Q\s+Local Address"),
    "route_n": re.compile(r"^Kernel IP routing table|^Destination\s+Gateway\s+Genmask"),
    "traceroute": re.compile(r"^traceroute6? to \S+"),
    "hop": re.compile(r"^\s*\d+\s+(?:\*|\S+\s+\(|\d+\.\d+\.\d+\.\d+)"),
    "ping": re.compile(r"^PING \S+ \(|packets transmitted"),
    "curl": re.compile(r"^curl: \(\d+\)|^\*\s+Trying \S+|^\*\s+Connected to|^< HTTP/"),
    "dig": re.compile(r"^; <<>> DiG|^;; (?:ANSWER|QUESTION) SECTION|^;; global options|^;; ->>HEADER<<-"),
    "nslookup_server": re.compile(r"^Server:\s+\S+"),
    "nslookup_addr": re.compile(r"^Address(?: 1)?:\s+\S+(?:#53)?|server can't find|can't resolve"),
    "sysctl": re.compile(r"^[a-z][\w-]*(?:\.[\w@:/*-]+)+\s*=\s*"),
    "calicoctl": re.compile(
        r"Calico process is (?:running|not running)|^IPv[46] BGP status|\|\s*PEER ADDRESS\s*\|"
    ),
    "conntrack": re.compile(
        r"^(?:tcp|udp|icmp|sctp|icmpv6)\s+\d+\s+.*\bsrc=|conntrack v[\d.]+ \(conntrack-tools\)"
        r"|^cpu=\d+\s+found="
    ),
    "resolv": re.compile(r"^(?:nameserver|search|options|domain)\s+\S"),
    "hosts": re.compile(
        r"^\s*(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]+:[0-9a-fA-F:]*)\s+[A-Za-z][\w.-]*(?:\s+[\w.-]+)*\s*$"
    ),
    "version": re.compile(r"^(?:Client|Server) Version:\s"),
    "cluster_info": re.compile(
        r"(?:Kubernetes (?:control plane|master)|CoreDNS|KubeDNS) is running at https?://"
    ),
}


def _content_describe(keys: set[str]) -> Callable[[Lines], float]:
    return lambda lines: _keys_score(lines, keys)


def _c_route(lines: Lines) -> float:
    nb = _nonblank(lines)
    return (
        0.95 * _frac(lines, _RX["route"])
        if nb and _RX["route"].search(nb[0])
        else 0.7 * _frac(lines, _RX["route"])
    )


def _c_addr(lines: Lines) -> float:
    if _has(lines, _RX["link_head"]) and _has(lines, _RX["inet"]):
        return 0.95
    return 0.9 * _frac(lines, _RX["br_addr"])


def _c_link(lines: Lines) -> float:
    if _has(lines, _RX["link_head"]) and _has(lines, _RX["linkline"]) and not _has(lines, _RX["inet"]):
        return 0.9
    return 0.85 * _frac(lines, _RX["br_link"])


def _c_save(lines: Lines) -> float:
    if _has(lines, _RX["save_table"]) and _has(lines, re.compile(r"^(?:-A|:)\S*|^COMMIT")):
        return 1.0
    return 0.0


def _c_iptables_s(lines: Lines) -> float:
    if _has(lines, _RX["save_table"]):
        return 0.0
    return 0.85 * _frac(lines, re.compile(r"^-(?:P|A|N|I)\s+\S+"))


def _c_list(lines: Lines) -> float:
    if _has(lines, _RX["chain"]):
        return 0.95 if _has(lines, _RX["list_header"]) else 0.8
    return 0.0


def _c_events(lines: Lines) -> float:
    if _has(lines, _RX["events_header"]):
        return 0.95 if _has(lines, _RX["events"]) else 0.9
    return 0.0


def _c_header(rx: str, row: str | None = None, row_weight: float = 0.6) -> Callable[[Lines], float]:
    def content(lines: Lines) -> float:
        nb = _nonblank(lines)
        if nb and _RX[rx].search(nb[0]):
            return 0.95
        if _has(lines, _RX[rx]):
            return 0.85
        if row is not None:
            return row_weight * _frac(lines, _RX[row])
        return 0.0

    return content


def _c_json(lines: Lines) -> float:
    nb = _nonblank(lines)
    if nb and nb[0].lstrip().startswith(("{", "[")) and _has(lines[:50], _RX["json_key"]):
        return 0.95
    return 0.0


def _c_yaml(lines: Lines) -> float:
    if _has(lines, _RX["yaml_api"]) and _has(lines, _RX["yaml_kind"]):
        return 0.95
    return 0.0


def _c_logs(lines: Lines) -> float:
    return 0.85 * _frac(lines, _RX["logline"])


def _c_journal(lines: Lines) -> float:
    return 0.9 * _frac(lines, _RX["journal"])


def _c_ps(lines: Lines) -> float:
    if _has(lines, _RX["ps_header"]):
        return 0.95
    return 0.8 * _frac(lines, _RX["ps_row"])


def _c_traceroute(lines: Lines) -> float:
    if _has(lines, _RX["traceroute"]):
        return 0.95
    return 0.4 * _frac(lines, _RX["hop"])


def _c_nslookup(lines: Lines) -> float:
    if _has(lines, _RX["nslookup_server"]) and _has(lines, _RX["nslookup_addr"]):
        return 0.9
    if _has(lines, re.compile(r"server can't find|\*\* server can't")):
        return 0.85
    return 0.0


def _c_sysctl(lines: Lines) -> float:
    return 0.9 * _frac(lines, _RX["sysctl"])


def _c_resolv(lines: Lines) -> float:
    nb = [line for line in _nonblank(lines) if not line.lstrip().startswith("#")]
    if not nb or not _has(nb, re.compile(r"^nameserver\s+\S")):
        return 0.0
    return 0.9 * _frac(nb, _RX["resolv"])


def _c_hosts(lines: Lines) -> float:
    nb = [line for line in _nonblank(lines) if not line.lstrip().startswith("#")]
    if not nb or not _has(nb, re.compile(r"\blocalhost\b")):
        return 0.0
    return 0.7 * _frac(nb, _RX["hosts"])


def _c_simple(rx: str, score: float = 0.9) -> Callable[[Lines], float]:
    return lambda lines: score if _has(lines, _RX[rx]) else 0.0


def _cmd_cat(*paths: str) -> Callable[[CommandInfo], float]:
    def by_command(cmd: CommandInfo) -> float:
        if cmd.program in ("cat", "less", "more", "head", "tail", "grep") and any(
            a in paths for a in cmd.argv[1:]
        ):
            return 1.0
        return 0.0

    return by_command


def _cmd_iptables_list(cmd: CommandInfo) -> float:
    if cmd.program not in (
        "iptables",
        "ip6tables",
        "iptables-legacy",
        "iptables-nft",
        "ip6tables-legacy",
        "ip6tables-nft",
    ):
        return 0.0
    flags = "".join(a for a in cmd.argv[1:] if a.startswith("-") and not a.startswith("--"))
    if "S" in flags or "--list-rules" in cmd.argv:
        return 0.0
    return 1.0 if "L" in flags or "--list" in cmd.argv else 0.0


def _cmd_iptables_s(cmd: CommandInfo) -> float:
    if not cmd.program.startswith(("iptables", "ip6tables")) or cmd.program.endswith("save"):
        return 0.0
    flags = "".join(a for a in cmd.argv[1:] if a.startswith("-") and not a.startswith("--"))
    return 1.0 if "S" in flags or "--list-rules" in cmd.argv else 0.0


def _cmd_kubectl_logs(cmd: CommandInfo) -> float:
    return 1.0 if cmd.kubectl is not None and cmd.kubectl.verb == "logs" else 0.0


def _cmd_container_logs(cmd: CommandInfo) -> float:
    if cmd.program in ("docker", "crictl", "nerdctl", "podman") and "logs" in cmd.argv[1:3]:
        return 1.0
    return 0.0


def _cmd_calicoctl(cmd: CommandInfo) -> float:
    return 1.0 if cmd.program == "calicoctl" and cmd.argv[1:3] == ("node", "status") else 0.0


def _cmd_conntrack(cmd: CommandInfo) -> float:
    return (
        1.0
        if cmd.program == "conntrack"
        and any(a in ("-L", "-S", "--dump", "--stats", "-C", "--count") for a in cmd.argv)
        else 0.0
    )


def _cmd_sysctl(cmd: CommandInfo) -> float:
    return (
        1.0
        if cmd.program == "sysctl" and not any(a in ("-w", "-p", "--write", "--system") for a in cmd.argv)
        else 0.0
    )


_HOSTNAME_FLAGS = {"-I", "-i", "-f", "-s", "--all-ip-addresses", "--fqdn", "--short"}


def _describes(resource: str) -> Callable[[KubectlCall], bool]:
    return lambda c: c.verb == "describe" and c.resources[:1] == (resource,)


def _register_builtin_kinds() -> None:
    k = register_kind
    for kind, resource, keys in (
        ("kubectl-describe-pod", "pods", _POD_DESCRIBE_KEYS),
        ("kubectl-describe-svc", "services", _SVC_DESCRIBE_KEYS),
        ("kubectl-describe-node", "nodes", _NODE_DESCRIBE_KEYS),
    ):
        k(
            FormatKind(
                kind,
                _kubectl(_describes(resource)),
                _content_describe(keys),
                re.compile(r"^Name:\s{2,}\S"),
                frozenset({"kubectl-events-table"}),
            )
        )
    k(
        FormatKind(
            "kubectl-describe",
            lambda c: 0.9 if c.kubectl is not None and c.kubectl.verb == "describe" else 0.0,
            lambda lines: 0.0,
            None,
            frozenset({"kubectl-events-table"}),
        )
    )
    k(
        FormatKind(
            "kubectl-get-pods",
            _kubectl(_get_table("pods")),
            _c_header("get_pods", "pod_row", 0.75),
            _RX["get_pods"],
        )
    )
    k(
        FormatKind(
            "kubectl-get-svc",
            _kubectl(_get_table("services")),
            _c_header("get_svc", "svc_row", 0.75),
            _RX["get_svc"],
        )
    )
    k(
        FormatKind(
            "kubectl-get-nodes",
            _kubectl(_get_table("nodes")),
            _c_header("get_nodes", "node_row", 0.75),
            _RX["get_nodes"],
        )
    )
    k(
        FormatKind(
            "kubectl-get-ep",
            _kubectl(lambda c: _get_table("endpoints")(c) or _get_table("endpointslices")(c)),
            _c_header("get_ep"),
            _RX["get_ep"],
        )
    )
    k(
        FormatKind(
            "kubectl-get-events",
            _kubectl(
                lambda c: (_get_table("events")(c) or c.verb == "events") and _out_fmt(c) in ("", "wide")
            ),
            _c_header("get_events"),
            _RX["get_events"],
        )
    )
    k(
        FormatKind(
            "kubectl-get",
            lambda c: (
                0.8
                if c.kubectl is not None and c.kubectl.verb == "get" and _out_fmt(c.kubectl) in ("", "wide")
                else 0.0
            ),
            lambda lines: 0.0,
        )
    )
    k(FormatKind("kubectl-events-table", _none, _c_events, _RX["events"]))
    k(
        FormatKind(
            "kubectl-json",
            _kubectl(
                lambda c: _out_fmt(c) == "json" or (c.verb == "cluster-info" and c.resources[:1] == ("dump",))
            ),
            _c_json,
            _RX["json_start"],
        )
    )
    k(FormatKind("kubectl-yaml", _kubectl(lambda c: _out_fmt(c) == "yaml"), _c_yaml, _RX["yaml_api"]))
    k(FormatKind("kubectl-logs", _cmd_kubectl_logs, _c_logs))
    k(FormatKind("container-logs", _cmd_container_logs, lambda lines: 0.0))
    k(FormatKind("journal", _prog("journalctl"), _c_journal))
    k(
        FormatKind(
            "kubectl-version",
            _kubectl(lambda c: c.verb == "version"),
            _c_simple("version", 0.95),
            _RX["version"],
        )
    )
    k(
        FormatKind(
            "kubectl-cluster-info",
            _kubectl(lambda c: c.verb == "cluster-info" and c.resources[:1] != ("dump",)),
            _c_simple("cluster_info", 0.95),
            _RX["cluster_info"],
        )
    )
    k(FormatKind("ip-route", _ip_sub("route"), _c_route, None))
    k(FormatKind("ip-addr", _ip_sub("address"), _c_addr, _RX["link_head"]))
    k(FormatKind("ip-link", _ip_sub("link"), _c_link, _RX["link_head"]))
    k(FormatKind("ip-rule", _ip_sub("rule"), lambda lines: 0.9 * _frac(lines, _RX["rule"])))
    k(
        FormatKind(
            "ip-neigh",
            _ip_sub("neighbour", "neighbor"),
            lambda lines: 0.85 * _frac(lines, _RX["neigh"]),
        )
    )
    k(FormatKind("route-n", _prog("route"), _c_simple("route_n", 0.95), _RX["route_n"]))
    k(
        FormatKind(
            "iptables-save",
            _prog(
                "iptables-save",
                "ip6tables-save",
                "iptables-legacy-save",
                "iptables-nft-save",
                "ip6tables-legacy-save",
                "ip6tables-nft-save",
            ),
            _c_save,
            re.compile(
                r"^# Generated by (?:ip6?tables-save|iptables-nft-save)"
                r"|^\*(?:filter|nat|mangle|raw)\s*$"
            ),
        )
    )
    k(FormatKind("iptables-S", _cmd_iptables_s, _c_iptables_s))
    k(FormatKind("iptables-list", _cmd_iptables_list, _c_list, _RX["chain"]))
    k(FormatKind("nft-list", _prog("nft"), _c_simple("nft_table", 0.95), _RX["nft_table"]))
    k(FormatKind("ps", _prog("ps"), _c_ps, _RX["ps_header"]))
    k(FormatKind("lsof", _prog("lsof"), _c_simple("lsof_header", 0.95), _RX["lsof_header"]))
    k(FormatKind("ss", _prog("ss"), _c_simple("ss_header", 0.95), _RX["ss_header"]))
    k(FormatKind("netstat", _prog("netstat"), _c_simple("netstat", 0.95), _RX["netstat"]))
    k(
        FormatKind(
            "traceroute",
            _prog("traceroute", "traceroute6", "tracepath", "mtr"),
            _c_traceroute,
            _RX["traceroute"],
        )
    )
    k(
        FormatKind(
            "ping",
            _prog("ping", "ping6", "arping"),
            _c_simple("ping", 0.95),
            re.compile(r"^PING \S+ \("),
        )
    )
    k(FormatKind("curl", _prog("curl", "wget"), _c_simple("curl", 0.9), re.compile(r"^curl: \(\d+\)")))
    k(FormatKind("dig", _prog("dig"), _c_simple("dig", 0.95), re.compile(r"^; <<>> DiG")))
    k(FormatKind("nslookup", _prog("nslookup", "host"), _c_nslookup, None))
    k(FormatKind("sysctl", _cmd_sysctl, _c_sysctl))
    k(
        FormatKind(
            "calicoctl-node-status",
            _cmd_calicoctl,
            _c_simple("calicoctl", 0.95),
            re.compile(r"^Calico process is"),
        )
    )
    k(FormatKind("conntrack", _cmd_conntrack, lambda lines: 0.9 * _frac(lines, _RX["conntrack"])))
    k(
        FormatKind(
            "resolv-conf",
            _cmd_cat("/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"),
            _c_resolv,
        )
    )
    k(FormatKind("hosts-file", _cmd_cat("/etc/hosts"), _c_hosts))
    k(
        FormatKind(
            "hostname",
            lambda c: (
                1.0 if c.program == "hostname" and all(a in _HOSTNAME_FLAGS for a in c.argv[1:]) else 0.0
            ),
            lambda lines: 0.0,
        )
    )


_register_builtin_kinds()


def detect_kind(command: CommandInfo | None, lines: Lines) -> tuple[str, str]:
    """(kind, reason). The command decides when it names a format; content decides otherwise
    (no command, unknown command, output rewritten by jq/awk, several commands on one line)."""
    by_cmd: tuple[float, str] = (0.0, "unknown")
    if command is not None and not command.transformed:
        for kind in KINDS.values():
            score = kind.by_command(command)
            if score > by_cmd[0]:
                by_cmd = (score, kind.name)
    if by_cmd[0] >= 0.9 and not (command is not None and command.several):
        return by_cmd[1], "command"
    best = best_content_kind(lines)
    if best[0] >= 0.5 and best[0] >= by_cmd[0]:
        return best[1], f"content ({best[0]:.2f})"
    if by_cmd[0] >= 0.5:
        return by_cmd[1], "command"
    return "unknown", "no command or content match"


def best_content_kind(lines: Lines) -> tuple[float, str]:
    best: tuple[float, str] = (0.0, "unknown")
    for kind in KINDS.values():
        try:
            score = kind.by_content(lines)
        except (ValueError, IndexError):  # a plugged-in scorer must not break splitting
            score = 0.0
        if score > best[0]:
            best = (score, kind.name)
    return best


# --- line classification --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str  # the prompt itself, without the command
    command: str
    host: str | None = None
    user: str | None = None
    path: str | None = None


_P_BRACKET = re.compile(
    r"^(?P<lead>\s*(?:\([\w.-]+\)\s*)?)\[(?P<user>[\w.-]+)@(?P<host>[\w.-]+)"
    r"(?:[ :](?P<path>[^\]]*?))?\s*\]\s*(?P<sym>[$#%])\s?(?P<cmd>.*)$"
)
_P_COLON = re.compile(
    r"^(?P<lead>\s*(?:\([\w.-]+\)\s*)?)(?P<user>[\w.-]+)@(?P<host>[\w.-]+):(?P<path>~[^\s$#]*|/[^\s$#]*)?"
    r"\s?(?P<sym>[$#%])\s?(?P<cmd>.*)$"
)
_P_ZSH = re.compile(
    r"^(?P<lead>\s*)(?P<user>[\w.-]+)@(?P<host>[\w.-]+)\s+(?P<path>[~/]\S*)\s+(?P<sym>[%$#])\s(?P<cmd>.*)$"
)
_P_HOSTPATH = re.compile(
    r"^(?P<lead>\s*)(?P<host>[A-Za-z][\w.-]*):(?P<path>~\S*|/\S*)\s?(?P<sym>[#$])\s?(?P<cmd>.*)$"
)
_P_HOST = re.compile(r"^(?P<lead>\s*)(?P<host>[A-Za-z][\w.-]*)(?P<sym>[$#])\s(?P<cmd>\S.*)$")
_P_PS = re.compile(r"^(?P<lead>\s*)(?P<ps>PS [A-Za-z]:\\[^>]*>)\s?(?P<cmd>.*)$")
_P_ARROW = re.compile(r"^(?P<lead>\s*)➜\s+(?P<path>\S+)\s+(?:git:\([^)]*\)\s+(?:✗\s+)?)?(?P<cmd>\S.*)$")
_P_BARE = re.compile(r"^(?P<lead>\s*)(?P<sym>[$#])\s(?P<cmd>\S.*)$")
_REPL = re.compile(r"^\s*>>>\s?(?P<code>.*)$")
_FENCE = re.compile(r"^\s*(?:```|~~~)")
_HOST_WORD = re.compile(r"^[A-Za-z0-9][\w.-]*$")


def _first_word(cmd: str) -> str:
    words = _split_words(cmd)
    words = _strip_wrappers(words) if words else words
    return words[0].rsplit("/", 1)[-1] if words else ""


def _known(cmd: str) -> bool:
    word = _first_word(cmd)
    return word in KNOWN_COMMANDS or word.lower() == "kubectl.exe" or word.startswith("./")


def parse_prompt(line: str) -> Prompt | None:
    """A shell prompt line → Prompt(text, command, host, user, path), else None.

    Bracketed (`[root@admin ~ ]$cmd`: no space needed after `$`), `user@host:path$`, zsh
    `user@host ~ %`, SUSE `host:~ #`, `host$`, PowerShell `PS C:\\>` and oh-my-zsh `➜  dir`
    prompts; a bare `# cmd`/`$ cmd` only when the command is a known one (iptables-save and
    resolv.conf comments also start with `# `).
    """
    for rx in (_P_BRACKET, _P_COLON, _P_ZSH):
        m = rx.match(line)
        if m is not None:
            prompt = line[len(m.group("lead")) : m.start("cmd")].rstrip()
            return Prompt(
                prompt,
                m.group("cmd").strip(),
                m.group("host"),
                m.group("user"),
                (m.group("path") or "").strip() or None,
            )
    m = _P_HOSTPATH.match(line)
    if m is not None and (not m.group("cmd").strip() or _known(m.group("cmd"))):
        prompt = line[len(m.group("lead")) : m.start("cmd")].rstrip()
        return Prompt(prompt, m.group("cmd").strip(), m.group("host"), None, m.group("path"))
    m = _P_PS.match(line)
    if m is not None:
        return Prompt(m.group("ps"), m.group("cmd").strip())
    m = _P_ARROW.match(line)
    if m is not None and _known(m.group("cmd")):
        return Prompt(
            line[len(m.group("lead")) : m.start("cmd")].rstrip(),
            m.group("cmd").strip(),
            None,
            None,
            m.group("path"),
        )
    m = _P_HOST.match(line)
    if m is not None and _known(m.group("cmd")) and m.group("host") not in ("PS",):
        return Prompt(f"{m.group('host')}{m.group('sym')}", m.group("cmd").strip(), m.group("host"))
    m = _P_BARE.match(line)
    if m is not None and _known(m.group("cmd")) and not _looks_like_comment(m.group("cmd")):
        return Prompt(m.group("sym"), m.group("cmd").strip())
    return None


def _looks_like_comment(cmd: str) -> bool:
    # `# Generated by iptables-save v1.8.4 on ...`, `# Completed on ...`: never commands.
    return bool(re.match(r"^(?:Generated by|Completed on|Warning:|This file|Note:)", cmd))


# --- prose ----------------------------------------------------------------------------------

_CJK = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff01-\uff5e\u3000-\u303f]"
)
_QUOTES_OPEN = "(\"'¿¡«„\u201c"
_QUOTES_CLOSE = ".,:;!?)\"'»\u201c\u201d"
_WORD = re.compile(
    rf"^[{re.escape(_QUOTES_OPEN)}]*[A-Za-zÀ-ÖØ-öø-ÿß][A-Za-zÀ-ÖØ-öø-ÿß'\u2019-]*"
    rf"[{re.escape(_QUOTES_CLOSE)}]*$"
)
# fmt: off
_STOPWORD_TEXT = (
    "the a an and or of to in on at is are was were be been it its this that these those i we "
    "you he she they my our your with for from then but not have has had after before when "
    "which what why how there here so as by if because did does do can could would should will "
    "just also now still only again first since into out about "
    "der die das und ist ich wir nicht ein eine einen mit auf den dem zu von im es sich habe hat "
    "dann aber auch noch wenn weil dass war sind wird bei nach oder wie hier dort man alle "
    "le la les et est un une des du que qui pas pour dans sur avec je nous vous il elle ce cette "
    "el los las y es una en por para con se lo al como pero "
    "di che è per non sono het een van ik niet dat op te zijn met voor"
)
# fmt: on
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_STRUCTURED = re.compile(
    r"^\s*(?:\d{4}-\d\d-\d\d[T ]\d|[IWEF]\d{4}\s|\[(?:INFO|ERROR|WARN|WARNING|DEBUG|FATAL)\]|"
    r"\d{1,3}(?:\.\d{1,3}){3}\b|[-*:]\w|Chain\s|\{|\}|\[|\||<|[A-Z][a-z]{2}\s+\d{1,2}\s\d\d:)"
)
# Tool messages that read like sentences but are output.
_KNOWN_OUTPUT = re.compile(
    r"^\s*(?:No resources found|Error from server|error:|Error:|Unable to connect to the server|"
    r"The connection to the server|Warning:|Defaulted container|Calico process is|No IPv[46] peers|"
    r"curl: |ping: |traceroute: |nslookup: |dig: |connect: |;;|\*\* server|Found existing alias|"
    r"Flag --|W\d{4}|E\d{4}|I\d{4}|pod/|service/|deployment\.apps/|daemonset\.apps/|"
    r"Handling connection|Forwarding from|If you don't see a command prompt|pod \"[^\"]+\" deleted|"
    r"Session terminated|Connection to \S+ closed|Last login:|Welcome to|"
    r"Kubernetes (?:control plane|master) is running|"
    r"To further debug and diagnose|Killed|Terminated|Segmentation fault|bash: |-bash: |zsh: |sh: )"
)


def _strip_quotes(word: str) -> str:
    return word.lstrip(_QUOTES_OPEN).rstrip(_QUOTES_CLOSE)


def _cjk_ratio(text: str) -> tuple[int, float]:
    compact = re.sub(r"\s", "", text)
    if not compact:
        return 0, 0.0
    n = len(_CJK.findall(compact))
    return n, n / len(compact)


def prose_score(line: str) -> int:
    """0 = not prose, 1 = probably prose (ends an output after a blank line), 2 = prose."""
    s = line.strip()
    if not s or _KNOWN_OUTPUT.match(s):
        return 0
    n_cjk, ratio = _cjk_ratio(s)
    if n_cjk >= 2 and (ratio >= 0.15 or n_cjk >= 6):
        if _STRUCTURED.match(s) and ratio < 0.5:
            return 0
        return 2
    if _STRUCTURED.match(s) or re.search(r"\S\s{2,}\S.*\S\s{2,}\S", s) or "\t" in s:
        return 0
    tokens = s.split()
    if len(tokens) < 3:
        return 0
    words = [t for t in tokens if _WORD.match(t)]
    ratio_w = len(words) / len(tokens)
    stops = sum(1 for t in words if _strip_quotes(t).lower() in _STOPWORDS)
    if ratio_w >= 0.75 and stops >= 2 and len(tokens) >= 6 and (s[-1] in ".:!?" or s[0].isupper()):
        return 2
    if ratio_w >= 0.75 and stops >= 1 and len(tokens) >= 3:
        return 1
    return 0


# --- ansible, ssh, loops ----------------------------------------------------------------------

_ANSIBLE_BANNER = re.compile(
    r"^(?P<host>[\w.:\[\]-]+)\s+\|\s+(?P<status>CHANGED|SUCCESS|FAILED|UNREACHABLE!?|SKIPPED|FAILED!)"
    r"\s+(?:\|\s+rc=(?P<rc>-?\d+)\s+>>|=>\s*\{)(?P<note>.*)$"
)
_ANSIBLE_WARN = re.compile(r"^\s*\[(?:WARNING|DEPRECATION WARNING|ERROR)\]:?")
_SSH_VALUE_OPTS = set("bcDEeFIiJLlmOopQRSWw")


def _ansible_command(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """(host pattern, inner command) of `ansible PATTERN -m shell|command|raw -a CMD`."""
    pattern: str | None = None
    module = "command"
    args: str | None = None
    i = 1
    while i < len(argv):
        word = argv[i]
        if word in ("-m", "--module-name") and i + 1 < len(argv):
            module, i = argv[i + 1], i + 2
            continue
        if word in ("-a", "--args") and i + 1 < len(argv):
            args, i = argv[i + 1], i + 2
            continue
        if word.startswith("-a") and len(word) > 2 and not word.startswith("--"):
            args = word[2:]
        elif word.startswith("-m") and len(word) > 2 and not word.startswith("--"):
            module = word[2:]
        elif (
            word.startswith("-")
            and i + 1 < len(argv)
            and word in ("-i", "-u", "-f", "-e", "-l", "--limit", "--inventory", "-T", "-B", "-P")
        ):
            i += 2
            continue
        elif not word.startswith("-") and pattern is None:
            pattern = word
        i += 1
    if module.split(".")[-1] in ("shell", "command", "raw") and args:
        return pattern, args
    return pattern, None


def _ssh_command(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """(host, remote command) of `ssh [opts] [user@]host [cmd...]`."""
    i = 1
    while i < len(argv):
        word = argv[i]
        if word.startswith("-") and len(word) > 1:
            if word[-1] in _SSH_VALUE_OPTS and len(word) == 2:
                i += 2
            else:
                i += 1
            continue
        host = word.rsplit("@", 1)[-1]
        rest = argv[i + 1 :]
        cmd = " ".join(rest) if rest else None
        if cmd and len(rest) == 1:
            cmd = rest[0]
        return host, cmd
    return None, None


_LOOP = re.compile(r"^for\s+(?P<var>\w+)\s+in\s+(?P<items>.+?)\s*;\s*do\s+(?P<body>.+?);?\s*done\b")


def _expand_braces(word: str) -> list[str]:
    m = re.search(r"\{(\d+)\.\.(\d+)\}", word)
    if m is None:
        m2 = re.search(r"\{([^{}]*,[^{}]*)\}", word)
        if m2 is None:
            return [word]
        return [
            x
            for alt in m2.group(1).split(",")
            for x in _expand_braces(word[: m2.start()] + alt + word[m2.end() :])
        ]
    lo, hi = int(m.group(1)), int(m.group(2))
    if hi - lo > 256 or hi < lo:
        return [word]
    return [
        x for n in range(lo, hi + 1) for x in _expand_braces(word[: m.start()] + str(n) + word[m.end() :])
    ]


def _loop_hosts(command: str) -> tuple[list[str], str | None] | None:
    """`for h in a b; do ssh $h CMD; done` → ([hosts], CMD)."""
    m = _LOOP.match(command.strip())
    if m is None:
        return None
    var = m.group("var")
    items = [x for w in _split_words(m.group("items")) for x in _expand_braces(w)]
    body = m.group("body")
    ssh = re.search(r"\bssh\s+(?P<rest>.+?)(?:;|&&|$)", body)
    if ssh is None:
        return None
    words = _split_words("ssh " + ssh.group("rest"))
    target, inner = _ssh_command(words)
    if target is None or (f"${var}" not in target and "${" + var + "}" not in target):
        return None
    template = target.replace("${" + var + "}", f"${var}")
    hosts = [template.replace(f"${var}", item).rsplit("@", 1)[-1] for item in items]
    return hosts, inner


# --- segmentation -----------------------------------------------------------------------------


@dataclass
class _Seg:
    start: int  # 0-based index of the first line (prompt or first output line)
    prompt: Prompt | None
    lines: list[tuple[int, str]] = field(default_factory=list)  # (0-based index, text)
    repl: bool = False
    kind: str | None = None  # kind guessed so far (for split decisions)


def _window(lines: Sequence[str], i: int, limit: int = 40) -> list[str]:
    out: list[str] = []
    for line in lines[i : i + limit]:
        if not line.strip() or parse_prompt(line) is not None or _FENCE.match(line):
            break
        if out and prose_score(line) == 2:
            break
        out.append(line)
    return out


def _starts_output(lines: Sequence[str], i: int, exclude: Iterable[str] = ()) -> tuple[str, float] | None:
    """Does line i begin a recognisable output? (kind, score) or None."""
    window = _window(lines, i)
    if not window:
        return None
    excluded = set(exclude)
    score, kind = best_content_kind(window)
    if kind in excluded:
        return None
    first = window[0]
    signature = any(
        k.start is not None and k.start.search(first) and k.name not in excluded for k in KINDS.values()
    )
    if score >= 0.8 or (signature and score >= 0.5):
        return kind, score
    return None


def _split_segments(lines: Sequence[str]) -> tuple[list[_Seg], list[ProseLine]]:
    segs: list[_Seg] = []
    prose: list[ProseLine] = []
    cur: _Seg | None = None
    in_fence = False
    prev_blank = False
    i = 0
    n = len(lines)

    def close() -> None:
        nonlocal cur
        if cur is not None:
            segs.append(cur)
        cur = None

    while i < n:
        line = lines[i]
        if _FENCE.match(line):
            close()
            in_fence = not in_fence
            prev_blank = False
            i += 1
            continue
        prompt = parse_prompt(line)
        if prompt is not None and not (cur is not None and cur.repl and line.startswith("... ")):
            close()
            command = prompt.command
            j = i
            # `cmd \` continues on the next line(s)
            while command.endswith("\\") and j + 1 < n:
                j += 1
                command = command[:-1].rstrip() + " " + lines[j].strip()
            cur = _Seg(i, replace(prompt, command=command.strip()))
            i = j + 1
            prev_blank = False
            continue
        repl = _REPL.match(line)
        if repl is not None:
            close()
            cur = _Seg(i, Prompt(">>>", repl.group("code").strip()), repl=True)
            i += 1
            continue
        blank = not line.strip()
        if cur is None:
            if blank:
                prev_blank = True
                i += 1
                continue
            started = _starts_output(lines, i)
            if in_fence or started is not None:
                cur = _Seg(i, None, [(i, line)], kind=started[0] if started else None)
            else:
                prose.append(ProseLine(i + 1, line.strip()))
            prev_blank = False
            i += 1
            continue
        # inside a block
        if blank:
            cur.lines.append((i, line))
            prev_blank = True
            i += 1
            continue
        has_output = any(text.strip() for _, text in cur.lines)
        score = 0 if in_fence else prose_score(line)
        if cur.repl and line.startswith("... "):
            cur.lines.append((i, line))
            i += 1
            continue
        if score == 2 and (has_output or _cjk_ratio(line)[0] >= 2 or prev_blank):
            close()
            prose.append(ProseLine(i + 1, line.strip()))
            prev_blank = False
            i += 1
            continue
        if score == 1 and prev_blank and has_output and not _is_log_kind(cur):
            close()
            prose.append(ProseLine(i + 1, line.strip()))
            prev_blank = False
            i += 1
            continue
        if prev_blank and has_output:
            current_kind = cur.kind or _seg_kind(cur)
            contained = KINDS[current_kind].contains if current_kind in KINDS else frozenset()
            started = _starts_output(lines, i, exclude={current_kind, *contained})
            if started is not None and started[1] >= 0.8 and _is_signature(lines[i], started[0]):
                close()
                cur = _Seg(i, None, [(i, line)], kind=started[0])
                prev_blank = False
                i += 1
                continue
        cur.lines.append((i, line))
        prev_blank = False
        i += 1
    close()
    return segs, prose


def _is_signature(line: str, kind: str) -> bool:
    k = KINDS.get(kind)
    return bool(k is not None and k.start is not None and k.start.search(line))


_LOG_KINDS = {"kubectl-logs", "container-logs", "journal", "unknown"}


def _is_log_kind(seg: _Seg) -> bool:
    if seg.prompt is None:
        return seg.kind in _LOG_KINDS
    return _seg_kind(seg) in _LOG_KINDS


def _seg_kind(seg: _Seg) -> str:
    if seg.prompt is None or seg.repl:
        return seg.kind or "unknown"
    cmd = parse_command(seg.prompt.command) if seg.prompt.command else None
    if cmd is None:
        return "unknown"
    inner = _inner_command(cmd)
    if inner is not None:
        cmd = parse_command(inner)
    kind, _ = detect_kind(cmd, [text for _, text in seg.lines][:60])
    return kind


def _inner_command(cmd: CommandInfo) -> str | None:
    """The command whose output appears, for wrappers that run another one."""
    if cmd.program == "ansible":
        return _ansible_command(cmd.argv)[1]
    if cmd.program == "ssh":
        return _ssh_command(cmd.argv)[1]
    if cmd.kubectl is not None and cmd.kubectl.verb in ("exec", "debug") and cmd.kubectl.after_dashdash:
        inner = list(cmd.kubectl.after_dashdash)
        if inner[:2] == ["chroot", "/host"]:
            inner = inner[2:]
        return " ".join(shlex.quote(w) for w in inner) if len(inner) > 1 else (inner[0] if inner else None)
    loop = _loop_hosts(cmd.raw)
    if loop is not None:
        return loop[1]
    return None


# --- blocks from segments ---------------------------------------------------------------------


def _trim(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    start, end = 0, len(lines)
    while start < end and not lines[start][1].strip():
        start += 1
    while end > start and not lines[end - 1][1].strip():
        end -= 1
    return lines[start:end]


@dataclass
class _Draft:
    seg_start: int
    prompt: Prompt | None
    command: str | None
    typed: str | None
    out: list[tuple[int, str]]
    host: str | None
    host_reason: str
    via: str | None = None
    exit_code: int | None = None
    exec_pod: str | None = None
    first: int | None = None  # 0-based line of the block's first line (banner) if not the prompt


def _drafts(seg: _Seg) -> list[_Draft]:
    prompt = seg.prompt
    typed = prompt.command if prompt is not None and not seg.repl else None
    host = prompt.host if prompt is not None else None
    reason = "prompt" if host else ""
    if seg.repl:
        return [_Draft(seg.start, prompt, None, None, _trim(seg.lines), None, "python REPL", via="python")]
    if not typed:
        return [_Draft(seg.start, prompt, None, None, _trim(seg.lines), host, reason)]
    cmd = parse_command(typed)
    if cmd.program == "ansible":
        _pattern, inner = _ansible_command(cmd.argv)
        drafts: list[_Draft] = []
        current: _Draft | None = None
        for idx, text in seg.lines:
            banner = _ANSIBLE_BANNER.match(text.strip())
            if banner is not None:
                if current is not None:
                    drafts.append(current)
                rc = banner.group("rc")
                # `HOST | UNREACHABLE! => {json}`: ansible's own result, not the command's output
                ran = rc is not None
                current = _Draft(
                    seg.start,
                    prompt,
                    inner if ran else None,
                    typed,
                    [],
                    banner.group("host"),
                    "ansible banner" if ran else "ansible banner (command did not run)",
                    via="ansible",
                    exit_code=int(rc) if rc is not None else None,
                    first=idx,
                )
                continue
            if current is None:
                continue  # [WARNING] lines and anything else before the first banner
            current.out.append((idx, text))
        if current is not None:
            drafts.append(current)
        for d in drafts:
            d.out = _trim(d.out)
            if d.exit_code not in (None, 0) and d.out:
                # ansible's shell module appends its msg "non-zero return code" to stderr
                # without a newline (minimal/oneline callback).
                idx, text = d.out[-1]
                if text.rstrip().endswith("non-zero return code"):
                    d.out[-1] = (idx, text.rstrip()[: -len("non-zero return code")])
        if drafts:
            return drafts
        return [_Draft(seg.start, prompt, inner, typed, _trim(seg.lines), host, reason, via="ansible")]
    loop = _loop_hosts(typed)
    if loop is not None:
        hosts, inner = loop
        return _split_loop(seg, prompt, typed, hosts, inner, host, reason)
    if cmd.program == "ssh":
        target, inner = _ssh_command(cmd.argv)
        if target is not None:
            return [
                _Draft(
                    seg.start,
                    prompt,
                    inner,
                    typed,
                    _trim(seg.lines),
                    target,
                    "ssh target",
                    via="ssh",
                )
            ]
    if cmd.kubectl is not None and cmd.kubectl.verb == "debug":
        node = next(
            (n for r, n in zip(cmd.kubectl.resources, cmd.kubectl.names, strict=False) if r == "nodes"),
            None,
        )
        inner_cmd = _inner_command(cmd)
        if node is not None:
            return [
                _Draft(
                    seg.start,
                    prompt,
                    inner_cmd,
                    typed,
                    _trim(seg.lines),
                    node,
                    "kubectl debug node",
                    via="kubectl-debug",
                )
            ]
    if cmd.kubectl is not None and cmd.kubectl.verb == "exec":
        inner_cmd = _inner_command(cmd)
        pod = cmd.kubectl.names[0] if cmd.kubectl.names else None
        ns = cmd.kubectl.namespace or "default"
        return [
            _Draft(
                seg.start,
                prompt,
                inner_cmd,
                typed,
                _trim(seg.lines),
                None,
                f"inside pod {ns}/{pod} (kubectl exec): a pod network namespace, not a node",
                via="kubectl-exec",
                exec_pod=f"{ns}/{pod}",
            )
        ]
    return [_Draft(seg.start, prompt, typed, typed, _trim(seg.lines), host, reason)]


def _split_loop(
    seg: _Seg,
    prompt: Prompt | None,
    typed: str,
    hosts: list[str],
    inner: str | None,
    host: str | None,
    reason: str,
) -> list[_Draft]:
    names = sorted(set(hosts), key=len, reverse=True)
    sep = (
        re.compile(r"^\W*(?:host:?\s*)?(?P<h>" + "|".join(re.escape(h) for h in names) + r")\W*$")
        if names
        else None
    )
    drafts: list[_Draft] = []
    current: _Draft | None = None
    for idx, text in seg.lines:
        m = sep.match(text.strip()) if sep is not None and text.strip() else None
        if m is not None:
            if current is not None:
                drafts.append(current)
            current = _Draft(
                seg.start,
                prompt,
                inner,
                typed,
                [],
                m.group("h"),
                "ssh loop separator",
                via="ssh-loop",
                first=idx,
            )
            continue
        if current is not None:
            current.out.append((idx, text))
    if current is not None:
        drafts.append(current)
    if not drafts:
        return [
            _Draft(
                seg.start,
                prompt,
                inner,
                typed,
                _trim(seg.lines),
                None,
                f"ssh loop over {', '.join(hosts)} without separators: output not attributable",
                via="ssh-loop",
            )
        ]
    for d in drafts:
        d.out = _trim(d.out)
    return drafts


def _paragraph_before(prose: Sequence[ProseLine], after: int, before_idx: int) -> list[str]:
    """The last run of consecutive prose lines between line `after` and 0-based `before_idx`."""
    lines = [p for p in prose if after < p.line <= before_idx]
    run: list[ProseLine] = []
    for p in reversed(lines):
        if run and run[-1].line - p.line > 1:
            break
        run.append(p)
    return [p.text for p in reversed(run)]


def _host_mentioned(text: str, hosts: Iterable[str]) -> list[str]:
    found = []
    for host in hosts:
        if re.search(rf"(?<![A-Za-z0-9_.-]){re.escape(host)}(?![A-Za-z0-9_-])", text):
            found.append(host)
    # "node1" inside "node10": the lookarounds handle it; drop names contained in longer ones
    return [h for h in found if not any(h != o and h in o for o in found)]


def split_transcript(text: str, source: str) -> tuple[Block, ...]:
    """A pasted terminal session → blocks. Total: never raises, whatever the text."""
    return parse_transcript(text, source).blocks


def parse_transcript(text: str, source: str) -> Transcript:
    """Like `split_transcript`, also returning the prose lines (they may name hosts)."""
    lines = normalize_spaces(text).split("\n")
    segs, prose = _split_segments(lines)
    drafts: list[_Draft] = []
    for seg in segs:
        drafts.extend(_drafts(seg))

    known_hosts: list[str] = []
    for d in drafts:
        if d.host and d.host not in known_hosts and not d.host_reason.startswith("inside"):
            known_hosts.append(d.host)

    blocks: list[Block] = []
    last_prompt_host: str | None = None
    prev_end = 0
    for d in drafts:
        if not d.out and (d.prompt is None or not d.command) and d.first is None:
            continue  # an empty prompt line
        host, reason = d.host, d.host_reason
        first_idx = d.first if d.first is not None else d.seg_start
        if host is None and not reason:
            # No host shown: the paragraph of prose right before the block naming exactly one
            # known host, else the host of the earlier prompts of the same session.
            mentioned = _host_mentioned(" ".join(_paragraph_before(prose, prev_end, first_idx)), known_hosts)
            if len(mentioned) == 1:
                host, reason = mentioned[0], f"guessed: prose before it names {mentioned[0]}"
            elif last_prompt_host is not None:
                host = last_prompt_host
                reason = f"guessed: follows commands run on {last_prompt_host}"
            else:
                reason = "unknown: no host in prompt, no banner or separator"
            if d.prompt is not None and d.prompt.text.startswith(("PS ", "➜")):
                last_prompt_host = None  # another machine's shell (a laptop), not the nodes
        elif d.host_reason == "prompt":
            last_prompt_host = d.host
        out_lines = [t for _, t in d.out]
        cmd_info = parse_command(d.command) if d.command else None
        if d.prompt is not None and d.prompt.text == ">>>":
            cmd_info = None
        kind, kind_reason = detect_kind(cmd_info, out_lines)
        output_line = (d.out[0][0] + 1) if d.out else (first_idx + 1)
        end_line = (d.out[-1][0] + 1) if d.out else (first_idx + 1)
        prev_end = end_line
        blocks.append(
            Block(
                command=d.command,
                output="\n".join(out_lines),
                host=host,
                host_reason=reason,
                prompt=d.prompt.text if d.prompt is not None else None,
                source=SourceRef(source, first_idx + 1),
                end_line=end_line,
                kind=kind,
                output_line=output_line,
                typed=d.typed,
                via=d.via,
                exit_code=d.exit_code,
                kind_reason=kind_reason,
                exec_pod=d.exec_pod,
            )
        )
    return Transcript(tuple(blocks), tuple(prose), source)


# --- host aliases ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AliasEvidence:
    a: str
    b: str
    reason: str
    source: SourceRef


@dataclass(frozen=True, slots=True)
class HostIdentity:
    """One machine as far as the text tells: its names, its addresses and why we think so."""

    name: str | None
    names: tuple[str, ...]
    ips: tuple[str, ...]
    evidence: tuple[AliasEvidence, ...]
    # Addresses this host claims that other hosts claim too (every node showing the NAT
    # address 10.0.2.15 as InternalIP): not identity, but evidence in its own right.
    shared_ips: tuple[str, ...] = ()

    @property
    def aliases(self) -> tuple[str, ...]:
        return self.names + self.ips


_TRUSTED_HOST_REASONS = (
    "prompt",
    "ansible banner",
    "ansible banner (command did not run)",
    "ssh target",
    "ssh loop separator",
    "kubectl debug node",
)
# Interfaces whose addresses are the same on every node (docker0 172.17.0.1, libvirt
# 192.168.122.1), or that hold other machines' addresses (kube-ipvs0 holds every ClusterIP,
# nodelocaldns the link-local cache IP): never evidence of identity.
_SHARED_IFACES = re.compile(r"^(?:docker\d*|virbr\d+|kube-ipvs0|nodelocaldns|lo|cni-podman\d*|br-[0-9a-f]+)$")
_SRC = re.compile(r"\bdev\s+(?P<dev>\S+).*?\bsrc\s+(?P<ip>[0-9a-fA-F.:]+)")
_INET = re.compile(
    r"^\s+inet6?\s+(?P<ip>[0-9a-fA-F.:]+)/\d+.*?(?:scope\s+(?P<scope>\w+))?(?:\s+(?P<label>\S+))?\s*$"
)
_BRIEF_ADDR = re.compile(
    r"^(?P<name>[^\s@]+)(?:@\S+)?\s+(?:UP|DOWN|UNKNOWN|LOWERLAYERDOWN|DORMANT)\s+(?P<addrs>.*)$"
)
# Default bridges that carry the same address on every machine (docker0, libvirt, podman).
_DEFAULT_BRIDGE_IPS = {"172.17.0.1", "192.168.122.1", "10.88.0.1"}
_EC2_NAME = re.compile(r"^ip-(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})(?:\.|$)")
_IFACE = re.compile(r"^\d+:\s+(?P<name>[^:@\s]+)(?:@\S+)?:")
_HOP_NAME = re.compile(r"(?P<name>[A-Za-z][\w.-]*)\s+\((?P<ip>[0-9a-fA-F.:]+)\)")
_RESOLVED = re.compile(r"^(?:traceroute6? to|PING)\s+(?P<name>[A-Za-z][\w.-]*)\s+\((?P<ip>[0-9a-fA-F.:]+)\)")
_NOT_HOSTNAMES = {
    "_gateway",
    "localhost",
    "gateway",
    "localhost.localdomain",
    "ip6-localhost",
    "ip6-loopback",
    "broadcasthost",
}


def _usable_ip(text: str) -> bool:
    ip = parse_ip(text)
    return ip is not None and not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)


def _own_addresses(block: Block) -> list[tuple[str, int]]:
    """Addresses a node shows as its own: route `src`, `ip addr` inet (not shared interfaces)."""
    out: list[tuple[str, int]] = []
    if block.kind in ("ip-route", "route-n"):
        for i, line in enumerate(block.lines):
            m = _SRC.search(line)
            if m is not None and not _SHARED_IFACES.match(m.group("dev")) and _usable_ip(m.group("ip")):
                out.append((m.group("ip"), i))
    elif block.kind == "ip-addr":
        iface = ""
        for i, line in enumerate(block.lines):
            brief = _BRIEF_ADDR.match(line)
            if brief is not None:  # `ip -br addr`: NAME STATE ADDR/LEN ...
                if not _SHARED_IFACES.match(brief.group("name")):
                    for word in brief.group("addrs").split():
                        ip = word.split("/", 1)[0]
                        if "/" in word and _usable_ip(ip):
                            out.append((ip, i))
                continue
            head = _IFACE.match(line)
            if head is not None:
                iface = head.group("name")
                continue
            m = _INET.match(line)
            if m is not None and not _SHARED_IFACES.match(iface) and _usable_ip(m.group("ip")):
                out.append((m.group("ip"), i))
    return out


def host_aliases(blocks: Sequence[Block]) -> dict[str, HostIdentity]:
    """Learn which names and IPs are the same machine, from the blocks' own text (pure).

    Evidence: addresses a host shows as its own in `ip route` (`src`) and `ip addr` output,
    kept only when unique to one host (docker0's 172.17.0.1 is on every node); reverse DNS in
    traceroute/ping (`node1 (192.168.31.226)`); `kubectl get nodes -o wide` and describe
    node/pod (`Node: admin/192.168.56.3`); apiserver `--advertise-address` and kubelet
    `--node-ip` in `ps` of a host; `hostname` output and journal lines under a host;
    /etc/hosts. Returns every alias (name or IP) → the HostIdentity of its machine.
    """
    evidence: list[AliasEvidence] = []
    node_names: set[str] = set()
    own: dict[str, list[tuple[str, SourceRef]]] = {}
    for block in blocks:
        trusted = block.host is not None and block.host_reason in _TRUSTED_HOST_REASONS
        if trusted and block.host is not None:
            for ip, i in _own_addresses(block):
                own.setdefault(ip, []).append((block.host, block.ref(i)))
        if block.kind == "traceroute":
            for i, line in enumerate(block.lines):
                for hop in _HOP_NAME.finditer(line):
                    name, ip = hop.group("name"), hop.group("ip")
                    if (
                        name not in _NOT_HOSTNAMES
                        and name != ip
                        and _usable_ip(ip)
                        and not line.startswith("traceroute to")
                    ):
                        evidence.append(AliasEvidence(name, ip, "traceroute reverse DNS", block.ref(i)))
        if block.kind in ("traceroute", "ping"):
            for i, line in enumerate(block.lines[:3]):
                m = _RESOLVED.match(line)
                if m is not None and m.group("name") not in _NOT_HOSTNAMES and _usable_ip(m.group("ip")):
                    evidence.append(
                        AliasEvidence(
                            m.group("name"),
                            m.group("ip"),
                            f"{block.kind} resolved the name",
                            block.ref(i),
                        )
                    )
        if block.kind == "hosts-file":
            for i, line in enumerate(block.lines):
                parts = line.split("#", 1)[0].split()
                if len(parts) >= 2 and _usable_ip(parts[0]):
                    for name in parts[1:]:
                        if name not in _NOT_HOSTNAMES:
                            evidence.append(AliasEvidence(name, parts[0], "/etc/hosts", block.ref(i)))
        if block.kind == "hostname" and trusted and block.host is not None:
            words = block.output.split()
            for word in words:
                if parse_ip(word) is not None:  # `hostname -I`
                    if _usable_ip(word) and word not in _DEFAULT_BRIDGE_IPS:
                        evidence.append(AliasEvidence(block.host, word, "`hostname -I` output", block.ref(0)))
                elif len(words) == 1 and _HOST_WORD.match(word) and word != block.host:
                    evidence.append(AliasEvidence(block.host, word, "`hostname` output", block.ref(0)))
        try:
            objects = objects_from_block(block)
        except ParseError:
            continue
        for node in objects.nodes:
            node_names.add(node.name)
            for node_ip in (*node.internal_ips, *node.external_ips):
                evidence.append(AliasEvidence(node.name, str(node_ip), "Node addresses", node.source))
            if node.hostname and node.hostname != node.name:
                evidence.append(AliasEvidence(node.name, node.hostname, "Node Hostname address", node.source))
        for pod in objects.pods:
            if pod.node:
                node_names.add(pod.node)
            if pod.node and pod.node_ip is not None:
                evidence.append(
                    AliasEvidence(pod.node, str(pod.node_ip), "pod's `Node: name/IP`", pod.source)
                )
            if pod.host_network and pod.node:
                for pod_ip in pod.ips:
                    evidence.append(AliasEvidence(pod.node, str(pod_ip), "hostNetwork pod IP", pod.source))
            for ev in pod.events:
                if ev.source_host:
                    node_names.add(ev.source_host)
        for ev in objects.events:
            if ev.source_host:
                node_names.add(ev.source_host)
        for proc in objects.processes:
            if not trusted or block.host is None:
                continue
            for flag, why in (
                ("advertise-address", "--advertise-address"),
                ("node-ip", "--node-ip"),
                ("hostname-override", "--hostname-override"),
            ):
                value = proc.flag(flag)
                if value and (flag == "hostname-override" or _usable_ip(value)):
                    evidence.append(
                        AliasEvidence(block.host, value, f"{proc.program} {why} on {block.host}", proc.source)
                    )
        for log in objects.logs:
            if trusted and block.host is not None and log.host and log.host != block.host:
                evidence.append(AliasEvidence(block.host, log.host, "journal host name", log.source))
    for ip, seen in own.items():
        hosts = {h for h, _ in seen}
        if len(hosts) == 1:
            host, ref = seen[0]
            if host != ip:
                evidence.append(AliasEvidence(host, ip, "address the host shows as its own", ref))
    return _group(evidence, node_names, blocks)


def _group(
    evidence: list[AliasEvidence], node_names: set[str], blocks: Sequence[Block]
) -> dict[str, HostIdentity]:
    hosts = set(node_names) | {
        b.host for b in blocks if b.host is not None and b.host_reason in _TRUSTED_HOST_REASONS
    }
    # EC2 private DNS names spell their address (ip-10-0-1-23 → 10.0.1.23).
    for name in sorted(hosts):
        m = _EC2_NAME.match(name)
        if m is not None and all(int(x) < 256 for x in m.groups()):
            evidence.append(
                AliasEvidence(name, ".".join(m.groups()), "EC2 private DNS name", SourceRef("<name>", 0))
            )
    # An address paired with two different machine names identifies neither (every Vagrant
    # node reporting 10.0.2.15): keep it out of the union, remember it as shared.
    names_of: dict[str, set[str]] = {}
    for ev in evidence:
        for ip, other in ((ev.a, ev.b), (ev.b, ev.a)):
            if parse_ip(ip) is not None and parse_ip(other) is None:
                names_of.setdefault(ip, set()).add(other.split(".", 1)[0])
    shared = {ip for ip, names in names_of.items() if len(names) > 1}
    usable = [ev for ev in evidence if ev.a not in shared and ev.b not in shared]
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for ev in usable:
        parent[find(ev.a)] = find(ev.b)
    for host in hosts:
        if host not in shared:
            find(host)
    groups: dict[str, list[str]] = {}
    for member in list(parent):
        groups.setdefault(find(member), []).append(member)
    prompt_hosts = {b.host for b in blocks if b.host_reason == "prompt" and b.host}
    out: dict[str, HostIdentity] = {}
    for members in groups.values():
        names = sorted((m for m in members if parse_ip(m) is None), key=lambda m: (len(m), m))
        ips = sorted(m for m in members if parse_ip(m) is not None)
        preferred = [n for n in names if n in node_names] or [n for n in names if n in prompt_hosts] or names
        root = find(members[0])
        ident = HostIdentity(
            name=preferred[0] if preferred else None,
            names=tuple(names),
            ips=tuple(ips),
            evidence=tuple(ev for ev in usable if find(ev.a) == root),
            shared_ips=tuple(
                sorted(ip for ip in shared if any(n.split(".", 1)[0] in names_of[ip] for n in names))
            ),
        )
        for member in members:
            out[member] = ident
    return out


def canonical_host(host: str | None, aliases: Mapping[str, HostIdentity]) -> str | None:
    """The best name for a host (a node name if known), else the host itself."""
    if host is None:
        return None
    ident = aliases.get(host)
    if ident is None or ident.name is None:
        return host
    return ident.name


# --- blocks → cluster objects -----------------------------------------------------------------


def objects_from_block(block: Block) -> ClusterObjects:
    """Parse a block of one of the cluster-level kinds (kubectl text/json, logs, ps, versions).

    Raises ParseError when the block's text is not what its kind says. Kinds owned by other
    parsers (ip-*, iptables-*, sysctl, probes) yield nothing here.
    """
    src = block.source.file
    first = block.output_line
    text = block.output
    cmd = parse_command(block.command) if block.command else None
    call = cmd.kubectl if cmd is not None else None
    ns = call.namespace if call is not None else None
    name = call.names[0] if call is not None and call.names else None
    kind = block.kind
    if kind == "kubectl-describe-pod":
        pod = kubectl_text.parse_describe_pod(text, src, first, name=name, namespace=ns)
        return ClusterObjects(pods=(pod,), events=pod.events)
    if kind == "kubectl-describe-svc":
        svc = kubectl_text.parse_describe_service(text, src, first, name=name, namespace=ns)
        return ClusterObjects(services=(svc,), events=svc.events)
    if kind == "kubectl-describe-node":
        node = kubectl_text.parse_describe_node(text, src, first, name=name)
        return ClusterObjects(nodes=(node,), events=node.events)
    if kind == "kubectl-get-pods":
        return ClusterObjects(pods=kubectl_text.parse_get_pods(text, src, first, namespace=ns))
    if kind == "kubectl-get-svc":
        return ClusterObjects(services=kubectl_text.parse_get_services(text, src, first, namespace=ns))
    if kind == "kubectl-get-nodes":
        return ClusterObjects(nodes=kubectl_text.parse_get_nodes(text, src, first))
    if kind == "kubectl-get-ep":
        return ClusterObjects(endpoints=kubectl_text.parse_get_endpoints(text, src, first, namespace=ns))
    if kind in ("kubectl-get-events", "kubectl-events-table"):
        obj = None
        if call is not None and call.verb == "describe" and call.resources and name:
            obj = f"{call.resources[0].rstrip('s')}/{name}"
        return ClusterObjects(events=kubectl_text.parse_events_table(text, src, first, obj=obj, namespace=ns))
    if kind == "kubectl-json":
        return kubectl_json.parse_kube_json(text, src, first)
    if kind == "kubectl-yaml":
        return kubectl_json.parse_kube_yaml(text, src, first)
    if kind in ("kubectl-logs", "container-logs", "journal"):
        log_pod = name if call is not None and call.verb == "logs" else None
        if log_pod is not None and "/" in log_pod:
            log_pod = log_pod.split("/", 1)[1]
        container = call.container if call is not None else None
        if cmd is not None and call is None and kind == "container-logs":
            words = [w for w in cmd.argv[2:] if not w.startswith("-")]
            container = words[0] if words else None
        comp = None
        if kind == "journal" and cmd is not None:
            units = [cmd.argv[i + 1] for i, w in enumerate(cmd.argv[:-1]) if w in ("-u", "--unit")]
            comp = units[0].removesuffix(".service") if units else None
        lines = logs.parse_logs(
            text, src, first, pod=log_pod, container=container, namespace=ns, component=comp
        )
        if block.host is not None and kind == "journal":
            lines = tuple(replace(x, host=x.host or block.host) for x in lines)
        return ClusterObjects(logs=lines)
    if kind == "ps":
        return ClusterObjects(processes=probes_text.parse_ps(text, src, first, host=block.host))
    if kind == "kubectl-version":
        facts: list[Fact[str]] = []
        for i, line in enumerate(block.lines):
            m = re.match(
                r"^Server Version:\s+"
                r"(?:version\.Info\{.*?GitVersion:\"(?P<g>[^\"]+)\".*|(?P<v>v\S+))",
                line,
            )
            if m is not None:
                facts.append(Fact(m.group("g") or m.group("v"), "kubectl version (server)", (block.ref(i),)))
        return ClusterObjects(versions=tuple(facts))
    if kind == "kubectl-cluster-info":
        urls: list[Fact[str]] = []
        for i, line in enumerate(block.lines):
            m = re.search(
                r"Kubernetes (?:control plane|master) is running at (?P<url>https?://\S+)",
                re.sub(r"\x1b\[[0-9;]*m", "", line),
            )
            if m is not None:
                urls.append(Fact(m.group("url"), "kubectl cluster-info", (block.ref(i),)))
        return ClusterObjects(apiserver_urls=tuple(urls))
    return ClusterObjects()


def objects_from_blocks(blocks: Iterable[Block]) -> ClusterObjects:
    """All cluster objects of a transcript; blocks that fail to parse go to `problems`."""
    out = ClusterObjects()
    for block in blocks:
        try:
            out = out.merge(objects_from_block(block))
        except ParseError as exc:
            out = out.merge(ClusterObjects(problems=(f"{exc} (block kind {block.kind})",)))
    return out
