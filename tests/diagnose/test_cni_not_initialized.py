# ruff: noqa: E501  (kubectl tables and logs are pasted in their real width)
"""D29: CNI not initialized (NetworkPluginNotReady)."""

from __future__ import annotations

from tests.diagnose.cnidns import ev_transcript, kinds, report, run, shell, transcript

NODES_FRESH = """NAME        STATUS     ROLES           AGE     VERSION
kube-ctl1   NotReady   control-plane   6m12s   v1.30.1"""

DESCRIBE_FRESH = """Name:               kube-ctl1
Roles:              control-plane
Labels:             kubernetes.io/hostname=kube-ctl1
                    node-role.kubernetes.io/control-plane=
Annotations:        kubeadm.alpha.kubernetes.io/cri-socket: unix:///var/run/containerd/containerd.sock
CreationTimestamp:  Mon, 13 May 2024 07:41:22 +0000
Taints:             node-role.kubernetes.io/control-plane:NoSchedule
                    node.kubernetes.io/not-ready:NoSchedule
Unschedulable:      false
Conditions:
  Type             Status  LastHeartbeatTime                 LastTransitionTime                Reason                       Message
  ----             ------  -----------------                 ------------------                ------                       -------
  MemoryPressure   False   Mon, 13 May 2024 07:47:30 +0000   Mon, 13 May 2024 07:41:20 +0000   KubeletHasSufficientMemory   kubelet has sufficient memory available
  DiskPressure     False   Mon, 13 May 2024 07:47:30 +0000   Mon, 13 May 2024 07:41:20 +0000   KubeletHasNoDiskPressure     kubelet has no disk pressure
  PIDPressure      False   Mon, 13 May 2024 07:47:30 +0000   Mon, 13 May 2024 07:41:20 +0000   KubeletHasSufficientPID      kubelet has sufficient PID available
  Ready            False   Mon, 13 May 2024 07:47:30 +0000   Mon, 13 May 2024 07:41:20 +0000   KubeletNotReady              container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized
Addresses:
  InternalIP:  10.10.40.21
  Hostname:    kube-ctl1
System Info:
  Kernel Version:             6.8.0-31-generic
  OS Image:                   Ubuntu 24.04 LTS
  Container Runtime Version:  containerd://1.7.12
  Kubelet Version:            v1.30.1
  Kube-Proxy Version:         v1.30.1
PodCIDR:                      10.244.0.0/24
PodCIDRs:                     10.244.0.0/24
Events:                       <none>"""

PODS_FRESH = """NAMESPACE     NAME                                READY   STATUS    RESTARTS   AGE
kube-system   coredns-7db6d8ff4d-6xkrm            0/1     Pending   0          6m
kube-system   coredns-7db6d8ff4d-tq2lz            0/1     Pending   0          6m
kube-system   etcd-kube-ctl1                      1/1     Running   0          6m
kube-system   kube-apiserver-kube-ctl1            1/1     Running   0          6m
kube-system   kube-controller-manager-kube-ctl1   1/1     Running   0          6m
kube-system   kube-proxy-8z4vd                    1/1     Running   0          6m
kube-system   kube-scheduler-kube-ctl1            1/1     Running   0          6m"""

JOURNAL_FRESH = """May 13 07:47:31 kube-ctl1 kubelet[1673]: E0513 07:47:31.093451    1673 kubelet.go:2900] "Container runtime network not ready" networkReady="NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
May 13 07:47:36 kube-ctl1 kubelet[1673]: E0513 07:47:36.095021    1673 kubelet.go:2900] "Container runtime network not ready" networkReady="NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized\""""


def fresh() -> str:
    return transcript(
        "Fresh kubeadm v1.30 control plane, node stays NotReady and CoreDNS Pending.",
        shell("kube-ctl1", "kubectl get nodes", NODES_FRESH, user="ops"),
        shell("kube-ctl1", "kubectl describe node kube-ctl1", DESCRIBE_FRESH, user="ops"),
        shell("kube-ctl1", "kubectl get pods -A", PODS_FRESH, user="ops"),
        shell("kube-ctl1", "sudo journalctl -u kubelet --no-pager | tail -2", JOURNAL_FRESH, user="ops"),
    )


def test_no_cni_installed_is_the_cause_and_explains_notready_and_dns() -> None:
    found = run(ev_transcript(fresh()), "D29")
    causes = [f for f in found if f.role == "cause"]
    assert kinds(causes) == [("cni-not-installed", "kube-ctl1")]
    assert causes[0].confidence >= 0.8
    assert "10.244.0.0/24" in causes[0].fix[0].command or "flannel" in causes[0].fix[0].command
    r = report(ev_transcript(fresh()))
    first = r.causes[0]
    assert first.finding.kind == "cni-not-installed"
    explained = {f.key for f in first.explained}
    assert {"cni-uninitialized@kube-ctl1", "node-not-ready@kube-ctl1"} <= explained


