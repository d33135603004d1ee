//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The one's complement sum is independent of word size as long as carries wrap around
//! (RFC 1071 section 2 (B), (C)), so we add 64-bit big-endian words with end-around carry and
//! fold to 16 bits at the end: a quarter of the additions of a 16-bit loop.

use std::net::Ipv4Addr;

/// Adds `data` to a running one's complement sum `acc`.
///
/// Sums can be chained (`accumulate(accumulate(0, a), b)`) as long as every piece but the last
/// has an even length; an odd final byte is padded with a zero byte (RFC 1071 section 4.1).
#[inline]
pub fn accumulate(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let v = w.try_into().map_or(0, u64::from_be_bytes);
        let (sum, carry) = acc.overflowing_add(v);
        acc = sum + carry as u64;
    }
    let mut tail = 0u64;
    let mut pairs = words.remainder().chunks_exact(2);
    for p in &mut pairs {
        tail += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        tail += u64::from(*last) << 8;
    }
    let (sum, carry) = acc.overflowing_add(tail);
    sum + carry as u64
}

/// Folds a running sum to 16 bits with end-around carries.
#[inline]
pub fn fold(acc: u64) -> u16 {
    let mut s = (acc & 0xffff_ffff) + (acc >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    let mut s = (s as u32 & 0xffff) + (s as u32 >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The Internet checksum of `data`: the complement of its one's complement sum.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(accumulate(0, data))
}

/// The running sum of the IPv4 pseudo header that TCP and UDP checksums cover
/// (RFC 793 section 3.1, RFC 768): source, destination, zero, protocol, length.
#[inline]
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u32) -> u64 {
    u64::from(u32::from(src)) + u64::from(u32::from(dst)) + u64::from(protocol) + u64::from(length)
}

/// RFC 1624 equation 3: the new checksum after one 16-bit word of the covered data changed
/// from `old_word` to `new_word`, without summing the data again: `HC' = ~(~HC + ~m + m')`.
#[inline]
pub fn update_u16(old_csum: u16, old_word: u16, new_word: u16) -> u16 {
    let sum = u32::from(!old_csum) + u32::from(!old_word) + u32::from(new_word);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_rng::Rng;

    /// The textbook 16-bit loop, to check the 64-bit one against.
    fn reference(data: &[u8]) -> u16 {
        let mut sum = 0u32;
        for pair in data.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map_or(0, u32::from);
            sum += hi | lo;
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn rfc1071_example_sums_to_ddf2() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(accumulate(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header_checksum_is_b861() {
        // A real IPv4 header (UDP, 192.168.0.1 -> 192.168.0.199) with checksum field zeroed.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(
            checksum(&h),
            0,
            "a header with a valid checksum sums to 0xffff"
        );
    }

    #[test]
    fn wide_sum_matches_16_bit_reference_for_every_length() {
        let mut rng = Rng::new(7);
        for len in 0..200 {
            for _ in 0..20 {
                let mut data = vec![0u8; len];
                rng.fill(&mut data);
                assert_eq!(
                    checksum(&data),
                    reference(&data),
                    "len {len} data {data:x?}"
                );
            }
        }
        // Worst case for carries: all ones.
        assert_eq!(checksum(&[0xff; 1501]), reference(&[0xff; 1501]));
    }

    #[test]
    fn chained_sums_equal_one_sum() {
        let mut rng = Rng::new(9);
        let mut data = vec![0u8; 99];
        rng.fill(&mut data);
        let chained = accumulate(accumulate(0, &data[..12]), &data[12..]);
        assert_eq!(!fold(chained), checksum(&data));
    }

    #[test]
    fn incremental_update_matches_full_recompute() {
        let mut rng = Rng::new(11);
        for _ in 0..10_000 {
            let mut h = [0u8; 20];
            rng.fill(&mut h);
            h[10] = 0;
            h[11] = 0;
            let c = checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            let at = rng.below(10) * 2;
            if at == 10 {
                continue; // the checksum word itself
            }
            let old = u16::from_be_bytes([h[at], h[at + 1]]);
            let new = rng.next_u64() as u16;
            h[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let updated = update_u16(c, old, new);
            h[10..12].copy_from_slice(&updated.to_be_bytes());
            assert_eq!(
                checksum(&h),
                0,
                "header {h:x?} after word {at} {old:#x} -> {new:#x}"
            );
        }
    }

    #[test]
    fn incremental_ttl_decrement_matches_rfc1624_example() {
        // RFC 1624 section 4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }
}
