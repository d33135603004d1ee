//! v1 policy and profile rules to v3 (libcalico-go's upgrade converters, `rule.go`):
//! - actions: `allow`/`deny`/`log`/`pass` in any case, `next-tier` is `Pass`, none is `Allow`;
//! - protocols take their v3 spelling (`tcp` -> `TCP`), numbers stay;
//! - `net` joins `nets` (last), every net reduced to its network address, likewise `notNet`;
//! - a `tag` becomes the label selector `tag == ''`, ANDed with the rule's selector;
//! - `calico/k8s_ns` in selectors becomes `projectcalico.org/namespace`.

use serde_json::{Map, Value};

use super::reader::{bad, FieldError, Obj};

const RULE_FIELDS: &[&str] = &[
    "action",
    "ipVersion",
    "protocol",
    "icmp",
    "notProtocol",
    "notICMP",
    "source",
    "destination",
];
const ENTITY_FIELDS: &[&str] = &[
    "tag",
    "net",
    "nets",
    "selector",
    "ports",
    "notTag",
    "notNet",
    "notNets",
    "notSelector",
    "notPorts",
];
/// v3's spelling of each protocol name (numorstring's `allProtocolNames`).
const PROTOCOL_NAMES: &[&str] = &["UDP", "TCP", "ICMP", "ICMPv6", "SCTP", "UDPLite"];

/// The rules at `path` (a list, possibly absent).
pub fn convert_rules(obj: &Obj, key: &str) -> Result<Vec<Value>, FieldError> {
    obj.list(key)?
        .iter()
        .enumerate()
        .map(|(i, rule)| convert_rule(rule, &format!("{}[{i}]", obj.path(key))))
        .collect()
}

fn convert_rule(value: &Value, path: &str) -> Result<Value, FieldError> {
    let rule = Obj::new(value, path, RULE_FIELDS)?;
    let mut out = Map::new();
    let action = match rule.string("action")?.as_deref() {
        None | Some("") => "Allow",
        Some("next-tier") => "Pass",
        Some(other) => ["Allow", "Deny", "Log", "Pass"]
            .into_iter()
            .find(|a| a.eq_ignore_ascii_case(other))
            .ok_or_else(|| {
                bad(
                    &rule.path("action"),
                    &Value::String(other.into()),
                    "expected allow, deny, log, pass or next-tier",
                )
            })?,
    };
    out.insert("action".into(), action.into());
    if let Some(v) = rule.get("ipVersion") {
        out.insert("ipVersion".into(), v.clone());
    }
    for key in ["protocol", "notProtocol"] {
        if let Some(p) = rule.get(key) {
            out.insert(key.into(), protocol(p, &rule.path(key))?);
        }
    }
    for (key, v3) in [("icmp", "icmp"), ("notICMP", "notICMP")] {
        if let Some(icmp) = rule.child(key, &["type", "code"])? {
            let mut fields = Map::new();
            for f in ["type", "code"] {
                if let Some(v) = icmp.get(f) {
                    fields.insert(f.into(), v.clone());
                }
            }
            out.insert(v3.into(), Value::Object(fields));
        }
    }
    for key in ["source", "destination"] {
        if let Some(entity) = rule.child(key, ENTITY_FIELDS)? {
            let converted = convert_entity(&entity)?;
            if !converted.is_empty() {
                out.insert(key.into(), Value::Object(converted));
            }
        }
    }
    Ok(Value::Object(out))
}

fn convert_entity(e: &Obj) -> Result<Map<String, Value>, FieldError> {
    let mut out = Map::new();
    for (net, nets, v3) in [("net", "nets", "nets"), ("notNet", "notNets", "notNets")] {
        // v1 keeps `net` after `nets` when it combines them (`combineNets`).
        let mut all = Vec::new();
        for (i, n) in e.strings(nets)?.iter().enumerate() {
            all.push(network(n, &format!("{}[{i}]", e.path(nets)))?);
        }
        if let Some(n) = e.string(net)? {
            all.push(network(&n, &e.path(net))?);
        }
        if !all.is_empty() {
            out.insert(v3.into(), all.into());
        }
    }
    for (sel, tag, v3) in [
        ("selector", "tag", "selector"),
        ("notSelector", "notTag", "notSelector"),
    ] {
        let selector = e.string(sel)?.unwrap_or_default();
        let merged = with_tag(&convert_selector(&selector), e.string(tag)?.as_deref());
        if !merged.is_empty() {
            out.insert(v3.into(), merged.into());
        }
    }
    for key in ["ports", "notPorts"] {
        let ports = e.list(key)?;
        if !ports.is_empty() {
            out.insert(key.into(), ports.to_vec().into());
        }
    }
    Ok(out)
}

