//! The etcd v3 [`Backend`]: Calico's key layout and compare-and-swap transactions over
//! `etcd-client`.
//!
//! Every write is one transaction whose compare is the caller's precondition, as Calico's
//! etcdv3 backend does it (`libcalico-go/lib/backend/etcdv3`): create compares `version == 0`,
//! update and delete compare `mod_revision == expected`. The failure branch reads the key, so a
//! lost race is told apart from a vanished key without a second round trip.
//!
//! Every request is bounded by [`REQUEST_TIMEOUT`]: a refused connection fails at once, but an
//! endpoint that does not answer (a blackholed host, a wedged etcd) would hold a request
//! without limit, and callers (the syncer, calicoctl) must see [`Error::Unavailable`] instead
//! of hanging.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions,
    Identity, KeyValue, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
    WatchResponse,
};
use futures::StreamExt;

use crate::backend::WatchStream;
use crate::config::EtcdConfig;
use crate::{
    Backend, Condition, Error, Key, KvPair, LeaseId, ListKey, Listing, Read, ReadResult, Revision,
    WatchEvent, Write,
};

/// Upper bound of one request, including waiting for a connection.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound of [`EtcdBackend::connect`], dial and first answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings on idle connections, so a watch on a silently dead peer (no RST, e.g. a
/// partition) breaks within interval + timeout instead of never.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys per page of a list. Pages are read at one revision, so the listing is a snapshot; it
/// keeps each response far below gRPC's default 4 MiB message limit however large the set.
const LIST_PAGE: i64 = 500;

/// A connection to an etcd cluster. Cheap to clone (the client is a handle).
#[derive(Clone)]
pub struct EtcdBackend {
    client: Client,
    endpoints: Vec<String>,
}

impl std::fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl EtcdBackend {
    /// Connect to `endpoints` (`http://host:2379`, or `https://` with TLS files) and check
    /// that etcd answers, within [`CONNECT_TIMEOUT`]. The error names the endpoints.
    pub async fn connect(config: &EtcdConfig) -> Result<Self, Error> {
        let endpoints = config.endpoints.as_slice();
        if endpoints.is_empty() {
            return Err(Error::Config("no etcd endpoints configured".into()));
        }
        let joined = endpoints.join(",");
        let options = connect_options(config)?;
        let tls = config.ca_cert_file.is_some() || config.cert_file.is_some();
        if let Some(plain) = endpoints.iter().find(|e| tls && e.starts_with("http://")) {
            return Err(Error::Config(format!(
                "etcd TLS files are configured but endpoint {plain} is http://; use https://"
            )));
        }
        let connect = async {
            let mut client = Client::connect(endpoints, Some(options)).await?;
            // The client dials lazily: a status request proves an endpoint answers.
            client.status().await?;
            Ok::<_, etcd_client::Error>(client)
        };
        let client = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                return Err(Error::Unavailable(format!(
                    "cannot connect to etcd at {joined}: {e}"
                )));
            }
            Err(_) => {
                return Err(Error::Unavailable(format!(
                    "cannot connect to etcd at {joined}: no answer within {CONNECT_TIMEOUT:?}"
                )));
            }
        };
        Ok(EtcdBackend {
            client,
            endpoints: endpoints.to_vec(),
        })
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The underlying etcd client, for what the [`Backend`] trait does not offer (tests use
    /// it to compact history).
    pub fn etcd_client(&self) -> Client {
        self.client.clone()
    }

    /// Whether a watch starting after `after` would start at a compacted revision: a read at
    /// `after + 1` fails as compacted exactly when such a watch would (etcd compares both
    /// against its compact revision), and as a future revision when nothing happened since.
    async fn start_is_compacted(&self, prefix: &str, after: Revision) -> Result<bool, Error> {
        let mut kv = self.client.kv_client();
        let options = GetOptions::new()
            .with_revision(after.0 + 1)
            .with_count_only();
        // The prefix itself is no key: etcd checks the revision without scanning anything.
        let read = kv.get(prefix, Some(options));
        match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
            Ok(Ok(_)) => Ok(false),
            Ok(Err(etcd_client::Error::GRpcStatus(s)))
                if s.code() == tonic::Code::OutOfRange && s.message().contains("future") =>
            {
                Ok(false)
            }
            Ok(Err(e)) => match map_error("watch", e) {
                Error::Compacted { .. } => Ok(true),
                other => Err(other),
            },
            Err(_) => Err(Error::Unavailable(format!(
                "etcd watch: no answer within {REQUEST_TIMEOUT:?} from {}",
                self.endpoints.join(",")
            ))),
        }
    }

    /// Run one request with [`REQUEST_TIMEOUT`], mapping failures to [`Error`].
    async fn call<T>(
        &self,
        what: &str,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(map_error(what, e)),
            Err(_) => Err(Error::Unavailable(format!(
                "etcd {what}: no answer within {REQUEST_TIMEOUT:?} from {}",
                self.endpoints.join(",")
            ))),
        }
    }
}

