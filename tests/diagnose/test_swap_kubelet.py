# ruff: noqa: E501  (kubectl tables, logs and iptables rules are pasted in their real width)
"""F49: swap enabled → kubelet refuses to run."""

from __future__ import annotations

from netsleuth.diagnose.detectors.swap_kubelet import swap_kubelet
from tests.diagnose.sectiona import causes, run, scenario, transcript


def test_kubelet_journal_with_swap_on() -> None:
    found = causes(run(swap_kubelet, scenario("f49-swap-kubelet")))
    assert [(f.kind, f.node) for f in found] == [("swap-kubelet-down", "worker-3")]
    f = found[0]
    assert {"node-not-ready@worker-3", "kubelet-unreachable@worker-3"} <= set(f.explains)
    assert "conn-error:ECONNREFUSED@worker-3" in f.explains  # the kubelet port refuses
    assert any("/swap.img" in e.text for e in f.evidence)
    assert f.fix[0].command.startswith("swapoff -a")
    assert "Not a network fault" in f.detail


def test_kubeadm_preflight() -> None:
    ev = transcript("""\
root@k8s-node-3:~# kubeadm join 192.168.122.10:6443 --token 9x2kq1.0dz4b7c8e1f2a3b4 --discovery-token-ca-cert-hash sha256:5b1c7e2f9a8d6c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b
[preflight] Running pre-flight checks
error execution phase preflight: [preflight] Some fatal errors occurred:
	[ERROR Swap]: running with swap on is not supported. Please disable swap
[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`
To see the stack trace of this error execute with --v=5 or higher
""")
    found = causes(run(swap_kubelet, ev))
    assert [f.node for f in found] == ["k8s-node-3"]


def test_swap_without_kubelet_complaining_is_not_a_cause() -> None:
    ev = transcript("""\
root@k8s-node-3:~# swapon --show
NAME      TYPE SIZE USED PRIO
/swap.img file   2G   0B   -2
root@k8s-node-3:~# cat /proc/swaps
Filename				Type		Size		Used		Priority
/swap.img                               file		2097148		0		-2
""")
    assert not run(swap_kubelet, ev)
