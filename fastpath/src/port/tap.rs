//! A TAP port: the workload's own `eth0` is a TAP device whose file descriptor the vRouter
//! holds, with a virtio-net header in front of every frame (IFF_VNET_HDR), as Calico/VPP
//! wires pods.
//!
//! Why: a veth served by AF_XDP carries MTU-sized frames, each copied twice, and no offload
//! metadata. Through a TAP with the header, the workload's kernel hands over whole TCP
//! segments of up to 64 KiB with their checksums left partial (TUNSETOFFLOAD: CSUM, TSO4),
//! the pipeline routes and polices each once, and writing one to another TAP with the same
//! header delivers it whole; the receiving kernel takes it as if GRO had built it. Frames
//! for a port that takes no metadata (AF_XDP) are segmented by the worker first
//! (`crate::offload`).
//!
//! The device belongs to whoever wires the workload (a CNI plugin, `ip tuntap add ... mode
//! tap vnet_hdr`): it is persistent, so the workload keeps its interface, addresses and
//! routes while the node restarts. The port attaches to it by name inside the workload's
//! network namespace (TUNSETIFF looks names up in the caller's namespace; the descriptor
//! keeps working from anywhere afterwards).
//!
//! Nothing is allocated after `attach`: the receive buffers are sized up front, one per frame
//! of a batch, each big enough for the largest segment.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::ids::PortId;
use crate::offload::{vnet_hdr, Offload, VNET_HDR_LEN};
use crate::wire::ethernet::MacAddr;

use super::tap_stats::TapStats;

/// The largest frame a TAP hands over: a 64 KiB IPv4 segment behind an Ethernet header with
/// one VLAN tag.
pub const TAP_FRAME_MAX: usize = 65_535 + 18;

/// Frames a TAP port reads per batch. Few are needed: one segment carries up to 64 KiB.
pub const TAP_BATCH: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum TapError {
    #[error("TAP {ifname} in {netns}: cannot enter the namespace: {source}")]
    Netns {
        ifname: String,
        netns: String,
        source: io::Error,
    },
    #[error("TAP {ifname} in {netns}: no such interface (create it with `ip tuntap add dev {ifname} mode tap vnet_hdr` in the namespace)")]
    Missing { ifname: String, netns: String },
    #[error("TAP {ifname} in {netns}: {what}: {source}")]
    Io {
        ifname: String,
        netns: String,
        what: &'static str,
        source: io::Error,
    },
    #[error("TAP name {0:?} is not an interface name (1 to 15 bytes, no NUL)")]
    BadName(String),
}

/// What attaching learnt about the device, for the port's tables entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapFacts {
    /// The device's index in the workload's namespace.
    pub ifindex: u32,
    /// The workload's MAC (its `eth0`'s own address).
    pub mac: MacAddr,
    pub mtu: u16,
}

/// One receive buffer: the virtio-net header, then the frame.
struct RxBuf {
    data: Box<[u8]>,
    /// Bytes of frame (after the header).
    len: usize,
    offload: Offload,
}

/// An attached TAP device.
pub struct TapPort {
    id: PortId,
    name: String,
    fd: OwnedFd,
    rx: Vec<RxBuf>,
    received: usize,
    /// The TAP's queue drops (`None`: the socket to read them could not be opened; said at
    /// attach).
    stats: Option<TapStats>,
}

