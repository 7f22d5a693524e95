//! What the datastore's integration tests share: a backend on a test etcd, and resources to
//! write. The etcd harness itself is `testutil`'s.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use api::{AnyResource, ResourceKind};
use datastore::config::EtcdConfig;
use datastore::etcd::EtcdBackend;
use datastore::{Key, ResourceKey, codec};
use testutil::etcd::Etcd;

pub async fn backend(etcd: &Etcd) -> EtcdBackend {
    EtcdBackend::connect(&EtcdConfig {
        endpoints: etcd.endpoints().to_vec(),
        ..Default::default()
    })
    .await
    .expect("connect to test etcd")
}

pub fn pool_key(name: &str) -> Key {
    Key::Resource(ResourceKey::new(ResourceKind::IPPool, None, name))
}

pub fn pool(name: &str, cidr: &str) -> AnyResource {
    let mut r = AnyResource::new_named(ResourceKind::IPPool, None, name);
    if let AnyResource::IPPool(p) = &mut r {
        p.spec.cidr = cidr.to_string();
    }
    r
}

pub fn pool_bytes(name: &str, cidr: &str) -> Vec<u8> {
    codec::encode(&pool(name, cidr)).expect("encode pool")
}

/// Poll `cond` until it holds or `deadline` passes; returns whether it held.
pub async fn eventually(deadline: Duration, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
