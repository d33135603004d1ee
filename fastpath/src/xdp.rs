//! Loads Brindle's XDP program (`bpf/brindle_xdp.c`) and attaches it to interfaces.
//!
//! The program only decides "to the vRouter's AF_XDP socket, or to the kernel"; see the C file
//! for the rules. One loaded program serves every interface: `ports` maps an ifindex to its kind
//! and its XSKMAP slots, `xsks` holds the sockets, `pool_cidrs` the IP pools that uplink traffic
//! must be addressed into to reach userspace.

use std::ffi::CStr;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

use libxdp_sys as sys;

use crate::modes::XdpMode;
use crate::tables::PortKind;

/// The compiled program, embedded so the binary needs no files at run time.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/brindle_xdp.o"));

const PROGRAM_NAME: &CStr = c"brindle_xdp";
const XSKS_MAP: &CStr = c"xsks";
const PORTS_MAP: &CStr = c"ports";
const POOL_CIDRS_MAP: &CStr = c"pool_cidrs";
const SNAT_MAP: &CStr = c"snat";
const HOST_MAP: &CStr = c"host";
const FAILSAFE_IN_MAP: &CStr = c"failsafe_in";
const FAILSAFE_OUT_MAP: &CStr = c"failsafe_out";
const HOST_EGRESS_PROGRAM: &CStr = c"brindle_host_egress";

/// Number of XSKMAP slots (`MAX_SOCKETS` in the C program).
pub const MAX_SOCKETS: u32 = 4096;
/// Capacity of `pool_cidrs` (`MAX_POOL_CIDRS` in the C program).
const MAX_POOL_CIDRS: usize = 1024;

// From <linux/if_link.h>; libxdp-sys does not export them.
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// Value of the `ports` map (`struct port` in the C program).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PortEntry {
    first_slot: u32,
    queues: u32,
    kind: u32,
}

/// Value of the `snat` map (`struct snat`): the node's address in network byte order (all
/// zero: no NAT outgoing) and the NAT source port range.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SnatEntry {
    node: [u8; 4],
    first: u16,
    last: u16,
}

/// Key of the `pool_cidrs` LPM trie (`struct pool_key`): prefix length, then the address in
/// network byte order, as the kernel's LPM trie requires.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PoolKey {
    prefixlen: u32,
    addr: [u8; 4],
}

impl PoolKey {
    fn new(addr: Ipv4Addr, len: u8) -> PoolKey {
        // Host bits are cleared so that 10.1.2.3/16 and 10.1.0.0/16 are the same key.
        let mask = if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len))
        };
        let addr = (u32::from(addr) & mask).to_be_bytes();
        PoolKey {
            prefixlen: u32::from(len),
            addr,
        }
    }
}

/// The attach flag that selects `mode`.
fn attach_flag(mode: XdpMode) -> u32 {
    match mode {
        XdpMode::Native => XDP_FLAGS_DRV_MODE,
        XdpMode::Generic => XDP_FLAGS_SKB_MODE,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("cannot open the embedded XDP object: {0}")]
    Open(#[source] io::Error),
    #[error(
        "the kernel refused to load the XDP program (run with root or CAP_BPF+CAP_NET_ADMIN): {0}"
    )]
    Load(#[source] io::Error),
    #[error("the XDP object has no {0:?}")]
    Missing(&'static str),
    #[error("cannot attach the XDP program to {ifname} (ifindex {ifindex}): natively: {native}; in generic mode: {source}")]
    Attach {
        ifname: String,
        ifindex: u32,
        native: io::Error,
        source: io::Error,
    },
    #[error("cannot update the XDP map {map} for {what}: {source}")]
    MapUpdate {
        map: &'static str,
        what: String,
        source: io::Error,
    },
    #[error("XSKMAP slot {slot} is out of range (the map has {MAX_SOCKETS} slots)")]
    SlotOutOfRange { slot: u32 },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

/// The loaded program and its maps.
pub struct XdpProgram {
    object: NonNull<sys::bpf_object>,
    prog_fd: RawFd,
    prog_id: u32,
    xsks_fd: RawFd,
    ports_fd: RawFd,
    pool_cidrs_fd: RawFd,
    snat_fd: RawFd,
    /// The host endpoint's maps and TC program (`hostpath.rs`).
    pub(crate) host_fd: RawFd,
    pub(crate) failsafe_in_fd: RawFd,
    pub(crate) failsafe_out_fd: RawFd,
    pub(crate) host_egress: NonNull<sys::bpf_program>,
}

// SAFETY: after loading, the object is only read (to keep its descriptors open) and closed once
// in Drop; every map operation is a bpf(2) syscall on a descriptor, which the kernel serialises.
unsafe impl Send for XdpProgram {}
// SAFETY: as above; no method mutates the object.
unsafe impl Sync for XdpProgram {}

impl std::fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpProgram")
            .field("prog_id", &self.prog_id)
            .finish_non_exhaustive()
    }
}

