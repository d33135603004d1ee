#!/usr/bin/env bash
# CNI ADD and DEL latency of brindle-cni (+ brindle-ipam, which it execs) as a container
# runtime sees it: RUNS real ADD+DEL pairs, each plugin a fresh process with the netconf on
# stdin, into one network namespace created here, against the embedded store (a temp file)
# holding one pool. Given several binary directories, the runs alternate between them, so that
# they are compared side by side under the same load. Prints median, p90 and min per directory.
# Root (netns, veths).
#
#   scripts/cni-add-latency.sh RUNS BIN_DIR [BIN_DIR...]    e.g. ... 30 target/release
#
# Everything it creates (namespace, temp dir; veths by DEL) is removed on exit.
set -euo pipefail
RUNS=$1
shift
DIRS=()
for dir in "$@"; do DIRS+=("$(readlink -f "$dir")"); done
WORK=$(mktemp -d /tmp/cni-latency.XXXXXX)
NS=cnilat$$
cleanup() {
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$NS"
export DATASTORE_TYPE=embedded BRINDLE_EMBEDDED_PATH=$WORK/store.redb
for i in "${!DIRS[@]}"; do
    # brindle-cni finds brindle-ipam on CNI_PATH: one directory per binary set.
    mkdir -p "$WORK/bin$i"
    ln -s "${DIRS[$i]}/brindle-cni" "$WORK/bin$i/brindle-cni"
    ln -s "${DIRS[$i]}/brindle-ipam" "$WORK/bin$i/brindle-ipam"
    : >"$WORK/add$i"
    : >"$WORK/del$i"
done
cat >"$WORK/pool.yaml" <<YAML
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: latency-pool}
spec: {cidr: 10.77.0.0/16, blockSize: 26}
YAML
"${DIRS[0]}/brindlectl" apply -f "$WORK/pool.yaml" >/dev/null
CONF='{"cniVersion":"1.0.0","name":"latency","type":"brindle-cni","mtu":1400,"nodename":"latency-node","ipam":{"type":"brindle-ipam"}}'

plugin() { # BIN_INDEX COMMAND CONTAINER_ID
    CNI_COMMAND=$2 CNI_CONTAINERID=$3 CNI_NETNS=/run/netns/$NS CNI_IFNAME=eth0 \
        CNI_PATH=$WORK/bin$1 "$WORK/bin$1/brindle-cni" <<<"$CONF" >/dev/null
}
now_us() { echo $(($(date +%s%N) / 1000)); }

# The first ADD claims the node's block and creates the store's tables: not what a steady
# node pays per container, so it is left out.
plugin 0 ADD warmup00000
plugin 0 DEL warmup00000
for run in $(seq 1 "$RUNS"); do
    for i in "${!DIRS[@]}"; do
        id=$(printf 'latency%02d%05d' "$i" "$run")
        t0=$(now_us)
        plugin "$i" ADD "$id"
        t1=$(now_us)
        plugin "$i" DEL "$id"
        t2=$(now_us)
        echo $((t1 - t0)) >>"$WORK/add$i"
        echo $((t2 - t1)) >>"$WORK/del$i"
    done
done

summary() { # FILE LABEL
    sort -n "$1" | awk -v label="$2" '{ v[NR] = $1 } END {
        p90 = int(NR * 0.9); if (p90 < NR * 0.9) p90++
        printf "%s: %d runs, median %.1f ms, p90 %.1f ms, min %.1f ms\n",
            label, NR, v[int((NR + 1) / 2)] / 1000, v[p90] / 1000, v[1] / 1000 }'
}
for i in "${!DIRS[@]}"; do
    summary "$WORK/add$i" "ADD ${DIRS[$i]}"
    summary "$WORK/del$i" "DEL ${DIRS[$i]}"
done
