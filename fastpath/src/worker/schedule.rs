//! Which ports a loop looks at. Hundreds of ports, most of them idle, must not make every
//! packet slower: ports that had frames recently are *hot* and are polled every loop; the
//! others are *swept* a few per loop, and a port the sweep (or, when sleeping, epoll) finds
//! busy becomes hot.

/// Cold ports the sweep looks at per loop: bounds the loop's cost whatever the port count,
/// while a port that starts receiving waits at most `ports / SWEEP_PER_LOOP` loops.
const SWEEP_PER_LOOP: usize = 16;
/// Empty polls after which a hot port goes back to the sweep.
const DEMOTE_AFTER: u32 = 1024;

/// Which ports a loop looks at: the hot ones (recent traffic) every loop, and the next
/// [`SWEEP_PER_LOOP`] of the rest.
#[derive(Debug, Default)]
pub(super) struct PortSchedule {
    /// Slots of the hot ports; capacity for every slot, so promoting never allocates.
    hot: Vec<usize>,
    /// Per slot: hot, and how many polls in a row found nothing.
    is_hot: Vec<bool>,
    quiet: Vec<u32>,
    /// The slots that hold a port, in the order the sweep visits them (slots may be sparse:
    /// another queue's socket sits far from the ids).
    occupied: Vec<usize>,
    /// Where the sweep goes on in `occupied`.
    cursor: usize,
}

impl PortSchedule {
    /// Starts over for `ports` (on a port change only). Every port starts cold.
    pub(super) fn resize<T>(&mut self, ports: &[Option<T>]) {
        let slots = ports.len();
        self.hot.clear();
        self.hot.reserve(slots);
        self.is_hot.clear();
        self.is_hot.resize(slots, false);
        self.quiet.clear();
        self.quiet.resize(slots, 0);
        self.occupied.clear();
        self.occupied.extend(
            ports
                .iter()
                .enumerate()
                .filter(|(_, p)| p.is_some())
                .map(|(slot, _)| slot),
        );
        self.cursor = 0;
    }

    /// The slot of the `k`th hot port.
    pub(super) fn hot(&self, k: usize) -> Option<usize> {
        self.hot.get(k).copied()
    }

    /// How many cold ports a loop sweeps.
    pub(super) fn sweep_len(&self) -> usize {
        SWEEP_PER_LOOP.min(self.occupied.len())
    }

    pub(super) fn promote(&mut self, slot: usize) {
        if let Some(hot) = self.is_hot.get_mut(slot) {
            if !*hot {
                *hot = true;
                self.quiet[slot] = 0;
                self.hot.push(slot);
            }
        }
    }

    /// After hot port `hot[k]` received `n` frames: true if it stays hot; otherwise it has
    /// been moved back to the sweep (and `hot[k]` is now another port).
    pub(super) fn keep_hot(&mut self, k: usize, n: usize) -> bool {
        let slot = self.hot[k];
        if n > 0 {
            self.quiet[slot] = 0;
            return true;
        }
        self.quiet[slot] += 1;
        if self.quiet[slot] < DEMOTE_AFTER {
            return true;
        }
        self.is_hot[slot] = false;
        self.hot.swap_remove(k);
        false
    }

    /// The next occupied cold slot, looking at most at every occupied slot once.
    pub(super) fn next_cold(&mut self) -> Option<usize> {
        let n = self.occupied.len();
        for _ in 0..n {
            let slot = self.occupied[self.cursor % n];
            self.cursor = (self.cursor + 1) % n;
            if !self.is_hot[slot] {
                return Some(slot);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_visits_every_cold_port_and_skips_hot_ones() {
        let mut s = PortSchedule::default();
        s.resize(&[Some(()), Some(()), Some(()), None, Some(()), Some(())]);
        s.promote(2);
        s.promote(2);
        assert_eq!(s.hot, vec![2], "promoting twice lists a port once");
        let visited: Vec<usize> = (0..8).filter_map(|_| s.next_cold()).collect();
        assert_eq!(
            visited,
            vec![0, 1, 4, 5, 0, 1, 4, 5],
            "hot and empty slots are skipped"
        );
        s.promote(9); // out of range: ignored, no panic
        assert_eq!(s.hot, vec![2]);
    }

    #[test]
    fn a_hot_port_goes_cold_after_enough_empty_polls_and_traffic_keeps_it_hot() {
        let mut s = PortSchedule::default();
        s.resize(&[Some(()), Some(()), Some(())]);
        s.promote(1);
        for _ in 0..DEMOTE_AFTER - 1 {
            assert!(s.keep_hot(0, 0));
        }
        assert!(s.keep_hot(0, 5), "frames reset the count");
        for _ in 0..DEMOTE_AFTER - 1 {
            assert!(s.keep_hot(0, 0));
        }
        assert!(!s.keep_hot(0, 0), "the last empty poll demotes");
        assert!(s.hot.is_empty());
        assert_eq!(s.next_cold(), Some(0));
        assert_eq!(s.next_cold(), Some(1), "the demoted port is swept again");
    }
}
