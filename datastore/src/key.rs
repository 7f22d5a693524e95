//! What is stored, named independently of the backend, and where Calico keeps it in etcd.

use std::fmt;

use api::ResourceKind;
use ipnetwork::IpNetwork;

/// Calico's etcd prefix for v3 resources.
pub const RESOURCE_PREFIX: &str = "/calico/resources/v3/projectcalico.org/";
/// Calico's etcd prefix for IPAM state (not v3 resources; snake_case JSON).
pub const IPAM_PREFIX: &str = "/calico/ipam/v2/";

/// One stored object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Resource(ResourceKey),
    /// An allocation block, by its (masked) CIDR:
    /// `/calico/ipam/v2/assignment/ipv4/block/10.65.79.0-26`.
    Block(IpNetwork),
    /// A node's claim on a block: `/calico/ipam/v2/host/<node>/ipv4/block/10.65.79.0-26`.
    BlockAffinity {
        host: String,
        cidr: IpNetwork,
    },
    /// A handle (`k8s-pod-network.<containerID>`, ...): `/calico/ipam/v2/handle/<id>`.
    Handle(String),
    /// The IPAM settings `calicoctl ipam configure` writes: `/calico/ipam/v2/config`.
    IpamConfig,
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
    /// Every allocation block (both IP versions).
    Blocks,
    /// Every block affinity, or those of one node.
    BlockAffinities { host: Option<String> },
    /// Every handle.
    Handles,
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

/// Resource keys as [`ResourceKey`]; IPAM keys as Calico names them in its errors.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Resource(k) => k.fmt(f),
            Key::Block(cidr) => write!(f, "BlockKey(cidr={cidr})"),
            Key::BlockAffinity { host, cidr } => {
                write!(
                    f,
                    "BlockAffinityKey(cidr={cidr}, host={host}, affinityType=host)"
                )
            }
            Key::Handle(id) => write!(f, "IPAMHandleKey(id={id})"),
            Key::IpamConfig => f.write_str("IPAMConfigKey()"),
        }
    }
}

/// `10.65.79.0-26`: a CIDR as Calico writes it into a key (masked, `/` as `-`).
fn cidr_segment(cidr: &IpNetwork) -> String {
    format!("{}-{}", cidr.network(), cidr.prefix())
}

/// The inverse of [`cidr_segment`]; only masked CIDRs name keys.
fn parse_cidr_segment(s: &str) -> Option<IpNetwork> {
    let (ip, prefix) = s.split_once('-')?;
    let cidr = IpNetwork::new(ip.parse().ok()?, prefix.parse().ok()?).ok()?;
    (cidr.network() == cidr.ip()).then_some(cidr)
}

fn ip_version(cidr: &IpNetwork) -> u8 {
    if cidr.is_ipv4() { 4 } else { 6 }
}

