//! Keeps a [`Speaker`] in step with the datastore, as Calico's confd keeps BIRD in step: the
//! syncer's stream of `Node`s, `BGPConfiguration`s, `BGPPeer`s, `BGPFilter`s, `IPPool`s, IPAM
//! blocks and this node's block affinities is folded into a [`View`], and after every burst of
//! changes (once the syncer is in sync) the speaker's [`Desired`] state is recalculated from it
//! with [`desired`], a pure function, and applied if it changed.
//!
//! TCP MD5 passwords: a `BGPPeer`'s (or the mesh's) `password.secretKeyRef` names a Kubernetes
//! Secret. With the etcd datastore there is no Secret API, so the key is read from a file,
//! `<password dir>/<secret name>/<key>`, which is how Kubernetes mounts a Secret volume; the
//! directory is `CALICO_BGP_PASSWORD_DIR`, default `/etc/calico/bgp-secrets`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use api::bgp_configuration::BGPConfiguration;
use api::bgp_filter::BGPFilter;
use api::bgp_peer::{BGPPeer, SecretKeySelector};
use api::ippool::IPPool;
use api::node::Node;
use api::{AnyResource, Resource};
use datastore::syncer::{SyncStatus, Syncer, SyncerEvent};
use datastore::{Backend, Key, ListKey, ResourceKey};
use ipam::affinity::BlockAffinity;
use ipam::block::AllocationBlock;
use ipnetwork::IpNetwork;

use crate::config::{self, NodeBgpConfig};
use crate::policy::{self, Install, PeerPolicy};
use crate::route::{LocalRoute, Policy};
use crate::speaker::{Desired, InstallFilter, Speaker};

/// Where Secret keys are read from in etcd mode (see the module documentation).
pub const DEFAULT_PASSWORD_DIR: &str = "/etc/calico/bgp-secrets";

/// What the speaker's configuration is calculated from.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub nodes: BTreeMap<String, Node>,
    pub bgp_configurations: BTreeMap<String, BGPConfiguration>,
    pub bgp_peers: BTreeMap<String, BGPPeer>,
    pub bgp_filters: BTreeMap<String, BGPFilter>,
    pub ip_pools: BTreeMap<String, IPPool>,
    pub blocks: BTreeMap<IpNetwork, AllocationBlock>,
    /// This node's affinities.
    pub affinities: BTreeMap<IpNetwork, BlockAffinity>,
}

impl View {
    /// Folds one syncer event in. Returns whether anything changed.
    pub fn apply(&mut self, event: SyncerEvent) -> bool {
        match event {
            SyncerEvent::Status(_) => false,
            SyncerEvent::Put { resource, .. } => {
                let name = resource.metadata().name.clone();
                match resource {
                    AnyResource::Node(n) => {
                        self.nodes.insert(name, n);
                        true
                    }
                    AnyResource::BGPConfiguration(c) => {
                        self.bgp_configurations.insert(name, c);
                        true
                    }
                    AnyResource::BGPPeer(p) => {
                        self.bgp_peers.insert(name, p);
                        true
                    }
                    AnyResource::BGPFilter(f) => {
                        self.bgp_filters.insert(name, f);
                        true
                    }
                    AnyResource::IPPool(p) => {
                        self.ip_pools.insert(name, p);
                        true
                    }
                    _ => false,
                }
            }
            SyncerEvent::Delete { key, .. } => self.delete(&key),
            SyncerEvent::PutIpam(kv) => match kv.key {
                Key::Block(cidr) => match serde_json::from_slice::<AllocationBlock>(&kv.value) {
                    Ok(b) => {
                        self.blocks.insert(cidr, b);
                        true
                    }
                    Err(e) => {
                        tracing::warn!(%cidr, error = %e, "ignoring a block that does not decode");
                        self.blocks.remove(&cidr).is_some()
                    }
                },
                Key::BlockAffinity { cidr, .. } => {
                    match serde_json::from_slice::<BlockAffinity>(&kv.value) {
                        Ok(a) => {
                            self.affinities.insert(cidr, a);
                            true
                        }
                        Err(e) => {
                            tracing::warn!(%cidr, error = %e, "ignoring an affinity that does not decode");
                            self.affinities.remove(&cidr).is_some()
                        }
                    }
                }
                _ => false,
            },
            SyncerEvent::DeleteIpam { key, .. } => match key {
                Key::Block(cidr) => self.blocks.remove(&cidr).is_some(),
                Key::BlockAffinity { cidr, .. } => self.affinities.remove(&cidr).is_some(),
                _ => false,
            },
        }
    }

