//! Object metadata, the Kubernetes `ObjectMeta` subset Calico's v3 resources carry.

use std::collections::BTreeMap;

use crate::macros::calico_struct;

/// Namespace of a namespaced resource that names none (as calicoctl defaults it).
pub const DEFAULT_NAMESPACE: &str = "default";

/// The name of the cluster-wide BGPConfiguration, FelixConfiguration and ClusterInformation.
pub const DEFAULT_CONFIG_NAME: &str = "default";

calico_struct! {
    /// `metadata:` of every resource. `resourceVersion` is the datastore revision the resource
    /// was read at; it is never stored (see `Resource::to_stored_json`).
    pub struct Metadata {
        #[serde(skip_serializing_if = "String::is_empty")]
        "name" => pub name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        "namespace" => pub namespace: Option<String>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        "labels" => pub labels: BTreeMap<String, String>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        "annotations" => pub annotations: BTreeMap<String, String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "resourceVersion" => pub resource_version: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "uid" => pub uid: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "creationTimestamp" => pub creation_timestamp: Option<String>,
    }
}

impl Metadata {
    pub fn named(name: impl Into<String>) -> Metadata {
        Metadata {
            name: name.into(),
            ..Metadata::default()
        }
    }

    pub fn namespaced(namespace: impl Into<String>, name: impl Into<String>) -> Metadata {
        Metadata {
            name: name.into(),
            namespace: Some(namespace.into()),
            ..Metadata::default()
        }
    }
}

impl Metadata {
    /// What Calico's client sets when it creates a resource: a fresh `uid` and the
    /// `creationTimestamp` (RFC 3339, UTC, seconds). Values already present are kept, so a
    /// `replace` of a resource read back keeps its identity.
    pub fn stamp_creation(&mut self) {
        if self.uid.is_none() {
            self.uid = Some(new_uid());
        }
        if self.creation_timestamp.is_none() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            self.creation_timestamp = Some(rfc3339_utc(now));
        }
    }
}

/// A random (version 4) UUID from the kernel; a time-and-pid one if that cannot be read.
pub fn new_uid() -> String {
    if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/random/uuid") {
        let s = s.trim();
        if s.len() == 36 {
            return s.to_string();
        }
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let x = nanos ^ (u128::from(std::process::id()) << 64);
    let h = format!("{:032x}", x);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `seconds` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339 section 5.6).
pub fn rfc3339_utc(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    // Days to civil date (proleptic Gregorian), Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn stamping_keeps_existing_identity() {
        let mut m = Metadata::named("a");
        m.stamp_creation();
        let uid = m.uid.clone().unwrap();
        assert_eq!(uid.len(), 36);
        assert!(m.creation_timestamp.as_deref().unwrap().ends_with('Z'));
        m.stamp_creation();
        assert_eq!(m.uid.as_deref(), Some(uid.as_str()));
        assert_ne!(new_uid(), uid);
    }
}
