//! The [`Resource`] trait every kind implements, and [`AnyResource`], one resource of any kind
//! as read from a user's file or from the datastore.

use std::any::{Any, TypeId};
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

/// Deserialize a resource from user input (a JSON value, also what YAML parses to): a bad
/// field or a field the type does not know is an error naming its path, as calicoctl refuses
/// them. The api types themselves accept unknown fields (see [`from_stored_value`]); this is
/// where strictness lives. `R = AnyResource` dispatches on `kind` ([`AnyResource::from_value`]).
pub fn from_value<R: DeserializeOwned + 'static>(
    kind: Option<ResourceKind>,
    value: serde_json::Value,
) -> Result<R, ApiError> {
    if is_any_resource::<R>() {
        return AnyResource::from_value(value).map(downcast);
    }
    let (r, unknown) = deserialize(kind, value)?;
    match unknown.into_iter().next() {
        None => Ok(r),
        Some(field) => Err(ApiError::Parse {
            kind,
            message: format!("unknown field `{}`", field.name),
            path: field.path,
        }),
    }
}

/// Deserialize a resource stored by Calico (or another version of us): as Go's
/// `json.Unmarshal`, fields the type does not know are skipped, so a value written by a newer
/// Calico still reads. A bad value in a known field is still an error naming its path.
/// `R = AnyResource` dispatches on `kind` ([`AnyResource::from_stored_value`]).
pub fn from_stored_value<R: DeserializeOwned + 'static>(
    kind: Option<ResourceKind>,
    value: serde_json::Value,
) -> Result<R, ApiError> {
    if is_any_resource::<R>() {
        return AnyResource::from_stored_value(value).map(downcast);
    }
    deserialize(kind, value).map(|(r, _)| r)
}

/// Whether `R` is [`AnyResource`], whose `Deserialize` impl is always strict (it cannot know
/// which path it was called from), so the generic readers must go to its own constructors.
fn is_any_resource<R: 'static>() -> bool {
    TypeId::of::<R>() == TypeId::of::<AnyResource>()
}

/// `r` as `R`, which [`is_any_resource`] has shown to be `AnyResource`.
fn downcast<R: 'static>(r: AnyResource) -> R {
    *(Box::new(r) as Box<dyn Any>)
        .downcast::<R>()
        .expect("R is AnyResource")
}

/// A field in a document that the type it was read into does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
struct UnknownField {
    /// Where, as `serde_path_to_error` prints paths: `spec.ingress[0].destination.bogus`.
    path: String,
    /// The field's own name: `bogus`.
    name: String,
}

/// Deserialize `value`, returning the fields that serde skipped, in document order.
///
/// `serde_ignored` reports a field when a derived `Deserialize` skips it. It cannot see into
/// a value a `Deserialize` impl buffers first (serde's `untagged`, internally tagged and
/// `flatten` content, a `serde_json::Value`). The api types use no `untagged`, tagged or
/// `flatten` serde attributes; a new one would make its fields lenient on both paths. The
/// buffering types are `AnyResource` (buffers to find its `kind`, then reads strictly itself)
/// and free-form `serde_json::Value` fields such as `IPPool.status`, where any field is valid.
/// The hand-written impls (ports, protocols, ASNs, DSCP, durations, orders) read scalars only
/// and refuse a map, so they have no unknown fields to hide.
fn deserialize<R: DeserializeOwned>(
    kind: Option<ResourceKind>,
    value: serde_json::Value,
) -> Result<(R, Vec<UnknownField>), ApiError> {
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path| unknown.push(unknown_field(&path));
    let r = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut note))
        .map_err(|e| {
            let path = e.path().to_string();
            ApiError::Parse {
                kind,
                path: if path == "." { String::new() } else { path },
                message: e.into_inner().to_string(),
            }
        })?;
    Ok((r, unknown))
}

