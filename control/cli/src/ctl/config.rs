//! Which datastore brindlectl talks to: calicoctl's `CalicoAPIConfig` file, else the
//! environment.
//!
//! ```yaml
//! apiVersion: projectcalico.org/v3
//! kind: CalicoAPIConfig
//! metadata: {}
//! spec:
//!   datastoreType: etcdv3            # or embedded
//!   etcdEndpoints: http://10.0.0.1:2379,http://10.0.0.2:2379
//!   etcdKeyFile: /etc/brindle/etcd-key.pem
//!   etcdCertFile: /etc/brindle/etcd-cert.pem
//!   etcdCACertFile: /etc/brindle/etcd-ca.pem
//!   embeddedPath: /var/lib/brindle/datastore.redb   # brindle's addition (embedded store file)
//! ```
//!
//! Precedence (as calicoctl's `LoadClientConfig`): a config file, when one is used, is the
//! whole configuration and the environment overrides nothing in it; without a file the
//! environment is read (`DATASTORE_TYPE`, `ETCD_ENDPOINTS`, `ETCD_CA_CERT_FILE`,
//! `ETCD_CERT_FILE`, `ETCD_KEY_FILE`, `BRINDLE_EMBEDDED_PATH`). The default file
//! `/etc/brindle/brindlectl.cfg` is used when it exists; a file named with `--config` must exist.

use std::path::{Path, PathBuf};

use datastore::{DatastoreConfig, DatastoreType};
use serde::Deserialize;

/// Where brindlectl looks for its config when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/brindle/brindlectl.cfg";

/// Largest config file read (it holds a handful of fields).
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("config file {path}: {field}: {reason}")]
    Field {
        path: PathBuf,
        field: String,
        reason: String,
    },
    #[error("{0}")]
    Env(#[from] datastore::ConfigError),
}

/// calicoctl's `CalicoAPIConfig` document, the fields brindle reads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiConfigFile {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    spec: ApiConfigSpec,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ApiConfigSpec {
    #[serde(rename = "datastoreType")]
    datastore_type: Option<String>,
    #[serde(rename = "etcdEndpoints")]
    etcd_endpoints: Option<String>,
    #[serde(rename = "etcdKeyFile")]
    etcd_key_file: Option<String>,
    #[serde(rename = "etcdCertFile")]
    etcd_cert_file: Option<String>,
    #[serde(rename = "etcdCACertFile")]
    etcd_ca_cert_file: Option<String>,
    #[serde(rename = "embeddedPath")]
    embedded_path: Option<String>,
}

/// The datastore configuration for `explicit` (`--config`), else the default file if it
/// exists, else the environment.
pub fn load(explicit: Option<&Path>) -> Result<DatastoreConfig, ConfigFileError> {
    match explicit {
        Some(path) => from_file(path),
        None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
            from_file(Path::new(DEFAULT_CONFIG_PATH))
        }
        None => Ok(DatastoreConfig::from_env()?),
    }
}

