//! IPAM settings as `calicoctl ipam configure` writes them for Calico's allocator, at
//! `/calico/ipam/v2/config` (snake_case except `maxBlocksPerHost`, as Calico's model has it).

use serde::{Deserialize, Serialize};

/// The stored IPAM settings. Fields follow Go's `omitempty`: a false or zero field is not
/// written, and an absent field reads as false or zero. When there is no config key at all,
/// Calico uses [`IpamConfig::default`]: automatic block allocation on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IpamConfig {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict_affinity: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_allocate_blocks: bool,
    /// 0: no limit.
    #[serde(default, rename = "maxBlocksPerHost", skip_serializing_if = "is_zero")]
    pub max_blocks_per_host: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Default for IpamConfig {
    fn default() -> Self {
        IpamConfig {
            strict_affinity: false,
            auto_allocate_blocks: true,
            max_blocks_per_host: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_as_calico_stores_it() {
        let c = IpamConfig {
            strict_affinity: true,
            auto_allocate_blocks: true,
            max_blocks_per_host: 4,
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"strict_affinity": true, "auto_allocate_blocks": true, "maxBlocksPerHost": 4})
        );
        let back: IpamConfig = serde_json::from_str(
            r#"{"strict_affinity":true,"auto_allocate_blocks":true,"maxBlocksPerHost":4}"#,
        )
        .unwrap();
        assert_eq!(back, c);
        // An absent field is Go's zero value, unlike a missing key (the defaults).
        let empty: IpamConfig = serde_json::from_str("{}").unwrap();
        assert!(!empty.auto_allocate_blocks);
        assert!(IpamConfig::default().auto_allocate_blocks);
    }
}
