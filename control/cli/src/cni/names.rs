//! What names and paths from the runtime must look like before they reach a path, a netlink
//! call or a datastore key (issue 14, item 7). The rules are the CNI specification's
//! ("Parameters" in SPEC.md) and Kubernetes' for pod names and namespaces; every refusal names
//! the variable and the value.

use std::os::fd::AsRawFd;
use std::path::Path;

use super::spec::{code, CniError};

/// Longest container id accepted. The CNI spec sets none; runtimes use 64 hex digits.
pub const MAX_CONTAINER_ID: usize = 255;
/// Linux's `IFNAMSIZ` less the terminating NUL.
pub const MAX_IFNAME: usize = 15;

fn invalid(var: &str, value: &str, why: &str) -> CniError {
    CniError::new(code::INVALID_ENV, format!("{var}={value:?}: {why}"))
}

/// `CNI_CONTAINERID`: "must match the regular expression `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`"
/// (CNI SPEC.md, Parameters). The first character rules out `.`, `..` and option-like `-x`.
pub fn check_container_id(id: &str) -> Result<(), CniError> {
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok {
        return Err(invalid(
            "CNI_CONTAINERID",
            id,
            "must start with a letter or digit, then only letters, digits, '_', '.' and '-'",
        ));
    }
    if id.len() > MAX_CONTAINER_ID {
        return Err(invalid(
            "CNI_CONTAINERID",
            id,
            &format!("longer than {MAX_CONTAINER_ID} characters"),
        ));
    }
    Ok(())
}

/// `CNI_IFNAME`: "no longer than 15 characters, not empty, not `.` or `..`, and no `/`, `:` or
/// whitespace" (CNI SPEC.md, Parameters; the kernel's `dev_valid_name`).
pub fn check_ifname(name: &str) -> Result<(), CniError> {
    let why = if name.is_empty() {
        Some("empty".to_owned())
    } else if name.len() > MAX_IFNAME {
        Some(format!("longer than {MAX_IFNAME} bytes"))
    } else if name == "." || name == ".." {
        Some("'.' and '..' are not interface names".to_owned())
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        Some("'/', ':', whitespace and control characters are not allowed".to_owned())
    } else {
        None
    };
    match why {
        Some(why) => Err(invalid("CNI_IFNAME", name, &why)),
        None => Ok(()),
    }
}

/// `K8S_POD_NAMESPACE` of `CNI_ARGS` becomes a segment of a datastore key
/// (`.../workloadendpoints/<namespace>/<name>`): it must be a DNS-1123 label, as Kubernetes
/// requires of a namespace. `K8S_POD_NAME` is kept on the endpoint (`spec.pod`) and hashed
/// into the host interface's name; podman sends its container name there (letters of either
/// case, digits, '_', '.', '-'), so it is held to that wider alphabet, which still has no '/'
/// and nothing a command line could take for an option.
pub fn check_k8s_arg(key: &str, value: &str) -> Result<(), CniError> {
    let (ok, rule) = match key {
        "K8S_POD_NAMESPACE" => (
            value.len() <= 63
                && !value.contains('.')
                && resources::validate::is_dns_subdomain(value),
            "a Kubernetes namespace: at most 63 lowercase letters, digits and '-', starting \
             and ending with a letter or digit",
        ),
        "K8S_POD_NAME" => (
            value.len() <= 253 && check_container_id(value).is_ok(),
            "a pod or container name: at most 253 letters, digits, '_', '.' and '-', starting \
             with a letter or digit",
        ),
        _ => (true, ""),
    };
    if ok || value.is_empty() {
        Ok(())
    } else {
        Err(CniError::new(
            code::INVALID_ENV,
            format!("CNI_ARGS {key}={value:?}: not {rule}"),
        ))
    }
}

/// The `nodename` (netconf, else the host name): part of datastore keys, a DNS-1123
/// subdomain as Calico's Node names are.
pub fn check_node_name(name: &str) -> Result<(), CniError> {
    if resources::validate::is_dns_subdomain(name) {
        Ok(())
    } else {
        Err(CniError::new(
            code::INVALID_NETWORK_CONFIG,
            format!(
                "nodename {name:?}: not a node name (a lowercase RFC 1123 subdomain: letters, \
                 digits, '-' and '.')"
            ),
        ))
    }
}

