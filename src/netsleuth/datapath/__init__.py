"""The simulated data path of one node.

Theory of operation
-------------------
A trace follows one packet (the first packet of a new connection) through the same steps the
Linux kernel takes, in the kernel's order, as declared in `hooks.py`:

* locally generated (`iif is None`): the route is looked up when the socket connects, *before*
  any netfilter hook (ip_route_connect); no route means connect() fails and no hook ever sees
  the packet. Then OUTPUT raw → mangle → nat → filter, a re-route when mangle/nat changed the
  destination or mark (ip_route_me_harder), then POSTROUTING mangle → nat.
* received on an interface: PREROUTING raw → mangle → nat, the routing decision (with
  rp_filter and ip_forward), then INPUT (mangle, filter, nat) or FORWARD (mangle, filter) and
  POSTROUTING (mangle, nat).

`statistic` matches fork the trace: every possible path is followed and carries its
probability, so a Service with three endpoints yields three outcomes of 1/3 each. A match the
simulator cannot evaluate also forks the trace, into an "assumed it matched" and an "assumed it
did not" path, both marked uncertain. Nothing here does I/O.
"""