    fn delete(&mut self, key: &ResourceKey) -> bool {
        use api::ResourceKind as K;
        match key.kind {
            K::Node => self.nodes.remove(&key.name).is_some(),
            K::BGPConfiguration => self.bgp_configurations.remove(&key.name).is_some(),
            K::BGPPeer => self.bgp_peers.remove(&key.name).is_some(),
            K::BGPFilter => self.bgp_filters.remove(&key.name).is_some(),
            K::IPPool => self.ip_pools.remove(&key.name).is_some(),
            _ => false,
        }
    }
}

/// The lists the speaker syncs for `node`.
pub fn lists(node: &str) -> Vec<ListKey> {
    use api::ResourceKind as K;
    vec![
        ListKey::kind(K::Node),
        ListKey::kind(K::BGPConfiguration),
        ListKey::kind(K::BGPPeer),
        ListKey::kind(K::BGPFilter),
        ListKey::kind(K::IPPool),
        ListKey::Blocks,
        ListKey::BlockAffinities {
            host: Some(node.to_string()),
        },
    ]
}

/// Reads Secret keys from files (see the module documentation).
#[derive(Clone, Debug)]
pub struct PasswordFiles {
    pub dir: PathBuf,
}

impl PasswordFiles {
    pub fn from_env() -> Self {
        PasswordFiles {
            dir: std::env::var_os("CALICO_BGP_PASSWORD_DIR")
                .map_or_else(|| PathBuf::from(DEFAULT_PASSWORD_DIR), PathBuf::from),
        }
    }

    fn read(&self, secret: &SecretKeySelector) -> Option<String> {
        let Some(name) = &secret.name else {
            tracing::error!(
                "BGP password secretKeyRef without a name; the session runs without a password"
            );
            return None;
        };
        let path = self.dir.join(name).join(&secret.key);
        match std::fs::read_to_string(&path) {
            Ok(s) => Some(s.trim_end_matches(['\n', '\r']).to_string()),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e,
                    "cannot read BGP password; the session runs without one and will not come up with a peer that requires it");
                None
            }
        }
    }
}

/// The node's BGP sessions from the view (config errors are the caller's to report).
pub fn node_config(view: &View, node: &str) -> Result<NodeBgpConfig, config::ConfigError> {
    let nodes: Vec<Node> = view.nodes.values().cloned().collect();
    let configs: Vec<BGPConfiguration> = view.bgp_configurations.values().cloned().collect();
    let peers: Vec<BGPPeer> = view.bgp_peers.values().cloned().collect();
    config::node_bgp_config(&config::Inputs {
        node_name: node,
        nodes: &nodes,
        bgp_configurations: &configs,
        bgp_peers: &peers,
    })
}

