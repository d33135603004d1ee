//! IPPool: a range workload addresses are assigned from, in blocks of `blockSize`.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::common::GoBool;
use crate::ippool_check::{check_allowed_uses, check_block_size, check_pool_cidr};
use crate::kind::Kind;
use crate::macros::calico_struct;
use crate::meta::Metadata;
use crate::object::Spec;
use crate::selector;
use crate::validate::{check_subdomain_name, Errors};

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
        // Go `bool` with `omitempty` in Calico: false is not written.
        #[serde(skip_serializing_if = "crate::common::is_unset_or_false")]
        "natOutgoing" => pub nat_outgoing: Option<bool> as GoBool,
        // Go `bool` with `omitempty` in Calico: false is not written.
        #[serde(skip_serializing_if = "crate::common::is_unset_or_false")]
        "disabled" => pub disabled: Option<bool> as GoBool,
        // Go `bool` with `omitempty` in Calico: false is not written.
        #[serde(skip_serializing_if = "crate::common::is_unset_or_false")]
        "disableBGPExport" => pub disable_bgp_export: Option<bool> as GoBool,
        #[serde(skip_serializing_if = "Option::is_none")]
        "nodeSelector" => pub node_selector: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "namespaceSelector" => pub namespace_selector: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "allowedUses" => pub allowed_uses: Option<Vec<AllowedUse>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "assignmentMode" => pub assignment_mode: Option<AssignmentMode>,
    }
}

/// Whether Calico's IPAM hands out a pool's addresses unasked (`Automatic`, the default) or
/// only when a workload names the pool (`Manual`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssignmentMode {
    #[default]
    Automatic,
    Manual,
}

/// Calico's default block sizes (IPv4 /26, IPv6 /122).
pub const DEFAULT_BLOCK_SIZE_V4: u32 = 26;
pub const DEFAULT_BLOCK_SIZE_V6: u32 = 122;

impl IpPoolSpec {
    /// The pool's network, if `cidr` parses.
    pub fn network(&self) -> Option<IpNet> {
        self.cidr.parse::<IpNet>().ok()
    }

    /// `blockSize`, or the default for the pool's address family (Calico takes 0 as unset).
    pub fn effective_block_size(&self) -> u32 {
        match self.block_size {
            Some(size) if size != 0 => size,
            _ => match self.network() {
                Some(IpNet::V6(_)) => DEFAULT_BLOCK_SIZE_V6,
                _ => DEFAULT_BLOCK_SIZE_V4,
            },
        }
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
        if self.node_selector.as_deref().unwrap_or_default().is_empty() {
            self.node_selector = Some("all()".into());
        }
        if self.allowed_uses.as_deref().unwrap_or_default().is_empty() {
            self.allowed_uses = Some(vec![AllowedUse::Workload, AllowedUse::Tunnel]);
        }
        self.assignment_mode
            .get_or_insert(AssignmentMode::Automatic);
    }

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_subdomain_name(errs, "metadata.name", &meta.name);
        if let Some(net) = check_pool_cidr(errs, &self.cidr) {
            check_block_size(errs, self, net);
            if self.ipip() != EncapMode::Never && matches!(net, IpNet::V6(_)) {
                errs.add(
                    "spec.ipipMode",
                    format!("{:?}", self.ipip()),
                    "IPIP is not supported on IPv6 pools",
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
        for (path, sel) in [
            ("spec.nodeSelector", &self.node_selector),
            ("spec.namespaceSelector", &self.namespace_selector),
        ] {
            if let Some(sel) = sel {
                selector::check(errs, path, sel);
                if sel.contains("global(") {
                    let which = path.trim_start_matches("spec.");
                    errs.add(
                        path,
                        sel,
                        format!("global() selector is not valid for IPPool {which}"),
                    );
                }
            }
        }
        check_allowed_uses(errs, self);
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
