//! `ipam configure --strictaffinity=true|false` and `ipam show --show-configuration`
//! (calicoctl's `commands/ipam/configure.go` and `ShowConfiguration`), over the IPAM config
//! record the `ipam` crate reads (`/calico/ipam/v2/config`).
//!
//! brindle's IPAM has two of Calico's settings, StrictAffinity and AutoAllocateBlocks; only
//! those are shown. calicoctl's other `configure` flags (`--max-blocks-per-host`,
//! `--kubevirt-ip-persistence`, `--ip-cooldown-seconds`) are refused by name rather than
//! stored and ignored.

use datastore::Datastore;
use ipam::Ipam;

use super::table::pretty;
use super::CtlError;

fn ipam_err(e: impl std::fmt::Display) -> CtlError {
    CtlError::new(format!("error: {e}"))
}

/// Go's `strconv.ParseBool`, which calicoctl parses the flag with.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// calicoctl's flags brindle's IPAM has no counterpart for, with what each would set.
pub const UNSUPPORTED: [(&str, &str); 3] = [
    ("max-blocks-per-host", "MaxBlocksPerHost"),
    ("kubevirt-ip-persistence", "KubeVirtVMAddressPersistence"),
    ("ip-cooldown-seconds", "IPCooldownSeconds"),
];

/// `ipam configure`. `unsupported` holds the calicoctl flags given that brindle lacks.
pub fn configure(
    ds: std::sync::Arc<dyn Datastore>,
    strict_affinity: Option<&str>,
    unsupported: &[(&str, &str)],
    out: &mut String,
) -> Result<(), CtlError> {
    if let Some((flag, value)) = unsupported.first() {
        let field = UNSUPPORTED
            .iter()
            .find(|(f, _)| f == flag)
            .map_or("it", |(_, field)| field);
        return Err(CtlError::new(format!(
            "--{flag}={value} is not supported: brindle's IPAM has no {field} setting (only --strictaffinity)"
        )));
    }
    // calicoctl takes an empty value as the flag not given.
    let strict = match strict_affinity.filter(|v| !v.is_empty()) {
        None => {
            return Err(CtlError::new(
                "at least one configuration option must be specified",
            ))
        }
        Some(v) => parse_go_bool(v).ok_or_else(|| {
            CtlError::new(format!(
                "invalid value '{v}' for --strictaffinity. Use true or false to set strictaffinity"
            ))
        })?,
    };
    let ipam = Ipam::new(ds);
    let mut config = ipam.config().map_err(ipam_err)?;
    config.strict_affinity = strict;
    if !config.strict_affinity && !config.auto_allocate_blocks {
        // libcalico-go's SetIPAMConfig rule: with neither, no address could be assigned.
        return Err(CtlError::new(
            "error: Cannot disable 'StrictAffinity' and 'AutoAllocateBlocks' at the same time",
        ));
    }
    ipam.set_config(&config).map_err(ipam_err)?;
    out.push_str(&format!("Successfully set StrictAffinity to: {strict}\n"));
    Ok(())
}

/// `ipam show --show-configuration`: a PROPERTY/VALUE table with Go's field names.
pub fn show_configuration(
    ds: std::sync::Arc<dyn Datastore>,
    out: &mut String,
) -> Result<(), CtlError> {
    let config = Ipam::new(ds).config().map_err(ipam_err)?;
    out.push_str(&pretty(
        &["PROPERTY", "VALUE"],
        &[
            vec!["StrictAffinity".into(), config.strict_affinity.to_string()],
            vec![
                "AutoAllocateBlocks".into(),
                config.auto_allocate_blocks.to_string(),
            ],
        ],
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn bools_parse_as_go_does() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(super::parse_go_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(super::parse_go_bool(f), Some(false), "{f}");
        }
        for bad in ["", "yes", "tRUE", " true"] {
            assert_eq!(super::parse_go_bool(bad), None, "{bad}");
        }
    }
}
