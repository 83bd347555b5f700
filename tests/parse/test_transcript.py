"""Transcript splitting: the seed write-up end to end, seven more realistic transcripts, prompt
shapes, format detection, host attribution and aliases, and totality on random text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsleuth.model.k8s import derive_cluster_facts
from netsleuth.parse.kubectl_text import normalize_spaces
from netsleuth.parse.transcript import (
    KINDS,
    FormatKind,
    canonical_host,
    detect_kind,
    host_aliases,
    objects_from_blocks,
    parse_command,
    parse_prompt,
    parse_transcript,
    prose_score,
    register_kind,
    split_transcript,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "transcripts"
SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "000_e9d9eec0ae13dafa.txt"

needs_seed = pytest.mark.skipif(not SEED.exists(), reason=f"seed write-up not found at {SEED}")

# (first line, first output line, last line, kind, host, host_reason up to the first ":")
SEED_BLOCKS = [
    (16, 18, 46, "kubectl-describe-pod", "admin", "prompt"),
    (50, 51, 56, "kubectl-logs", "admin", "prompt"),
    (60, 60, 64, "kubectl-events-table", "admin", "guessed"),
    (66, 67, 81, "kubectl-logs", "admin", "prompt"),
    (85, 86, 94, "kubectl-logs", "admin", "prompt"),
    (100, 101, 102, "ps", "admin", "prompt"),
    (106, 107, 119, "kubectl-describe-svc", "admin", "prompt"),
    (123, 124, 126, "lsof", "admin", "prompt"),
    (138, 139, 140, "traceroute", "192.168.56.3", "ansible banner"),
    (141, 142, 153, "traceroute", "192.168.56.4", "ansible banner"),
    (154, 155, 166, "traceroute", "192.168.56.5", "ansible banner"),
    (170, 171, 179, "ip-route", "192.168.56.4", "ansible banner"),
    (180, 181, 189, "ip-route", "192.168.56.3", "ansible banner"),
    (190, 191, 199, "ip-route", "192.168.56.5", "ansible banner"),
    (204, 204, 207, "iptables-list", "admin", "guessed"),
]

TRANSCRIPTS: dict[str, list[tuple[int, int, int, str, str | None, str]]] = {
    "flannel_vagrant_en.txt": [
        (5, 6, 9, "kubectl-get-nodes", "k8s-cp-1", "prompt"),
        (13, 14, 27, "kubectl-get-pods", "k8s-cp-1", "prompt"),
        (29, 30, 48, "kubectl-logs", "k8s-cp-1", "prompt"),
        (52, 53, 69, "ip-addr", "k8s-w-1", "prompt"),
        (70, 71, 78, "ip-route", "k8s-w-1", "prompt"),
        (79, 80, 80, "curl", "k8s-w-1", "prompt"),
        (85, 86, 96, "curl", "k8s-cp-1", "prompt"),
    ],
    "cilium_vpn_de.txt": [
        (7, 8, 11, "kubectl-get-pods", "cp-0", "prompt"),
        (12, 13, 18, "kubectl-logs", "cp-0", "prompt"),
        (19, 20, 23, "kubectl-get-events", "cp-0", "prompt"),
        (27, 28, 97, "kubectl-describe-node", "cp-0", "prompt"),
        (99, 100, 105, "ip-rule", "worker-2", "prompt"),
        (106, 107, 107, "ip-route", "worker-2", "prompt"),
        (108, 109, 111, "sysctl", "worker-2", "prompt"),
        (112, 114, 117, "dig", "worker-2", "prompt"),
        (118, 119, 123, "traceroute", "worker-2", "prompt"),
    ],
    "calico_ipvs_loop_zh.txt": [
        (6, 7, 31, "kubectl-describe-svc", "k8s-master-01", "prompt"),
        (32, 33, 36, "kubectl-get-ep", "k8s-master-01", "prompt"),
        (40, 41, 52, "calicoctl-node-status", "k8s-master-01", "prompt"),
        (55, 56, 59, "ip-route", "k8s-node-01", "ssh loop separator"),
        (60, 61, 63, "ip-route", "k8s-node-02", "ssh loop separator"),
        (67, 68, 73, "ss", "k8s-node-02", "ssh target"),
        (74, 75, 76, "conntrack", "k8s-node-02", "ssh target"),
        (77, 78, 79, "kubectl-logs", "k8s-master-01", "prompt"),
    ],
    "ansible_forwarding_mixed.txt": [
        (6, 7, 11, "kubectl-get-svc", None, "unknown"),
        (12, 13, 15, "kubectl-get-ep", None, "unknown"),
        (21, 22, 23, "sysctl", "worker01", "ansible banner"),
        (24, 25, 28, "unknown", "worker03", "ansible banner (command did not run)"),
        (29, 30, 31, "sysctl", "worker02", "ansible banner"),
        (33, 34, 34, "hostname", "worker02", "ansible banner"),
        (36, 37, 41, "iptables-list", "worker02", "ansible banner"),
        (43, 44, 46, "sysctl", "worker02", "ansible banner"),
        (48, 49, 49, "sysctl", None, "unknown"),
    ],
    "healthy_en.txt": [
        (4, 5, 7, "kubectl-get-nodes", "laptop", "prompt"),
        (8, 9, 23, "kubectl-get-pods", "laptop", "prompt"),
        (24, 25, 30, "kubectl-get-svc", "laptop", "prompt"),
        (31, 32, 33, "kubectl-get-ep", "laptop", "prompt"),
        (34, 35, 42, "nslookup", "laptop", "prompt"),
        (46, 47, 52, "ip-route", "node-a", "prompt"),
        (53, 54, 54, "curl", "node-a", "prompt"),
        (55, 56, 57, "sysctl", "node-a", "prompt"),
    ],
    "journal_resolv_loop.txt": [
        (1, 2, 4, "kubectl-get-pods", "ip-10-0-1-23", "prompt"),
        (5, 6, 11, "kubectl-logs", "ip-10-0-1-23", "prompt"),
        (12, 13, 17, "resolv-conf", "ip-10-0-1-23", "prompt"),
        (18, 19, 22, "journal", "ip-10-0-1-23", "prompt"),
        (23, 24, 25, "container-logs", "ip-10-0-1-23", "prompt"),
        (26, 27, 31, "lsof", "ip-10-0-1-23", "prompt"),
        (32, 33, 35, "ip-addr", "ip-10-0-1-24", "ssh target"),
        (36, 37, 39, "kubectl-get-nodes", "ip-10-0-1-23", "prompt"),
    ],
    "k3s_markdown_repl.md": [
        (8, 9, 10, "ps", "edge1", "prompt"),
        (16, 17, 19, "kubectl-get-events", "edge1", "prompt"),
        (25, 26, 65, "kubectl-json", "edge1", "prompt"),
        (74, 75, 75, "unknown", None, "python REPL"),
        (81, 82, 89, "ping", "edge2", "prompt"),
        (90, 91, 92, "traceroute", "edge2", "prompt"),
    ],
}


def _table(path: Path) -> list[tuple[int, int, int, str, str | None, str]]:
    blocks = split_transcript(path.read_text(encoding="utf-8"), path.name)
    return [
        (b.source.line, b.output_line, b.end_line, b.kind, b.host, b.host_reason.split(":")[0])
        for b in blocks
    ]


# --- the seed ---------------------------------------------------------------------------------


@needs_seed
def test_seed_every_block_kind_boundaries_and_host() -> None:
    assert _table(SEED) == SEED_BLOCKS


@needs_seed
def test_seed_outputs_hold_no_prose_and_no_ansible_noise() -> None:
    blocks = split_transcript(SEED.read_text(encoding="utf-8"), "seed")
    for block in blocks:
        for line in block.lines:
            assert not re.search(r"[\u4e00-\u9fff]", line), (block.source, line)
            assert not line.startswith("[WARNING]")
    # ansible appends its msg to stderr: the FAILED host's output must not carry it
    failed = next(b for b in blocks if b.exit_code == 1)
    assert failed.host == "192.168.56.3"
    assert failed.lines[-1] == "connect: Network is unreachable"
    assert failed.command == "traceroute 10.96.0.1"
    assert failed.typed is not None and failed.typed.startswith("ansible k8s-1")


@needs_seed
def test_seed_guessed_hosts_say_why() -> None:
    blocks = split_transcript(SEED.read_text(encoding="utf-8"), "seed")
    by_line = {b.source.line: b for b in blocks}
    assert by_line[204].host_reason == "guessed: prose before it names admin"
    assert by_line[60].host_reason == "guessed: follows commands run on admin"
    assert by_line[16].prompt == "[root@admin ~ ]$"
    assert by_line[16].command == "k describe po  coredns-9d85f5447-sjs2j  -n kube-system"


@needs_seed
def test_seed_host_aliases_learn_names_of_banner_ips() -> None:
    blocks = split_transcript(SEED.read_text(encoding="utf-8"), "seed")
    aliases = host_aliases(blocks)
    # admin: the apiserver on admin advertises 192.168.56.3 (ps -ef at the admin prompt)
    assert canonical_host("192.168.56.3", aliases) == "admin"
    admin = aliases["admin"]
    assert admin.ips == ("192.168.56.3",)
    assert any("--advertise-address" in ev.reason for ev in admin.evidence)
    # node1/node2: traceroute names their enp0s3 addresses, which their `ip route` shows as src
    assert canonical_host("192.168.56.4", aliases) == "node1"
    assert canonical_host("192.168.56.5", aliases) == "node2"
    assert set(aliases["node1"].ips) == {"192.168.31.226", "192.168.56.4"}
    # docker0's 172.17.0.1 is on all three nodes: never identity
    assert "172.17.0.1" not in aliases


@needs_seed
def test_seed_cluster_objects_and_facts() -> None:
    blocks = split_transcript(SEED.read_text(encoding="utf-8"), "seed")
    objects = objects_from_blocks(blocks)
    assert objects.problems == ()
    pod = objects.pods[0]
    assert pod.key == "kube-system/coredns-9d85f5447-sjs2j"
    assert pod.containers[0].reason == "Completed" and pod.containers[0].restart_count == 36
    assert [(e.reason, e.count, e.source_host) for e in pod.events] == [("SandboxChanged", 575, "admin")]
    calico = [log for log in objects.logs if log.pod == "calico-node-7kvkf" and log.net_error]
    assert len(calico) == 1 and calico[0].count == 10
    assert calico[0].net_error is not None and calico[0].net_error.errno == "ENETUNREACH"
    assert calico[0].source.line == 72 and calico[0].last_source is not None
    assert calico[0].last_source.line == 81
    facts = derive_cluster_facts(objects)
    assert [str(f.value) for f in facts.service_cidrs] == ["10.96.0.0/12"]
    assert [f.value for f in facts.apiserver_endpoints] == ["192.168.56.3:6443"]
    assert [str(f.value) for f in facts.kubernetes_service_ips] == ["10.96.0.1"]
    assert [f.value for f in facts.cni] == ["calico"]
    assert {k: [str(ip) for ip in v] for k, v in facts.node_ips.items()} == {"admin": ["192.168.56.3"]}


# --- more transcripts ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
def test_transcript_blocks(name: str) -> None:
    assert _table(DATA / name) == TRANSCRIPTS[name]


@pytest.mark.parametrize("name", [*sorted(TRANSCRIPTS), "seed"])
def test_output_lines_map_back_to_the_file(name: str) -> None:
    path = SEED if name == "seed" else DATA / name
    if not path.exists():
        pytest.skip("seed not found")
    file_lines = normalize_spaces(path.read_text(encoding="utf-8")).split("\n")
    for block in split_transcript(path.read_text(encoding="utf-8"), name):
        for i, line in enumerate(block.lines):
            original = file_lines[block.ref(i).line - 1]
            if block.via == "ansible" and i == len(block.lines) - 1:
                original = original.removesuffix("non-zero return code")
            assert line == original, (block.source, i)
        for line in block.lines:
            assert prose_score(line) < 2 or not line.strip(), (name, block.source, line)


def test_flannel_duplicate_internal_ip_is_shared_not_identity() -> None:
    blocks = split_transcript((DATA / "flannel_vagrant_en.txt").read_text(), "f")
    aliases = host_aliases(blocks)
    assert "10.0.2.15" not in aliases
    for node in ("k8s-cp-1", "k8s-w-1", "k8s-w-2"):
        assert aliases[node].name == node
        assert aliases[node].shared_ips == ("10.0.2.15",)
    assert "192.168.60.11" in aliases["k8s-w-1"].ips


def test_aliases_from_node_objects_flags_and_names() -> None:
    aliases = host_aliases(split_transcript((DATA / "healthy_en.txt").read_text(), "h"))
    assert canonical_host("172.31.4.10", aliases) == "node-a"
    assert canonical_host("172.31.4.11", aliases) == "node-b"
    k3s = host_aliases(split_transcript((DATA / "k3s_markdown_repl.md").read_text(), "k"))
    assert canonical_host("192.168.8.21", k3s) == "edge1"  # k3s --node-ip in ps on edge1
    assert canonical_host("192.168.8.22", k3s) == "edge2"  # pod JSON hostIP on node edge2
    ec2 = host_aliases(split_transcript((DATA / "journal_resolv_loop.txt").read_text(), "j"))
    assert canonical_host("10.0.1.24", ec2) == "ip-10-0-1-24"
    assert "192.168.87.64" in ec2["ip-10-0-1-24"].ips  # `ip -br addr` over ssh
    ans = host_aliases(split_transcript((DATA / "ansible_forwarding_mixed.txt").read_text(), "a"))
    assert canonical_host("10.40.8.22", ans) == "worker02"  # hostname -I under its banner
    assert "172.17.0.1" not in ans


def test_transcript_objects_of_other_clusters() -> None:
    objs = objects_from_blocks(split_transcript((DATA / "cilium_vpn_de.txt").read_text(), "c"))
    assert objs.problems == ()
    node = objs.nodes[0]
    assert node.name == "worker-2" and [str(c) for c in node.pod_cidrs] == ["10.0.2.0/24"]
    assert node.condition("NetworkUnavailable") is not None
    assert [e.reason for e in objs.events] == ["BackOff", "Pulled", "Unhealthy"]
    errors = [log.net_error for log in objs.logs if log.net_error is not None]
    assert {(e.errno, e.dst) for e in errors} == {("TIMEOUT", "172.20.0.1:443")}
    facts = derive_cluster_facts(objs)
    assert [f.value for f in facts.cni] == ["cilium"]

    k3s = objects_from_blocks(split_transcript((DATA / "k3s_markdown_repl.md").read_text(), "k"))
    assert k3s.problems == ()
    facts = derive_cluster_facts(k3s)
    assert [str(f.value) for f in facts.service_cidrs] == ["10.43.0.0/16"]
    assert [str(f.value) for f in facts.pod_cidrs] == ["10.42.0.0/16"]
    ev = {e.reason: e for e in k3s.events}
    assert ev["BackOff"].count == 132 and ev["BackOff"].source_host == "edge2"
    assert k3s.pods[0].status == "CrashLoopBackOff" and k3s.pods[0].node == "edge2"

    dns = objects_from_blocks(split_transcript((DATA / "calico_ipvs_loop_zh.txt").read_text(), "z"))
    facts = derive_cluster_facts(dns)
    assert [str(f.value) for f in facts.cluster_dns_ips] == ["10.233.0.3"]  # kubespray: coredns
    svc = dns.services[0]
    assert [(p.name, p.port, p.protocol) for p in svc.ports] == [
        ("dns", 53, "UDP"),
        ("dns-tcp", 53, "TCP"),
        ("metrics", 9153, "TCP"),
    ]
    assert [f.value for f in facts.kube_proxy_mode] == ["ipvs"]


def test_healthy_transcript_parses_without_problems() -> None:
    objs = objects_from_blocks(split_transcript((DATA / "healthy_en.txt").read_text(), "h"))
    assert objs.problems == ()
    assert all(p.status == "Running" for p in objs.pods)
    assert all(n.ready for n in objs.nodes)
    facts = derive_cluster_facts(objs)
    assert [str(f.value) for f in facts.cluster_dns_ips] == ["10.96.0.10"]
    assert [f.value for f in facts.apiserver_endpoints] == ["172.31.4.10:6443"]


# --- prompts, commands, kinds ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "host", "command"),
    [
        ("[root@admin ~ ]$k describe po x", "admin", "k describe po x"),
        (
            "[root@admin /etc/kubernetes ]$ansible k8s-1 -m shell -a 'ip r'",
            "admin",
            "ansible k8s-1 -m shell -a 'ip r'",
        ),
        (" [root@admin /etc/kubernetes ]$", "admin", ""),
        ("[root@k8s-master-01 ~]# kubectl get po", "k8s-master-01", "kubectl get po"),
        ("(base) [ops@bastion ~]$ ssh n1 ip r", "bastion", "ssh n1 ip r"),
        ("ubuntu@k8s-cp-1:~$ kubectl get nodes", "k8s-cp-1", "kubectl get nodes"),
        ("root@worker-2:/home/admin# ip rule", "worker-2", "ip rule"),
        ("dev@laptop:~/k8s$ kubectl get svc -A", "laptop", "kubectl get svc -A"),
        ("me@mbp ~ % kubectl get pods", "mbp", "kubectl get pods"),
        ("node1:~ # ip route", "node1", "ip route"),
        ("edge1$ ps aux", "edge1", "ps aux"),
        ("# iptables-save", None, "iptables-save"),
        ("$ kubectl get ep", None, "kubectl get ep"),
        ("PS C:\\Users\\ops> kubectl.exe get svc", None, "kubectl.exe get svc"),
        ("➜  ~ k get po -A", None, "k get po -A"),
    ],
)
def test_prompt_shapes(line: str, host: str | None, command: str) -> None:
    prompt = parse_prompt(line)
    assert prompt is not None
    assert (prompt.host, prompt.command) == (host, command)


@pytest.mark.parametrize(
    "line",
    [
        "# Generated by iptables-save v1.8.4 on Thu Feb 15 10:00:00 2024",
        "# This file is managed by man:systemd-resolved(8). Do not edit.",
        "# CIS 3.1.1 Ensure IP forwarding is disabled",
        ">>> import kubernetes",
        "default via 192.168.31.1 dev enp0s3 proto dhcp metric 102",
        "Chain KUBE-SEP-G5V522HWZT6RKRAC (1 references)",
        "$ not a command here",
        "Events:  <none>",
    ],
)
def test_not_prompts(line: str) -> None:
    assert parse_prompt(line) is None


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        ("k describe po coredns -n kube-system", "kubectl-describe-pod"),
        ("kc describe pod/coredns", "kubectl-describe-pod"),
        ("kubectl.exe describe svc kubernetes", "kubectl-describe-svc"),
        ("kubectl describe no worker-1", "kubectl-describe-node"),
        ("kubectl get po -A -owide", "kubectl-get-pods"),
        ("k get svc -n kube-system", "kubectl-get-svc"),
        ("kubectl get nodes -o wide", "kubectl-get-nodes"),
        ("kubectl get ep kubernetes", "kubectl-get-ep"),
        ("kubectl get endpointslices -A", "kubectl-get-ep"),
        ("kubectl get events -A", "kubectl-get-events"),
        ("kubectl events -n kube-system", "kubectl-get-events"),
        ("kubectl get pods -o json", "kubectl-json"),
        ("kubectl get cm kube-proxy -n kube-system -o yaml", "kubectl-yaml"),
        ("kubectl cluster-info dump", "kubectl-json"),
        ("sudo kubectl logs -n kube-system calico-node-x -c calico-node --previous", "kubectl-logs"),
        ("KUBECONFIG=/etc/kubernetes/admin.conf kubectl get po", "kubectl-get-pods"),
        ("microk8s kubectl get nodes", "kubectl-get-nodes"),
        ("ip r", "ip-route"),
        ("ip -4 ro show table all", "ip-route"),
        ("ip -br a", "ip-addr"),
        ("ip -d link show", "ip-link"),
        ("ip ru", "ip-rule"),
        ("iptables-save -t nat", "iptables-save"),
        ("iptables -t nat -nvL KUBE-SERVICES", "iptables-list"),
        ("iptables -S FORWARD", "iptables-S"),
        ("nft list ruleset", "nft-list"),
        ("ps -ef | grep kubelet", "ps"),
        ("lsof -i :6443", "lsof"),
        ("ss -ltnp", "ss"),
        ("netstat -tulpn", "netstat"),
        ("traceroute -n 10.96.0.1", "traceroute"),
        ("ping -c1 10.96.0.1", "ping"),
        ("curl -k https://10.96.0.1", "curl"),
        ("dig @10.96.0.10 kubernetes.default.svc.cluster.local", "dig"),
        ("nslookup kubernetes.default", "nslookup"),
        ("sysctl -a", "sysctl"),
        ("calicoctl node status", "calicoctl-node-status"),
        ("conntrack -S", "conntrack"),
        ("cat /etc/resolv.conf", "resolv-conf"),
        ("journalctl -u kubelet", "journal"),
        ("crictl logs abc123", "container-logs"),
        ("kubectl version", "kubectl-version"),
    ],
)
def test_kind_by_command(command: str, kind: str) -> None:
    assert detect_kind(parse_command(command), []) == (kind, "command")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (
            "default via 10.0.0.1 dev eth0\n10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.5",
            "ip-route",
        ),
        ("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT", "iptables-save"),
        ("Chain KUBE-SERVICES (2 references)\n target     prot opt source  destination", "iptables-list"),
        (
            "NAME   READY   STATUS    RESTARTS   AGE\nweb-1  1/1     Running   0          3d",
            "kubectl-get-pods",
        ),
        (
            "Events:\n  Type    Reason  Age  From     Message\n  ----    ------  ---  ----     -------",
            "kubectl-events-table",
        ),
        ("traceroute to 10.96.0.1 (10.96.0.1), 30 hops max, 60 byte packets\n 1  * * *", "traceroute"),
        ("net.ipv4.ip_forward = 0\nnet.ipv4.conf.all.rp_filter = 1", "sysctl"),
        ("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan", "resolv-conf"),
        ("I0215 01:25:31.222664       1 server.go:12] Using iptables Proxier", "kubectl-logs"),
        ('{\n  "apiVersion": "v1",\n  "kind": "List",\n  "items": []\n}', "kubectl-json"),
    ],
)
def test_kind_by_content(text: str, kind: str) -> None:
    assert detect_kind(None, text.split("\n"))[0] == kind


def test_transformed_output_is_judged_by_content() -> None:
    cmd = parse_command("kubectl get pods -o json | jq -r '.items[].status.podIP'")
    assert cmd.transformed
    assert detect_kind(cmd, ["10.10.0.5", "10.10.0.6"])[0] != "kubectl-json"


def test_registered_kind_plugs_in() -> None:
    rx = re.compile(r"^Hubble Relay status:")
    kind = FormatKind(
        "cilium-status-test",
        lambda c: 1.0 if c.program == "cilium" and c.argv[1:2] == ("status",) else 0.0,
        lambda lines: 0.95 if any(rx.search(x) for x in lines) else 0.0,
        rx,
    )
    register_kind(kind)
    try:
        assert detect_kind(parse_command("cilium status"), [])[0] == "cilium-status-test"
        text = "Some prose here about the issue we had today.\n\nHubble Relay status: OK\n"
        blocks = split_transcript(text, "t")
        assert [b.kind for b in blocks] == ["cilium-status-test"]
    finally:
        del KINDS["cilium-status-test"]


# --- wrappers: ssh, loops, kubectl exec/debug ----------------------------------------------


def test_ssh_loop_without_separators_is_not_attributed() -> None:
    text = "$ for h in n1 n2; do ssh $h ip route; done\ndefault via 10.0.0.1 dev eth0\n"
    (block,) = split_transcript(text, "t")
    assert block.host is None and "without separators" in block.host_reason
    assert block.kind == "ip-route" and block.via == "ssh-loop"


def test_ssh_loop_with_brace_expansion_and_ip_template() -> None:
    text = (
        "[root@m ~]# for i in {3..4}; do echo \"--- 10.1.1.$i\"; ssh root@10.1.1.$i 'ip r'; done\n"
        "--- 10.1.1.3\n"
        "default via 10.1.1.1 dev eth0\n"
        "--- 10.1.1.4\n"
        "10.1.1.0/24 dev eth0 proto kernel scope link src 10.1.1.4\n"
    )
    blocks = split_transcript(text, "t")
    assert [(b.host, b.kind, b.output_line) for b in blocks] == [
        ("10.1.1.3", "ip-route", 3),
        ("10.1.1.4", "ip-route", 5),
    ]


def test_kubectl_exec_and_debug() -> None:
    text = (
        "$ kubectl exec -n app web-0 -- cat /etc/resolv.conf\n"
        "nameserver 10.96.0.10\nsearch app.svc.cluster.local svc.cluster.local\noptions ndots:5\n"
        "$ kubectl debug node/worker-3 -it --image=nicolaka/netshoot -- chroot /host ip route\n"
        "default via 10.0.0.1 dev ens3\n"
    )
    exec_block, debug_block = split_transcript(text, "t")
    assert exec_block.exec_pod == "app/web-0" and exec_block.host is None
    assert exec_block.kind == "resolv-conf"
    assert debug_block.host == "worker-3" and debug_block.host_reason == "kubectl debug node"
    assert debug_block.kind == "ip-route"


def test_bare_outputs_between_prose_in_several_languages() -> None:
    text = (
        "Danach habe ich die Routen auf dem Knoten geprüft:\n"
        "default via 10.0.0.1 dev eth0 proto dhcp metric 100\n"
        "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.7\n"
        "Und dann die NAT-Tabelle, die sah so aus:\n"
        "\n"
        "Chain KUBE-SERVICES (2 references)\n"
        " target     prot opt source               destination\n"
        "KUBE-SVC-NPX46M4PTMTKRN6Y  tcp  --  0.0.0.0/0  10.96.0.1  tcp dpt:443\n"
        "\n"
        "然后我重启了 kubelet。\n"
    )
    t = parse_transcript(text, "t")
    assert [(b.kind, b.output_line, b.end_line) for b in t.blocks] == [
        ("ip-route", 2, 3),
        ("iptables-list", 6, 8),
    ]
    assert [p.line for p in t.prose] == [1, 4, 10]


def test_prose_scores() -> None:
    assert prose_score("显示sandbox 退出Kill了,看日志") == 2
    assert prose_score("Then I looked at the iptables rules on node2:") == 2
    assert prose_score("No resources found in default namespace.") == 0
    assert prose_score("  Normal  SandboxChanged  4m3s (x575 over 129m)  kubelet, admin  Pod") == 0
    assert prose_score("2024-02-16 04:58:08.483 [INFO][8] startup.go 259: 日志") == 0
    assert prose_score("10.10.0.129 dev calib35f38918a6 scope link") == 0


# --- totality -------------------------------------------------------------------------------

_FRAGMENTS = [
    "[root@admin ~ ]$k get po",
    "192.168.56.4 | CHANGED | rc=0 >>",
    "x | FAILED | rc=1 >>  ## 注释",
    "h | UNREACHABLE! => {",
    "$ for h in a b; do ssh $h ip r; done",
    "==> a <==",
    "```",
    ">>> print(1)",
    "Events:",
    "  Type  Reason  Age  From  Message",
    "Chain X (1 references)",
    "default via 1.2.3.4 dev eth0",
    "这是一个测试句子。",
    "",
    "cmd \\",
    "# iptables-save",
    "*nat",
    "{",
    "Name:  x",
    "    State:  Terminated",
    "traceroute to x (1.1.1.1), 30 hops max",
    " 1  * * *",
]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_random_text_never_raises(text: str) -> None:
    transcript = parse_transcript(text, "fuzz")
    for block in transcript.blocks:
        assert block.output_line <= block.end_line or not block.output
    host_aliases(transcript.blocks)
    objects_from_blocks(transcript.blocks)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=30)), max_size=40))
def test_random_transcript_shapes_never_raise(parts: list[str]) -> None:
    text = "\n".join(parts)
    blocks = split_transcript(text, "fuzz")
    lines = normalize_spaces(text).split("\n")
    for block in blocks:
        for i, line in enumerate(block.lines):
            original = lines[block.ref(i).line - 1]
            assert original.startswith(line) or original.rstrip().startswith(line.rstrip())
    host_aliases(blocks)
    objects_from_blocks(blocks)
