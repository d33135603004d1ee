//! A small, fast, non-cryptographic hasher for the classifier's integer keys.
//!
//! Keys are masked addresses (low bits all zero), set ids and ports: hashbrown picks the bucket
//! from the low bits of the hash, so a plain multiply (whose low bits depend only on the
//! input's low bits) would pile every /24 key into a few buckets. A folded multiply (the high
//! and low halves of the 128-bit product xored) mixes every input bit into every output bit.
//! Keys come from the control plane, not from packets, so flooding resistance is not needed:
//! a packet only chooses which of the existing keys it probes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Default, Clone, Copy)]
pub(crate) struct FoldHasher(u64);

#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher for FoldHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = folded_multiply(self.0 ^ v, MULTIPLIER);
    }

    #[inline]
    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FoldHasher>>;
