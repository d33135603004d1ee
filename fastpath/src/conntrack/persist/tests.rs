use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::*;
use crate::conntrack::table::{FlowTable, FlowTableConfig};
use crate::wire::tcp::flags::{ACK, SYN};

const POD: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
const NODE: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);

/// A file name of this test's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!(
            "brindle-restart-unit-{}-{name}.flows",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn allowed(via_host: bool) -> PolicyDecision {
    PolicyDecision {
        allowed: true,
        egress_endpoint: Some(7),
        ingress_endpoint: None,
        generation: 3,
        via_host,
    }
}

fn table_in(path: &Path, capacity: usize) -> (FlowTable, Previous) {
    let (file, previous) = FlowFile::open(path, capacity, 0, 1).unwrap();
    let mut table = FlowTable::new(FlowTableConfig::with_capacity(capacity));
    table.keep_in(file);
    (table, previous)
}

#[test]
fn flows_and_nat_bindings_outlive_the_table_that_wrote_them() {
    let scratch = Scratch::new("roundtrip");
    let (mut table, previous) = table_in(&scratch.0, 64);
    assert!(previous.flows.is_empty() && previous.refused.is_none());

    // A source-NATed TCP connection, through its handshake.
    let tcp = FlowKey::tcp(POD, 40000, REMOTE, 443);
    let tcp_reply = FlowKey::tcp(REMOTE, 443, NODE, 61001);
    let id = table
        .insert(tcp, tcp_reply, SYN, 60, allowed(false), 0)
        .unwrap()
        .id;
    let reply = table.lookup(&tcp_reply, 1).unwrap();
    table.track(reply, SYN | ACK, 60, 1);
    let original = table.lookup(&tcp, 2).unwrap();
    table.track(original, ACK, 52, 2);
    assert_eq!(
        table.flow(id).state(),
        FlowState::Tcp {
            state: TcpState::Established,
            fin_from: None
        }
    );
    // A UDP flow from the host, and one removed before the "crash".
    let udp = FlowKey::udp(POD, 5353, REMOTE, 53);
    table
        .insert(udp, udp.reversed(), 0, 80, allowed(true), 3)
        .unwrap();
    let gone = FlowKey::udp(POD, 1, REMOTE, 1);
    let gone_id = table
        .insert(gone, gone.reversed(), 0, 80, allowed(false), 3)
        .unwrap()
        .id;
    table.remove(gone_id);
    // The process dies: nothing is written on the way out.
    std::mem::forget(table);

    // `forget` keeps the first mapping's lock: a new process would not inherit it. Take it
    // from here by reading the file as the next process would.
    let bytes = std::fs::read(&scratch.0).unwrap();
    let previous = read_previous(&bytes, 64, 0, 1);
    assert_eq!(previous.invalid, 0);
    assert_eq!(previous.flows.len(), 2, "{previous:?}");
    let saved_tcp = previous.flows.iter().find(|f| f.original == tcp).unwrap();
    assert_eq!(saved_tcp.reply, tcp_reply, "the NAT binding");
    assert_eq!(
        saved_tcp.state,
        FlowState::Tcp {
            state: TcpState::Established,
            fin_from: None
        }
    );
    assert_eq!(saved_tcp.policy, allowed(false));
    let saved_udp = previous.flows.iter().find(|f| f.original == udp).unwrap();
    assert_eq!(saved_udp.policy, allowed(true));

    // Restored into a new table: the reply to the NAT port finds its flow, translated.
    let mut fresh = FlowTable::new(FlowTableConfig::with_capacity(64));
    for saved in &previous.flows {
        fresh.restore(saved, 0).unwrap();
    }
    let hit = fresh.lookup(&tcp_reply, 10).unwrap();
    assert_eq!(hit.direction, Direction::Reply);
    assert_eq!(fresh.flow(hit.id).translated(hit.direction), tcp.reversed());
    assert_eq!(fresh.flow(hit.id).state(), saved_tcp.state);
}

#[test]
fn a_new_open_restores_and_rewrites_the_file() {
    let scratch = Scratch::new("reopen");
    let key = FlowKey::udp(POD, 4000, REMOTE, 53);
    let reply = FlowKey::udp(REMOTE, 53, NODE, 62000);
    {
        let (mut table, _) = table_in(&scratch.0, 16);
        table.insert(key, reply, 0, 80, allowed(false), 0).unwrap();
        // Dropped (SIGTERM): the mapping goes, the file stays.
    }
    let (mut table, previous) = table_in(&scratch.0, 8);
    assert_eq!(previous.flows.len(), 1);
    table.restore(&previous.flows[0], 0).unwrap();
    drop(table);
    // The restored flow was written again (a second restart keeps it too), in a file of the
    // new size.
    let (_table, previous) = table_in(&scratch.0, 8);
    assert_eq!(previous.flows.len(), 1);
    assert_eq!(previous.flows[0].reply, reply);
    assert_eq!(
        std::fs::metadata(&scratch.0).unwrap().len() as usize,
        HEADER + 8 * RECORD
    );
}

#[test]
fn a_locked_file_is_refused_and_foreign_files_restore_nothing() {
    let scratch = Scratch::new("refuse");
    let (file, _) = FlowFile::open(&scratch.0, 4, 0, 2).unwrap();
    let err = FlowFile::open(&scratch.0, 4, 0, 2).err().expect("locked");
    assert!(
        err.to_string().contains("locked by another process"),
        "{err}"
    );
    let mut table = FlowTable::new(FlowTableConfig::with_capacity(4));
    table.keep_in(file);
    let key = FlowKey::tcp(POD, 1, REMOTE, 2);
    table
        .insert(key, key.reversed(), ACK, 40, allowed(false), 0)
        .unwrap();
    let bytes = std::fs::read(&scratch.0).unwrap();
    // Written by worker 0 of 2: not restored by a node with another number of workers.
    let other = read_previous(&bytes, 4, 0, 1);
    assert!(other.flows.is_empty());
    assert_eq!(
        other.refused.as_deref(),
        Some("written by worker 0 of 2, this is worker 0 of 1")
    );
    assert_eq!(read_previous(&bytes, 4, 0, 2).flows.len(), 1);
    // Garbage: refused, or records that do not decode skipped, never a panic.
    assert!(read_previous(b"short", 4, 0, 2).refused.is_some());
    let mut bad = bytes.clone();
    bad[HEADER + 2] = 9; // the state's kind
    let bad = read_previous(&bad, 4, 0, 2);
    assert_eq!((bad.flows.len(), bad.invalid), (0, 1));
    let mut wrong_size = bytes;
    wrong_size[8] = 99;
    assert_eq!(
        read_previous(&wrong_size, 4, 0, 2).refused.as_deref(),
        Some("record size 99, expected 44")
    );
}
