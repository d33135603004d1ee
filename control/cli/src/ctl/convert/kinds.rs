//! Each v1 kind to its v3 resource (libcalico-go's upgrade converters): the v3 kind, metadata
//! and spec as JSON, which brindle's own resource model then defaults and validates.
//!
//! | v1 | v3 |
//! |---|---|
//! | `ipPool` (`metadata.cidr`) | `IPPool` named from the CIDR; `ipip.enabled` + `mode` -> `ipipMode`; `nat-outgoing` -> `natOutgoing` |
//! | `profile` | `Profile`; `metadata.labels` and `tags` -> `spec.labelsToApply` (a tag is a label with value `''`) |
//! | `policy` | `GlobalNetworkPolicy`; name without dots (`<tier>.` before it outside the default tier); `types` from the rules when absent |
//! | `hostEndpoint` | `HostEndpoint` named `<node>.<name>` |
//! | `bgpPeer` | `BGPPeer` named from the peer address (`<node>.` before it for a node-scoped peer) |
//! | `node` | `Node` |

use serde_json::{json, Map, Value};

use super::names;
use super::reader::{bad, FieldError, Obj};
use super::rules::{convert_rules, convert_selector, protocol};

/// A converted resource: v3 kind, metadata, spec.
pub struct V3 {
    pub kind: &'static str,
    pub metadata: Map<String, Value>,
    pub spec: Map<String, Value>,
}

/// The v1 kinds brindlectl converts, as v1 spelt them.
pub const SUPPORTED: &[&str] = &[
    "ipPool",
    "profile",
    "policy",
    "hostEndpoint",
    "bgpPeer",
    "node",
];

/// Converts the document `doc` of v1 kind `kind` (matched without regard to case); `None` for
/// a kind brindlectl does not convert.
pub fn convert(kind: &str, doc: &Value) -> Option<Result<V3, FieldError>> {
    let convert: fn(&Obj, &Obj) -> Result<V3, FieldError> = match kind.to_ascii_lowercase().as_str()
    {
        "ippool" => ip_pool,
        "profile" => profile,
        "policy" => policy,
        "hostendpoint" => host_endpoint,
        "bgppeer" => bgp_peer,
        "node" => node,
        _ => return None,
    };
    let (metadata_fields, spec_fields) = fields(kind);
    Some(read_and_convert(doc, metadata_fields, spec_fields, convert))
}

fn read_and_convert(
    doc: &Value,
    metadata_fields: &[&str],
    spec_fields: &[&str],
    convert: fn(&Obj, &Obj) -> Result<V3, FieldError>,
) -> Result<V3, FieldError> {
    let top = Obj::new(doc, "", &["apiVersion", "kind", "metadata", "spec"])?;
    let metadata = Obj::new(
        top.get("metadata").unwrap_or(&Value::Null),
        "metadata",
        metadata_fields,
    )?;
    let spec = Obj::new(top.get("spec").unwrap_or(&Value::Null), "spec", spec_fields)?;
    convert(&metadata, &spec)
}

/// The metadata and spec fields of each v1 kind.
fn fields(kind: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match kind.to_ascii_lowercase().as_str() {
        "ippool" => (&["cidr"], &["ipip", "nat-outgoing", "disabled"]),
        "profile" => (&["name", "tags", "labels"], &["ingress", "egress"]),
        "policy" => (
            &["name", "tier", "annotations"],
            &[
                "order",
                "ingress",
                "egress",
                "selector",
                "doNotTrack",
                "preDNAT",
                "types",
            ],
        ),
        "hostendpoint" => (
            &["name", "node", "labels"],
            &["interfaceName", "expectedIPs", "profiles", "ports"],
        ),
        "bgppeer" => (&["scope", "node", "peerIP"], &["asNumber"]),
        _ => (&["name"], &["bgp", "orchRefs"]),
    }
}

fn required(obj: &Obj, key: &str) -> Result<String, FieldError> {
    obj.string(key)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(&obj.path(key), &Value::Null, "required"))
}

fn named(name: String) -> Map<String, Value> {
    Map::from_iter([("name".to_string(), Value::String(name))])
}

fn ip_pool(metadata: &Obj, spec: &Obj) -> Result<V3, FieldError> {
    let text = required(metadata, "cidr")?;
    // Go's ParseCIDR hands back the network: host bits are dropped, as v1 stored it.
    let cidr: ipnet::IpNet = text.parse().map_err(|_| {
        bad(
            &metadata.path("cidr"),
            &Value::String(text.clone()),
            "expected a CIDR",
        )
    })?;
    let cidr = cidr.trunc();
    let ipip_mode = match spec.child("ipip", &["enabled", "mode"])? {
        Some(ipip) if ipip.boolean("enabled")? => {
            match ipip
                .string("mode")?
                .unwrap_or_default()
                .to_ascii_lowercase()
                .as_str()
            {
                "" | "always" => "Always",
                "cross-subnet" => "CrossSubnet",
                _ => {
                    return Err(bad(
                        &ipip.path("mode"),
                        ipip.get("mode").unwrap_or(&Value::Null),
                        "expected always or cross-subnet",
                    ))
                }
            }
        }
        _ => "Never",
    };
    let spec = json!({
        "cidr": cidr.to_string(),
        "ipipMode": ipip_mode,
        "natOutgoing": spec.boolean("nat-outgoing")?,
        "disabled": spec.boolean("disabled")?,
    });
    Ok(V3 {
        kind: "IPPool",
        metadata: named(names::cidr_to_name(&cidr)),
        spec: object(spec),
    })
}