impl XdpProgram {
    /// Opens the embedded object, loads it into the kernel and keeps its map descriptors.
    pub fn load() -> Result<XdpProgram, XdpError> {
        // SAFETY: OBJECT is a valid buffer for the whole call; libbpf copies what it keeps.
        let object = unsafe {
            sys::bpf_object__open_mem(OBJECT.as_ptr().cast(), OBJECT.len(), std::ptr::null())
        };
        let object =
            NonNull::new(object).ok_or_else(|| XdpError::Open(io::Error::last_os_error()))?;
        // From here on `guard` closes the object if we return early.
        let guard = ObjectGuard(object);
        // SAFETY: object is a valid, opened bpf_object.
        let err = unsafe { sys::bpf_object__load(object.as_ptr()) };
        if err != 0 {
            return Err(XdpError::Load(io::Error::from_raw_os_error(-err)));
        }
        // SAFETY: valid object and NUL-terminated name.
        let prog = unsafe {
            sys::bpf_object__find_program_by_name(object.as_ptr(), PROGRAM_NAME.as_ptr())
        };
        if prog.is_null() {
            return Err(XdpError::Missing("program brindle_xdp"));
        }
        // SAFETY: prog belongs to the loaded object.
        let prog_fd = unsafe { sys::bpf_program__fd(prog) };
        if prog_fd < 0 {
            return Err(XdpError::Missing("program brindle_xdp descriptor"));
        }
        let map_fd = |name: &'static CStr, what: &'static str| {
            // SAFETY: valid object and NUL-terminated name.
            let fd =
                unsafe { sys::bpf_object__find_map_fd_by_name(object.as_ptr(), name.as_ptr()) };
            if fd < 0 {
                Err(XdpError::Missing(what))
            } else {
                Ok(fd)
            }
        };
        let xsks_fd = map_fd(XSKS_MAP, "map xsks")?;
        let ports_fd = map_fd(PORTS_MAP, "map ports")?;
        let pool_cidrs_fd = map_fd(POOL_CIDRS_MAP, "map pool_cidrs")?;
        let snat_fd = map_fd(SNAT_MAP, "map snat")?;
        let host_fd = map_fd(HOST_MAP, "map host")?;
        let failsafe_in_fd = map_fd(FAILSAFE_IN_MAP, "map failsafe_in")?;
        let failsafe_out_fd = map_fd(FAILSAFE_OUT_MAP, "map failsafe_out")?;
        // SAFETY: valid object and NUL-terminated name.
        let host_egress = unsafe {
            sys::bpf_object__find_program_by_name(object.as_ptr(), HOST_EGRESS_PROGRAM.as_ptr())
        };
        let host_egress =
            NonNull::new(host_egress).ok_or(XdpError::Missing("program brindle_host_egress"))?;
        let prog_id = program_id(prog_fd)?;
        std::mem::forget(guard);
        tracing::debug!(prog_id, "loaded the XDP program");
        Ok(XdpProgram {
            object,
            prog_fd,
            prog_id,
            xsks_fd,
            ports_fd,
            pool_cidrs_fd,
            snat_fd,
            host_fd,
            failsafe_in_fd,
            failsafe_out_fd,
            host_egress,
        })
    }

    /// The kernel's id of the loaded program (what `ip link` shows as `prog/xdp id N`).
    pub fn id(&self) -> u32 {
        self.prog_id
    }

