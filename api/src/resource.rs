//! The [`Resource`] trait every kind implements, and [`AnyResource`], one resource of any kind
//! as read from a user's file or from the datastore.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{ApiError, ObjectMeta, ResourceKind};

/// What every `projectcalico.org/v3` resource type offers.
pub trait Resource:
    Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static
{
    /// The resource's kind.
    fn kind(&self) -> ResourceKind;
    fn metadata(&self) -> &ObjectMeta;
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
    /// Fill in Calico's defaults for fields the user left out (what `calicoctl get -o yaml`
    /// shows that the user did not write). Idempotent.
    fn apply_defaults(&mut self);
    /// Calico's validation of this resource on its own (names, CIDRs, enums, selectors, ...).
    /// Checks that need other resources are the caller's.
    fn validate(&self) -> Result<(), ApiError>;
}

/// A resource type that is one kind, known at compile time.
pub trait Kinded: Resource {
    const KIND: ResourceKind;
}

/// Deserialize a resource from a JSON value, naming the path of a bad or unknown field.
pub fn from_value<R: DeserializeOwned>(
    kind: Option<ResourceKind>,
    value: serde_json::Value,
) -> Result<R, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ApiError::Parse {
            kind,
            path: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

/// Check the `apiVersion` and `kind` fields of a typed resource.
pub(crate) fn check_type_meta(
    expected: ResourceKind,
    api_version: &str,
    kind: &str,
) -> Result<(), ApiError> {
    if kind != expected.name() {
        return Err(ApiError::UnknownKind(kind.to_string()));
    }
    if api_version != crate::API_VERSION {
        return Err(ApiError::BadApiVersion {
            kind: kind.to_string(),
            api_version: api_version.to_string(),
        });
    }
    Ok(())
}

macro_rules! any_resource {
    ($($variant:ident => $ty:path),* $(,)?) => {
        /// One resource of any kind. Serialises exactly as the inner resource; deserialises by
        /// its `kind` field.
        #[derive(Clone, Debug, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum AnyResource {
            $($variant($ty),)*
        }

        $(
            impl From<$ty> for AnyResource {
                fn from(r: $ty) -> Self {
                    AnyResource::$variant(r)
                }
            }
        )*

        impl AnyResource {
            /// Read one resource from a JSON value (also what YAML parses to), dispatching on
            /// `kind` and checking `apiVersion`. Unknown fields are an error naming their path.
            pub fn from_value(value: serde_json::Value) -> Result<AnyResource, ApiError> {
                let kind = match value.get("kind") {
                    None | Some(serde_json::Value::Null) => return Err(ApiError::MissingKind),
                    Some(serde_json::Value::String(k)) => k.clone(),
                    Some(other) => return Err(ApiError::UnknownKind(other.to_string())),
                };
                let api_version = match value.get("apiVersion") {
                    Some(serde_json::Value::String(v)) => v.clone(),
                    _ => String::new(),
                };
                let Some(k) = ResourceKind::from_name(&kind) else {
                    return Err(ApiError::UnknownKind(kind));
                };
                check_type_meta(k, &api_version, &kind)?;
                match k {
                    $(ResourceKind::$variant => Ok(AnyResource::$variant(from_value(Some(k), value)?)),)*
                }
            }

            /// An empty resource of `kind` with the given identity, e.g. to name what to
            /// delete or get from the command line.
            pub fn new_named(kind: ResourceKind, namespace: Option<String>, name: &str) -> AnyResource {
                let mut r = match kind {
                    $(ResourceKind::$variant => AnyResource::$variant(<$ty>::default()),)*
                };
                let m = r.metadata_mut();
                m.name = name.to_string();
                m.namespace = namespace;
                r
            }
        }

        impl Resource for AnyResource {
            fn kind(&self) -> ResourceKind {
                match self { $(AnyResource::$variant(r) => r.kind(),)* }
            }
            fn metadata(&self) -> &ObjectMeta {
                match self { $(AnyResource::$variant(r) => r.metadata(),)* }
            }
            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                match self { $(AnyResource::$variant(r) => r.metadata_mut(),)* }
            }
            fn apply_defaults(&mut self) {
                match self { $(AnyResource::$variant(r) => r.apply_defaults(),)* }
            }
            fn validate(&self) -> Result<(), ApiError> {
                match self { $(AnyResource::$variant(r) => r.validate(),)* }
            }
        }

        impl Serialize for AnyResource {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self { $(AnyResource::$variant(r) => r.serialize(s),)* }
            }
        }
    };
}

any_resource! {
    IPPool => crate::ippool::IPPool,
    IPReservation => crate::ipreservation::IPReservation,
    IPAMConfiguration => crate::ipam_config::IPAMConfiguration,
    BGPPeer => crate::bgp_peer::BGPPeer,
    BGPConfiguration => crate::bgp_configuration::BGPConfiguration,
    BGPFilter => crate::bgp_filter::BGPFilter,
    Node => crate::node::Node,
    WorkloadEndpoint => crate::workload_endpoint::WorkloadEndpoint,
    HostEndpoint => crate::host_endpoint::HostEndpoint,
    NetworkPolicy => crate::policy::NetworkPolicy,
    GlobalNetworkPolicy => crate::policy::GlobalNetworkPolicy,
    Tier => crate::tier::Tier,
    Profile => crate::profile::Profile,
    NetworkSet => crate::network_set::NetworkSet,
    GlobalNetworkSet => crate::network_set::GlobalNetworkSet,
    FelixConfiguration => crate::felix_configuration::FelixConfiguration,
    ClusterInformation => crate::cluster_information::ClusterInformation,
}

impl<'de> Deserialize<'de> for AnyResource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        AnyResource::from_value(value).map_err(serde::de::Error::custom)
    }
}