fn profile(metadata: &Obj, spec: &Obj) -> Result<V3, FieldError> {
    let v1_name = required(metadata, "name")?;
    let name = names::convert_profile_name(&v1_name);
    // Labels and tags both end up as labels given to the profile's endpoints.
    let mut labels = metadata.string_map("labels")?;
    for tag in metadata.strings("tags")? {
        if let Some(value) = labels.get(&tag) {
            return Err(bad(
                &metadata.path("tags"),
                &Value::String(tag.clone()),
                format!(
                    "tag '{tag}' and label '{tag}: {}' have the same key; change the label's key before converting",
                    value.as_str().unwrap_or_default()
                ),
            ));
        }
        labels.insert(tag, Value::String(String::new()));
    }
    let mut out = Map::new();
    insert_nonempty(&mut out, "ingress", convert_rules(spec, "ingress")?);
    insert_nonempty(&mut out, "egress", convert_rules(spec, "egress")?);
    if !labels.is_empty() {
        out.insert("labelsToApply".into(), Value::Object(labels));
    }
    Ok(V3 {
        kind: "Profile",
        metadata: named(name),
        spec: out,
    })
}

fn policy(metadata: &Obj, spec: &Obj) -> Result<V3, FieldError> {
    let v1_name = required(metadata, "name")?;
    let tier = metadata
        .string("tier")?
        .filter(|t| !t.is_empty())
        .map(|t| names::convert_name_no_dots(&t))
        .unwrap_or_else(|| "default".to_string());
    let base = names::convert_name_no_dots(&v1_name);
    // Outside the default tier Calico names a policy `<tier>.<name>`.
    let name = if tier == "default" {
        base
    } else {
        format!("{tier}.{base}")
    };
    let mut meta = named(name);
    let annotations = metadata.string_map("annotations")?;
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    let ingress = convert_rules(spec, "ingress")?;
    let egress = convert_rules(spec, "egress")?;
    let types: Vec<Value> = match spec.strings("types")? {
        // v1 applied a policy without types to the directions it has rules for (ingress
        // when it has none).
        given if given.is_empty() => match (ingress.is_empty(), egress.is_empty()) {
            (_, true) => vec!["Ingress".into()],
            (true, false) => vec!["Egress".into()],
            (false, false) => vec!["Ingress".into(), "Egress".into()],
        },
        given => given
            .iter()
            .enumerate()
            .map(|(i, t)| match t.to_ascii_lowercase().as_str() {
                "ingress" => Ok("Ingress".into()),
                "egress" => Ok("Egress".into()),
                _ => Err(bad(
                    &format!("{}[{i}]", spec.path("types")),
                    &Value::String(t.clone()),
                    "expected ingress or egress",
                )),
            })
            .collect::<Result<_, _>>()?,
    };
    let do_not_track = spec.boolean("doNotTrack")?;
    let pre_dnat = spec.boolean("preDNAT")?;
    let mut out = Map::new();
    out.insert("tier".into(), tier.into());
    if let Some(order) = spec.get("order") {
        if !order.is_number() {
            return Err(bad(&spec.path("order"), order, "expected a number"));
        }
        out.insert("order".into(), order.clone());
    }
    // An empty v1 selector selected every endpoint, as no selector does in v3.
    let selector = convert_selector(&spec.string("selector")?.unwrap_or_default());
    if !selector.trim().is_empty() {
        out.insert("selector".into(), selector.into());
    }
    out.insert("types".into(), types.into());
    insert_nonempty(&mut out, "ingress", ingress);
    insert_nonempty(&mut out, "egress", egress);
    if do_not_track || pre_dnat {
        out.insert("doNotTrack".into(), do_not_track.into());
        out.insert("preDNAT".into(), pre_dnat.into());
        // Such a policy applied to forwarded traffic before v3 made that explicit.
        out.insert("applyOnForward".into(), true.into());
    }
    Ok(V3 {
        kind: "GlobalNetworkPolicy",
        metadata: meta,
        spec: out,
    })
}

