#!/usr/bin/env bash
# The main job, end to end, the way a Calico user drives it: etcd holds the cluster state,
# brindle-node runs as calico-node (configured by its environment, programmed from the
# datastore), brindlectl manages resources with calicoctl's verbs, and workloads are plugged
# in by brindle-cni exactly as a container runtime calls it. Every packet between workloads is
# forwarded by brindle's AF_XDP vRouter (the kernel in the node namespace has ip_forward=0).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=$PWD/target/release
LAB=demo
NODE_NS=$LAB-node
WORK=$(mktemp -d /tmp/brindle-demo.XXXXXX)
NODE_PID=
ETCD_PID=

# What every brindle process in the node namespace needs to find the datastore.
export DATASTORE_TYPE=etcdv3
export ETCD_ENDPOINTS=http://127.0.0.1:2379

cleanup() {
    if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
        kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
    fi
    if [ -n "$ETCD_PID" ] && kill -0 "$ETCD_PID" 2>/dev/null; then
        kill -TERM "$ETCD_PID"; wait "$ETCD_PID" 2>/dev/null || true
    fi
    "$BIN/brindle-lab" down --name "$LAB" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_node() { ip netns exec "$NODE_NS" "$@"; }
ctl() { in_node "$BIN/brindlectl" "$@"; }

# plug CONTAINER NETWORK [POOL]: brindle-lab creates the container's namespace and runs
# brindle-cni ADD exactly as a container runtime does; prints the workload's address.
plug() {
    local pool=()
    [ -n "${3:-}" ] && pool=(--pool "$3")
    "$BIN/brindle-lab" plug --name "$LAB" --container "$1" --network "$2" "${pool[@]}" --cni-bin-dir "$BIN" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["ips"][0]["address"].split("/")[0])'
}

wait_for_ping() { # FROM TO: the node attaches new workloads within moments
    for _ in $(seq 50); do ip netns exec "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

step "Lab: a node namespace with an uplink (no workloads yet)"
"$BIN/brindle-lab" down --name "$LAB" >/dev/null 2>&1 || true
"$BIN/brindle-lab" up --name "$LAB" --workloads 0
echo "node namespace: net.ipv4.ip_forward=$(in_node sysctl -n net.ipv4.ip_forward) (only brindle forwards)"

step "etcd v3 in the node namespace"
# Not through in_node: $! must be etcd itself (ip netns exec execs it in place).
ip netns exec "$NODE_NS" etcd --name demo --data-dir "$WORK/etcd" --listen-client-urls "$ETCD_ENDPOINTS" \
    --advertise-client-urls "$ETCD_ENDPOINTS" >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 100); do in_node etcdctl --endpoints "$ETCD_ENDPOINTS" endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
in_node etcdctl --endpoints "$ETCD_ENDPOINTS" endpoint health

step "brindle-node as calico-node: NODENAME, IP autodetection, default pool from the environment"
NODENAME=$LAB IP_AUTODETECTION_METHOD=interface=eth0 CALICO_IPV4POOL_CIDR=192.168.0.0/16 \
    CALICO_IPV4POOL_IPIP=Never BRINDLE_CONTROL_SOCKET=$WORK/node.sock \
    ip netns exec "$NODE_NS" "$BIN/brindle-node" 2>"$WORK/node.log" &
NODE_PID=$!
for _ in $(seq 100); do "$BIN/brindle-node" stats --socket "$WORK/node.sock" >/dev/null 2>&1 && break; sleep 0.1; done
sed 's/\x1b\[[0-9;]*m//g' "$WORK/node.log" | grep -E "node address|registered|default IP pool|synced|ready" | cut -c 29-
ctl get nodes -o wide
ctl get ippools -o wide

step "A custom pool for network net4 (MISSION.md scenario 4), with brindlectl"
cat <<'YAML' | tee "$WORK/pool.yaml"
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-net4
spec:
  cidr: 10.20.0.0/24
  ipipMode: Never
  natOutgoing: false
YAML
ctl apply -f "$WORK/pool.yaml"
ctl get ippools

step "Workloads plugged in by brindle-cni (brindle-lab plug): two on net1 (default pool), two on net4 (10.20.0.0/24)"
A1=$(plug c1 net1); A2=$(plug c2 net1); B1=$(plug c3 net4 10.20.0.0/24); B2=$(plug c4 net4 10.20.0.0/24)
C1=$LAB-c1 C2=$LAB-c2 C3=$LAB-c3 C4=$LAB-c4
echo "c1=$A1 c2=$A2 (net1)   c3=$B1 c4=$B2 (net4)"
ctl get workloadendpoints -o wide
ip netns exec $C1 ip -br addr show eth0; ip netns exec $C1 ip route

step "Each network has its profile, as Calico creates it (enforcement comes with the policy issue)"
ctl get profile net1 -o yaml

step "Connectivity through the vRouter"
for pair in "$C1 $A2" "$C2 $A1" "$C3 $B2" "$C4 $B1" "$C1 $B1"; do
    set -- $pair
    wait_for_ping "$1" "$2" || true
    printf '%s -> %-12s ' "$1" "$2"
    ip netns exec "$1" ping -c 2 -i 0.2 -W 2 "$2" | grep -oE '[0-9]+ received.*'
done

step "TCP: iperf3 c1 -> c2 for 3 seconds"
ip netns exec $C2 iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
sleep 0.3
ip netns exec $C1 iperf3 -c "$A2" -p 5201 -t 3 | grep -E "sender|receiver"
wait $! 2>/dev/null || true

step "ICMP errors from the vRouter"
ip netns exec $C1 ping -c 1 -W 1 10.77.0.1 | grep -E "From|received" || true
ip netns exec $C1 ping -c 1 -W 1 -t 1 "$A2" | grep -E "From|received" || true

step "IPAM"
ctl ipam show --show-blocks

step "CNI DEL: c4 leaves; its endpoint, address and port go"
"$BIN/brindle-lab" unplug --name "$LAB" --container c4 --network net4 --cni-bin-dir "$BIN"
sleep 0.5
ctl get workloadendpoints
printf 'c3 -> %s (deleted): ' "$B2"; ip netns exec $C3 ping -c 1 -W 1 "$B2" | grep -oE '[0-9]+ received' || true

step "Counters (brindle-node stats) and health"
"$BIN/brindle-node" stats --socket "$WORK/node.sock" | python3 -c '
import json, sys
s = json.load(sys.stdin)
fp = s["fastpath"]
print("fastpath: rx %d  forwarded %d  punted %d  injected %d  dropped %d" % (fp["rx_packets"], fp["forwarded"], fp["punted"], fp["injected"], fp["dropped"]))
print("  drops: " + ", ".join("%s=%d" % kv for kv in fp["drops"].items() if kv[1]))
sp = s["slowpath"]
print("slowpath: " + ", ".join("%s=%d" % kv for kv in sp.items() if kv[1]))
print("ports: " + ", ".join("%s(%s, xdp %s)" % (p["name"], p["kind"], p["xdp_mode"]) for p in s["ports"]))
'
ctl node status

step "BGP state and policy"
echo "brindle-node runs its BGP speaker (node-to-node mesh); a single node has no peers, so 'node status'"
echo "above lists none (control/tests/mesh.rs shows two nodes peering). The multi-node demo and"
echo "policy enforcement arrive with their issues."

step "Stop (SIGTERM): XDP detached, host left as it was"
kill -TERM "$NODE_PID"; wait "$NODE_PID" || true; NODE_PID=
n=$(in_node ip -d link show | grep -c "prog/xdp" || true)
echo "interfaces with an XDP program attached: $n"
