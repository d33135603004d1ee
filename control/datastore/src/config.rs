//! Which datastore to open, from calicoctl's environment variables or built by a caller that
//! read a config file (brindlectl's `CalicoAPIConfig`).

use std::path::PathBuf;
use std::time::Duration;

use crate::etcd::EtcdConfig;

/// calicoctl's `datastoreType`, restricted to the two backends brindle has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatastoreType {
    Etcdv3,
    Embedded,
}

impl std::str::FromStr for DatastoreType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "etcdv3" => Ok(DatastoreType::Etcdv3),
            "embedded" => Ok(DatastoreType::Embedded),
            _ => Err("expected etcdv3 or embedded".into()),
        }
    }
}

pub const DEFAULT_EMBEDDED_PATH: &str = "/var/lib/brindle/datastore.redb";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatastoreConfig {
    pub datastore_type: DatastoreType,
    pub etcd: EtcdConfig,
    pub embedded_path: PathBuf,
}

impl Default for DatastoreConfig {
    fn default() -> Self {
        DatastoreConfig {
            datastore_type: DatastoreType::Embedded,
            etcd: EtcdConfig::default(),
            embedded_path: PathBuf::from(DEFAULT_EMBEDDED_PATH),
        }
    }
}

/// A configuration variable with a value we cannot use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {variable}={value:?}: {reason}")]
pub struct ConfigError {
    pub variable: String,
    pub value: String,
    pub reason: String,
}

pub const ENV_DATASTORE_TYPE: &str = "DATASTORE_TYPE";
pub const ENV_ETCD_ENDPOINTS: &str = "ETCD_ENDPOINTS";
pub const ENV_ETCD_CA_CERT_FILE: &str = "ETCD_CA_CERT_FILE";
pub const ENV_ETCD_CERT_FILE: &str = "ETCD_CERT_FILE";
pub const ENV_ETCD_KEY_FILE: &str = "ETCD_KEY_FILE";
/// Request timeout in seconds (brindle's addition).
pub const ENV_ETCD_TIMEOUT: &str = "ETCD_TIMEOUT";
pub const ENV_EMBEDDED_PATH: &str = "BRINDLE_EMBEDDED_PATH";

impl DatastoreConfig {
    /// Reads calicoctl's variables (`DATASTORE_TYPE`, `ETCD_ENDPOINTS`, `ETCD_CA_CERT_FILE`,
    /// `ETCD_CERT_FILE`, `ETCD_KEY_FILE`) and `BRINDLE_EMBEDDED_PATH`, `ETCD_TIMEOUT`.
    /// Without `DATASTORE_TYPE` the store is etcd when `ETCD_ENDPOINTS` is set, else embedded.
    pub fn from_env() -> Result<DatastoreConfig, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any source of variables (tests, config files mapped to names).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<DatastoreConfig, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let invalid = |variable: &str, value: &str, reason: &str| ConfigError {
            variable: variable.into(),
            value: value.into(),
            reason: reason.into(),
        };
        let mut config = DatastoreConfig::default();
        let endpoints = var(ENV_ETCD_ENDPOINTS);
        config.datastore_type = match var(ENV_DATASTORE_TYPE) {
            Some(value) => value
                .trim()
                .parse()
                .map_err(|reason: String| invalid(ENV_DATASTORE_TYPE, &value, &reason))?,
            None if endpoints.is_some() => DatastoreType::Etcdv3,
            None => DatastoreType::Embedded,
        };
        if let Some(value) = endpoints {
            config.etcd.endpoints = parse_endpoints(&value)
                .map_err(|reason| invalid(ENV_ETCD_ENDPOINTS, &value, &reason))?;
        }
        config.etcd.ca_file = var(ENV_ETCD_CA_CERT_FILE).map(PathBuf::from);
        config.etcd.cert_file = var(ENV_ETCD_CERT_FILE).map(PathBuf::from);
        config.etcd.key_file = var(ENV_ETCD_KEY_FILE).map(PathBuf::from);
        if let Some(value) = var(ENV_ETCD_TIMEOUT) {
            let seconds: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 3600.0)
                .ok_or_else(|| {
                    invalid(
                        ENV_ETCD_TIMEOUT,
                        &value,
                        "expected seconds, more than 0 and at most 3600",
                    )
                })?;
            config.etcd.timeout = Duration::from_secs_f64(seconds);
        }
        if let Some(value) = var(ENV_EMBEDDED_PATH) {
            config.embedded_path = PathBuf::from(value);
        }
        Ok(config)
    }
}

