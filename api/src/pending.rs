//! Temporary: kinds whose typed spec is not written yet carry their spec as free JSON. Each is
//! replaced by a module of its own as the foundation issue's api work lands; this file then
//! goes away.

use serde::{Deserialize, Serialize};

use crate::resource::{Kinded, Resource, check_type_meta};
use crate::{ApiError, ObjectMeta, ResourceKind};

macro_rules! pending_kind {
    ($($ty:ident),* $(,)?) => {$(
        #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $ty {
            pub api_version: String,
            pub kind: String,
            #[serde(default)]
            pub metadata: ObjectMeta,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub spec: Option<serde_json::Value>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub status: Option<serde_json::Value>,
        }

        impl Default for $ty {
            fn default() -> Self {
                $ty {
                    api_version: crate::API_VERSION.to_string(),
                    kind: ResourceKind::$ty.name().to_string(),
                    metadata: ObjectMeta::default(),
                    spec: None,
                    status: None,
                }
            }
        }

        impl Resource for $ty {
            fn kind(&self) -> ResourceKind { ResourceKind::$ty }
            fn metadata(&self) -> &ObjectMeta { &self.metadata }
            fn metadata_mut(&mut self) -> &mut ObjectMeta { &mut self.metadata }
            fn apply_defaults(&mut self) {}
            fn validate(&self) -> Result<(), ApiError> {
                check_type_meta(ResourceKind::$ty, &self.api_version, &self.kind)
            }
        }

        impl Kinded for $ty {
            const KIND: ResourceKind = ResourceKind::$ty;
        }
    )*};
}

pending_kind!(WorkloadEndpoint, HostEndpoint,);
