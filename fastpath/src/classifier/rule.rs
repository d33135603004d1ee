//! One policy rule as the compiler hands it to the fastpath, the packet fields it looks at, and
//! the predicate "does this rule match this packet" that both evaluators share.
//!
//! The fields mirror Calico's `Rule` (`projectcalico.org/v3`) after the control plane resolved
//! what the fastpath cannot: selectors and NetworkSets become [`IpSetId`]s whose members
//! [`IpSets`] keeps current, named ports become numbers, protocol names become numbers.
//! An empty list, or `None`, is a wildcard.

use std::net::Ipv4Addr;

use ipv4net::Ipv4Prefix;

use super::ipsets::{IpSetId, IpSets};
use super::ClassifierError;

/// The header fields policy looks at, extracted once per packet by the pipeline.
///
/// Ports are 0 and ICMP fields `None` when the protocol has none (the pipeline does not
/// look further than the first fragment's transport header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacketFields {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
}

impl PacketFields {
    /// The fields of a checked IPv4 packet. Ports are the first two 16-bit words of the TCP
    /// (RFC 9293 section 3.1), UDP (RFC 768), SCTP (RFC 9260 section 3.1) and UDP-Lite
    /// (RFC 3828) headers; ICMP type and code the first two bytes (RFC 792). A non-first
    /// fragment (RFC 791 section 3.2), or a transport header cut short, has no ports and no
    /// ICMP fields, so rules that need them do not match it.
    pub fn from_ipv4<T: AsRef<[u8]>>(packet: &crate::wire::Ipv4Packet<T>) -> Self {
        let mut fields = PacketFields {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            protocol: packet.protocol(),
            src_port: 0,
            dst_port: 0,
            icmp_type: None,
            icmp_code: None,
        };
        if packet.frag_offset() != 0 {
            return fields;
        }
        let transport = packet.payload();
        match fields.protocol {
            protocol::TCP | protocol::UDP | protocol::SCTP | protocol::UDPLITE => {
                if let Some(&[a, b, c, d]) = transport.get(..4) {
                    fields.src_port = u16::from_be_bytes([a, b]);
                    fields.dst_port = u16::from_be_bytes([c, d]);
                }
            }
            protocol::ICMP => {
                if let Some(&[icmp_type, code]) = transport.get(..2) {
                    fields.icmp_type = Some(icmp_type);
                    fields.icmp_code = Some(code);
                }
            }
            _ => {}
        }
        fields
    }
}

/// IANA protocol numbers policy commonly names (Calico's `protocol: TCP|UDP|ICMP|SCTP|UDPLite`).
pub mod protocol {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const SCTP: u8 = 132;
    pub const UDPLITE: u8 = 136;
}

/// An IPv4 prefix compiled for matching: the shared [`Ipv4Prefix`] as the network in host
/// byte order and its length, so [`Cidr::contains`] is a mask and a compare on the hot path.
/// Host bits are cleared on construction, so two spellings of one network compare equal
/// (`10.1.2.3/24` is `10.1.2.0/24`, as Calico's own parsing treats it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: u32,
    len: u8,
}

impl From<Ipv4Prefix> for Cidr {
    fn from(prefix: Ipv4Prefix) -> Self {
        Cidr {
            addr: u32::from(prefix.addr()),
            len: prefix.len(),
        }
    }
}

impl Cidr {
    /// The prefix of length `len` containing `addr`; errors when `len > 32`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, ClassifierError> {
        Ipv4Prefix::containing(addr, len)
            .map(Cidr::from)
            .map_err(|_| ClassifierError::PrefixLength { addr, len })
    }

    /// A single address (`/32`).
    pub fn host(addr: Ipv4Addr) -> Self {
        Cidr::from(Ipv4Prefix::host(addr))
    }

    pub fn addr(self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr)
    }

    /// The prefix length (not a size: `Cidr` is not a collection).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> u8 {
        self.len
    }

    /// The network address in host byte order.
    pub(crate) fn bits(self) -> u32 {
        self.addr
    }

    #[inline]
    pub fn contains(self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.len) == self.addr
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

