//! Source port choice for NAT outgoing (Calico `natOutgoing`): a workload's flow to a
//! destination outside every pool leaves with the node's address, and the node picks a source
//! port (or ICMP echo identifier) that makes the flow's reply key unique in the flow table.
//!
//! The flow table is the record of which ports are taken: a port is in use exactly while a
//! flow holds the reply key (remote, node, remote port, port). So a port is released when its
//! flow ends (expires, is evicted or removed), with no second bookkeeping to drift out of
//! step, and the same port serves different remotes at once (like Linux, the mapping depends on
//! the destination).
//!
//! Ranges. Calico's `natPortRange` is unset by default, meaning "whatever the kernel does";
//! Linux picks local ports from `ip_local_port_range`, 32768..=60999 by default, and that is
//! our default for TCP and UDP. Echo identifiers may use all 16 bits. If the node's own
//! sockets use the node address too, give the NAT range a slice the host's
//! `ip_local_port_range` does not use, so the two never pick the same port.
//!
//! Cost. Like Linux, the original source port is kept when it is in range and free; otherwise
//! ports are tried in order from a point derived from the remote end and a rotating offset,
//! at most [`SnatPortsConfig::max_attempts`] of them, each one table probe. When none is free
//! the caller gets [`SnatError::Exhausted`] and drops the packet (counted), rather than a
//! colliding flow.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use super::key::FlowKey;
use super::state::Millis;
use super::table::FlowTable;
use crate::wire::ipv4::protocol;

/// Port ranges and the search bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnatPortsConfig {
    /// Source ports for TCP and UDP.
    pub ports: RangeInclusive<u16>,
    /// Identifiers for ICMP echo.
    pub echo_ids: RangeInclusive<u16>,
    /// Most candidates tried for one new flow (at least 1).
    pub max_attempts: u32,
}

impl Default for SnatPortsConfig {
    fn default() -> SnatPortsConfig {
        SnatPortsConfig {
            ports: 32768..=60999,
            echo_ids: 0..=u16::MAX,
            max_attempts: 1024,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnatError {
    #[error("snat {field} range {first}..={last} is empty")]
    EmptyRange {
        field: &'static str,
        first: u16,
        last: u16,
    },
    #[error(
        "no free source port on {node} for protocol {protocol} to {remote}:{remote_port}: \
         tried {tried} of the {range_len} in {first}..={last}"
    )]
    Exhausted {
        node: Ipv4Addr,
        protocol: u8,
        remote: Ipv4Addr,
        remote_port: u16,
        tried: u32,
        range_len: u32,
        first: u16,
        last: u16,
    },
}

/// Chooses translated reply keys for NAT outgoing; one per worker, like its flow table.
#[derive(Clone, Debug)]
pub struct SnatPorts {
    config: SnatPortsConfig,
    /// Added to every start point so that consecutive flows to one remote take consecutive
    /// ports instead of all probing from the same one.
    rotation: u32,
}

impl SnatPorts {
    pub fn new(config: SnatPortsConfig) -> Result<SnatPorts, SnatError> {
        for (field, r) in [("ports", &config.ports), ("echo_ids", &config.echo_ids)] {
            if r.start() > r.end() {
                return Err(SnatError::EmptyRange {
                    field,
                    first: *r.start(),
                    last: *r.end(),
                });
            }
        }
        Ok(SnatPorts {
            config: SnatPortsConfig {
                max_attempts: config.max_attempts.max(1),
                ..config
            },
            rotation: 0,
        })
    }

    pub fn config(&self) -> &SnatPortsConfig {
        &self.config
    }

