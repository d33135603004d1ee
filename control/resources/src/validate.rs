//! Field validation shared by every kind: the error type, a collector that knows the current
//! field path, and checks for the value shapes Calico uses (names, CIDRs, ports, durations).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// One refused field: where it is, what it held, and why it was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// e.g. `spec.ingress[0].destination.ports[1]`
    pub path: String,
    /// The bad value as the user wrote it (empty for a missing field).
    pub value: String,
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // calicoctl's shape: "error with field <field> = '<value>' (<reason>)".
        write!(
            f,
            "error with field {} = '{}' ({})",
            self.path, self.value, self.reason
        )
    }
}

/// Every problem found in one resource.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub kind: String,
    pub name: String,
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}): ", self.kind, self.name)?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ValidationError {
    /// True if some error is about exactly `path`.
    pub fn has_path(&self, path: &str) -> bool {
        self.errors.iter().any(|e| e.path == path)
    }
}

/// Collects field errors while walking a resource; `at` builds child paths.
#[derive(Default)]
pub struct Errors {
    pub(crate) list: Vec<FieldError>,
}

impl Errors {
    pub fn new() -> Errors {
        Errors::default()
    }

    pub fn add(&mut self, path: &str, value: impl fmt::Display, reason: impl Into<String>) {
        self.list.push(FieldError {
            path: path.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn into_result(self, kind: &str, name: &str) -> Result<(), ValidationError> {
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(ValidationError {
                kind: kind.to_string(),
                name: name.to_string(),
                errors: self.list,
            })
        }
    }
}

/// `parent.child`
pub(crate) fn field(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// `parent[i]`
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

// ---- names ------------------------------------------------------------------------------

/// Kubernetes' limit for names (DNS-1123 subdomain, RFC 1123 section 2.1 host names).
pub const MAX_NAME_LEN: usize = 253;
/// DNS-1123 label limit (namespaces, tiers).
pub const MAX_LABEL_LEN: usize = 63;

fn is_dns_label(s: &str) -> bool {
    s.len() <= MAX_LABEL_LEN && is_subdomain_part(s)
}

/// One dot-separated part of a subdomain. Like Kubernetes' `IsDNS1123Subdomain` (and Calico's
/// name regex), only the whole name is length-limited, not each part: a WorkloadEndpoint named
/// `<node>-cni-<64-hex container id>-eth0` is valid.
pub(crate) fn is_subdomain_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// DNS-1123 subdomain: lowercase labels joined by dots (Calico's `name` validator).
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= MAX_NAME_LEN && s.split('.').all(is_subdomain_part)
}

pub(crate) fn check_subdomain_name(errs: &mut Errors, path: &str, name: &str) {
    if name.is_empty() {
        errs.add(path, name, "name is required");
    } else if !is_dns_subdomain(name) {
        errs.add(
            path,
            name,
            "must be a lowercase RFC 1123 subdomain: alphanumerics, '-' and '.', starting and ending with an alphanumeric, at most 253 characters",
        );
    }
}

pub(crate) fn check_label_name(errs: &mut Errors, path: &str, name: &str) {
    if name.is_empty() {
        errs.add(path, name, "name is required");
    } else if !is_dns_label(name) {
        errs.add(
            path,
            name,
            "must be a lowercase RFC 1123 label: alphanumerics and '-', at most 63 characters",
        );
    }
}

/// Profiles keep the looser rule Calico's docs give for them ("alphanumeric string with
/// optional `.`, `_`, or `-`"), because profile names come from network names (Docker network
/// `my_net`, CNI network `k8s-pod-network`) and from Kubernetes (`kns.default`).
pub(crate) fn check_profile_name(errs: &mut Errors, path: &str, name: &str) {
    // Calico refuses a name that starts with a separator, such as `.fun`. (A trailing one is
    // kept: Docker network names, which name libnetwork's profiles, may end with '-' or '_'.)
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        errs.add(
            path,
            name,
            "must start with an alphanumeric, then alphanumerics, '.', '_' or '-', at most 253 characters",
        );
    }
}

/// Label keys as Kubernetes defines them: optional DNS-subdomain prefix, '/', and a name of at
/// most 63 characters of alphanumerics, '-', '_', '.', starting and ending with an alphanumeric.
pub(crate) fn check_label_key(errs: &mut Errors, path: &str, key: &str) {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = is_qualified_name_part(name);
    let prefix_ok = prefix.is_none() || prefix.is_some_and(is_dns_subdomain);
    if !name_ok || !prefix_ok {
        errs.add(
            path,
            key,
            "invalid label key: [prefix/]name, name at most 63 alphanumerics, '-', '_' or '.'",
        );
    }
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Label values: empty, or up to 63 alphanumerics, '-', '_', '.', alphanumeric at both ends.
pub(crate) fn check_label_value(errs: &mut Errors, path: &str, value: &str) {
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.add(path, value, "invalid label value: at most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric");
    }
}

pub(crate) fn check_labels(
    errs: &mut Errors,
    path: &str,
    labels: &std::collections::BTreeMap<String, String>,
) {
    for (k, v) in labels {
        let p = field(path, k);
        check_label_key(errs, &p, k);
        check_label_value(errs, &p, v);
    }
}

/// Kubernetes' (and Calico's) limit on all of one object's annotations, keys and values.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Annotation keys are qualified names as label keys are (Calico checks them lowercased, so
/// capitals are allowed); keys and values together at most 256 KiB.
pub(crate) fn check_annotations(
    errs: &mut Errors,
    path: &str,
    annotations: &std::collections::BTreeMap<String, String>,
) {
    let mut total = 0usize;
    for (k, v) in annotations {
        let mut key_errs = Errors::new();
        check_label_key(&mut key_errs, &field(path, k), &k.to_ascii_lowercase());
        if !key_errs.is_empty() {
            errs.add(
                &field(path, k),
                k,
                "invalid annotation key: [prefix/]name, name at most 63 alphanumerics, '-', '_' or '.'",
            );
        }
        total = total.saturating_add(k.len()).saturating_add(v.len());
    }
    if total > MAX_ANNOTATIONS_BYTES {
        errs.add(
            path,
            format!("{total} bytes"),
            format!(
                "total size of annotations is too large by {} bytes",
                total - MAX_ANNOTATIONS_BYTES
            ),
        );
    }
}

// ---- addresses ---------------------------------------------------------------------------

/// A CIDR or a bare address (taken as a host route), as Calico's `cnet.IPNet` accepts.
pub fn parse_cidr_or_ip(s: &str) -> Option<IpNet> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net);
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