/// Reads a `CalicoAPIConfig` file (YAML or JSON).
pub fn from_file(path: &Path) -> Result<DatastoreConfig, ConfigFileError> {
    let read_err = |reason: String| ConfigFileError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| read_err(e.to_string()))?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(read_err(format!(
            "{} bytes, over the {MAX_CONFIG_BYTES}-byte limit",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
    from_text(&text, path)
}

/// Parses the text of a config file (`path` only names it in errors).
pub fn from_text(text: &str, path: &Path) -> Result<DatastoreConfig, ConfigFileError> {
    let field_err = |field: &str, reason: String| ConfigFileError::Field {
        path: path.to_path_buf(),
        field: field.to_string(),
        reason,
    };
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let file: ApiConfigFile =
        serde_path_to_error_free(de).map_err(|(field, reason)| field_err(&field, reason))?;
    if let Some(v) = &file.api_version {
        if v != resources::API_VERSION {
            return Err(field_err(
                "apiVersion",
                format!(
                    "'{v}' is not supported, expected '{}'",
                    resources::API_VERSION
                ),
            ));
        }
    }
    if let Some(k) = &file.kind {
        if k != "CalicoAPIConfig" {
            return Err(field_err(
                "kind",
                format!("'{k}' is not supported, expected 'CalicoAPIConfig'"),
            ));
        }
    }
    let spec = file.spec;
    let nonblank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let mut config = DatastoreConfig::default();
    let endpoints = nonblank(spec.etcd_endpoints);
    config.datastore_type = match nonblank(spec.datastore_type) {
        Some(t) => t
            .trim()
            .parse::<DatastoreType>()
            .map_err(|reason| field_err("spec.datastoreType", format!("'{t}': {reason}")))?,
        None if endpoints.is_some() => DatastoreType::Etcdv3,
        None => DatastoreType::Embedded,
    };
    if let Some(e) = endpoints {
        config.etcd.endpoints = datastore::config::parse_endpoints(&e)
            .map_err(|reason| field_err("spec.etcdEndpoints", format!("'{e}': {reason}")))?;
    } else if config.datastore_type == DatastoreType::Etcdv3 {
        return Err(field_err(
            "spec.etcdEndpoints",
            "required when datastoreType is etcdv3".into(),
        ));
    }
    config.etcd.key_file = nonblank(spec.etcd_key_file).map(PathBuf::from);
    config.etcd.cert_file = nonblank(spec.etcd_cert_file).map(PathBuf::from);
    config.etcd.ca_file = nonblank(spec.etcd_ca_cert_file).map(PathBuf::from);
    if let Some(p) = nonblank(spec.embedded_path) {
        config.embedded_path = PathBuf::from(p);
    }
    Ok(config)
}

/// Deserializes the file, returning (field path, reason) on failure. serde_yaml_ng reports
/// unknown fields and type errors with their name; the path is recovered from the message.
fn serde_path_to_error_free(
    de: serde_yaml_ng::Deserializer<'_>,
) -> Result<ApiConfigFile, (String, String)> {
    ApiConfigFile::deserialize(de).map_err(|e| {
        let message = e.to_string();
        // serde_yaml_ng prefixes nested errors with "spec.field: " (or "spec: ").
        match message.split_once(": ") {
            Some((field, rest)) if !field.contains(' ') => (field.to_string(), rest.to_string()),
            _ => (".".to_string(), message),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DatastoreConfig, ConfigFileError> {
        from_text(text, Path::new("/test.cfg"))
    }

    #[test]
    fn calicoctl_etcd_config_is_read() {
        let c = parse(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n  datastoreType: etcdv3\n  \
             etcdEndpoints: http://10.0.0.1:2379,http://10.0.0.2:2379\n  etcdCACertFile: /ca.pem\n  etcdCertFile: /c.pem\n  etcdKeyFile: /k.pem\n",
        )
        .unwrap();
        assert_eq!(c.datastore_type, DatastoreType::Etcdv3);
        assert_eq!(
            c.etcd.endpoints,
            ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
        );
        assert_eq!(c.etcd.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(c.etcd.cert_file, Some(PathBuf::from("/c.pem")));
        assert_eq!(c.etcd.key_file, Some(PathBuf::from("/k.pem")));
    }

    #[test]
    fn embedded_config_names_its_file() {
        let c = parse("apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  datastoreType: embedded\n  embeddedPath: /tmp/x.redb\n")
            .unwrap();
        assert_eq!(
            (c.datastore_type, c.embedded_path),
            (DatastoreType::Embedded, PathBuf::from("/tmp/x.redb"))
        );
    }

    #[test]
    fn errors_name_the_field_and_value() {
        let e = parse("spec:\n  datastoreType: kubernetes\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("spec.datastoreType") && e.contains("kubernetes"),
            "{e}"
        );
        let e = parse("spec:\n  datastoreType: etcdv3\n  etcdEndpoints: 10.0.0.1:2379\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("spec.etcdEndpoints") && e.contains("10.0.0.1:2379"),
            "{e}"
        );
        let e = parse("spec:\n  datastoreType: etcdv3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("spec.etcdEndpoints"), "{e}");
        let e = parse("kind: Foo\n").unwrap_err().to_string();
        assert!(e.contains("kind") && e.contains("Foo"), "{e}");
        let e = parse("spec:\n  etcdEndpointz: x\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("etcdEndpointz"), "{e}");
    }
}
