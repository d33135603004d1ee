//! Detection: the interface's driver, and what the running kernel offers.

use std::fmt;
use std::path::Path;

use super::profile::{KernelVersion, NEED_WAKEUP_KERNEL, PREFER_BUSY_POLL_KERNEL};

/// How a driver name was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverSource {
    /// The ETHTOOL_GDRVINFO ioctl (what `ethtool -i` prints).
    Ethtool,
    /// The `/sys/class/net/<if>/device/driver` symlink.
    Sysfs,
}

impl fmt::Display for DriverSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriverSource::Ethtool => "ethtool driver info",
            DriverSource::Sysfs => "sysfs device/driver",
        })
    }
}

/// The driver of `interface` in this network namespace: ethtool's driver info first (it
/// also answers for virtual devices such as veth, which have no `device` in sysfs), then
/// the sysfs symlink. `None` when neither answers.
pub fn detect_driver(interface: &str) -> Option<(String, DriverSource)> {
    if let Some(d) = driver_from_ethtool(interface) {
        return Some((d, DriverSource::Ethtool));
    }
    driver_from_sysfs(Path::new("/sys/class/net"), interface).map(|d| (d, DriverSource::Sysfs))
}

/// The last component of `<class_net>/<if>/device/driver`'s target (`../../bus/pci/drivers/ixgbe`).
pub fn driver_from_sysfs(class_net: &Path, interface: &str) -> Option<String> {
    if !valid_interface_name(interface) {
        return None;
    }
    let target = std::fs::read_link(class_net.join(interface).join("device/driver")).ok()?;
    let name = target.file_name()?.to_str()?;
    (!name.is_empty()).then(|| name.to_owned())
}

pub(super) fn valid_interface_name(name: &str) -> bool {
    // IFNAMSIZ is 16 with the terminating NUL; `/` and NUL would escape the path or the ioctl.
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace())
}

/// `struct ethtool_drvinfo` (include/uapi/linux/ethtool.h).
#[repr(C)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// `struct ifreq` with the `ifr_data` member of its union.
#[repr(C)]
struct IfreqData {
    name: [u8; 16],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;

/// The driver name ethtool reports for `interface` (SIOCETHTOOL / ETHTOOL_GDRVINFO).
pub fn driver_from_ethtool(interface: &str) -> Option<String> {
    if !valid_interface_name(interface) {
        return None;
    }
    // SAFETY: an ordinary socket, closed below; the ioctl writes only into `info`, which
    // outlives the call, and reads the NUL-terminated name from `request`.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let mut info: EthtoolDrvinfo = std::mem::zeroed();
        info.cmd = ETHTOOL_GDRVINFO;
        let mut request = IfreqData {
            name: [0; 16],
            data: (&mut info as *mut EthtoolDrvinfo).cast(),
            _pad: [0; 16],
        };
        request.name[..interface.len()].copy_from_slice(interface.as_bytes());
        let rc = libc::ioctl(fd, SIOCETHTOOL as _, &mut request as *mut IfreqData);
        libc::close(fd);
        if rc != 0 {
            return None;
        }
        let len = info
            .driver
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(info.driver.len());
        let name = std::str::from_utf8(&info.driver[..len]).ok()?;
        (!name.is_empty()).then(|| name.to_owned())
    }
}

/// What the running kernel offers the dataplane.
#[derive(Clone, Debug)]
pub struct KernelFeatures {
    /// `uname -r`.
    pub release: String,
    /// `None` when the release does not start with `major.minor`.
    pub version: Option<KernelVersion>,
    /// Whether an AF_XDP socket could be created, else why not.
    pub af_xdp: Result<(), String>,
    /// Whether the bpf(2) syscall works (a one-entry array map could be created), else why not.
    pub bpf: Result<(), String>,
}

impl KernelFeatures {
    pub fn detect() -> KernelFeatures {
        let release = kernel_release();
        KernelFeatures {
            version: KernelVersion::parse(&release),
            release,
            af_xdp: try_af_xdp_socket(),
            bpf: try_bpf_map(),
        }
    }

    pub fn at_least(&self, needed: KernelVersion) -> bool {
        self.version.is_some_and(|v| v >= needed)
    }

    pub fn need_wakeup(&self) -> bool {
        self.at_least(NEED_WAKEUP_KERNEL)
    }

    pub fn prefer_busy_poll(&self) -> bool {
        self.at_least(PREFER_BUSY_POLL_KERNEL)
    }
}

fn kernel_release() -> String {
    // SAFETY: uname fills the zeroed struct; its fields are NUL-terminated.
    unsafe {
        let mut uts: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut uts) != 0 {
            return String::new();
        }
        std::ffi::CStr::from_ptr(uts.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

fn try_af_xdp_socket() -> Result<(), String> {
    // SAFETY: creating and closing a socket has no other effect.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!(
            "socket(AF_XDP): {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    Ok(())
}

fn try_bpf_map() -> Result<(), String> {
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    // union bpf_attr for BPF_MAP_CREATE: map_type, key_size, value_size, max_entries, then
    // fields that must be zero.
    let mut attr = [0u32; 16];
    attr[..4].copy_from_slice(&[BPF_MAP_TYPE_ARRAY, 4, 4, 1]);
    // SAFETY: the kernel reads `size_of_val(&attr)` bytes of attr; a fd comes back or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd < 0 {
        return Err(format!(
            "bpf(BPF_MAP_CREATE): {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fd is ours.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_driver_is_the_symlink_target_name() {
        let root =
            std::env::temp_dir().join(format!("brindle-hwprofile-sysfs-{}", std::process::id()));
        let device = root.join("eth7/device");
        std::fs::create_dir_all(&device).unwrap();
        let _ = std::fs::remove_file(device.join("driver"));
        std::os::unix::fs::symlink("../../../bus/pci/drivers/ixgbe", device.join("driver"))
            .unwrap();
        std::fs::create_dir_all(root.join("veth9")).unwrap();
        assert_eq!(driver_from_sysfs(&root, "eth7").as_deref(), Some("ixgbe"));
        assert_eq!(driver_from_sysfs(&root, "veth9"), None, "no device dir");
        assert_eq!(
            driver_from_sysfs(&root, "../eth7"),
            None,
            "names cannot escape the directory"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
