//! The other IPAM records, in libcalico-go's JSON shapes: the block affinity (which node a
//! block belongs to), the handle (what one workload holds), and the global IPAM config.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Path of the global IPAM config (libcalico-go `IPAMConfigKey`).
pub const IPAM_CONFIG_KEY: &str = "/calico/ipam/v2/config";

/// `/calico/ipam/v2/host/<node>/ipv4/block/<cidr>`: a node's claim on a block. A claim is
/// written `pending` before the block is created and `confirmed` after, so a crash between the
/// two leaves a visible, recoverable trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockAffinity {
    pub state: AffinityState,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AffinityState {
    Pending,
    Confirmed,
    PendingDeletion,
}

impl BlockAffinity {
    pub fn new(state: AffinityState) -> BlockAffinity {
        BlockAffinity {
            state,
            deleted: false,
        }
    }
}

/// `/calico/ipam/v2/handle/<id>`: how many addresses the handle holds in each block, so that
/// releasing the handle visits exactly those blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamHandle {
    #[serde(rename = "handleID", default)]
    pub handle_id: String,
    #[serde(default)]
    pub block: BTreeMap<String, u64>,
    #[serde(default)]
    pub deleted: bool,
}

/// `/calico/ipam/v2/config`. libcalico-go writes `strict_affinity`/`auto_allocate_blocks`;
/// the v3 `IPAMConfiguration` spelling is accepted too. Absent config means Calico's
/// defaults: borrowing allowed, blocks allocated automatically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamConfig {
    #[serde(rename = "strict_affinity", alias = "strictAffinity", default)]
    pub strict_affinity: bool,
    #[serde(
        rename = "auto_allocate_blocks",
        alias = "autoAllocateBlocks",
        default = "yes"
    )]
    pub auto_allocate_blocks: bool,
}

fn yes() -> bool {
    true
}

impl Default for IpamConfig {
    fn default() -> IpamConfig {
        IpamConfig {
            strict_affinity: false,
            auto_allocate_blocks: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shapes_match_calico() {
        let a = serde_json::to_value(BlockAffinity::new(AffinityState::PendingDeletion)).unwrap();
        assert_eq!(
            a,
            serde_json::json!({"state": "pendingDeletion", "deleted": false})
        );
        let h = IpamHandle {
            handle_id: "k8s-pod-network.x".into(),
            block: BTreeMap::from([("10.0.0.0/26".into(), 2)]),
            deleted: false,
        };
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"handleID": "k8s-pod-network.x", "block": {"10.0.0.0/26": 2}, "deleted": false})
        );
        let c: IpamConfig = serde_json::from_str(r#"{"strictAffinity": true}"#).unwrap();
        assert_eq!(
            c,
            IpamConfig {
                strict_affinity: true,
                auto_allocate_blocks: true
            }
        );
        let c: IpamConfig =
            serde_json::from_str(r#"{"strict_affinity": true, "auto_allocate_blocks": false}"#)
                .unwrap();
        assert_eq!(
            c,
            IpamConfig {
                strict_affinity: true,
                auto_allocate_blocks: false
            }
        );
    }
}
