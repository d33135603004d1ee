//! IP in IP between two nodes' kernels as Calico's kernel dataplane does it: the `ipip`
//! driver's `tunl0` with `onlink` routes, or, where the kernel has no `ipip` driver, an LWT
//! BPF program (`kernel_ipip.bpf.c`) that pushes the outer header and a `tc` ingress program
//! that pulls it.

use std::net::Ipv4Addr;
use std::path::Path;

use serde::Serialize;

use lab::cmd::{self, CONFIG_TIMEOUT};
use lab::{MultiLabSpec, UPLINK_IF};

use super::{run_all, strings};
use crate::error::{io_err, BenchError};

/// IP in IP costs one IPv4 header.
pub const IPIP_OVERHEAD: usize = 20;
/// The tunnel MTU of a 1500-byte uplink, as Calico sets it on `tunl0`.
pub const TUNNEL_MTU: usize = 1500 - IPIP_OVERHEAD;
/// Name of the kernel's IPIP device, as Calico's kernel dataplane uses it.
pub const TUNNEL_IF: &str = "tunl0";
/// The BPF program of [`KernelIpip::LwtBpf`], compiled per node at run time.
pub(super) const KERNEL_IPIP_BPF_SOURCE: &str = include_str!("kernel_ipip.bpf.c");

/// How the kernel sides encapsulate IP in IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelIpip {
    /// The `ipip` driver's `tunl0`, with `onlink` routes through it (Calico's kernel IPIP).
    Device,
    /// Routes with `encap bpf xmit` pushing the outer header, a `tc` ingress program pulling
    /// it: for kernels without the `ipip` driver.
    LwtBpf,
}

/// Node `k`'s `tunl0` as Felix sets it for IPIP (MTU 1480, the block's first address) and
/// the route BIRD installs for node `other`'s block: via the other node, `onlink`, through
/// the tunnel, so that the next hop becomes the outer destination.
pub fn kernel_ipip_device_commands(
    spec: &MultiLabSpec,
    k: usize,
    other: usize,
) -> Vec<Vec<String>> {
    let ns = spec.node_spec(k).node_netns();
    let tunnel_address = format!("{}/32", block_first_address(spec, k));
    vec![
        strings(&[
            "ip",
            "-n",
            &ns,
            "link",
            "set",
            TUNNEL_IF,
            "mtu",
            &TUNNEL_MTU.to_string(),
            "up",
        ]),
        strings(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &tunnel_address,
            "dev",
            TUNNEL_IF,
        ]),
        strings(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            &spec.node_block(other),
            "via",
            &spec.node_ip(other).to_string(),
            "dev",
            TUNNEL_IF,
            "onlink",
        ]),
    ]
}

/// The same tunnel without the `ipip` driver: the route to node `other`'s block carries the
/// BPF encapsulation (`object`, built for node `k`) and the tunnel's MTU; eth0's ingress
/// unwraps IPIP from node `other`.
pub fn kernel_ipip_bpf_commands(
    spec: &MultiLabSpec,
    k: usize,
    other: usize,
    object: &Path,
) -> Vec<Vec<String>> {
    let ns = spec.node_spec(k).node_netns();
    let object = object.to_string_lossy();
    // The outer destination is compiled into the program; the route's next hop is the other
    // node on a shared subnet, the router otherwise (CrossSubnet).
    let next_hop = if spec.is_routed(k) == spec.is_routed(other) {
        spec.node_ip(other)
    } else {
        spec.gateway_for(k)
    };
    vec![
        strings(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            &spec.node_block(other),
            "via",
            &next_hop.to_string(),
            "dev",
            UPLINK_IF,
            "mtu",
            &TUNNEL_MTU.to_string(),
            "encap",
            "bpf",
            "xmit",
            "obj",
            &object,
            "section",
            "lwt_xmit",
            "headroom",
            &IPIP_OVERHEAD.to_string(),
        ]),
        strings(&[
            "ip", "netns", "exec", &ns, "tc", "qdisc", "add", "dev", UPLINK_IF, "clsact",
        ]),
        strings(&[
            "ip", "netns", "exec", &ns, "tc", "filter", "add", "dev", UPLINK_IF, "ingress", "bpf",
            "da", "obj", &object, "sec", "tc",
        ]),
    ]
}

