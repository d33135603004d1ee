//! Agent mode: the overrides node.toml's `[hw]` table would give, from the environment.

use super::parse::QUOTED_VALUE_MAX;
use super::profile::HwProfile;
use super::set::PROFILES_ENV;

/// Prefix of the variables that override profile fields in agent mode (no node.toml there):
/// `BRINDLE_HW_XDP_MODE=generic` is node.toml's `[hw] xdp_mode = "generic"`.
pub const OVERRIDE_ENV_PREFIX: &str = "BRINDLE_HW_";

/// Most override variables read: one per field, and `profile`.
const MAX_ENV_OVERRIDES: usize = 32;

/// The `[hw]` table spelled by `BRINDLE_HW_<FIELD>=value` variables (`None` when there are
/// none); [`PROFILES_ENV`] is not a field and is skipped. A value is read as TOML (`1024`,
/// `true`, `"x"`) and otherwise taken as a string (`generic`). Each value is checked here, so
/// that an error names the variable and its value.
pub fn env_overrides(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Option<toml::Value>, String> {
    let mut table = toml::Table::new();
    for (var, text) in vars {
        let Some(field) = var.strip_prefix(OVERRIDE_ENV_PREFIX) else {
            continue;
        };
        if var == PROFILES_ENV {
            continue;
        }
        if table.len() >= MAX_ENV_OVERRIDES {
            return Err(format!(
                "more than {MAX_ENV_OVERRIDES} {OVERRIDE_ENV_PREFIX}* variables"
            ));
        }
        let shown: String = text.chars().take(QUOTED_VALUE_MAX).collect();
        let field = field.to_ascii_lowercase();
        let value = format!("v = {text}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(text.clone()));
        match field.as_str() {
            "profile" => {
                if !value.is_str() {
                    return Err(format!("{var}={shown}: expected a profile name"));
                }
            }
            "driver" => return Err(format!("{var}={shown}: the driver is detected, not set; choose a profile with {OVERRIDE_ENV_PREFIX}PROFILE")),
            _ => HwProfile::placeholder().set(&field, &value).map_err(|reason| format!("{var}={shown}: {reason}"))?,
        }
        table.insert(field, value);
    }
    Ok((!table.is_empty()).then_some(toml::Value::Table(table)))
}

#[cfg(test)]
mod tests {
    use xdp_settings::XdpMode;

    use super::*;
    use crate::set::ProfileSet;

    #[test]
    fn environment_overrides_read_toml_or_strings_and_name_the_variable() {
        let vars = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            env_overrides(vars(&[("PATH", "/bin"), (PROFILES_ENV, "/etc/x")])).unwrap(),
            None
        );
        let hw = env_overrides(vars(&[
            ("BRINDLE_HW_XDP_MODE", "generic"),
            ("BRINDLE_HW_RX_RING_SIZE", "1024"),
            ("BRINDLE_HW_ZERO_COPY", "false"),
            ("BRINDLE_HW_PROFILE", "veth"),
        ]))
        .unwrap()
        .unwrap();
        let t = hw.as_table().unwrap();
        assert_eq!(t["xdp_mode"].as_str(), Some("generic"));
        assert_eq!(t["rx_ring_size"].as_integer(), Some(1024));
        assert_eq!(t["zero_copy"].as_bool(), Some(false));
        let set = ProfileSet::embedded().unwrap();
        let chosen = set
            .resolve(Some("ixgbe"), Some(&hw), "environment")
            .unwrap();
        assert_eq!(
            chosen.profile.driver, "veth",
            "BRINDLE_HW_PROFILE picks the profile"
        );
        assert_eq!(chosen.profile.xdp_mode, XdpMode::Generic);
        assert_eq!(chosen.profile.rx_ring_size, 1024);

        let e = env_overrides(vars(&[("BRINDLE_HW_XDP_MODE", "turbo")])).unwrap_err();
        assert!(
            e.contains("BRINDLE_HW_XDP_MODE=turbo") && e.contains("native"),
            "{e}"
        );
        let e = env_overrides(vars(&[("BRINDLE_HW_RX_RING_SIZE", "1000")])).unwrap_err();
        assert!(
            e.contains("BRINDLE_HW_RX_RING_SIZE=1000") && e.contains("power of two"),
            "{e}"
        );
        let e = env_overrides(vars(&[("BRINDLE_HW_COLOUR", "blue")])).unwrap_err();
        assert!(
            e.contains("BRINDLE_HW_COLOUR=blue") && e.contains("unknown field"),
            "{e}"
        );
        let e = env_overrides(vars(&[("BRINDLE_HW_DRIVER", "ice")])).unwrap_err();
        assert!(e.contains("BRINDLE_HW_DRIVER=ice"), "{e}");
    }
}
