//! One tokio task per configured peer: the I/O shell around [`crate::fsm`].
//!
//! The task owns the peer's TCP connections (at most two while a collision is resolved, RFC 4271
//! §6.8), each with its own [`Session`], its timers as deadlines, a reader task that cuts the
//! byte stream into messages and decodes them ([`crate::wire::Codec`]) and a writer task, so the
//! session never blocks on a slow peer. It reports to the speaker with [`PeerEvent`]s (session
//! up with what was negotiated, UPDATEs as RFC 7606 judged them, ROUTE-REFRESH requests, session
//! down with what to do with the peer's routes, state changes for `calicoctl node status`) and
//! takes [`PeerCommand`]s (an accepted connection, UPDATEs to send, stop).
//!
//! It never touches the RIB or the kernel, and never blocks on the speaker except to hand it a
//! received UPDATE (which is the back-pressure that keeps a full table from piling up in memory).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ipnetwork::IpNetwork;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use api::asn::Asn;

use crate::fsm::{
    self, Action, CeaseSubcode, Connection, Event, FsmErrorSubcode, HeaderErrorSubcode, Negotiated,
    NotificationError, OpenErrorSubcode, PeerOpen, RouteDisposition, RouterId, Session, Speaker,
    State, Timer, UpdateErrorSubcode,
};
use crate::rib::OutUpdate;
use crate::route::PeerId;
use crate::transport;
use crate::wire::{
    self, Capability, Codec, DecodeError, ErrorCode, Family, GracefulRestartFamily, Inbound,
    Message, Open, PathAttributes, RouteRefresh, Update, UpdateOutcome,
};

/// Messages decoded ahead of the session: enough to keep the socket busy, few enough that a
/// full table waits in the kernel's socket buffer rather than in our memory.
const READ_AHEAD: usize = 64;

/// How long a closing connection may take to deliver its last NOTIFICATION.
const LINGER: Duration = Duration::from_secs(2);

/// What a peer task needs to run one session.
#[derive(Clone, Debug)]
pub struct PeerSpec {
    pub id: PeerId,
    /// BIRD-style protocol name (`Mesh_10_0_0_2`), for logs.
    pub name: String,
    pub remote: SocketAddr,
    pub fsm: fsm::Config,
    pub transport: transport::Options,
    /// The family offered in the multiprotocol capability: the peer address's family, one
    /// session per family as Calico's BIRD configuration has it.
    pub family: Family,
    /// RFC 4724 §3 R bit for the first session after our own restart: we are restarting and
    /// kept our forwarding state, so the peer should keep our routes until our End-of-RIB.
    pub restarting: bool,
}

/// What the speaker can ask of a peer task.
#[derive(Debug)]
pub enum PeerCommand {
    /// The listener accepted a connection from this peer.
    Incoming(TcpStream),
    /// Send these, if the session `epoch` is still the one up.
    Send { epoch: u64, updates: Vec<OutUpdate> },
    /// Ask the peer to resend its routes (RFC 2918), e.g. after our import policy changed.
    RequestRefresh,
    /// The peer was deconfigured: Cease and end the task.
    Stop,
}

/// What the session settled when it reached Established.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionInfo {
    /// Increases with every Established; commands for an older epoch are dropped.
    pub epoch: u64,
    pub negotiated: Negotiated,
    pub local_address: IpAddr,
    pub codec: Codec,
    /// Families both sides advertised.
    pub families: Vec<Family>,
    /// The peer supports ROUTE-REFRESH (RFC 2918).
    pub route_refresh: bool,
    /// The peer's Graceful Restart capability as sent (RFC 4724 §3).
    pub peer_graceful_restart: Option<wire::GracefulRestart>,
}

/// What a peer task reports.
#[expect(
    clippy::large_enum_variant,
    reason = "UPDATEs are nearly every event; boxing them would allocate per message for nothing"
)]
#[derive(Clone, Debug)]
pub enum PeerEvent {
    Established(SessionInfo),
    /// An accepted UPDATE (possibly minus discarded attributes, RFC 7606).
    Update {
        epoch: u64,
        update: Update,
    },
    /// RFC 7606 treat-as-withdraw.
    Withdraw {
        epoch: u64,
        prefixes: Vec<IpNetwork>,
    },
    /// The peer asked for our routes again (RFC 2918).
    RouteRefresh {
        epoch: u64,
        family: Family,
    },
    Down(RouteDisposition),
    /// The session's state for status output, with the last error BIRD would show as info.
    State {
        state: State,
        info: String,
    },
    /// The task ended (after Stop).
    Stopped,
}

