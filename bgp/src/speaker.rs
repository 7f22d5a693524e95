//! The speaker: one task that owns the RIB and ties together the peer tasks ([`crate::peer`]),
//! the listening socket ([`crate::transport`]) and the FIB writer ([`crate::fib`], its own task).
//!
//! It is driven by [`Desired`] states (the node's sessions from [`crate::config`], resolved
//! passwords, each peer's policy, the routes this node originates and which learned prefixes go
//! into the kernel) and reconciles its peers against each: a peer whose session settings did
//! not change keeps its session (a policy change is applied without a reset), a changed one is
//! restarted, a removed one is stopped with Cease/Peer De-configured.
//!
//! Graceful restart (RFC 4724), both roles: as helper the RIB keeps a restarting peer's routes
//! as stale until its End-of-RIB or its restart time; as restarting speaker the FIB writer found
//! our previous run's routes at start and keeps them until every peer has sent End-of-RIB (or
//! our restart time has passed), then sweeps what was not re-learned.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnetwork::IpNetwork;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{NodeBgpConfig, PeerConfig};
use crate::fib::{Fib, FibRoute};
use crate::fsm::{self, IdleHold, PeerAs, RouteDisposition, RouterId, State};
use crate::peer::{self, PeerCommand, PeerEvent, PeerSpec, SessionInfo};
use crate::rib::{Changes, LocalSpeaker, OutUpdate, PeerSettings, Rib};
use crate::route::{LocalRoute, PeerId, Policy};
use crate::transport::{self, Listener};
use crate::wire::Family;

/// BIRD's default hold time, which Calico's configuration keeps.
pub const HOLD_TIME: u16 = 240;
/// Calico's default `maxRestartTime` (BIRD's `graceful restart time`).
pub const RESTART_TIME: u16 = 120;
/// Seconds between dials. BIRD and FRR wait 120 s; a cluster wants its mesh back sooner.
pub const CONNECT_RETRY_TIME: u16 = 5;
/// After an error a session restarts after 1 s, doubling up to 60 s while it keeps failing.
pub const IDLE_HOLD: IdleHold = IdleHold {
    initial: 1,
    max: 60,
};

/// Route batches queued for the FIB thread.
const FIB_QUEUE: usize = 4;
/// Most routes the FIB thread merges into one write.
const FIB_BATCH: usize = 50_000;
/// Events queued from peer tasks (each UPDATE is one; a full one carries ~1,000 prefixes).
const EVENT_QUEUE: usize = 128;

/// Which learned prefixes go into the kernel. The speaker re-evaluates the kernel routes when
/// it is handed a different one (compared by pointer: hand the same `Arc` while it holds).
pub type InstallFilter = Arc<dyn Fn(&IpNetwork) -> bool + Send + Sync>;

/// What the speaker should be doing.
#[derive(Clone)]
pub struct Desired {
    pub node: NodeBgpConfig,
    /// TCP MD5 passwords by session name (`Node_10_0_0_1`), already resolved.
    pub passwords: HashMap<String, String>,
    /// Import/export policy by session name; a session without one gets `default_policy`.
    pub policies: HashMap<String, Arc<dyn Policy>>,
    pub default_policy: Arc<dyn Policy>,
    pub local_routes: BTreeMap<IpNetwork, LocalRoute>,
    pub install: InstallFilter,
}

/// How the speaker runs, apart from what the datastore says.
#[derive(Clone, Debug)]
pub struct Options {
    /// Kernel routing table for learned routes (254 is main).
    pub table: u32,
    /// Listen on this port instead of the configured one (0: any free port, for tests).
    pub listen_port: Option<u16>,
    /// What we ask peers to wait while we restart, and how long after our own start we wait
    /// for peers' End-of-RIB before sweeping our previous routes.
    pub restart_time: u16,
    pub connect_retry_time: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            table: 254,
            listen_port: None,
            restart_time: RESTART_TIME,
            connect_retry_time: CONNECT_RETRY_TIME,
        }
    }
}

/// Makes glibc's malloc use one arena for the whole process. The speaker's threads (peer
/// readers, the RIB task, the FIB writer) hand buffers to each other, and with glibc's default
/// of an arena per thread the freed memory stays scattered over several heaps: about 2.5 MB of
/// RSS at a 100,000-route table, for no measurable speed. Call it first thing in `main`.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// One session as `calicoctl node status` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerState {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub kind: crate::config::PeerKind,
    pub state: State,
    pub since: SystemTime,
    pub info: String,
    pub routes_received: usize,
    /// How often the session has reached Established (GoBGP's "flops" + 1).
    pub established: u32,
}