    /// Replaces the IP pool CIDRs: uplink traffic addressed into one of them goes to userspace.
    pub fn set_pool_cidrs(&self, cidrs: &[(Ipv4Addr, u8)]) -> Result<(), XdpError> {
        let wanted: Vec<PoolKey> = cidrs
            .iter()
            .map(|&(a, l)| PoolKey::new(a, l.min(32)))
            .collect();
        // Insert first and delete after, so that a pool present before and after never
        // disappears, not even for a moment.
        for key in &wanted {
            let one = 1u8;
            update(self.pool_cidrs_fd, key, &one).map_err(|source| XdpError::MapUpdate {
                map: "pool_cidrs",
                what: format!("{}/{}", Ipv4Addr::from(key.addr), key.prefixlen),
                source,
            })?;
        }
        let stale: Vec<PoolKey> = self
            .pool_cidr_keys()
            .into_iter()
            .filter(|k| !wanted.contains(k))
            .collect();
        for key in &stale {
            // SAFETY: key is a PoolKey-sized buffer.
            let err = unsafe {
                sys::bpf_map_delete_elem(
                    self.pool_cidrs_fd,
                    key as *const PoolKey as *const libc::c_void,
                )
            };
            if err != 0 && -err != libc::ENOENT {
                return Err(XdpError::MapUpdate {
                    map: "pool_cidrs",
                    what: format!("removing {}/{}", Ipv4Addr::from(key.addr), key.prefixlen),
                    source: io::Error::from_raw_os_error(-err),
                });
            }
        }
        Ok(())
    }

    /// Sends replies to source-NATed flows (to `node`, destination port or echo identifier in
    /// `ports`) from the uplink to userspace; `None` stops it.
    pub fn set_snat(
        &self,
        snat: Option<(Ipv4Addr, std::ops::RangeInclusive<u16>)>,
    ) -> Result<(), XdpError> {
        let entry = match &snat {
            Some((node, ports)) => SnatEntry {
                node: node.octets(),
                first: *ports.start(),
                last: *ports.end(),
            },
            None => SnatEntry::default(),
        };
        update(self.snat_fd, &0u32, &entry).map_err(|source| XdpError::MapUpdate {
            map: "snat",
            what: format!("{snat:?}"),
            source,
        })
    }

    /// Describes the interface in `ports`, then attaches the program to it: natively, or in
    /// generic mode (with a warning) when the driver has no XDP support.
    ///
    /// Attaching replaces whatever XDP program the interface had, in particular one left
    /// behind by a previous run that crashed.
    pub fn attach(
        &self,
        ifindex: u32,
        kind: PortKind,
        queues: u32,
        first_slot: u32,
    ) -> Result<Attachment, XdpError> {
        self.attach_in_mode(ifindex, kind, queues, first_slot, XdpMode::Native)
    }

    /// [`XdpProgram::attach`] in the mode a NIC profile asks for: `Native` tries the driver
    /// first and falls back to generic; `Generic` attaches in generic mode only (for drivers
    /// whose native XDP is known to be broken or slower).
    pub fn attach_in_mode(
        &self,
        ifindex: u32,
        kind: PortKind,
        queues: u32,
        first_slot: u32,
        preferred: XdpMode,
    ) -> Result<Attachment, XdpError> {
        let ifname = interface_name(ifindex);
        if first_slot
            .checked_add(queues)
            .is_none_or(|end| end > MAX_SOCKETS)
        {
            return Err(XdpError::SlotOutOfRange {
                slot: first_slot.saturating_add(queues),
            });
        }
        let entry = PortEntry {
            first_slot,
            queues,
            kind: match kind {
                PortKind::Workload => 0,
                PortKind::Uplink => 1,
                PortKind::Host => 2,
            },
        };
        update(self.ports_fd, &ifindex, &entry).map_err(|source| XdpError::MapUpdate {
            map: "ports",
            what: format!("{ifname} (ifindex {ifindex})"),
            source,
        })?;

        let first_try = match preferred {
            XdpMode::Native => self.attach_in(ifindex, XdpMode::Native),
            XdpMode::Generic => Err(io::Error::other("the NIC profile asks for generic mode")),
        };
        let mode = match first_try {
            Ok(()) => XdpMode::Native,
            Err(native) => {
                if preferred == XdpMode::Native {
                    tracing::warn!(
                        interface = %ifname,
                        error = %native,
                        "native XDP attach failed; falling back to generic (SKB) mode, which is slower"
                    );
                }
                self.attach_in(ifindex, XdpMode::Generic)
                    .map_err(|source| XdpError::Attach {
                        ifname: ifname.clone(),
                        ifindex,
                        native,
                        source,
                    })?;
                XdpMode::Generic
            }
        };
        tracing::info!(interface = %ifname, ?mode, ?kind, queues, first_slot, "attached the XDP program");
        // The Attachment keeps its own descriptor on `ports` so that it can remove its entry
        // even if the XdpProgram is dropped first.
        let ports = dup(self.ports_fd).map_err(|source| XdpError::Io {
            what: "dup of the ports map descriptor",
            source,
        })?;
        Ok(Attachment {
            ifindex,
            ifname,
            mode,
            prog_id: self.prog_id,
            ports,
        })
    }

