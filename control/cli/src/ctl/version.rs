//! `version [--client] [--poll=DURATION]`: this client's version and the cluster's, from
//! ClusterInformation `default`.
//!
//! With `--poll`, calicoctl re-reads the cluster information every DURATION until it is
//! interrupted, printing the cluster version and type again only when they change (and
//! again after a failed read, which goes to stderr). A polling run writes straight to
//! stdout, flushing each change, since it never returns.

use std::io::Write;
use std::time::Duration;

use datastore::Datastore;
use resources::Kind;

use super::store::{self, Identity};
use super::CtlError;

/// What `version` prints after the client line.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Cluster {
    version: String,
    kind: String,
}

fn client_line() -> String {
    format!("Client Version:    v{}\n", env!("CARGO_PKG_VERSION"))
}

fn read(ds: &dyn Datastore) -> Result<Cluster, CtlError> {
    let info = store::get(
        ds,
        &Identity::new(Kind::ClusterInformation, None, "default"),
    )
    .map_err(|e| CtlError::new(format!("Unable to retrieve Cluster Version or Type: {e}")))?;
    let spec = info
        .as_ref()
        .and_then(|r| r.as_cluster_information())
        .map(|c| c.spec.clone())
        .unwrap_or_default();
    let nonempty = |v: Option<String>| {
        v.filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    };
    Ok(Cluster {
        version: nonempty(spec.calico_version),
        kind: nonempty(spec.cluster_type),
    })
}

/// `version` without `--poll`.
pub fn version(
    ds: Result<&dyn Datastore, CtlError>,
    client_only: bool,
    out: &mut String,
) -> Result<(), CtlError> {
    out.push_str(&client_line());
    if client_only {
        return Ok(());
    }
    let ds =
        ds.map_err(|e| CtlError::new(format!("Unable to retrieve Cluster Version or Type: {e}")))?;
    let c = read(ds)?;
    out.push_str(&format!("Cluster Version:   {}\n", c.version));
    out.push_str(&format!("Cluster Type:      {}\n", c.kind));
    Ok(())
}

/// What `--poll` takes: Go's `time.ParseDuration` syntax (`1m30s`, `1.5s`, `500ms`, `0`), as
/// Calico's duration fields use it; negative values are refused (Go would poll without pause).
pub fn parse_duration(text: &str) -> Result<Duration, CtlError> {
    let invalid = || CtlError::new(format!("invalid poll duration specified: {text}"));
    let seconds = resources::validate::parse_go_duration(text).ok_or_else(invalid)?;
    // Go's limit (about 290 years) also keeps the conversion below from overflowing.
    if !seconds.is_finite() || !(0.0..=9.2e9).contains(&seconds) {
        return Err(invalid());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// `version --poll=EVERY`: prints the client line, then the cluster lines whenever they
/// change, until the process is interrupted. Returns only if the datastore cannot be opened.
pub fn poll(ds: Result<&dyn Datastore, CtlError>, every: Duration) -> Result<(), CtlError> {
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(client_line().as_bytes());
    let _ = stdout.flush();
    let ds =
        ds.map_err(|e| CtlError::new(format!("Unable to retrieve Cluster Version or Type: {e}")))?;
    let mut shown: Option<Cluster> = None;
    loop {
        match read(ds) {
            Ok(c) => {
                let mut text = String::new();
                if shown.as_ref().map(|s| &s.version) != Some(&c.version) {
                    text.push_str(&format!("Cluster Version:   {}\n", c.version));
                }
                if shown.as_ref().map(|s| &s.kind) != Some(&c.kind) {
                    text.push_str(&format!("Cluster Type:      {}\n", c.kind));
                }
                if !text.is_empty() {
                    // A closed stdout ends the poll, as a killed pipe would end calicoctl.
                    if stdout
                        .write_all(text.as_bytes())
                        .and_then(|_| stdout.flush())
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                shown = Some(c);
            }
            Err(e) => {
                eprintln!("{e}");
                shown = None;
            }
        }
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "5", "1x", "-1s", "s", "1e9h", "1..5s"] {
            assert_eq!(
                parse_duration(bad).unwrap_err().to_string(),
                format!("invalid poll duration specified: {bad}"),
                "{bad}"
            );
        }
    }
}
