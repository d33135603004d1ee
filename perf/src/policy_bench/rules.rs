//! The rules, as data, as a Calico GlobalNetworkPolicy and as Calico-style iptables.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RuleProtocol {
    Tcp,
    Udp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum RuleSource {
    Any,
    Net {
        addr: Ipv4Addr,
        prefix_len: u8,
    },
    /// `has(<label>)`; Calico renders it as an ipset of the matching endpoints' addresses.
    HasLabel(&'static str),
}

/// One ingress Allow rule: protocol, source, destination port range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BenchRule {
    pub protocol: RuleProtocol,
    pub source: RuleSource,
    pub ports: (u16, u16),
}

/// A packet as the rules see it.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub protocol: RuleProtocol,
    pub src: Ipv4Addr,
    /// Whether the source carries [`SOURCE_NETWORK`]'s label.
    pub src_in_source_network: bool,
    pub dst_port: u16,
}

impl BenchRule {
    /// Whether this rule admits `probe` (the semantics both renderings implement).
    pub fn admits(&self, probe: &Probe) -> bool {
        let source = match &self.source {
            RuleSource::Any => true,
            RuleSource::Net { addr, prefix_len } => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(*prefix_len))
                    .unwrap_or(0);
                u32::from(probe.src) & mask == u32::from(*addr) & mask
            }
            RuleSource::HasLabel(label) => *label == SOURCE_NETWORK && probe.src_in_source_network,
        };
        self.protocol == probe.protocol
            && source
            && (self.ports.0..=self.ports.1).contains(&probe.dst_port)
    }
}

/// The destination ports the benchmark uses: the allowed range, then one denied port.
pub fn reserved_ports(base_port: u16) -> Result<(u16, u16), BenchError> {
    if base_port < 1024 || u32::from(base_port) + u32::from(PORT_SPAN) > 65535 {
        return Err(BenchError::Invalid {
            field: "port",
            value: base_port.to_string(),
            reason: format!("must be between 1024 and {}", 65535 - PORT_SPAN),
        });
    }
    Ok((base_port, base_port + PORT_SPAN))
}

/// The denied probe's port: just past the allowed range.
pub fn denied_port(base_port: u16) -> u16 {
    base_port.saturating_add(PORT_SPAN)
}

/// `count` rules: `count - 1` that admit none of the benchmark's packets (TCP and UDP, single
/// ports and ranges, from /24s of 10.0.0.0/8, from a selector nobody matches, or from anyone),
/// then the allowing one: UDP from [`SOURCE_NETWORK`] to `base_port..base_port+1024`.
pub fn bench_rules(count: usize, base_port: u16) -> Result<Vec<BenchRule>, BenchError> {
    if !(1..=10_000).contains(&count) {
        return Err(BenchError::Invalid {
            field: "rules",
            value: count.to_string(),
            reason: "must be between 1 and 10000".into(),
        });
    }
    let (low, high) = reserved_ports(base_port)?;
    let mut rules = Vec::with_capacity(count);
    for i in 0..count - 1 {
        let protocol = if i % 2 == 0 {
            RuleProtocol::Tcp
        } else {
            RuleProtocol::Udp
        };
        let source = match i % 3 {
            0 => RuleSource::Net {
                addr: Ipv4Addr::new(10, (i / 256) as u8, (i % 256) as u8, 0),
                prefix_len: 24,
            },
            1 => RuleSource::HasLabel(OTHER_LABEL),
            _ => RuleSource::Any,
        };
        // Ports 1024.. (singles) and 30000.. (ranges of 8 every fifth rule), moved past the
        // reserved window when they would touch it.
        let width: u16 = if i % 5 == 4 { 7 } else { 0 };
        let mut start = if width > 0 {
            30_000 + ((i as u32 * 16) % 30_000) as u16
        } else {
            1024 + (i as u32 % 20_000) as u16
        };
        if start <= high && start + width >= low {
            start = if u32::from(high) + 1 + u32::from(width) <= 65535 {
                high + 1
            } else {
                low - 1 - width
            };
        }
        rules.push(BenchRule {
            protocol,
            source,
            ports: (start, start + width),
        });
    }
    rules.push(BenchRule {
        protocol: RuleProtocol::Udp,
        source: RuleSource::HasLabel(SOURCE_NETWORK),
        ports: (low, high - 1),
    });
    Ok(rules)
}

