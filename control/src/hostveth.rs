//! The way between the vRouter and the node's own network stack: a veth pair (the default),
//! or one TAP (`host_port = "tap"`), there whenever the node has an uplink.
//!
//! With a TAP, `brhost0` is the kernel's end as below and the vRouter holds its descriptor
//! instead of a veth peer: the node's stack hands over and takes whole 64 KiB TCP segments with
//! their offload metadata (see `fastpath::port`), so pod-to-node TCP is not cut to the MTU, and
//! its offloads stay on.
//!
//! - `brhost0` (the kernel's end): the TC egress program redirects the node's own packets out
//!   of it; the vRouter delivers the packets policy lets through to the node into it (the
//!   kernel takes packets for the node's addresses on any interface). Its checksum and
//!   segmentation offloads are off, so that what the redirect sends through it is finished
//!   (checksums filled in, segments of at most the MTU). Reverse path filtering is loose there,
//!   as the routes back to the senders go out of the uplink; and it holds one link-local
//!   address, [`KERNEL_END_ADDRESS`], because Linux drops packets arriving on an interface
//!   without any address whenever reverse path filtering is on, loose or strict.
//! - `brhost0-vr` (the vRouter's end): an ordinary vRouter port of kind `Host`.
//!
//! The pair exists whenever the node has an uplink: workloads' traffic to the node is
//! delivered into `brhost0`, and the kernel routes the IP pools to the vRouter through it
//! ([`route_pools`]), so the node reaches every workload (and answers them) as a Calico host
//! does, through the vRouter and the workloads' policy. The node's own traffic through the
//! uplink takes the pair only while a host endpoint is enforced.

use std::net::Ipv4Addr;
use std::process::Command;

use fastpath::MacAddr;

use crate::host::Ipv4Prefix;

/// The kernel's end.
pub const KERNEL_END: &str = "brhost0";

/// What the way to the node's stack is made of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostPort {
    /// A veth pair, the vRouter's end served by AF_XDP.
    #[default]
    Veth,
    /// One TAP with virtio-net headers, attached to by the vRouter.
    Tap,
}

impl HostPort {
    /// The name of the vRouter's port.
    pub fn vrouter_end(self) -> &'static str {
        match self {
            HostPort::Veth => VROUTER_END,
            HostPort::Tap => KERNEL_END,
        }
    }

    /// What `name` is now, if it exists: a TAP (tun devices have `tun_flags`) or not.
    pub fn of(name: &str) -> Option<HostPort> {
        let dir = std::path::Path::new("/sys/class/net").join(name);
        if !dir.exists() {
            return None;
        }
        Some(if dir.join("tun_flags").exists() {
            HostPort::Tap
        } else {
            HostPort::Veth
        })
    }
}
/// The vRouter's end.
pub const VROUTER_END: &str = "brhost0-vr";

/// The kernel's end's address (see the module docs); link-local, used by nothing else.
pub const KERNEL_END_ADDRESS: &str = "169.254.0.251/32";

/// Creates the pair or the TAP (or takes the one a previous run left, when it is of that
/// kind), with `mtu`, up.
pub fn ensure(mtu: u16, kind: HostPort) -> Result<(), String> {
    if HostPort::of(KERNEL_END).is_some_and(|now| now != kind) {
        run(&["ip", "link", "del", KERNEL_END])?;
    }
    if kind == HostPort::Tap {
        return ensure_tap(mtu);
    }
    if !exists(KERNEL_END) {
        // One queue each: the vRouter serves queue 0 of its end, and a veth delivers on the
        // queue the sending end picked.
        run(&[
            "ip",
            "link",
            "add",
            KERNEL_END,
            "numtxqueues",
            "1",
            "numrxqueues",
            "1",
            "type",
            "veth",
            "peer",
            "name",
            VROUTER_END,
            "numtxqueues",
            "1",
            "numrxqueues",
            "1",
        ])?;
    }
    let mtu = mtu.to_string();
    for end in [KERNEL_END, VROUTER_END] {
        run(&["ip", "link", "set", end, "mtu", &mtu, "up"])?;
        // Only IPv4 goes round the vRouter; IPv6 on the pair would be noise.
        write_sysctl(&format!("/proc/sys/net/ipv6/conf/{end}/disable_ipv6"), "1");
    }
    kernel_end_settings()?;
    for end in [KERNEL_END, VROUTER_END] {
        for feature in ["tx", "tso", "gso", "gro"] {
            // Some features are fixed on some kernels; what matters (tx checksum, tso, gso on
            // the kernel's end) is settable on veth.
            let _ = Command::new("ethtool")
                .args(["-K", end, feature, "off"])
                .output();
        }
    }
    Ok(())
}