impl std::fmt::Debug for TapPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapPort")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl TapPort {
    /// Attaches to TAP `ifname` in the network namespace at `netns` (a `/run/netns/...` or
    /// `/proc/PID/ns/net` path) as port `id`, called `name` in the tables (the workload's
    /// `cali...` handle). What the control plane needs to know of the TAP it reads with
    /// [`read_tap_facts`].
    pub fn attach(id: PortId, name: &str, netns: &Path, ifname: &str) -> Result<TapPort, TapError> {
        let (fd, facts, stats) = open_in_namespace(netns, ifname)?;
        let rx = (0..TAP_BATCH)
            .map(|_| RxBuf {
                data: vec![0u8; VNET_HDR_LEN + TAP_FRAME_MAX].into_boxed_slice(),
                len: 0,
                offload: Offload::NONE,
            })
            .collect();
        tracing::debug!(port = name, %ifname, netns = %netns.display(), ?facts, "attached TAP port");
        let port = TapPort {
            id,
            name: name.to_owned(),
            fd,
            rx,
            received: 0,
            stats,
        };
        Ok(port)
    }

    pub fn id(&self) -> PortId {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The descriptor, for poll(2) (POLLIN: a frame is waiting).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Reads up to [`TAP_BATCH`] frames; returns how many.
    pub fn receive(&mut self) -> usize {
        self.received = 0;
        let fd = self.fd.as_raw_fd();
        for buf in self.rx.iter_mut() {
            // SAFETY: reading into our own buffer of the given length.
            let n = unsafe { libc::read(fd, buf.data.as_mut_ptr().cast(), buf.data.len()) };
            if n <= VNET_HDR_LEN as isize {
                // EAGAIN (nothing more), an error, or a frame without a header: stop here.
                break;
            }
            buf.len = n as usize - VNET_HDR_LEN;
            buf.offload = match vnet_hdr::decode(&buf.data[..VNET_HDR_LEN]) {
                // Only a GSO frame keeps its metadata to the egress port. A single packet's
                // partial checksum is completed by the pipeline (stage 1b), after which
                // the metadata would be wrong.
                Ok(offload) if offload.gso.is_some() => offload,
                Ok(_) => Offload::NONE,
                // The kernel writes these headers; one it does not is handled as a plain
                // frame, which the pipeline refuses if it is larger than the MTU.
                Err(e) => {
                    tracing::debug!(port = %self.name, error = %e, "TAP frame with an unreadable virtio-net header");
                    Offload::NONE
                }
            };
            self.received += 1;
        }
        self.received
    }

    pub fn received(&self) -> usize {
        self.received
    }

    pub fn received_frame_mut(&mut self, i: usize) -> &mut [u8] {
        match self.rx.get_mut(i).filter(|_| i < self.received) {
            Some(buf) => &mut buf.data[VNET_HDR_LEN..VNET_HDR_LEN + buf.len],
            None => &mut [],
        }
    }

    pub fn received_frame(&self, i: usize) -> &[u8] {
        match self.rx.get(i).filter(|_| i < self.received) {
            Some(buf) => &buf.data[VNET_HDR_LEN..VNET_HDR_LEN + buf.len],
            None => &[],
        }
    }

    /// The offload metadata of received frame `i`: a GSO frame's, else none.
    pub fn received_offload(&self, i: usize) -> Offload {
        self.rx
            .get(i)
            .filter(|_| i < self.received)
            .map_or(Offload::NONE, |b| b.offload)
    }

    pub fn release_received(&mut self) {
        self.received = 0;
    }

    /// Frames the workload sent since the port attached that the TAP's queue dropped
    /// because the worker had not read the ones before.
    pub fn queue_dropped(&self) -> io::Result<u64> {
        match &self.stats {
            Some(stats) => stats.queue_dropped(),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no rtnetlink socket in the TAP's namespace",
            )),
        }
    }

    /// Writes `frame` to the workload with `offload`'s header (a GSO segment stays whole, a
    /// partial checksum stays partial: the workload's kernel takes both). False when the
    /// device took nothing (its queue is full, or it is going away).
    pub fn transmit(&self, frame: &[u8], offload: &Offload) -> bool {
        let mut hdr = [0u8; VNET_HDR_LEN];
        vnet_hdr::encode(offload, &mut hdr);
        let iov = [
            libc::iovec {
                iov_base: hdr.as_mut_ptr().cast(),
                iov_len: hdr.len(),
            },
            libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            },
        ];
        // SAFETY: two iovecs over live buffers; writev only reads them.
        let n = unsafe { libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
        n == (VNET_HDR_LEN + frame.len()) as isize
    }
}

/// Reads what a port needs to know of TAP `ifname` in `netns` without attaching to it (the
/// control plane plans with it; it works while a port is attached).
pub fn read_tap_facts(netns: &Path, ifname: &str) -> Result<TapFacts, TapError> {
    in_namespace(netns, ifname, |at, name| facts_here(&at, name))
}

/// Enters `netns` on a thread of its own (the caller's namespace stays as it is), attaches
/// to the TAP there and opens the socket its drop count is read from.
fn open_in_namespace(
    netns: &Path,
    ifname: &str,
) -> Result<(OwnedFd, TapFacts, Option<TapStats>), TapError> {
    in_namespace(netns, ifname, |at, name| {
        let facts = facts_here(&at, name)?;
        let fd = attach_here(&at, name)?;
        let stats = TapStats::open_here(facts.ifindex)
            .map_err(|e| {
                tracing::warn!(ifname = %at.ifname, netns = %at.netns, error = %e, "cannot read the TAP's drop count: its queue drops go uncounted")
            })
            .ok();
        Ok((fd, facts, stats))
    })
}