fn connect_options(config: &EtcdConfig) -> Result<ConnectOptions, Error> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_keep_alive(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT);
    match (&config.username, &config.password) {
        (Some(user), Some(password)) => options = options.with_user(user, password),
        (None, None) => {}
        _ => {
            return Err(Error::Config(
                "etcdUsername and etcdPassword must be given together".into(),
            ));
        }
    }
    let read = |path: &PathBuf, what: &str| {
        std::fs::read(path)
            .map_err(|e| Error::Config(format!("cannot read etcd {what} {}: {e}", path.display())))
    };
    let mut tls = None;
    if let Some(ca) = &config.ca_cert_file {
        tls = Some(TlsOptions::new().ca_certificate(Certificate::from_pem(read(ca, "CA file")?)));
    }
    match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => {
            let identity =
                Identity::from_pem(read(cert, "certificate file")?, read(key, "key file")?);
            tls = Some(tls.unwrap_or_default().identity(identity));
        }
        (None, None) => {}
        _ => {
            return Err(Error::Config(
                "etcdCertFile and etcdKeyFile must be given together".into(),
            ));
        }
    }
    if let Some(tls) = tls {
        options = options.with_tls(tls);
    }
    Ok(options)
}

/// gRPC and transport failures are the datastore being unavailable, with the cause; except a
/// compacted revision, which the caller handles by re-listing.
fn map_error(what: &str, e: etcd_client::Error) -> Error {
    if let etcd_client::Error::GRpcStatus(status) = &e
        && status.code() == tonic::Code::OutOfRange
        && status.message().contains("compacted")
    {
        // etcd's ErrCompacted carries no revision in the status; 0 means "unknown".
        return Error::Compacted {
            compact_revision: 0,
        };
    }
    Error::Unavailable(format!("etcd {what}: {e}"))
}

fn kv_pair(kv: &KeyValue) -> Option<KvPair> {
    let path = match std::str::from_utf8(kv.key()) {
        Ok(p) => p,
        Err(_) => {
            tracing::debug!(key = ?kv.key(), "skipping non-UTF-8 etcd key");
            return None;
        }
    };
    let Some(key) = Key::from_etcd_path(path) else {
        // Calico shares the prefix with older layouts and other tools; a path that is not one
        // of our keys is not an error.
        tracing::debug!(path, "skipping etcd path that is not a Calico key");
        return None;
    };
    Some(KvPair {
        key,
        value: kv.value().to_vec(),
        revision: Revision(kv.mod_revision()),
        lease: (kv.lease() != 0).then_some(LeaseId(kv.lease())),
    })
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision, Error> {
    header
        .map(|h| Revision(h.revision()))
        .ok_or_else(|| Error::Unavailable("etcd response without a header".into()))
}

/// The first key after every key that starts with `prefix` (etcd's prefix range end).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff: to the end of the keyspace.
    vec![0]
}

/// Whether the failure branch of a CAS txn found the key (its get returned a value).
fn txn_found_key(responses: &[TxnOpResponse]) -> bool {
    responses.iter().any(|r| match r {
        TxnOpResponse::Get(get) => !get.kvs().is_empty(),
        _ => false,
    })
}

#[async_trait]
impl Backend for EtcdBackend {
    async fn get(&self, key: &Key) -> Result<Option<KvPair>, Error> {
        let mut kv = self.client.kv_client();
        let resp = self.call("get", kv.get(key.etcd_path(), None)).await?;
        Ok(resp.kvs().first().and_then(kv_pair))
    }

    async fn list(&self, list: &ListKey) -> Result<Listing, Error> {
        let prefix = list.etcd_prefix().into_bytes();
        let end = prefix_end(&prefix);
        let mut kv = self.client.kv_client();
        let mut items = Vec::new();
        let mut from = prefix.clone();
        let mut revision = None;
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(LIST_PAGE);
            if let Some(Revision(r)) = revision {
                // Later pages read at the first page's revision: one consistent snapshot. If
                // that revision is compacted meanwhile, the list fails with Compacted and the
                // caller lists again.
                options = options.with_revision(r);
            }
            let resp = self
                .call("list", kv.get(from.clone(), Some(options)))
                .await?;
            let rev = match revision {
                Some(r) => r,
                None => header_revision(resp.header())?,
            };
            revision = Some(rev);
            items.extend(resp.kvs().iter().filter_map(kv_pair));
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
        Ok(Listing {
            items,
            revision: revision.unwrap_or_default(),
        })
    }

