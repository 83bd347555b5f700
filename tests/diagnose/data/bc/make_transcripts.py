#!/usr/bin/env python3
# ruff: noqa: E501, W291 (command outputs are pasted as printed: real width, trailing blanks)
"""Write the B/C transcripts (data/bc/transcripts/*.txt) and copy the ones used as golden
scenarios to ../../scenarios/<name>/input.txt.

Each transcript is a terminal session as people paste it: prompts, kubectl tables laid out the
way kubectl's tabwriter prints them (`table`), and the node outputs captured for real in network
namespaces by make_bc_data.py (read from data/bc/<case>/<node>/text/). Run make_bc_data.py
first.

Usage: python3 tests/diagnose/data/bc/make_transcripts.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
B = str(HERE) + "/"
T = B + "transcripts/"
SCEN = HERE.parents[1] / "scenarios"


def table(rows: list[list[str]]) -> str:
    """kubectl's tabwriter layout: each column padded to max width + 3, last column unpadded."""
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(len(r) for r in rows))]
    out = []
    for r in rows:
        cells = [c.ljust(widths[i] + 3) if i < len(r) - 1 else c for i, c in enumerate(r)]
        out.append("".join(cells).rstrip())
    return "\n".join(out)


def t(case: str, node: str, name: str) -> str:
    return Path(f"{B}{case}/{node}/text/{name}").read_text().rstrip("\n")