/// What the speaker is doing now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpeakerState {
    pub router_id: Option<std::net::Ipv4Addr>,
    pub local_as: Option<u32>,
    pub listen_port: Option<u16>,
    /// In name order.
    pub peers: Vec<PeerState>,
    /// Prefixes in the Loc-RIB.
    pub routes: usize,
    /// Routes from our previous run not yet re-learned or swept.
    pub stale_fib_routes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("cannot open the kernel routing table: {0}")]
    Fib(#[from] crate::fib::FibError),
    #[error("cannot listen on BGP port {port}: {source}")]
    Listen { port: u16, source: std::io::Error },
}

enum Command {
    Apply(Box<Desired>),
    Shutdown,
}

/// A running speaker.
pub struct Speaker {
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<SpeakerState>,
    task: JoinHandle<()>,
}

impl Speaker {
    /// Opens the FIB (finding our previous run's routes, which are kept) and starts the speaker
    /// task. No session starts before the first [`Speaker::apply`]. Sockets and the netlink
    /// socket belong to the calling thread's network namespace.
    pub async fn start(options: Options) -> Result<Speaker, SpeakerError> {
        let fib = Fib::open(options.table)?;
        let stale = fib.stale_count();
        let (commands, rx) = mpsc::channel(16);
        let (state_tx, state) = watch::channel(SpeakerState {
            stale_fib_routes: fib.stale_count(),
            ..Default::default()
        });
        // Bounded: when the kernel is the bottleneck, the speaker waits for it instead of
        // queueing a full table of pending routes in memory.
        let (fib_tx, fib_rx) = mpsc::channel(FIB_QUEUE);
        let (fib_done_tx, fib_done) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("bgp-fib".into())
            .spawn(move || fib_thread(fib, fib_rx, fib_done_tx))
            .map_err(|e| SpeakerError::Fib(crate::fib::FibError::Socket(e)))?;
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let core = Core {
            options: options.clone(),
            rib: None,
            peers: BTreeMap::new(),
            next_id: 1,
            events_tx,
            listener: None,
            listen_port: None,
            fib: fib_tx,
            pending_fib: Vec::new(),
            pending_sweep: false,
            install: Arc::new(|_: &IpNetwork| true),
            stale_deadlines: HashMap::new(),
            restart_deadline: Some(
                Instant::now() + Duration::from_secs(u64::from(options.restart_time)),
            ),
            eor_seen: HashSet::new(),
            state: state_tx,
            fib_stale: stale,
        };
        let task = tokio::spawn(core.run(rx, events, fib_done));
        Ok(Speaker {
            commands,
            state,
            task,
        })
    }

    /// Reconciles with `desired`.
    pub async fn apply(&self, desired: Desired) {
        let _ = self.commands.send(Command::Apply(Box::new(desired))).await;
    }

    pub fn state(&self) -> watch::Receiver<SpeakerState> {
        self.state.clone()
    }

    /// Ends the speaker for a restart: sessions close without NOTIFICATION, so graceful-restart
    /// peers keep our routes as stale, and our kernel routes stay; the next run takes them over
    /// and sweeps what is no longer wanted (RFC 4724).
    pub async fn shutdown(self) {
        let _ = self.commands.send(Command::Shutdown).await;
        let _ = self.task.await;
    }
}

/// What the FIB task is asked to do.
enum FibCommand {
    Routes(Vec<FibRoute>),
    Sweep,
}

/// What the FIB task reports back.
enum FibReport {
    StaleLeft(usize),
}

