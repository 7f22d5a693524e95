//! `IPPool`: a range of addresses pods get their IPs from, and how traffic to them is
//! encapsulated. Field names and defaults follow Calico's `projectcalico.org/v3` IPPool.

use serde::{Deserialize, Serialize};

use crate::resource::{Kinded, Resource, check_type_meta};
use crate::{ApiError, ObjectMeta, ResourceKind};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IPPool {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: IPPoolSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

impl Default for IPPool {
    fn default() -> Self {
        IPPool {
            api_version: crate::API_VERSION.to_string(),
            kind: ResourceKind::IPPool.name().to_string(),
            metadata: ObjectMeta::default(),
            spec: IPPoolSpec::default(),
            status: None,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IPPoolSpec {
    #[serde(default)]
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipip_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_outgoing: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(
        default,
        rename = "disableBGPExport",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_bgp_export: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_uses: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_mode: Option<String>,
}

impl Resource for IPPool {
    fn kind(&self) -> ResourceKind {
        ResourceKind::IPPool
    }
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn apply_defaults(&mut self) {}
    fn validate(&self) -> Result<(), ApiError> {
        check_type_meta(ResourceKind::IPPool, &self.api_version, &self.kind)
    }
}

impl Kinded for IPPool {
    const KIND: ResourceKind = ResourceKind::IPPool;
}
