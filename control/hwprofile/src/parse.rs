//! Reading a profile file, or node.toml's `[hw]` table on top of a profile: every field is
//! checked, and every error names the file, the field and the value (the file is untrusted).

use xdp_settings::{RxMode, XdpMode};

use super::profile::{HwProfile, KernelVersion, QueuePolicy, AF_XDP_KERNEL, FIELDS};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("{file}: not valid TOML: {detail}")]
    Syntax { file: String, detail: String },
    #[error("{file}: field {field} = {value}: {reason}")]
    Field {
        file: String,
        field: String,
        value: String,
        reason: String,
    },
    #[error("{file}: missing field {field}")]
    Missing { file: String, field: String },
    #[error("{file}: {detail}")]
    Unreadable { file: String, detail: String },
}

/// Longest value quoted back in an error, so that a huge value cannot flood a log.
pub(super) const QUOTED_VALUE_MAX: usize = 80;

fn quote(value: &toml::Value) -> String {
    let text = value.to_string();
    if text.len() <= QUOTED_VALUE_MAX {
        return text;
    }
    let mut end = QUOTED_VALUE_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

impl HwProfile {
    /// Parses and validates one profile; `file` names it in errors (a path or `embedded:x.toml`).
    pub fn parse(file: &str, text: &str) -> Result<HwProfile, ProfileError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ProfileError::Syntax {
                    file: file.into(),
                    detail: e.message().to_owned(),
                })?;
        // Start from the fallback's shape and require that every field be set, so that a
        // profile never silently inherits a value it did not state.
        let mut profile = HwProfile::placeholder();
        for (field, value) in &table {
            profile
                .set(field, value)
                .map_err(|reason| field_error(file, field, value, reason))?;
        }
        if let Some(missing) = FIELDS.iter().find(|f| !table.contains_key(**f)) {
            return Err(ProfileError::Missing {
                file: file.into(),
                field: (*missing).into(),
            });
        }
        profile.validate(file)?;
        Ok(profile)
    }

    /// This profile with the fields of a `[hw]` table of node.toml replacing its own.
    /// `hw` must be a table; `profile` (which profile to start from) is taken out by
    /// [`ProfileSet::resolve`], `driver` cannot be overridden, any other unknown key is an error.
    pub fn with_overrides(
        &self,
        source: &str,
        hw: &toml::Value,
    ) -> Result<HwProfile, ProfileError> {
        let table = hw
            .as_table()
            .ok_or_else(|| field_error(source, "hw", hw, "expected a table".into()))?;
        let mut profile = self.clone();
        for (field, value) in table {
            let field_name = format!("hw.{field}");
            match field.as_str() {
                "profile" => continue,
                "driver" => {
                    return Err(field_error(
                        source,
                        &field_name,
                        value,
                        "the driver is detected, not set; choose a profile with hw.profile".into(),
                    ))
                }
                _ => profile
                    .set(field, value)
                    .map_err(|reason| field_error(source, &field_name, value, reason))?,
            }
        }
        profile.validate(source)?;
        Ok(profile)
    }

    /// Sets one field from its TOML value; the error is the reason the value is refused.
    pub(super) fn set(&mut self, field: &str, value: &toml::Value) -> Result<(), String> {
        match field {
            "driver" => self.driver = driver_name(value)?,
            "xdp_mode" => self.xdp_mode = string(value)?.parse::<XdpMode>()?,
            "zero_copy" => self.zero_copy = boolean(value)?,
            "queue_policy" => self.queue_policy = queue_policy(value)?,
            "rx_ring_size" => self.rx_ring_size = ring_size(value)?,
            "tx_ring_size" => self.tx_ring_size = ring_size(value)?,
            "frame_size" => {
                // AF_XDP accepts chunk sizes from 2048 up to a page (aligned mode).
                self.frame_size = integer(value, 2048, 4096)?;
                if !matches!(self.frame_size, 2048 | 4096) {
                    return Err("expected 2048 or 4096".into());
                }
            }
            "frame_headroom" => self.frame_headroom = integer(value, 0, 512)?,
            "batch_size" => self.batch_size = integer(value, 1, 256)?,
            "rx_mode" => self.rx_mode = string(value)?.parse::<RxMode>()?,
            "prefer_busy_poll" => self.prefer_busy_poll = boolean(value)?,
            // The kernel refuses SO_BUSY_POLL_BUDGET above U16_MAX; NAPI's own budget is 64.
            "busy_poll_budget" => self.busy_poll_budget = integer(value, 1, 1024)?,
            "napi_defer_hard_irqs" => self.napi_defer_hard_irqs = integer(value, 0, 1000)?,
            // 10 ms: beyond that a missed wakeup stalls traffic noticeably.
            "gro_flush_timeout_ns" => self.gro_flush_timeout_ns = integer(value, 0, 10_000_000)?,
            "max_mtu_single_buffer" => self.max_mtu_single_buffer = integer(value, 576, 9216)?,
            "min_kernel" => {
                let text = string(value)?;
                self.min_kernel = KernelVersion::parse(text)
                    .filter(|v| *v >= AF_XDP_KERNEL)
                    .ok_or("expected a kernel version \"major.minor\", 4.18 (AF_XDP) or later")?
            }
            "quirks" => self.quirks = quirks(value)?,
            _ => return Err(format!("unknown field (known: {})", FIELDS.join(", "))),
        }
        Ok(())
    }

    /// Checks between fields, after all are set.
    fn validate(&self, file: &str) -> Result<(), ProfileError> {
        let fail = |field: &str, value: u32, reason: String| ProfileError::Field {
            file: file.into(),
            field: field.into(),
            value: value.to_string(),
            reason,
        };
        if self.batch_size > self.rx_ring_size {
            return Err(fail(
                "batch_size",
                self.batch_size,
                format!("larger than rx_ring_size {}", self.rx_ring_size),
            ));
        }
        // A frame must hold at least a minimal IPv4 packet (576 bytes, RFC 791 section 3.1).
        if self.max_mtu() < 576 {
            return Err(fail(
                "frame_headroom",
                self.frame_headroom,
                format!(
                    "leaves room for an MTU of only {} in a {}-byte frame",
                    self.max_mtu(),
                    self.frame_size
                ),
            ));
        }
        Ok(())
    }
}