/// The TAP: persistent (it outlives a restart of the node, like the pair), offloads left on.
fn ensure_tap(mtu: u16) -> Result<(), String> {
    if !exists(KERNEL_END) {
        run(&[
            "ip", "tuntap", "add", "dev", KERNEL_END, "mode", "tap", "vnet_hdr",
        ])?;
    }
    run(&[
        "ip",
        "link",
        "set",
        KERNEL_END,
        "mtu",
        &mtu.to_string(),
        "up",
    ])?;
    kernel_end_settings()
}

/// The kernel's end's sysctls and address (see the module docs).
fn kernel_end_settings() -> Result<(), String> {
    write_sysctl(
        &format!("/proc/sys/net/ipv6/conf/{KERNEL_END}/disable_ipv6"),
        "1",
    );
    // Loose (2): the route back to a sender is through the uplink, not this interface.
    write_sysctl(
        &format!("/proc/sys/net/ipv4/conf/{KERNEL_END}/rp_filter"),
        "2",
    );
    run(&[
        "ip",
        "addr",
        "replace",
        KERNEL_END_ADDRESS,
        "dev",
        KERNEL_END,
        "scope",
        "link",
    ])
}

/// The kernel's next hop for the pools: an address nobody has, whose MAC a permanent
/// neighbour entry says is the vRouter's end.
pub const VROUTER_NEXT_HOP: &str = "169.254.0.250";

/// Routes `pools` from the node's stack to the vRouter (`vrouter_mac`: its end's MAC), from
/// `src` (the node's address), and takes away the routes of `previous` pools no longer there.
pub fn route_pools(
    pools: &[Ipv4Prefix],
    previous: &[Ipv4Prefix],
    src: Option<Ipv4Addr>,
    vrouter_mac: MacAddr,
) -> Result<(), String> {
    let mac = vrouter_mac.to_string();
    run(&[
        "ip",
        "neigh",
        "replace",
        VROUTER_NEXT_HOP,
        "lladdr",
        &mac,
        "dev",
        KERNEL_END,
        "nud",
        "permanent",
    ])?;
    let src = src.map(|a| a.to_string());
    for pool in pools {
        let prefix = pool.to_string();
        let mut args = vec![
            "ip",
            "route",
            "replace",
            &prefix,
            "via",
            VROUTER_NEXT_HOP,
            "dev",
            KERNEL_END,
            "onlink",
        ];
        if let Some(src) = &src {
            args.extend(["src", src.as_str()]);
        }
        run(&args)?;
    }
    for pool in previous.iter().filter(|p| !pools.contains(p)) {
        let prefix = pool.to_string();
        if let Err(e) = run(&[
            "ip",
            "route",
            "del",
            &prefix,
            "via",
            VROUTER_NEXT_HOP,
            "dev",
            KERNEL_END,
        ]) {
            tracing::debug!(error = %e, "removing a pool route from the node's stack");
        }
    }
    Ok(())
}

/// Deletes the pair (both ends go together, and the routes through it) or the TAP; nothing
/// when it is not there.
pub fn remove() {
    if exists(KERNEL_END) {
        if let Err(e) = run(&["ip", "link", "del", KERNEL_END]) {
            tracing::warn!(error = %e, "cannot remove the host veth pair");
        }
    }
}

pub fn exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn write_sysctl(path: &str, value: &str) {
    if let Err(e) = std::fs::write(path, value) {
        tracing::warn!(%path, error = %e, "cannot write sysctl");
    }
}
