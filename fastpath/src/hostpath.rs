//! The kernel side of a host endpoint on the uplink (Calico's HostEndpoint): which of the
//! node's own packets the BPF programs send round the vRouter.
//!
//! The node's traffic normally never meets the vRouter: the XDP program leaves it to the
//! kernel. With a host endpoint, the `host` map names the node's address and the kernel's end
//! of a veth pair; the XDP program then sends IPv4 addressed to the node to the vRouter, and
//! the TC egress program ([`XdpProgram::attach_host_egress`]) sends the node's own IPv4 out of
//! that veth, whose other end is a vRouter port. Failsafe ports (Calico's
//! `failsafeInboundHostPorts` / `failsafeOutboundHostPorts`) stay with the kernel both ways, so
//! that a policy, or a stuck vRouter, never cuts the node off from SSH, BGP or its datastore.
//!
//! Failing open: the TC program is attached through a BPF link the node service holds, so it
//! goes with the service, even when the service crashes; the XDP program's redirect falls
//! back to the kernel when no socket is there. The node's networking then works unpoliced.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::RawFd;
use std::ptr::NonNull;

use libxdp_sys as sys;

use crate::xdp::{interface_name, update, XdpError, XdpProgram};

/// A failsafe (protocol, port): IANA protocol number (TCP 6, UDP 17, SCTP 132) and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FailsafePort {
    pub protocol: u8,
    pub port: u16,
}

/// Value of the `host` map (`struct host` in the C program).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct HostEntry {
    node: [u8; 4],
    kernel_ifindex: u32,
}

/// Key of the failsafe maps (`struct failsafe_key`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FailsafeKey {
    protocol: u8,
    pad: u8,
    port: u16,
}

impl From<FailsafePort> for FailsafeKey {
    fn from(p: FailsafePort) -> FailsafeKey {
        FailsafeKey {
            protocol: p.protocol,
            pad: 0,
            port: p.port,
        }
    }
}

impl XdpProgram {
    /// Sends the node's own traffic on the uplink round the vRouter: `Some((node address,
    /// ifindex of the kernel's end of the host veth pair))`; `None` leaves it to the kernel.
    pub fn set_host(&self, host: Option<(Ipv4Addr, u32)>) -> Result<(), XdpError> {
        let entry = match host {
            Some((node, kernel_ifindex)) => HostEntry {
                node: node.octets(),
                kernel_ifindex,
            },
            None => HostEntry::default(),
        };
        update(self.host_fd, &0u32, &entry).map_err(|source| XdpError::MapUpdate {
            map: "host",
            what: format!("{host:?}"),
            source,
        })
    }

    /// Replaces the failsafe ports: `inbound` by destination port on the way in (and source
    /// port on the way out, the replies), `outbound` the other way round.
    pub fn set_failsafe_ports(
        &self,
        inbound: &[FailsafePort],
        outbound: &[FailsafePort],
    ) -> Result<(), XdpError> {
        replace_keys(self.failsafe_in_fd, "failsafe_in", inbound)?;
        replace_keys(self.failsafe_out_fd, "failsafe_out", outbound)
    }

    /// Attaches the TC egress program to the uplink `ifindex`; it stays while the returned
    /// link lives (and no longer than this process).
    pub fn attach_host_egress(&self, ifindex: u32) -> Result<HostEgress, XdpError> {
        // SAFETY: the program belongs to the loaded object; null options take the defaults
        // (append after any other tcx program).
        let link = unsafe {
            sys::bpf_program__attach_tcx(
                self.host_egress.as_ptr(),
                ifindex as i32,
                std::ptr::null(),
            )
        };
        match NonNull::new(link) {
            Some(link) => {
                tracing::info!(interface = %interface_name(ifindex), "host endpoint: TC egress program attached");
                Ok(HostEgress { link, ifindex })
            }
            None => Err(XdpError::Io {
                what: "attaching the host endpoint's TC egress program (tcx, Linux 6.6+)",
                source: io::Error::last_os_error(),
            }),
        }
    }
}

/// Inserts `wanted` into a failsafe map, then deletes every other key.
fn replace_keys(fd: RawFd, map: &'static str, wanted: &[FailsafePort]) -> Result<(), XdpError> {
    let wanted: Vec<FailsafeKey> = wanted.iter().map(|&p| p.into()).collect();
    for key in &wanted {
        update(fd, key, &1u8).map_err(|source| XdpError::MapUpdate {
            map,
            what: format!("{key:?}"),
            source,
        })?;
    }
    let mut stale = Vec::new();
    let mut previous: Option<FailsafeKey> = None;
    loop {
        let mut next = FailsafeKey::default();
        let prev_ptr = previous.as_ref().map_or(std::ptr::null(), |k| {
            k as *const FailsafeKey as *const libc::c_void
        });
        // SAFETY: both pointers are FailsafeKey-sized (the map's key type), or null for the first.
        let err = unsafe {
            sys::bpf_map_get_next_key(
                fd,
                prev_ptr,
                &mut next as *mut FailsafeKey as *mut libc::c_void,
            )
        };
        if err != 0 {
            break;
        }
        if !wanted.contains(&next) {
            stale.push(next);
        }
        previous = Some(next);
    }
    for key in stale {
        // SAFETY: key is FailsafeKey-sized.
        let err = unsafe {
            sys::bpf_map_delete_elem(fd, &key as *const FailsafeKey as *const libc::c_void)
        };
        if err != 0 && -err != libc::ENOENT {
            return Err(XdpError::MapUpdate {
                map,
                what: format!("removing {key:?}"),
                source: io::Error::from_raw_os_error(-err),
            });
        }
    }
    Ok(())
}

/// The TC egress program on the uplink; detached on drop.
#[derive(Debug)]
pub struct HostEgress {
    link: NonNull<sys::bpf_link>,
    ifindex: u32,
}

// SAFETY: a bpf_link is a descriptor and a small heap record libbpf never shares; it is only
// destroyed, once, in Drop.
unsafe impl Send for HostEgress {}

impl HostEgress {
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}

impl Drop for HostEgress {
    fn drop(&mut self) {
        // SAFETY: the link came from bpf_program__attach_tcx and is destroyed exactly once.
        unsafe { sys::bpf_link__destroy(self.link.as_ptr()) };
        tracing::info!(interface = %interface_name(self.ifindex), "host endpoint: TC egress program detached");
    }
}