pub(crate) fn check_cidr(errs: &mut Errors, path: &str, s: &str) -> Option<IpNet> {
    match parse_cidr_or_ip(s) {
        Some(n) => Some(n),
        None => {
            errs.add(path, s, "not a valid IP address or CIDR");
            None
        }
    }
}

pub(crate) fn check_ip(errs: &mut Errors, path: &str, s: &str) -> Option<IpAddr> {
    match s.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            errs.add(path, s, "not a valid IP address");
            None
        }
    }
}

/// An interface address: `a.b.c.d/len` (host bits allowed) or a bare address.
pub(crate) fn check_ip_with_prefix(errs: &mut Errors, path: &str, s: &str) {
    if parse_cidr_or_ip(s).is_none() {
        errs.add(
            path,
            s,
            "not a valid IP address with optional prefix length",
        );
    }
}

pub(crate) fn check_mac(errs: &mut Errors, path: &str, s: &str) {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        errs.add(path, s, "not a valid MAC address");
    }
}

/// Interface names as Calico's validator takes them (`^[a-zA-Z0-9_.-]{1,15}$`): at most
/// IFNAMSIZ - 1 bytes, and only characters that are safe in iptables and BPF map names.
pub(crate) fn check_interface_name(errs: &mut Errors, path: &str, s: &str) {
    let ok = (1..=15).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if !ok {
        errs.add(
            path,
            s,
            "interface name must be 1 to 15 letters, digits, '_', '.' or '-' (regex: ^[a-zA-Z0-9_.-]{1,15}$)",
        );
    }
}

// ---- durations ---------------------------------------------------------------------------

/// Go's `time.ParseDuration` syntax (`90s`, `1m30s`, `1.5h`, `0`), which Calico's duration
/// fields use. Returns the duration in seconds.
pub fn parse_go_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .bytes()
            .take_while(|c| !c.is_ascii_digit() && *c != b'.')
            .count();
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Some(if neg { -total } else { total })
}

pub(crate) fn check_duration(errs: &mut Errors, path: &str, s: &str) {
    match parse_go_duration(s) {
        Some(d) if d >= 0.0 => {}
        Some(_) => errs.add(path, s, "duration must not be negative"),
        None => errs.add(path, s, "not a valid duration (e.g. 90s, 1m30s, 2h)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subdomain_names() {
        assert!(is_dns_subdomain("my.ippool-1"));
        assert!(is_dns_subdomain("default-ipv4-ippool"));
        assert!(!is_dns_subdomain("My.Pool"));
        assert!(!is_dns_subdomain("-pool"));
        assert!(!is_dns_subdomain("pool..a"));
        assert!(!is_dns_subdomain("under_score"));
        assert!(!is_dns_subdomain(&"a".repeat(254)));
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("90s"), Some(90.0));
        assert_eq!(parse_go_duration("1m30s"), Some(90.0));
        assert_eq!(parse_go_duration("0"), Some(0.0));
        assert_eq!(parse_go_duration("1.5h"), Some(5400.0));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("5x"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}

#[cfg(test)]
mod subdomain_tests {
    use super::*;

    #[test]
    fn only_the_whole_subdomain_is_length_limited() {
        let wep = format!("node1-cni-{}-eth0", "ab12".repeat(16));
        assert!(
            is_dns_subdomain(&wep),
            "64-hex container ids make valid endpoint names"
        );
        assert!(!is_dns_subdomain(&"a".repeat(254)));
        assert!(!is_dns_subdomain("a..b") && !is_dns_subdomain("-a") && !is_dns_subdomain("A"));
        assert!(
            !is_dns_label(&"a".repeat(64)),
            "labels (namespaces, tiers) keep their 63 limit"
        );
    }
}
