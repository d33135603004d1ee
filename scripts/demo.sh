#!/usr/bin/env bash
# The multi-node lab of issue 4, driven the way a Calico user drives a cluster:
#
#   demo1-node 10.98.0.1 --+
#                          +-- br0 (demo-sw) -- 10.98.0.254 demo-rt 10.97.0.254 -- br1 -- demo3-node 10.97.0.3
#   demo2-node 10.98.0.2 --+                    (etcd)
#
# Three brindle-nodes run as calico-node (configured by their environment, programmed from one
# etcd), two on one L2 segment and one behind a router in another subnet; brindlectl manages
# resources with calicoctl's verbs; brindle-cni plugs two workloads into each node as a
# container runtime does. The nodes find each other through the datastore, peer over BGP (the
# node-to-node mesh) and announce their IPAM blocks. The pool is `ipipMode: CrossSubnet`: the
# two nodes on the segment talk plainly, the one behind the router through IP-in-IP. Then the
# cluster switches to a route reflector (node 1) with the mesh off, and everything still works.
# Every packet between workloads is forwarded by brindle's AF_XDP vRouter: the kernels of the
# node namespaces have ip_forward=0. Last, Docker's libnetwork workflow on nodes 1 and 2: a real
# dockerd per node (in the node's namespace, hands off the host's networking) creates global
# networks with `--driver calico --ipam-driver calico-ipam` and runs busybox containers on them.
#
# Fails (non-zero exit) as soon as something that should work does not; every wait is bounded;
# everything it starts is stopped on exit by its pid, every namespace removed by its name.
set -euo pipefail
cd "$(dirname "$0")/.."

# The binaries `make build` made (BRINDLE_BIN: another directory holding the same five).
BIN=${BRINDLE_BIN:-$PWD/target/release}
LAB=demo
NODES=(1 2 3)
SWITCH_NS=$LAB-sw
ROUTER_NS=$LAB-rt
WORK=$(mktemp -d /tmp/brindle-demo.XXXXXX)
# DEMO_SKIP_RR=1 leaves out the route-reflection part (a shorter run of the mesh alone).
DEMO_SKIP_RR=${DEMO_SKIP_RR:-0}
# DEMO_SKIP_DOCKER=1 leaves out the Docker part (no dockerd, no libnetwork drivers).
DEMO_SKIP_DOCKER=${DEMO_SKIP_DOCKER:-0}
# Debian's docker.io (another `docker` client may be earlier on PATH).
DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
DOCKER_NODES=(1 2)
# Every container the demo's dockerds run lives under this cgroup (not dockerd's default
# `docker`, which may be someone else's): removed by this name on exit.
DOCKER_CGROUP=brindle-$LAB

# etcd lives in the router namespace, on the router's segment address: the nodes on the
# segment reach it directly and the node behind the router reaches it through the router
# (which delivers it locally), as a datastore host in a datacentre is reachable from every
# rack. Not in a node namespace: then node 3's datastore traffic would depend on the nodes
# under test, and stopping a node would take the cluster's datastore with it.
ETCD_URL=http://10.98.0.254:2379
# What every brindle process (brindle-node, brindlectl, brindle-cni via brindle-lab) needs to
# find the datastore.
export DATASTORE_TYPE=etcdv3
export ETCD_ENDPOINTS=$ETCD_URL