def main() -> None:

    # ---- B13 ufw
    text=f"""Home lab, Kubernetes the hard way on 3 Raspberry Pi 4 (Ubuntu 22.04, bridge CNI with static
routes, v1.26.3). After enabling ufw on the workers only SSH works between pods on different
nodes; `iptables -P FORWARD ACCEPT` helps until the next reboot.

ubuntu@pi-worker-2:~$ sudo ufw status verbose
Status: active
Logging: on (low)
Default: deny (incoming), allow (outgoing), deny (routed)
New profiles: skip

To                         Action      From
--                         ------      ----
22/tcp                     ALLOW IN    Anywhere
10250/tcp                  ALLOW IN    Anywhere
22/tcp (v6)                ALLOW IN    Anywhere (v6)
10250/tcp (v6)             ALLOW IN    Anywhere (v6)

ubuntu@pi-worker-2:~$ sudo dmesg | grep 'UFW BLOCK' | tail -2
[ 8123.441257] [UFW BLOCK] IN=cnio0 OUT=eth0 PHYSIN=veth5e0c7a1d MAC=16:6a:f3:2b:91:0e:5a:22:0c:7e:41:9d:08:00 SRC=10.200.2.14 DST=10.200.1.9 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=48811 DF PROTO=TCP SPT=40522 DPT=3000 WINDOW=64860 RES=0x00 SYN URGP=0 
[ 8124.456012] [UFW BLOCK] IN=cnio0 OUT=eth0 PHYSIN=veth5e0c7a1d MAC=16:6a:f3:2b:91:0e:5a:22:0c:7e:41:9d:08:00 SRC=10.200.2.14 DST=10.200.1.9 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=48812 DF PROTO=TCP SPT=40522 DPT=3000 WINDOW=64860 RES=0x00 SYN URGP=0 
ubuntu@pi-worker-2:~$ ip addr
{t('ufw','pi-worker-2','ip-addr.txt')}
ubuntu@pi-worker-2:~$ ip route
{t('ufw','pi-worker-2','ip-route.txt')}
ubuntu@pi-worker-2:~$ sudo iptables-save
{t('ufw','pi-worker-2','iptables-save.txt')}
"""
    Path(T + 'b13_ufw_kthw_pi.txt').write_text(text)

    # ---- B10 module missing
    pods=table([["NAMESPACE","NAME","READY","STATUS","RESTARTS","AGE","IP","NODE","NOMINATED NODE","READINESS GATES"],
     ["apps","report-worker-84c6d7f9b8-zr6kd","1/1","Running","0","2h","10.42.3.7","kw-03","<none>","<none>"],
     ["kube-system","coredns-5d78c9869d-8xk2w","1/1","Running","0","5d","10.42.3.4","kw-03","<none>","<none>"],
     ["kube-system","coredns-5d78c9869d-q2nhc","1/1","Running","0","5d","10.42.1.9","kw-02","<none>","<none>"]])
    svc=table([["NAMESPACE","NAME","TYPE","CLUSTER-IP","EXTERNAL-IP","PORT(S)","AGE"],
     ["default","kubernetes","ClusterIP","10.43.0.1","<none>","443/TCP","5d"],
     ["kube-system","kube-dns","ClusterIP","10.43.0.10","<none>","53/UDP,53/TCP,9153/TCP","5d"]])
    ep=table([["NAME","ENDPOINTS","AGE"],["kube-dns","10.42.1.9:53,10.42.3.4:53,10.42.1.9:53 + 3 more...","5d"]])
    text=f"""Half of the DNS lookups from pods on kw-03 time out; from other nodes it is fine. kw-03
was rebuilt last week from a minimal image.

me@bastion:~$ kubectl get pods -A -o wide
{pods}
me@bastion:~$ kubectl get svc -A
{svc}
me@bastion:~$ kubectl -n kube-system get ep kube-dns
{ep}
me@bastion:~$ kubectl -n apps exec report-worker-84c6d7f9b8-zr6kd -- nslookup postgres.data.svc.cluster.local
;; connection timed out; no servers could be reached

command terminated with exit code 1
me@bastion:~$ ssh kw-03
me@kw-03:~$ sudo sysctl net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables
net.ipv4.ip_forward = 1
sysctl: cannot stat /proc/sys/net/bridge/bridge-nf-call-iptables: No such file or directory
me@kw-03:~$ lsmod | grep br_netfilter
me@kw-03:~$ ip addr
{t('brnf-off','kw-03','ip-addr.txt')}
me@kw-03:~$ ip route
{t('brnf-off','kw-03','ip-route.txt')}
"""
    Path(T + 'b10_brnf_module_missing.txt').write_text(text)

    # ---- B15 conntrack full
    text="""Ingress nodes drop random requests during the evening peak (ingress-nginx 1.9, k8s 1.25).

[root@ingress-7 ~]# dmesg -T | grep -E 'conntrack|ratelimit' | tail -4
[Mon Mar  4 19:01:12 2024] nf_conntrack: nf_conntrack: table full, dropping packet
[Mon Mar  4 19:01:17 2024] net_ratelimit: 1273 callbacks suppressed
[Mon Mar  4 19:01:17 2024] nf_conntrack: nf_conntrack: table full, dropping packet
[Mon Mar  4 19:01:22 2024] nf_conntrack: nf_conntrack: table full, dropping packet
[root@ingress-7 ~]# sysctl net.netfilter.nf_conntrack_count net.netfilter.nf_conntrack_max
net.netfilter.nf_conntrack_count = 131058
net.netfilter.nf_conntrack_max = 131072
[root@ingress-7 ~]# conntrack -S
cpu=0   	found=48117 invalid=2901 insert=0 insert_failed=0 drop=18823 early_drop=1045 error=0 search_restart=73921 clash_resolve=12 chaintoolong=0 
cpu=1   	found=47702 invalid=2877 insert=0 insert_failed=0 drop=18310 early_drop=998 error=0 search_restart=72204 clash_resolve=9 chaintoolong=0 
[root@ingress-7 ~]# curl -s -o /dev/null -m 3 -w '%{http_code}\\n' http://10.233.41.7:8080/healthz
000
[root@ingress-7 ~]# curl -sS -m 3 http://10.233.41.7:8080/healthz
curl: (28) Connection timed out after 3001 milliseconds
"""
    Path(T + 'b15_conntrack_full.txt').write_text(text)

    # ---- B16 INVALID
    text=f"""Uploads of large objects to MinIO through its Service fail with "connection reset by peer"
after a few hundred MB (k8s v1.14.10, flannel). Small objects are fine.

ops@node-04:~$ kubectl -n media logs backup-agent-7c5f6d9b4-p2xq8 --tail=2
2024-03-04T22:11:09.480Z	ERROR	upload failed	{{"object": "pg-base-20240304.tar", "error": "Put \\"http://minio.media.svc:9000/backups/pg-base-20240304.tar?partNumber=37&uploadId=9c1e\\": read tcp 10.244.3.18:51522->10.101.44.9:9000: read: connection reset by peer"}}
2024-03-04T22:11:39.902Z	ERROR	upload failed	{{"object": "pg-base-20240304.tar", "error": "Put \\"http://minio.media.svc:9000/backups/pg-base-20240304.tar?partNumber=41&uploadId=9c1e\\": read tcp 10.244.3.18:51760->10.101.44.9:9000: read: connection reset by peer"}}
ops@node-04:~$ sudo sysctl net.netfilter.nf_conntrack_tcp_be_liberal
net.netfilter.nf_conntrack_tcp_be_liberal = 0
ops@node-04:~$ sudo conntrack -S
cpu=0   	found=0 invalid=184233 ignore=2101774 insert=0 insert_failed=0 drop=0 early_drop=0 error=3 search_restart=912 
cpu=1   	found=0 invalid=179914 ignore=2088051 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=887 
ops@node-04:~$ ip addr
{t('invalid-rst','node-04','ip-addr.txt')}
ops@node-04:~$ ip route
{t('invalid-rst','node-04','ip-route.txt')}
ops@node-04:~$ sudo iptables-save
{t('invalid-rst','node-04','iptables-save.txt')}
"""
    Path(T + 'b16_invalid_rst.txt').write_text(text)

    # ---- B17 DNS 5s
    pods=table([["NAME","READY","STATUS","RESTARTS","AGE","IP","NODE","NOMINATED NODE","READINESS GATES"],
     ["api-7d9c8b6f4-lm2xq","1/1","Running","0","3d","10.36.4.21","dev-w5","<none>","<none>"]])
    svc=table([["NAME","TYPE","CLUSTER-IP","EXTERNAL-IP","PORT(S)","AGE"],
     ["kube-dns","ClusterIP","10.152.183.10","<none>","53/UDP,53/TCP,9153/TCP","96d"]])
    ep=table([["NAME","ENDPOINTS","AGE"],["kube-dns","10.36.1.5:53,10.36.2.9:53,10.36.1.5:53 + 3 more...","96d"]])
    text=f"""Our p99 latency has a spike at exactly 5 s. Only calls that resolve a name are affected.

dev@ops:~$ kubectl -n kube-system get svc kube-dns
{svc}
dev@ops:~$ kubectl -n kube-system get ep kube-dns
{ep}
dev@ops:~$ kubectl get pods -o wide
{pods}
dev@ops:~$ kubectl exec api-7d9c8b6f4-lm2xq -- cat /etc/resolv.conf
search default.svc.cluster.local svc.cluster.local cluster.local
nameserver 10.152.183.10
options ndots:5
dev@ops:~$ kubectl exec api-7d9c8b6f4-lm2xq -- sh -c 'time getent hosts orders.default.svc.cluster.local'
10.152.183.77   orders.default.svc.cluster.local
real	0m5.013s
user	0m0.001s
sys	0m0.002s
dev@ops:~$ ssh dev-w5
dev@dev-w5:~$ sudo conntrack -S
cpu=0   	found=112 invalid=31 insert=0 insert_failed=1873 drop=1873 early_drop=0 error=0 search_restart=401 clash_resolve=0 chaintoolong=0 
cpu=1   	found=98 invalid=22 insert=0 insert_failed=1790 drop=1790 early_drop=0 error=0 search_restart=388 clash_resolve=0 chaintoolong=0 
"""
    Path(T + 'b17_dns_5s.txt').write_text(text)

    # ---- C19 stale UDP conntrack
    eps=table([["NAME","ENDPOINTS","AGE"],["rsyslog","10.244.2.21:514","41d"]])
    svc=table([["NAME","TYPE","CLUSTER-IP","EXTERNAL-IP","PORT(S)","AGE"],["rsyslog","ClusterIP","10.96.118.52","<none>","514/UDP","41d"]])
    text=f"""Since the rsyslog pod was rescheduled this morning, the appliance-gateway pod no longer gets its
logs to rsyslog; other senders are fine.

sre@jump:~$ kubectl -n logging get svc rsyslog
{svc}
sre@jump:~$ kubectl -n logging get endpoints rsyslog
{eps}
sre@jump:~$ kubectl -n kube-system logs kube-proxy-8tqzc | tail -2
I0304 07:02:44.918223       1 proxier.go:857] Syncing iptables rules
E0304 07:02:44.941877       1 proxier.go:853] Failed to delete stale service IP 10.96.118.52 connections, error: error deleting connection tracking state for UDP service IP: 10.96.118.52, error: error looking for path of conntrack: exec: "conntrack": executable file not found in $PATH
sre@jump:~$ ssh wk-12
sre@wk-12:~$ sudo conntrack -L -p udp --orig-dst 10.96.118.52
conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.
udp      17 29 src=10.244.2.9 dst=10.96.118.52 sport=46211 dport=514 [UNREPLIED] src=10.244.3.17 dst=10.244.2.9 sport=514 dport=46211 mark=0 use=6
udp      17 29 src=10.244.2.9 dst=10.96.118.52 sport=51877 dport=514 [UNREPLIED] src=10.244.2.21 dst=10.244.2.9 sport=514 dport=51877 mark=0 use=2
"""
    Path(T + 'c19_stale_udp.txt').write_text(text)

    # ---- C20 LXD
    pods=table([["NAME","READY","STATUS","RESTARTS","AGE","IP","NODE","NOMINATED NODE","READINESS GATES"],
     ["cilium-5b7qk","1/1","Running","0","25m","10.161.37.12","lxd-k8s-2","<none>","<none>"],
     ["coredns-78fcd69978-9tb6f","0/1","Running","7","25m","10.0.1.141","lxd-k8s-2","<none>","<none>"],
     ["kube-proxy-w6x9j","0/1","CrashLoopBackOff","9 (2m ago)","25m","10.161.37.12","lxd-k8s-2","<none>","<none>"]])
    text=f"""Trying Kubernetes 1.22 inside LXD containers (Cilium with kube-proxy kept). The second node
never becomes useful: CoreDNS there never gets ready.

ubuntu@lxd-host:~$ kubectl -n kube-system get pods -o wide --field-selector spec.nodeName=lxd-k8s-2
{pods}
ubuntu@lxd-host:~$ kubectl -n kube-system logs kube-proxy-w6x9j --previous
I0304 10:11:52.104873       1 node.go:172] Successfully retrieved node IP: 10.161.37.12
I0304 10:11:52.104932       1 server_others.go:140] Detected node IP 10.161.37.12
I0304 10:11:52.129019       1 server_others.go:206] kube-proxy running in dual-stack mode, IPv4-primary
I0304 10:11:52.129071       1 server_others.go:212] Using iptables Proxier.
I0304 10:11:52.131466       1 server.go:649] Version: v1.22.17
I0304 10:11:52.132181       1 conntrack.go:100] Set sysctl 'net/netfilter/nf_conntrack_max' to 131072
F0304 10:11:52.132234       1 server.go:495] open /proc/sys/net/netfilter/nf_conntrack_max: permission denied
ubuntu@lxd-host:~$ lxc exec lxd-k8s-2 -- bash
root@lxd-k8s-2:~# ip route
{t('kube-proxy-down','lxd-k8s-2','ip-route.txt')}
root@lxd-k8s-2:~# ip addr
{t('kube-proxy-down','lxd-k8s-2','ip-addr.txt')}
root@lxd-k8s-2:~# iptables-save
{t('kube-proxy-down','lxd-k8s-2','iptables-save.txt')}
root@lxd-k8s-2:~# kubectl get svc kubernetes
NAME         TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE
kubernetes   ClusterIP   10.96.0.1    <none>        443/TCP   31m
"""
    Path(T + 'c20_lxd_kube_proxy.txt').write_text(text)

    # ---- C21 IPVS modules
    text="""We switched kube-proxy to IPVS (mode: ipvs in the ConfigMap) and restarted it, but ipvsadm
shows nothing on worker-02 (CentOS 7.9, k8s v1.18.20).

[root@master-01 ~]# kubectl -n kube-system get cm kube-proxy -o yaml | grep mode
    mode: "ipvs"
[root@master-01 ~]# kubectl -n kube-system get pods -o wide | grep kube-proxy
kube-proxy-2xw8c                    1/1     Running   0          4m12s   192.168.10.22   worker-02   <none>           <none>
kube-proxy-qj5tn                    1/1     Running   0          4m15s   192.168.10.11   master-01   <none>           <none>
[root@master-01 ~]# kubectl -n kube-system logs kube-proxy-2xw8c
W0304 06:44:09.112437       1 proxier.go:625] Failed to load kernel module ip_vs with modprobe. You can ignore this message when kube-proxy is running inside container without mounting /lib/modules
W0304 06:44:09.114092       1 proxier.go:625] Failed to load kernel module ip_vs_rr with modprobe. You can ignore this message when kube-proxy is running inside container without mounting /lib/modules
W0304 06:44:09.115784       1 proxier.go:625] Failed to load kernel module ip_vs_wrr with modprobe. You can ignore this message when kube-proxy is running inside container without mounting /lib/modules
W0304 06:44:09.117390       1 proxier.go:625] Failed to load kernel module ip_vs_sh with modprobe. You can ignore this message when kube-proxy is running inside container without mounting /lib/modules
E0304 06:44:09.124811       1 server_others.go:339] can't determine whether to use ipvs proxy, error: IPVS proxier will not be used because the following required kernel modules are not loaded: [ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh]
I0304 06:44:09.131029       1 server_others.go:186] Using iptables Proxier.
I0304 06:44:09.131462       1 server.go:583] Version: v1.18.20
[root@master-01 ~]# ssh worker-02
[root@worker-02 ~]# lsmod
Module                  Size  Used by
xt_statistic           12601  3 
xt_nat                 12681  12 
veth                   13458  0 
vxlan                  49678  0 
ip6_udp_tunnel         12755  1 vxlan
udp_tunnel             14423  1 vxlan
xt_comment             12504  31 
xt_mark                12563  5 
iptable_nat            12875  1 
nf_nat_ipv4            14115  1 iptable_nat
nf_nat                 26583  2 xt_nat,nf_nat_ipv4
nf_conntrack_ipv4      15053  3 
nf_defrag_ipv4         12729  1 nf_conntrack_ipv4
br_netfilter           22256  0 
bridge                151336  1 br_netfilter
stp                    12976  1 bridge
llc                    14552  2 stp,bridge
overlay                71964  6 
[root@worker-02 ~]# ipvsadm -Ln
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
"""
    Path(T + 'c21_ipvs_modules.txt').write_text(text)

    # ---- C23 IPVS stalls
    text="""Clients of the orders Service see ~1 s extra latency on some requests, and after a rolling
update some connections hang for minutes (IPVS mode, CentOS 7.9, kernel 3.10).

[root@k8s-n3 ~]# uname -r
3.10.0-1160.105.1.el7.x86_64
[root@k8s-n3 ~]# sysctl net.ipv4.vs.conn_reuse_mode net.ipv4.vs.expire_nodest_conn net.ipv4.vs.expire_quiescent_template
net.ipv4.vs.conn_reuse_mode = 1
net.ipv4.vs.expire_nodest_conn = 0
net.ipv4.vs.expire_quiescent_template = 0
[root@k8s-n3 ~]# ipvsadm -Ln -t 10.96.201.14:8080
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.96.201.14:8080 rr
  -> 10.244.5.33:8080             Masq    1      14         377       
  -> 10.244.6.12:8080             Masq    0      9          1204      
  -> 10.244.7.40:8080             Masq    1      12         391       
[root@k8s-n3 ~]# for i in 1 2 3; do curl -s -o /dev/null -w 'connect: %{time_connect}\\n' http://10.96.201.14:8080/ping; done
connect: 0.001121
connect: 1.003126
connect: 0.000987
"""
    Path(T + 'c23_ipvs_stalls.txt').write_text(text)

    # ---- C24 localhost NodePort
    text=f"""After applying the CIS benchmark profile, the health check that calls the NodePort on localhost
hangs on kube-node-2; calling the node IP works (kubespray, Calico, v1.28.6).

deploy@kube-node-2:~$ curl -sS -m 5 http://127.0.0.1:30080/
curl: (28) Connection timed out after 5001 milliseconds
deploy@kube-node-2:~$ curl -sS -m 5 -o /dev/null -w '%{{http_code}}\\n' http://10.30.0.22:30080/
200
deploy@kube-node-2:~$ sudo sysctl net.ipv4.conf.all.route_localnet net.ipv4.ip_forward
net.ipv4.conf.all.route_localnet = 0
net.ipv4.ip_forward = 1
deploy@kube-node-2:~$ ip addr
{t('localhost-nodeport','kube-node-2','ip-addr.txt')}
deploy@kube-node-2:~$ ip route
{t('localhost-nodeport','kube-node-2','ip-route.txt')}
deploy@kube-node-2:~$ sudo iptables-save
{t('localhost-nodeport','kube-node-2','iptables-save.txt')}
"""
    Path(T + 'c24_localhost_nodeport.txt').write_text(text)

    # ---- C28 hostPort
    text=f"""The metrics agent DaemonSet publishes hostPort 9100; on lab-w2 nothing answers on it
(k8s 1.29, Calico 3.27 installed from a hand-edited manifest).

me@laptop:~$ kubectl -n monitoring describe pod node-agent-xk4q2
Name:             node-agent-xk4q2
Namespace:        monitoring
Priority:         0
Service Account:  node-agent
Node:             lab-w2/10.20.0.12
Start Time:       Mon, 04 Mar 2024 09:31:07 +0100
Labels:           app=node-agent
Status:           Running
IP:               10.85.27.197
IPs:
  IP:           10.85.27.197
Controlled By:  DaemonSet/node-agent
Containers:
  node-agent:
    Container ID:   containerd://6f2a1e0c9b8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f
    Image:          quay.io/prometheus/node-exporter:v1.7.0
    Image ID:       quay.io/prometheus/node-exporter@sha256:4cb2b9019f1757be8482419002cb7afe028fdba35d47958829e4cfeaf6246d80
    Port:           9100/TCP
    Host Port:      9100/TCP
    State:          Running
      Started:      Mon, 04 Mar 2024 09:31:09 +0100
    Ready:          True
    Restart Count:  0
    Environment:    <none>
Conditions:
  Type              Status
  Initialized       True 
  Ready             True 
  ContainersReady   True 
  PodScheduled      True 
Events:             <none>
me@laptop:~$ curl -sS -m 3 http://10.20.0.12:9100/metrics
curl: (7) Failed to connect to 10.20.0.12 port 9100 after 2 ms: Connection refused
me@laptop:~$ ssh lab-w2
me@lab-w2:~$ cat /etc/cni/net.d/10-calico.conflist
{{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {{
      "type": "calico",
      "log_level": "info",
      "datastore_type": "kubernetes",
      "nodename": "lab-w2",
      "mtu": 1450,
      "ipam": {{
          "type": "calico-ipam"
      }},
      "policy": {{
          "type": "k8s"
      }},
      "kubernetes": {{
          "kubeconfig": "/etc/cni/net.d/calico-kubeconfig"
      }}
    }},
    {{
      "type": "bandwidth",
      "capabilities": {{"bandwidth": true}}
    }}
  ]
}}
me@lab-w2:~$ ip addr
{t('hostport','lab-w2','ip-addr.txt')}
me@lab-w2:~$ ip route
{t('hostport','lab-w2','ip-route.txt')}
me@lab-w2:~$ sudo iptables-save
{t('hostport','lab-w2','iptables-save.txt')}
"""
    Path(T + 'c28_hostport_no_portmap.txt').write_text(text)

    # The first four, built from the same captures, are also golden scenarios.
    build_extra()
    for name, scenario in (("b12_firewalld_centos7.txt", "b12-firewalld-centos7"),
                           ("c18_vagrant_no_cluster_cidr.txt", "c18-vagrant-no-cluster-cidr"),
                           ("c27_selector_mismatch_eks.txt", "c27-selector-mismatch-eks"),
                           ("b14_debian10_legacy_split.txt", "b14-debian10-legacy-split")):
        (SCEN / scenario).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(T + name, SCEN / scenario / "input.txt")