    fn attach_in(&self, ifindex: u32, mode: XdpMode) -> io::Result<()> {
        // No XDP_FLAGS_UPDATE_IF_NOEXIST: replacing a leftover program is the point.
        // SAFETY: plain syscall wrapper; null opts.
        let err = unsafe {
            sys::bpf_xdp_attach(
                ifindex as i32,
                self.prog_fd,
                attach_flag(mode),
                std::ptr::null(),
            )
        };
        if err == 0 {
            return Ok(());
        }
        let error = io::Error::from_raw_os_error(-err);
        // The kernel refuses native and generic programs on one interface at the same time;
        // a leftover in the other mode is removed and the attach retried once.
        if -err == libc::EEXIST {
            let other = match mode {
                XdpMode::Native => XdpMode::Generic,
                XdpMode::Generic => XdpMode::Native,
            };
            // SAFETY: plain syscall wrapper; null opts.
            unsafe { sys::bpf_xdp_detach(ifindex as i32, attach_flag(other), std::ptr::null()) };
            // SAFETY: as above.
            let err = unsafe {
                sys::bpf_xdp_attach(
                    ifindex as i32,
                    self.prog_fd,
                    attach_flag(mode),
                    std::ptr::null(),
                )
            };
            if err == 0 {
                return Ok(());
            }
            return Err(io::Error::from_raw_os_error(-err));
        }
        Err(error)
    }

    /// Every key in `pool_cidrs` (bounded by the map's size).
    fn pool_cidr_keys(&self) -> Vec<PoolKey> {
        let mut keys: Vec<PoolKey> = Vec::new();
        while keys.len() <= MAX_POOL_CIDRS {
            let prev = keys.last().map_or(std::ptr::null(), |k| {
                k as *const PoolKey as *const libc::c_void
            });
            let mut next = PoolKey::default();
            // SAFETY: keys are PoolKey-sized buffers; a null previous key asks for the first.
            let err = unsafe {
                sys::bpf_map_get_next_key(
                    self.pool_cidrs_fd,
                    prev,
                    &mut next as *mut PoolKey as *mut libc::c_void,
                )
            };
            if err != 0 {
                break; // ENOENT: no more keys.
            }
            keys.push(next);
        }
        keys
    }

    /// Puts an AF_XDP socket in XSKMAP `slot` (`first_slot + queue` of its interface). The
    /// kernel removes it again when the socket is closed.
    pub fn register_socket(&self, slot: u32, xsk_fd: RawFd) -> Result<(), XdpError> {
        if slot >= MAX_SOCKETS {
            return Err(XdpError::SlotOutOfRange { slot });
        }
        let fd = xsk_fd as u32;
        update(self.xsks_fd, &slot, &fd).map_err(|source| XdpError::MapUpdate {
            map: "xsks",
            what: format!("slot {slot}"),
            source,
        })
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        // Interfaces the program is still attached to keep it (and its maps) alive in the
        // kernel; closing only releases our descriptors.
        // SAFETY: the object was opened by load() and is closed exactly once.
        unsafe { sys::bpf_object__close(self.object.as_ptr()) };
    }
}

/// The program attached to one interface; detaches on drop.
#[derive(Debug)]
pub struct Attachment {
    ifindex: u32,
    ifname: String,
    mode: XdpMode,
    prog_id: u32,
    ports: OwnedFd,
}