/// The `clang` command that builds node `k`'s encapsulation program.
pub fn kernel_ipip_bpf_compile_command(
    clang: &str,
    spec: &MultiLabSpec,
    k: usize,
    other: usize,
    source: &Path,
    object: &Path,
) -> Vec<String> {
    let local = u32::from(spec.node_ip(k));
    let remote = u32::from(spec.node_ip(other));
    vec![
        clang.to_owned(),
        "-O2".into(),
        "-target".into(),
        "bpf".into(),
        "-Wall".into(),
        "-Werror".into(),
        // <linux/bpf.h> needs <asm/types.h> from the multiarch directory (see fastpath's
        // build.rs).
        format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH),
        format!("-DLOCAL_IP={local:#010x}"),
        format!("-DREMOTE_IP={remote:#010x}"),
        "-c".into(),
        source.to_string_lossy().into_owned(),
        "-o".into(),
        object.to_string_lossy().into_owned(),
    ]
}

/// Sets up IPIP between the two nodes' kernels with `tunl0` where the kernel has the `ipip`
/// driver, and with the BPF encapsulation where it does not.
pub fn setup_kernel_ipip(
    spec: &MultiLabSpec,
    dir: &Path,
    clang: &str,
) -> Result<KernelIpip, BenchError> {
    if (1..=2).all(|k| has_tunnel_device(&spec.node_spec(k).node_netns())) {
        for (k, other) in [(1, 2), (2, 1)] {
            run_all(&kernel_ipip_device_commands(spec, k, other))?;
        }
        return Ok(KernelIpip::Device);
    }
    let source = dir.join("kernel_ipip.bpf.c");
    std::fs::write(&source, KERNEL_IPIP_BPF_SOURCE)
        .map_err(io_err(format!("writing {}", source.display())))?;
    for (k, other) in [(1, 2), (2, 1)] {
        let object = dir.join(format!("kernel_ipip_node{k}.o"));
        let compile = kernel_ipip_bpf_compile_command(clang, spec, k, other, &source, &object);
        run_all(std::slice::from_ref(&compile))?;
        run_all(&kernel_ipip_bpf_commands(spec, k, other, &object))?;
    }
    Ok(KernelIpip::LwtBpf)
}

/// Whether this kernel has the `ipip` driver (loaded, built in, or as a module to load), which
/// [`setup_kernel_ipip`] then uses instead of the BPF stand-in.
pub fn has_ipip_driver() -> bool {
    std::path::Path::new("/sys/module/ipip").exists()
        || cmd::run(&["modprobe", "-n", "-q", "ipip"], CONFIG_TIMEOUT).is_ok()
}

/// Whether `ns` has (or can create) the `ipip` driver's fallback device `tunl0`. With the
/// driver loaded, every namespace is born with it; otherwise creating it tells.
fn has_tunnel_device(ns: &str) -> bool {
    let show = ["ip", "-n", ns, "link", "show", TUNNEL_IF];
    if cmd::run(&show, CONFIG_TIMEOUT).is_ok() {
        return true;
    }
    let add = [
        "ip", "-n", ns, "link", "add", "name", TUNNEL_IF, "type", "ipip",
    ];
    // Adding may load the driver as a module, which creates the fallback device itself and
    // makes our own add fail with "exists": look again.
    cmd::run(&add, CONFIG_TIMEOUT).is_ok() || cmd::run(&show, CONFIG_TIMEOUT).is_ok()
}

/// `a.b.k.0`: the first address of node `k`'s block, which Calico gives `tunl0`.
fn block_first_address(spec: &MultiLabSpec, k: usize) -> Ipv4Addr {
    let block = spec.node_block(k);
    let network = block.split('/').next().unwrap_or_default();
    network.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
}