    /// The reply key for `original` leaving from `node`: (remote, node, remote port, chosen
    /// port), free in `table` at `now`. Insert the flow with it before allocating again.
    pub fn allocate(
        &mut self,
        table: &FlowTable,
        original: &FlowKey,
        node: Ipv4Addr,
        now: Millis,
    ) -> Result<FlowKey, SnatError> {
        let (range, echo) = match original.protocol {
            protocol::TCP | protocol::UDP => (&self.config.ports, false),
            protocol::ICMP => (&self.config.echo_ids, true),
            // No ports to vary: one flow per remote and protocol.
            _ => (&(0..=0), false),
        };
        let reply_with = |port: u16| FlowKey {
            src: original.dst,
            dst: node,
            protocol: original.protocol,
            src_port: if echo { port } else { original.dst_port },
            dst_port: port,
        };
        let (first, last) = (*range.start(), *range.end());
        let ports_free =
            original.protocol == protocol::TCP || original.protocol == protocol::UDP || echo;
        if !ports_free {
            let reply = FlowKey {
                src_port: original.dst_port,
                dst_port: original.src_port,
                ..reply_with(0)
            };
            return if table.is_free(&reply, now) {
                Ok(reply)
            } else {
                Err(self.exhausted(original, node, 1, 1, original.src_port, original.src_port))
            };
        }
        if range.contains(&original.src_port) {
            let reply = reply_with(original.src_port);
            if table.is_free(&reply, now) {
                return Ok(reply);
            }
        }
        let range_len = u32::from(last - first) + 1;
        let start = (remote_hash(original) as u32).wrapping_add(self.rotation) % range_len;
        let attempts = range_len.min(self.config.max_attempts);
        for i in 0..attempts {
            let port = first + ((start + i) % range_len) as u16;
            let reply = reply_with(port);
            if table.is_free(&reply, now) {
                self.rotation = self.rotation.wrapping_add(i + 1);
                return Ok(reply);
            }
        }
        Err(self.exhausted(original, node, attempts, range_len, first, last))
    }

    fn exhausted(
        &self,
        original: &FlowKey,
        node: Ipv4Addr,
        tried: u32,
        range_len: u32,
        first: u16,
        last: u16,
    ) -> SnatError {
        SnatError::Exhausted {
            node,
            protocol: original.protocol,
            remote: original.dst,
            remote_port: original.dst_port,
            tried,
            range_len,
            first,
            last,
        }
    }
}

/// Spreads start points by remote end, so flows to different servers do not crowd the same
/// ports (which would make each search longer).
fn remote_hash(original: &FlowKey) -> u64 {
    let k = FlowKey {
        src: Ipv4Addr::UNSPECIFIED,
        src_port: 0,
        ..*original
    };
    k.seeded_hash(0x6e61_745f_706f_7274)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::table::{FlowTableConfig, PolicyDecision};
    use crate::conntrack::Direction;

    const NODE: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
    const REMOTE: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);