/// `serde_ignored`'s path in `serde_path_to_error`'s notation. Its own `Display` writes
/// `spec.?.ingress.0.?.bogus` (a `?` for each `Option`/newtype, sequence indices as keys);
/// users' errors name fields as `spec.ingress[0].bogus`.
fn unknown_field(path: &serde_ignored::Path) -> UnknownField {
    fn walk(path: &serde_ignored::Path, out: &mut String) {
        use serde_ignored::Path;
        match path {
            Path::Root => {}
            Path::Seq { parent, index } => {
                walk(parent, out);
                out.push_str(&format!("[{index}]"));
            }
            Path::Map { parent, key } => {
                walk(parent, out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => walk(parent, out),
        }
    }
    let mut text = String::new();
    walk(path, &mut text);
    let name = match path {
        serde_ignored::Path::Map { key, .. } => key.clone(),
        _ => text.clone(),
    };
    UnknownField { path: text, name }
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
                let k = Self::checked_kind(&value)?;
                match k {
                    $(ResourceKind::$variant => Ok(AnyResource::$variant(from_value(Some(k), value)?)),)*
                }
            }

            /// Read one resource as stored in the datastore: as [`AnyResource::from_value`],
            /// but fields we do not know (written by another Calico version) are skipped.
            pub fn from_stored_value(value: serde_json::Value) -> Result<AnyResource, ApiError> {
                let k = Self::checked_kind(&value)?;
                match k {
                    $(ResourceKind::$variant => Ok(AnyResource::$variant(from_stored_value(Some(k), value)?)),)*
                }
            }

            /// The kind `value` says it is, after checking `kind` and `apiVersion`.
            fn checked_kind(value: &serde_json::Value) -> Result<ResourceKind, ApiError> {
                let kind = match value.get("kind") {
                    None | Some(serde_json::Value::Null) => return Err(ApiError::MissingKind),
                    Some(serde_json::Value::String(k)) => k.clone(),
                    Some(other) => return Err(ApiError::UnknownKind(other.to_string())),
                };
                let api_version = match value.get("apiVersion") {
                    Some(serde_json::Value::String(v)) => v.as_str(),
                    _ => "",
                };
                let Some(k) = ResourceKind::from_name(&kind) else {
                    return Err(ApiError::UnknownKind(kind));
                };
                check_type_meta(k, api_version, &kind)?;
                Ok(k)
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

/// Strict, as [`AnyResource::from_value`]: this is how a list of user documents reads. The
/// value is buffered to find its `kind`, so a `serde_ignored` wrapper around this impl sees no
/// unknown fields; the strict check happens inside.
impl<'de> Deserialize<'de> for AnyResource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        AnyResource::from_value(value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::GlobalNetworkPolicy;
    use serde_json::json;

    fn gnp(rule: serde_json::Value) -> serde_json::Value {
        json!({
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "p"},
            "spec": {"ingress": [rule]},
        })
    }

    fn parse_path_and_message(e: ApiError) -> (String, String) {
        match e {
            ApiError::Parse { path, message, .. } => (path, message),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn strict_refuses_an_unknown_nested_field_lenient_skips_it() {
        let doc = gnp(json!({"action": "Allow", "destination": {"ports": [22], "bogus": 1}}));
        let (path, message) = parse_path_and_message(
            AnyResource::from_value(doc.clone()).expect_err("strict read refuses `bogus`"),
        );
        assert_eq!(path, "spec.ingress[0].destination.bogus");
        assert_eq!(message, "unknown field `bogus`");
        let typed =
            from_value::<GlobalNetworkPolicy>(Some(ResourceKind::GlobalNetworkPolicy), doc.clone());
        assert_eq!(
            parse_path_and_message(typed.unwrap_err()).0,
            "spec.ingress[0].destination.bogus"
        );

        let AnyResource::GlobalNetworkPolicy(p) =
            AnyResource::from_stored_value(doc.clone()).unwrap()
        else {
            panic!("not a GlobalNetworkPolicy");
        };
        let ingress = p.spec.ingress.as_ref().unwrap();
        assert_eq!(
            ingress[0]
                .destination
                .as_ref()
                .unwrap()
                .ports
                .as_ref()
                .unwrap()
                .len(),
            1
        );
        let generic: AnyResource = from_stored_value(None, doc.clone()).unwrap();
        assert_eq!(generic, AnyResource::GlobalNetworkPolicy(p.clone()));
        let typed: GlobalNetworkPolicy = from_stored_value(None, doc).unwrap();
        assert_eq!(typed, p);
    }

    #[test]
    fn unknown_field_paths_in_metadata_and_top_level() {
        let mut doc = gnp(json!({"action": "Allow"}));
        doc["metadata"]["colour"] = json!("red");
        let (path, message) =
            parse_path_and_message(AnyResource::from_value(doc.clone()).unwrap_err());
        assert_eq!(
            (path.as_str(), message.as_str()),
            ("metadata.colour", "unknown field `colour`")
        );
        assert!(AnyResource::from_stored_value(doc).is_ok());

        let mut doc = gnp(json!({"action": "Allow"}));
        doc["extra"] = json!({"a": [1, 2]});
        let (path, _) = parse_path_and_message(AnyResource::from_value(doc.clone()).unwrap_err());
        assert_eq!(path, "extra");
        assert!(AnyResource::from_stored_value(doc).is_ok());
    }

    #[test]
    fn lenient_still_refuses_bad_known_fields() {
        // Values read by hand-written `Deserialize` impls (ports, protocols, ASNs) and enums
        // keep their checks on the stored path.
        for (rule, path) in [
            (
                json!({"action": "Allow", "destination": {"ports": ["1:2:3"]}}),
                "spec.ingress[0].destination.ports[0]",
            ),
            (
                json!({"action": "Allow", "destination": {"ports": [{"port": 1}]}}),
                "spec.ingress[0].destination.ports[0]",
            ),
            (
                json!({"action": "Allow", "protocol": {"name": "TCP"}}),
                "spec.ingress[0].protocol",
            ),
            (
                json!({"action": "Allow", "protocol": 300}),
                "spec.ingress[0].protocol",
            ),
            (json!({"action": "Drop"}), "spec.ingress[0].action"),
        ] {
            let e = AnyResource::from_stored_value(gnp(rule.clone())).expect_err(&rule.to_string());
            assert_eq!(parse_path_and_message(e).0, path, "{rule}");
        }
        let peer = json!({
            "apiVersion": "projectcalico.org/v3",
            "kind": "BGPPeer",
            "metadata": {"name": "p"},
            "spec": {"asNumber": "1.x", "unknownToUs": true},
        });
        let (path, message) =
            parse_path_and_message(AnyResource::from_stored_value(peer).unwrap_err());
        assert_eq!(path, "spec.asNumber");
        assert!(message.starts_with("invalid AS number"), "{message}");
    }

    #[test]
    fn any_resource_deserialize_is_strict() {
        let doc = gnp(json!({"action": "Allow", "bogus": 1}));
        let e = serde_json::from_value::<Vec<AnyResource>>(json!([doc.clone()])).unwrap_err();
        assert!(e.to_string().contains("unknown field `bogus`"), "{e}");
        let (path, _) = parse_path_and_message(from_value::<AnyResource>(None, doc).unwrap_err());
        assert_eq!(path, "spec.ingress[0].bogus");
    }
}