/// Masks a CIDR's host bits: keys always name the network.
pub fn masked(cidr: IpNetwork) -> IpNetwork {
    IpNetwork::new(cidr.network(), cidr.prefix()).unwrap_or(cidr)
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
            Key::Block(cidr) => {
                let cidr = masked(*cidr);
                format!(
                    "{IPAM_PREFIX}assignment/ipv{}/block/{}",
                    ip_version(&cidr),
                    cidr_segment(&cidr)
                )
            }
            Key::BlockAffinity { host, cidr } => {
                let cidr = masked(*cidr);
                format!(
                    "{IPAM_PREFIX}host/{host}/ipv{}/block/{}",
                    ip_version(&cidr),
                    cidr_segment(&cidr)
                )
            }
            Key::Handle(id) => format!("{IPAM_PREFIX}handle/{id}"),
            Key::IpamConfig => format!("{IPAM_PREFIX}config"),
        }
    }

    /// The key an etcd path names, or None for paths that are not ours (or malformed).
    pub fn from_etcd_path(path: &str) -> Option<Key> {
        if let Some(rest) = path.strip_prefix(IPAM_PREFIX) {
            return Self::from_ipam_path(rest);
        }
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

impl Key {
    fn from_ipam_path(rest: &str) -> Option<Key> {
        let parts: Vec<&str> = rest.split('/').collect();
        let versioned = |v: &str, cidr: IpNetwork| v == format!("ipv{}", ip_version(&cidr));
        match parts.as_slice() {
            ["config"] => Some(Key::IpamConfig),
            ["handle", id] if !id.is_empty() => Some(Key::Handle(id.to_string())),
            ["assignment", v, "block", c] => {
                let cidr = parse_cidr_segment(c)?;
                versioned(v, cidr).then_some(Key::Block(cidr))
            }
            ["host", host, v, "block", c] if !host.is_empty() => {
                let cidr = parse_cidr_segment(c)?;
                versioned(v, cidr).then(|| Key::BlockAffinity {
                    host: host.to_string(),
                    cidr,
                })
            }
            _ => None,
        }
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
            ListKey::Blocks => format!("{IPAM_PREFIX}assignment/"),
            ListKey::BlockAffinities { host: Some(h) } => format!("{IPAM_PREFIX}host/{h}/"),
            ListKey::BlockAffinities { host: None } => format!("{IPAM_PREFIX}host/"),
            ListKey::Handles => format!("{IPAM_PREFIX}handle/"),
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
            (ListKey::Blocks, Key::Block(_)) | (ListKey::Handles, Key::Handle(_)) => true,
            (ListKey::BlockAffinities { host }, Key::BlockAffinity { host: h, .. }) => {
                host.as_ref().is_none_or(|want| want == h)
            }
            _ => false,
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
            "/calico/ipam/v2/configs",
            "/calico/resources/v3/projectcalico.org/ippools/",
            "/calico/resources/v3/projectcalico.org/ippools/a/b",
            "/calico/resources/v3/projectcalico.org/networkpolicies/ns",
            "/calico/resources/v3/projectcalico.org/unknown/x",
        ] {
            assert_eq!(Key::from_etcd_path(p), None, "{p}");
        }
    }

    #[test]
    fn calico_ipam_paths() {
        let v4: IpNetwork = "10.65.79.0/26".parse().unwrap();
        let v6: IpNetwork = "fd00:1::40/122".parse().unwrap();
        let cases = [
            (
                Key::Block(v4),
                "/calico/ipam/v2/assignment/ipv4/block/10.65.79.0-26",
            ),
            (
                Key::Block(v6),
                "/calico/ipam/v2/assignment/ipv6/block/fd00:1::40-122",
            ),
            (
                Key::BlockAffinity {
                    host: "node-1".into(),
                    cidr: v4,
                },
                "/calico/ipam/v2/host/node-1/ipv4/block/10.65.79.0-26",
            ),
            (
                Key::Handle("k8s-pod-network.abc123".into()),
                "/calico/ipam/v2/handle/k8s-pod-network.abc123",
            ),
            (Key::IpamConfig, "/calico/ipam/v2/config"),
        ];
        for (key, path) in cases {
            assert_eq!(key.etcd_path(), path);
            assert_eq!(Key::from_etcd_path(path), Some(key.clone()), "{path}");
            let list = match &key {
                Key::Block(_) => Some(ListKey::Blocks),
                Key::BlockAffinity { .. } => Some(ListKey::BlockAffinities { host: None }),
                Key::Handle(_) => Some(ListKey::Handles),
                _ => None,
            };
            if let Some(list) = list {
                assert!(
                    path.starts_with(&list.etcd_prefix()) && list.contains(&key),
                    "{path}"
                );
            }
        }
        // Host bits never reach a key; a path with them, or with the wrong version, is not ours.
        let unmasked: IpNetwork = "10.65.79.7/26".parse().unwrap();
        assert_eq!(Key::Block(unmasked).etcd_path(), Key::Block(v4).etcd_path());
        for p in [
            "/calico/ipam/v2/assignment/ipv4/block/10.65.79.7-26",
            "/calico/ipam/v2/assignment/ipv6/block/10.65.79.0-26",
            "/calico/ipam/v2/host//ipv4/block/10.65.79.0-26",
            "/calico/ipam/v2/handle/",
            "/calico/ipam/v2/virtual/vm1/ipv4/block/10.65.79.0-26",
        ] {
            assert_eq!(Key::from_etcd_path(p), None, "{p}");
        }
        let node1 = ListKey::BlockAffinities {
            host: Some("node-1".into()),
        };
        assert_eq!(node1.etcd_prefix(), "/calico/ipam/v2/host/node-1/");
        assert!(!node1.contains(&Key::BlockAffinity {
            host: "node-2".into(),
            cidr: v4
        }));
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