pub(super) fn protocol_name(p: RuleProtocol) -> &'static str {
    match p {
        RuleProtocol::Tcp => "TCP",
        RuleProtocol::Udp => "UDP",
    }
}

/// The rules as a GlobalNetworkPolicy on the sink (`has(polsink)`), for `brindlectl apply`.
pub fn policy_yaml(rules: &[BenchRule]) -> String {
    let mut y = format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: \
         {POLICY_NAME}\nspec:\n  selector: has({SINK_NETWORK})\n  types: [Ingress]\n  ingress:\n"
    );
    for rule in rules {
        let _ = writeln!(
            y,
            "  - action: Allow\n    protocol: {}",
            protocol_name(rule.protocol)
        );
        match &rule.source {
            RuleSource::Any => {}
            RuleSource::Net { addr, prefix_len } => {
                let _ = writeln!(y, "    source:\n      nets: [{addr}/{prefix_len}]");
            }
            RuleSource::HasLabel(label) => {
                let _ = writeln!(y, "    source:\n      selector: has({label})");
            }
        }
        let ports = if rule.ports.0 == rule.ports.1 {
            rule.ports.0.to_string()
        } else {
            format!("\"{}:{}\"", rule.ports.0, rule.ports.1)
        };
        let _ = writeln!(y, "    destination:\n      ports: [{ports}]");
    }
    y
}

/// Calico-style iptables for `iptables-restore --noflush`: FORWARD -> cali-FORWARD, which
/// clears the accept mark and dispatches by interface to the from-workload chain of the source
/// (conntrack first, then its profile: egress allowed) and the to-workload chain of the sink
/// (conntrack ESTABLISHED,RELATED accept first, INVALID drop, then the policy chain, then the
/// end-of-tier drop). In the policy chain each Allow rule sets the accept mark and the next
/// rule returns on it, as Felix renders them.
pub fn iptables_rules(rules: &[BenchRule], source_if: &str, sink_if: &str) -> String {
    let fw = felix::from_workload_chain(source_if);
    let tw = felix::to_workload_chain(sink_if);
    let pi = felix::policy_chain(POLICY_NAME);
    let pro = felix::profile_chain("pro", SOURCE_NETWORK);
    let mut t = Iptables::new(["cali-FORWARD", &fw, &tw, &pi, &pro]);
    t.hook("FORWARD");
    t.forward(&[Dispatch::From(source_if), Dispatch::To(sink_if)]);
    t.endpoint_chain(&fw, &pro, ChainEnd::default());
    t.allow(&pro, "");
    let end_of_tier = ChainEnd {
        clear_mark: true,
        drop_comment: Some(END_OF_TIER),
    };
    t.endpoint_chain(&tw, &pi, end_of_tier);
    for rule in rules {
        let proto = match rule.protocol {
            RuleProtocol::Tcp => "tcp",
            RuleProtocol::Udp => "udp",
        };
        let source = match &rule.source {
            RuleSource::Any => String::new(),
            RuleSource::Net { addr, prefix_len } => format!(" -s {addr}/{prefix_len}"),
            RuleSource::HasLabel(label) => {
                format!(" -m set --match-set {} src", ipset_name(label))
            }
        };
        let ports = if rule.ports.0 == rule.ports.1 {
            format!("--dport {}", rule.ports.0)
        } else {
            format!("-m multiport --dports {}:{}", rule.ports.0, rule.ports.1)
        };
        t.allow(&pi, &format!("-p {proto} -m {proto}{source} {ports}"));
    }
    t.render()
}
