//! One NIC driver's settings, and the kernel versions the dataplane's features need.

use std::fmt;

use xdp_settings::frame_sizes::XDP_HEADROOM;
use xdp_settings::{RxMode, XdpMode};

/// How many of the interface's queues get an AF_XDP socket and a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueuePolicy {
    All,
    /// Half of them (rounded down, at least one): drivers that need the rest as XDP TX queues.
    Half,
    One,
    Fixed(u32),
}

impl QueuePolicy {
    /// Queues to use on an interface with `available` queues (never 0, never above it).
    pub fn queues(&self, available: u32) -> u32 {
        let available = available.max(1);
        match *self {
            QueuePolicy::All => available,
            QueuePolicy::Half => (available / 2).max(1),
            QueuePolicy::One => 1,
            QueuePolicy::Fixed(n) => n.clamp(1, available),
        }
    }
}

impl fmt::Display for QueuePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueuePolicy::All => f.write_str("all"),
            QueuePolicy::Half => f.write_str("half"),
            QueuePolicy::One => f.write_str("one"),
            QueuePolicy::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// A kernel version, major.minor (the patch level decides no feature we test for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    pub const fn new(major: u32, minor: u32) -> KernelVersion {
        KernelVersion { major, minor }
    }

    /// Reads the leading `major.minor` of a release string (`6.18.44-fc-v669`, `5.4`).
    pub fn parse(text: &str) -> Option<KernelVersion> {
        let mut parts = text.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(KernelVersion { major, minor })
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// AF_XDP sockets appeared in 4.18.
pub const AF_XDP_KERNEL: KernelVersion = KernelVersion::new(4, 18);
/// XDP_USE_NEED_WAKEUP (the workers rely on it to sleep) appeared in 5.4.
pub const NEED_WAKEUP_KERNEL: KernelVersion = KernelVersion::new(5, 4);
/// SO_PREFER_BUSY_POLL and SO_BUSY_POLL_BUDGET appeared in 5.11.
pub const PREFER_BUSY_POLL_KERNEL: KernelVersion = KernelVersion::new(5, 11);

/// An Ethernet II header: destination, source, EtherType.
const ETHERNET_HEADER_LEN: u32 = 14;

/// Taken from a frame before the packet fits: the headroom the kernel keeps in front of every
/// AF_XDP frame, and the Ethernet header.
const FRAME_OVERHEAD: u32 = XDP_HEADROOM + ETHERNET_HEADER_LEN;

/// One NIC driver's settings. See hw-profiles/README.md for what each field means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HwProfile {
    pub driver: String,
    pub xdp_mode: XdpMode,
    pub zero_copy: bool,
    pub queue_policy: QueuePolicy,
    pub rx_ring_size: u32,
    pub tx_ring_size: u32,
    pub frame_size: u32,
    pub frame_headroom: u32,
    pub batch_size: u32,
    pub rx_mode: RxMode,
    pub prefer_busy_poll: bool,
    pub busy_poll_budget: u32,
    pub napi_defer_hard_irqs: u32,
    pub gro_flush_timeout_ns: u32,
    pub max_mtu_single_buffer: u32,
    pub min_kernel: KernelVersion,
    pub quirks: Vec<String>,
}

/// Every field a profile file must set, in file order.
pub const FIELDS: &[&str] = &[
    "driver",
    "xdp_mode",
    "zero_copy",
    "queue_policy",
    "rx_ring_size",
    "tx_ring_size",
    "frame_size",
    "frame_headroom",
    "batch_size",
    "rx_mode",
    "prefer_busy_poll",
    "busy_poll_budget",
    "napi_defer_hard_irqs",
    "gro_flush_timeout_ns",
    "max_mtu_single_buffer",
    "min_kernel",
    "quirks",
];

impl HwProfile {
    /// The largest MTU a single-buffer AF_XDP frame of this profile holds: the driver's limit,
    /// and what is left of a frame after the kernel's headroom, ours and the Ethernet header.
    pub fn max_mtu(&self) -> u32 {
        let frame_room = self
            .frame_size
            .saturating_sub(FRAME_OVERHEAD + self.frame_headroom);
        self.max_mtu_single_buffer.min(frame_room)
    }

    /// The oldest kernel this profile works on: the driver's own minimum, need_wakeup, and
    /// SO_PREFER_BUSY_POLL when the profile asks for it.
    pub fn required_kernel(&self) -> KernelVersion {
        let mut needed = self.min_kernel.max(NEED_WAKEUP_KERNEL);
        if self.prefer_busy_poll {
            needed = needed.max(PREFER_BUSY_POLL_KERNEL);
        }
        needed
    }

    /// Every field at a stand-in value: what parsing starts from (a file must then set every
    /// field), and what a single field is checked on.
    pub(super) fn placeholder() -> HwProfile {
        HwProfile {
            driver: String::new(),
            xdp_mode: XdpMode::Generic,
            zero_copy: false,
            queue_policy: QueuePolicy::One,
            rx_ring_size: 0,
            tx_ring_size: 0,
            frame_size: 0,
            frame_headroom: 0,
            batch_size: 0,
            rx_mode: RxMode::Adaptive,
            prefer_busy_poll: false,
            busy_poll_budget: 0,
            napi_defer_hard_irqs: 0,
            gro_flush_timeout_ns: 0,
            max_mtu_single_buffer: 0,
            min_kernel: AF_XDP_KERNEL,
            quirks: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_profiles::generic_text;

    #[test]
    fn kernel_versions_parse_from_release_strings() {
        assert_eq!(
            KernelVersion::parse("6.18.44-fc-v669"),
            Some(KernelVersion::new(6, 18))
        );
        assert_eq!(KernelVersion::parse("5.4"), Some(KernelVersion::new(5, 4)));
        assert_eq!(KernelVersion::parse("x.y"), None);
        assert_eq!(KernelVersion::parse("6"), None);
        assert!(KernelVersion::new(5, 10) < KernelVersion::new(5, 11));
    }

    #[test]
    fn queue_policies_stay_within_the_available_queues() {
        assert_eq!(QueuePolicy::All.queues(8), 8);
        assert_eq!(QueuePolicy::Half.queues(8), 4);
        assert_eq!(QueuePolicy::Half.queues(1), 1);
        assert_eq!(QueuePolicy::One.queues(8), 1);
        assert_eq!(QueuePolicy::Fixed(16).queues(8), 8);
        assert_eq!(QueuePolicy::Fixed(2).queues(0), 1);
    }

    #[test]
    fn max_mtu_takes_the_smaller_of_driver_and_frame_limits() {
        let mut p = HwProfile::parse("g.toml", &generic_text()).unwrap();
        p.max_mtu_single_buffer = 3504;
        p.frame_size = 2048;
        assert_eq!(p.max_mtu(), 2048 - 256 - 14);
        p.frame_size = 4096;
        assert_eq!(p.max_mtu(), 3504);
        p.frame_headroom = 512;
        assert_eq!(
            p.max_mtu(),
            4096 - 256 - 512 - 14,
            "the frame is now the tighter limit"
        );
    }
}