/// v1's namespace label in selectors, renamed in v3.
pub fn convert_selector(selector: &str) -> String {
    selector.replace("calico/k8s_ns", "projectcalico.org/namespace")
}

/// A v1 tag matched endpoints carrying it; in v3 a tag is a label with an empty value.
fn with_tag(selector: &str, tag: Option<&str>) -> String {
    match tag.filter(|t| !t.is_empty()) {
        None => selector.to_string(),
        Some(tag) if selector.is_empty() => format!("{tag} == ''"),
        Some(tag) => format!("({selector}) && {tag} == ''"),
    }
}

/// A CIDR or address reduced to its network (`10.1.2.3/16` -> `10.1.0.0/16`); a bare
/// address is a host net.
fn network(text: &str, path: &str) -> Result<String, FieldError> {
    let net: ipnet::IpNet = match text.parse() {
        Ok(net) => net,
        Err(_) => text
            .parse::<std::net::IpAddr>()
            .map(ipnet::IpNet::from)
            .map_err(|_| bad(path, &Value::String(text.into()), "expected a CIDR"))?,
    };
    Ok(net.trunc().to_string())
}

/// A protocol in its v3 spelling.
pub fn protocol(value: &Value, path: &str) -> Result<Value, FieldError> {
    match value {
        Value::Number(_) => Ok(value.clone()),
        Value::String(name) => Ok(PROTOCOL_NAMES
            .iter()
            .find(|n| n.eq_ignore_ascii_case(name))
            .map_or_else(|| value.clone(), |n| Value::String((*n).into()))),
        other => Err(bad(path, other, "expected a protocol name or number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(rule: Value) -> Result<Value, FieldError> {
        convert_rule(&rule, "spec.ingress[0]")
    }

    #[test]
    fn a_v1_rule_takes_v3_spellings() {
        let v3 = one(json!({
            "action": "next-tier", "protocol": "tcp", "notProtocol": 17,
            "icmp": {"type": 8, "code": 0},
            "source": {"tag": "web", "selector": "calico/k8s_ns == 'prod'",
                       "net": "10.1.2.3/16", "nets": ["10.9.0.0/24"], "notNet": "10.2.0.1",
                       "ports": [80, "1000:2000"]},
            "destination": {"notTag": "db", "notPorts": [22]}
        }))
        .unwrap();
        assert_eq!(
            v3,
            json!({
                "action": "Pass", "protocol": "TCP", "notProtocol": 17,
                "icmp": {"type": 8, "code": 0},
                "source": {"selector": "(projectcalico.org/namespace == 'prod') && web == ''",
                           "nets": ["10.9.0.0/24", "10.1.0.0/16"], "notNets": ["10.2.0.1/32"],
                           "ports": [80, "1000:2000"]},
                "destination": {"notSelector": "db == ''", "notPorts": [22]}
            })
        );
        assert_eq!(one(json!({})).unwrap()["action"], "Allow");
        assert_eq!(one(json!({"action": "DENY"})).unwrap()["action"], "Deny");
    }

    #[test]
    fn bad_v1_rules_name_the_field() {
        let e = one(json!({"action": "drop"})).unwrap_err();
        assert_eq!(
            (e.path.as_str(), e.value.as_str()),
            ("spec.ingress[0].action", "drop")
        );
        let e = one(json!({"source": {"net": "10.0.0.0/33"}})).unwrap_err();
        assert_eq!(e.path, "spec.ingress[0].source.net");
        let e = one(json!({"source": {"nett": "10.0.0.0/8"}})).unwrap_err();
        assert_eq!(e.path, "spec.ingress[0].source.nett");
    }
}