fn host_endpoint(metadata: &Obj, spec: &Obj) -> Result<V3, FieldError> {
    let v1_name = required(metadata, "name")?;
    let node = names::normalize(&required(metadata, "node")?);
    let mut meta = named(names::convert_name(&format!("{node}.{v1_name}")));
    let labels = metadata.string_map("labels")?;
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    let mut out = Map::new();
    out.insert("node".into(), node.into());
    if let Some(name) = spec.string("interfaceName")? {
        out.insert("interfaceName".into(), name.into());
    }
    let ips = spec.strings("expectedIPs")?;
    if !ips.is_empty() {
        out.insert("expectedIPs".into(), ips.into());
    }
    let profiles: Vec<Value> = spec
        .strings("profiles")?
        .iter()
        .map(|p| names::convert_profile_name(p).into())
        .collect();
    insert_nonempty(&mut out, "profiles", profiles);
    let mut ports = Vec::new();
    for (i, port) in spec.list("ports")?.iter().enumerate() {
        let path = format!("{}[{i}]", spec.path("ports"));
        let port = Obj::new(port, &path, &["name", "protocol", "port"])?;
        let mut p = Map::new();
        for key in ["name", "port"] {
            if let Some(v) = port.get(key) {
                p.insert(key.into(), v.clone());
            }
        }
        if let Some(proto) = port.get("protocol") {
            p.insert("protocol".into(), protocol(proto, &port.path("protocol"))?);
        }
        ports.push(Value::Object(p));
    }
    insert_nonempty(&mut out, "ports", ports);
    Ok(V3 {
        kind: "HostEndpoint",
        metadata: meta,
        spec: out,
    })
}

fn bgp_peer(metadata: &Obj, spec: &Obj) -> Result<V3, FieldError> {
    let peer_text = required(metadata, "peerIP")?;
    let peer: std::net::IpAddr = peer_text.parse().map_err(|_| {
        bad(
            &metadata.path("peerIP"),
            &Value::String(peer_text.clone()),
            "expected an IP address",
        )
    })?;
    let mut out = Map::new();
    out.insert("peerIP".into(), peer.to_string().into());
    if let Some(asn) = spec.get("asNumber") {
        out.insert("asNumber".into(), as_number(asn, &spec.path("asNumber"))?);
    }
    let scope = metadata.string("scope")?.unwrap_or_default();
    let name = match scope.to_ascii_lowercase().as_str() {
        "global" => {
            if let Some(node) = metadata.string("node")?.filter(|n| !n.is_empty()) {
                return Err(bad(
                    &metadata.path("node"),
                    &Value::String(node),
                    "a global peer has no node",
                ));
            }
            names::ip_to_name(peer)
        }
        "node" => {
            let node = names::normalize(&required(metadata, "node")?);
            out.insert("node".into(), node.clone().into());
            format!("{node}.{}", names::ip_to_name(peer))
        }
        _ => {
            return Err(bad(
                &metadata.path("scope"),
                &Value::String(scope),
                "expected global or node",
            ))
        }
    };
    Ok(V3 {
        kind: "BGPPeer",
        metadata: named(name),
        spec: out,
    })
}

fn node(metadata: &Obj, spec: &Obj) -> Result<V3, FieldError> {
    let name = names::normalize(&required(metadata, "name")?);
    let mut out = Map::new();
    if let Some(bgp) = spec.child("bgp", &["asNumber", "ipv4Address", "ipv6Address"])? {
        let mut b = Map::new();
        for key in ["ipv4Address", "ipv6Address"] {
            if let Some(addr) = bgp.string(key)? {
                // v3 keeps the address with its subnet; without one the host's own mask.
                let with_len = if addr.contains('/') {
                    addr
                } else if addr.contains(':') {
                    format!("{addr}/128")
                } else {
                    format!("{addr}/32")
                };
                b.insert(key.into(), with_len.into());
            }
        }
        if b.is_empty() {
            return Err(bad(
                &spec.path("bgp"),
                &Value::Null,
                "needs ipv4Address or ipv6Address",
            ));
        }
        if let Some(asn) = bgp.get("asNumber") {
            b.insert("asNumber".into(), as_number(asn, &bgp.path("asNumber"))?);
        }
        out.insert("bgp".into(), Value::Object(b));
    }
    let mut refs = Vec::new();
    for (i, r) in spec.list("orchRefs")?.iter().enumerate() {
        let path = format!("{}[{i}]", spec.path("orchRefs"));
        let r = Obj::new(r, &path, &["nodeName", "orchestrator"])?;
        let mut o = Map::new();
        if let Some(n) = r.string("nodeName")? {
            o.insert("nodeName".into(), n.into());
        }
        o.insert("orchestrator".into(), required(&r, "orchestrator")?.into());
        refs.push(Value::Object(o));
    }
    insert_nonempty(&mut out, "orchRefs", refs);
    Ok(V3 {
        kind: "Node",
        metadata: named(name),
        spec: out,
    })
}

/// An AS number, plain or asdot (`1.10`, RFC 5396), as v3's plain number.
fn as_number(value: &Value, path: &str) -> Result<Value, FieldError> {
    let parsed = match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => match s.split_once('.') {
            Some((hi, lo)) => hi
                .parse::<u16>()
                .ok()
                .zip(lo.parse::<u16>().ok())
                .map(|(hi, lo)| (u32::from(hi) << 16) | u32::from(lo)),
            None => s.parse().ok(),
        },
        _ => None,
    };
    parsed.map(Value::from).ok_or_else(|| {
        bad(
            path,
            value,
            "expected an AS number (0..4294967295 or asdot)",
        )
    })
}

fn insert_nonempty(out: &mut Map<String, Value>, key: &str, items: Vec<Value>) {
    if !items.is_empty() {
        out.insert(key.into(), items.into());
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
