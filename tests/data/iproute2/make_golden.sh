#!/bin/sh
# Regenerate the golden iproute2 outputs in this directory from the real kernel.
#
# Builds two network namespaces (nsip-gold, the node under test, and nsip-peer, the far ends of
# its veths), configures links/addresses/routes/rules that exercise every form the parser must
# read, captures `ip` outputs in text and JSON form, then deletes both namespaces.
# Needs root and iproute2. No packet is sent anywhere: only configuration is read back.
#
#   sudo sh tests/data/iproute2/make_golden.sh
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
G=nsip-gold
P=nsip-peer

cleanup() {
    ip netns del "$G" 2>/dev/null || true
    ip netns del "$P" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ip netns add "$G"
ip netns add "$P"
g() { ip -n "$G" "$@"; }

g link set lo up
g addr add 10.255.255.1/32 dev lo                       # a /32 on lo (service VIP style)

# veth0: the "uplink", IPv4 /24 with explicit brd, IPv6 global + link-local
g link add veth0 address 02:00:00:00:00:01 type veth peer name veth0p address 02:00:00:00:01:01 netns "$P"
g link set veth0 mtu 1450 up
ip -n "$P" link set veth0p up
g addr add 192.0.2.1/24 brd + dev veth0
g -6 addr add 2001:db8:1::1/64 dev veth0 nodad

# veth1: secondary address, a labelled address, noprefixroute, an address with a metric
g link add veth1 address 02:00:00:00:00:02 type veth peer name veth1p address 02:00:00:00:01:02 netns "$P"
g link set veth1 up
ip -n "$P" link set veth1p up
g addr add 198.51.100.1/24 dev veth1
g addr add 198.51.100.2/24 dev veth1                     # becomes "secondary"
g addr add 198.51.100.3/24 dev veth1 label veth1:app     # secondary with a label
g addr add 203.0.113.9/28 dev veth1 noprefixroute
g addr add 172.16.5.1/24 dev veth1 metric 50
g addr add 10.9.0.1 peer 10.9.0.2/32 dev veth1           # point-to-point peer address

# a bridge with an enslaved veth
g link add br0 address 02:00:00:00:00:10 type bridge
g link add veth2 address 02:00:00:00:00:03 type veth peer name veth2p address 02:00:00:00:01:03 netns "$P"
g link set veth2 master br0
g link set veth2 up
g link set br0 up
ip -n "$P" link set veth2p up
g addr add 10.20.0.1/16 dev br0

# a vxlan over veth0
g link add vx0 address 02:00:00:00:00:20 type vxlan id 42 dev veth0 local 192.0.2.1 dstport 4789
g link set vx0 up
g addr add 10.30.0.1/24 dev vx0

# a veth whose peer stays down (carrier off): its routes print "linkdown"
g link add veth3 address 02:00:00:00:00:04 type veth peer name veth3p address 02:00:00:00:01:04 netns "$P"
g link set veth3 up
g addr add 10.40.0.1/24 dev veth3

# a bridge that stays administratively down, with an address (this kernel has no dummy)
g link add br1 address 02:00:00:00:00:30 type bridge
g addr add 10.50.0.1/24 dev br1

# ---- routes, main table
g route add default via 192.0.2.254 dev veth0 metric 100
g route add 10.100.0.0/16 proto static \
    nexthop via 192.0.2.254 dev veth0 weight 1 \
    nexthop via 198.51.100.254 dev veth1 weight 3
g route add 10.101.0.0/16 via 172.31.0.1 dev veth0 onlink proto bird
g route add 10.102.0.5 dev veth1 scope link
g route add 10.102.0.6/32 dev veth1 scope link src 198.51.100.1
g route add blackhole 10.103.0.0/16 proto static
g route add unreachable 10.104.0.0/16
g route add prohibit 10.105.0.0/16 metric 7
g route add throw 10.106.0.0/16
g route add 10.107.0.0/16 tos 0x10 dev veth0
g route add 10.107.0.0/16 tos 0x04 dev veth1
g route add 10.108.0.0/16 dev veth3
g route add 10.109.0.0/16 via inet6 fe80::1 dev veth0
g route add 10.110.0.0/16 via 192.0.2.254 dev veth0 mtu lock 1400 advmss 1360 rtt 10ms rttvar 5ms \
    hoplimit 32 initcwnd 10 initrwnd 20 window 65535 congctl lock reno ssthresh 30 realm 5 \
    features ecn quickack 1 fastopen_no_cookie 1 reordering 4 rto_min 200ms cwnd 12
g route add 10.111.0.0/16 via 192.0.2.254 dev veth0 proto 77 src 192.0.2.1 metric 5
g route add multicast 224.1.0.0/16 dev veth0
g nexthop add id 1 via 192.0.2.254 dev veth0
g nexthop add id 2 via 198.51.100.254 dev veth1
g nexthop add id 3 group 1/2,4
g route add 10.112.0.0/16 nhid 1
g route add 10.113.0.0/16 nhid 3

# ---- routes, other tables
g route add default via 198.51.100.254 dev veth1 table 100
g route add 10.60.0.0/16 dev br0 src 10.20.0.1 table 100
g route add throw 10.106.0.0/16 table 100
g route add prohibit default table 200
g route add unreachable 10.70.0.0/16 table 200 metric 3
g route add 10.80.0.0/16 via 192.0.2.254 table default
g route add local 10.200.0.0/24 dev lo table local       # AnyIP-style local range
g route add anycast 10.201.0.1 dev veth0 table local

# ---- IPv6 routes
g -6 route add default via 2001:db8:1::fe dev veth0 metric 1024 pref high
g -6 route add 2001:db8:99::/48 \
    nexthop via fe80::2 dev veth0 weight 1 \
    nexthop via fe80::3 dev veth1 weight 2
g -6 route add blackhole 2001:db8:dead::/48
g -6 route add unreachable 2001:db8:beef::/48
g -6 route add prohibit 2001:db8:cafe::/48
g -6 route add 2001:db8:77::/64 via fe80::9 dev veth0 expires 600 mtu 1280
g -6 route add 2001:db8:88::/64 dev veth1 table 100
g -6 route add 2001:db8:66::1 dev veth1 proto static

# ---- policy rules: every selector and action
g rule add priority 100 from 10.0.0.0/8 to 192.168.0.0/16 lookup 100
g rule add priority 110 not from 10.1.0.0/16 lookup main
g rule add priority 120 iif veth0 lookup 200
g rule add priority 121 iif lo lookup 100
g rule add priority 130 oif veth1 lookup 200
g rule add priority 131 oif nosuchdev0 lookup 200
g rule add priority 140 fwmark 0x4000/0x4000 lookup 100
g rule add priority 141 fwmark 0x10 lookup 100
g rule add priority 150 tos 0x10 lookup 100
g rule add priority 151 tos 0x04 lookup 100
g rule add priority 160 goto 200
g rule add priority 161 goto 9999
g rule add priority 170 nop
g rule add priority 180 from 10.9.0.0/16 blackhole
g rule add priority 190 to 10.8.0.0/16 unreachable
g rule add priority 195 from 10.7.0.0/16 prohibit
g rule add priority 200 lookup main suppress_prefixlength 0
g rule add priority 210 lookup main suppress_ifgroup 5
g rule add priority 220 l3mdev
g rule add priority 230 uidrange 1000-2000 lookup 100
g rule add priority 240 ipproto tcp dport 443 lookup 100
g rule add priority 241 ipproto udp sport 1000-2000 dport 53 lookup 100
g rule add priority 242 ipproto 253 lookup 100
g rule add priority 250 lookup 100 protocol static
g rule add priority 260 from 192.0.2.7 lookup default
g rule add priority 270 not to 10.2.0.0/16 fwmark 0x1/0x1 iif veth1 lookup 100
g -6 rule add priority 100 from 2001:db8::/32 lookup 100
g -6 rule add priority 110 to 2001:db8:99::/48 fwmark 0x2 blackhole
g -6 rule add priority 120 not from 2001:db8:1::/64 lookup main suppress_prefixlength 0

# ---- capture
cap() { # cap NAME CMD...: text output to NAME.txt
    name=$1; shift
    ip -n "$G" "$@" > "$HERE/$name.txt"
}
capj() { # capj NAME CMD...: JSON output to NAME.json (pretty, so objects have line numbers)
    name=$1; shift
    ip -n "$G" -j -p "$@" > "$HERE/$name.json"
}
cap ip-addr addr show
capj ip-addr addr show
cap ip-link link show
cap ip-o-addr -o addr show
cap ip-o-link -o link show
capj ip-link link show
cap ip-d-link -d link show
capj ip-d-link -d link show
cap ip-route route show table all
capj ip-route route show table all
cap ip6-route -6 route show table all
capj ip6-route -6 route show table all
cap ip-route-main route show
cap ip-rule rule show
capj ip-rule rule show
cap ip6-rule -6 rule show
capj ip6-rule -6 rule show
# compact (non-pretty) JSON, as `ip -j` prints it by default
ip -n "$G" -j route show table all > "$HERE/ip-route-compact.json"
ip -n "$G" -j addr show > "$HERE/ip-addr-compact.json"
echo "golden iproute2 outputs written to $HERE"