    async fn read_batch(&self, reads: &[Read]) -> Result<Vec<ReadResult>, Error> {
        // A transaction without conditions: its reads run at one revision, in one request.
        let ops: Vec<TxnOp> = reads
            .iter()
            .map(|r| match r {
                Read::Get(key) => TxnOp::get(key.etcd_path(), None),
                Read::List(list) => {
                    let prefix = list.etcd_prefix().into_bytes();
                    let end = prefix_end(&prefix);
                    TxnOp::get(prefix, Some(GetOptions::new().with_range(end)))
                }
            })
            .collect();
        let mut kv = self.client.kv_client();
        let resp = self.call("read", kv.txn(Txn::new().and_then(ops))).await?;
        let revision = header_revision(resp.header())?;
        let responses = resp.op_responses();
        if responses.len() != reads.len() {
            return Err(Error::Unavailable(format!(
                "etcd read: {} answers to {} reads",
                responses.len(),
                reads.len()
            )));
        }
        Ok(reads
            .iter()
            .zip(responses)
            .map(|(r, resp)| {
                let kvs: Vec<KvPair> = match &resp {
                    TxnOpResponse::Get(get) => get.kvs().iter().filter_map(kv_pair).collect(),
                    _ => Vec::new(),
                };
                match r {
                    Read::Get(_) => ReadResult::Get(kvs.into_iter().next()),
                    Read::List(_) => ReadResult::List(Listing {
                        items: kvs,
                        revision,
                    }),
                }
            })
            .collect())
    }

