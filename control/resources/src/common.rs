//! Value types Calico writes as "number or string": ports (`80`, `"8000:8080"`, `"http"`),
//! protocols (`TCP`, `6`), AS numbers (`64512`, `"1.10"`). They are kept as written and checked
//! by validation, so a bad value is reported with its field path instead of failing the parse.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::validate::Errors;

/// Log levels Calico's components accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogSeverity {
    Trace,
    Debug,
    Info,
    Warning,
    Error,
    Fatal,
}

impl crate::fold::CaseFoldEnum for LogSeverity {
    const VARIANTS: &'static [(&'static str, Self)] = &[
        ("Trace", LogSeverity::Trace),
        ("Debug", LogSeverity::Debug),
        ("Info", LogSeverity::Info),
        ("Warning", LogSeverity::Warning),
        ("Error", LogSeverity::Error),
        ("Fatal", LogSeverity::Fatal),
    ];
    const EXPECTED: &'static str = "one of Trace, Debug, Info, Warning, Error, Fatal (any case)";
}

/// A YAML/JSON scalar that is either an integer or a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NumOrString {
    Num(i64),
    Str(String),
}

impl Default for NumOrString {
    fn default() -> Self {
        NumOrString::Str(String::new())
    }
}

impl fmt::Display for NumOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumOrString::Num(n) => write!(f, "{n}"),
            NumOrString::Str(s) => f.write_str(s),
        }
    }
}

