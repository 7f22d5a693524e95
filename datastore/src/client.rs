//! Typed resource operations on top of a [`Backend`], with the rules Calico's client applies:
//! defaults and validation before every write, `uid` and `creationTimestamp` set on create,
//! `resourceVersion` required on update and delete-by-revision, and the checks that need
//! other stored resources (an IP pool may not overlap another; its CIDR and block size may not
//! change).

use std::sync::Arc;

use api::ippool::IPPool;
use api::{FieldError, Resource, ResourceKind};
use ipnetwork::IpNetwork;

use crate::codec::{decode, encode};
use crate::{Backend, Error, Key, ListKey, ResourceKey, Revision};

/// Typed access to stored resources. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    backend: Arc<dyn Backend>,
}

impl Client {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Client { backend }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Connect to the datastore `config` names.
    pub async fn connect(config: &crate::config::DatastoreConfig) -> Result<Self, Error> {
        match config {
            crate::config::DatastoreConfig::Etcd(etcd) => Ok(Client::new(Arc::new(
                crate::etcd::EtcdBackend::connect(etcd).await?,
            ))),
            crate::config::DatastoreConfig::Kubernetes { .. } => Err(Error::Config(
                "datastoreType 'kubernetes' is not supported yet; set DATASTORE_TYPE=etcdv3 \
                 and ETCD_ENDPOINTS"
                    .into(),
            )),
        }
    }