/// Starts the task for `spec`. Events go to `events` tagged with the peer's id.
pub fn spawn(
    spec: PeerSpec,
    events: mpsc::Sender<(PeerId, PeerEvent)>,
) -> (
    mpsc::UnboundedSender<PeerCommand>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = tokio::spawn(run(spec, rx, events));
    (tx, handle)
}

/// Something a connection's helper task reports to the peer task.
#[expect(
    clippy::large_enum_variant,
    reason = "messages are nearly every report; boxing them would allocate per message"
)]
enum Internal {
    Connected(io::Result<TcpStream>),
    Message(Result<Inbound, DecodeError>),
    Closed(String),
}

/// One TCP connection (or attempt) and its FSM.
struct Conn {
    session: Session,
    /// Identifies the current TCP connection; reports from an older one are ignored.
    serial: u64,
    initiated_locally: bool,
    /// Started from an accepted connection while another was open: it may never dial.
    accepted_second: bool,
    writer: Option<mpsc::UnboundedSender<Bytes>>,
    writer_task: Option<AbortHandle>,
    /// The reader and any connect attempt.
    tasks: Vec<AbortHandle>,
    timers: [Option<Instant>; 4],
    codec: Codec,
    local_address: Option<IpAddr>,
    peer_open: Option<Open>,
    /// The exact NOTIFICATION the codec chose for a decode error, sent instead of the FSM's
    /// reconstruction of it.
    pending_notification: Option<wire::Notification>,
}

fn timer_index(t: Timer) -> usize {
    match t {
        Timer::ConnectRetry => 0,
        Timer::Hold => 1,
        Timer::Keepalive => 2,
        Timer::IdleHold => 3,
    }
}

const TIMERS: [(Timer, Event); 4] = [
    (Timer::ConnectRetry, Event::ConnectRetryTimerExpires),
    (Timer::Hold, Event::HoldTimerExpires),
    (Timer::Keepalive, Event::KeepaliveTimerExpires),
    (Timer::IdleHold, Event::IdleHoldTimerExpires),
];

impl Conn {
    fn new(session: Session) -> Conn {
        Conn {
            session,
            serial: 0,
            initiated_locally: false,
            accepted_second: false,
            writer: None,
            writer_task: None,
            tasks: Vec::new(),
            timers: [None; 4],
            codec: Codec::default(),
            local_address: None,
            peer_open: None,
            pending_notification: None,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    fn close(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        // Dropping the sender lets the writer finish what is queued (the NOTIFICATION), then
        // shut the socket down; a peer that stops reading gets LINGER before it is cut off.
        self.writer = None;
        if let Some(w) = self.writer_task.take() {
            tokio::spawn(async move {
                tokio::time::sleep(LINGER).await;
                w.abort();
            });
        }
        self.codec = Codec::default();
        self.local_address = None;
        self.peer_open = None;
        self.pending_notification = None;
    }
}

struct Task {
    spec: PeerSpec,
    events: mpsc::Sender<(PeerId, PeerEvent)>,
    internal_tx: mpsc::Sender<(u64, Internal)>,
    main: Conn,
    second: Option<Conn>,
    next_serial: u64,
    epoch: u64,
    established_epoch: Option<u64>,
    restarting: bool,
    reported: (State, String),
    info: String,
}

/// Which of the task's connections an operation is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Slot {
    Main,
    Second,
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.spec.name, self.spec.remote)
    }
}