impl Attachment {
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // Only detach our own program: a newer run may already have replaced it, and its
        // program must stay.
        let mut attached = 0u32;
        // SAFETY: plain syscall wrapper writing one u32.
        let err = unsafe {
            sys::bpf_xdp_query_id(
                self.ifindex as i32,
                attach_flag(self.mode) as i32,
                &mut attached,
            )
        };
        if err == 0 && attached == self.prog_id {
            // SAFETY: plain syscall wrapper; null opts.
            let err = unsafe {
                sys::bpf_xdp_detach(
                    self.ifindex as i32,
                    attach_flag(self.mode),
                    std::ptr::null(),
                )
            };
            if err != 0 {
                tracing::warn!(interface = %self.ifname, error = %io::Error::from_raw_os_error(-err), "cannot detach the XDP program");
            } else {
                tracing::info!(interface = %self.ifname, "detached the XDP program");
            }
            // SAFETY: key is a u32, the map's key type.
            unsafe {
                sys::bpf_map_delete_elem(
                    self.ports.as_raw_fd(),
                    &self.ifindex as *const u32 as *const libc::c_void,
                )
            };
        } else if err != 0 {
            tracing::debug!(interface = %self.ifname, error = %io::Error::from_raw_os_error(-err), "cannot query XDP program; leaving it");
        }
    }
}

/// Writes one map element (BPF_ANY: create or replace).
pub(crate) fn update<K, V>(fd: RawFd, key: &K, value: &V) -> io::Result<()> {
    // SAFETY: key and value point at values of the map's key and value types (the callers pass
    // the #[repr(C)] mirrors of the C structs).
    let err = unsafe {
        sys::bpf_map_update_elem(
            fd,
            key as *const K as *const libc::c_void,
            value as *const V as *const libc::c_void,
            0,
        )
    };
    if err == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(-err))
    }
}

fn program_id(prog_fd: RawFd) -> Result<u32, XdpError> {
    // SAFETY: bpf_prog_info is plain old data; zeroed is what the kernel expects.
    let mut info: sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
    // SAFETY: info is a writable bpf_prog_info of `len` bytes.
    let err = unsafe { sys::bpf_prog_get_info_by_fd(prog_fd, &mut info, &mut len) };
    if err != 0 {
        return Err(XdpError::Io {
            what: "querying the loaded XDP program",
            source: io::Error::from_raw_os_error(-err),
        });
    }
    Ok(info.id)
}

fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we hold returns a new one or -1.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: new is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The interface's name for messages, or `ifindex N` if it has none (any more).
pub fn interface_name(ifindex: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return format!("ifindex {ifindex}");
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Closes a half-loaded object on early return from `load`.
struct ObjectGuard(NonNull<sys::bpf_object>);

impl Drop for ObjectGuard {
    fn drop(&mut self) {
        // SAFETY: the object is open and not referenced elsewhere once load() bails out.
        unsafe { sys::bpf_object__close(self.0.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_key_clears_host_bits_and_keeps_network_order() {
        let k = PoolKey::new(Ipv4Addr::new(10, 1, 2, 3), 16);
        assert_eq!(
            k,
            PoolKey {
                prefixlen: 16,
                addr: [10, 1, 0, 0]
            }
        );
        assert_eq!(PoolKey::new(Ipv4Addr::new(1, 2, 3, 4), 0).addr, [0; 4]);
        assert_eq!(
            PoolKey::new(Ipv4Addr::new(1, 2, 3, 4), 32).addr,
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn port_entry_matches_the_c_layout() {
        assert_eq!(std::mem::size_of::<PortEntry>(), 12);
        assert_eq!(std::mem::size_of::<PoolKey>(), 8);
    }

    #[test]
    fn program_loads_and_has_an_id() {
        let prog = XdpProgram::load().expect("load (needs root)");
        assert!(prog.id() > 0);
        prog.set_pool_cidrs(&[
            (Ipv4Addr::new(192, 168, 0, 0), 16),
            (Ipv4Addr::new(10, 20, 0, 0), 24),
        ])
        .unwrap();
        prog.set_pool_cidrs(&[(Ipv4Addr::new(10, 20, 0, 0), 24)])
            .unwrap();
        assert_eq!(
            prog.pool_cidr_keys(),
            vec![PoolKey::new(Ipv4Addr::new(10, 20, 0, 0), 24)]
        );
    }
}
