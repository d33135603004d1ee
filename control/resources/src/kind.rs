//! The resource kinds: their YAML names, etcd plurals, calicoctl's CLI spellings and table
//! columns.

use std::fmt;
use std::str::FromStr;

/// Every `projectcalico.org/v3` kind brindle knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    IpPool,
    BgpConfiguration,
    BgpPeer,
    Node,
    Profile,
    NetworkPolicy,
    GlobalNetworkPolicy,
    Tier,
    WorkloadEndpoint,
    HostEndpoint,
    NetworkSet,
    GlobalNetworkSet,
    FelixConfiguration,
    ClusterInformation,
}

/// (kind, YAML kind, etcd plural, namespaced, calicoctl's CLI spellings besides the kind).
const TABLE: [(Kind, &str, &str, bool, &[&str]); 14] = [
    (
        Kind::IpPool,
        "IPPool",
        "ippools",
        false,
        &["ippools", "ipp", "ipps", "pool", "pools"],
    ),
    (
        Kind::BgpConfiguration,
        "BGPConfiguration",
        "bgpconfigurations",
        false,
        &["bgpconfigurations", "bgpconfig", "bgpconfigs"],
    ),
    (
        Kind::BgpPeer,
        "BGPPeer",
        "bgppeers",
        false,
        &["bgppeers", "bgpp", "bgpps", "bp", "bps"],
    ),
    (Kind::Node, "Node", "nodes", false, &["nodes", "no", "nos"]),
    (
        Kind::Profile,
        "Profile",
        "profiles",
        false,
        &["profiles", "pro", "pros"],
    ),
    (
        Kind::NetworkPolicy,
        "NetworkPolicy",
        "networkpolicies",
        true,
        &[
            "networkpolicies",
            "policy",
            "policies",
            "pol",
            "pols",
            "np",
            "nps",
            "netpol",
            "netpols",
        ],
    ),
    (
        Kind::GlobalNetworkPolicy,
        "GlobalNetworkPolicy",
        "globalnetworkpolicies",
        false,
        &["globalnetworkpolicies", "gnp", "gnps"],
    ),
    (Kind::Tier, "Tier", "tiers", false, &["tiers"]),
    (
        Kind::WorkloadEndpoint,
        "WorkloadEndpoint",
        "workloadendpoints",
        true,
        &["workloadendpoints", "wep", "weps"],
    ),
    (
        Kind::HostEndpoint,
        "HostEndpoint",
        "hostendpoints",
        false,
        &["hostendpoints", "hep", "heps"],
    ),
    (
        Kind::NetworkSet,
        "NetworkSet",
        "networksets",
        true,
        &["networksets", "netset", "netsets"],
    ),
    (
        Kind::GlobalNetworkSet,
        "GlobalNetworkSet",
        "globalnetworksets",
        false,
        &["globalnetworksets", "gns", "gnss"],
    ),
    (
        Kind::FelixConfiguration,
        "FelixConfiguration",
        "felixconfigurations",
        false,
        &["felixconfigurations", "felixconfig", "felixconfigs"],
    ),
    (
        Kind::ClusterInformation,
        "ClusterInformation",
        "clusterinformations",
        false,
        &["clusterinformations", "clusterinfo", "clusterinfos"],
    ),
];

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::IpPool,
        Kind::BgpConfiguration,
        Kind::BgpPeer,
        Kind::Node,
        Kind::Profile,
        Kind::NetworkPolicy,
        Kind::GlobalNetworkPolicy,
        Kind::Tier,
        Kind::WorkloadEndpoint,
        Kind::HostEndpoint,
        Kind::NetworkSet,
        Kind::GlobalNetworkSet,
        Kind::FelixConfiguration,
        Kind::ClusterInformation,
    ];

    fn row(
        self,
    ) -> &'static (
        Kind,
        &'static str,
        &'static str,
        bool,
        &'static [&'static str],
    ) {
        // TABLE is in declaration order, so the discriminant indexes it.
        &TABLE[self as usize]
    }

    /// The `kind:` string in YAML, e.g. `IPPool`.
    pub fn as_str(self) -> &'static str {
        self.row().1
    }

    /// The `kind:` of a list of this kind, e.g. `IPPoolList`.
    pub fn list_kind(self) -> String {
        format!("{}List", self.as_str())
    }

    /// Calico's etcd plural, e.g. `ippools` (the key segment under `/calico/resources/v3/...`).
    pub fn plural(self) -> &'static str {
        self.row().2
    }

    /// Whether resources of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        self.row().3
    }

    /// The kind whose YAML name is exactly `s` (as in a manifest's `kind:`).
    pub fn from_yaml_kind(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// calicoctl's table columns for `get -o ps` (`wide = false`) and `-o wide`;
    /// `all_namespaces` adds NAMESPACE first for namespaced kinds (`-A`).
    pub fn table_headers(self, wide: bool, all_namespaces: bool) -> Vec<&'static str> {
        let mut h: Vec<&'static str> = match (self, wide) {
            (Kind::IpPool, false) => vec!["NAME", "CIDR", "SELECTOR"],
            (Kind::IpPool, true) => vec![
                "NAME",
                "CIDR",
                "NAT",
                "IPIPMODE",
                "VXLANMODE",
                "DISABLED",
                "DISABLEBGPEXPORT",
                "SELECTOR",
            ],
            (Kind::BgpConfiguration, _) => vec!["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"],
            (Kind::BgpPeer, false) => vec!["NAME", "PEERIP", "NODE", "ASN"],
            (Kind::BgpPeer, true) => vec!["NAME", "PEERIP", "NODE", "ASN", "PEERSELECTOR"],
            (Kind::Node, false) => vec!["NAME"],
            (Kind::Node, true) => vec!["NAME", "ASN", "IPV4", "IPV6"],
            (Kind::Profile, false) => vec!["NAME"],
            (Kind::Profile, true) => vec!["NAME", "LABELS"],
            (Kind::NetworkPolicy | Kind::GlobalNetworkPolicy, false) => vec!["NAME"],
            (Kind::NetworkPolicy | Kind::GlobalNetworkPolicy, true) => {
                vec!["NAME", "ORDER", "SELECTOR"]
            }
            (Kind::Tier, _) => vec!["NAME", "ORDER"],
            (Kind::WorkloadEndpoint, false) => vec!["WORKLOAD", "NODE", "NETWORKS", "INTERFACE"],
            (Kind::WorkloadEndpoint, true) => vec![
                "NAME",
                "WORKLOAD",
                "NODE",
                "NETWORKS",
                "INTERFACE",
                "PROFILES",
                "NATS",
            ],
            (Kind::HostEndpoint, false) => vec!["NAME", "NODE"],
            (Kind::HostEndpoint, true) => vec!["NAME", "NODE", "INTERFACE", "IPS", "PROFILES"],
            (Kind::NetworkSet | Kind::GlobalNetworkSet, false) => vec!["NAME"],
            (Kind::NetworkSet | Kind::GlobalNetworkSet, true) => vec!["NAME", "NETS"],
            (Kind::FelixConfiguration | Kind::ClusterInformation, _) => vec!["NAME"],
        };
        if all_namespaces && self.namespaced() {
            h.insert(0, "NAMESPACE");
        }
        h
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("resource type '{0}' is not supported")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    /// calicoctl's spellings, case-insensitive: the kind (`IPPool`, `ippool`), its plural and
    /// its short names (`ipp`, `pool`, `np`, `gnp`, `wep`, `hep`, ...). A `.projectcalico.org`
    /// suffix, as kubectl writes it, is accepted too.
    fn from_str(s: &str) -> Result<Kind, UnknownKind> {
        let lower = s.trim().to_ascii_lowercase();
        let lower = lower.strip_suffix(".projectcalico.org").unwrap_or(&lower);
        TABLE
            .iter()
            .find(|(_, kind, _, _, aliases)| {
                kind.to_ascii_lowercase() == lower || aliases.contains(&lower)
            })
            .map(|row| row.0)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_match_their_kind() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(TABLE[i].0, *k);
            assert_eq!(Kind::from_yaml_kind(k.as_str()), Some(*k));
            assert_eq!(k.as_str().parse::<Kind>(), Ok(*k));
            assert_eq!(k.plural().parse::<Kind>(), Ok(*k));
        }
    }

    #[test]
    fn calicoctl_aliases() {
        for (alias, kind) in [
            ("ippool", Kind::IpPool),
            ("IPPools", Kind::IpPool),
            ("ipp", Kind::IpPool),
            ("pool", Kind::IpPool),
            ("networkpolicy", Kind::NetworkPolicy),
            ("netpol", Kind::NetworkPolicy),
            ("np", Kind::NetworkPolicy),
            ("policy", Kind::NetworkPolicy),
            ("gnp", Kind::GlobalNetworkPolicy),
            ("GlobalNetworkPolicy", Kind::GlobalNetworkPolicy),
            ("wep", Kind::WorkloadEndpoint),
            ("hep", Kind::HostEndpoint),
            ("bgppeer", Kind::BgpPeer),
            ("bgpconfig", Kind::BgpConfiguration),
            ("felixconfig", Kind::FelixConfiguration),
            ("node", Kind::Node),
            ("profile", Kind::Profile),
            ("tier", Kind::Tier),
            ("netset", Kind::NetworkSet),
            ("gns", Kind::GlobalNetworkSet),
            ("clusterinfo", Kind::ClusterInformation),
            ("ippools.projectcalico.org", Kind::IpPool),
        ] {
            assert_eq!(alias.parse::<Kind>(), Ok(kind), "{alias}");
        }
        assert_eq!("pods".parse::<Kind>(), Err(UnknownKind("pods".into())));
    }

    #[test]
    fn plurals_and_scope() {
        assert_eq!(Kind::NetworkPolicy.plural(), "networkpolicies");
        assert_eq!(Kind::GlobalNetworkPolicy.plural(), "globalnetworkpolicies");
        assert_eq!(Kind::BgpConfiguration.plural(), "bgpconfigurations");
        assert!(Kind::WorkloadEndpoint.namespaced());
        assert!(Kind::NetworkSet.namespaced());
        assert!(!Kind::IpPool.namespaced());
        assert_eq!(Kind::IpPool.list_kind(), "IPPoolList");
    }
}
