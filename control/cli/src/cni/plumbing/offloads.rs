//! Turning a veth end's checksum and segmentation offloads off, as `ethtool -K DEV tx off tso
//! off gso off gro off` does, with the `SIOCETHTOOL` ioctl (include/uapi/linux/ethtool.h, the
//! per-feature `ETHTOOL_S*` commands) instead of a process per feature.
//!
//! The ioctl acts on the interface of that name in the namespace of the socket it is issued
//! on: for a container's interface, a socket opened inside the container's namespace.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::PlumbingError;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
/// `ETHTOOL_STXCSUM`, `ETHTOOL_STSO`, `ETHTOOL_SGSO`, `ETHTOOL_SGRO`: what `ethtool -K` calls
/// `tx`, `tso`, `gso` and `gro`.
const FEATURES_OFF: [(u32, &str); 4] = [(0x17, "tx"), (0x1f, "tso"), (0x24, "gso"), (0x2c, "gro")];

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with its `ifr_data` member; padded to the kernel's size.
#[repr(C)]
struct IfreqData {
    name: [u8; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    _pad: [u8; 16],
}

/// A datagram socket in the calling thread's namespace, for the ioctl.
pub fn socket_here() -> Result<OwnedFd, PlumbingError> {
    // SAFETY: plain socket(2); the descriptor is owned by the returned value.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(PlumbingError {
            command: "socket(AF_INET) for SIOCETHTOOL".into(),
            detail: std::io::Error::last_os_error().to_string(),
        });
    }
    // SAFETY: fd was just returned by socket(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Best effort: some drivers have some features fixed, which is fine; the features refused
/// are returned, for the log.
pub fn disable(socket: &OwnedFd, dev: &str) -> Vec<&'static str> {
    let mut refused = Vec::new();
    for (cmd, feature) in FEATURES_OFF {
        if set(socket, dev, cmd, 0).is_err() {
            refused.push(feature);
        }
    }
    refused
}

fn set(socket: &OwnedFd, dev: &str, cmd: u32, data: u32) -> std::io::Result<()> {
    let mut value = EthtoolValue { cmd, data };
    let mut request = IfreqData {
        name: [0; libc::IFNAMSIZ],
        data: &mut value,
        _pad: [0; 16],
    };
    let name = dev.as_bytes();
    if name.len() >= libc::IFNAMSIZ {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    request.name[..name.len()].copy_from_slice(name);
    // SAFETY: the request and the value it points to live until the call returns.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCETHTOOL, &mut request) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
