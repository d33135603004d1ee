//! Neighbours on the uplink, which the kernel resolves.
//!
//! The XDP program passes ARP on the uplink to the kernel, so that host networking never
//! depends on the vRouter; the slow path must therefore not speak ARP there itself. Instead it
//! asks the kernel to resolve a gateway (by sending a zero-length UDP datagram to the
//! gateway's discard port, RFC 863, from a socket bound to the uplink: the kernel has to ARP
//! before it can send it) and then reads the kernel's answer from its neighbour table.
//! [`KernelNeighbors`] keeps this behind a trait so that the state machine is tested without
//! the kernel.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use fastpath::{MacAddr, PortInfo};

/// Access to the kernel's IPv4 neighbour table.
pub trait KernelNeighbors {
    /// Starts resolution of `ip` on `port`'s interface.
    fn solicit(&mut self, port: &PortInfo, ip: Ipv4Addr) -> io::Result<()>;
    /// The MAC the kernel has resolved for `ip` on `port`'s interface, if any.
    fn lookup(&mut self, port: &PortInfo, ip: Ipv4Addr) -> io::Result<Option<MacAddr>>;
}

/// The discard service (RFC 863): a datagram to it is harmless to whoever receives it.
const DISCARD_PORT: u16 = 9;

/// `ATF_COM` in `/proc/net/arp` flags: the entry is complete (include/uapi/linux/if_arp.h).
const ATF_COM: u32 = 0x02;

/// The real kernel: UDP to solicit, `/proc/net/arp` to read.
pub struct ProcNetArp {
    arp_path: PathBuf,
    sockets: HashMap<String, UdpSocket>,
}

impl ProcNetArp {
    pub fn new() -> ProcNetArp {
        // thread-self, not self: a thread may live in another network namespace than the
        // process's main thread (tests do this), and /proc/self/net shows the main thread's.
        ProcNetArp {
            arp_path: PathBuf::from("/proc/thread-self/net/arp"),
            sockets: HashMap::new(),
        }
    }

    fn socket_for(&mut self, ifname: &str) -> io::Result<&UdpSocket> {
        if !self.sockets.contains_key(ifname) {
            let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
            socket.set_nonblocking(true)?;
            bind_to_device(&socket, ifname)?;
            self.sockets.insert(ifname.to_owned(), socket);
        }
        Ok(&self.sockets[ifname])
    }
}

impl Default for ProcNetArp {
    fn default() -> Self {
        ProcNetArp::new()
    }
}

impl KernelNeighbors for ProcNetArp {
    fn solicit(&mut self, port: &PortInfo, ip: Ipv4Addr) -> io::Result<()> {
        let socket = self.socket_for(&port.name)?;
        match socket.send_to(&[], SocketAddrV4::new(ip, DISCARD_PORT)) {
            Ok(_) => Ok(()),
            // The kernel queues the datagram behind ARP; a full queue still means ARP runs.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn lookup(&mut self, port: &PortInfo, ip: Ipv4Addr) -> io::Result<Option<MacAddr>> {
        let text = std::fs::read_to_string(&self.arp_path)?;
        Ok(find_in_proc_net_arp(&text, &port.name, ip))
    }
}

fn bind_to_device(socket: &UdpSocket, ifname: &str) -> io::Result<()> {
    let name = ifname.as_bytes();
    // SAFETY: setsockopt reads `name.len()` bytes from a valid slice on a valid descriptor.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr() as *const libc::c_void,
            name.len() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Finds a complete entry for `ip` on `ifname` in the text of `/proc/net/arp`:
///
/// ```text
/// IP address       HW type     Flags       HW address            Mask     Device
/// 10.0.0.1         0x1         0x2         52:54:00:12:34:56     *        eth0
/// ```
pub fn find_in_proc_net_arp(text: &str, ifname: &str, ip: Ipv4Addr) -> Option<MacAddr> {
    text.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [addr, _hw_type, flags, mac, _mask, device] = cols[..] else {
            return None;
        };
        if device != ifname || addr.parse::<Ipv4Addr>().ok()? != ip {
            return None;
        }
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        if flags & ATF_COM == 0 {
            return None;
        }
        let mac: MacAddr = mac.parse().ok()?;
        (mac != MacAddr([0; 6])).then_some(mac)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
10.0.0.1         0x1         0x2         52:54:00:12:34:56     *        eth0
10.0.0.2         0x1         0x0         00:00:00:00:00:00     *        eth0
10.0.0.1         0x1         0x2         52:54:00:aa:bb:cc     *        eth1
garbage line
";

    #[test]
    fn finds_complete_entries_on_the_right_device() {
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(
            find_in_proc_net_arp(TABLE, "eth0", ip),
            Some(MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]))
        );
        assert_eq!(
            find_in_proc_net_arp(TABLE, "eth1", ip),
            Some(MacAddr([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]))
        );
        assert_eq!(find_in_proc_net_arp(TABLE, "eth2", ip), None);
    }

    #[test]
    fn incomplete_entries_are_not_answers() {
        assert_eq!(
            find_in_proc_net_arp(TABLE, "eth0", Ipv4Addr::new(10, 0, 0, 2)),
            None
        );
    }
}
