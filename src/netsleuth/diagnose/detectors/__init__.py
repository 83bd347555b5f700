"""Detectors: one failure mode per module, registered with `@detector`.

Symptom keys (what findings `explain`), shared by all detectors:

    svc-unreachable:{ERRNO}@{node}   a client on node failed to reach a Service IP
    conn-error:{ERRNO}@{node}        a client on node failed to reach a non-Service address
    cni-agent-not-ready@{node}       the CNI agent (calico-node, flannel, cilium, ...) is down
    sandbox-churn@{node}             pod sandboxes are killed and re-created over and over
    pod-no-ip@{node}                 pods stuck without an IP address
    dns-down                         cluster DNS has no ready endpoint
    dns-errors@{node}                DNS lookups from pods fail
    node-not-ready@{node}            the Node object is NotReady
    cni-uninitialized@{node}         the runtime reports no CNI config (NetworkPluginNotReady)
    bgp-not-established@{node}       the node's Calico BGP sessions with some peers are down
    large-packets-lost@{node}        DF-set packets above some size fail (path MTU)
    stall-63s@{node}                 a timed client took ~63 s (SYN retransmissions)
    dns-nxdomain-flood               CoreDNS answers many NXDOMAINs for search-list expansions
    dns-stall-5s@{node}              name lookups take ~5 s (the resolver's timeout), then work
    kubelet-unreachable@{node}       the apiserver cannot reach the node's kubelet (kubectl
                                     logs/exec/port-forward fail, or hit the wrong kubelet)
    kube-proxy-nodeip-fallback@{node}  kube-proxy runs with nodeIP 127.0.0.1 (its Node not found)

`{node}` is `?` when the node is unknown. Cause findings use keys `cause:{kind}@{node}`
(cluster-wide causes about one Service: `cause:{kind}@{namespace}/{service}`).
"""
