//! A handle: which blocks hold a workload's (or tunnel's) addresses and how many each, stored
//! at `/calico/ipam/v2/handle/<id>` (`k8s-pod-network.<containerID>`,
//! `ipip-tunnel-addr-<node>`, `vxlan-tunnel-addr-<node>`). Release by handle reads it to know
//! which blocks to visit; its counts must always equal the blocks' allocations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The stored value of a handle: `{"block":{"10.0.0.0/26":2},"deleted":false}`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Handle {
    /// Block CIDR -> addresses of this handle in that block.
    #[serde(default)]
    pub block: BTreeMap<String, u32>,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("handle has {have} address(es) in block {block}, cannot release {asked}")]
pub struct HandleError {
    pub block: String,
    pub have: u32,
    pub asked: u32,
}

impl Handle {
    /// Count `n` more addresses in `block`.
    pub fn increment(&mut self, block: &str, n: u32) {
        *self.block.entry(block.to_string()).or_default() += n;
    }

    /// Count `n` fewer; a block that reaches zero is removed. Releasing more than the handle
    /// holds is an error (the block and the handle disagree) and changes nothing.
    pub fn decrement(&mut self, block: &str, n: u32) -> Result<(), HandleError> {
        let have = self.block.get(block).copied().unwrap_or(0);
        if n > have {
            return Err(HandleError {
                block: block.to_string(),
                have,
                asked: n,
            });
        }
        if have == n {
            self.block.remove(block);
        } else {
            self.block.insert(block.to_string(), have - n);
        }
        Ok(())
    }

    /// No addresses left: the handle key should be deleted.
    pub fn is_empty(&self) -> bool {
        self.block.is_empty()
    }

    pub fn total(&self) -> u32 {
        self.block.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_block_as_calico_stores_them() {
        let mut h = Handle::default();
        h.increment("10.0.0.0/26", 2);
        h.increment("10.0.1.0/26", 1);
        assert_eq!(
            serde_json::to_value(&h).unwrap(),
            serde_json::json!({"block": {"10.0.0.0/26": 2, "10.0.1.0/26": 1}, "deleted": false})
        );
        assert_eq!(h.total(), 3);
        h.decrement("10.0.0.0/26", 2).unwrap();
        assert_eq!(h.block.len(), 1);
        let err = h.decrement("10.0.1.0/26", 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "handle has 1 address(es) in block 10.0.1.0/26, cannot release 2"
        );
        assert_eq!(h.total(), 1, "a failed decrement changes nothing");
        h.decrement("10.0.1.0/26", 1).unwrap();
        assert!(h.is_empty());
    }
}
