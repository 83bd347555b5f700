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

`{node}` is `?` when the node is unknown. Cause findings use keys `cause:{kind}@{node}`.
"""
