//! Port ids, which double as XSKMAP slots.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use fastpath::{PortId, Tables};

/// Port ids, which are also XSKMAP slots (one queue per port), so at most `MAX_SOCKETS`.
///
/// Never-used ids go first. A freed id waits with a weak reference to the last snapshot that
/// routed to it and is handed out again only when that snapshot is gone: every thread has
/// moved on to tables without the old port, so nothing still maps an address to the id. (The
/// slow path's neighbour memory is keyed by (port, address) and may outlive it; a workload
/// that reuses both id and address is re-learned from its first ARP request, which it must
/// send before any traffic.)
#[derive(Debug)]
pub struct PortIds {
    next: u32,
    limit: u32,
    freed: VecDeque<(PortId, Weak<Tables>)>,
}

impl PortIds {
    pub fn new(limit: u32) -> PortIds {
        PortIds {
            next: 0,
            limit: limit.min(u32::from(PortId::MAX) + 1),
            freed: VecDeque::new(),
        }
    }

    pub fn allocate(&mut self) -> Option<PortId> {
        if self.next < self.limit {
            self.next += 1;
            return Some((self.next - 1) as PortId);
        }
        let at = self
            .freed
            .iter()
            .position(|(_, last)| last.strong_count() == 0)?;
        self.freed.remove(at).map(|(id, _)| id)
    }

    /// Returns `id`; `last_tables` is the newest snapshot that still routed to it.
    pub fn release(&mut self, id: PortId, last_tables: &Arc<Tables>) {
        self.freed.push_back((id, Arc::downgrade(last_tables)));
    }

    /// Returns an id no published snapshot ever referred to.
    pub fn release_unused(&mut self, id: PortId) {
        self.freed.push_front((id, Weak::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_go_first_and_a_freed_id_waits_for_its_last_tables() {
        let mut ids = PortIds::new(2);
        assert_eq!(ids.allocate(), Some(0));
        assert_eq!(ids.allocate(), Some(1));
        assert_eq!(ids.allocate(), None, "limit reached, nothing freed");
        let last = Arc::new(Tables::default());
        ids.release(0, &last);
        assert_eq!(
            ids.allocate(),
            None,
            "a snapshot that routed to 0 is still alive"
        );
        drop(last);
        assert_eq!(ids.allocate(), Some(0));
        ids.release_unused(1);
        assert_eq!(
            ids.allocate(),
            Some(1),
            "an id no table saw is free at once"
        );
    }
}
