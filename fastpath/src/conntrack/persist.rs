//! The flow file: a worker's flows kept in a memory-mapped file, so that a restarted node
//! service (SIGTERM or kill -9) finds the flows and source NAT bindings of the one before it.
//!
//! Why a mapped file. Without it, a restart loses every flow: TCP segments of an open
//! connection are picked up again loosely (see [`FlowState::new`]), but a reply to a
//! source-NATed flow arrives at a node port no table knows, goes to the node's stack and is
//! answered with a RST. A dump on SIGTERM would not survive kill -9, and a periodic snapshot
//! would lose the newest flows; a file the worker writes as it goes loses nothing. The file
//! is mapped shared (`MAP_SHARED`), so its pages belong to the kernel's page cache, not to the
//! process: what the worker wrote is there when the process is killed, with no flush.
//!
//! Cost. The worker writes a flow's record when it creates the flow, one byte group when the
//! flow's state changes and one byte when it removes the flow: plain stores into memory mapped
//! once at start, no lock, no allocation, no system call. Packets that change nothing (almost
//! all of them) write nothing; deadlines and counters are not kept (a restored flow gets a
//! fresh timeout for its state, and counts from zero).
//!
//! Layout. A 64-byte header, then one [`Record`] per slab entry of the table (record `i`
//! describes slab entry `i`). A record is live when its `live` byte is 1; the byte is written
//! after the rest (a compiler fence keeps the order: a killed process stops between two
//! instructions, so the record is whole when it is live) and cleared first.
//!
//! Restore. [`FlowFile::open`] reads the previous file (plain reads, every field checked:
//! it is input), then makes a new, empty file of the new table's size and maps it; the worker
//! inserts the saved flows into its new table, which writes them to the new file. Flows of a
//! file written by a different number of workers are not restored: the workers own flows by
//! hash and NAT port slice, so they would sit in the wrong table. The file is locked
//! (`flock`) while mapped, so that two processes never share one.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{compiler_fence, Ordering};

use super::key::{Direction, FlowKey};
use super::state::{FlowState, TcpState, UdpState};
use super::table::{Flow, PolicyDecision};

const MAGIC: [u8; 8] = *b"BRFLOWS1";
const HEADER: usize = 64;
const RECORD: usize = std::mem::size_of::<Record>();
/// `egress_endpoint`/`ingress_endpoint` absent.
const NO_ENDPOINT: u32 = u32::MAX;

/// One flow as the file keeps it: integers only, so that any bytes are a valid `Record`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
struct Record {
    live: u8,
    protocol: u8,
    /// 1 TCP, 2 UDP, 3 other; then the TCP or UDP state's number, or `replied`; then
    /// `fin_from` (0 none, 1 original, 2 reply).
    state: [u8; 3],
    /// Bit 0: allowed; bit 1: via_host.
    flags: u8,
    _pad: [u8; 2],
    /// Original then reply key: source, destination (host order), source port, destination
    /// port.
    addrs: [u32; 4],
    ports: [u16; 4],
    generation: u32,
    egress_endpoint: u32,
    ingress_endpoint: u32,
}

const _: () = assert!(RECORD == 44);

/// A flow read back from a flow file, to insert with [`super::FlowTable::restore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedFlow {
    pub original: FlowKey,
    pub reply: FlowKey,
    pub state: FlowState,
    pub policy: PolicyDecision,
}

/// What [`FlowFile::open`] found of the previous file.
#[derive(Debug, Default)]
pub struct Previous {
    pub flows: Vec<SavedFlow>,
    /// Live records that did not decode (a field out of range), skipped.
    pub invalid: usize,
    /// Why nothing was restored from a file that exists, if so.
    pub refused: Option<String>,
}

/// A worker's flow file, mapped; see the module documentation.
pub struct FlowFile {
    records: *mut Record,
    capacity: usize,
    map_len: usize,
    path: PathBuf,
    /// Holds the lock for as long as the mapping lives.
    _file: File,
}

// SAFETY: the mapping is owned by this value alone (the file is locked against other
// processes, and no other value in this process maps it); moving it to the worker thread that
// then writes it is sound.
unsafe impl Send for FlowFile {}