    /// What Calico's client makes sure exists before the first write: ClusterInformation
    /// `default` (a cluster GUID, `datastoreReady: true`) and the tiers `default` (order
    /// 1,000,000, default action Deny), `kube-admin` (1,000, Pass) and `kube-baseline`
    /// (10,000,000, Pass). Existing ones are left as they are; a racing creator wins.
    pub async fn ensure_initialized(
        &self,
        calico_version: &str,
        cluster_type: &str,
    ) -> Result<(), Error> {
        // Go's `omitempty`: empty version and type are not written.
        let mut info = serde_json::json!({
            "clusterGUID": uuid::Uuid::new_v4().simple().to_string(),
            "datastoreReady": true,
        });
        for (field, value) in [
            ("calicoVersion", calico_version),
            ("clusterType", cluster_type),
        ] {
            if !value.is_empty() {
                info[field] = value.into();
            }
        }
        let mut wanted = vec![serde_json::json!({
            "apiVersion": api::API_VERSION,
            "kind": "ClusterInformation",
            "metadata": { "name": "default" },
            "spec": info,
        })];
        for (name, order, action) in api::tier::BUILT_IN {
            wanted.push(serde_json::json!({
                "apiVersion": api::API_VERSION,
                "kind": "Tier",
                "metadata": { "name": name },
                "spec": { "order": order, "defaultAction": action },
            }));
        }
        for value in wanted {
            let r = api::AnyResource::from_value(value)?;
            match self.create(&r).await {
                Ok(_) | Err(Error::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Create a resource that must not exist yet. Returns it as stored, with defaults, uid,
    /// creation timestamp and resourceVersion.
    pub async fn create<R: Resource>(&self, resource: &R) -> Result<R, Error> {
        let mut r = resource.clone();
        if let Some(rv) = &r.metadata().resource_version {
            return Err(invalid_field(
                &r,
                "metadata.resourceVersion",
                rv,
                "must not be set on create",
            ));
        }
        r.apply_defaults();
        r.validate()?;
        let key = resource_key(&r)?;
        self.check_with_store(&r, None).await?;
        let meta = r.metadata_mut();
        if meta.uid.is_none() {
            meta.uid = Some(uuid::Uuid::new_v4().to_string());
        }
        if meta.creation_timestamp.is_none() {
            // Kubernetes' metav1.Time: RFC 3339 in UTC, whole seconds.
            meta.creation_timestamp =
                Some(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        let revision = self
            .backend
            .create(&Key::Resource(key), encode(&r)?, None)
            .await?;
        r.metadata_mut().resource_version = Some(revision.to_string());
        Ok(r)
    }

    /// Replace a resource at the revision in its `resourceVersion`: a stale revision is
    /// [`Error::Conflict`]. As in Calico, `uid` and `creationTimestamp` must be carried over
    /// from the stored resource.
    pub async fn update<R: Resource>(&self, resource: &R) -> Result<R, Error> {
        let mut r = resource.clone();
        let Some(rv) = r.metadata().resource_version.clone() else {
            return Err(invalid_field(
                &r,
                "metadata.resourceVersion",
                "",
                "must be set on update",
            ));
        };
        let expected: Revision = rv.parse()?;
        for (field, missing) in [
            ("metadata.uid", r.metadata().uid.is_none()),
            (
                "metadata.creationTimestamp",
                r.metadata().creation_timestamp.is_none(),
            ),
        ] {
            if missing {
                return Err(invalid_field(&r, field, "", "must be set on update"));
            }
        }
        r.apply_defaults();
        r.validate()?;
        let key = Key::Resource(resource_key(&r)?);
        if needs_old_for_update(r.kind()) {
            let old: R = self.get(&resource_key(&r)?).await?;
            if old.metadata().resource_version != r.metadata().resource_version {
                return Err(Error::Conflict(key));
            }
            self.check_with_store(&r, Some(&old)).await?;
        }
        let revision = self.backend.update(&key, encode(&r)?, expected).await?;
        r.metadata_mut().resource_version = Some(revision.to_string());
        Ok(r)
    }

    /// The resource at `key` ([`Error::NotFound`] if absent).
    pub async fn get<R: Resource>(&self, key: &ResourceKey) -> Result<R, Error> {
        let k = Key::Resource(key.clone());
        match self.backend.get(&k).await? {
            Some(kv) => decode(&kv),
            None => Err(Error::NotFound(k)),
        }
    }

    /// Every resource in `list` and the revision of the read. A stored value that does not
    /// decode is logged and left out, as Calico's etcd backend does when listing: one bad
    /// entry must not hide the others (or block every pool create's overlap check).
    pub async fn list<R: Resource>(&self, list: &ListKey) -> Result<(Vec<R>, Revision), Error> {
        let listing = self.backend.list(list).await?;
        let items = listing
            .items
            .iter()
            .filter_map(|kv| match decode(kv) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(key = %kv.key, error = %e, "skipping undecodable datastore entry");
                    None
                }
            })
            .collect();
        Ok((items, listing.revision))
    }

    /// Delete the resource at `key`, only at `revision` when given. Returns what was deleted.
    pub async fn delete<R: Resource>(
        &self,
        key: &ResourceKey,
        revision: Option<Revision>,
    ) -> Result<R, Error> {
        let kv = self
            .backend
            .delete(&Key::Resource(key.clone()), revision)
            .await?;
        decode(&kv)
    }

    /// Checks that need other stored resources (Calico's clientv3 makes these for IP pools).
    async fn check_with_store<R: Resource>(&self, new: &R, old: Option<&R>) -> Result<(), Error> {
        if new.kind() != ResourceKind::IPPool {
            return Ok(());
        }
        let new = as_pool(new)?;
        let cidr: IpNetwork = parse_cidr(&new)?;
        let mut errors = Vec::new();
        match old {
            Some(old) => {
                let old = as_pool(old)?;
                // Calico: "IPPool CIDR cannot be modified", "IPPool BlockSize cannot be modified".
                if parse_cidr(&old).ok() != Some(cidr) {
                    errors.push(FieldError::new(
                        "spec.cidr",
                        &new.spec.cidr,
                        format!("IPPool CIDR cannot be modified (was {})", old.spec.cidr),
                    ));
                }
                if old.spec.block_size != new.spec.block_size {
                    errors.push(FieldError::new(
                        "spec.blockSize",
                        opt(new.spec.block_size),
                        format!(
                            "IPPool BlockSize cannot be modified (was {})",
                            opt(old.spec.block_size)
                        ),
                    ));
                }
            }
            None => {
                // Calico checks overlap on create only; a pool's CIDR cannot change afterwards.
                // As in Calico, the list and the create are separate requests, so two
                // overlapping pools created at the same instant can both succeed.
                let (pools, _) = self
                    .list::<IPPool>(&ListKey::kind(ResourceKind::IPPool))
                    .await?;
                for other in pools
                    .iter()
                    .filter(|p| p.metadata.name != new.metadata.name)
                {
                    let Ok(other_cidr) = parse_cidr(other) else {
                        continue;
                    };
                    if other_cidr.contains(cidr.network()) || cidr.contains(other_cidr.network()) {
                        errors.push(FieldError::new(
                            "spec.cidr",
                            &new.spec.cidr,
                            format!(
                                "IPPool({}) CIDR overlaps with IPPool({}) CIDR {}",
                                new.metadata.name, other.metadata.name, other.spec.cidr
                            ),
                        ));
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(api::ApiError::Validation {
                kind: ResourceKind::IPPool,
                name: new.metadata.name.clone(),
                errors,
            }
            .into())
        }
    }
}

/// Kinds whose update must see the stored version first.
fn needs_old_for_update(kind: ResourceKind) -> bool {
    kind == ResourceKind::IPPool
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn as_pool<R: Resource>(r: &R) -> Result<IPPool, Error> {
    let value = serde_json::to_value(r).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(api::resource::from_value(
        Some(ResourceKind::IPPool),
        value,
    )?)
}

fn parse_cidr(pool: &IPPool) -> Result<IpNetwork, Error> {
    api::net::parse_cidr(&pool.spec.cidr).ok_or_else(|| {
        api::ApiError::Validation {
            kind: ResourceKind::IPPool,
            name: pool.metadata.name.clone(),
            errors: vec![FieldError::new(
                "spec.cidr",
                &pool.spec.cidr,
                "invalid CIDR",
            )],
        }
        .into()
    })
}

fn invalid_field<R: Resource>(r: &R, field: &str, value: &str, reason: &str) -> Error {
    api::ApiError::Validation {
        kind: r.kind(),
        name: r.metadata().name.clone(),
        errors: vec![FieldError::new(field, value, reason)],
    }
    .into()
}

/// Where a resource is stored: its kind, its namespace if the kind has them, its name.
pub fn resource_key<R: Resource>(r: &R) -> Result<ResourceKey, Error> {
    let kind = r.kind();
    let meta = r.metadata();
    if meta.name.is_empty() {
        return Err(invalid_field(r, "metadata.name", "", "name is required"));
    }
    match (kind.namespaced(), meta.namespace.as_deref()) {
        (true, None | Some("")) => Err(invalid_field(
            r,
            "metadata.namespace",
            "",
            "namespace is required for this kind",
        )),
        (false, Some(ns)) if !ns.is_empty() => Err(invalid_field(
            r,
            "metadata.namespace",
            ns,
            "this kind is not namespaced",
        )),
        (_, ns) => Ok(ResourceKey::new(kind, ns, &meta.name)),
    }
}
