//! Sizes of the buffers frames live in, shared by the ports, the workers, the hand-off between
//! workers and the punt path to the slow path (and by control, which sizes the ports).

/// Largest frame that crosses between workers or between a worker and the slow path: a whole
/// frame of the largest MTU the ports accept (see `port::PortConfig::frame_size_for_mtu`), so
/// that the first packet to a neighbour still being resolved is held rather than refused,
/// whatever its size.
pub const FRAME_BUF_SIZE: usize = 4096;

/// Headroom the kernel reserves at the start of every AF_XDP frame in copy mode
/// (`XDP_PACKET_HEADROOM`).
pub const XDP_HEADROOM: u32 = 256;
