//! The synthetic routing table both benchmarks use: fixed seed, so every run measures the
//! same table and the same keys.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Prefixes in the benchmark tables (a full Internet table is about 1M IPv4 prefixes).
pub const PREFIX_COUNT: usize = 1_000_000;

/// A prefix length drawn from a mix shaped like a BGP full table: about half /24, most of the
/// rest /16 to /23, a handful shorter, and about 10% longer than /24 (the /25-/32 routes an
/// IPAM-heavy datacentre table carries: workload /32s and /26 blocks).
fn random_len(rng: &mut StdRng) -> u8 {
    match rng.gen_range(0..1000) {
        0..=1 => rng.gen_range(8..=15),   // 0.2%
        2..=39 => rng.gen_range(16..=19), // 3.8%
        40..=99 => 20,                    // 6%
        100..=159 => 21,                  // 6%
        160..=259 => 22,                  // 10%
        260..=359 => 23,                  // 10%
        360..=899 => 24,                  // 54%
        900..=949 => 26,                  // 5%
        950..=974 => rng.gen_range(25..=31),
        _ => 32, // 2.5%
    }
}

/// `count` prefixes `(network, len)` in unicast space (1.0.0.0 - 223.255.255.255), seeded.
pub fn random_prefixes(count: usize, seed: u64) -> Vec<(u32, u8)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let len = random_len(&mut rng);
            let addr: u32 = rng.gen_range(0x0100_0000..0xe000_0000);
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            (addr & mask, len)
        })
        .collect()
}

/// `count` lookup keys: half inside a random prefix of `prefixes` (hits), half uniform over
/// the whole address space (a mix of hits in short prefixes and misses).
pub fn random_keys(prefixes: &[(u32, u8)], count: usize, seed: u64) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            if rng.gen_bool(0.5) {
                let (addr, len) = prefixes[rng.gen_range(0..prefixes.len())];
                let host_bits = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
                addr | (rng.gen::<u32>() & host_bits)
            } else {
                rng.gen()
            }
        })
        .collect()
}