/// The netmask of a prefix length, in host byte order (`len` 0..=32).
pub(crate) use ipv4net::mask;

/// An inclusive port range; a single port is `first == last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn single(port: u16) -> Self {
        PortRange {
            first: port,
            last: port,
        }
    }

    /// Errors when `first > last`.
    pub fn new(first: u16, last: u16) -> Result<Self, ClassifierError> {
        if first > last {
            return Err(ClassifierError::PortRange { first, last });
        }
        Ok(PortRange { first, last })
    }

    #[inline]
    pub fn contains(self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }

    /// How many ports the range holds.
    pub fn width(self) -> u32 {
        u32::from(self.last).saturating_sub(u32::from(self.first)) + 1
    }
}

/// Calico's `icmp` / `notICMP`: a type, and optionally a code within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpMatch {
    pub icmp_type: u8,
    pub code: Option<u8>,
}

impl IcmpMatch {
    #[inline]
    fn matches(self, packet: &PacketFields) -> bool {
        packet.icmp_type == Some(self.icmp_type)
            && self.code.is_none_or(|code| packet.icmp_code == Some(code))
    }
}

/// What a matching rule does (Calico's rule `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Accept; evaluation ends.
    Allow,
    /// Drop; evaluation ends.
    Deny,
    /// Skip the rest of this tier and continue with the next one (or the profiles).
    Pass,
    /// Count the packet against this rule and continue with the next rule.
    Log,
}

/// One side (`source` or `destination`) of a rule.
///
/// Within a side, every non-empty field must match (Calico's semantics). List semantics:
/// - `nets`: the address is in any of them; `not_nets`: in none of them.
/// - `sets`: the address is in **all** of them (Felix renders each IP set of a rule as its
///   own match, so a `selector` plus a `serviceAccounts` selector need both); `not_sets`: in
///   none of them. A selector (with its namespace selector folded in) is usually one set.
/// - `ports`: the port is in any range; `not_ports`: in none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointMatch {
    pub nets: Vec<Cidr>,
    pub not_nets: Vec<Cidr>,
    pub sets: Vec<IpSetId>,
    pub not_sets: Vec<IpSetId>,
    pub ports: Vec<PortRange>,
    pub not_ports: Vec<PortRange>,
}

impl EndpointMatch {
    /// `in_set(s)`: whether this side's address is in set `s`.
    #[inline]
    fn matches(&self, addr: Ipv4Addr, port: u16, in_set: impl Fn(IpSetId) -> bool) -> bool {
        (self.nets.is_empty() || self.nets.iter().any(|n| n.contains(addr)))
            && !self.not_nets.iter().any(|n| n.contains(addr))
            && (self.ports.is_empty() || self.ports.iter().any(|r| r.contains(port)))
            && !self.not_ports.iter().any(|r| r.contains(port))
            && self.sets.iter().all(|&s| in_set(s))
            && !self.not_sets.iter().any(|&s| in_set(s))
    }

    fn validate(&self) -> Result<(), ClassifierError> {
        for r in self.ports.iter().chain(&self.not_ports) {
            PortRange::new(r.first, r.last)?;
        }
        Ok(())
    }
}

/// A rule: every non-empty field must match for the action to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    pub protocol: Option<u8>,
    pub not_protocol: Option<u8>,
    pub src: EndpointMatch,
    pub dst: EndpointMatch,
    pub icmp: Option<IcmpMatch>,
    pub not_icmp: Option<IcmpMatch>,
}

impl Rule {
    /// A rule matching every packet.
    pub fn any(action: Action) -> Self {
        Rule {
            action,
            protocol: None,
            not_protocol: None,
            src: EndpointMatch::default(),
            dst: EndpointMatch::default(),
            icmp: None,
            not_icmp: None,
        }
    }

