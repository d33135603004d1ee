//! Flow ownership between several workers.
//!
//! When several workers run, connection tracking stays right only if both directions of a
//! flow meet the same worker's flow table. The owner of a frame is the same for both
//! directions: a symmetric hash of its 5-tuple (the inner one for IP-in-IP), or, for replies
//! to source-NATed flows, the worker whose slice of the NAT ports holds the destination port
//! (each worker then allocates NAT ports from its own slice). A worker that receives a frame
//! it does not own hands it to the owner (VPP calls this handoff).

use crate::tables::FloatingIps;

/// The worker (of `workers`) that owns the flow of Ethernet `frame`. Frames that are not
/// IPv4, or too short to read, belong to worker 0. `nat` is the node's address when NAT
/// outgoing is on: frames to it on a NAT port belong to that port's slice. A frame to a
/// `floating` IP counts as addressed to its workload, as its replies come from there.
pub fn flow_owner(
    frame: &[u8],
    workers: usize,
    nat: Option<[u8; 4]>,
    floating: &FloatingIps,
) -> usize {
    if workers <= 1 {
        return 0;
    }
    let Some(mut t) = FiveTuple::of(frame) else {
        return 0;
    };
    if let Some(internal) = floating.internal(t.dst.into()) {
        t.dst = internal.octets();
    }
    if let (Some(node), Some(port)) = (nat, t.dst_port) {
        if t.dst == node && crate::policy::NAT_PORTS.contains(&port) {
            return nat_slice_owner(port, workers);
        }
    }
    (t.symmetric_hash() % workers as u64) as usize
}

/// The NAT ports worker `worker` of `workers` allocates from: consecutive, equal slices of
/// [`crate::policy::NAT_PORTS`] (the last one takes the remainder).
pub fn nat_slice(worker: usize, workers: usize) -> std::ops::RangeInclusive<u16> {
    let (first, last) = (
        u32::from(*crate::policy::NAT_PORTS.start()),
        u32::from(*crate::policy::NAT_PORTS.end()),
    );
    let workers = workers.max(1) as u32;
    let worker = (worker as u32).min(workers - 1);
    let size = (last - first + 1) / workers;
    let start = first + worker * size;
    let end = if worker == workers - 1 {
        last
    } else {
        start + size - 1
    };
    start as u16..=end as u16
}

/// The worker whose [`nat_slice`] holds NAT port `port`.
fn nat_slice_owner(port: u16, workers: usize) -> usize {
    let first = u32::from(*crate::policy::NAT_PORTS.start());
    let size = (u32::from(*crate::policy::NAT_PORTS.end()) - first + 1) / workers as u32;
    ((u32::from(port).saturating_sub(first) / size.max(1)) as usize).min(workers - 1)
}

/// Addresses, protocol and ports (echo identifier for ICMP echo) of an IPv4 frame.
#[derive(Debug, PartialEq, Eq)]
struct FiveTuple {
    src: [u8; 4],
    dst: [u8; 4],
    protocol: u8,
    src_port: Option<u16>,
    dst_port: Option<u16>,
}

impl FiveTuple {
    fn of(frame: &[u8]) -> Option<FiveTuple> {
        if frame.get(12..14)? != [0x08, 0x00] {
            return None;
        }
        let mut ip = frame.get(14..)?;
        // IP-in-IP (RFC 2003): the flow is the inner packet's, as the flow table sees it.
        for _ in 0..2 {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if ip.first()? >> 4 != 4 || ihl < 20 || ip.len() < ihl {
                return None;
            }
            let protocol = ip[9];
            if protocol == 4 {
                ip = &ip[ihl..];
                continue;
            }
            let later_fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0;
            let l4 = &ip[ihl..];
            let ports = match protocol {
                6 | 17 if !later_fragment => l4.get(0..4).map(|p| {
                    (
                        u16::from_be_bytes([p[0], p[1]]),
                        u16::from_be_bytes([p[2], p[3]]),
                    )
                }),
                // Echo request and reply (RFC 792): the identifier stands for both ports.
                1 if !later_fragment && matches!(l4.first(), Some(0) | Some(8)) => l4
                    .get(4..6)
                    .map(|i| u16::from_be_bytes([i[0], i[1]]))
                    .map(|id| (id, id)),
                _ => None,
            };
            return Some(FiveTuple {
                src: ip[12..16].try_into().ok()?,
                dst: ip[16..20].try_into().ok()?,
                protocol,
                src_port: ports.map(|p| p.0),
                dst_port: ports.map(|p| p.1),
            });
        }
        None
    }

