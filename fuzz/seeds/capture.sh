#!/usr/bin/env bash
# Captures the traffic the seed corpora are cut from (run as root; needs bird, gobgpd, gobgp,
# tcpdump, ping, python3). Two network namespaces joined by a veth:
#   fz-bird (BIRD 2, AS 65001, 10.0.0.10 and 192.168.0.2) and
#   fz-gobgp (GoBGP, AS 4200000001, 10.0.0.20 and 192.168.0.3).
# BGP: the OPENs (4-octet AS, graceful restart, route refresh), BIRD's routes with communities,
# large communities and MED, GoBGP's with communities, a withdrawal, a ROUTE-REFRESH, the
# Cease NOTIFICATION of a shutdown. Frames: ARP, ping (plain, fragmented), UDP, a TCP
# connection, an ICMP port unreachable (IP-in-IP frames are made by split.py from these, the
# kernels we run on having no ipip module). Writes bgp.pcap and frames.pcap in $1.
set -euo pipefail
out=${1:?usage: capture.sh OUTDIR}
mkdir -p "$out"
work=$(mktemp -d /tmp/fz-capture.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    ip netns del fz-bird 2>/dev/null || true
    ip netns del fz-gobgp 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
A="ip netns exec fz-bird"
B="ip netns exec fz-gobgp"
ip netns add fz-bird
ip netns add fz-gobgp
ip link add fz-veth-a netns fz-bird type veth peer name fz-veth-b netns fz-gobgp
$A ip link set lo up
$B ip link set lo up
$A ip addr add 10.0.0.10/24 dev fz-veth-a
$A ip addr add 192.168.0.2/24 dev fz-veth-a
$B ip addr add 10.0.0.20/24 dev fz-veth-b
$B ip addr add 192.168.0.3/24 dev fz-veth-b
$A ip link set fz-veth-a up
$B ip link set fz-veth-b up
# Checksums filled in by the sender, as a NIC would leave them: the seeds carry valid ones.
$A ethtool -K fz-veth-a tx off >/dev/null
$B ethtool -K fz-veth-b tx off >/dev/null

$A tcpdump -i fz-veth-a -w "$out/bgp.pcap" -U 'tcp port 179' >/dev/null 2>&1 & pids+=($!)
sleep 1

cat >"$work/bird.conf" <<CONF
router id 10.0.0.10;
protocol device { }
protocol static announced {
    ipv4;
    route 10.77.1.0/24 blackhole { bgp_community.add((65001,100)); bgp_med = 50; };
    route 10.77.2.0/25 blackhole { bgp_large_community.add((65001,1,2)); };
    route 10.77.3.128/26 blackhole;
    route 172.20.0.0/16 blackhole { bgp_community.add((65001,666)); bgp_community.add((65535,65281)); };
}
protocol bgp gobgp {
    local 10.0.0.10 as 65001;
    neighbor 10.0.0.20 as 4200000001;
    hold time 9;
    connect retry time 2;
    graceful restart on;
    ipv4 { import all; export where source = RTS_STATIC; };
}
CONF
cat >"$work/gobgpd.toml" <<CONF
[global.config]
  as = 4200000001
  router-id = "10.0.0.20"
  port = 179
[global.apply-policy.config]
  default-import-policy = "accept-route"
  default-export-policy = "accept-route"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.0.0.10"
    peer-as = 65001
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 60
  [neighbors.timers.config]
    connect-retry = 2
    hold-time = 9
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
CONF
$A bird -f -c "$work/bird.conf" -s "$work/bird.ctl" & pids+=($!)
$B gobgpd -f "$work/gobgpd.toml" --api-hosts 127.0.0.1:50099 >"$work/gobgpd.log" 2>&1 & pids+=($!)
gobgp() { $B gobgp -p 50099 "$@"; }
for _ in $(seq 60); do
    gobgp neighbor 2>/dev/null | grep -q Establ && break
    sleep 0.5
done
gobgp neighbor | grep -q Establ
gobgp global rib add -a ipv4 10.88.0.0/24 community 4200:7 med 10
gobgp global rib add -a ipv4 10.88.1.0/24 aspath 64512,64513 origin incomplete
gobgp global rib add -a ipv4 10.88.2.0/23 nexthop 10.0.0.1
sleep 2
gobgp global rib del -a ipv4 10.88.1.0/24
sleep 1
gobgp neighbor 10.0.0.10 softresetin
sleep 2
gobgp neighbor 10.0.0.10 disable
sleep 2

# Frames: the same two namespaces, without BGP.
$A tcpdump -i fz-veth-a -w "$out/frames.pcap" -U 'not tcp port 179' >/dev/null 2>&1 & pids+=($!)
sleep 1
$A ip neigh flush dev fz-veth-a
$A ping -c 2 -i 0.2 192.168.0.3 >/dev/null
$A ping -c 1 -s 3000 10.0.0.20 >/dev/null
$A ping -c 1 -M do -s 1400 -t 1 10.0.0.20 >/dev/null || true
$B python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.168.0.3", 80)); s.listen(1); c, _ = s.accept()
c.recv(100); c.sendall(b"HTTP/1.0 200 OK\r\n\r\nbrindle\n"); c.close()' & pids+=($!)
sleep 1
$A python3 -c '
import socket
s = socket.create_connection(("192.168.0.3", 80)); s.sendall(b"GET / HTTP/1.0\r\n\r\n"); s.recv(100); s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"brindle udp", ("192.168.0.3", 5201))
u.sendto(b"", ("10.0.0.20", 53))'
sleep 1
