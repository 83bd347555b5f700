#!/bin/sh
# Regenerate the golden sysctl outputs in this directory from the real kernel.
#
# Builds one network namespace (nsip-sysctl) with a veth whose name contains a dot (sysctl
# prints it with a slash: net.ipv4.conf.veth/7.rp_filter), sets a few routing-relevant values,
# then captures `sysctl` output as root, as an unprivileged user (permission-denied lines) and
# for explicit keys (one of them missing). Only net.* keys are kept to keep the files small.
# Needs root, iproute2, procps sysctl and setpriv. Deletes the namespace when done.
#
#   sudo sh tests/data/sysctl/make_golden.sh
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
N=nsip-sysctl

cleanup() { ip netns del "$N" 2>/dev/null || true; }
trap cleanup EXIT
cleanup

ip netns add "$N"
ip -n "$N" link add veth.7 type veth peer name veth0
ip -n "$N" link set lo up
x() { ip netns exec "$N" "$@"; }
x sysctl -q -w net.ipv4.ip_forward=1
x sysctl -q -w net.ipv4.conf.veth0.rp_filter=2
x sysctl -q -w net/ipv4/conf/veth.7/rp_filter=1  # slash form: the dot is part of the name

# sysctl -a as root, net.* only (nothing goes to stderr as root)
x sysctl -a | grep '^net\.' > "$HERE/sysctl-a-net.txt"
# as nobody: unreadable keys print "sysctl: permission denied on key ..." on stderr; keep both
# streams interleaved as a user pasting a terminal session would
x setpriv --reuid=65534 --regid=65534 --clear-groups sysctl -a 2>&1 \
    | grep -E '^(net\.|sysctl: )' > "$HERE/sysctl-a-nobody.txt"
# explicit keys, one missing ("sysctl: cannot stat ...") and one with a tab-separated value
x sysctl net.ipv4.ip_forward net.ipv4.no_such_key net.ipv4.ip_local_port_range \
    net.ipv4.conf.all.rp_filter 'net.ipv4.conf.veth/7.rp_filter' > "$HERE/sysctl-keys.txt" 2>&1 || true
echo "golden sysctl outputs written to $HERE"
