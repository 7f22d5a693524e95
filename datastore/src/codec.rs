//! The JSON Calico stores for a resource, and back.
//!
//! Calico's etcd backend stores the whole v3 object without `resourceVersion` or `selfLink`
//! (the revision is the key's `mod_revision`). Since Calico 3.30 it also records a policy's
//! name in the `projectcalico.org/metadata` annotation of NetworkPolicy and
//! GlobalNetworkPolicy values and strips it again on read; we do the same so either side can
//! read what the other wrote.

use api::{Resource, ResourceKind};
use serde_json::Value;

use crate::{Error, KvPair};

/// The annotation Calico's etcd backend uses to carry a policy's v3 name.
const POLICY_METADATA_ANNOTATION: &str = "projectcalico.org/metadata";

fn carries_policy_name(kind: ResourceKind) -> bool {
    matches!(
        kind,
        ResourceKind::NetworkPolicy | ResourceKind::GlobalNetworkPolicy
    )
}

/// The bytes to store for `resource`.
pub fn encode<R: Resource>(resource: &R) -> Result<Vec<u8>, Error> {
    let mut r = resource.clone();
    let kind = r.kind();
    let meta = r.metadata_mut();
    meta.resource_version = None;
    meta.self_link = None;
    if carries_policy_name(kind) {
        let name = serde_json::json!({ "name": meta.name }).to_string();
        meta.annotations
            .get_or_insert_with(Default::default)
            .insert(POLICY_METADATA_ANNOTATION.to_string(), name);
    }
    serde_json::to_vec(&r).map_err(|e| Error::Invalid(format!("cannot encode {kind}: {e}")))
}

/// The resource stored in `kv`, with `resourceVersion` set from the key's revision.
pub fn decode<R: Resource>(kv: &KvPair) -> Result<R, Error> {
    let decode_err = |reason: String| Error::Decode {
        key: kv.key.clone(),
        reason,
    };
    let mut value: Value =
        serde_json::from_slice(&kv.value).map_err(|e| decode_err(e.to_string()))?;
    let crate::Key::Resource(key) = &kv.key else {
        return Err(decode_err("not a v3 resource".into()));
    };
    if carries_policy_name(key.kind) {
        restore_policy_name(&mut value).map_err(decode_err)?;
    }
    // Not user input: a value written by another Calico version may carry fields we do not
    // know, which Calico's own `json.Unmarshal` skips too.
    let mut r: R = api::resource::from_stored_value(Some(key.kind), value)
        .map_err(|e| decode_err(e.to_string()))?;
    if r.kind() != key.kind {
        return Err(decode_err(format!(
            "stored kind is {}, key says {}",
            r.kind(),
            key.kind
        )));
    }
    r.metadata_mut().resource_version = Some(kv.revision.to_string());
    Ok(r)
}

/// Take the policy name out of Calico's metadata annotation and drop the annotation (and the
/// annotations map, if that was its only entry, as Go's `omitempty` would).
fn restore_policy_name(value: &mut Value) -> Result<(), String> {
    let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let Some(stored) = annotations.remove(POLICY_METADATA_ANNOTATION) else {
        return Ok(());
    };
    let empty = annotations.is_empty();
    let stored: Value = stored
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| format!("annotation {POLICY_METADATA_ANNOTATION} is not JSON"))?;
    if empty {
        meta.remove("annotations");
    }
    if let Some(name) = stored.get("name").and_then(Value::as_str) {
        meta.insert("name".to_string(), Value::String(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Key, ResourceKey, Revision};
    use api::{AnyResource, ObjectMeta};

    #[test]
    fn stored_without_resource_version_and_read_back_with_it() {
        let mut pool = AnyResource::new_named(ResourceKind::IPPool, None, "p1");
        pool.metadata_mut().resource_version = Some("7".into());
        pool.metadata_mut().uid = Some("u".into());
        let bytes = encode(&pool).unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            json["metadata"],
            serde_json::json!({"name": "p1", "uid": "u"})
        );
        let kv = KvPair {
            key: Key::Resource(ResourceKey::new(ResourceKind::IPPool, None, "p1")),
            value: bytes,
            revision: Revision(42),
            lease: None,
        };
        let back: AnyResource = decode(&kv).unwrap();
        assert_eq!(back.metadata().resource_version.as_deref(), Some("42"));
        assert_eq!(back.metadata().name, "p1");
    }

    #[test]
    fn policy_name_annotation_round_trip() {
        let mut gnp = AnyResource::new_named(ResourceKind::GlobalNetworkPolicy, None, "allow");
        *gnp.metadata_mut() = ObjectMeta::named("allow");
        let bytes = encode(&gnp).unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            json["metadata"]["annotations"]["projectcalico.org/metadata"],
            serde_json::json!("{\"name\":\"allow\"}")
        );
        let kv = KvPair {
            key: Key::Resource(ResourceKey::new(
                ResourceKind::GlobalNetworkPolicy,
                None,
                "allow",
            )),
            value: bytes,
            revision: Revision(3),
            lease: None,
        };
        let back: AnyResource = decode(&kv).unwrap();
        assert_eq!(back.metadata().annotations, None);
        assert_eq!(back.metadata().name, "allow");
    }

    #[test]
    fn stored_value_with_fields_we_do_not_know_decodes() {
        // As a newer Calico might write it: `colour` and `futureField` are not ours.
        let stored = serde_json::json!({
            "apiVersion": "projectcalico.org/v3",
            "kind": "IPPool",
            "metadata": {"name": "p1", "uid": "u1", "futureField": {"a": 1}},
            "spec": {"cidr": "10.1.0.0/16", "blockSize": 26, "natOutgoing": true, "colour": "blue"},
        });
        let kv = KvPair {
            key: Key::Resource(ResourceKey::new(ResourceKind::IPPool, None, "p1")),
            value: serde_json::to_vec(&stored).unwrap(),
            revision: Revision(9),
            lease: None,
        };
        let pool: api::ippool::IPPool = decode(&kv).unwrap();
        assert_eq!(pool.metadata.name, "p1");
        assert_eq!(pool.metadata.uid.as_deref(), Some("u1"));
        assert_eq!(pool.metadata.resource_version.as_deref(), Some("9"));
        assert_eq!(pool.spec.cidr, "10.1.0.0/16");
        assert_eq!(pool.spec.block_size, Some(26));
        assert_eq!(pool.spec.nat_outgoing, Some(true));
        let any: AnyResource = decode(&kv).unwrap();
        assert_eq!(any, AnyResource::IPPool(pool));
        // The same document as user input is refused.
        assert!(AnyResource::from_value(stored).is_err());
    }
}