/// Where a TAP is, for errors: its name and namespace.
#[derive(Clone)]
struct At {
    ifname: String,
    netns: String,
}

impl At {
    fn io(&self, what: &'static str) -> impl FnOnce(io::Error) -> TapError + '_ {
        move |source| TapError::Io {
            ifname: self.ifname.clone(),
            netns: self.netns.clone(),
            what,
            source,
        }
    }
}

/// Runs `f` on a new thread that has entered `netns`; the thread ends with it.
fn in_namespace<T: Send + 'static>(
    netns: &Path,
    ifname: &str,
    f: impl FnOnce(At, &CString) -> Result<T, TapError> + Send + 'static,
) -> Result<T, TapError> {
    let name = CString::new(ifname)
        .ok()
        .filter(|n| !n.as_bytes().is_empty() && n.as_bytes().len() < libc::IFNAMSIZ)
        .ok_or_else(|| TapError::BadName(ifname.to_owned()))?;
    let at = At {
        ifname: ifname.to_owned(),
        netns: netns.display().to_string(),
    };
    let netns: PathBuf = netns.to_owned();
    let thread_at = at.clone();
    let worker = std::thread::Builder::new()
        .name("tap-netns".into())
        .spawn(move || {
            let ns = File::open(&netns).map_err(|source| TapError::Netns {
                ifname: thread_at.ifname.clone(),
                netns: thread_at.netns.clone(),
                source,
            })?;
            // SAFETY: setns on this thread only, with a namespace descriptor we opened.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(TapError::Netns {
                    ifname: thread_at.ifname.clone(),
                    netns: thread_at.netns.clone(),
                    source: io::Error::last_os_error(),
                });
            }
            f(thread_at, &name)
        })
        .map_err(at.io("starting a thread to enter the namespace"))?;
    worker.join().unwrap_or_else(|_| {
        Err(at.io("entering the namespace")(io::Error::other(
            "the thread panicked",
        )))
    })
}

/// The TAP's index, MAC and MTU, read in the current namespace.
fn facts_here(at: &At, name: &CString) -> Result<TapFacts, TapError> {
    // SAFETY: a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(TapError::Missing {
            ifname: at.ifname.clone(),
            netns: at.netns.clone(),
        });
    }
    // SAFETY: an ordinary socket, closed by OwnedFd.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(at.io("opening a socket")(io::Error::last_os_error()));
    }
    // SAFETY: just opened.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    let mut req = ifreq(name);
    ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req).map_err(at.io("reading the MAC"))?;
    // SAFETY: SIOCGIFHWADDR filled the sockaddr.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mac = MacAddr(std::array::from_fn(|i| sa[i] as u8));
    let mut req = ifreq(name);
    ioctl(sock.as_raw_fd(), libc::SIOCGIFMTU, &mut req).map_err(at.io("reading the MTU"))?;
    // SAFETY: SIOCGIFMTU filled the int.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(TapFacts {
        ifindex,
        mac,
        mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
    })
}

/// Attaches to the TAP named `name` in the current namespace, with virtio-net headers and the
/// offloads the pipeline handles.
fn attach_here(at: &At, name: &CString) -> Result<OwnedFd, TapError> {
    // SAFETY: a NUL-terminated path; the descriptor is checked below.
    let raw = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(at.io("opening /dev/net/tun")(io::Error::last_os_error()));
    }
    // SAFETY: we just opened it and own it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_flags =
        (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
    ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req)
        .map_err(at.io("attaching (TUNSETIFF; busy: another process has it)"))?;
    let hdr_len = VNET_HDR_LEN as libc::c_int;
    // SAFETY: TUNSETVNETHDRSZ reads one int.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ, &hdr_len) } != 0 {
        return Err(at.io("setting the header size")(io::Error::last_os_error()));
    }
    // The workload may leave checksums and TCP segmentation to us.
    let offloads = (libc::TUN_F_CSUM | libc::TUN_F_TSO4) as libc::c_ulong;
    // SAFETY: TUNSETOFFLOAD takes the flags as its argument.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, offloads) } != 0 {
        return Err(at.io("setting offloads")(io::Error::last_os_error()));
    }
    Ok(fd)
}

fn ifreq(name: &CString) -> libc::ifreq {
    // SAFETY: ifreq is plain data; all zeros is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    req
}

fn ioctl(fd: RawFd, request: libc::Ioctl, req: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: the request reads and writes one ifreq, which we own.
    if unsafe { libc::ioctl(fd, request, req as *mut libc::ifreq) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
