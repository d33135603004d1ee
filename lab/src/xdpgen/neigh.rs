//! Interfaces and neighbours: the MAC and next hop the generator addresses its frames to.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::{invalid, io, XdpGenError};
pub(crate) fn check_dev(dev: &str) -> Result<(), XdpGenError> {
    let ok = !dev.is_empty()
        && dev.len() < libc::IFNAMSIZ
        && dev
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid("dev", dev, "not an interface name"))
    }
}

/// The interface's MAC from sysfs.
pub fn interface_mac(dev: &str) -> Result<[u8; 6], XdpGenError> {
    check_dev(dev)?;
    let path = format!("/sys/class/net/{dev}/address");
    let text = std::fs::read_to_string(&path).map_err(io(format!("reading {path}")))?;
    parse_mac(text.trim())
        .ok_or_else(|| invalid("dev", dev, format!("unreadable MAC {:?}", text.trim())))
}

pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

pub(crate) fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The interface's IPv4 address (SIOCGIFADDR).
pub fn interface_ipv4(dev: &str) -> Result<Ipv4Addr, XdpGenError> {
    check_dev(dev)?;
    #[repr(C)]
    struct IfReqAddr {
        name: [libc::c_char; libc::IFNAMSIZ],
        addr: libc::sockaddr_in,
        _pad: [u8; 8],
    }
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(io("socket for SIOCGIFADDR"))?;
    // SAFETY: all-zeroes is a valid ifreq.
    let mut req: IfReqAddr = unsafe { std::mem::zeroed() };
    for (d, s) in req.name.iter_mut().zip(dev.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: SIOCGIFADDR reads the name and writes a sockaddr into our ifreq-sized struct.
    let ret = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFADDR, &mut req) };
    if ret != 0 {
        return Err(XdpGenError::Io {
            op: format!("SIOCGIFADDR on {dev} (does it have an IPv4 address?)"),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(Ipv4Addr::from(u32::from_be(req.addr.sin_addr.s_addr)))
}

/// The next hop towards `dst` out of `dev` from a `/proc/net/route` table: the gateway of the
/// longest matching route on `dev`, or `dst` itself for an on-link route.
pub fn next_hop_from_routes(table: &str, dev: &str, dst: Ipv4Addr) -> Option<Ipv4Addr> {
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(u32::from_be)
            .map(Ipv4Addr::from)
    };
    let dst_bits = u32::from(dst);
    let mut best: Option<(u32, Ipv4Addr)> = None;
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (Some(iface), Some(dest), Some(gw), Some(mask)) = (
            cols.first(),
            cols.get(1).and_then(|s| hex(s)),
            cols.get(2).and_then(|s| hex(s)),
            cols.get(7).and_then(|s| hex(s)),
        ) else {
            continue;
        };
        let mask_bits = u32::from(mask);
        if *iface != dev || dst_bits & mask_bits != u32::from(dest) & mask_bits {
            continue;
        }
        let len = mask_bits.count_ones();
        if best.is_none_or(|(l, _)| len > l) {
            let hop = if gw.is_unspecified() { dst } else { gw };
            best = Some((len, hop));
        }
    }
    best.map(|(_, hop)| hop)
}

/// The complete neighbour entry of `ip` on `dev` in a `/proc/net/arp` table.
pub fn neighbour_from_arp(table: &str, dev: &str, ip: Ipv4Addr) -> Option<[u8; 6]> {
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [addr, _hw_type, flags, mac, _mask, iface] = cols[..] else {
            continue;
        };
        // ATF_COM (0x2): the entry is resolved.
        let complete =
            u32::from_str_radix(flags.trim_start_matches("0x"), 16).is_ok_and(|f| f & 0x2 != 0);
        if iface == dev && complete && addr.parse() == Ok(ip) {
            return parse_mac(mac).filter(|m| *m != [0; 6]);
        }
    }
    None
}

/// Resolves the MAC of the next hop towards `dst`: from the neighbour table, or, if absent,
/// after making the kernel resolve it (a datagram to the discard port of the next hop),
/// waiting up to `wait`.
pub fn resolve_next_hop(
    dev: &str,
    dst: Ipv4Addr,
    wait: Duration,
) -> Result<(Ipv4Addr, [u8; 6]), XdpGenError> {
    check_dev(dev)?;
    let routes =
        std::fs::read_to_string("/proc/net/route").map_err(io("reading /proc/net/route"))?;
    let next_hop = next_hop_from_routes(&routes, dev, dst)
        .ok_or_else(|| invalid("dst", dst, format!("no route to it out of {dev}")))?;
    let started = Instant::now();
    let mut last_trigger: Option<Instant> = None;
    loop {
        let arp = std::fs::read_to_string("/proc/net/arp").map_err(io("reading /proc/net/arp"))?;
        if let Some(mac) = neighbour_from_arp(&arp, dev, next_hop) {
            return Ok((next_hop, mac));
        }
        if started.elapsed() >= wait {
            return Err(XdpGenError::NoNeighbour {
                next_hop,
                dev: dev.to_string(),
                waited: wait,
            });
        }
        if last_trigger.is_none_or(|t| t.elapsed() >= Duration::from_millis(500)) {
            // Port 9 (discard): the kernel must resolve the next hop to send it. Failure is
            // fine: the next read of the table tells.
            if let Ok(s) = UdpSocket::bind("0.0.0.0:0") {
                let _ = s.send_to(&[0], (dst, 9));
            }
            last_trigger = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_hop_is_the_gateway_of_the_longest_route_on_the_device() {
        // Calico wiring: 169.254.1.1 on link, default via it.
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t00000000\t0101FEA9\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     eth0\t0101FEA9\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n\
                     eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let gw = Ipv4Addr::new(169, 254, 1, 1);
        assert_eq!(
            next_hop_from_routes(table, "eth0", Ipv4Addr::new(192, 168, 0, 2)),
            Some(gw)
        );
        assert_eq!(next_hop_from_routes(table, "eth0", gw), Some(gw));
        let onlink = Ipv4Addr::new(192, 168, 3, 4);
        assert_eq!(next_hop_from_routes(table, "eth1", onlink), Some(onlink));
        assert_eq!(next_hop_from_routes(table, "eth2", onlink), None);
        assert_eq!(next_hop_from_routes("garbage\nx y z", "eth0", onlink), None);
    }

    #[test]
    fn neighbour_entries_must_be_complete() {
        let table = "IP address       HW type     Flags       HW address            Mask     Device\n\
                     169.254.1.1      0x1         0x2         ee:ee:ee:ee:ee:ee     *        eth0\n\
                     10.0.0.9         0x1         0x0         00:00:00:00:00:00     *        eth0\n";
        assert_eq!(
            neighbour_from_arp(table, "eth0", Ipv4Addr::new(169, 254, 1, 1)),
            Some([0xee; 6])
        );
        assert_eq!(
            neighbour_from_arp(table, "eth1", Ipv4Addr::new(169, 254, 1, 1)),
            None
        );
        assert_eq!(
            neighbour_from_arp(table, "eth0", Ipv4Addr::new(10, 0, 0, 9)),
            None
        );
        assert_eq!(parse_mac("ee:ee:ee:ee:ee:ee:ee"), None);
        assert_eq!(parse_mac("zz:ee:ee:ee:ee:ee"), None);
    }
}