/// Runs until the syncer ends: syncs, recalculates, applies.
pub async fn run(
    backend: Arc<dyn Backend>,
    node: String,
    speaker: &Speaker,
    passwords: PasswordFiles,
) {
    let (mut rx, _handle) = Syncer::spawn(backend, lists(&node));
    let mut view = View::default();
    let mut in_sync = false;
    let mut calc = Calculator::default();
    while let Some(event) = rx.recv().await {
        let mut changed = false;
        let mut next = Some(event);
        // Everything already queued is one burst: recalculate once for it.
        while let Some(e) = next {
            if let SyncerEvent::Status(SyncStatus::InSync) = &e
                && !in_sync
            {
                tracing::info!("datastore in sync");
                in_sync = true;
                changed = true;
            }
            changed |= view.apply(e);
            next = rx.try_recv().ok();
        }
        if !in_sync || !changed {
            continue;
        }
        match calc.desired(&view, &node, &passwords) {
            Ok(Some(d)) => speaker.apply(d).await,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot configure BGP for this node yet"),
        }
    }
}

/// Turns views into the speaker's desired state, keeping each peer's policy object while its
/// inputs are unchanged (so the speaker sees that nothing changed for that session).
#[derive(Default)]
pub struct Calculator {
    policies: HashMap<String, Arc<PeerPolicy>>,
    default_policy: Option<Arc<PeerPolicy>>,
    install: Option<(Install, InstallFilter)>,
    last: Option<Snapshot>,
}

/// What a desired state was made of, to tell whether a new one differs.
#[derive(Clone, Debug, PartialEq)]
struct Snapshot {
    node: NodeBgpConfig,
    passwords: HashMap<String, String>,
    local_routes: BTreeMap<IpNetwork, LocalRoute>,
    policies: Vec<(String, PeerPolicy)>,
    default_policy: PeerPolicy,
    install: Install,
}