async fn run(
    spec: PeerSpec,
    mut commands: mpsc::UnboundedReceiver<PeerCommand>,
    events: mpsc::Sender<(PeerId, PeerEvent)>,
) {
    let (internal_tx, mut internal_rx) = mpsc::channel(READ_AHEAD);
    let session = match Session::new(spec.fsm) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(peer = %spec.name, error = %e, "invalid session configuration");
            let _ = events
                .send((
                    spec.id,
                    PeerEvent::State {
                        state: State::Idle,
                        info: e.to_string(),
                    },
                ))
                .await;
            // Keep the task (and so the peer's status) until the speaker stops it.
            while let Some(cmd) = commands.recv().await {
                if matches!(cmd, PeerCommand::Stop) {
                    break;
                }
            }
            let _ = events.send((spec.id, PeerEvent::Stopped)).await;
            return;
        }
    };
    let mut task = Task {
        restarting: spec.restarting,
        spec,
        events,
        internal_tx,
        main: Conn::new(session),
        second: None,
        next_serial: 1,
        epoch: 0,
        established_epoch: None,
        reported: (State::Idle, String::new()),
        info: String::new(),
    };
    task.step(Slot::Main, Event::ManualStart).await;
    loop {
        let deadline = task.next_deadline();
        tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(PeerCommand::Stop) | None => {
                    task.stop().await;
                    break;
                }
                Some(cmd) => task.command(cmd).await,
            },
            Some((serial, msg)) = internal_rx.recv() => task.internal(serial, msg).await,
            _ = sleep_until(deadline), if deadline.is_some() => task.fire_timers().await,
        }
    }
    let _ = task.events.send((task.spec.id, PeerEvent::Stopped)).await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Task {
    fn conn(&mut self, slot: Slot) -> Option<&mut Conn> {
        match slot {
            Slot::Main => Some(&mut self.main),
            Slot::Second => self.second.as_mut(),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let a = self.main.next_deadline();
        let b = self.second.as_ref().and_then(Conn::next_deadline);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    async fn emit(&self, event: PeerEvent) {
        // The speaker only goes away when the process stops.
        let _ = self.events.send((self.spec.id, event)).await;
    }

    async fn report_state(&mut self) {
        let now = (self.main.session.state(), self.info.clone());
        if now != self.reported {
            self.reported = now.clone();
            self.emit(PeerEvent::State {
                state: now.0,
                info: now.1,
            })
            .await;
        }
    }

    async fn fire_timers(&mut self) {
        let now = Instant::now();
        for slot in [Slot::Main, Slot::Second] {
            for (timer, event) in TIMERS {
                let due = self
                    .conn(slot)
                    .and_then(|c| c.timers[timer_index(timer)])
                    .is_some_and(|d| d <= now);
                if due {
                    if let Some(c) = self.conn(slot) {
                        c.timers[timer_index(timer)] = None;
                    }
                    if timer == Timer::Hold {
                        self.info = "Hold timer expired".into();
                    }
                    self.step(slot, event.clone()).await;
                }
            }
        }
    }

    async fn command(&mut self, cmd: PeerCommand) {
        match cmd {
            PeerCommand::Incoming(stream) => self.incoming(stream).await,
            PeerCommand::Send { epoch, updates } => {
                if self.established_epoch == Some(epoch) {
                    self.send_updates(&updates).await;
                }
            }
            PeerCommand::RequestRefresh => {
                if self.established_epoch.is_some() {
                    let family = self.spec.family;
                    self.send(
                        Slot::Main,
                        &Message::RouteRefresh(RouteRefresh::new(family)),
                    );
                }
            }
            PeerCommand::Stop => {}
        }
    }

    async fn stop(&mut self) {
        self.step(
            Slot::Main,
            Event::AutomaticStop(CeaseSubcode::PeerDeconfigured),
        )
        .await;
        if let Some(mut second) = self.second.take() {
            second.close();
        }
        // The writer delivers the Cease on its own; the task need not wait for it.
        self.main.close();
    }

    async fn incoming(&mut self, stream: TcpStream) {
        if let Err(e) = transport::accepted(&stream, &self.spec.transport) {
            tracing::warn!(peer = %self, error = %e, "cannot set up accepted connection");
            return;
        }
        match self.main.session.state() {
            // RFC 4271 §8.2.2: Idle refuses connections.
            State::Idle => {
                tracing::debug!(peer = %self, "refusing connection in Idle");
            }
            // No TCP connection yet: take this one and abandon our own attempt.
            State::Connect | State::Active => {
                self.main.close();
                self.attach(Slot::Main, stream, false);
                self.step(Slot::Main, Event::TcpConnectionConfirmed).await;
            }
            State::OpenSent | State::OpenConfirm | State::Established => {
                if self.second.is_some() {
                    tracing::debug!(peer = %self, "refusing a third connection");
                    return;
                }
                let mut config = self.spec.fsm;
                config.passive = true;
                let Ok(session) = Session::new(config) else {
                    return;
                };
                let mut conn = Conn::new(session);
                conn.accepted_second = true;
                self.second = Some(conn);
                self.step(Slot::Second, Event::ManualStartWithPassiveTcpEstablishment)
                    .await;
                self.attach(Slot::Second, stream, false);
                self.step(Slot::Second, Event::TcpConnectionConfirmed).await;
            }
        }
    }

    /// Gives `slot` the TCP connection `stream`, with its reader and writer tasks.
    fn attach(&mut self, slot: Slot, stream: TcpStream, initiated_locally: bool) {
        let serial = self.next_serial;
        self.next_serial += 1;
        let local_as = self.spec.fsm.local_as;
        let internal = self.internal_tx.clone();
        let Some(conn) = self.conn(slot) else { return };
        conn.serial = serial;
        conn.initiated_locally = initiated_locally;
        conn.local_address = stream.local_addr().ok().map(|a| a.ip());
        let (rd, wr) = stream.into_split();
        let (wtx, wrx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(serial, rd, local_as, internal));
        let writer = tokio::spawn(write_loop(wr, wrx));
        conn.tasks.push(reader.abort_handle());
        conn.writer = Some(wtx);
        conn.writer_task = Some(writer.abort_handle());
    }

    async fn internal(&mut self, serial: u64, msg: Internal) {
        let slot = if self.main.serial == serial {
            Slot::Main
        } else if self.second.as_ref().is_some_and(|c| c.serial == serial) {
            Slot::Second
        } else {
            return;
        };
        match msg {
            Internal::Connected(Ok(stream)) => {
                self.info.clear();
                self.attach(slot, stream, true);
                self.step(slot, Event::TcpCrAcked).await;
            }
            Internal::Connected(Err(e)) => {
                self.info = format!("Socket: {}", io_reason(&e));
                self.step(slot, Event::TcpConnectionFails).await;
            }
            Internal::Closed(reason) => {
                self.info = reason;
                self.step(slot, Event::TcpConnectionFails).await;
            }
            Internal::Message(Ok(inbound)) => self.message(slot, inbound).await,
            Internal::Message(Err(e)) => {
                tracing::warn!(peer = %self, error = %e, "malformed message");
                self.info = format!("Error: {e}");
                let event = match e.notification.code {
                    ErrorCode::MessageHeader(_) => {
                        Event::BgpHeaderErr(fsm_notification(&e.notification))
                    }
                    ErrorCode::Open(_) => Event::BgpOpenMsgErr(fsm_notification(&e.notification)),
                    ErrorCode::Update(_) => Event::UpdateMsgErr(fsm_notification(&e.notification)),
                    _ => Event::BgpHeaderErr(fsm_notification(&e.notification)),
                };
                if let Some(c) = self.conn(slot) {
                    c.pending_notification = Some(e.notification);
                }
                self.step(slot, event).await;
            }
        }
    }

    async fn message(&mut self, slot: Slot, inbound: Inbound) {
        match inbound {
            Inbound::Open(open) => {
                let peer_open = peer_open(&open);
                let local_as = self.spec.fsm.local_as;
                if let Some(c) = self.conn(slot) {
                    c.codec = Codec {
                        four_octet_as: open.four_octet_as(),
                        external: open.asn() != local_as,
                    };
                    c.peer_open = Some(open);
                }
                self.step(slot, Event::BgpOpen(peer_open)).await;
                self.resolve_collision(slot).await;
            }
            Inbound::Keepalive => {
                self.step(slot, Event::KeepAliveMsg).await;
            }
            Inbound::Notification(n) => {
                tracing::info!(peer = %self, notification = %n, "received NOTIFICATION");
                self.info = format!("Received: {n}");
                let event = if n.code == ErrorCode::Open(wire::OpenError::UnsupportedVersionNumber)
                {
                    Event::NotifMsgVerErr
                } else {
                    Event::NotifMsg
                };
                self.step(slot, event).await;
            }
            Inbound::RouteRefresh(rr) => {
                if let (Slot::Main, Some(epoch)) = (slot, self.established_epoch) {
                    self.emit(PeerEvent::RouteRefresh {
                        epoch,
                        family: rr.family,
                    })
                    .await;
                }
            }
            Inbound::Update(outcome) => {
                let actions = self.step(slot, Event::UpdateMsg).await;
                let process = actions.iter().any(|a| matches!(a, Action::ProcessUpdate));
                let Some(epoch) = self.established_epoch.filter(|_| process) else {
                    return;
                };
                let event = match outcome {
                    UpdateOutcome::Accept(update) => PeerEvent::Update { epoch, update },
                    UpdateOutcome::AttributeDiscard { update, discarded } => {
                        for d in &discarded {
                            tracing::warn!(peer = %self, attribute = d.type_code, reason = %d.reason,
                                "RFC 7606 attribute discard");
                        }
                        PeerEvent::Update { epoch, update }
                    }
                    UpdateOutcome::TreatAsWithdraw { withdrawn, errors } => {
                        for d in &errors {
                            tracing::warn!(peer = %self, attribute = d.type_code, reason = %d.reason,
                                "RFC 7606 treat-as-withdraw");
                        }
                        PeerEvent::Withdraw {
                            epoch,
                            prefixes: withdrawn,
                        }
                    }
                };
                self.emit(event).await;
            }
        }
    }

    /// RFC 4271 §6.8, run when `slot` has just accepted an OPEN. Also RFC 4724 §4.2: a new
    /// connection from a peer whose Established session negotiated graceful restart means the
    /// peer restarted; the old session is treated as a TCP failure (its routes kept stale).
    async fn resolve_collision(&mut self, slot: Slot) {
        let Some(second) = &self.second else { return };
        let (new, existing) = match slot {
            Slot::Second => (second, &self.main),
            Slot::Main => (&self.main, second),
        };
        if new.session.state() != State::OpenConfirm {
            return;
        }
        let Some(remote_id) = new.session.negotiated().map(|n| n.peer_id) else {
            return;
        };
        let peer_restarted = slot == Slot::Second
            && existing.session.state() == State::Established
            && existing
                .session
                .negotiated()
                .is_some_and(|n| n.graceful_restart.is_some());
        if peer_restarted {
            tracing::info!(peer = %self, "peer restarted (RFC 4724): keeping its routes as stale");
            self.info = "Peer restarted".into();
            self.step(Slot::Main, Event::TcpConnectionFails).await;
            self.promote_second();
            return;
        }
        let local = Speaker {
            id: self.spec.fsm.local_id,
            asn: self.spec.fsm.local_as,
        };
        let remote = Speaker {
            id: remote_id,
            asn: new.session.negotiated().map_or(Asn(0), |n| n.peer_as),
        };
        let conn = |c: &Conn| Connection {
            state: c.session.state(),
            initiated_locally: c.initiated_locally,
        };
        let Some(loser) = fsm::resolve_collision(conn(existing), conn(new), local, remote) else {
            return;
        };
        let loser_slot = match (loser, slot) {
            (fsm::CollisionLoser::New, s) => s,
            (fsm::CollisionLoser::Existing, Slot::Main) => Slot::Second,
            (fsm::CollisionLoser::Existing, Slot::Second) => Slot::Main,
        };
        tracing::debug!(peer = %self, loser = ?loser_slot, "connection collision");
        self.step(loser_slot, Event::OpenCollisionDump).await;
        match loser_slot {
            Slot::Second => {
                if let Some(mut c) = self.second.take() {
                    c.close();
                }
            }
            Slot::Main => self.promote_second(),
        }
    }

    fn promote_second(&mut self) {
        if let Some(second) = self.second.take() {
            let mut old = std::mem::replace(&mut self.main, second);
            old.close();
        }
    }

    /// Feeds `event` to the FSM of `slot` and carries out its actions.
    async fn step(&mut self, slot: Slot, event: Event) -> Vec<Action> {
        let Some(conn) = self.conn(slot) else {
            return Vec::new();
        };
        let actions = conn.session.step(event);
        for action in &actions {
            self.act(slot, action).await;
        }
        // A promoted second connection must not stay passive-only once it has failed: give the
        // peer a fresh FSM with the configured behaviour.
        if slot == Slot::Main
            && self.main.accepted_second
            && self.main.session.state() == State::Idle
            && let Ok(session) = Session::new(self.spec.fsm)
        {
            self.main.close();
            self.main = Conn::new(session);
            Box::pin(self.step(Slot::Main, Event::AutomaticStart)).await;
        }
        if slot == Slot::Second
            && self
                .second
                .as_ref()
                .is_some_and(|c| c.session.state() == State::Idle)
            && let Some(mut c) = self.second.take()
        {
            c.close();
        }
        self.report_state().await;
        actions
    }

    async fn act(&mut self, slot: Slot, action: &Action) {
        match action {
            Action::InitiateTcpConnection => {
                let serial = self.next_serial;
                self.next_serial += 1;
                let remote = self.spec.remote;
                let opts = self.spec.transport.clone();
                let internal = self.internal_tx.clone();
                let Some(conn) = self.conn(slot) else { return };
                conn.serial = serial;
                let t = tokio::spawn(async move {
                    let r = transport::connect(remote, &opts).await;
                    let _ = internal.send((serial, Internal::Connected(r))).await;
                });
                conn.tasks.push(t.abort_handle());
            }
            Action::ListenForConnections | Action::ReleaseResources | Action::ProcessUpdate => {}
            Action::DropTcpConnection => {
                if let Some(c) = self.conn(slot) {
                    c.close();
                    // Reports from the dropped connection are stale from now on.
                    c.serial = 0;
                }
            }
            Action::SendOpen(local) => {
                let open = self.local_open(local);
                self.send(slot, &Message::Open(open));
            }
            Action::SendKeepalive => self.send(slot, &Message::Keepalive),
            Action::SendNotification(n) => {
                let wire_n = self
                    .conn(slot)
                    .and_then(|c| c.pending_notification.take())
                    .unwrap_or_else(|| wire_notification(n));
                if self.info.is_empty() {
                    self.info = format!("Sent: {wire_n}");
                }
                tracing::info!(peer = %self, notification = %wire_n, "sending NOTIFICATION");
                self.send(slot, &Message::Notification(wire_n));
            }
            Action::StartTimer { timer, seconds } => {
                if let Some(c) = self.conn(slot) {
                    c.timers[timer_index(*timer)] =
                        Some(Instant::now() + Duration::from_secs(u64::from(*seconds)));
                }
            }
            Action::StopTimer(timer) => {
                if let Some(c) = self.conn(slot) {
                    c.timers[timer_index(*timer)] = None;
                }
            }
            Action::SessionEstablished(negotiated) => {
                self.info.clear();
                // Only one connection may be Established; a surviving second one is promoted
                // first by collision resolution, so this is always the main one.
                if slot == Slot::Second {
                    self.promote_second();
                }
                self.epoch += 1;
                self.established_epoch = Some(self.epoch);
                // The R bit is for the first session after our restart only (RFC 4724 §4.1).
                self.restarting = false;
                let info = self.session_info(*negotiated);
                tracing::info!(peer = %self, peer_as = %negotiated.peer_as,
                    hold = negotiated.hold_time, "session Established");
                self.emit(PeerEvent::Established(info)).await;
            }
            Action::SessionDown(disposition) => {
                self.established_epoch = None;
                tracing::info!(peer = %self, ?disposition, reason = %self.info, "session down");
                self.emit(PeerEvent::Down(*disposition)).await;
            }
        }
    }

    fn session_info(&self, negotiated: Negotiated) -> SessionInfo {
        let conn = &self.main;
        let ours = [self.spec.family];
        let (families, route_refresh, gr) = match &conn.peer_open {
            Some(open) => (
                open.families()
                    .into_iter()
                    .filter(|f| ours.contains(f))
                    .collect(),
                open.capabilities
                    .iter()
                    .any(|c| matches!(c, Capability::RouteRefresh)),
                open.capabilities.iter().find_map(|c| match c {
                    Capability::GracefulRestart(g) => Some(g.clone()),
                    _ => None,
                }),
            ),
            None => (Vec::new(), false, None),
        };
        SessionInfo {
            epoch: self.epoch,
            negotiated,
            local_address: conn.local_address.unwrap_or(self.spec.remote.ip()),
            codec: conn.codec,
            families,
            route_refresh,
            peer_graceful_restart: gr,
        }
    }

    fn local_open(&self, local: &fsm::LocalOpen) -> Open {
        let mut caps = vec![
            Capability::Multiprotocol(self.spec.family),
            Capability::RouteRefresh,
        ];
        if let Some(gr) = local.graceful_restart {
            caps.push(Capability::GracefulRestart(wire::GracefulRestart {
                restart_state: self.restarting,
                notification: false,
                restart_time: gr.restart_time.min(4095),
                families: vec![GracefulRestartFamily {
                    family: self.spec.family,
                    // We keep our kernel routes across our own restart (RFC 4724 §4.1).
                    forwarding_state: self.restarting,
                }],
            }));
        }
        Open::new(local.four_octet_as, local.hold_time, local.bgp_id.0, caps)
    }

    /// Encodes and queues `msg` on `slot`'s connection.
    fn send(&mut self, slot: Slot, msg: &Message) {
        let Some(conn) = self.conn(slot) else { return };
        let Some(writer) = &conn.writer else { return };
        match conn.codec.encode_to_bytes(msg) {
            Ok(bytes) => {
                let _ = writer.send(bytes);
            }
            Err(e) => tracing::error!(error = %e, "cannot encode message"),
        }
    }

    async fn send_updates(&mut self, updates: &[OutUpdate]) {
        let codec = self.main.codec;
        let two_octet = !codec.four_octet_as;
        let mut buf = BytesMut::new();
        for u in updates {
            let messages = match u {
                OutUpdate::Announce {
                    attrs,
                    next_hop,
                    prefixes,
                } => announce(&codec, attrs, *next_hop, prefixes, two_octet),
                OutUpdate::Withdraw(prefixes) => codec.pack_withdrawals(prefixes),
                OutUpdate::EndOfRib(family) if *family == self.spec.family => {
                    Ok(Update::end_of_rib(*family).into_iter().collect())
                }
                OutUpdate::EndOfRib(_) => Ok(Vec::new()),
            };
            match messages {
                Ok(ms) => {
                    for m in ms {
                        if let Err(e) = codec.encode(&Message::Update(m), &mut buf) {
                            tracing::error!(peer = %self, error = %e, "cannot encode UPDATE");
                        }
                    }
                }
                Err(e) => tracing::error!(peer = %self, error = %e, "cannot build UPDATE"),
            }
        }
        if buf.is_empty() {
            return;
        }
        if let Some(w) = &self.main.writer {
            let _ = w.send(buf.freeze());
            for a in self.main.session.update_sent() {
                Box::pin(self.act(Slot::Main, &a)).await;
            }
        }
    }
}

fn announce(
    codec: &Codec,
    attrs: &PathAttributes,
    next_hop: IpAddr,
    prefixes: &[IpNetwork],
    two_octet: bool,
) -> Result<Vec<Update>, wire::EncodeError> {
    let base = if two_octet {
        attrs.for_two_octet_peer()
    } else {
        attrs.clone()
    };
    let v4: Vec<_> = prefixes
        .iter()
        .filter_map(|p| match p {
            IpNetwork::V4(n) => Some(*n),
            IpNetwork::V6(_) => None,
        })
        .collect();
    let v6: Vec<_> = prefixes
        .iter()
        .filter_map(|p| match p {
            IpNetwork::V6(n) => Some(*n),
            IpNetwork::V4(_) => None,
        })
        .collect();
    let mut out = Vec::new();
    if !v4.is_empty() {
        let mut a = base.clone();
        if let IpAddr::V4(nh) = next_hop {
            a.next_hop = Some(nh);
        }
        out.extend(codec.pack_announcements(&a, &v4)?);
    }
    if !v6.is_empty()
        && let IpAddr::V6(nh) = next_hop
    {
        let mut a = base;
        a.next_hop = None;
        let reach = wire::MpReach::Ipv6Unicast {
            next_hop: nh,
            link_local: None,
            nlri: v6,
        };
        out.extend(codec.pack_mp_announcements(&a, &reach)?);
    }
    Ok(out)
}

/// Cuts the stream into messages and decodes them until the connection or a message fails.
async fn read_loop(
    serial: u64,
    mut rd: OwnedReadHalf,
    local_as: Asn,
    out: mpsc::Sender<(u64, Internal)>,
) {
    let mut codec = Codec::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        loop {
            let len = match wire::frame_length(&buf) {
                Ok(Some(len)) if buf.len() >= len => len,
                Ok(_) => break,
                Err(e) => {
                    let _ = out.send((serial, Internal::Message(Err(e)))).await;
                    return;
                }
            };
            let frame = buf.split_to(len);
            let decoded = codec.decode(&frame);
            let failed = decoded.is_err();
            if let Ok(Inbound::Open(open)) = &decoded {
                // RFC 6793 §4.1: 4-octet AS numbers once both sides advertised the capability
                // (we always do); RFC 7606 §7.5 rules for external peers.
                codec = Codec {
                    four_octet_as: open.four_octet_as(),
                    external: open.asn() != local_as,
                };
            }
            if out
                .send((serial, Internal::Message(decoded)))
                .await
                .is_err()
                || failed
            {
                return;
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                let _ = out
                    .send((serial, Internal::Closed("Connection closed".into())))
                    .await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = out
                    .send((
                        serial,
                        Internal::Closed(format!("Socket: {}", io_reason(&e))),
                    ))
                    .await;
                return;
            }
        }
    }
}

async fn write_loop(mut wr: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    while let Some(bytes) = rx.recv().await {
        if wr.write_all(&bytes).await.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "Connection refused".into(),
        io::ErrorKind::ConnectionReset => "Connection reset by peer".into(),
        io::ErrorKind::TimedOut => "Connection timed out".into(),
        _ => e.to_string(),
    }
}

/// The FSM's view of a received OPEN.
fn peer_open(open: &Open) -> PeerOpen {
    PeerOpen {
        version: wire::BGP_VERSION,
        my_as: open.my_as,
        hold_time: open.hold_time,
        bgp_id: RouterId(open.bgp_id),
        four_octet_as: open.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        }),
        graceful_restart: open.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(fsm::GracefulRestart {
                restart_time: g.restart_time,
            }),
            _ => None,
        }),
    }
}

