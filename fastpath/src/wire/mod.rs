//! Zero-copy views of the headers the vRouter reads and writes, in the style of smoltcp's
//! `wire` module.
//!
//! Every protocol has a `Packet<T: AsRef<[u8]>>` view over a buffer. `Packet::new_checked`
//! validates lengths (and the fields that lengths depend on) once, so that no accessor can panic
//! afterwards; `Packet::new_unchecked` skips that for buffers the caller has already checked or
//! built, and its accessors may panic on a buffer shorter than the header. Setters exist for
//! `T: AsMut<[u8]>`. Where building packets needs it, a small `Repr` parses a checked packet
//! into plain values and emits them into a buffer (`emit` returns an error, never panics, when
//! the buffer is too short).
//!
//! Errors say which header and which field is wrong, so a drop or a log line can be traced to
//! the byte that caused it.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod tcp;
pub mod udp;

pub use arp::{ArpOperation, ArpRepr, Packet as ArpPacket};
pub use ethernet::{EthernetRepr, Packet as EthernetPacket};
pub use icmpv4::{Icmpv4Repr, Packet as Icmpv4Packet};
pub use ipv4::{Ipv4Repr, Packet as Ipv4Packet};
pub use tcp::Packet as TcpPacket;
pub use udp::{Packet as UdpPacket, UdpRepr};

/// A header that cannot be read safely or is not one we handle.
///
/// `header` names the protocol ("ethernet", "arp", "ipv4", ...) and `field` the field at fault
/// ("total_length", "ihl", ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer ends before the header (including options the header announces) does.
    #[error("{header} {field} is truncated: the buffer has {len} bytes, {need} are needed")]
    Truncated {
        header: &'static str,
        field: &'static str,
        len: usize,
        need: usize,
    },
    /// A length field disagrees with the header it belongs to or with the buffer.
    #[error("{header} {field} is {value}, outside the valid range {min}..={max}")]
    BadLength {
        header: &'static str,
        field: &'static str,
        value: usize,
        min: usize,
        max: usize,
    },
    /// A field holds a value this implementation does not accept (version, hardware type, ...).
    #[error("{header} {field} has unsupported value {value:#x}")]
    BadValue {
        header: &'static str,
        field: &'static str,
        value: u32,
    },
}

/// `Err(Truncated)` unless `buf` has at least `need` bytes.
#[inline]
pub(crate) fn check_len(
    header: &'static str,
    field: &'static str,
    len: usize,
    need: usize,
) -> Result<(), WireError> {
    if len < need {
        return Err(WireError::Truncated {
            header,
            field,
            len,
            need,
        });
    }
    Ok(())
}

/// Big-endian reads and writes at fixed offsets. Each one indexes the buffer, so it panics on
/// a short buffer: callers use them only behind a `new_checked` or a length check.
pub(crate) mod be {
    #[inline]
    pub fn read_u16(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    #[inline]
    pub fn read_u32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[inline]
    pub fn write_u16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn write_u32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
}

/// Deterministic pseudo-random bytes for the fuzz-style tests (xorshift64*; no dependency).
#[cfg(test)]
pub(crate) mod test_rng {
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Rng {
            Rng(seed | 1)
        }

        pub fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        pub fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }

        pub fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = self.next_u64() as u8;
            }
        }
    }

    /// Every prefix of `valid`, then `rounds` random buffers, then `rounds` copies of `valid`
    /// with one random byte changed: the inputs the `never_panics` tests feed to `new_checked`.
    pub fn hostile_inputs(valid: &[u8], rounds: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut rng = Rng::new(seed);
        let mut out: Vec<Vec<u8>> = (0..=valid.len()).map(|n| valid[..n].to_vec()).collect();
        for _ in 0..rounds {
            let mut b = vec![0u8; rng.below(valid.len() * 2 + 1)];
            rng.fill(&mut b);
            out.push(b);
        }
        for _ in 0..rounds {
            let mut b = valid.to_vec();
            if !b.is_empty() {
                let at = rng.below(b.len());
                b[at] = rng.next_u64() as u8;
                let cut = rng.below(b.len() + 1);
                if rng.below(4) == 0 {
                    b.truncate(cut);
                }
            }
            out.push(b);
        }
        out
    }
}