PODS_CILIUM = """NAMESPACE     NAME                               READY   STATUS    RESTARTS   AGE   IP              NODE       NOMINATED NODE   READINESS GATES
kube-system   cilium-5hlwq                       1/1     Running   0          40d   172.18.30.11    worker-1   <none>           <none>
kube-system   cilium-9bq4c                       1/1     Running   0          40d   172.18.30.10    master-1   <none>           <none>
kube-system   cilium-operator-6c8d6b8f7d-gx4rt   1/1     Running   0          40d   172.18.30.10    master-1   <none>           <none>
kube-system   coredns-5d78c9869d-j7vwd           1/1     Running   0          40d   10.0.1.14       worker-1   <none>           <none>
ml            trainer-7f6d9c8b5-2kq8w            0/1     Pending   0          12m   <none>          gpu-01     <none>           <none>"""

NODES_CILIUM = """NAME       STATUS     ROLES           AGE   VERSION   INTERNAL-IP    EXTERNAL-IP   OS-IMAGE             KERNEL-VERSION       CONTAINER-RUNTIME
gpu-01     NotReady   <none>          14m   v1.27.6   172.18.30.40   <none>        Ubuntu 22.04.4 LTS   5.15.0-107-generic   containerd://1.6.31
master-1   Ready      control-plane   40d   v1.27.6   172.18.30.10   <none>        Ubuntu 22.04.4 LTS   5.15.0-107-generic   containerd://1.6.31
worker-1   Ready      <none>          40d   v1.27.6   172.18.30.11   <none>        Ubuntu 22.04.4 LTS   5.15.0-107-generic   containerd://1.6.31"""

DESCRIBE_GPU = """Name:               gpu-01
Roles:              <none>
Labels:             kubernetes.io/hostname=gpu-01
                    nvidia.com/gpu.present=true
Annotations:        kubeadm.alpha.kubernetes.io/cri-socket: unix:///var/run/containerd/containerd.sock
CreationTimestamp:  Tue, 14 May 2024 09:02:41 +0000
Taints:             nvidia.com/gpu=present:NoSchedule
                    node.kubernetes.io/not-ready:NoSchedule
Conditions:
  Type             Status  LastHeartbeatTime                 LastTransitionTime                Reason                       Message
  ----             ------  -----------------                 ------------------                ------                       -------
  Ready            False   Tue, 14 May 2024 09:16:10 +0000   Tue, 14 May 2024 09:02:41 +0000   KubeletNotReady              container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized
Addresses:
  InternalIP:  172.18.30.40
  Hostname:    gpu-01
PodCIDR:                      10.0.3.0/24
Events:                       <none>"""


def test_agent_not_scheduled_on_the_tainted_node() -> None:
    text = transcript(
        shell("master-1", "kubectl get nodes -o wide", NODES_CILIUM),
        shell("master-1", "kubectl get pods -A -o wide", PODS_CILIUM),
        shell("master-1", "kubectl describe node gpu-01", DESCRIBE_GPU),
    )
    found = run(ev_transcript(text), "D29")
    causes = [f for f in found if f.role == "cause"]
    assert kinds(causes) == [("cni-agent-missing-on-node", "gpu-01")]
    assert "nvidia.com/gpu=present:NoSchedule" in causes[0].detail
    assert "daemonset cilium" in causes[0].fix[0].command


def test_failing_agent_is_not_blamed_on_the_cni_config() -> None:
    pods = """NAMESPACE     NAME                READY   STATUS             RESTARTS      AGE   IP            NODE    NOMINATED NODE   READINESS GATES
kube-system   calico-node-7r2xk   0/1     CrashLoopBackOff   7 (95s ago)   14m   10.20.0.12    wk-02   <none>           <none>
kube-system   calico-node-m5q9z   1/1     Running            0             3d    10.20.0.11    wk-01   <none>           <none>"""
    journal = """May 14 10:02:11 wk-02 containerd[812]: time="2024-05-14T10:02:11.402117Z" level=error msg="failed to load cni during init, please check CRI plugin status before setting up network for pods" error="cni config load failed: no network config found in /etc/cni/net.d: cni plugin not initialized: failed to load cni config\""""
    text = transcript(
        shell("wk-01", "kubectl get pods -A -o wide", pods),
        shell("wk-02", "journalctl -u containerd --no-pager | tail -1", journal),
    )
    found = run(ev_transcript(text), "D29")
    assert [f for f in found if f.role == "cause"] == []
    agent = [f for f in found if f.key == "cni-agent-not-ready@wk-02"]
    assert agent and "cni-uninitialized@wk-02" in agent[0].explains


def test_ready_nodes_are_quiet() -> None:
    text = transcript(shell("master-1", "kubectl get pods -A -o wide", PODS_CILIUM.replace(
        "ml            trainer-7f6d9c8b5-2kq8w            0/1     Pending   0          12m   <none>          gpu-01     <none>           <none>", "")))
    assert run(ev_transcript(text), "D29") == []