declare -A NODE_PID=() DOCKERD_PID=()
ETCD_PID=
# Directories dockerd needs at fixed places (/run/docker/plugins as a mount point,
# /run/containerd/s for containerd's shim sockets) that did not exist before the demo: removed
# on exit if empty, and never when someone else had them.
MADE_DIRS=()
for d in /run/docker /run/containerd; do [ -e "$d" ] || MADE_DIRS+=("$d"); done
MADE_CGROUPS=()
for d in /sys/fs/cgroup/*/; do [ -e "$d$DOCKER_CGROUP" ] || MADE_CGROUPS+=("$d$DOCKER_CGROUP"); done
HELPER_PIDS=() # iperf3 servers and captures

# stop PID [SECONDS]: SIGTERM, then SIGKILL if it has not gone within the bound.
stop() {
    local pid=$1 limit=$((${2:-10} * 10))
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq "$limit"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    set +e
    if [ "$status" -ne 0 ]; then
        # What the nodes could not program (refused routes, ...) and their last words.
        for k in "${!NODE_PID[@]}"; do
            echo "--- node $k: dataplane failures, then the end of its log" >&2
            stats "$k" 2>/dev/null | python3 -c 'import json,sys; [print("  ", f) for f in json.load(sys.stdin).get("failures", [])]' >&2
            tail -n 8 "$WORK/node$k.log" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | cut -c 1-300 >&2
        done
    fi
    for pid in "${HELPER_PIDS[@]}"; do stop "$pid" 2; done
    # Containers first (their shims would keep dockerd's mount namespace alive), then dockerd,
    # which stops its containerd; the overlay mounts go with the mount namespace.
    for k in "${!DOCKERD_PID[@]}"; do
        ids=$(dk "$k" ps -aq 2>/dev/null)
        # shellcheck disable=SC2086
        [ -n "$ids" ] && dk "$k" rm -f $ids >/dev/null 2>&1
        stop "${DOCKERD_PID[$k]}" 30
    done
    for k in "${!NODE_PID[@]}"; do stop "${NODE_PID[$k]}" 10; done
    [ -n "$ETCD_PID" ] && stop "$ETCD_PID" 5
    # Removes the containers plugged into each node, then exactly the lab's namespaces.
    "$BIN/brindle-lab" multi-down --name "$LAB" --nodes 3 >/dev/null 2>&1
    rm -rf "$WORK"
    for d in "${MADE_DIRS[@]}"; do
        for sub in plugins s; do [ -d "$d/$sub" ] && rmdir "$d/$sub"; done
        [ -d "$d" ] && rmdir "$d"
    done
    for d in "${MADE_CGROUPS[@]}"; do [ -d "$d" ] && rmdir "$d"; done
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf '\033[31mFAILED: %s\033[0m\n' "$*" >&2; exit 1; }
node_ns() { echo "$LAB$1-node"; }
in_node() { local k=$1; shift; ip netns exec "$(node_ns "$k")" "$@"; }
ctl() { in_node 1 "$BIN/brindlectl" "$@"; }
stats() { "$BIN/brindle-node" stats --socket "$WORK/node$1.sock"; }
# dk K ARGS...: the docker client against node K's dockerd, bounded.
dk() { local k=$1; shift; timeout 60 "$DOCKER" -H "unix://$WORK/docker$k.sock" "$@"; }

# wait_until SECONDS WHAT COMMAND...: runs COMMAND every 0.2 s until it succeeds; dies naming
# WHAT once SECONDS have passed.
wait_until() {
    local limit=$1 what=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || die "$what (waited $limit s)"
        sleep 0.2
    done
}

# peers_are K ADDRESS...: node K's BGP peers are exactly these addresses, all Established.
peers_are() {
    local k=$1; shift
    stats "$k" | python3 -c '
import json, sys
peers = json.load(sys.stdin)["bgp_peers"]
up = sorted(p["address"] for p in peers if p["state"] == "Established")
sys.exit(0 if len(peers) == len(up) and up == sorted(sys.argv[1:]) else 1)' "$@"
}

node_ip() { if [ "$1" -eq 3 ]; then echo 10.97.0.3; else echo "10.98.0.$1"; fi; }
other_ips() { for o in "${NODES[@]}"; do [ "$o" != "$1" ] && node_ip "$o"; done; }

# node_status K: `brindlectl node status` on node K (its own control socket and health port).
node_status() {
    echo "-- node $LAB$1 ($(node_ip "$1"))"
    in_node "$1" "$BIN/brindlectl" node status --control-socket "$WORK/node$1.sock" | sed -n '/IPv4 BGP status/,/^$/p'
}

step "Lab: three node namespaces; ${LAB}1 and ${LAB}2 on one segment, ${LAB}3 behind a router"
"$BIN/brindle-lab" multi-down --name "$LAB" --nodes 3 >/dev/null 2>&1 || true
"$BIN/brindle-lab" multi-up --name "$LAB" --nodes 3 --routed 1
echo "ip_forward in the node namespaces: $(for k in "${NODES[@]}"; do in_node "$k" sysctl -n net.ipv4.ip_forward; done | tr '\n' ' ')(only brindle forwards)"

step "etcd v3 in the router namespace, at $ETCD_URL"
# Started directly with `ip netns exec ... &` (which execs in place) so that $! is etcd. The v2
# API too: dockerd 20.10 keeps global networks in a cluster store, which speaks etcd v2.
ip netns exec "$ROUTER_NS" etcd --name demo --data-dir "$WORK/etcd" --listen-client-urls "$ETCD_URL" \
    --advertise-client-urls "$ETCD_URL" --listen-peer-urls http://127.0.0.1:2380 --enable-v2 >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
wait_until 20 "etcd did not become healthy" ip netns exec "$ROUTER_NS" etcdctl --endpoints "$ETCD_URL" endpoint health
for k in "${NODES[@]}"; do
    in_node "$k" etcdctl --endpoints "$ETCD_URL" endpoint health 2>&1 | sed "s/^/from node $k: /"
done

step "Three brindle-nodes as calico-node: NODENAME, IP autodetection, an IPIP CrossSubnet pool"
start_node() {
    local libnetwork=()
    # Nodes 1 and 2 also serve Docker's network and IPAM drivers, into a plugin directory of
    # their own (their dockerd sees it as /run/docker/plugins), and ask their dockerd for
    # network names.
    if [ "$DEMO_SKIP_DOCKER" != 1 ] && [ "$1" -le 2 ]; then
        mkdir -p "$WORK/plugins$1"
        libnetwork=(BRINDLE_LIBNETWORK=1 "BRINDLE_LIBNETWORK_PLUGIN_DIR=$WORK/plugins$1" "DOCKER_HOST=unix://$WORK/docker$1.sock")
    fi
    env NODENAME="$LAB$1" IP_AUTODETECTION_METHOD=interface=eth0 CALICO_IPV4POOL_CIDR=192.168.0.0/16 \
        CALICO_IPV4POOL_IPIP=CrossSubnet BRINDLE_MODE=interrupt "BRINDLE_CONTROL_SOCKET=$WORK/node$1.sock" \
        "${libnetwork[@]}" ip netns exec "$(node_ns "$1")" "$BIN/brindle-node" 2>"$WORK/node$1.log" &
    NODE_PID[$1]=$!
}
# Node 1 first: it creates the default pool and the cluster information, as the first
# calico-node of a cluster does; the others find them.
start_node 1
wait_until 30 "node 1 did not start" stats 1
start_node 2; start_node 3
wait_until 30 "node 2 did not start" stats 2
wait_until 30 "node 3 did not start" stats 3
sed 's/\x1b\[[0-9;]*m//g' "$WORK/node1.log" | grep -E "node address|default IP pool|ready" | cut -c 29- || true
ctl get nodes -o wide
ctl get ippools -o wide

step "A custom pool for network net4 (ARCHITECTURE.md scenario 4), with brindlectl"
cat <<'YAML' | tee "$WORK/pool.yaml"
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-net4
spec:
  cidr: 10.20.0.0/24
  ipipMode: CrossSubnet
  natOutgoing: false
YAML
ctl apply -f "$WORK/pool.yaml"
ctl get ippools -o wide

step "Two workloads per node plugged in by brindle-cni: 'a' on net1 (default pool), 'b' on net4 (10.20.0.0/24)"
WL_NS=() WL_IP=() WL_NODE=()
# plug K CONTAINER NETWORK [POOL]: brindle-lab creates the container's namespace and runs
# brindle-cni ADD in node K's namespace exactly as a container runtime does. MTU 1480: the
# pools are IPIP (CrossSubnet), whose header costs 20 bytes, the MTU Calico configures for IPIP.
plug() {
    local pool=() address
    [ -n "${4:-}" ] && pool=(--pool "$4")
    address=$("$BIN/brindle-lab" plug --name "$LAB$1" --container "$2" --network "$3" "${pool[@]}" --mtu 1480 --cni-bin-dir "$BIN" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["ips"][0]["address"].split("/")[0])')
    WL_NS+=("$LAB$1-$2") WL_IP+=("$address") WL_NODE+=("$1")
}
for k in "${NODES[@]}"; do plug "$k" a net1; plug "$k" b net4 10.20.0.0/24; done
for i in "${!WL_NS[@]}"; do printf '  %-9s on %s  %s\n' "${WL_NS[$i]}" "$LAB${WL_NODE[$i]}" "${WL_IP[$i]}"; done
ctl get workloadendpoints
ip netns exec "${WL_NS[0]}" ip -br addr show eth0; ip netns exec "${WL_NS[0]}" ip route

step "BGP: the node-to-node mesh (every node peers with both others)"
for k in "${NODES[@]}"; do
    # shellcheck disable=SC2046
    wait_until 30 "node $k's mesh peers are not all Established" peers_are "$k" $(other_ips "$k")
done
for k in "${NODES[@]}"; do node_status "$k"; done
echo "-- routes node ${LAB}1 learned (stats: bgp_peers routes_received):"
stats 1 | python3 -c '
import json, sys
for p in json.load(sys.stdin)["bgp_peers"]:
    print("   from %-11s %s, %d prefixes" % (p["address"], p["type"], p["routes_received"]))'

# ping_ok FROM_NS TO_IP: one echo answered, retried for up to ~10 s (routes arrive a moment
# after a session is Established).
ping_ok() {
    for _ in $(seq 8); do
        ip netns exec "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    return 1
}

# Every workload's iperf3 server, for the TCP checks; started directly so $! is iperf3.
for ns in "${WL_NS[@]}"; do
    ip netns exec "$ns" iperf3 -s -p 5201 >/dev/null 2>&1 &
    HELPER_PIDS+=($!)
done

# network_of I: the network of workload I ('a' workloads are on net1, 'b' on net4).
network_of() { case "${WL_NS[$1]}" in *-a) echo net1 ;; *) echo net4 ;; esac; }

# full_mesh WHAT: every workload tries every other. Within a network (the network's profile
# admits its members): ping answered and 256 KiB over TCP. Across networks (ARCHITECTURE.md
# scenario 2, isolation by profile): one ping, which the vRouter must drop. Prints the
# matrix; dies at the first pair that does not behave.
full_mesh() {
    local i j mark want
    printf '%-10s' "from\to"; for j in "${!WL_NS[@]}"; do printf '%-10s' "${WL_NS[$j]}"; done; echo
    for i in "${!WL_NS[@]}"; do
        printf '%-10s' "${WL_NS[$i]}"
        for j in "${!WL_NS[@]}"; do
            if [ "$i" = "$j" ]; then printf '%-10s' "."; continue; fi
            if [ "$(network_of "$i")" = "$(network_of "$j")" ]; then
                want=ping+tcp mark=ping+tcp
                if ! ping_ok "${WL_NS[$i]}" "${WL_IP[$j]}"; then
                    mark=NO-PING
                elif ! ip netns exec "${WL_NS[$i]}" timeout 10 iperf3 -c "${WL_IP[$j]}" -p 5201 -n 256K >/dev/null 2>&1; then
                    mark=NO-TCP
                fi
            else
                want=isolated mark=isolated
                ip netns exec "${WL_NS[$i]}" ping -c 1 -W 1 "${WL_IP[$j]}" >/dev/null 2>&1 && mark=LEAK
            fi
            printf '%-10s' "$mark"
            # The first broken pair is enough to fail; the matrix so far says which it is.
            [ "$mark" = "$want" ] || { echo; die "$1: ${WL_NS[$i]} -> ${WL_NS[$j]} (${WL_IP[$j]}): $mark, expected $want"; }
        done
        echo
    done
    echo "30 ordered pairs: the 12 within a network reach each other (ping + 256 KiB over TCP), the 18 across networks are isolated ($1)"
}

step "Full mesh of workloads: 6 workloads on two networks, 30 ordered pairs (policy: each network's profile)"
wait_until 30 "no route from node 1's workload to node 3's" ip netns exec "${WL_NS[0]}" ping -c 1 -W 1 "${WL_IP[4]}"
full_mesh "node-to-node mesh"

# ipip K: "encapsulated decapsulated" of node K.
ipip() { stats "$1" | python3 -c 'import json,sys; f=json.load(sys.stdin)["fastpath"]; print(f["ipip_encapsulated"], f["ipip_decapsulated"])'; }
declare -A BEFORE=()
snapshot() { for k in "${NODES[@]}"; do BEFORE[$k]=$(ipip "$k"); done; }
# deltas: prints each node's IPIP counters since the snapshot; sets DELTA_ENC/DELTA_DEC.
declare -A DELTA_ENC=() DELTA_DEC=()
deltas() {
    local k enc dec enc0 dec0
    for k in "${NODES[@]}"; do
        read -r enc dec <<<"$(ipip "$k")"; read -r enc0 dec0 <<<"${BEFORE[$k]}"
        DELTA_ENC[$k]=$((enc - enc0)) DELTA_DEC[$k]=$((dec - dec0))
        printf '   node %s: ipip_encapsulated %7d -> %-7d (+%d)   ipip_decapsulated %7d -> %-7d (+%d)\n' \
            "$LAB$k" "$enc0" "$enc" "${DELTA_ENC[$k]}" "$dec0" "$dec" "${DELTA_DEC[$k]}"
    done
}

# capture PORT: the first 2 IPv4 packets (ICMP or IPIP) on switch port PORT, in the background.
capture() {
    ip netns exec "$SWITCH_NS" tcpdump -l -n -i "$1" -c 2 'icmp or ip proto 4' >"$WORK/cap.txt" 2>"$WORK/cap.err" &
    CAPTURE_PID=$!; HELPER_PIDS+=("$CAPTURE_PID")
    wait_until 5 "tcpdump did not start on $1" grep -q listening "$WORK/cap.err"
}
show_capture() {
    for _ in $(seq 30); do kill -0 "$CAPTURE_PID" 2>/dev/null || break; sleep 0.1; done
    stop "$CAPTURE_PID" 1
    sed 's/^[0-9:.]* /   on the wire: /' "$WORK/cap.txt"
}

step "Same subnet is plain, cross subnet is IP-in-IP (pool ipipMode CrossSubnet)"
echo "${LAB}1-a -> ${LAB}2-a (${WL_IP[2]}), 5 pings, both nodes on 10.98.0.0/24; capture on node 2's switch port:"
snapshot; capture n2
ip netns exec "${WL_NS[0]}" ping -c 5 -i 0.2 -W 1 "${WL_IP[2]}" | grep -oE '[0-9]+ received.*'
show_capture; deltas
for k in "${NODES[@]}"; do
    [ "${DELTA_ENC[$k]}" -eq 0 ] && [ "${DELTA_DEC[$k]}" -eq 0 ] || die "same-subnet traffic was encapsulated on node $k"
done
echo "${LAB}1-a -> ${LAB}3-a (${WL_IP[4]}), 5 pings, node 3 behind the router; capture on node 3's switch port:"
snapshot; capture n3
ip netns exec "${WL_NS[0]}" ping -c 5 -i 0.2 -W 1 "${WL_IP[4]}" | grep -oE '[0-9]+ received.*'
show_capture; deltas
[ "${DELTA_ENC[1]}" -ge 5 ] && [ "${DELTA_DEC[3]}" -ge 5 ] || die "node 1 -> node 3 was not tunnelled"
[ "${DELTA_ENC[3]}" -ge 5 ] && [ "${DELTA_DEC[1]}" -ge 5 ] || die "node 3's replies were not tunnelled"
[ "${DELTA_ENC[2]}" -eq 0 ] || die "node 2 encapsulated traffic it did not carry"
grep -q "10.98.0.1 > 10.97.0.3: IP ${WL_IP[0]} > ${WL_IP[4]}" "$WORK/cap.txt" ||
    grep -q "10.97.0.3 > 10.98.0.1: IP ${WL_IP[4]} > ${WL_IP[0]}" "$WORK/cap.txt" ||
    die "the capture on n3 shows no IP-in-IP between the nodes"

step "TCP throughput for 1 s: plain (node 1 -> node 2) and IP-in-IP (node 1 -> node 3)"
for j in 2 4; do
    printf '%s -> %-14s' "${WL_NS[0]}" "${WL_NS[$j]}"
    ip netns exec "${WL_NS[0]}" timeout 15 iperf3 -c "${WL_IP[$j]}" -p 5201 -t 1 | grep -E "receiver" |
        awk '{print $7, $8, "received"}'
done

step "ICMP errors from the vRouter"
ip netns exec "${WL_NS[0]}" ping -c 1 -W 1 10.77.0.1 | grep -E "From|received" || true
ip netns exec "${WL_NS[0]}" ping -c 1 -W 1 -t 1 "${WL_IP[4]}" | grep -E "From|received" || true

step "Policy (ARCHITECTURE.md scenario 3): net1 may reach net4's workloads on TCP 5201, and only that"
cat <<'YAML' | tee "$WORK/policy.yaml"
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: net1-to-net4-iperf
spec:
  selector: has(net4)
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: has(net1)
    destination:
      ports: [5201]
YAML
ctl apply -f "$WORK/policy.yaml"
tcp_ok() { ip netns exec "$1" timeout 5 iperf3 -c "$2" -p 5201 -n 64K >/dev/null 2>&1; }
wait_until 10 "net1 -> net4 on TCP 5201 is still refused" tcp_ok "${WL_NS[0]}" "${WL_IP[5]}"
echo "${WL_NS[0]} (net1) -> ${WL_NS[5]} (net4) TCP 5201: allowed"
! ip netns exec "${WL_NS[0]}" ping -c 1 -W 1 "${WL_IP[5]}" >/dev/null 2>&1 || die "the policy let ICMP through"
echo "${WL_NS[0]} (net1) -> ${WL_NS[5]} (net4) ping: still dropped"
! tcp_ok "${WL_NS[5]}" "${WL_IP[0]}" || die "the policy opened net4 -> net1"
echo "${WL_NS[5]} (net4) -> ${WL_NS[0]} (net1) TCP 5201: still dropped (the policy selects net4's workloads only)"
ctl delete globalnetworkpolicy net1-to-net4-iperf
wait_until 10 "net1 -> net4 still allowed after the policy went" bash -c "! ip netns exec ${WL_NS[0]} timeout 3 iperf3 -c ${WL_IP[5]} -p 5201 -n 64K >/dev/null 2>&1"
echo "policy deleted: ${WL_NS[0]} -> ${WL_NS[5]} TCP 5201 dropped again"

step "Host endpoint on ${LAB}1's uplink: the node's own traffic policed; failsafe ports (BGP, etcd) stay open"
for port in 8080 8081; do
    # `ip netns exec` runs the server in its own process, so $! is the server's pid.
    ip netns exec "$(node_ns 1)" python3 -m http.server "$port" --bind 0.0.0.0 >/dev/null 2>&1 &
    HELPER_PIDS+=($!)
done
host_tcp_ok() { in_node 2 timeout 2 bash -c "exec 3<>/dev/tcp/$(node_ip 1)/$1" 2>/dev/null; }
host_tcp_refused() { ! host_tcp_ok "$1"; }
wait_until 10 "node ${LAB}1's test servers did not start" host_tcp_ok 8081
cat <<YAML | tee "$WORK/hostendpoint.yaml"
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata:
  name: ${LAB}1-eth0
  labels: {host-role: demo}
spec:
  node: ${LAB}1
  interfaceName: eth0
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: demo-hosts
spec:
  selector: host-role == 'demo'
  types: [Ingress, Egress]
  ingress:
  - action: Allow
    protocol: TCP
    destination:
      ports: [8080]
  egress:
  - action: Allow
YAML
ctl apply -f "$WORK/hostendpoint.yaml"
wait_until 15 "TCP 8081 to node ${LAB}1 still open under its host endpoint" host_tcp_refused 8081
echo "${LAB}2 -> ${LAB}1 TCP 8081: dropped by the host endpoint's policy"
host_tcp_ok 8080 || die "TCP 8080 to node ${LAB}1 refused"
echo "${LAB}2 -> ${LAB}1 TCP 8080: allowed"
! in_node 2 ping -c 1 -W 1 "$(node_ip 1)" >/dev/null 2>&1 || die "the host endpoint let ICMP in"
echo "${LAB}2 -> ${LAB}1 ping: dropped"
peers_are 1 $(other_ips 1) || die "node ${LAB}1 lost a BGP session under its host endpoint"
echo "node ${LAB}1's BGP sessions: still Established (TCP 179 is a failsafe port)"
stats 1 | python3 -c 'import json,sys; p=json.load(sys.stdin)["fastpath"]["drops"]; print("node '"${LAB}"'1 policy_denied:", p["policy_denied"])'
ctl delete hostendpoint "${LAB}1-eth0"
ctl delete globalnetworkpolicy demo-hosts
wait_until 10 "TCP 8081 to node ${LAB}1 still dropped after the host endpoint went" host_tcp_ok 8081
echo "host endpoint deleted: ${LAB}2 -> ${LAB}1 TCP 8081 open again"

step "IPAM: each node claimed an affine block in each pool"
ctl ipam show --show-blocks

if [ "$DEMO_SKIP_RR" != 1 ]; then
    step "Route reflection: node ${LAB}1 becomes the reflector, the mesh goes off"
    # The order of Calico's documentation: the reflector and the peering first, the mesh off
    # last, so that routes are never without a session carrying them.
    ctl label nodes "${LAB}1" route-reflector=true
    ctl patch node "${LAB}1" -p '{"spec":{"bgp":{"routeReflectorClusterID":"224.0.0.1"}}}'
    cat <<'YAML' | tee "$WORK/rr.yaml"
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: peer-with-route-reflectors
spec:
  nodeSelector: all()
  peerSelector: route-reflector == 'true'
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  nodeToNodeMeshEnabled: false
  asNumber: 64512
YAML
    ctl apply -f "$WORK/rr.yaml"
    ctl get bgppeers -o wide
    ctl get node "${LAB}1" -o yaml | grep -E "route-reflector|routeReflectorClusterID"
    # The reflector peers with both clients; the clients only with the reflector.
    started=$SECONDS
    wait_until 40 "node 1 does not have both clients Established" peers_are 1 10.98.0.2 10.97.0.3
    wait_until 40 "node 2's only peer is not the reflector" peers_are 2 10.98.0.1
    wait_until 40 "node 3's only peer is not the reflector" peers_are 3 10.98.0.1
    echo "sessions settled within $((SECONDS - started + 1)) s"
    for k in "${NODES[@]}"; do node_status "$k"; done

    step "Full mesh of workloads again, routes now reflected by node ${LAB}1"
    full_mesh "route reflector"
    echo "${LAB}2-a -> ${LAB}3-a: the reflector carries routes, not traffic (node 2 tunnels straight to node 3):"
    snapshot
    ip netns exec "${WL_NS[2]}" ping -c 5 -i 0.2 -W 1 "${WL_IP[4]}" | grep -oE '[0-9]+ received.*'
    deltas
    [ "${DELTA_ENC[2]}" -ge 5 ] && [ "${DELTA_DEC[3]}" -ge 5 ] || die "node 2 -> node 3 was not tunnelled directly"
    [ "${DELTA_ENC[1]}" -eq 0 ] && [ "${DELTA_DEC[1]}" -eq 0 ] || die "traffic went through the reflector"
fi

step "CNI DEL: ${LAB}3-b leaves; its endpoint, address and port go"
"$BIN/brindle-lab" unplug --name "${LAB}3" --container b --network net4 --cni-bin-dir "$BIN"
ctl get workloadendpoints
gone() { ! ip netns exec "${WL_NS[1]}" ping -c 1 -W 1 "${WL_IP[5]}" >/dev/null 2>&1; }
wait_until 10 "the deleted workload still answers" gone
echo "${LAB}1-b -> ${WL_IP[5]} (deleted): no answer"

# start_dockerd K: Debian's dockerd in node K's namespace (RUNTIMES.md), in a mount and UTS
# namespace of its own: the node's plugin directory is its /run/docker/plugins, a private
# directory its /etc/docker (it writes key.json there), its hostname the node's name; its own
# data root, exec root, socket and pidfile; and hands off the host's networking (no iptables,
# no masquerade, no ip_forward, no bridge). `ip netns exec` would remount /sys and hide the
# cgroups runc needs, so: `nsenter --net`, a fresh sysfs of the node's namespace, and the
# cgroup hierarchy bound back under it. nsenter, unshare and sh all exec in place: $! is dockerd.
start_dockerd() {
    local k=$1 root=$WORK/docker$1
    mkdir -p "$root/etc" "$root/cgroup-aside"
    nsenter --net="/run/netns/$(node_ns "$k")" unshare --mount --uts --propagation slave sh -c "set -e
hostname $LAB$k
mkdir -p /run/docker/plugins
mount --bind $WORK/plugins$k /run/docker/plugins
mount --bind $root/etc /etc/docker
mount --rbind /sys/fs/cgroup $root/cgroup-aside
mount -t sysfs sysfs /sys
mount --rbind $root/cgroup-aside /sys/fs/cgroup
exec $DOCKERD --data-root $root/data --exec-root $root/exec -H unix://$WORK/docker$k.sock \
  --pidfile $root/dockerd.pid --storage-driver overlay2 --cgroup-parent /$DOCKER_CGROUP \
  --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false --bridge=none \
  --cluster-store etcd://${ETCD_URL#http://} --cluster-advertise eth0:2376" </dev/null >"$root/dockerd.log" 2>&1 &
    DOCKERD_PID[$k]=$!
}

# dk_ping K FROM IP: one echo from container FROM on node K to IP, answered within a second.
dk_ping() { dk "$1" exec "$2" /bin/ping -c 1 -W 1 "$3" >/dev/null 2>&1; }

if [ "$DEMO_SKIP_DOCKER" != 1 ]; then
    step "Docker (ARCHITECTURE.md scenario 9): a dockerd on ${LAB}1 and ${LAB}2, cluster store etcd://${ETCD_URL#http://} (v2)"
    for k in "${DOCKER_NODES[@]}"; do
        ls "$WORK/plugins$k" | sed "s/^/node $LAB$k serves the libnetwork driver socket: /"
        start_dockerd "$k"
    done
    for k in "${DOCKER_NODES[@]}"; do
        wait_until 60 "dockerd on node $k did not answer" dk "$k" version
        echo "dockerd $(dk "$k" version --format '{{.Server.Version}}') on $LAB$k: $(dk "$k" info --format 'hostname {{.Name}}, cluster store {{.ClusterStore}}')"
    done
    # No registry here: the image is a busybox rootfs brought in with `docker import`.
    mkdir -p "$WORK/rootfs/bin"
    cp /bin/busybox "$WORK/rootfs/bin/busybox"
    chroot "$WORK/rootfs" /bin/busybox --install -s /bin
    tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
    for k in "${DOCKER_NODES[@]}"; do
        dk "$k" import "$WORK/rootfs.tar" busybox >/dev/null
        echo "$LAB$k: image busybox imported ($(dk "$k" image inspect -f '{{.Size}}' busybox) bytes)"
    done

    step "docker network create --driver calico --ipam-driver calico-ipam on ${LAB}1: two global networks"
    for n in 1 2; do
        echo "\$ docker network create --driver calico --ipam-driver calico-ipam --subnet 10.1.$n.0/24 calico-net$n"
        dk 1 network create --driver calico --ipam-driver calico-ipam --subnet "10.1.$n.0/24" "calico-net$n"
    done
    listed() { dk 2 network ls --format '{{.Name}} {{.Driver}} {{.Scope}}' | grep -qx "calico-net$1 calico global"; }
    wait_until 20 "node 2's dockerd does not list calico-net1" listed 1
    wait_until 20 "node 2's dockerd does not list calico-net2" listed 2
    echo "\$ docker network ls   (on ${LAB}2: the networks came through the cluster store)"
    dk 2 network ls --filter driver=calico
    echo "the pools --subnet made, in brindle's datastore:"
    ctl get ippools -o wide | grep -E "^NAME|10\.1\.[12]\.0/24" ||
        die "docker network create made no pools"

    step "docker run: a busybox container on each network on each node"
    declare -A DK_IP=() DK_NODE=() DK_NET=()
    for k in "${DOCKER_NODES[@]}"; do
        for n in 1 2; do
            name=$([ "$n" = 1 ] && echo a || echo b)$k
            # dockerd warns that IPv4 forwarding is disabled: it is, in the node's namespace, on
            # purpose (brindle's vRouter forwards); only a failure's words are shown.
            dk "$k" run -d --name "$name" --net "calico-net$n" busybox /bin/sleep 3600 >/dev/null 2>"$WORK/run.err" ||
                { cat "$WORK/run.err" >&2; die "docker run $name on node $k failed"; }
            DK_IP[$name]=$(dk "$k" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")
            DK_NODE[$name]=$k DK_NET[$name]=calico-net$n
            case "${DK_IP[$name]}" in 10.1.$n.*) ;; *) die "container $name has address '${DK_IP[$name]}', not in 10.1.$n.0/24" ;; esac
            printf '  %-3s on %s  %-12s %s\n' "$name" "$LAB$k" "calico-net$n" "${DK_IP[$name]}"
        done
    done
    ctl get workloadendpoints -n libnetwork
    echo "\$ docker exec a1 ip route"
    dk 1 exec a1 /bin/ip route

    step "Across nodes: each network's containers reach each other; the other network's are dropped"
    # Each node's block of each network reaches the other node by BGP a moment after its first
    # container: both networks' routes first, so that a dropped ping below is the policy's doing.
    wait_until 30 "no route from a1 on node 1 to a2 on node 2" dk_ping 1 a1 "${DK_IP[a2]}"
    wait_until 30 "no route from b1 on node 1 to b2 on node 2" dk_ping 1 b1 "${DK_IP[b2]}"
    # Same network, both ways and across nodes; then every pair across networks, both ways
    # (on one node and across).
    for pair in a1:a2 a2:a1 b1:b2 b2:b1 a1:b2 b2:a1 b1:a2 a2:b1 a1:b1 b1:a1; do
        from=${pair%:*} to=${pair#*:}
        if [ "${DK_NET[$from]}" = "${DK_NET[$to]}" ]; then want=answered; else want=dropped; fi
        if dk_ping "${DK_NODE[$from]}" "$from" "${DK_IP[$to]}"; then got=answered; else got=dropped; fi
        printf '  %-3s (%s, %s) -> %-3s (%s, %s, %s): %s\n' "$from" "${DK_NET[$from]}" "$LAB${DK_NODE[$from]}" \
            "$to" "${DK_NET[$to]}" "$LAB${DK_NODE[$to]}" "${DK_IP[$to]}" "$got"
        [ "$got" = "$want" ] || die "docker: $from -> $to was $got, expected $want"
    done

    step "docker rm -f, docker network rm: endpoints, addresses, profiles and pools go"
    for k in "${DOCKER_NODES[@]}"; do
        echo "\$ docker rm -f a$k b$k   (on $LAB$k)"
        dk "$k" rm -f "a$k" "b$k" >/dev/null
    done
    for n in 1 2; do dk 1 network rm "calico-net$n" >/dev/null; done
    left=$(ctl get workloadendpoints -n libnetwork -o json | python3 -c '
import json, sys
text = sys.stdin.read().strip()
v = json.loads(text) if text else []
items = v.get("items", [v]) if isinstance(v, dict) else v
print(len(items or []))')
    [ "$left" = 0 ] || die "$left libnetwork endpoints left after docker rm"
    ! ctl get ippools -o wide | grep -E "10\.1\.[12]\.0/24" || die "docker network rm left a pool"
    echo "libnetwork workload endpoints: 0; pools 10.1.1.0/24 and 10.1.2.0/24: gone"
    for k in "${DOCKER_NODES[@]}"; do
        stop "${DOCKERD_PID[$k]}" 30; unset "DOCKERD_PID[$k]"
    done
    echo "dockerds stopped"
fi

step "Counters (brindle-node stats)"
for k in "${NODES[@]}"; do
    stats "$k" | python3 -c '
import json, sys
s = json.load(sys.stdin)
fp = s["fastpath"]
print("node %s: rx %d  forwarded %d  punted %d  dropped %d  ipip encap %d decap %d" % (sys.argv[1],
      fp["rx_packets"], fp["forwarded"], fp["punted"], fp["dropped"], fp["ipip_encapsulated"], fp["ipip_decapsulated"]))
drops = ", ".join("%s=%d" % kv for kv in fp["drops"].items() if kv[1])
print("   drops: " + (drops or "none") + "   ports: " + ", ".join("%s(%s, xdp %s)" % (p["name"], p["kind"], p["xdp_mode"]) for p in s["ports"]))
' "$LAB$k"
done

step "Stop (SIGTERM): XDP detached, hosts left as they were"
for k in "${NODES[@]}"; do
    stop "${NODE_PID[$k]}" 10; unset "NODE_PID[$k]"
    n=$(in_node "$k" ip -d link show | grep -c "prog/xdp" || true)
    echo "node $k: interfaces with an XDP program attached: $n"
    [ "$n" -eq 0 ] || die "node $k left XDP attached"
done
echo
echo "demo complete"