impl Serialize for NumOrString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NumOrString::Num(n) => s.serialize_i64(*n),
            NumOrString::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for NumOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = NumOrString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<NumOrString, E> {
                Ok(NumOrString::Num(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<NumOrString, E> {
                i64::try_from(v)
                    .map(NumOrString::Num)
                    .map_err(|_| E::custom(format!("number {v} out of range")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NumOrString, E> {
                Ok(NumOrString::Str(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl From<i64> for NumOrString {
    fn from(n: i64) -> Self {
        NumOrString::Num(n)
    }
}

impl From<&str> for NumOrString {
    fn from(s: &str) -> Self {
        NumOrString::Str(s.to_string())
    }
}

// ---- ports -------------------------------------------------------------------------------

/// A port match: a number, a range `"min:max"`, or a named port (Calico `numorstring.Port`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Port(pub NumOrString);

/// What a valid [`Port`] means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortMatch {
    Range { min: u16, max: u16 },
    Named(String),
}

impl Port {
    pub fn number(n: u16) -> Port {
        Port(NumOrString::Num(n.into()))
    }

    pub fn range(min: u16, max: u16) -> Port {
        Port(NumOrString::Str(format!("{min}:{max}")))
    }

    /// The port match, or why the value is not one.
    pub fn parse(&self) -> Result<PortMatch, String> {
        match &self.0 {
            NumOrString::Num(n) => {
                let p = u16::try_from(*n)
                    .map_err(|_| "port must be between 0 and 65535".to_string())?;
                Ok(PortMatch::Range { min: p, max: p })
            }
            NumOrString::Str(s) => {
                if let Some((a, b)) = s.split_once(':') {
                    let min: u16 = a.trim().parse().map_err(|_| {
                        "port range must be min:max with numbers 0-65535".to_string()
                    })?;
                    let max: u16 = b.trim().parse().map_err(|_| {
                        "port range must be min:max with numbers 0-65535".to_string()
                    })?;
                    if min > max {
                        return Err("port range minimum is greater than maximum".into());
                    }
                    Ok(PortMatch::Range { min, max })
                } else if let Ok(p) = s.parse::<u16>() {
                    Ok(PortMatch::Range { min: p, max: p })
                } else if is_port_name(s) {
                    Ok(PortMatch::Named(s.clone()))
                } else {
                    Err("port must be a number, a range min:max, or a port name (IANA service name, at most 15 characters)".into())
                }
            }
        }
    }
}

/// IANA service names (RFC 6335 section 5.1), as Kubernetes checks port names: 1-15 of
/// lowercase alphanumerics and '-', at least one letter, no leading/trailing/double '-'.
pub(crate) fn is_port_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 15
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.iter().any(|c| c.is_ascii_lowercase())
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && !s.contains("--")
}

// ---- protocols ---------------------------------------------------------------------------

/// An IP protocol: a name Calico knows or a number 1-255.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Protocol(pub NumOrString);

/// The protocol names Calico accepts, spelt as its validator requires them
/// (`^(TCP|UDP|ICMP|ICMPv6|SCTP|UDPLite)$`).
const PROTOCOL_NAMES: [(&str, u8); 6] = [
    ("TCP", 6),
    ("UDP", 17),
    ("ICMP", 1),
    ("ICMPv6", 58),
    ("SCTP", 132),
    ("UDPLite", 136),
];

const PROTOCOL_NUMBER_RANGE: &str = "protocol number must be between 1 and 255";

impl Protocol {
    pub fn tcp() -> Protocol {
        Protocol(NumOrString::Str("TCP".into()))
    }
    pub fn udp() -> Protocol {
        Protocol(NumOrString::Str("UDP".into()))
    }

    /// The IANA protocol number, or why the value is not a protocol. A string of digits is a
    /// number, as Calico reads `"255"`. Names match in Calico's spelling and in lowercase
    /// here, so that what an earlier version stored still compiles; [`check_protocol`] holds
    /// new input to Calico's spelling.
    pub fn number(&self) -> Result<u8, String> {
        let number = |n: i64| match u8::try_from(n) {
            Ok(p) if p >= 1 => Ok(p),
            _ => Err(PROTOCOL_NUMBER_RANGE.to_string()),
        };
        match &self.0 {
            NumOrString::Num(n) => number(*n),
            NumOrString::Str(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse::<i64>().map_or_else(|_| Err(PROTOCOL_NUMBER_RANGE.to_string()), number)
            }
            NumOrString::Str(s) => PROTOCOL_NAMES
                .iter()
                .find(|(name, _)| s == name || *s == name.to_ascii_lowercase())
                .map(|(_, n)| *n)
                .ok_or_else(|| "protocol must be one of TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255".into()),
        }
    }

    /// Ports can only be matched for these (Calico: "rule contains ports but protocol is not
    /// TCP, UDP or SCTP").
    pub fn supports_ports(&self) -> bool {
        matches!(self.number(), Ok(6 | 17 | 132))
    }

    pub fn is_icmp(&self) -> bool {
        matches!(self.number(), Ok(1 | 58))
    }
}

/// A protocol as Calico's validator takes it: a number 1-255 (or its digits), or a name
/// spelt exactly (`tcp` is refused, as calicoctl refuses it).
pub(crate) fn check_protocol(errs: &mut Errors, path: &str, p: &Protocol) {
    match p.number() {
        Err(reason) => errs.add(path, &p.0, reason),
        Ok(_) => {
            if let NumOrString::Str(s) = &p.0 {
                let digits = s.bytes().all(|b| b.is_ascii_digit());
                if !digits && !PROTOCOL_NAMES.iter().any(|(name, _)| name == s) {
                    errs.add(
                        path,
                        s,
                        "protocol name invalid: names are TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite, spelt so",
                    );
                }
            }
        }
    }
}

// ---- AS numbers --------------------------------------------------------------------------

/// A BGP AS number: a plain number or "asdot" `high.low` (RFC 5396 section 1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AsNumber(pub NumOrString);

impl AsNumber {
    pub fn new(n: u32) -> AsNumber {
        AsNumber(NumOrString::Num(n.into()))
    }

    /// The 32-bit AS number, or why the value is not one.
    pub fn value(&self) -> Result<u32, String> {
        match &self.0 {
            NumOrString::Num(n) => {
                u32::try_from(*n).map_err(|_| "AS number must be between 0 and 4294967295".into())
            }
            NumOrString::Str(s) => {
                if let Some((hi, lo)) = s.split_once('.') {
                    let hi: u16 = hi
                        .parse()
                        .map_err(|_| "asdot AS number must be <0-65535>.<0-65535>".to_string())?;
                    let lo: u16 = lo
                        .parse()
                        .map_err(|_| "asdot AS number must be <0-65535>.<0-65535>".to_string())?;
                    Ok((u32::from(hi) << 16) | u32::from(lo))
                } else {
                    s.parse::<u32>()
                        .map_err(|_| "AS number must be a number or asdot <high>.<low>".into())
                }
            }
        }
    }
}

impl fmt::Display for AsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value() {
            Ok(v) => write!(f, "{v}"),
            Err(_) => write!(f, "{}", self.0),
        }
    }
}

pub(crate) fn check_as_number(errs: &mut Errors, path: &str, asn: &AsNumber) {
    if let Err(reason) = asn.value() {
        errs.add(path, &asn.0, reason);
    }
}

/// Reads a string or a number and keeps it as a string (YAML turns an unquoted container id
/// made of digits into a number; Calico's loader converts it back to the string it is).
pub struct StringOrNumber(pub String);

impl From<StringOrNumber> for String {
    fn from(s: StringOrNumber) -> String {
        s.0
    }
}

impl<'de> Deserialize<'de> for StringOrNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = StringOrNumber;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(v.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Writes an `order` as calicoctl does: `100`, not `100.0`, when it is a whole number.
pub(crate) fn serialize_order<S: Serializer>(order: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match order {
        Some(o) if o.fract() == 0.0 && o.abs() < 9.0e15 => s.serialize_i64(*o as i64),
        Some(o) => s.serialize_f64(*o),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_numbers_ranges_and_names() {
        assert_eq!(
            Port::number(80).parse(),
            Ok(PortMatch::Range { min: 80, max: 80 })
        );
        assert_eq!(
            Port(NumOrString::Str("8000:8080".into())).parse(),
            Ok(PortMatch::Range {
                min: 8000,
                max: 8080
            })
        );
        assert_eq!(
            Port(NumOrString::Str("http".into())).parse(),
            Ok(PortMatch::Named("http".into()))
        );
        assert!(Port(NumOrString::Num(70000)).parse().is_err());
        assert!(Port(NumOrString::Str("9:1".into())).parse().is_err());
        assert!(Port(NumOrString::Str("Bad_Name".into())).parse().is_err());
        assert!(Port(NumOrString::Str("a-very-long-port-name".into()))
            .parse()
            .is_err());
    }

    #[test]
    fn protocols_by_name_and_number() {
        assert_eq!(Protocol::tcp().number(), Ok(6));
        assert_eq!(Protocol(NumOrString::Str("udp".into())).number(), Ok(17));
        assert_eq!(Protocol(NumOrString::Str("ICMPv6".into())).number(), Ok(58));
        assert_eq!(Protocol(NumOrString::Num(47)).number(), Ok(47));
        assert!(Protocol(NumOrString::Num(0)).number().is_err());
        assert!(Protocol(NumOrString::Num(256)).number().is_err());
        assert!(Protocol(NumOrString::Str("Tcp".into())).number().is_err());
        // Digits are a number, as Calico's Uint8OrString reads them.
        assert_eq!(Protocol(NumOrString::Str("255".into())).number(), Ok(255));
        assert!(Protocol(NumOrString::Str("0".into())).number().is_err());
        assert!(Protocol(NumOrString::Str("256".into())).number().is_err());
        // Validation takes Calico's spelling only.
        let errors = |p: NumOrString| {
            let mut errs = Errors::default();
            check_protocol(&mut errs, "protocol", &Protocol(p));
            errs.list
                .iter()
                .map(|e| e.reason.clone())
                .collect::<String>()
        };
        assert_eq!(errors(NumOrString::Str("TCP".into())), "");
        assert_eq!(errors(NumOrString::Str("255".into())), "");
        assert!(errors(NumOrString::Str("tcp".into())).contains("protocol name invalid"));
        assert!(errors(NumOrString::Num(0)).contains("between 1 and 255"));
    }

    #[test]
    fn as_numbers_plain_and_asdot() {
        assert_eq!(AsNumber::new(64512).value(), Ok(64512));
        assert_eq!(AsNumber(NumOrString::Str("1.10".into())).value(), Ok(65546));
        assert!(AsNumber(NumOrString::Num(1 << 33)).value().is_err());
        assert!(AsNumber(NumOrString::Str("x".into())).value().is_err());
    }
}

/// For Calico's `bool` fields tagged `omitempty`: calicoctl never prints them false.
pub(crate) fn is_unset_or_false(value: &Option<bool>) -> bool {
    !value.unwrap_or(false)
}

/// Reads a Calico `bool` tagged `omitempty`: Go cannot tell `false` from unset, so an explicit
/// `false` is read as unset, and a resource read back from its output equals the one written.
#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct GoBool(Option<bool>);

impl From<GoBool> for Option<bool> {
    fn from(b: GoBool) -> Option<bool> {
        b.0.filter(|&set| set)
    }
}
