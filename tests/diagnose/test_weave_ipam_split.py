# ruff: noqa: E501  (kubectl tables and logs are pasted in their real width)
"""D41: Weave Net IPAM split-brain (weave 2.8.1 connection errors)."""

from __future__ import annotations

from tests.diagnose.cnidns import ev_transcript, kinds, run, shell, transcript

PODS = """NAME              READY   STATUS    RESTARTS       AGE    IP             NODE    NOMINATED NODE   READINESS GATES
weave-net-5m2kx   2/2     Running   1 (3d ago)     210d   192.168.1.11   node1   <none>           <none>
weave-net-8qz7d   2/2     Running   0              12m    192.168.1.13   node3   <none>           <none>
weave-net-tl4c9   2/2     Running   2 (40d ago)    210d   192.168.1.12   node2   <none>           <none>"""

NODE3_LOG = """INFO: 2024/05/18 06:41:02.381204 Command line options: map[conn-limit:200 datapath:datapath db-prefix:/weavedb/weave-net docker-api: expect-npc:true http-addr:127.0.0.1:6784 ipalloc-init:consensus=3 ipalloc-range:10.32.0.0/12 metrics-addr:0.0.0.0:6782 name:7a:2f:11:09:c4:de nickname:node3 no-dns:true no-masq-local:true port:6783]
INFO: 2024/05/18 06:41:02.512771 ->[192.168.1.11:6783|a6:7e:0f:31:9b:22(node1)]: connection shutting down due to error: IP allocation was seeded by different peers (received: [a6:7e:0f:31:9b:22(node1) ce:3c:5e:2a:71:08(node2)], ours: [7a:2f:11:09:c4:de(node3)])
INFO: 2024/05/18 06:41:02.530418 ->[192.168.1.12:6783|ce:3c:5e:2a:71:08(node2)]: connection shutting down due to error: IP allocation was seeded by different peers (received: [a6:7e:0f:31:9b:22(node1) ce:3c:5e:2a:71:08(node2)], ours: [7a:2f:11:09:c4:de(node3)])"""


def test_minority_side_is_named_with_its_reset() -> None:
    text = transcript(
        shell("node1", "kubectl -n kube-system get pods -l name=weave-net -o wide", PODS),
        shell("node1", "kubectl -n kube-system logs weave-net-8qz7d -c weave | tail -3", NODE3_LOG),
    )
    found = run(ev_transcript(text), "D41")
    assert kinds(found) == [("weave-ipam-split", "node3")]
    f = found[0]
    assert "node1" in f.title and "node2" in f.title
    assert f.fix[0].command.startswith("on node3: rm /var/lib/weave/weave-netdata.db")
    assert "weave-net-8qz7d" in f.fix[0].command


def test_quiet_when_connections_are_fine() -> None:
    log = "INFO: 2024/05/18 06:41:03.002211 ->[192.168.1.11:6783|a6:7e:0f:31:9b:22(node1)]: connection fully established"
    text = transcript(shell("node1", "kubectl -n kube-system logs weave-net-8qz7d -c weave", log))
    assert run(ev_transcript(text), "D41") == []
