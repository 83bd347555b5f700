#!/bin/sh
# Regenerate the kernel-routes golden data: apply commands.txt in a fresh namespace and capture
# `ip -j addr`, `ip -j link` and `ip route show table all` (text and JSON). Needs root.
#
#   sudo sh tests/data/iproute2/kernel-routes/make_golden.sh
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
N=nsip-kr-golden
cleanup() { ip netns del "$N" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add "$N"
grep -v '^#' "$HERE/commands.txt" | while read -r line; do
    [ -n "$line" ] || continue
    case "$line" in
        sysctl\ *) ip netns exec "$N" sysctl -q -w "${line#sysctl }" ;;
        *) eval "ip -n $N $line" ;;
    esac
done
ip -n "$N" -j -p addr show > "$HERE/ip-addr.json"
ip -n "$N" addr show > "$HERE/ip-addr.txt"
ip -n "$N" -j -p link show > "$HERE/ip-link.json"
ip -n "$N" -j -p route show table all > "$HERE/ip-route.json"
ip -n "$N" route show table all > "$HERE/ip-route.txt"
echo "kernel-routes golden data written to $HERE"