/// `http://a:2379,https://b:2379` -> the list; each needs a scheme and a host, as calicoctl's.
pub fn parse_endpoints(value: &str) -> Result<Vec<String>, String> {
    let endpoints: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    if endpoints.is_empty() {
        return Err("no endpoint given".into());
    }
    for endpoint in &endpoints {
        let rest = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .ok_or_else(|| format!("endpoint {endpoint:?} must start with http:// or https://"))?;
        if rest.is_empty() || rest.starts_with(':') || rest.starts_with('/') {
            return Err(format!("endpoint {endpoint:?} has no host"));
        }
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<DatastoreConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DatastoreConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn no_variables_means_the_embedded_store_at_its_default_path() {
        let config = from(&[]).unwrap();
        assert_eq!(config.datastore_type, DatastoreType::Embedded);
        assert_eq!(config.embedded_path, PathBuf::from(DEFAULT_EMBEDDED_PATH));
    }

    #[test]
    fn calicoctl_etcd_variables_are_read() {
        let config = from(&[
            ("DATASTORE_TYPE", "etcdv3"),
            (
                "ETCD_ENDPOINTS",
                "https://10.0.0.1:2379, https://10.0.0.2:2379",
            ),
            ("ETCD_CA_CERT_FILE", "/etc/ca.pem"),
            ("ETCD_CERT_FILE", "/etc/cert.pem"),
            ("ETCD_KEY_FILE", "/etc/key.pem"),
            ("ETCD_TIMEOUT", "2.5"),
        ])
        .unwrap();
        assert_eq!(config.datastore_type, DatastoreType::Etcdv3);
        assert_eq!(
            config.etcd.endpoints,
            ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
        );
        assert_eq!(config.etcd.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.etcd.cert_file, Some(PathBuf::from("/etc/cert.pem")));
        assert_eq!(config.etcd.key_file, Some(PathBuf::from("/etc/key.pem")));
        assert_eq!(config.etcd.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn endpoints_alone_select_etcd_and_the_embedded_path_is_configurable() {
        assert_eq!(
            from(&[("ETCD_ENDPOINTS", "http://127.0.0.1:2379")])
                .unwrap()
                .datastore_type,
            DatastoreType::Etcdv3
        );
        let config = from(&[
            ("DATASTORE_TYPE", "embedded"),
            ("BRINDLE_EMBEDDED_PATH", "/tmp/x.redb"),
        ])
        .unwrap();
        assert_eq!(
            (config.datastore_type, config.embedded_path),
            (DatastoreType::Embedded, PathBuf::from("/tmp/x.redb"))
        );
    }

    #[test]
    fn errors_name_the_variable_and_the_value() {
        let err = from(&[("DATASTORE_TYPE", "kubernetes")]).unwrap_err();
        assert_eq!(
            (err.variable.as_str(), err.value.as_str()),
            ("DATASTORE_TYPE", "kubernetes")
        );
        assert!(
            err.to_string().contains("DATASTORE_TYPE=\"kubernetes\""),
            "{err}"
        );

        let err = from(&[("ETCD_ENDPOINTS", "10.0.0.1:2379")]).unwrap_err();
        assert_eq!(
            (err.variable.as_str(), err.value.as_str()),
            ("ETCD_ENDPOINTS", "10.0.0.1:2379")
        );
        assert!(err.reason.contains("http://"), "{err}");

        let err = from(&[("ETCD_ENDPOINTS", " , ")]).unwrap_err();
        assert_eq!(err.variable, "ETCD_ENDPOINTS");
        let err = from(&[("ETCD_ENDPOINTS", "http://:2379")]).unwrap_err();
        assert!(err.reason.contains("no host"), "{err}");
        let err = from(&[("ETCD_TIMEOUT", "-1")]).unwrap_err();
        assert_eq!(
            (err.variable.as_str(), err.value.as_str()),
            ("ETCD_TIMEOUT", "-1")
        );
    }
}