    /// The reference predicate, with set membership looked up in `sets`.
    #[inline]
    pub fn matches(&self, packet: &PacketFields, sets: &IpSets) -> bool {
        self.matches_with(
            packet,
            |s| sets.contains(s, packet.src),
            |s| sets.contains(s, packet.dst),
        )
    }

    /// The predicate with membership answered by the caller (the index answers from the
    /// packet's memberships, computed once). The cheap scalar tests come first.
    #[inline]
    pub(crate) fn matches_with(
        &self,
        packet: &PacketFields,
        src_in: impl Fn(IpSetId) -> bool,
        dst_in: impl Fn(IpSetId) -> bool,
    ) -> bool {
        self.protocol.is_none_or(|p| p == packet.protocol)
            && self.not_protocol.is_none_or(|p| p != packet.protocol)
            && self.icmp.is_none_or(|m| m.matches(packet))
            && !self.not_icmp.is_some_and(|m| m.matches(packet))
            && self.src.matches(packet.src, packet.src_port, src_in)
            && self.dst.matches(packet.dst, packet.dst_port, dst_in)
    }

    /// Whether the rule names any IP set on its source / destination side.
    pub(crate) fn uses_sets(&self) -> (bool, bool) {
        let side = |m: &EndpointMatch| !m.sets.is_empty() || !m.not_sets.is_empty();
        (side(&self.src), side(&self.dst))
    }

    pub(crate) fn validate(&self) -> Result<(), ClassifierError> {
        self.src.validate()?;
        self.dst.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(src: [u8; 4], src_port: u16, dst: [u8; 4], dst_port: u16) -> PacketFields {
        PacketFields {
            src: src.into(),
            dst: dst.into(),
            protocol: protocol::TCP,
            src_port,
            dst_port,
            icmp_type: None,
            icmp_code: None,
        }
    }

    fn icmp(icmp_type: u8, code: u8) -> PacketFields {
        PacketFields {
            src: [10, 0, 0, 1].into(),
            dst: [10, 0, 0, 2].into(),
            protocol: protocol::ICMP,
            src_port: 0,
            dst_port: 0,
            icmp_type: Some(icmp_type),
            icmp_code: Some(code),
        }
    }

    fn cidr(a: [u8; 4], len: u8) -> Cidr {
        Cidr::new(a.into(), len).unwrap()
    }

    /// A 20-byte IPv4 header (RFC 791 section 3.1; checksum left 0) before `transport`.
    fn ipv4(protocol: u8, frag_offset: u16, transport: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((20 + transport.len()) as u16).to_be_bytes());
        p[6..8].copy_from_slice(&frag_offset.to_be_bytes());
        p[8] = 64;
        p[9] = protocol;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        p.extend_from_slice(transport);
        p
    }

    fn fields_of(bytes: &[u8]) -> PacketFields {
        PacketFields::from_ipv4(&crate::wire::Ipv4Packet::new_checked(bytes).unwrap())
    }