/// The wire form of a NOTIFICATION the FSM chose.
fn wire_notification(n: &fsm::Notification) -> wire::Notification {
    wire::Notification::new(
        ErrorCode::from_octets(n.code(), n.subcode()),
        n.data.clone(),
    )
}

/// The FSM's form of a NOTIFICATION the codec chose. Subcodes the FSM has no name for map to
/// the nearest general one; the codec's exact NOTIFICATION is what goes on the wire.
fn fsm_notification(n: &wire::Notification) -> fsm::Notification {
    let (code, sub) = n.code.octets();
    let error = match code {
        1 => NotificationError::MessageHeader(match sub {
            1 => HeaderErrorSubcode::ConnectionNotSynchronized,
            3 => HeaderErrorSubcode::BadMessageType,
            _ => HeaderErrorSubcode::BadMessageLength,
        }),
        2 => NotificationError::OpenMessage(match sub {
            1 => OpenErrorSubcode::UnsupportedVersionNumber,
            2 => OpenErrorSubcode::BadPeerAs,
            3 => OpenErrorSubcode::BadBgpIdentifier,
            6 => OpenErrorSubcode::UnacceptableHoldTime,
            7 => OpenErrorSubcode::UnsupportedCapability,
            _ => OpenErrorSubcode::UnsupportedOptionalParameter,
        }),
        3 => NotificationError::UpdateMessage(match sub {
            2 => UpdateErrorSubcode::UnrecognizedWellKnownAttribute,
            3 => UpdateErrorSubcode::MissingWellKnownAttribute,
            4 => UpdateErrorSubcode::AttributeFlagsError,
            5 => UpdateErrorSubcode::AttributeLengthError,
            6 => UpdateErrorSubcode::InvalidOriginAttribute,
            8 => UpdateErrorSubcode::InvalidNextHopAttribute,
            9 => UpdateErrorSubcode::OptionalAttributeError,
            10 => UpdateErrorSubcode::InvalidNetworkField,
            11 => UpdateErrorSubcode::MalformedAsPath,
            _ => UpdateErrorSubcode::MalformedAttributeList,
        }),
        4 => NotificationError::HoldTimerExpired,
        6 => NotificationError::Cease(CeaseSubcode::OtherConfigurationChange),
        _ => NotificationError::FiniteStateMachine(FsmErrorSubcode::Unspecified),
    };
    fsm::Notification {
        error,
        data: n.data.to_vec(),
    }
}