pub(super) fn field_error(
    file: &str,
    field: &str,
    value: &toml::Value,
    reason: String,
) -> ProfileError {
    ProfileError::Field {
        file: file.into(),
        field: field.into(),
        value: quote(value),
        reason,
    }
}

fn string(value: &toml::Value) -> Result<&str, String> {
    value.as_str().ok_or_else(|| "expected a string".into())
}

fn boolean(value: &toml::Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| "expected true or false".into())
}

fn integer(value: &toml::Value, min: u32, max: u32) -> Result<u32, String> {
    let n = value.as_integer().ok_or("expected an integer")?;
    u32::try_from(n)
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("expected {min}..={max}"))
}

fn ring_size(value: &toml::Value) -> Result<u32, String> {
    let n = integer(value, 64, 16384)?;
    if !n.is_power_of_two() {
        return Err("expected a power of two (AF_XDP rings are)".into());
    }
    Ok(n)
}

/// Driver names as the kernel reports them: short, lower case, digits, `_` and `-`.
fn driver_name(value: &toml::Value) -> Result<String, String> {
    let name = string(value)?;
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok {
        return Err("expected 1..32 characters of a-z, 0-9, _ and -".into());
    }
    Ok(name.to_owned())
}

fn queue_policy(value: &toml::Value) -> Result<QueuePolicy, String> {
    if value.is_integer() {
        return integer(value, 1, 1024).map(QueuePolicy::Fixed);
    }
    match value.as_str() {
        Some("all") => Ok(QueuePolicy::All),
        Some("half") => Ok(QueuePolicy::Half),
        Some("one") => Ok(QueuePolicy::One),
        _ => Err("expected \"all\", \"half\", \"one\" or a queue count 1..=1024".into()),
    }
}

fn quirks(value: &toml::Value) -> Result<Vec<String>, String> {
    const MAX_QUIRKS: usize = 32;
    const MAX_QUIRK_LEN: usize = 400;
    let items = value.as_array().ok_or("expected an array of strings")?;
    if items.len() > MAX_QUIRKS {
        return Err(format!("at most {MAX_QUIRKS} quirks"));
    }
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(s) if s.len() <= MAX_QUIRK_LEN => Ok(s.to_owned()),
            Some(_) => Err(format!("a quirk is longer than {MAX_QUIRK_LEN} bytes")),
            None => Err("expected an array of strings".into()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_profiles::{generic_text, with_line};

    #[test]
    fn a_bad_value_names_file_field_and_value() {
        let e = HwProfile::parse(
            "x/generic.toml",
            &with_line("rx_ring_size", "rx_ring_size = 1000"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x/generic.toml: field rx_ring_size = 1000: expected a power of two (AF_XDP rings are)"
        );
        let e =
            HwProfile::parse("g.toml", &with_line("rx_mode", "rx_mode = \"turbo\"")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("g.toml: field rx_mode = \"turbo\": expected"),
            "{e}"
        );
        let e =
            HwProfile::parse("g.toml", &with_line("frame_size", "frame_size = 3000")).unwrap_err();
        assert!(
            e.to_string()
                .contains("field frame_size = 3000: expected 2048 or 4096"),
            "{e}"
        );
        let e =
            HwProfile::parse("g.toml", &with_line("batch_size", "batch_size = -1")).unwrap_err();
        assert!(
            e.to_string()
                .contains("field batch_size = -1: expected 1..=256"),
            "{e}"
        );
        let e = HwProfile::parse("g.toml", &with_line("min_kernel", "min_kernel = \"3.10\""))
            .unwrap_err();
        assert!(e.to_string().contains("field min_kernel = \"3.10\""), "{e}");
    }

    #[test]
    fn missing_unknown_and_cross_field_errors() {
        let e = HwProfile::parse("g.toml", &with_line("zero_copy", "")).unwrap_err();
        assert_eq!(
            e,
            ProfileError::Missing {
                file: "g.toml".into(),
                field: "zero_copy".into()
            }
        );
        let e =
            HwProfile::parse("g.toml", &format!("{}\nturbo = true\n", generic_text())).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("g.toml: field turbo = true: unknown field"),
            "{e}"
        );
        let small_ring = with_line("rx_ring_size", "rx_ring_size = 64")
            .replace("batch_size = 32", "batch_size = 128");
        let e = HwProfile::parse("g.toml", &small_ring).unwrap_err();
        assert!(
            e.to_string()
                .contains("field batch_size = 128: larger than rx_ring_size 64"),
            "{e}"
        );
        let e = HwProfile::parse("g.toml", "driver = [").unwrap_err();
        assert!(
            matches!(e, ProfileError::Syntax { ref file, .. } if file == "g.toml"),
            "{e}"
        );
    }

    #[test]
    fn a_huge_value_is_quoted_short() {
        let long = "x".repeat(10_000);
        let e = HwProfile::parse(
            "g.toml",
            &with_line("rx_mode", &format!("rx_mode = \"{long}\"")),
        )
        .unwrap_err();
        assert!(e.to_string().len() < 300, "{}", e.to_string().len());
    }
}