    fn pod(i: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, 0, i)
    }

    fn allowed() -> PolicyDecision {
        PolicyDecision {
            allowed: true,
            ..PolicyDecision::default()
        }
    }

    fn small(first: u16, last: u16) -> SnatPorts {
        SnatPorts::new(SnatPortsConfig {
            ports: first..=last,
            echo_ids: first..=last,
            max_attempts: 1024,
        })
        .unwrap()
    }

    #[test]
    fn keeps_the_source_port_when_in_range_and_free() {
        let table = FlowTable::new(FlowTableConfig::with_capacity(16));
        let mut snat = SnatPorts::new(SnatPortsConfig::default()).unwrap();
        let orig = FlowKey::tcp(pod(2), 40000, REMOTE, 443);
        let reply = snat.allocate(&table, &orig, NODE, 0).unwrap();
        assert_eq!(reply, FlowKey::tcp(REMOTE, 443, NODE, 40000));
        // Out of range: some port in range instead.
        let orig = FlowKey::tcp(pod(2), 80, REMOTE, 443);
        let reply = snat.allocate(&table, &orig, NODE, 0).unwrap();
        assert!((32768..=60999).contains(&reply.dst_port), "{reply}");
        assert_eq!((reply.src, reply.dst, reply.src_port), (REMOTE, NODE, 443));
    }

    #[test]
    fn two_pods_with_the_same_port_get_different_node_ports() {
        let mut table = FlowTable::new(FlowTableConfig::with_capacity(64));
        let mut snat = SnatPorts::new(SnatPortsConfig::default()).unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 2..34 {
            let orig = FlowKey::udp(pod(i), 40000, REMOTE, 53);
            let reply = snat.allocate(&table, &orig, NODE, 0).unwrap();
            assert!(
                seen.insert(reply.dst_port),
                "port {} given twice",
                reply.dst_port
            );
            table.insert(orig, reply, 0, 60, allowed(), 0).unwrap();
            // The reply finds the flow in the reply direction.
            let hit = table.lookup(&reply, 1).unwrap();
            assert_eq!(hit.direction, Direction::Reply);
            assert_eq!(table.flow(hit.id).original(), &orig);
        }
        assert_eq!(seen.len(), 32);
        assert!(seen.contains(&40000), "the first pod keeps its port");
    }

    #[test]
    fn same_port_serves_different_remotes() {
        let mut table = FlowTable::new(FlowTableConfig::with_capacity(8));
        let mut snat = small(5000, 5000);
        for remote in [Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2)] {
            let orig = FlowKey::tcp(pod(2), 1234, remote, 80);
            let reply = snat.allocate(&table, &orig, NODE, 0).unwrap();
            assert_eq!(reply.dst_port, 5000);
            table.insert(orig, reply, 0x02, 60, allowed(), 0).unwrap();
        }
    }

    #[test]
    fn nearly_exhausted_range_finds_the_last_port_then_errors() {
        let mut table = FlowTable::new(FlowTableConfig::with_capacity(64));
        let mut snat = small(6000, 6015);
        let mut ports = Vec::new();
        for i in 0..16u16 {
            let orig = FlowKey::tcp(pod(2), 1000 + i, REMOTE, 443);
            let reply = snat.allocate(&table, &orig, NODE, 0).unwrap();
            table.insert(orig, reply, 0x02, 60, allowed(), 0).unwrap();
            ports.push(reply.dst_port);
        }
        ports.sort();
        assert_eq!(
            ports,
            (6000..=6015).collect::<Vec<_>>(),
            "every port used exactly once"
        );
        let orig = FlowKey::tcp(pod(2), 2000, REMOTE, 443);
        let err = snat.allocate(&table, &orig, NODE, 0).unwrap_err();
        assert_eq!(
            err,
            SnatError::Exhausted {
                node: NODE,
                protocol: protocol::TCP,
                remote: REMOTE,
                remote_port: 443,
                tried: 16,
                range_len: 16,
                first: 6000,
                last: 6015
            }
        );
        assert!(
            err.to_string()
                .contains("no free source port on 172.16.0.1 for protocol 6 to 8.8.8.8:443"),
            "{err}"
        );
    }

    #[test]
    fn port_is_released_when_the_flow_ends_and_reused() {
        let mut table = FlowTable::new(FlowTableConfig::with_capacity(8));
        let mut snat = small(7000, 7001);
        let a = FlowKey::udp(pod(2), 1, REMOTE, 53);
        let b = FlowKey::udp(pod(3), 1, REMOTE, 53);
        let c = FlowKey::udp(pod(4), 1, REMOTE, 53);
        let ra = snat.allocate(&table, &a, NODE, 0).unwrap();
        let ida = table.insert(a, ra, 0, 60, allowed(), 0).unwrap().id;
        let rb = snat.allocate(&table, &b, NODE, 0).unwrap();
        table.insert(b, rb, 0, 60, allowed(), 10_000).unwrap();
        assert!(snat.allocate(&table, &c, NODE, 10_000).is_err());
        // Removing the flow frees its port at once.
        table.remove(ida);
        assert_eq!(
            snat.allocate(&table, &c, NODE, 10_000).unwrap().dst_port,
            ra.dst_port
        );
        // Expiry frees it too: a's replacement expires at 30 s, b's at 40 s.
        let ida = table.insert(a, ra, 0, 60, allowed(), 0).unwrap().id;
        assert!(snat.allocate(&table, &c, NODE, 29_999).is_err());
        let rc = snat.allocate(&table, &c, NODE, 30_000).unwrap();
        assert_eq!(rc.dst_port, ra.dst_port);
        // Inserting with the reused port replaces the expired flow, counted as expired.
        let before = table.counters().expired;
        let ins = table.insert(c, rc, 0, 60, allowed(), 30_000).unwrap();
        assert_eq!((ins.expired, table.counters().expired), (1, before + 1));
        assert!(!table
            .iter()
            .any(|(id, _)| id == ida && table.flow(id).original() == &a));
    }

    #[test]
    fn echo_ids_are_allocated_like_ports() {
        let mut table = FlowTable::new(FlowTableConfig::with_capacity(8));
        let mut snat = small(100, 101);
        let a = FlowKey::icmp_echo(pod(2), REMOTE, 7);
        let b = FlowKey::icmp_echo(pod(3), REMOTE, 7);
        let ra = snat.allocate(&table, &a, NODE, 0).unwrap();
        table.insert(a, ra, 0, 84, allowed(), 0).unwrap();
        let rb = snat.allocate(&table, &b, NODE, 0).unwrap();
        assert_ne!(ra.dst_port, rb.dst_port);
        for r in [ra, rb] {
            assert!((100..=101).contains(&r.dst_port));
            assert_eq!(
                (r.src, r.dst, r.src_port),
                (REMOTE, NODE, r.dst_port),
                "echo id in both port fields"
            );
        }
    }

    #[test]
    fn empty_range_is_refused_naming_the_field() {
        let err = SnatPorts::new(SnatPortsConfig {
            ports: RangeInclusive::new(10, 9),
            ..SnatPortsConfig::default()
        })
        .unwrap_err();
        assert_eq!(
            err,
            SnatError::EmptyRange {
                field: "ports",
                first: 10,
                last: 9
            }
        );
        assert_eq!(err.to_string(), "snat ports range 10..=9 is empty");
    }

    #[test]
    fn attempts_are_bounded() {
        let mut table = FlowTable::new(FlowTableConfig::with_capacity(64));
        let mut snat = SnatPorts::new(SnatPortsConfig {
            ports: 6000..=6015,
            echo_ids: 9..=9,
            max_attempts: 4,
        })
        .unwrap();
        // Every port taken by flows inserted directly.
        for port in 6000..=6015u16 {
            let orig = FlowKey::tcp(pod(3), port, REMOTE, 22);
            table
                .insert(
                    orig,
                    FlowKey::tcp(REMOTE, 22, NODE, port),
                    0x02,
                    60,
                    allowed(),
                    0,
                )
                .unwrap();
        }
        let orig = FlowKey::tcp(pod(2), 1, REMOTE, 22);
        match snat.allocate(&table, &orig, NODE, 0) {
            Err(SnatError::Exhausted {
                tried: 4,
                range_len: 16,
                ..
            }) => {}
            other => panic!("expected 4 of 16 tried, got {other:?}"),
        }
        // ICMP with a one-id range: the second echo flow to the remote has no id left.
        let a = FlowKey::icmp_echo(pod(2), REMOTE, 5);
        let ra = snat.allocate(&table, &a, NODE, 0).unwrap();
        table.insert(a, ra, 0, 84, allowed(), 0).unwrap();
        match snat.allocate(&table, &FlowKey::icmp_echo(pod(3), REMOTE, 5), NODE, 0) {
            Err(SnatError::Exhausted {
                tried: 1,
                range_len: 1,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }
}
