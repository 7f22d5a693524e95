//! A node's claim on a block, stored at `/calico/ipam/v2/host/<node>/ipv4/block/<cidr>`.
//!
//! Calico claims a block in two phases so that a crash between steps never leaves two nodes
//! owning one block: the affinity is created `pending`, the block is created with a CAS, then
//! the affinity is confirmed. A pending affinity counts as absent: whoever finds one may
//! take the block over. Releasing goes through `pendingDeletion` before the key is removed.

use serde::{Deserialize, Serialize};

/// Where a claim stands (Calico's `BlockAffinityState`; empty, as older Calico wrote it,
/// means confirmed).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AffinityState {
    #[serde(rename = "pending")]
    Pending,
    #[default]
    #[serde(rename = "confirmed", alias = "")]
    Confirmed,
    #[serde(rename = "pendingDeletion")]
    PendingDeletion,
}

/// The stored value of a block affinity: `{"state":"confirmed","deleted":false}`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockAffinity {
    #[serde(default)]
    pub state: AffinityState,
    #[serde(default)]
    pub deleted: bool,
}

impl BlockAffinity {
    pub fn pending() -> Self {
        BlockAffinity {
            state: AffinityState::Pending,
            deleted: false,
        }
    }

    /// Whether the claim holds: only a confirmed affinity makes a block this node's.
    pub fn is_confirmed(&self) -> bool {
        self.state == AffinityState::Confirmed && !self.deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_as_calico_stores_it() {
        let a = BlockAffinity::pending();
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::json!({"state": "pending", "deleted": false})
        );
        let c: BlockAffinity =
            serde_json::from_str(r#"{"state":"confirmed","deleted":false}"#).unwrap();
        assert!(c.is_confirmed());
        // Older Calico wrote an empty state for confirmed affinities, or no value at all.
        let old: BlockAffinity = serde_json::from_str(r#"{"state":""}"#).unwrap();
        assert!(old.is_confirmed());
        let empty: BlockAffinity = serde_json::from_str("{}").unwrap();
        assert!(empty.is_confirmed());
        let going: BlockAffinity = serde_json::from_str(r#"{"state":"pendingDeletion"}"#).unwrap();
        assert!(!going.is_confirmed());
    }
}
