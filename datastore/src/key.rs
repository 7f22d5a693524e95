//! What is stored, named independently of the backend, and where Calico keeps it in etcd.

use std::fmt;

use api::ResourceKind;

/// Calico's etcd prefix for v3 resources.
pub const RESOURCE_PREFIX: &str = "/calico/resources/v3/projectcalico.org/";

/// One stored object. IPAM keys (blocks, affinities, handles) join with the IPAM issue.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Resource(ResourceKey),
}

/// A v3 resource: kind, namespace (for namespaced kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    pub kind: ResourceKind,
    pub namespace: Option<String>,
    pub name: String,
}

/// A set of stored objects to list or watch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListKey {
    /// Every resource of a kind; for a namespaced kind, in one namespace or (None) in all.
    Resources {
        kind: ResourceKind,
        namespace: Option<String>,
    },
}

impl ResourceKey {
    pub fn new(kind: ResourceKind, namespace: Option<&str>, name: &str) -> Self {
        ResourceKey {
            kind,
            namespace: if kind.namespaced() {
                namespace.map(str::to_string)
            } else {
                None
            },
            name: name.to_string(),
        }
    }
}

/// As Calico prints a resource key in errors: `IPPool(pool1)`, `NetworkPolicy(ns1/allow-dns)`.
impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}({}/{})", self.kind, ns, self.name),
            None => write!(f, "{}({})", self.kind, self.name),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Resource(k) => k.fmt(f),
        }
    }
}

impl From<ResourceKey> for Key {
    fn from(k: ResourceKey) -> Self {
        Key::Resource(k)
    }
}

impl Key {
    /// The etcd key Calico uses:
    /// `/calico/resources/v3/projectcalico.org/<plural>/[<namespace>/]<name>`.
    pub fn etcd_path(&self) -> String {
        match self {
            Key::Resource(k) => match &k.namespace {
                Some(ns) => format!("{RESOURCE_PREFIX}{}/{}/{}", k.kind.plural(), ns, k.name),
                None => format!("{RESOURCE_PREFIX}{}/{}", k.kind.plural(), k.name),
            },
        }
    }

    /// The key an etcd path names, or None for paths that are not ours (or malformed).
    pub fn from_etcd_path(path: &str) -> Option<Key> {
        let rest = path.strip_prefix(RESOURCE_PREFIX)?;
        let mut parts = rest.split('/');
        let kind = ResourceKind::from_plural(parts.next()?)?;
        let (namespace, name) = if kind.namespaced() {
            (Some(parts.next()?.to_string()), parts.next()?)
        } else {
            (None, parts.next()?)
        };
        if name.is_empty() || parts.next().is_some() || namespace.as_deref() == Some("") {
            return None;
        }
        Some(Key::Resource(ResourceKey {
            kind,
            namespace,
            name: name.to_string(),
        }))
    }
}

impl ListKey {
    pub fn kind(kind: ResourceKind) -> Self {
        ListKey::Resources {
            kind,
            namespace: None,
        }
    }

    /// The etcd prefix holding exactly the listed keys (ends with `/`, so `ippools/` never
    /// matches a sibling plural that starts the same).
    pub fn etcd_prefix(&self) -> String {
        match self {
            ListKey::Resources {
                kind,
                namespace: Some(ns),
            } if kind.namespaced() => {
                format!("{RESOURCE_PREFIX}{}/{}/", kind.plural(), ns)
            }
            ListKey::Resources { kind, .. } => format!("{RESOURCE_PREFIX}{}/", kind.plural()),
        }
    }

    /// Whether `key` is in this set.
    pub fn contains(&self, key: &Key) -> bool {
        match (self, key) {
            (ListKey::Resources { kind, namespace }, Key::Resource(k)) => {
                k.kind == *kind
                    && (namespace.is_none() || !kind.namespaced() || k.namespace == *namespace)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calico_paths() {
        let pool = Key::Resource(ResourceKey::new(ResourceKind::IPPool, None, "pool1"));
        assert_eq!(
            pool.etcd_path(),
            "/calico/resources/v3/projectcalico.org/ippools/pool1"
        );
        let np = Key::Resource(ResourceKey::new(
            ResourceKind::NetworkPolicy,
            Some("ns1"),
            "p",
        ));
        assert_eq!(
            np.etcd_path(),
            "/calico/resources/v3/projectcalico.org/networkpolicies/ns1/p"
        );
        let filter = Key::Resource(ResourceKey::new(ResourceKind::BGPFilter, None, "f"));
        assert_eq!(
            filter.etcd_path(),
            "/calico/resources/v3/projectcalico.org/bgpfilters/f"
        );
        for k in [pool, np, filter] {
            assert_eq!(Key::from_etcd_path(&k.etcd_path()), Some(k));
        }
    }

    #[test]
    fn foreign_paths_are_not_keys() {
        for p in [
            "/calico/ipam/v2/config",
            "/calico/resources/v3/projectcalico.org/ippools/",
            "/calico/resources/v3/projectcalico.org/ippools/a/b",
            "/calico/resources/v3/projectcalico.org/networkpolicies/ns",
            "/calico/resources/v3/projectcalico.org/unknown/x",
        ] {
            assert_eq!(Key::from_etcd_path(p), None, "{p}");
        }
    }

    #[test]
    fn list_prefixes() {
        assert_eq!(
            ListKey::kind(ResourceKind::IPPool).etcd_prefix(),
            "/calico/resources/v3/projectcalico.org/ippools/"
        );
        let ns = ListKey::Resources {
            kind: ResourceKind::WorkloadEndpoint,
            namespace: Some("default".into()),
        };
        assert_eq!(
            ns.etcd_prefix(),
            "/calico/resources/v3/projectcalico.org/workloadendpoints/default/"
        );
    }
}
