//! The frames a TAP workload sent that the vRouter never read: when the worker falls behind,
//! the TAP's queue fills and the kernel drops what the workload sends next, counting it as the
//! device's `tx_dropped` (tun_net_xmit). Nothing else sees those frames, so the port reads the
//! count, over rtnetlink (RTM_GETLINK, IFLA_STATS64), from a socket opened inside the
//! workload's namespace when the port attached (a socket keeps the namespace it was made in).
//! Read every 100 ms by the worker, not per packet; the reply lands in a buffer on the stack.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// rtnetlink constants (include/uapi/linux/rtnetlink.h, if_link.h, netlink.h).
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const IFLA_STATS64: u16 = 23;
/// `struct nlmsghdr` and `struct ifinfomsg`.
const NLMSG_HDR_LEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
/// `tx_dropped` is the eighth u64 of `struct rtnl_link_stats64`.
const TX_DROPPED_AT: usize = 7 * 8;
/// Room for one RTM_NEWLINK of a TAP (about 2 KiB) with plenty to spare.
const REPLY_ROOM: usize = 16 * 1024;

/// An rtnetlink socket in the TAP's namespace, and the count when the port attached (a
/// persistent TAP keeps counting while no reader is attached).
pub(super) struct TapStats {
    sock: OwnedFd,
    ifindex: u32,
    baseline: u64,
}

impl TapStats {
    /// Opens the socket in the calling thread's namespace, where `ifindex` is the TAP.
    pub(super) fn open_here(ifindex: u32) -> io::Result<TapStats> {
        // SAFETY: a new socket, owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: just opened.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut stats = TapStats {
            sock,
            ifindex,
            baseline: 0,
        };
        stats.baseline = stats.read_tx_dropped()?;
        Ok(stats)
    }

    /// Frames the TAP's queue dropped since the port attached.
    pub(super) fn queue_dropped(&self) -> io::Result<u64> {
        Ok(self.read_tx_dropped()?.saturating_sub(self.baseline))
    }

    fn read_tx_dropped(&self) -> io::Result<u64> {
        let mut request = [0u8; NLMSG_HDR_LEN + IFINFOMSG_LEN];
        let len = request.len() as u32;
        request[0..4].copy_from_slice(&len.to_ne_bytes());
        request[4..6].copy_from_slice(&RTM_GETLINK.to_ne_bytes());
        request[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        // ifinfomsg: family AF_UNSPEC, then the index at byte 4.
        let index = NLMSG_HDR_LEN + 4;
        request[index..index + 4].copy_from_slice(&(self.ifindex as i32).to_ne_bytes());
        // SAFETY: a zeroed sockaddr_nl addressed to the kernel (pid 0).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let fd = self.sock.as_raw_fd();
        // SAFETY: sending our request buffer to a valid address of the right size.
        let sent = unsafe {
            libc::sendto(
                fd,
                request.as_ptr().cast(),
                request.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut reply = [0u8; REPLY_ROOM];
        // The kernel answers RTM_GETLINK while sendto runs: the reply is queued already.
        // SAFETY: receiving into our own buffer of its length.
        let n = unsafe {
            libc::recv(
                fd,
                reply.as_mut_ptr().cast(),
                reply.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        tx_dropped_of(&reply[..n as usize])
    }
}

/// `tx_dropped` from an RTM_NEWLINK reply.
fn tx_dropped_of(reply: &[u8]) -> io::Result<u64> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let u16_at = |at: usize| {
        reply
            .get(at..at + 2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
    };
    let kind = u16_at(4).ok_or_else(|| bad("rtnetlink reply shorter than its header"))?;
    if kind == NLMSG_ERROR {
        let code = reply
            .get(NLMSG_HDR_LEN..NLMSG_HDR_LEN + 4)
            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        return Err(io::Error::from_raw_os_error(-code));
    }
    if kind != RTM_NEWLINK {
        return Err(bad("rtnetlink reply is not RTM_NEWLINK"));
    }
    let mut at = NLMSG_HDR_LEN + IFINFOMSG_LEN;
    while let (Some(len), Some(kind)) = (u16_at(at), u16_at(at + 2)) {
        let len = usize::from(len);
        if len < 4 {
            break;
        }
        if kind & 0x3fff == IFLA_STATS64 {
            let field = at + 4 + TX_DROPPED_AT;
            return reply
                .get(field..field + 8)
                .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or_default()))
                .ok_or_else(|| bad("IFLA_STATS64 is cut short"));
        }
        // Attributes are aligned to 4 bytes (RTA_ALIGN).
        at += (len + 3) & !3;
    }
    Err(bad("no IFLA_STATS64 in the reply"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTM_NEWLINK with one attribute before the statistics.
    fn reply(tx_dropped: u64) -> Vec<u8> {
        let mut r = vec![0u8; NLMSG_HDR_LEN + IFINFOMSG_LEN];
        r[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
        // IFLA_IFNAME "eth0\0": 4 + 5 bytes, padded to 12.
        r.extend_from_slice(&9u16.to_ne_bytes());
        r.extend_from_slice(&3u16.to_ne_bytes());
        r.extend_from_slice(b"eth0\0\0\0\0");
        let mut stats = vec![0u8; 4 + 24 * 8];
        stats[0..2].copy_from_slice(&((4 + 24 * 8) as u16).to_ne_bytes());
        stats[2..4].copy_from_slice(&IFLA_STATS64.to_ne_bytes());
        stats[4 + TX_DROPPED_AT..4 + TX_DROPPED_AT + 8].copy_from_slice(&tx_dropped.to_ne_bytes());
        r.extend_from_slice(&stats);
        r
    }

    #[test]
    fn tx_dropped_is_read_past_other_attributes_and_bad_replies_are_errors() {
        assert_eq!(tx_dropped_of(&reply(4242)).unwrap(), 4242);
        let full = reply(7);
        // The field ends 12 bytes of name and 4 of attribute header past the fixed headers.
        let field_end = NLMSG_HDR_LEN + IFINFOMSG_LEN + 12 + 4 + TX_DROPPED_AT + 8;
        for cut in 0..full.len() {
            match tx_dropped_of(&full[..cut]) {
                Ok(v) => assert!(cut >= field_end && v == 7, "{cut} bytes: {v}"),
                Err(_) => assert!(cut < field_end, "{cut} bytes hold the whole field"),
            }
        }
        let mut error = vec![0u8; NLMSG_HDR_LEN + 4];
        error[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        error[NLMSG_HDR_LEN..].copy_from_slice(&(-libc::ENODEV).to_ne_bytes());
        let e = tx_dropped_of(&error).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
    }
}