    /// The same value for both directions: the two (address, port) ends are ordered first.
    fn symmetric_hash(&self) -> u64 {
        let a =
            (u64::from(u32::from_be_bytes(self.src)) << 16) | u64::from(self.src_port.unwrap_or(0));
        let b =
            (u64::from(u32::from_be_bytes(self.dst)) << 16) | u64::from(self.dst_port.unwrap_or(0));
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut h =
            lo.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ hi.rotate_left(29) ^ u64::from(self.protocol);
        // MurmurHash3's finaliser spreads the bits so that `% workers` is even.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 frame with a 4-byte L4 header start (ports) or ICMP echo.
    fn ipv4_frame(protocol: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + l4.len()) as u16;
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            protocol,
            0,
            0,
        ]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(l4);
        f
    }

    /// The owner without NAT outgoing or floating IPs.
    fn owner(frame: &[u8], workers: usize) -> usize {
        flow_owner(frame, workers, None, &FloatingIps::default())
    }

    #[test]
    fn a_flow_to_a_floating_ip_has_the_owner_of_its_replies_from_the_workload() {
        let (client, external, internal) = ([203, 0, 113, 9], [198, 51, 100, 7], [192, 168, 0, 7]);
        let floating = FloatingIps::new([(external.into(), internal.into())]);
        let mut differ = 0;
        for sport in 1000..1100u16 {
            let there = ipv4_frame(6, client, external, &udp(sport, 80));
            let back = ipv4_frame(6, internal, client, &udp(80, sport));
            assert_eq!(
                flow_owner(&there, 4, None, &floating),
                flow_owner(&back, 4, None, &floating),
                "sport {sport}"
            );
            differ += usize::from(owner(&there, 4) != owner(&back, 4));
        }
        assert!(
            differ > 0,
            "without the floating IPs they would not all meet"
        );
    }

    fn udp(sport: u16, dport: u16) -> Vec<u8> {
        [sport.to_be_bytes(), dport.to_be_bytes(), [0, 8], [0, 0]].concat()
    }

    #[test]
    fn both_directions_of_a_flow_have_the_same_owner_and_flows_spread_over_workers() {
        let (a, b) = ([192, 168, 0, 1], [192, 168, 0, 2]);
        let mut owners = [0usize; 4];
        for sport in 1000..1400u16 {
            let there = ipv4_frame(17, a, b, &udp(sport, 80));
            let back = ipv4_frame(17, b, a, &udp(80, sport));
            let there_owner = owner(&there, 4);
            assert_eq!(there_owner, owner(&back, 4), "sport {sport}");
            owners[there_owner] += 1;
        }
        assert!(
            owners.iter().all(|n| *n > 50),
            "400 flows over 4 workers: {owners:?}"
        );
        // Echo request and reply share the identifier.
        let request = ipv4_frame(1, a, b, &[8, 0, 0, 0, 0x12, 0x34, 0, 1]);
        let reply = ipv4_frame(1, b, a, &[0, 0, 0, 0, 0x12, 0x34, 0, 1]);
        assert_eq!(owner(&request, 7), owner(&reply, 7));
        // IP-in-IP is owned by its inner flow.
        let inner = ipv4_frame(17, a, b, &udp(5000, 53));
        let mut outer = ipv4_frame(4, [10, 0, 0, 1], [10, 0, 0, 2], &inner[14..]);
        outer[16] = 0; // the outer total length is not read
        assert_eq!(owner(&outer, 5), owner(&inner, 5));
    }

    #[test]
    fn one_worker_owns_everything_and_junk_belongs_to_worker_zero() {
        let frame = ipv4_frame(17, [1, 2, 3, 4], [5, 6, 7, 8], &udp(1, 2));
        assert_eq!(owner(&frame, 1), 0);
        assert_eq!(owner(&[], 4), 0);
        assert_eq!(owner(&frame[..20], 4), 0, "truncated IPv4 header");
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(owner(&arp, 4), 0);
        let mut bad_ihl = frame.clone();
        bad_ihl[14] = 0x4f; // 60-byte header in a shorter packet
        assert_eq!(owner(&bad_ihl, 4), 0);
    }

    #[test]
    fn nat_replies_go_to_the_worker_whose_slice_holds_the_port_and_slices_tile_the_range() {
        let node = [10, 99, 0, 1];
        for workers in 1..=5 {
            let mut next = *crate::policy::NAT_PORTS.start();
            for w in 0..workers {
                let slice = nat_slice(w, workers);
                assert_eq!(*slice.start(), next, "slices are contiguous");
                next = slice.end().wrapping_add(1);
                for port in [*slice.start(), *slice.end()] {
                    let reply = ipv4_frame(17, [8, 8, 8, 8], node, &udp(53, port));
                    assert_eq!(
                        flow_owner(&reply, workers, Some(node), &FloatingIps::default()),
                        w,
                        "port {port} of {workers} workers"
                    );
                }
            }
            assert_eq!(
                next.wrapping_sub(1),
                *crate::policy::NAT_PORTS.end(),
                "the last slice ends the range"
            );
        }
        // Not to the node, or not a NAT port: the hash decides, symmetrically.
        let other = ipv4_frame(17, [8, 8, 8, 8], [10, 99, 0, 9], &udp(53, 61000));
        let back = ipv4_frame(17, [10, 99, 0, 9], [8, 8, 8, 8], &udp(61000, 53));
        assert_eq!(
            flow_owner(&other, 3, Some(node), &FloatingIps::default()),
            flow_owner(&back, 3, Some(node), &FloatingIps::default())
        );
    }
}