    #[test]
    fn fields_from_ipv4_packets() {
        let udp = fields_of(&ipv4(
            protocol::UDP,
            0,
            &[0x9c, 0x40, 0x00, 0x35, 0, 8, 0, 0],
        ));
        assert_eq!(
            (udp.src, udp.dst),
            (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
        );
        assert_eq!(
            (udp.protocol, udp.src_port, udp.dst_port, udp.icmp_type),
            (17, 40000, 53, None)
        );
        let sctp = fields_of(&ipv4(
            protocol::SCTP,
            0,
            &[0x0b, 0x59, 0x0b, 0x5a, 1, 2, 3, 4],
        ));
        assert_eq!((sctp.src_port, sctp.dst_port), (2905, 2906));
        let echo = fields_of(&ipv4(protocol::ICMP, 0, &[8, 0, 0xf7, 0xff, 0, 0, 0, 0]));
        assert_eq!(
            (echo.icmp_type, echo.icmp_code, echo.dst_port),
            (Some(8), Some(0), 0)
        );
        // A later fragment carries no transport header: no ports, even if bytes look like one.
        let later = fields_of(&ipv4(protocol::TCP, 185, &[0x9c, 0x40, 0x00, 0x50]));
        assert_eq!((later.src_port, later.dst_port), (0, 0));
        // Cut short: no ports rather than a panic.
        let short = fields_of(&ipv4(protocol::TCP, 0, &[0x9c, 0x40, 0x00]));
        assert_eq!((short.protocol, short.src_port, short.dst_port), (6, 0, 0));
        let short_icmp = fields_of(&ipv4(protocol::ICMP, 0, &[3]));
        assert_eq!(short_icmp.icmp_type, None);
    }

    #[test]
    fn cidr_masks_host_bits_and_rejects_long_prefixes() {
        assert_eq!(cidr([10, 1, 2, 3], 24), cidr([10, 1, 2, 0], 24));
        assert_eq!(cidr([10, 1, 2, 3], 24).to_string(), "10.1.2.0/24");
        assert!(cidr([0, 0, 0, 0], 0).contains([255, 1, 2, 3].into()));
        let err = Cidr::new([10, 0, 0, 0].into(), 33).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prefix length 33 of 10.0.0.0 is longer than 32"
        );
    }

    #[test]
    fn port_range_rejects_reversed_bounds() {
        assert!(PortRange::new(80, 79).is_err());
        assert_eq!(PortRange::new(80, 90).unwrap().width(), 11);
        let mut rule = Rule::any(Action::Allow);
        rule.dst.ports.push(PortRange { first: 9, last: 1 });
        assert_eq!(
            rule.validate().unwrap_err().to_string(),
            "port range 9:1 has its first port after its last"
        );
    }

    #[test]
    fn empty_rule_matches_everything() {
        let sets = IpSets::default();
        assert!(Rule::any(Action::Deny).matches(&tcp([1, 2, 3, 4], 1, [5, 6, 7, 8], 2), &sets));
        assert!(Rule::any(Action::Deny).matches(&icmp(8, 0), &sets));
    }

    #[test]
    fn protocol_and_not_protocol() {
        let sets = IpSets::default();
        let packet = tcp([10, 0, 0, 1], 1000, [10, 0, 0, 2], 80);
        let mut rule = Rule::any(Action::Allow);
        rule.protocol = Some(protocol::TCP);
        assert!(rule.matches(&packet, &sets));
        rule.protocol = Some(protocol::UDP);
        assert!(!rule.matches(&packet, &sets));
        let mut rule = Rule::any(Action::Allow);
        rule.not_protocol = Some(protocol::TCP);
        assert!(!rule.matches(&packet, &sets));
        rule.not_protocol = Some(protocol::UDP);
        assert!(rule.matches(&packet, &sets));
    }

    #[test]
    fn nets_any_of_and_not_nets_none_of_on_both_sides() {
        let sets = IpSets::default();
        let packet = tcp([10, 1, 2, 3], 1000, [192, 168, 5, 6], 80);
        let mut rule = Rule::any(Action::Allow);
        rule.src.nets = vec![cidr([172, 16, 0, 0], 12), cidr([10, 1, 0, 0], 16)];
        assert!(rule.matches(&packet, &sets));
        rule.src.nets = vec![cidr([172, 16, 0, 0], 12)];
        assert!(!rule.matches(&packet, &sets));

        let mut rule = Rule::any(Action::Allow);
        rule.src.not_nets = vec![cidr([10, 1, 2, 3], 32)];
        assert!(!rule.matches(&packet, &sets));
        rule.src.not_nets = vec![cidr([10, 1, 2, 4], 32)];
        assert!(rule.matches(&packet, &sets));

        let mut rule = Rule::any(Action::Allow);
        rule.dst.nets = vec![cidr([192, 168, 0, 0], 16)];
        assert!(rule.matches(&packet, &sets));
        rule.dst.not_nets = vec![cidr([192, 168, 5, 0], 24)];
        assert!(
            !rule.matches(&packet, &sets),
            "notNets excludes inside nets"
        );
    }