    async fn create(
        &self,
        key: &Key,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> Result<Revision, Error> {
        let path = key.etcd_path();
        let put = lease.map(|LeaseId(id)| PutOptions::new().with_lease(id));
        let txn = Txn::new()
            .when([Compare::version(path.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(path.clone(), value, put)])
            .or_else([TxnOp::get(path, None)]);
        let mut kv = self.client.kv_client();
        let resp = self.call("create", kv.txn(txn)).await?;
        if !resp.succeeded() {
            return Err(Error::AlreadyExists(key.clone()));
        }
        header_revision(resp.header())
    }

    async fn commit(
        &self,
        conditions: &[Condition],
        writes: Vec<Write>,
    ) -> Result<Revision, Error> {
        let mut compares = Vec::with_capacity(conditions.len());
        let mut checks = Vec::with_capacity(conditions.len());
        let mut existing = std::collections::HashSet::new();
        for c in conditions {
            match c {
                Condition::Absent(key) => {
                    compares.push(Compare::version(key.etcd_path(), CompareOp::Equal, 0));
                }
                Condition::At(key, rev) => {
                    // As in `update`: revision 0 would match an absent key.
                    if rev.0 <= 0 {
                        return Err(Error::InvalidRevision(rev.to_string()));
                    }
                    existing.insert(key.etcd_path());
                    compares.push(Compare::mod_revision(
                        key.etcd_path(),
                        CompareOp::Equal,
                        rev.0,
                    ));
                }
            }
            let key = match c {
                Condition::Absent(k) | Condition::At(k, _) => k,
            };
            checks.push(TxnOp::get(key.etcd_path(), None));
        }
        let ops: Vec<TxnOp> = writes
            .into_iter()
            .map(|w| match w {
                Write::Put(key, value) => {
                    let path = key.etcd_path();
                    // Keep the lease of a key that exists (see `update`); a new key has none,
                    // and etcd refuses ignore_lease on a key that does not exist.
                    let opts = existing
                        .contains(&path)
                        .then(|| PutOptions::new().with_ignore_lease());
                    TxnOp::put(path, value, opts)
                }
                Write::Delete(key) => TxnOp::delete(key.etcd_path(), None),
            })
            .collect();
        let txn = Txn::new().when(compares).and_then(ops).or_else(checks);
        let mut kv = self.client.kv_client();
        let resp = self.call("commit", kv.txn(txn)).await?;
        if resp.succeeded() {
            return header_revision(resp.header());
        }
        // Which condition failed: the else branch read every condition's key, in order.
        for (c, r) in conditions.iter().zip(resp.op_responses()) {
            let found = match r {
                TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.mod_revision()),
                _ => None,
            };
            match (c, found) {
                (Condition::Absent(key), Some(_)) => return Err(Error::AlreadyExists(key.clone())),
                (Condition::At(key, _), None) => return Err(Error::NotFound(key.clone())),
                (Condition::At(key, rev), Some(now)) if now != rev.0 => {
                    return Err(Error::Conflict(key.clone()));
                }
                _ => {}
            }
        }
        // The else branch reads at the revision the compares failed at, so one condition shows
        // as failed above unless the caller gave one key two contradicting conditions.
        Err(Error::Invalid(
            "transaction conditions contradict each other".into(),
        ))
    }

    async fn update(
        &self,
        key: &Key,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<Revision, Error> {
        let path = key.etcd_path();
        // etcd compares an absent key's mod_revision as 0, so `expected == 0` would "match" a
        // missing key; no stored key is ever at revision 0.
        if expected.0 <= 0 {
            return Err(Error::InvalidRevision(expected.to_string()));
        }
        // Keep the key's lease: an update must not turn a key that should expire (a lease
        // is how a writer says "only while I am alive") into a permanent one.
        let put = PutOptions::new().with_ignore_lease();
        let txn = Txn::new()
            .when([Compare::mod_revision(
                path.clone(),
                CompareOp::Equal,
                expected.0,
            )])
            .and_then([TxnOp::put(path.clone(), value, Some(put))])
            .or_else([TxnOp::get(path, None)]);
        let mut kv = self.client.kv_client();
        let resp = self.call("update", kv.txn(txn)).await?;
        if !resp.succeeded() {
            return Err(if txn_found_key(&resp.op_responses()) {
                Error::Conflict(key.clone())
            } else {
                Error::NotFound(key.clone())
            });
        }
        header_revision(resp.header())
    }

    async fn delete(&self, key: &Key, expected: Option<Revision>) -> Result<KvPair, Error> {
        let path = key.etcd_path();
        let delete = TxnOp::delete(path.clone(), Some(DeleteOptions::new().with_prev_key()));
        let txn = match expected {
            Some(Revision(rev)) => Txn::new()
                .when([Compare::mod_revision(path.clone(), CompareOp::Equal, rev)])
                .and_then([delete])
                .or_else([TxnOp::get(path, None)]),
            None => Txn::new().and_then([delete]),
        };
        let mut kv = self.client.kv_client();
        let resp = self.call("delete", kv.txn(txn)).await?;
        let responses = resp.op_responses();
        if !resp.succeeded() {
            return Err(if txn_found_key(&responses) {
                Error::Conflict(key.clone())
            } else {
                Error::NotFound(key.clone())
            });
        }
        responses
            .iter()
            .find_map(|r| match r {
                TxnOpResponse::Delete(d) => d.prev_kvs().first().and_then(kv_pair),
                _ => None,
            })
            .ok_or_else(|| Error::NotFound(key.clone()))
    }

    async fn watch(&self, list: &ListKey, after: Revision) -> Result<WatchStream, Error> {
        let prefix = list.etcd_prefix();
        // etcd accepts a watch on a compacted revision ("created") and reports the compaction
        // only later, from its unsynced-watcher loop (every 100 ms). Ask first, so a caller
        // never takes a doomed watch for a working one (the syncer would report InSync).
        let compacted = self.start_is_compacted(&prefix, after).await?;
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(after.0 + 1);
        let mut watch = self.client.watch_client();
        let mut stream = self
            .call("watch", watch.watch(prefix, Some(options)))
            .await?;
        // Wait for etcd's "created" answer, so a watch that cannot be set up fails here (the
        // caller reports the datastore as unavailable) rather than as a silent stream; for a
        // compacted start, wait for the compaction notice, which names the oldest revision.
        let mut pending = VecDeque::new();
        let setup = async {
            loop {
                match stream.message().await? {
                    Some(resp) => {
                        if let Err(e) = watch_events(&resp, &mut pending) {
                            return Ok(Err(e));
                        }
                        if !compacted || !pending.is_empty() {
                            return Ok(Ok(()));
                        }
                    }
                    None => {
                        return Ok(Err(Error::Unavailable("etcd watch: stream closed".into())));
                    }
                }
            }
        };
        self.call("watch", setup).await??;
        // The etcd WatchStream owns the request sender: dropping it ends the watch on the
        // server, so it lives in the stream state.
        let state = WatchState {
            stream,
            pending,
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, next_watch_event)))
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, Error> {
        // etcd counts TTLs in whole seconds; round up so a lease never lives shorter than asked.
        let secs = i64::try_from(ttl.as_millis().div_ceil(1000))
            .unwrap_or(i64::MAX)
            .max(1);
        let mut lease = self.client.lease_client();
        let resp = self.call("lease grant", lease.grant(secs, None)).await?;
        Ok(LeaseId(resp.id()))
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), Error> {
        let mut client = self.client.lease_client();
        let renew = async {
            let (mut keeper, mut responses) = client.keep_alive(lease.0).await?;
            keeper.keep_alive().await?;
            responses.message().await
        };
        match self.call("lease keep-alive", renew).await? {
            // etcd answers a keep-alive for an unknown (expired or revoked) lease with TTL 0.
            Some(resp) if resp.ttl() > 0 => Ok(()),
            Some(_) => Err(Error::Invalid(format!(
                "etcd lease {:x} has expired or was revoked",
                lease.0
            ))),
            None => Err(Error::Unavailable(
                "etcd lease keep-alive: stream closed".into(),
            )),
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), Error> {
        let mut client = self.client.lease_client();
        match tokio::time::timeout(REQUEST_TIMEOUT, client.revoke(lease.0)).await {
            Ok(Ok(_)) => Ok(()),
            // Revoking a lease that already expired: its keys are gone, which is what the
            // caller wants.
            Ok(Err(etcd_client::Error::GRpcStatus(s))) if s.code() == tonic::Code::NotFound => {
                Ok(())
            }
            Ok(Err(e)) => Err(map_error("lease revoke", e)),
            Err(_) => Err(Error::Unavailable(format!(
                "etcd lease revoke: no answer within {REQUEST_TIMEOUT:?}"
            ))),
        }
    }
}

struct WatchState {
    stream: etcd_client::WatchStream,
    /// Decoded but not yet yielded; a failure is queued after the events before it.
    pending: VecDeque<Result<WatchEvent, Error>>,
    done: bool,
}

async fn next_watch_event(
    mut state: WatchState,
) -> Option<(Result<WatchEvent, Error>, WatchState)> {
    loop {
        if let Some(item) = state.pending.pop_front() {
            return Some((item, state));
        }
        if state.done {
            return None;
        }
        match state.stream.next().await {
            Some(Ok(resp)) => {
                if let Err(e) = watch_events(&resp, &mut state.pending) {
                    state.pending.push_back(Err(e));
                    state.done = true;
                }
            }
            Some(Err(e)) => {
                state.pending.push_back(Err(map_error("watch", e)));
                state.done = true;
            }
            None => state.done = true,
        }
    }
}

/// Append the events of one watch response; a compaction or cancellation is an error.
fn watch_events(
    resp: &WatchResponse,
    out: &mut VecDeque<Result<WatchEvent, Error>>,
) -> Result<(), Error> {
    // etcd: "compact_revision is set to the minimum index if a watcher tries to watch at a
    // compacted index"; the watcher is then canceled.
    if resp.compact_revision() != 0 {
        return Err(Error::Compacted {
            compact_revision: resp.compact_revision(),
        });
    }
    if resp.canceled() {
        return Err(Error::Unavailable(format!(
            "etcd canceled the watch: {}",
            resp.cancel_reason()
        )));
    }
    for event in resp.events() {
        let Some(kv) = event.kv() else { continue };
        let Some(pair) = kv_pair(kv) else { continue };
        out.push_back(Ok(match event.event_type() {
            EventType::Put => WatchEvent::Put(pair),
            // For a delete, etcd sets the kv's mod_revision to the revision of the deletion.
            EventType::Delete => WatchEvent::Delete {
                key: pair.key,
                revision: pair.revision,
            },
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(
            prefix_end(b"/calico/ippools/"),
            b"/calico/ippools0".to_vec()
        );
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn half_given_credentials_are_a_config_error() {
        let user_only = EtcdConfig {
            username: Some("calico".into()),
            ..Default::default()
        };
        assert!(matches!(connect_options(&user_only), Err(Error::Config(_))));
        let cert_only = EtcdConfig {
            cert_file: Some("/nonexistent/cert.pem".into()),
            ..Default::default()
        };
        assert!(matches!(connect_options(&cert_only), Err(Error::Config(_))));
        let missing_ca = EtcdConfig {
            ca_cert_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        match connect_options(&missing_ca) {
            Err(Error::Config(m)) => assert!(m.contains("/nonexistent/ca.pem"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(connect_options(&EtcdConfig::default()).is_ok());
    }

    #[tokio::test]
    async fn tls_with_a_plain_http_endpoint_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let config = EtcdConfig {
            endpoints: vec!["http://127.0.0.1:1".into()],
            ca_cert_file: Some(ca),
            ..Default::default()
        };
        let err = EtcdBackend::connect(&config).await.unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("http://127.0.0.1:1")),
            "{err}"
        );
    }
}