def build_extra() -> None:
    nodes = table([["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"],
                   ["cent-k8s-m1", "Ready", "control-plane,master", "47d", "v1.20.15", "192.168.122.50", "<none>", "CentOS Linux 7 (Core)", "3.10.0-1160.102.1.el7.x86_64", "docker://20.10.24"],
                   ["cent-k8s-w1", "Ready", "<none>", "47d", "v1.20.15", "192.168.122.51", "<none>", "CentOS Linux 7 (Core)", "3.10.0-1160.102.1.el7.x86_64", "docker://20.10.24"],
                   ["cent-k8s-w2", "Ready", "<none>", "47d", "v1.20.15", "192.168.122.52", "<none>", "CentOS Linux 7 (Core)", "3.10.0-1160.102.1.el7.x86_64", "docker://20.10.24"]])
    pods = table([["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
                  ["default", "busybox-6b8d7c5f9-xj2lq", "1/1", "Running", "0", "3h12m", "10.244.1.6", "cent-k8s-w1", "<none>", "<none>"],
                  ["default", "inventory-5d9f8c6b7-r4t9m", "1/1", "Running", "0", "2d", "10.244.2.7", "cent-k8s-w2", "<none>", "<none>"],
                  ["kube-flannel", "kube-flannel-ds-2kq7v", "1/1", "Running", "0", "47d", "192.168.122.51", "cent-k8s-w1", "<none>", "<none>"],
                  ["kube-flannel", "kube-flannel-ds-b8w4n", "1/1", "Running", "0", "47d", "192.168.122.52", "cent-k8s-w2", "<none>", "<none>"],
                  ["kube-flannel", "kube-flannel-ds-p6zxd", "1/1", "Running", "0", "47d", "192.168.122.50", "cent-k8s-m1", "<none>", "<none>"],
                  ["kube-system", "coredns-74ff55c5b-9k7dn", "1/1", "Running", "0", "47d", "10.244.0.4", "cent-k8s-m1", "<none>", "<none>"],
                  ["kube-system", "coredns-74ff55c5b-tw2vq", "1/1", "Running", "0", "9d", "10.244.2.3", "cent-k8s-w2", "<none>", "<none>"]])
    text = f"""Ticket INC-20931: since the OS patch night, pods on cent-k8s-w1 cannot reach pods on the
other workers. The app pod says "No route to host". Nothing in Kubernetes changed.

[root@cent-k8s-m1 ~]# kubectl get nodes -o wide
{nodes}
[root@cent-k8s-m1 ~]# kubectl get pods -A -o wide
{pods}
[root@cent-k8s-m1 ~]# kubectl exec busybox-6b8d7c5f9-xj2lq -- wget -qO- -T 5 http://10.244.2.7:8080/healthz
wget: can't connect to remote host (10.244.2.7): No route to host
command terminated with exit code 1
[root@cent-k8s-m1 ~]# ssh cent-k8s-w1
Last login: Mon Mar  4 08:02:17 2024 from 192.168.122.50
[root@cent-k8s-w1 ~]# systemctl is-active firewalld
active
[root@cent-k8s-w1 ~]# firewall-cmd --get-active-zones
public
  interfaces: eth0
[root@cent-k8s-w1 ~]# ip addr
{t('firewalld', 'cent-k8s-w1', 'ip-addr.txt')}
[root@cent-k8s-w1 ~]# ip route
{t('firewalld', 'cent-k8s-w1', 'ip-route.txt')}
[root@cent-k8s-w1 ~]# iptables-save
{t('firewalld', 'cent-k8s-w1', 'iptables-save.txt')}
[root@cent-k8s-w1 ~]# 
"""
    Path(T + "b12_firewalld_centos7.txt").write_text(text)

    nodes = table([["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"],
                   ["kmaster", "Ready", "master", "6d", "v1.18.20", "192.168.50.10", "<none>", "Ubuntu 18.04.6 LTS", "4.15.0-213-generic", "docker://19.3.15"],
                   ["knode1", "Ready", "<none>", "6d", "v1.18.20", "192.168.50.11", "<none>", "Ubuntu 18.04.6 LTS", "4.15.0-213-generic", "docker://19.3.15"]])
    pods = table([["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
                  ["ingress-nginx", "ingress-nginx-controller-9xw2d", "0/1", "CrashLoopBackOff", "9", "31m", "192.168.50.11", "knode1", "<none>", "<none>"],
                  ["kube-system", "coredns-66bff467f8-4qpmt", "1/1", "Running", "0", "6d", "10.244.0.2", "kmaster", "<none>", "<none>"],
                  ["kube-system", "coredns-66bff467f8-zl6hs", "1/1", "Running", "0", "6d", "10.244.0.3", "kmaster", "<none>", "<none>"],
                  ["kube-system", "kube-flannel-ds-amd64-7ctgw", "1/1", "Running", "0", "6d", "192.168.50.11", "knode1", "<none>", "<none>"],
                  ["kube-system", "kube-flannel-ds-amd64-kq4mr", "1/1", "Running", "0", "6d", "192.168.50.10", "kmaster", "<none>", "<none>"],
                  ["kube-system", "kube-proxy-jv8sd", "1/1", "Running", "0", "6d", "192.168.50.11", "knode1", "<none>", "<none>"],
                  ["kube-system", "kube-proxy-x5l2c", "1/1", "Running", "0", "6d", "192.168.50.10", "kmaster", "<none>", "<none>"]])
    svc = table([["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
                 ["default", "kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP", "6d"],
                 ["kube-system", "kube-dns", "ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP,9153/TCP", "6d"]])
    ep = table([["NAME", "ENDPOINTS", "AGE"], ["kubernetes", "192.168.50.10:6443", "6d"]])
    text = f"""Vagrant + VirtualBox lab (2 VMs, eth0 = NAT, eth1 = host-only 192.168.50.0/24), kubeadm
1.18, flannel with --iface=eth1, kube-proxy deployed from our own manifest. The ingress
controller (hostNetwork) on knode1 never comes up.

vagrant@kmaster:~$ kubectl get nodes -o wide
{nodes}
vagrant@kmaster:~$ kubectl get pods -A -o wide
{pods}
vagrant@kmaster:~$ kubectl get svc -A
{svc}
vagrant@kmaster:~$ kubectl get ep kubernetes
{ep}
vagrant@kmaster:~$ kubectl -n ingress-nginx logs ingress-nginx-controller-9xw2d
-------------------------------------------------------------------------------
NGINX Ingress controller
  Release:       v0.35.0
  Build:         54ad65e32bcab32791ab18531a838d1c0f0811ef
  Repository:    https://github.com/kubernetes/ingress-nginx
  nginx version: nginx/1.19.2

-------------------------------------------------------------------------------

W0304 08:31:05.617902       6 client_config.go:552] Neither --kubeconfig nor --master was specified.  Using the inClusterConfig.  This might not work.
I0304 08:31:05.618107       6 main.go:231] Creating API client for https://10.96.0.1:443
F0304 08:31:35.619644       6 main.go:122] error while initiating a connection to the Kubernetes API server. This could mean the cluster is misconfigured (e.g. it has invalid API server certificates or Service Accounts configuration). Reason: Get "https://10.96.0.1:443/version?timeout=32s": dial tcp 10.96.0.1:443: i/o timeout
vagrant@kmaster:~$ kubectl -n kube-system logs kube-proxy-jv8sd
I0226 07:12:44.206318       1 node.go:136] Successfully retrieved node IP: 192.168.50.11
I0226 07:12:44.206387       1 server_others.go:186] Using iptables Proxier.
W0226 07:12:44.206398       1 server_others.go:436] detect-local-mode set to ClusterCIDR, but no cluster CIDR defined
I0226 07:12:44.206404       1 server_others.go:447] detect-local-mode: ClusterCIDR , defaulting to no-op detect-local
I0226 07:12:44.206795       1 server.go:583] Version: v1.18.20
I0226 07:12:44.207319       1 conntrack.go:52] Setting nf_conntrack_max to 131072
I0226 07:12:44.207614       1 config.go:315] Starting service config controller
I0226 07:12:44.207633       1 shared_informer.go:223] Waiting for caches to sync for service config
vagrant@kmaster:~$ kubectl -n kube-system get cm kube-proxy -o yaml | grep -n clusterCIDR
14:    clusterCIDR: ""
vagrant@kmaster:~$ ip -4 addr
{t('no-cluster-cidr', 'kmaster', 'ip-addr.txt')}
vagrant@kmaster:~$ vagrant ssh knode1 2>/dev/null || ssh knode1
vagrant@knode1:~$ ip addr
{t('no-cluster-cidr', 'knode1', 'ip-addr.txt')}
vagrant@knode1:~$ ip route
{t('no-cluster-cidr', 'knode1', 'ip-route.txt')}
vagrant@knode1:~$ sudo iptables-save
{t('no-cluster-cidr', 'knode1', 'iptables-save.txt')}
vagrant@knode1:~$ curl -sk -m 5 https://10.96.0.1/version
curl: (28) Connection timed out after 5001 milliseconds
"""
    Path(T + "c18_vagrant_no_cluster_cidr.txt").write_text(text)

    pods = table([["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
                  ["frontend-7b9c6d8f5-kx2pw", "1/1", "Running", "0", "19m", "10.244.2.21", "deb-w2", "<none>", "<none>"],
                  ["toolbox", "1/1", "Running", "0", "12m", "10.244.1.5", "deb-w1", "<none>", "<none>"]])
    text = f"""After reinstalling deb-w1 with Debian 10 (buster) and re-joining it (kubeadm 1.16.15,
Docker 19.03, flannel 0.11), pods on deb-w1 can't reach anything outside the node. The other
workers are still on Debian 9.

admin@deb-cp:~$ kubectl get pods -o wide
{pods}
admin@deb-cp:~$ kubectl exec toolbox -- curl -sS -m 5 http://10.103.7.44/
curl: (28) Connection timed out after 5001 milliseconds
command terminated with exit code 28
admin@deb-cp:~$ ssh deb-w1
admin@deb-w1:~$ sudo iptables -V
{t('legacy-split', 'deb-w1', 'iptables-V.txt')}
admin@deb-w1:~$ ip route
{t('legacy-split', 'deb-w1', 'ip-route.txt')}
admin@deb-w1:~$ ip addr
{t('legacy-split', 'deb-w1', 'ip-addr.txt')}
admin@deb-w1:~$ sudo iptables-nft-save
{t('legacy-split', 'deb-w1', 'iptables-nft-save.txt')}
admin@deb-w1:~$ sudo iptables-legacy-save
{t('legacy-split', 'deb-w1', 'iptables-legacy-save.txt')}
"""
    Path(T + "b14_debian10_legacy_split.txt").write_text(text)

    svc = table([["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"],
                 ["payments-api", "ClusterIP", "10.100.214.37", "<none>", "8080/TCP", "3d4h", "app=payments-api,tier=backend"]])
    ep = table([["NAME", "ENDPOINTS", "AGE"], ["payments-api", "<none>", "3d4h"]])
    pods = table([["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES", "LABELS"],
                  ["checkout-5f7d9c8b4-qwx7t", "1/1", "Running", "0", "26h", "192.168.41.77", "ip-192-168-40-12.eu-west-1.compute.internal", "<none>", "<none>", "app=checkout,pod-template-hash=5f7d9c8b4"],
                  ["payments-api-7c9d8b6f5d-4kqzp", "1/1", "Running", "0", "3d4h", "192.168.58.140", "ip-192-168-57-201.eu-west-1.compute.internal", "<none>", "<none>", "app=payment-api,pod-template-hash=7c9d8b6f5d,tier=backend"],
                  ["payments-api-7c9d8b6f5d-x2m8n", "1/1", "Running", "0", "3d4h", "192.168.43.9", "ip-192-168-40-12.eu-west-1.compute.internal", "<none>", "<none>", "app=payment-api,pod-template-hash=7c9d8b6f5d,tier=backend"]])
    text = f"""Checkout is failing with 502s since this morning's release of payments-api (we renamed
the chart). EKS 1.27, VPC CNI, kube-proxy iptables mode.

[ec2-user@ip-172-31-9-40 ~]$ kubectl -n payments exec deploy/checkout -- curl -sS -m 3 http://payments-api:8080/healthz
curl: (7) Failed to connect to payments-api port 8080: Connection refused
command terminated with exit code 7
[ec2-user@ip-172-31-9-40 ~]$ kubectl -n payments exec deploy/checkout -- nslookup payments-api
Server:		10.100.0.10
Address:	10.100.0.10:53

Name:	payments-api.payments.svc.cluster.local
Address: 10.100.214.37

[ec2-user@ip-172-31-9-40 ~]$ kubectl -n payments get svc payments-api -o wide
{svc}
[ec2-user@ip-172-31-9-40 ~]$ kubectl -n payments get endpoints payments-api
{ep}
[ec2-user@ip-172-31-9-40 ~]$ kubectl -n payments describe svc payments-api
Name:              payments-api
Namespace:         payments
Labels:            app.kubernetes.io/managed-by=Helm
                   app.kubernetes.io/name=payments-api
Annotations:       meta.helm.sh/release-name: payments-api
                   meta.helm.sh/release-namespace: payments
Selector:          app=payments-api,tier=backend
Type:              ClusterIP
IP Family Policy:  SingleStack
IP Families:       IPv4
IP:                10.100.214.37
IPs:               10.100.214.37
Port:              http  8080/TCP
TargetPort:        8080/TCP
Endpoints:         <none>
Session Affinity:  None
Events:            <none>
[ec2-user@ip-172-31-9-40 ~]$ kubectl -n payments get pods -o wide --show-labels
{pods}
[ec2-user@ip-172-31-9-40 ~]$ kubectl get --raw /api/v1/namespaces/payments/services/payments-api:8080/proxy/healthz
Error from server (ServiceUnavailable): no endpoints available for service "payments-api:8080"
"""
    Path(T + "c27_selector_mismatch_eks.txt").write_text(text)


if __name__ == "__main__":
    main()
