//! IPPool: a range workload addresses are assigned from, in blocks of `blockSize`.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::kind::Kind;
use crate::macros::calico_struct;
use crate::meta::Metadata;
use crate::object::Spec;
use crate::selector;
use crate::validate::{check_subdomain_name, field, index, parse_cidr_or_ip, Errors};

/// When packets between hosts are encapsulated (IPIP or VXLAN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EncapMode {
    #[default]
    Never,
    Always,
    /// Only when the destination host is in another subnet than this one.
    CrossSubnet,
}

/// What a pool's addresses may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllowedUse {
    Workload,
    Tunnel,
    LoadBalancer,
}

calico_struct! {
    pub struct IpPoolSpec {
        "cidr" => pub cidr: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        "blockSize" => pub block_size: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "ipipMode" => pub ipip_mode: Option<EncapMode>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "vxlanMode" => pub vxlan_mode: Option<EncapMode>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "natOutgoing" => pub nat_outgoing: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "disabled" => pub disabled: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "disableBGPExport" => pub disable_bgp_export: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "nodeSelector" => pub node_selector: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "allowedUses" => pub allowed_uses: Option<Vec<AllowedUse>>,
    }
}

/// Calico's default block sizes (IPv4 /26, IPv6 /122).
pub const DEFAULT_BLOCK_SIZE_V4: u32 = 26;
pub const DEFAULT_BLOCK_SIZE_V6: u32 = 122;

impl IpPoolSpec {
    /// The pool's network, if `cidr` parses.
    pub fn network(&self) -> Option<IpNet> {
        self.cidr.parse::<IpNet>().ok()
    }

    /// `blockSize`, or the default for the pool's address family.
    pub fn effective_block_size(&self) -> u32 {
        self.block_size.unwrap_or(match self.network() {
            Some(IpNet::V6(_)) => DEFAULT_BLOCK_SIZE_V6,
            _ => DEFAULT_BLOCK_SIZE_V4,
        })
    }

    pub fn ipip(&self) -> EncapMode {
        self.ipip_mode.unwrap_or_default()
    }

    pub fn vxlan(&self) -> EncapMode {
        self.vxlan_mode.unwrap_or_default()
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled.unwrap_or(false)
    }

    pub fn nat_outgoing(&self) -> bool {
        self.nat_outgoing.unwrap_or(false)
    }
}

impl Spec for IpPoolSpec {
    const KIND: Kind = Kind::IpPool;

    fn apply_defaults(&mut self, _meta: &mut Metadata) {
        self.block_size = Some(self.effective_block_size());
        self.ipip_mode.get_or_insert(EncapMode::Never);
        self.vxlan_mode.get_or_insert(EncapMode::Never);
        self.nat_outgoing.get_or_insert(false);
        self.disabled.get_or_insert(false);
        self.disable_bgp_export.get_or_insert(false);
        if self.node_selector.as_deref().unwrap_or_default().is_empty() {
            self.node_selector = Some("all()".into());
        }
        if self.allowed_uses.as_deref().unwrap_or_default().is_empty() {
            self.allowed_uses = Some(vec![AllowedUse::Workload, AllowedUse::Tunnel]);
        }
    }

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_subdomain_name(errs, "metadata.name", &meta.name);
        let net = if self.cidr.is_empty() {
            errs.add("spec.cidr", "", "cidr is required");
            None
        } else {
            match self.cidr.parse::<IpNet>() {
                Ok(net) if net.trunc() != net => {
                    errs.add(
                        "spec.cidr",
                        &self.cidr,
                        format!(
                            "not a network address: host bits are set (did you mean {}?)",
                            net.trunc()
                        ),
                    );
                    None
                }
                Ok(net) => Some(net),
                Err(_) if parse_cidr_or_ip(&self.cidr).is_some() => {
                    errs.add(
                        "spec.cidr",
                        &self.cidr,
                        "cidr needs a prefix length, e.g. 10.1.0.0/16",
                    );
                    None
                }
                Err(_) => {
                    errs.add("spec.cidr", &self.cidr, "not a valid CIDR");
                    None
                }
            }
        };
        if let Some(net) = net {
            let link_local: IpNet = match net {
                IpNet::V4(_) => "169.254.0.0/16".parse().expect("constant"),
                IpNet::V6(_) => "fe80::/10".parse().expect("constant"),
            };
            if link_local.contains(&net) || net.contains(&link_local) {
                errs.add(
                    "spec.cidr",
                    &self.cidr,
                    format!("pool must not overlap the link-local range {link_local}"),
                );
            }
            let (lo, hi) = match net {
                IpNet::V4(_) => (20, 32),
                IpNet::V6(_) => (116, 128),
            };
            let bs = self.effective_block_size();
            if !(lo..=hi).contains(&bs) {
                errs.add(
                    "spec.blockSize",
                    bs,
                    format!("block size must be between {lo} and {hi} for this address family"),
                );
            } else if u32::from(net.prefix_len()) > bs {
                errs.add(
                    "spec.cidr",
                    &self.cidr,
                    format!("pool is smaller than one block: prefix length {} is longer than blockSize {bs}", net.prefix_len()),
                );
            }
            if self.ipip() != EncapMode::Never && matches!(net, IpNet::V6(_)) {
                errs.add(
                    "spec.ipipMode",
                    format!("{:?}", self.ipip()),
                    "IPIP is not supported on an IPv6 pool",
                );
            }
        }
        if self.ipip() != EncapMode::Never && self.vxlan() != EncapMode::Never {
            errs.add(
                "spec.vxlanMode",
                format!("{:?}", self.vxlan()),
                "ipipMode and vxlanMode cannot both be enabled",
            );
        }
        if let Some(sel) = &self.node_selector {
            selector::check(errs, "spec.nodeSelector", sel);
        }
        if let Some(uses) = &self.allowed_uses {
            if uses.contains(&AllowedUse::LoadBalancer) && uses.len() > 1 {
                errs.add(
                    "spec.allowedUses",
                    format!("{uses:?}"),
                    "LoadBalancer cannot be combined with other uses",
                );
            }
            for (i, u) in uses.iter().enumerate() {
                if uses[..i].contains(u) {
                    errs.add(
                        &index(&field("spec", "allowedUses"), i),
                        format!("{u:?}"),
                        "duplicate use",
                    );
                }
            }
        }
    }

    fn table_row(&self, meta: &Metadata, wide: bool) -> Vec<String> {
        let selector = self.node_selector.clone().unwrap_or_else(|| "all()".into());
        if wide {
            vec![
                meta.name.clone(),
                self.cidr.clone(),
                self.nat_outgoing().to_string(),
                format!("{:?}", self.ipip()),
                format!("{:?}", self.vxlan()),
                self.is_disabled().to_string(),
                self.disable_bgp_export.unwrap_or(false).to_string(),
                selector,
            ]
        } else {
            vec![meta.name.clone(), self.cidr.clone(), selector]
        }
    }
}