/// Applies route batches in order, merging whatever queued up while the last batch was being
/// written, so a burst of UPDATEs becomes a few large netlink writes. A thread of its own: the
/// netlink writes block.
fn fib_thread(
    mut fib: Fib,
    mut rx: mpsc::Receiver<FibCommand>,
    report: mpsc::UnboundedSender<FibReport>,
) {
    while let Some(cmd) = rx.blocking_recv() {
        let mut batch = Vec::new();
        let mut sweep = false;
        let mut next = Some(cmd);
        while let Some(cmd) = next {
            match cmd {
                FibCommand::Routes(r) => batch.extend(r),
                FibCommand::Sweep => sweep = true,
            }
            next = if batch.len() < FIB_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() {
            let started = std::time::Instant::now();
            match fib.apply(&batch) {
                Ok(r) => {
                    tracing::debug!(routes = batch.len(), installed = r.installed, deleted = r.deleted,
                        took = ?started.elapsed(), "kernel routes written");
                    for (prefix, why) in &r.failed {
                        tracing::warn!(%prefix, error = %why, "kernel refused route");
                    }
                }
                Err(e) => tracing::error!(error = %e, "writing kernel routes failed"),
            }
        }
        if sweep {
            match fib.sweep_stale() {
                Ok(n) => tracing::info!(removed = n, "swept routes left by our previous run"),
                Err(e) => tracing::error!(error = %e, "sweeping stale kernel routes failed"),
            }
        }
        let _ = report.send(FibReport::StaleLeft(fib.stale_count()));
    }
}

struct PeerEntry {
    config: PeerConfig,
    spec: PeerSpec,
    policy: Arc<dyn Policy>,
    commands: mpsc::UnboundedSender<PeerCommand>,
    task: tokio::task::AbortHandle,
    session: Option<SessionInfo>,
    state: PeerState,
}

struct Core {
    options: Options,
    rib: Option<Rib>,
    peers: BTreeMap<PeerId, PeerEntry>,
    next_id: u32,
    events_tx: mpsc::Sender<(PeerId, PeerEvent)>,
    listener: Option<Listener>,
    listen_port: Option<u16>,
    fib: mpsc::Sender<FibCommand>,
    /// Kernel route changes waiting to be handed to the FIB thread.
    pending_fib: Vec<FibRoute>,
    pending_sweep: bool,
    install: InstallFilter,
    /// RFC 4724 helper: when each restarting peer's stale routes expire.
    stale_deadlines: HashMap<PeerId, Instant>,
    /// RFC 4724 restarting speaker: when to sweep our previous run's routes at the latest.
    restart_deadline: Option<Instant>,
    eor_seen: HashSet<PeerId>,
    state: watch::Sender<SpeakerState>,
    fib_stale: usize,
}

async fn accept(
    listener: &Option<Listener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Core {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut events: mpsc::Receiver<(PeerId, PeerEvent)>,
        mut fib_reports: mpsc::UnboundedReceiver<FibReport>,
    ) {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::Apply(d)) => self.apply(*d).await,
                    Some(Command::Shutdown) | None => break,
                },
                Some((id, event)) = events.recv() => self.event(id, event),
                r = accept(&self.listener) => match r {
                    Ok((stream, from)) => self.incoming(stream, from),
                    Err(e) => tracing::warn!(error = %e, "accept failed"),
                },
                Some(FibReport::StaleLeft(n)) = fib_reports.recv() => {
                    self.fib_stale = n;
                    self.publish();
                }
                _ = sleep_until(deadline) => self.timers(),
            }
            self.flush_fib().await;
        }
        // A restart, not a goodbye: the sessions end without NOTIFICATION, so every peer that
        // negotiated graceful restart keeps our routes while we are away (RFC 4724 §4.2), and
        // our kernel routes stay for the next run to take over.
        for entry in self.peers.values() {
            entry.task.abort();
        }
    }

    /// Hands pending kernel changes to the FIB thread, waiting while its queue is full.
    async fn flush_fib(&mut self) {
        if !self.pending_fib.is_empty() {
            let routes = std::mem::take(&mut self.pending_fib);
            let _ = self.fib.send(FibCommand::Routes(routes)).await;
        }
        if std::mem::take(&mut self.pending_sweep) {
            let _ = self.fib.send(FibCommand::Sweep).await;
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.stale_deadlines
            .values()
            .copied()
            .chain(self.restart_deadline)
            .min()
    }

    fn timers(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .stale_deadlines
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.stale_deadlines.remove(&id);
            tracing::info!(peer = %id, "restart time over: dropping the peer's stale routes");
            if let Some(rib) = &mut self.rib {
                let changes = rib.stale_expired(id);
                self.dispatch(changes);
            }
        }
        if self.restart_deadline.is_some_and(|d| d <= now) {
            tracing::info!("restart time over: sweeping routes of our previous run");
            self.sweep();
        }
    }

    fn sweep(&mut self) {
        self.restart_deadline = None;
        self.pending_sweep = true;
    }

    async fn apply(&mut self, desired: Desired) {
        let node = &desired.node;
        let local = LocalSpeaker {
            router_id: node.router_id,
            asn: node.local_as,
            cluster_id: node.cluster_id.as_deref().and_then(|c| c.parse().ok()),
        };
        // A new identity (router ID, AS, cluster ID) means new sessions everywhere.
        let identity_changed = self.rib.as_ref().is_none_or(|r| *r.local() != local);
        if identity_changed {
            for id in self.peers.keys().copied().collect::<Vec<_>>() {
                self.remove_peer(id);
            }
            self.rib = Some(Rib::new(local));
        }
        if !Arc::ptr_eq(&self.install, &desired.install) {
            self.reinstall(&desired.install);
        }
        self.listen(self.options.listen_port.unwrap_or(node.listen_port));
        // Local routes first: a peer that comes up must get them before our End-of-RIB.
        if let Some(rib) = &mut self.rib {
            let changes = rib.set_local_routes(desired.local_routes.clone());
            self.dispatch(changes);
        }
        let mut wanted: BTreeMap<&str, &PeerConfig> = BTreeMap::new();
        for p in &node.peers {
            wanted.insert(p.name.as_str(), p);
        }
        // Stop what is gone or changed.
        let mut keep: HashSet<String> = HashSet::new();
        for (id, entry) in self.peers.iter() {
            let name = entry.config.name.as_str();
            match wanted.get(name) {
                // The spec holds the resolved password: a new password is a new session.
                Some(cfg)
                    if **cfg == entry.config
                        && self.spec(cfg, &desired, *id).same_session(&entry.spec) =>
                {
                    keep.insert(name.to_string());
                }
                _ => {}
            }
        }
        let stale: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, e)| !keep.contains(&e.config.name))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.remove_peer(id);
        }
        // Policy changes on kept sessions, then new sessions.
        for cfg in wanted.values() {
            let policy = desired
                .policies
                .get(&cfg.name)
                .cloned()
                .unwrap_or_else(|| desired.default_policy.clone());
            if let Some((id, entry)) = self
                .peers
                .iter_mut()
                .find(|(_, e)| e.config.name == cfg.name)
            {
                let id = *id;
                // The caller hands the same Arc again while a peer's policy inputs are unchanged.
                if !Arc::ptr_eq(&entry.policy, &policy) {
                    entry.policy = policy.clone();
                    let _ = entry.commands.send(PeerCommand::RequestRefresh);
                    if let Some(rib) = &mut self.rib {
                        let changes = rib.set_policy(id, policy);
                        self.dispatch(changes);
                    }
                }
                continue;
            }
            self.add_peer(cfg, &desired, policy);
        }
        self.publish();
    }

    /// A new install filter (a pool's encapsulation changed): learned routes it now admits go
    /// into the kernel, those it now refuses come out.
    fn reinstall(&mut self, install: &InstallFilter) {
        if let Some(rib) = &self.rib {
            for r in rib.learned_routes() {
                let (was, is) = ((self.install)(&r.prefix), install(&r.prefix));
                if was != is {
                    self.pending_fib.push(FibRoute {
                        prefix: r.prefix,
                        next_hops: if is { r.next_hops } else { Vec::new() },
                    });
                }
            }
        }
        self.install = install.clone();
    }

    fn spec(&self, cfg: &PeerConfig, desired: &Desired, id: PeerId) -> PeerSpec {
        let node = &desired.node;
        let local_as = cfg.local_as.unwrap_or(node.local_as);
        let mut fsm = fsm::Config::new(
            local_as,
            PeerAs::Exact(cfg.peer_as),
            RouterId(node.router_id),
        );
        fsm.hold_time = HOLD_TIME;
        fsm.keepalive_time = cfg
            .keepalive_time
            .map(|k| u16::try_from(k).unwrap_or(u16::MAX).max(1));
        fsm.connect_retry_time = self.options.connect_retry_time;
        fsm.passive = cfg.passive;
        fsm.auto_restart = Some(IDLE_HOLD);
        fsm.graceful_restart = Some(fsm::GracefulRestart {
            restart_time: cfg
                .max_restart_time
                .map_or(self.options.restart_time, |t| {
                    u16::try_from(t).unwrap_or(4095)
                })
                .min(4095),
        });
        let family = if cfg.ip.is_ipv4() {
            Family::IPV4_UNICAST
        } else {
            Family::IPV6_UNICAST
        };
        PeerSpec {
            id,
            name: cfg.name.clone(),
            remote: SocketAddr::new(
                cfg.ip,
                cfg.port.unwrap_or(crate::config::DEFAULT_LISTEN_PORT),
            ),
            fsm,
            transport: transport::Options {
                source_address: cfg.source_address,
                md5_password: desired.passwords.get(&cfg.name).cloned(),
                ttl_security: cfg.ttl_security,
            },
            family,
            // Our previous run's routes are still in the kernel: ask peers to keep ours.
            restarting: self.restart_deadline.is_some() && self.fib_stale > 0,
        }
    }

    fn add_peer(&mut self, cfg: &PeerConfig, desired: &Desired, policy: Arc<dyn Policy>) {
        let id = PeerId(self.next_id);
        self.next_id += 1;
        let spec = self.spec(cfg, desired, id);
        if let Some(l) = &self.listener
            && let Err(e) = l.set_md5(cfg.ip, spec.transport.md5_password.as_deref())
        {
            tracing::error!(peer = %cfg.name, error = %e, "cannot set the TCP MD5 key");
        }
        let (commands, task) = peer::spawn(spec.clone(), self.events_tx.clone());
        tracing::info!(peer = %cfg.name, address = %cfg.ip, "session configured");
        self.peers.insert(
            id,
            PeerEntry {
                state: PeerState {
                    name: cfg.name.clone(),
                    address: cfg.ip,
                    port: spec.remote.port(),
                    kind: cfg.kind,
                    state: State::Idle,
                    since: SystemTime::now(),
                    info: String::new(),
                    routes_received: 0,
                    established: 0,
                },
                config: cfg.clone(),
                spec,
                policy,
                commands,
                task: task.abort_handle(),
                session: None,
            },
        );
    }

    fn remove_peer(&mut self, id: PeerId) {
        let Some(entry) = self.peers.remove(&id) else {
            return;
        };
        tracing::info!(peer = %entry.config.name, "session deconfigured");
        let _ = entry.commands.send(PeerCommand::Stop);
        if let Some(l) = &self.listener
            && entry.spec.transport.md5_password.is_some()
            && !self.peers.values().any(|e| e.config.ip == entry.config.ip)
        {
            let _ = l.set_md5(entry.config.ip, None);
        }
        self.stale_deadlines.remove(&id);
        self.eor_seen.remove(&id);
        if let Some(rib) = &mut self.rib {
            let changes = rib.peer_down(id, RouteDisposition::Withdraw);
            self.dispatch(changes);
        }
    }

    fn listen(&mut self, port: u16) {
        if self.listen_port == Some(port) && self.listener.is_some() {
            return;
        }
        match Listener::bind(port) {
            Ok(l) => {
                let actual = l.port().unwrap_or(port);
                tracing::info!(port = actual, "listening for BGP connections");
                for e in self.peers.values() {
                    if let Err(err) =
                        l.set_md5(e.config.ip, e.spec.transport.md5_password.as_deref())
                    {
                        tracing::error!(peer = %e.config.name, error = %err, "cannot set the TCP MD5 key");
                    }
                }
                self.listener = Some(l);
                self.listen_port = Some(port);
            }
            Err(e) => {
                tracing::error!(port, error = %e, "cannot listen for BGP connections; sessions will only dial");
            }
        }
    }

    fn incoming(&mut self, stream: tokio::net::TcpStream, from: SocketAddr) {
        let ip = match from.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match self.peers.values().find(|e| e.config.ip == ip) {
            Some(e) => {
                let _ = e.commands.send(PeerCommand::Incoming(stream));
            }
            None => tracing::debug!(%from, "connection from an address that is not a peer"),
        }
    }

    fn event(&mut self, id: PeerId, event: PeerEvent) {
        let Some(entry) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(rib) = &mut self.rib else { return };
        let changes = match event {
            PeerEvent::Established(info) => {
                let settings = PeerSettings {
                    address: entry.config.ip,
                    local_address: info.local_address,
                    router_id: info.negotiated.peer_id.0,
                    peer_as: info.negotiated.peer_as,
                    local_as: entry.spec.fsm.local_as,
                    internal: info.negotiated.internal,
                    rr_client: entry.config.route_reflector_client,
                    next_hop: entry.config.next_hop,
                    num_allowed_local_as: entry.config.num_allowed_local_as.unwrap_or(0),
                    four_octet_as: info.codec.four_octet_as,
                    policy: entry.policy.clone(),
                };
                entry.session = Some(info);
                entry.state.established += 1;
                self.stale_deadlines.remove(&id);
                rib.peer_up(id, settings)
            }
            PeerEvent::Update { epoch, update } => {
                if entry.session.as_ref().map(|s| s.epoch) != Some(epoch) {
                    return;
                }
                if let Some(family) = update.end_of_rib_family() {
                    tracing::info!(peer = %entry.config.name, ?family,
                        routes = rib.received_count(id), "End-of-RIB received");
                    self.eor_seen.insert(id);
                }
                let changes = rib.update(id, update);
                entry.state.routes_received = rib.received_count(id);
                changes
            }
            PeerEvent::Withdraw { epoch, prefixes } => {
                if entry.session.as_ref().map(|s| s.epoch) != Some(epoch) {
                    return;
                }
                let changes = rib.withdraw(id, &prefixes);
                entry.state.routes_received = rib.received_count(id);
                changes
            }
            PeerEvent::RouteRefresh { epoch, .. } => {
                let out = rib.adj_rib_out(id);
                let _ = entry.commands.send(PeerCommand::Send {
                    epoch,
                    updates: out,
                });
                return;
            }
            PeerEvent::Down(disposition) => {
                entry.session = None;
                if let RouteDisposition::KeepStale { restart_time } = disposition {
                    self.stale_deadlines.insert(
                        id,
                        Instant::now() + Duration::from_secs(u64::from(restart_time)),
                    );
                }
                let changes = rib.peer_down(id, disposition);
                entry.state.routes_received = rib.received_count(id);
                changes
            }
            PeerEvent::State { state, info } => {
                if state != entry.state.state {
                    entry.state.since = SystemTime::now();
                }
                entry.state.state = state;
                entry.state.info = info;
                self.publish();
                return;
            }
            PeerEvent::Stopped => return,
        };
        self.dispatch(changes);
        self.check_restart_done();
        self.publish();
    }

    /// RFC 4724 §4.1: the restarting speaker sweeps its stale routes once every peer has sent
    /// End-of-RIB.
    fn check_restart_done(&mut self) {
        if self.restart_deadline.is_none() {
            return;
        }
        if !self.peers.is_empty() && self.peers.keys().all(|id| self.eor_seen.contains(id)) {
            tracing::info!("End-of-RIB from every peer: sweeping routes of our previous run");
            self.sweep();
        }
    }

    fn dispatch(&mut self, changes: Changes) {
        let mut per_peer: HashMap<PeerId, Vec<OutUpdate>> = HashMap::new();
        for (id, out) in changes.out {
            per_peer.entry(id).or_default().push(out);
        }
        for (id, updates) in per_peer {
            if let Some(entry) = self.peers.get(&id)
                && let Some(s) = &entry.session
            {
                let _ = entry.commands.send(PeerCommand::Send {
                    epoch: s.epoch,
                    updates,
                });
            }
        }
        let routes: Vec<FibRoute> = changes
            .fib
            .into_iter()
            .filter(|c| (self.install)(&c.prefix))
            .map(|c| FibRoute {
                prefix: c.prefix,
                next_hops: c.next_hops,
            })
            .collect();
        if !routes.is_empty() {
            self.pending_fib.extend(routes);
        }
    }

    fn publish(&self) {
        let rib = self.rib.as_ref();
        let mut peers: Vec<PeerState> = self.peers.values().map(|e| e.state.clone()).collect();
        peers.sort_by(|a, b| a.name.cmp(&b.name));
        let state = SpeakerState {
            router_id: rib.map(|r| r.local().router_id),
            local_as: rib.map(|r| r.local().asn.0),
            listen_port: self.listener.as_ref().and_then(|l| l.port().ok()),
            peers,
            routes: rib.map_or(0, Rib::route_count),
            stale_fib_routes: self.fib_stale,
        };
        self.state.send_if_modified(|s| {
            if *s == state {
                false
            } else {
                *s = state;
                true
            }
        });
    }
}

impl PeerSpec {
    /// Whether two specs describe the same session (the id aside).
    fn same_session(&self, other: &PeerSpec) -> bool {
        self.remote == other.remote
            && self.fsm == other.fsm
            && self.transport == other.transport
            && self.family == other.family
    }
}