/// `nsfs`'s magic number (`linux/magic.h`): what `fstatfs` reports for a namespace file.
const NSFS_MAGIC: i64 = 0x6e73_6673;
/// `NS_GET_NSTYPE` (`linux/nsfs.h`, `_IO(0xb7, 0x3)`): the kind of namespace a file is.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// `CNI_NETNS`: an absolute path to a network namespace file (a bind mount like
/// `/var/run/netns/x` or `/proc/<pid>/ns/net`). Anything else that exists (a regular file, a
/// directory, a mount or a user namespace) is refused before it reaches `setns(2)`. A path
/// that does not exist passes: entering it fails in the wiring, after which ADD undoes what it
/// did, exactly as when the namespace is removed while ADD runs; DEL takes it as gone.
pub fn check_netns(path: &str) -> Result<(), CniError> {
    let refuse = |why: String| invalid("CNI_NETNS", path, &why);
    if !Path::new(path).is_absolute() {
        return Err(refuse("not an absolute path".into()));
    }
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(refuse(format!("cannot open: {e}"))),
    };
    // SAFETY: fstatfs writes into a zeroed statfs this function owns, on a descriptor it owns.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) } != 0 {
        return Err(refuse(format!(
            "cannot stat its file system: {}",
            std::io::Error::last_os_error()
        )));
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between architectures.
    if fs.f_type as i64 != NSFS_MAGIC {
        return Err(refuse("not a namespace file (nsfs)".into()));
    }
    // SAFETY: an ioctl without argument on a descriptor this function owns.
    let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
    if kind != libc::CLONE_NEWNET {
        return Err(refuse("a namespace, but not a network namespace".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_follow_the_cni_spec() {
        for ok in ["abc", "0123456789abcdef", "a.b_c-d", "A9"] {
            check_container_id(ok).unwrap();
        }
        for bad in [
            "", ".", "..", "-rf", "_x", ".hidden", "a/../b", "a b", "a;b", "é",
        ] {
            let e = check_container_id(bad).unwrap_err();
            assert!(
                e.msg.starts_with("CNI_CONTAINERID=") && e.msg.contains(&format!("{bad:?}")),
                "{e}"
            );
        }
        check_container_id(&"a".repeat(MAX_CONTAINER_ID)).unwrap();
        check_container_id(&"a".repeat(MAX_CONTAINER_ID + 1)).unwrap_err();
    }

    #[test]
    fn interface_names_follow_the_cni_spec() {
        for ok in ["eth0", "net1", "a.b", "x-y_z", "123456789012345"] {
            check_ifname(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "eth0:1",
            "eth 0",
            "eth\t0",
            "1234567890123456",
        ] {
            let e = check_ifname(bad).unwrap_err();
            assert!(e.msg.starts_with("CNI_IFNAME="), "{e}");
        }
    }

    #[test]
    fn pod_names_and_namespaces_cannot_reach_outside_their_key() {
        check_k8s_arg("K8S_POD_NAMESPACE", "kube-system").unwrap();
        check_k8s_arg("K8S_POD_NAME", "web-0.a").unwrap();
        // podman's container names (its own or generated, like festive_hopper).
        check_k8s_arg("K8S_POD_NAME", "festive_Hopper").unwrap();
        check_k8s_arg("K8S_POD_INFRA_CONTAINER_ID", "anything/at/all").unwrap();
        for (key, bad) in [
            ("K8S_POD_NAMESPACE", "../ippools"),
            ("K8S_POD_NAMESPACE", "a.b"),
            ("K8S_POD_NAME", "x/y"),
            ("K8S_POD_NAME", "-rf"),
        ] {
            let e = check_k8s_arg(key, bad).unwrap_err();
            assert!(e.msg.starts_with(&format!("CNI_ARGS {key}=")), "{e}");
        }
    }

    #[test]
    fn node_names_are_subdomains() {
        check_node_name("node-1.example").unwrap();
        for bad in ["", "../x", "a/b", "Node1"] {
            assert!(check_node_name(bad).unwrap_err().msg.contains("nodename"));
        }
    }

    #[test]
    fn only_a_network_namespace_file_is_a_netns() {
        check_netns("/proc/self/ns/net").unwrap();
        check_netns("/var/run/netns/brindle-never-made").unwrap();
        for (bad, why) in [
            ("relative/x", "not an absolute path"),
            ("/", "not a namespace file"),
            (
                concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
                "not a namespace file",
            ),
            ("/proc/self/ns/mnt", "not a network namespace"),
        ] {
            let e = check_netns(bad).unwrap_err();
            assert!(
                e.msg.starts_with(&format!("CNI_NETNS={bad:?}")) && e.msg.contains(why),
                "{bad}: {e}"
            );
        }
    }
}