impl FlowFile {
    /// Reads the flows of the file at `path` (if any, written by worker `worker` of
    /// `workers`), then replaces it with an empty file for a table of `capacity` flows,
    /// mapped. At most `capacity` flows are read back.
    pub fn open(
        path: &Path,
        capacity: usize,
        worker: u32,
        workers: u32,
    ) -> io::Result<(FlowFile, Previous)> {
        let capacity = capacity.max(1);
        let map_len = HEADER + capacity * RECORD;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // SAFETY: flock on an open descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "flow file {} is locked by another process: {e}",
                    path.display()
                ),
            ));
        }
        let mut bytes = Vec::new();
        (&mut file).take(map_len as u64).read_to_end(&mut bytes)?;
        let previous = read_previous(&bytes, capacity, worker, workers);
        file.set_len(0)?;
        file.set_len(map_len as u64)?;
        // SAFETY: a fresh shared mapping of `map_len` bytes of a file that long; checked below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = map.cast::<u8>();
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&(RECORD as u32).to_le_bytes());
        header[12..16].copy_from_slice(&(capacity as u32).to_le_bytes());
        header[16..20].copy_from_slice(&worker.to_le_bytes());
        header[20..24].copy_from_slice(&workers.to_le_bytes());
        // SAFETY: the header fits in the mapping; records start 64 bytes in (page-aligned
        // base), aligned for `Record` (align 4). Every page is written once here, so that the
        // worker's first store to a page is not a page fault (allocating the page) on the
        // packet path; on a tmpfs such as /run the pages then stay writable.
        let records = unsafe {
            std::ptr::write_bytes(base.add(HEADER), 0, capacity * RECORD);
            std::ptr::copy_nonoverlapping(header.as_ptr(), base, HEADER);
            base.add(HEADER).cast::<Record>()
        };
        Ok((
            FlowFile {
                records,
                capacity,
                map_len,
                path: path.to_owned(),
                _file: file,
            },
            previous,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records the flow in slab entry `index` (just inserted).
    #[inline]
    pub(super) fn write(&mut self, index: usize, flow: &Flow) {
        let Some(r) = self.record(index) else { return };
        let [o, p] = flow.keys;
        let policy = &flow.policy;
        *r = Record {
            live: 0,
            protocol: o.protocol,
            state: encode_state(flow.state),
            flags: u8::from(policy.allowed) | u8::from(policy.via_host) << 1,
            _pad: [0; 2],
            addrs: [o.src.into(), o.dst.into(), p.src.into(), p.dst.into()],
            ports: [o.src_port, o.dst_port, p.src_port, p.dst_port],
            generation: policy.generation,
            egress_endpoint: policy.egress_endpoint.unwrap_or(NO_ENDPOINT),
            ingress_endpoint: policy.ingress_endpoint.unwrap_or(NO_ENDPOINT),
        };
        compiler_fence(Ordering::Release);
        r.live = 1;
    }

    /// Records a new state of the flow in slab entry `index`.
    #[inline]
    pub(super) fn set_state(&mut self, index: usize, state: FlowState) {
        if let Some(r) = self.record(index) {
            r.state = encode_state(state);
        }
    }

    /// Marks slab entry `index` free.
    #[inline]
    pub(super) fn clear(&mut self, index: usize) {
        if let Some(r) = self.record(index) {
            r.live = 0;
        }
    }

    #[inline(always)]
    fn record(&mut self, index: usize) -> Option<&mut Record> {
        // SAFETY: `index < capacity` records lie within the mapping, which this value owns
        // exclusively (see `Send`); any bytes are a valid `Record`.
        (index < self.capacity).then(|| unsafe { &mut *self.records.add(index) })
    }
}

impl Drop for FlowFile {
    fn drop(&mut self) {
        // SAFETY: unmapping what `open` mapped; the records pointer is not used after this.
        unsafe {
            libc::munmap(self.records.cast::<u8>().sub(HEADER).cast(), self.map_len);
        }
    }
}

fn read_previous(bytes: &[u8], capacity: usize, worker: u32, workers: u32) -> Previous {
    let mut previous = Previous::default();
    if bytes.is_empty() {
        return previous;
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    if bytes.len() < HEADER || bytes[..8] != MAGIC {
        previous.refused = Some("not a flow file (magic)".into());
        return previous;
    }
    let (record, written_by, of) = (u32_at(8), u32_at(16), u32_at(20));
    if record as usize != RECORD {
        previous.refused = Some(format!("record size {record}, expected {RECORD}"));
        return previous;
    }
    if (written_by, of) != (worker, workers) {
        previous.refused = Some(format!(
            "written by worker {written_by} of {of}, this is worker {worker} of {workers}"
        ));
        return previous;
    }
    for chunk in bytes[HEADER..].chunks_exact(RECORD).take(capacity) {
        let r = parse_record(chunk);
        if r.live != 1 {
            continue;
        }
        match decode(&r) {
            Some(flow) => previous.flows.push(flow),
            None => previous.invalid += 1,
        }
    }
    previous
}

fn parse_record(b: &[u8]) -> Record {
    let u32_at = |at: usize| u32::from_ne_bytes(b[at..at + 4].try_into().unwrap());
    let u16_at = |at: usize| u16::from_ne_bytes(b[at..at + 2].try_into().unwrap());
    Record {
        live: b[0],
        protocol: b[1],
        state: [b[2], b[3], b[4]],
        flags: b[5],
        _pad: [0; 2],
        addrs: [u32_at(8), u32_at(12), u32_at(16), u32_at(20)],
        ports: [u16_at(24), u16_at(26), u16_at(28), u16_at(30)],
        generation: u32_at(32),
        egress_endpoint: u32_at(36),
        ingress_endpoint: u32_at(40),
    }
}

fn decode(r: &Record) -> Option<SavedFlow> {
    let key = |i: usize| FlowKey {
        src: Ipv4Addr::from(r.addrs[2 * i]),
        dst: Ipv4Addr::from(r.addrs[2 * i + 1]),
        protocol: r.protocol,
        src_port: r.ports[2 * i],
        dst_port: r.ports[2 * i + 1],
    };
    let endpoint = |e: u32| (e != NO_ENDPOINT).then_some(e);
    Some(SavedFlow {
        original: key(0),
        reply: key(1),
        state: decode_state(r.state)?,
        policy: PolicyDecision {
            allowed: r.flags & 1 != 0,
            egress_endpoint: endpoint(r.egress_endpoint),
            ingress_endpoint: endpoint(r.ingress_endpoint),
            generation: r.generation,
            via_host: r.flags & 2 != 0,
        },
    })
}

const TCP_STATES: [TcpState; 8] = [
    TcpState::SynSent,
    TcpState::SynRecv,
    TcpState::Established,
    TcpState::FinWait,
    TcpState::CloseWait,
    TcpState::LastAck,
    TcpState::TimeWait,
    TcpState::Close,
];
const UDP_STATES: [UdpState; 3] = [UdpState::Unreplied, UdpState::Replied, UdpState::Stream];

#[inline]
fn encode_state(state: FlowState) -> [u8; 3] {
    match state {
        FlowState::Tcp { state, fin_from } => {
            let fin = match fin_from {
                None => 0,
                Some(Direction::Original) => 1,
                Some(Direction::Reply) => 2,
            };
            let n = TCP_STATES.iter().position(|s| *s == state).unwrap_or(0);
            [1, n as u8, fin]
        }
        FlowState::Udp(s) => [
            2,
            UDP_STATES.iter().position(|x| *x == s).unwrap_or(0) as u8,
            0,
        ],
        FlowState::Other { replied } => [3, u8::from(replied), 0],
    }
}

fn decode_state([kind, n, fin]: [u8; 3]) -> Option<FlowState> {
    Some(match kind {
        1 => FlowState::Tcp {
            state: *TCP_STATES.get(usize::from(n))?,
            fin_from: match fin {
                0 => None,
                1 => Some(Direction::Original),
                2 => Some(Direction::Reply),
                _ => return None,
            },
        },
        2 => FlowState::Udp(*UDP_STATES.get(usize::from(n))?),
        3 if n <= 1 => FlowState::Other { replied: n == 1 },
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