impl Calculator {
    /// The desired state for `node`, or `None` when it equals the previous one.
    pub fn desired(
        &mut self,
        view: &View,
        node: &str,
        passwords: &PasswordFiles,
    ) -> Result<Option<Desired>, config::ConfigError> {
        let config = node_config(view, node)?;
        let pools: Vec<IPPool> = view.ip_pools.values().cloned().collect();
        let configs: Vec<BGPConfiguration> = view.bgp_configurations.values().cloned().collect();
        let local_routes = policy::local_routes(&policy::ExportInputs {
            node,
            pools: &pools,
            blocks: &view.blocks,
            affinities: &view.affinities,
            bgp_configurations: &configs,
        });
        let mut secrets = HashMap::new();
        let mut policies = Vec::new();
        for peer in &config.peers {
            if let Some(sel) = &peer.password
                && let Some(pw) = passwords.read(sel)
            {
                secrets.insert(peer.name.clone(), pw);
            }
            let filters: Vec<&BGPFilter> = peer
                .filters
                .iter()
                .filter_map(|f| {
                    let found = view.bgp_filters.get(f);
                    if found.is_none() {
                        tracing::warn!(peer = %peer.name, filter = %f, "BGPFilter not found; ignored");
                    }
                    found
                })
                .collect();
            let internal = peer.peer_as == peer.local_as.unwrap_or(config.local_as);
            policies.push((
                peer.name.clone(),
                PeerPolicy::new(&pools, &configs, &filters, internal),
            ));
        }
        let snapshot = Snapshot {
            node: config,
            passwords: secrets,
            local_routes,
            policies,
            default_policy: PeerPolicy::new(&pools, &configs, &[], false),
            install: Install::new(&pools),
        };
        if self.last.as_ref() == Some(&snapshot) {
            return Ok(None);
        }
        let mut arcs = HashMap::new();
        for (name, p) in &snapshot.policies {
            let arc = match self.policies.get(name) {
                Some(old) if **old == *p => old.clone(),
                _ => Arc::new(p.clone()),
            };
            arcs.insert(name.clone(), arc);
        }
        self.policies = arcs;
        let default_policy = match &self.default_policy {
            Some(old) if **old == snapshot.default_policy => old.clone(),
            _ => Arc::new(snapshot.default_policy.clone()),
        };
        self.default_policy = Some(default_policy.clone());
        let install = match &self.install {
            Some((old, filter)) if *old == snapshot.install => filter.clone(),
            _ => {
                let i = snapshot.install.clone();
                let filter: InstallFilter = Arc::new(move |p: &IpNetwork| i.installs(p));
                self.install = Some((snapshot.install.clone(), filter.clone()));
                filter
            }
        };
        let desired = Desired {
            node: snapshot.node.clone(),
            passwords: snapshot.passwords.clone(),
            policies: self
                .policies
                .iter()
                .map(|(k, v)| (k.clone(), v.clone() as Arc<dyn Policy>))
                .collect(),
            default_policy,
            local_routes: snapshot.local_routes.clone(),
            install,
        };
        self.last = Some(snapshot);
        Ok(Some(desired))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(v: serde_json::Value) -> AnyResource {
        AnyResource::from_value(v).unwrap()
    }

    fn put(view: &mut View, v: serde_json::Value) {
        view.apply(SyncerEvent::Put {
            resource: resource(v),
            revision: datastore::Revision(1),
        });
    }

    fn view() -> View {
        let mut v = View::default();
        for (name, ip) in [("a", "10.0.0.1/24"), ("b", "10.0.0.2/24")] {
            put(
                &mut v,
                serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "Node",
                    "metadata": {"name": name}, "spec": {"bgp": {"ipv4Address": ip}}}),
            );
        }
        put(
            &mut v,
            serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "BGPPeer",
                "metadata": {"name": "tor"},
                "spec": {"peerIP": "10.0.0.9", "asNumber": 65009,
                    "password": {"secretKeyRef": {"name": "bgp", "key": "tor"}}}}),
        );
        v
    }

    #[test]
    fn passwords_come_from_the_secret_files_and_unchanged_inputs_give_nothing_new() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bgp")).unwrap();
        std::fs::write(dir.path().join("bgp/tor"), "s3cret\n").unwrap();
        let files = PasswordFiles {
            dir: dir.path().to_path_buf(),
        };
        let v = view();
        let mut calc = Calculator::default();
        let d = calc
            .desired(&v, "a", &files)
            .unwrap()
            .expect("a first state");
        let names: Vec<&str> = d.node.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["Mesh_10_0_0_2", "Global_10_0_0_9"]);
        assert_eq!(
            d.passwords.get("Global_10_0_0_9").map(String::as_str),
            Some("s3cret")
        );
        assert!(
            calc.desired(&v, "a", &files).unwrap().is_none(),
            "nothing changed"
        );

        // A pool change gives a new state; the peers' policy objects are new only because
        // their inputs (the pools) changed.
        let mut v2 = v.clone();
        put(
            &mut v2,
            serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool",
                "metadata": {"name": "p"}, "spec": {"cidr": "10.244.0.0/16"}}),
        );
        let d2 = calc.desired(&v2, "a", &files).unwrap().expect("changed");
        assert!(!Arc::ptr_eq(
            &d.policies["Global_10_0_0_9"],
            &d2.policies["Global_10_0_0_9"]
        ));
        // A BGPPeer change elsewhere keeps the unchanged peers' policy objects.
        let mut v3 = v2.clone();
        put(
            &mut v3,
            serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "BGPPeer",
                "metadata": {"name": "other"}, "spec": {"peerIP": "10.0.0.8", "asNumber": 65008}}),
        );
        let d3 = calc.desired(&v3, "a", &files).unwrap().expect("changed");
        assert!(Arc::ptr_eq(
            &d2.policies["Global_10_0_0_9"],
            &d3.policies["Global_10_0_0_9"]
        ));
        assert!(d3.policies.contains_key("Global_10_0_0_8"));
    }

    #[test]
    fn a_missing_secret_file_means_no_password() {
        let files = PasswordFiles {
            dir: PathBuf::from("/nonexistent"),
        };
        let d = Calculator::default()
            .desired(&view(), "a", &files)
            .unwrap()
            .unwrap();
        assert!(d.passwords.is_empty());
    }
}
