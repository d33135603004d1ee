//! The FIB against a naive reference (every prefix in a Vec, longest match by scanning them
//! all) under random inserts and removes of heavily overlapping prefixes.

use std::net::Ipv4Addr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// The reference: every prefix in a Vec, longest match by scanning all of them.
#[derive(Default)]
struct NaiveFib {
    routes: Vec<(u32, u8, NextHopId)>,
}

impl NaiveFib {
    fn insert(&mut self, addr: u32, len: u8, nh: NextHopId) -> Option<NextHopId> {
        match self.routes.iter_mut().find(|r| r.0 == addr && r.1 == len) {
            Some(r) => Some(std::mem::replace(&mut r.2, nh)),
            None => {
                self.routes.push((addr, len, nh));
                None
            }
        }
    }

    fn remove(&mut self, addr: u32, len: u8) -> Option<NextHopId> {
        let i = self.routes.iter().position(|r| r.0 == addr && r.1 == len)?;
        Some(self.routes.swap_remove(i).2)
    }

    fn lookup(&self, addr: u32) -> Option<NextHopId> {
        self.routes
            .iter()
            .filter(|r| addr & netmask(r.1) == r.0)
            .max_by_key(|r| r.1)
            .map(|r| r.2)
    }
}

/// A random prefix, biased so that prefixes overlap a lot: most fall inside 10.0.0.0/14,
/// lengths /8 to /32 with a few short ones (each short prefix rewrites millions of entries).
fn random_prefix(rng: &mut StdRng) -> (u32, u8) {
    let len = if rng.gen_ratio(1, 100) {
        rng.gen_range(0..8)
    } else {
        rng.gen_range(8..=32)
    };
    let addr = if rng.gen_ratio(4, 5) {
        0x0a00_0000 | rng.gen_range(0..1u32 << 18)
    } else {
        rng.gen()
    };
    (addr & netmask(len), len)
}

fn assert_same_lookups(fib: &Fib, naive: &NaiveFib, rng: &mut StdRng, round: usize) {
    let mut probes: Vec<u32> = (0..2000)
        .map(|_| {
            if rng.gen_ratio(1, 2) {
                0x0a00_0000 | rng.gen_range(0..1u32 << 18)
            } else {
                rng.gen()
            }
        })
        .collect();
    for &(addr, len, _) in &naive.routes {
        let last = addr | !netmask(len);
        probes.extend([addr, last, addr.wrapping_sub(1), last.wrapping_add(1)]);
    }
    probes.extend([0, u32::MAX]);
    for addr in probes {
        assert_eq!(
            fib.lookup(addr),
            naive.lookup(addr),
            "round {round}: lookup of {}",
            Ipv4Addr::from(addr)
        );
    }
}

#[test]
fn random_inserts_and_removes_match_a_naive_reference() {
    let mut rng = StdRng::seed_from_u64(0x0b1d_1e5f);
    let mut fib = Fib::new();
    let mut naive = NaiveFib::default();
    for round in 0..8 {
        for _ in 0..500 {
            let (addr, len) = random_prefix(&mut rng);
            let nh = rng.gen_range(0..1000);
            let prefix = Ipv4Addr::from(addr);
            assert_eq!(fib.insert(prefix, len, nh), Ok(naive.insert(addr, len, nh)));
        }
        // Remove about a third of what is there, plus some prefixes that are not.
        for _ in 0..naive.routes.len() / 3 {
            let (addr, len) = if rng.gen_ratio(1, 5) {
                random_prefix(&mut rng)
            } else {
                let r = naive.routes[rng.gen_range(0..naive.routes.len())];
                (r.0, r.1)
            };
            assert_eq!(
                fib.remove(Ipv4Addr::from(addr), len),
                naive.remove(addr, len)
            );
        }
        assert_eq!(fib.len(), naive.routes.len());
        assert_same_lookups(&fib, &naive, &mut rng, round);
    }
    let mut dump: Vec<_> = fib.iter().map(|(a, l, nh)| (u32::from(a), l, nh)).collect();
    let mut expected = naive.routes.clone();
    dump.sort_unstable();
    expected.sort_unstable();
    assert_eq!(dump, expected);

    // Emptying the table frees every second-level group and leaves no route behind.
    for (addr, len, nh) in expected {
        assert_eq!(fib.remove(Ipv4Addr::from(addr), len), Some(nh));
    }
    assert!(fib.is_empty());
    assert_eq!(fib.groups_in_use(), 0);
    for _ in 0..2000 {
        assert_eq!(fib.lookup(rng.gen()), None);
    }
}