    #[test]
    fn ports_and_not_ports_with_ranges_on_both_sides() {
        let sets = IpSets::default();
        let packet = tcp([10, 0, 0, 1], 40000, [10, 0, 0, 2], 8080);
        let mut rule = Rule::any(Action::Allow);
        rule.dst.ports = vec![PortRange::single(80), PortRange::new(8000, 8999).unwrap()];
        assert!(rule.matches(&packet, &sets));
        rule.dst.ports = vec![PortRange::single(80)];
        assert!(!rule.matches(&packet, &sets));

        let mut rule = Rule::any(Action::Allow);
        rule.dst.not_ports = vec![PortRange::new(8080, 8080).unwrap()];
        assert!(!rule.matches(&packet, &sets));
        rule.src.ports = vec![PortRange::new(32768, 60999).unwrap()];
        rule.dst.not_ports = vec![PortRange::single(22)];
        assert!(rule.matches(&packet, &sets));
        rule.src.not_ports = vec![PortRange::new(40000, 40001).unwrap()];
        assert!(!rule.matches(&packet, &sets));
    }

    #[test]
    fn ip_sets_all_of_and_not_sets_none_of() {
        let mut writer = super::super::IpSetsWriter::new();
        writer.add_member(IpSetId(1), Cidr::host([10, 0, 0, 1].into()));
        writer.add_member(IpSetId(2), cidr([10, 0, 0, 0], 24));
        writer.add_member(IpSetId(3), cidr([10, 9, 0, 0], 16));
        let sets = writer.publish();
        let packet = tcp([10, 0, 0, 1], 1000, [10, 9, 1, 1], 80);

        let mut rule = Rule::any(Action::Allow);
        rule.src.sets = vec![IpSetId(1), IpSetId(2)];
        assert!(rule.matches(&packet, &sets));
        rule.src.sets = vec![IpSetId(1), IpSetId(3)];
        assert!(
            !rule.matches(&packet, &sets),
            "all of the sets must hold the address"
        );
        rule.src.sets = vec![IpSetId(99)];
        assert!(!rule.matches(&packet, &sets), "an unknown set is empty");

        let mut rule = Rule::any(Action::Allow);
        rule.dst.sets = vec![IpSetId(3)];
        assert!(rule.matches(&packet, &sets));
        rule.dst.not_sets = vec![IpSetId(1), IpSetId(3)];
        assert!(!rule.matches(&packet, &sets));
        rule.dst.not_sets = vec![IpSetId(1)];
        assert!(rule.matches(&packet, &sets));
    }

    #[test]
    fn icmp_type_code_and_not_icmp() {
        let sets = IpSets::default();
        let mut rule = Rule::any(Action::Allow);
        rule.protocol = Some(protocol::ICMP);
        rule.icmp = Some(IcmpMatch {
            icmp_type: 8,
            code: None,
        });
        assert!(rule.matches(&icmp(8, 0), &sets));
        assert!(!rule.matches(&icmp(0, 0), &sets));
        rule.icmp = Some(IcmpMatch {
            icmp_type: 3,
            code: Some(4),
        });
        assert!(rule.matches(&icmp(3, 4), &sets));
        assert!(!rule.matches(&icmp(3, 1), &sets));
        assert!(
            !rule.matches(&tcp([1, 1, 1, 1], 1, [2, 2, 2, 2], 3), &sets),
            "no ICMP fields, no icmp match"
        );

        let mut rule = Rule::any(Action::Allow);
        rule.not_icmp = Some(IcmpMatch {
            icmp_type: 8,
            code: Some(0),
        });
        assert!(!rule.matches(&icmp(8, 0), &sets));
        assert!(rule.matches(&icmp(8, 1), &sets));
        assert!(rule.matches(&tcp([1, 1, 1, 1], 1, [2, 2, 2, 2], 3), &sets));
    }
}
