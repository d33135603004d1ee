#!/usr/bin/env bash
# Installs the Debian packages brindle needs to build, test and run its demo.
# Idempotent: packages already present are not touched, so repeat runs are fast.
set -euo pipefail

PACKAGES=(
    # building the XDP program and libxdp/libbpf (pulled in by xsk-rs)
    build-essential clang llvm libelf-dev zlib1g-dev libpcap-dev m4 pkg-config
    linux-libc-dev libbpf-dev
    # labs and integration tests
    iproute2 iputils-ping iperf3 ethtool procps
    # datastore: etcd v3 server for tests and labs; protoc and the well-known .proto files for
    # the etcd-client crate
    etcd-server etcd-client protobuf-compiler libprotobuf-dev openssl
    # multi-node tests: proving what crosses the segment (IPIP or not)
    tcpdump
    # BGP interop: real peers (BIRD 2, GoBGP) started by the bgp tests
    bird2 gobgpd
    # text in the plots of `brindle-perf report` (read at run time, no fontconfig/freetype)
    fonts-dejavu-core
    # the demo reads the nodes' stats and CNI results (JSON) with python3
    python3
    # the policy benchmark's kernel side: Calico-style iptables chains and ipsets
    iptables ipset
    # the reference CNI plugins (/usr/lib/cni) chained after brindle-cni: portmap
    containernetworking-plugins
    # the scenario suite's HTTP load: nginx in a workload, ab and wrk from another
    nginx apache2-utils wrk
    # Docker's libnetwork workflow (control/tests/docker.rs): dockerd 20.10 and a static
    # busybox for the rootfs `docker import` makes the containers' image from
    docker.io busybox-static
    # the raw AF_XDP ceiling of the e2e benchmark: dpdk-testpmd with its af_xdp driver
    dpdk-dev librte-net-af-xdp23
    # brindle-cni driven by real runtimes: podman (CNI backend) with runc and conmon, containerd
    # (`ctr run --cni`), the reference CNI plugins in /usr/lib/cni, busybox for a rootfs
    podman runc conmon containerd containernetworking-plugins busybox-static
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages ${missing[*]}; run as root to install them" >&2
    exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
