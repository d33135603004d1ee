//! How Calico's v1-to-v3 conversion renames resources (libcalico-go's upgrade converters):
//! v3 names are DNS subdomains, v1 names were free-form, so a name is lowercased and cleaned
//! up, and a name that had to change gets 8 hex digits of the SHA-1 of the original appended,
//! so that two v1 names that clean up alike stay apart.

use sha1::{Digest, Sha1};

/// Lowercase; `/` becomes `.`; every run of other characters than `[-.a-z0-9]` becomes `-`;
/// every run of `.` and `-` holding a `.` becomes one `.`; leading and trailing `.`/`-` go.
pub fn normalize(name: &str) -> String {
    let lowered = name.to_lowercase().replace('/', ".");
    let mut cleaned = String::with_capacity(lowered.len());
    let mut in_bad_run = false;
    for c in lowered.chars() {
        let ok = c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
        if ok {
            cleaned.push(c);
        } else if !in_bad_run {
            cleaned.push('-');
        }
        in_bad_run = !ok;
    }
    let mut collapsed = String::with_capacity(cleaned.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.contains('.') {
            out.push('.');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in cleaned.chars() {
        if c == '.' || c == '-' {
            run.push(c);
        } else {
            flush(&mut run, &mut collapsed);
            collapsed.push(c);
        }
    }
    flush(&mut run, &mut collapsed);
    collapsed.trim_matches(['.', '-']).to_string()
}

/// `final_name`, or when it differs from `original`, `final_name-<8 hex of SHA-1(original)>`.
fn qualified(original: &str, final_name: String) -> String {
    if original == final_name {
        return final_name;
    }
    let digest = Sha1::digest(original.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{final_name}-{hex}")
}

/// Names that may hold dots (profiles, host endpoints).
pub fn convert_name(v1: &str) -> String {
    qualified(v1, normalize(v1))
}

/// Names without dots (policies: a dot separates the tier).
pub fn convert_name_no_dots(v1: &str) -> String {
    qualified(v1, normalize(v1).replace('.', "-"))
}

/// A profile: Kubernetes namespace profiles `k8s_ns.X` became `kns.X`.
pub fn convert_profile_name(v1: &str) -> String {
    match v1.strip_prefix("k8s_ns.") {
        Some(ns) => convert_name(&format!("kns.{ns}")),
        None => convert_name(v1),
    }
}

/// A BGP peer's address as a name: `10.0.0.1` -> `10-0-0-1`; IPv6 as eight 4-digit groups.
pub fn ip_to_name(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        std::net::IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:04x}"))
            .collect::<Vec<_>>()
            .join("-"),
    }
}

/// An IP pool's name from its CIDR: `192.168.0.0/16` -> `192-168-0-0-16`.
pub fn cidr_to_name(cidr: &ipnet::IpNet) -> String {
    cidr.to_string().replace(['.', ':', '/'], "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_as_calico_does() {
        assert_eq!(normalize("Node_1.Example.COM"), "node-1.example.com");
        assert_eq!(normalize("a/b"), "a.b");
        assert_eq!(normalize("-a.-.b--c-"), "a.b--c");
        assert_eq!(normalize("x!!y"), "x-y");
        // Unchanged names keep no suffix; changed ones get SHA-1's first 8 hex digits.
        assert_eq!(convert_name("web-frontend"), "web-frontend");
        assert_eq!(convert_name("My.Profile"), "my.profile-364801d9");
        assert_eq!(convert_name_no_dots("allow.tcp"), "allow-tcp-8e357ea8");
        assert_eq!(convert_profile_name("k8s_ns.default"), "kns.default");
    }

    #[test]
    fn addresses_and_cidrs_become_names() {
        assert_eq!(ip_to_name("10.0.0.1".parse().unwrap()), "10-0-0-1");
        assert_eq!(
            ip_to_name("fd00::1".parse().unwrap()),
            "fd00-0000-0000-0000-0000-0000-0000-0001"
        );
        assert_eq!(
            cidr_to_name(&"192.168.0.0/16".parse().unwrap()),
            "192-168-0-0-16"
        );
    }
}
