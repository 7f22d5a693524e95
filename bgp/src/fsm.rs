//! The BGP-4 finite state machine of RFC 4271 §8, one per TCP connection to a peer.
//!
//! [`Session::step`] (also [`step`]) takes one [`Event`] and returns the [`Action`]s the I/O
//! shell must perform, in order: open or drop the TCP connection, send OPEN, KEEPALIVE or
//! NOTIFICATION, start or stop a timer, hand an UPDATE to the RIB, tell the RIB the session is up
//! or down. Nothing here does I/O, reads a clock or blocks: a timer is a `StartTimer` action out
//! and a `*TimerExpires` event in, so a test drives "hold timer expires" without waiting.
//!
//! The OPEN checks of RFC 4271 §6.2 (with RFC 6793's 4-octet AS numbers, RFC 6286's BGP
//! identifier rules and RFC 7607's AS 0) and the hold time negotiation of §4.2 are
//! [`check_open`]; connection collision resolution (§6.8) is [`resolve_collision`], which the
//! shell calls when it holds two connections to one peer and then delivers
//! [`Event::OpenCollisionDump`] to the loser. [`dials_first`] is Calico's rule for which end of
//! a mesh session opens the TCP connection.
//!
//! The optional session attributes of §8.1.1 are fixed: no DelayOpen, no
//! SendNOTIFICATIONwithoutOPEN, no CollisionDetectEstablishedState, PassiveTcpEstablishment from
//! the start event or [`Config::passive`], and peer oscillation damping as [`Config::auto_restart`]:
//! after an error the session restarts itself once its IdleHoldTimer expires, the wait doubling
//! on every restart that does not reach Established.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use api::asn::Asn;

/// The only BGP version we speak (RFC 4271 §4.2).
pub const BGP_VERSION: u8 = 4;

/// RFC 6793 §9: the 2-octet AS number a 4-octet-AS speaker puts in OPEN's My Autonomous System
/// field when its real AS does not fit.
pub const AS_TRANS: Asn = Asn(23456);

/// RFC 4271 §10: the suggested default hold time.
pub const DEFAULT_HOLD_TIME: u16 = 90;

/// RFC 4271 §10: the suggested default ConnectRetryTime.
pub const DEFAULT_CONNECT_RETRY_TIME: u16 = 120;

/// RFC 4271 §8.2.2: after sending OPEN, "the HoldTimer is set to a large value"; a value of 4
/// minutes is suggested.
pub const LARGE_HOLD_TIME: u16 = 240;

/// A BGP identifier (RFC 4271 §4.2, RFC 6286): 4 octets, written as an IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouterId(pub Ipv4Addr);

impl RouterId {
    /// RFC 4271 §6.8 compares identifiers "converted to host byte order and treated as 4-octet
    /// unsigned integers".
    pub fn to_u32(self) -> u32 {
        u32::from(self.0)
    }
}

impl fmt::Display for RouterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The states of RFC 4271 §8.2.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// The timers this FSM asks the shell to run. Starting a running timer restarts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
    /// RFC 4271 §8.1.1 Event 13: the wait before an automatic restart.
    IdleHold,
}

impl Timer {
    const ALL: [Timer; 4] = [
        Timer::ConnectRetry,
        Timer::Hold,
        Timer::Keepalive,
        Timer::IdleHold,
    ];

    fn index(self) -> usize {
        match self {
            Timer::ConnectRetry => 0,
            Timer::Hold => 1,
            Timer::Keepalive => 2,
            Timer::IdleHold => 3,
        }
    }
}

// NOTIFICATION error codes and subcodes. These map 1:1 onto the codes `bgp::wire` encodes; they
// are repeated here so the FSM depends on nothing but its own types.

/// Message Header Error subcodes (RFC 4271 §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderErrorSubcode {
    ConnectionNotSynchronized = 1,
    BadMessageLength = 2,
    BadMessageType = 3,
}

/// OPEN Message Error subcodes (RFC 4271 §4.5, RFC 5492 §5 for Unsupported Capability).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpenErrorSubcode {
    UnsupportedVersionNumber = 1,
    BadPeerAs = 2,
    BadBgpIdentifier = 3,
    UnsupportedOptionalParameter = 4,
    UnacceptableHoldTime = 6,
    UnsupportedCapability = 7,
}

/// UPDATE Message Error subcodes (RFC 4271 §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateErrorSubcode {
    MalformedAttributeList = 1,
    UnrecognizedWellKnownAttribute = 2,
    MissingWellKnownAttribute = 3,
    AttributeFlagsError = 4,
    AttributeLengthError = 5,
    InvalidOriginAttribute = 6,
    InvalidNextHopAttribute = 8,
    OptionalAttributeError = 9,
    InvalidNetworkField = 10,
    MalformedAsPath = 11,
}

/// Finite State Machine Error subcodes (RFC 6608 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FsmErrorSubcode {
    Unspecified = 0,
    UnexpectedMessageInOpenSent = 1,
    UnexpectedMessageInOpenConfirm = 2,
    UnexpectedMessageInEstablished = 3,
}

/// Cease subcodes (RFC 4486 §4, RFC 8538 §5 for Hard Reset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CeaseSubcode {
    MaximumPrefixesReached = 1,
    AdministrativeShutdown = 2,
    PeerDeconfigured = 3,
    AdministrativeReset = 4,
    ConnectionRejected = 5,
    OtherConfigurationChange = 6,
    ConnectionCollisionResolution = 7,
    OutOfResources = 8,
    HardReset = 9,
}

/// A NOTIFICATION's error code with its subcode (RFC 4271 §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotificationError {
    MessageHeader(HeaderErrorSubcode),
    OpenMessage(OpenErrorSubcode),
    UpdateMessage(UpdateErrorSubcode),
    HoldTimerExpired,
    FiniteStateMachine(FsmErrorSubcode),
    Cease(CeaseSubcode),
}

impl NotificationError {
    /// The Error Code octet.
    pub fn code(self) -> u8 {
        match self {
            NotificationError::MessageHeader(_) => 1,
            NotificationError::OpenMessage(_) => 2,
            NotificationError::UpdateMessage(_) => 3,
            NotificationError::HoldTimerExpired => 4,
            NotificationError::FiniteStateMachine(_) => 5,
            NotificationError::Cease(_) => 6,
        }
    }

    /// The Error Subcode octet; 0 where RFC 4271 defines none.
    pub fn subcode(self) -> u8 {
        match self {
            NotificationError::MessageHeader(s) => s as u8,
            NotificationError::OpenMessage(s) => s as u8,
            NotificationError::UpdateMessage(s) => s as u8,
            NotificationError::HoldTimerExpired => 0,
            NotificationError::FiniteStateMachine(s) => s as u8,
            NotificationError::Cease(s) => s as u8,
        }
    }
}

/// A NOTIFICATION to send: error code, subcode and the Data field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Notification {
    pub error: NotificationError,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(error: NotificationError) -> Self {
        Self {
            error,
            data: Vec::new(),
        }
    }

    pub fn code(&self) -> u8 {
        self.error.code()
    }

    pub fn subcode(&self) -> u8 {
        self.error.subcode()
    }
}

/// The Graceful Restart capability (RFC 4724 §3), as far as the FSM needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// Seconds the sender asks its peer to keep its routes as stale after the session drops.
    pub restart_time: u16,
}

/// The peer's OPEN as the codec decoded it (RFC 4271 §4.2 plus the capabilities we act on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerOpen {
    pub version: u8,
    /// The 2-octet My Autonomous System field (AS_TRANS when the real AS does not fit).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: RouterId,
    /// The 4-octet AS Number capability (RFC 6793 §3), if the peer sent one.
    pub four_octet_as: Option<Asn>,
    pub graceful_restart: Option<GracefulRestart>,
}

/// What our OPEN says; the shell encodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalOpen {
    pub version: u8,
    /// Our AS, or AS_TRANS when it does not fit in 2 octets (RFC 6793 §4.1).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: RouterId,
    /// We always advertise the 4-octet AS capability (RFC 6793: a NEW speaker).
    pub four_octet_as: Asn,
    pub graceful_restart: Option<GracefulRestart>,
}

/// Which AS numbers we accept from the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerAs {
    /// Exactly this AS (Calico's `BGPPeer.spec.asNumber`, or the node AS for mesh peers).
    Exact(Asn),
    /// Our own AS: an iBGP session.
    Internal,
    /// Any AS but ours: an eBGP session.
    External,
    /// Whatever the peer says.
    Any,
}

/// Peer oscillation damping (RFC 4271 §8.1.1, DampPeerOscillations): after a session falls to
/// Idle for any reason but a stop event, restart it after `initial` seconds, doubling the wait on
/// each restart that does not reach Established, up to `max`. BIRD's `error wait time` works the
/// same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdleHold {
    pub initial: u16,
    pub max: u16,
}

/// One session's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    pub local_as: Asn,
    pub peer_as: PeerAs,
    pub local_id: RouterId,
    /// Our proposed hold time: 0 (no KEEPALIVEs, no hold timer) or at least 3 (RFC 4271 §4.2).
    pub hold_time: u16,
    /// KEEPALIVE interval; `None` means a third of the negotiated hold time (RFC 4271 §4.4).
    pub keepalive_time: Option<u16>,
    pub connect_retry_time: u16,
    /// Never dial; wait for the peer to connect (PassiveTcpEstablishment, RFC 4271 §8.1.1).
    pub passive: bool,
    pub auto_restart: Option<IdleHold>,
    /// Advertise Graceful Restart with this restart time, and keep a restarting peer's routes as
    /// stale (RFC 4724). `None`: neither.
    pub graceful_restart: Option<GracefulRestart>,
}

impl Config {
    /// A session with RFC 4271's suggested timers, dialing, without automatic restart or
    /// graceful restart.
    pub fn new(local_as: Asn, peer_as: PeerAs, local_id: RouterId) -> Self {
        Self {
            local_as,
            peer_as,
            local_id,
            hold_time: DEFAULT_HOLD_TIME,
            keepalive_time: None,
            connect_retry_time: DEFAULT_CONNECT_RETRY_TIME,
            passive: false,
            auto_restart: None,
            graceful_restart: None,
        }
    }

    /// Checks what RFC 4271 and its updates require of our own side of the session.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.local_as == Asn(0) || self.local_as == AS_TRANS {
            return Err(ConfigError::LocalAs(self.local_as));
        }
        if let PeerAs::Exact(asn) = self.peer_as
            && (asn == Asn(0) || asn == AS_TRANS)
        {
            return Err(ConfigError::PeerAs(asn));
        }
        if self.local_id.to_u32() == 0 {
            return Err(ConfigError::ZeroRouterId);
        }
        // RFC 4271 §4.2: "the Hold Time MUST be either zero or at least three seconds".
        if matches!(self.hold_time, 1 | 2) {
            return Err(ConfigError::HoldTime(self.hold_time));
        }
        if let Some(keepalive) = self.keepalive_time
            && (keepalive == 0 || (self.hold_time != 0 && keepalive > self.hold_time))
        {
            return Err(ConfigError::KeepaliveTime {
                keepalive,
                hold: self.hold_time,
            });
        }
        if self.connect_retry_time == 0 {
            return Err(ConfigError::ConnectRetryTime);
        }
        if let Some(IdleHold { initial, max }) = self.auto_restart
            && (initial == 0 || max < initial)
        {
            return Err(ConfigError::IdleHold { initial, max });
        }
        Ok(())
    }

    fn local_open(&self) -> LocalOpen {
        LocalOpen {
            version: BGP_VERSION,
            my_as: u16::try_from(self.local_as.0).unwrap_or(AS_TRANS.0 as u16),
            hold_time: self.hold_time,
            bgp_id: self.local_id,
            four_octet_as: self.local_as,
            graceful_restart: self.graceful_restart,
        }
    }
}

/// Why a session [`Config`] is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "local AS {0} cannot be used: AS 0 (RFC 7607) and AS_TRANS 23456 (RFC 6793) are reserved"
    )]
    LocalAs(Asn),
    #[error(
        "peer AS {0} cannot be used: AS 0 (RFC 7607) and AS_TRANS 23456 (RFC 6793) are reserved"
    )]
    PeerAs(Asn),
    #[error("router id 0.0.0.0 cannot be used as a BGP identifier (RFC 6286)")]
    ZeroRouterId,
    #[error("hold time {0}s: must be 0 or at least 3 seconds (RFC 4271 §4.2)")]
    HoldTime(u16),
    #[error(
        "keepalive time {keepalive}s: must be at least 1 second and at most the hold time {hold}s"
    )]
    KeepaliveTime { keepalive: u16, hold: u16 },
    #[error("connect retry time must be at least 1 second")]
    ConnectRetryTime,
    #[error(
        "idle hold time {initial}s..{max}s: the initial wait must be at least 1 second and at most the maximum"
    )]
    IdleHold { initial: u16, max: u16 },
}

/// What an accepted OPEN settles for the life of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Negotiated {
    pub peer_as: Asn,
    pub peer_id: RouterId,
    /// The peer's AS is ours.
    pub internal: bool,
    /// The smaller of the two proposals; 0 means no KEEPALIVEs and no hold timer (RFC 4271 §4.2).
    pub hold_time: u16,
    /// 0 when `hold_time` is 0.
    pub keepalive_time: u16,
    /// Both sides advertised the 4-octet AS capability, so AS_PATHs carry 4-octet numbers
    /// (RFC 6793 §4.1). We always advertise it, so this is whether the peer did.
    pub four_octet_as: bool,
    /// The peer's Graceful Restart capability, if both sides advertised one.
    pub graceful_restart: Option<GracefulRestart>,
}

/// What the RIB does with a peer's routes when its session leaves Established.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteDisposition {
    /// Withdraw them now.
    Withdraw,
    /// RFC 4724 §4.2: keep them, marked stale, for up to `restart_time` seconds while the peer
    /// restarts.
    KeepStale { restart_time: u16 },
}

/// The inputs of RFC 4271 §8.1, by their RFC names (event numbers in the docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// Event 1.
    ManualStart,
    /// Event 2.
    ManualStop,
    /// Event 3.
    AutomaticStart,
    /// Event 4.
    ManualStartWithPassiveTcpEstablishment,
    /// Event 5.
    AutomaticStartWithPassiveTcpEstablishment,
    /// Event 8, with the Cease subcode to send (e.g. Maximum Number of Prefixes Reached).
    AutomaticStop(CeaseSubcode),
    /// Event 9.
    ConnectRetryTimerExpires,
    /// Event 10.
    HoldTimerExpires,
    /// Event 11.
    KeepaliveTimerExpires,
    /// Event 13.
    IdleHoldTimerExpires,
    /// Event 16: our outgoing connection is up.
    TcpCrAcked,
    /// Event 17: we accepted the peer's connection.
    TcpConnectionConfirmed,
    /// Event 18.
    TcpConnectionFails,
    /// Event 19: a syntactically valid OPEN; [`check_open`] does the rest of §6.2.
    BgpOpen(PeerOpen),
    /// Event 21, with the NOTIFICATION the codec chose.
    BgpHeaderErr(Notification),
    /// Event 22, with the NOTIFICATION the codec chose.
    BgpOpenMsgErr(Notification),
    /// Event 23: [`resolve_collision`] chose to close this connection.
    OpenCollisionDump,
    /// Event 24: a NOTIFICATION with Unsupported Version Number.
    NotifMsgVerErr,
    /// Event 25: any other NOTIFICATION.
    NotifMsg,
    /// Event 26.
    KeepAliveMsg,
    /// Event 27.
    UpdateMsg,
    /// Event 28, with the NOTIFICATION the codec chose.
    UpdateMsgErr(Notification),
}

/// What the shell must do, in the order given.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    InitiateTcpConnection,
    ListenForConnections,
    DropTcpConnection,
    SendOpen(LocalOpen),
    SendKeepalive,
    SendNotification(Notification),
    /// Start the timer, or restart it if it is running.
    StartTimer {
        timer: Timer,
        seconds: u16,
    },
    StopTimer(Timer),
    /// Hand the UPDATE just received to the RIB.
    ProcessUpdate,
    SessionEstablished(Negotiated),
    /// The session left Established; comes before `ReleaseResources`.
    SessionDown(RouteDisposition),
    /// Free everything held for this connection (RFC 4271 §8.2.2 "releases all BGP resources").
    ReleaseResources,
}

/// How a fall to Idle treats the ConnectRetryCounter (RFC 4271 §8.2.2 varies it per row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counter {
    Reset,
    Keep,
    Increment,
}

/// How the session leaves for Idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Down {
    counter: Counter,
    /// Not a stop event, so automatic restart applies.
    restart: bool,
    /// The TCP connection failed: a graceful restart by the peer (RFC 4724 §4.2).
    tcp_failed: bool,
}

impl Down {
    const STOP: Down = Down {
        counter: Counter::Reset,
        restart: false,
        tcp_failed: false,
    };
    const AUTOMATIC_STOP: Down = Down {
        counter: Counter::Increment,
        restart: false,
        tcp_failed: false,
    };
    const ERROR: Down = Down {
        counter: Counter::Increment,
        restart: true,
        tcp_failed: false,
    };
    const QUIET: Down = Down {
        counter: Counter::Keep,
        restart: true,
        tcp_failed: false,
    };
}

/// One connection's FSM: its configuration, state and the timers it has asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    config: Config,
    state: State,
    connect_retry_counter: u32,
    passive: bool,
    negotiated: Option<Negotiated>,
    running: [bool; 4],
    next_idle_hold: u16,
}

/// [`Session::step`] as a free function.
pub fn step(session: &mut Session, event: Event) -> Vec<Action> {
    session.step(event)
}

impl Session {
    /// A session in Idle. Nothing happens until a start event.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            state: State::Idle,
            connect_retry_counter: 0,
            passive: config.passive,
            negotiated: None,
            running: [false; 4],
            next_idle_hold: config.auto_restart.map_or(0, |h| h.initial),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// RFC 4271 §8: "the number of times a BGP peer has tried to establish a peer session".
    pub fn connect_retry_counter(&self) -> u32 {
        self.connect_retry_counter
    }

    /// Set once the peer's OPEN is accepted (OpenConfirm and Established).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Whether this FSM has started `timer` and neither stopped it nor seen it expire.
    pub fn timer_running(&self, timer: Timer) -> bool {
        self.running[timer.index()]
    }

    /// RFC 4271 §4.4: "Each time the local system sends a KEEPALIVE or UPDATE message, it
    /// restarts its KeepaliveTimer, unless the negotiated HoldTime value is zero." The shell
    /// calls this after sending an UPDATE.
    pub fn update_sent(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Established
            && let Some(n) = self.negotiated
            && n.keepalive_time != 0
        {
            self.start_timer(&mut out, Timer::Keepalive, n.keepalive_time);
        }
        out
    }

    /// Feeds one event to the FSM; returns what the shell must do.
    pub fn step(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        // A timer event for a timer we stopped is stale: the shell's timer fired before it
        // carried out our StopTimer. It must not be taken for a real expiry.
        let expired = match event {
            Event::ConnectRetryTimerExpires => Some(Timer::ConnectRetry),
            Event::HoldTimerExpires => Some(Timer::Hold),
            Event::KeepaliveTimerExpires => Some(Timer::Keepalive),
            Event::IdleHoldTimerExpires => Some(Timer::IdleHold),
            _ => None,
        };
        if let Some(timer) = expired {
            if !self.timer_running(timer) {
                return out;
            }
            self.running[timer.index()] = false;
        }
        match self.state {
            State::Idle => self.idle(&mut out, event),
            State::Connect | State::Active => self.connecting(&mut out, event),
            State::OpenSent => self.open_sent(&mut out, event),
            State::OpenConfirm => self.open_confirm(&mut out, event),
            State::Established => self.established(&mut out, event),
        }
        out
    }

    /// RFC 4271 §8.2.2, Idle state.
    fn idle(&mut self, out: &mut Vec<Action>, event: Event) {
        match event {
            Event::ManualStart => {
                self.reset_damping(out);
                self.start(out, self.config.passive);
            }
            Event::ManualStartWithPassiveTcpEstablishment => {
                self.reset_damping(out);
                self.start(out, true);
            }
            // With damping, automatic starts wait for the IdleHoldTimer (§8.1.1, Event 13).
            Event::AutomaticStart if !self.timer_running(Timer::IdleHold) => {
                self.start(out, self.config.passive);
            }
            Event::AutomaticStartWithPassiveTcpEstablishment
                if !self.timer_running(Timer::IdleHold) =>
            {
                self.start(out, true);
            }
            Event::IdleHoldTimerExpires => self.start(out, self.passive),
            // The RFC ignores stops in Idle; a pending automatic restart is ours, and a stop
            // cancels it.
            Event::ManualStop | Event::AutomaticStop(_) => self.stop_timer(out, Timer::IdleHold),
            _ => {}
        }
    }

    fn start(&mut self, out: &mut Vec<Action>, passive: bool) {
        self.connect_retry_counter = 0;
        self.passive = passive;
        self.start_timer(out, Timer::ConnectRetry, self.config.connect_retry_time);
        if passive {
            out.push(Action::ListenForConnections);
            self.state = State::Active;
        } else {
            out.push(Action::InitiateTcpConnection);
            out.push(Action::ListenForConnections);
            self.state = State::Connect;
        }
    }

    /// RFC 4271 §8.2.2, Connect and Active states (without DelayOpen they differ only in
    /// ConnectRetryTimer expiry and TCP failure).
    fn connecting(&mut self, out: &mut Vec<Action>, event: Event) {
        let connect = self.state == State::Connect;
        match event {
            Event::ManualStart
            | Event::AutomaticStart
            | Event::ManualStartWithPassiveTcpEstablishment
            | Event::AutomaticStartWithPassiveTcpEstablishment => {}
            Event::ManualStop => self.fall_to_idle(out, Down::STOP),
            Event::ConnectRetryTimerExpires if connect => {
                out.push(Action::DropTcpConnection);
                self.start_timer(out, Timer::ConnectRetry, self.config.connect_retry_time);
                out.push(Action::InitiateTcpConnection);
            }
            // A passive session never dials: it keeps listening (PassiveTcpEstablishment),
            // where RFC 4271 §8.2.2 would move to Connect and initiate a connection.
            Event::ConnectRetryTimerExpires if self.passive => {
                self.start_timer(out, Timer::ConnectRetry, self.config.connect_retry_time);
            }
            Event::ConnectRetryTimerExpires => {
                self.start_timer(out, Timer::ConnectRetry, self.config.connect_retry_time);
                out.push(Action::InitiateTcpConnection);
                self.state = State::Connect;
            }
            Event::TcpCrAcked | Event::TcpConnectionConfirmed => {
                self.stop_timer(out, Timer::ConnectRetry);
                out.push(Action::SendOpen(self.config.local_open()));
                self.start_timer(out, Timer::Hold, LARGE_HOLD_TIME);
                self.state = State::OpenSent;
            }
            // Connect: the attempt failed, Idle without counting it. Active: counted.
            Event::TcpConnectionFails if connect => self.fall_to_idle(out, Down::QUIET),
            Event::AutomaticStop(_) => self.fall_to_idle(out, Down::AUTOMATIC_STOP),
            // Every other event, messages included: no OPEN was sent, so no NOTIFICATION either
            // (SendNOTIFICATIONwithoutOPEN is off).
            _ => self.fall_to_idle(out, Down::ERROR),
        }
    }

    /// RFC 4271 §8.2.2, OpenSent state.
    fn open_sent(&mut self, out: &mut Vec<Action>, event: Event) {
        match event {
            Event::ManualStart
            | Event::AutomaticStart
            | Event::ManualStartWithPassiveTcpEstablishment
            | Event::AutomaticStartWithPassiveTcpEstablishment => {}
            // A second connection to the peer; the shell runs it in its own Session and
            // resolves the collision (§6.8) when an OPEN arrives.
            Event::TcpCrAcked | Event::TcpConnectionConfirmed => {}
            Event::TcpConnectionFails => {
                out.push(Action::DropTcpConnection);
                self.stop_timer(out, Timer::Hold);
                self.start_timer(out, Timer::ConnectRetry, self.config.connect_retry_time);
                out.push(Action::ListenForConnections);
                self.state = State::Active;
            }
            Event::BgpOpen(open) => match check_open(&self.config, &open) {
                Ok(negotiated) => {
                    self.stop_timer(out, Timer::ConnectRetry);
                    out.push(Action::SendKeepalive);
                    if negotiated.hold_time == 0 {
                        self.stop_timer(out, Timer::Hold);
                    } else {
                        self.start_timer(out, Timer::Keepalive, negotiated.keepalive_time);
                        self.start_timer(out, Timer::Hold, negotiated.hold_time);
                    }
                    self.negotiated = Some(negotiated);
                    self.state = State::OpenConfirm;
                }
                Err(notification) => self.notify_and_idle(out, notification, Down::ERROR),
            },
            Event::NotifMsgVerErr => self.fall_to_idle(out, Down::QUIET),
            event => self.after_open_sent(out, event, FsmErrorSubcode::UnexpectedMessageInOpenSent),
        }
    }

    /// RFC 4271 §8.2.2, OpenConfirm state.
    fn open_confirm(&mut self, out: &mut Vec<Action>, event: Event) {
        match event {
            Event::ManualStart
            | Event::AutomaticStart
            | Event::ManualStartWithPassiveTcpEstablishment
            | Event::AutomaticStartWithPassiveTcpEstablishment => {}
            Event::TcpCrAcked | Event::TcpConnectionConfirmed => {}
            Event::KeepaliveTimerExpires => self.send_keepalive(out),
            Event::TcpConnectionFails | Event::NotifMsg => self.fall_to_idle(out, Down::ERROR),
            Event::NotifMsgVerErr => self.fall_to_idle(out, Down::QUIET),
            Event::KeepAliveMsg => {
                if let Some(n) = self.negotiated {
                    self.restart_hold_timer(out);
                    self.state = State::Established;
                    self.next_idle_hold = self.config.auto_restart.map_or(0, |h| h.initial);
                    out.push(Action::SessionEstablished(n));
                } else {
                    // Unreachable: OpenConfirm is only entered with an accepted OPEN. Treated
                    // as the FSM error it would be rather than trusted.
                    let n = Notification::new(NotificationError::FiniteStateMachine(
                        FsmErrorSubcode::UnexpectedMessageInOpenConfirm,
                    ));
                    self.notify_and_idle(out, n, Down::ERROR);
                }
            }
            // A second OPEN on this connection. RFC 4271 runs collision detection here because
            // its single FSM sees both connections; here the other connection has its own
            // Session, so an OPEN on this one is unexpected (RFC 6608 subcode 2).
            event => {
                self.after_open_sent(out, event, FsmErrorSubcode::UnexpectedMessageInOpenConfirm)
            }
        }
    }

    /// RFC 4271 §8.2.2, Established state.
    fn established(&mut self, out: &mut Vec<Action>, event: Event) {
        match event {
            Event::ManualStart
            | Event::AutomaticStart
            | Event::ManualStartWithPassiveTcpEstablishment
            | Event::AutomaticStartWithPassiveTcpEstablishment => {}
            Event::TcpCrAcked | Event::TcpConnectionConfirmed => {}
            Event::KeepaliveTimerExpires => self.send_keepalive(out),
            Event::KeepAliveMsg => self.restart_hold_timer(out),
            Event::UpdateMsg => {
                out.push(Action::ProcessUpdate);
                self.restart_hold_timer(out);
            }
            Event::TcpConnectionFails => self.fall_to_idle(
                out,
                Down {
                    tcp_failed: true,
                    ..Down::ERROR
                },
            ),
            Event::NotifMsg | Event::NotifMsgVerErr => self.fall_to_idle(out, Down::ERROR),
            Event::UpdateMsgErr(notification) => {
                self.notify_and_idle(out, notification, Down::ERROR)
            }
            // Collision detection in Established is off (§6.8), so an OPEN, valid or not, is an
            // unexpected message.
            Event::BgpOpen(_) | Event::BgpOpenMsgErr(_) => {
                let n = Notification::new(NotificationError::FiniteStateMachine(
                    FsmErrorSubcode::UnexpectedMessageInEstablished,
                ));
                self.notify_and_idle(out, n, Down::ERROR);
            }
            event => {
                self.after_open_sent(out, event, FsmErrorSubcode::UnexpectedMessageInEstablished)
            }
        }
    }

    /// The rows OpenSent, OpenConfirm and Established share: every way out after our OPEN went
    /// out sends a NOTIFICATION (RFC 4271 §8.2.2), except after the peer's own NOTIFICATION.
    fn after_open_sent(
        &mut self,
        out: &mut Vec<Action>,
        event: Event,
        unexpected: FsmErrorSubcode,
    ) {
        let cease = |s| Notification::new(NotificationError::Cease(s));
        match event {
            Event::ManualStop => {
                self.notify_and_idle(out, cease(CeaseSubcode::AdministrativeShutdown), Down::STOP)
            }
            Event::AutomaticStop(subcode) => {
                self.notify_and_idle(out, cease(subcode), Down::AUTOMATIC_STOP)
            }
            Event::HoldTimerExpires => self.notify_and_idle(
                out,
                Notification::new(NotificationError::HoldTimerExpired),
                Down::ERROR,
            ),
            Event::OpenCollisionDump => self.notify_and_idle(
                out,
                cease(CeaseSubcode::ConnectionCollisionResolution),
                Down::ERROR,
            ),
            // §6.1 and §6.2: the codec found the error and chose the NOTIFICATION. (Established
            // handles a bad OPEN itself: any OPEN is unexpected there.)
            Event::BgpHeaderErr(n) | Event::BgpOpenMsgErr(n) => {
                self.notify_and_idle(out, n, Down::ERROR)
            }
            // The peer closes the connection after its NOTIFICATION (§4.5): answering it with a
            // NOTIFICATION, as the OpenSent table would, reaches nobody.
            Event::NotifMsg | Event::NotifMsgVerErr => self.fall_to_idle(out, Down::ERROR),
            // An UPDATE before Established is unexpected, well-formed or not (§8.2.2, Event 28
            // in OpenSent and OpenConfirm); Established handles UpdateMsgErr itself.
            Event::BgpOpen(_) | Event::KeepAliveMsg | Event::UpdateMsg | Event::UpdateMsgErr(_) => {
                let n = Notification::new(NotificationError::FiniteStateMachine(unexpected));
                self.notify_and_idle(out, n, Down::ERROR);
            }
            // Timer events for timers that are running here are handled by the caller; any
            // other start, TCP or timer event reaching this point is an FSM error (RFC 6608:
            // subcode 0 for events that are not messages).
            _ => {
                let n = Notification::new(NotificationError::FiniteStateMachine(
                    FsmErrorSubcode::Unspecified,
                ));
                self.notify_and_idle(out, n, Down::ERROR);
            }
        }
    }

    fn send_keepalive(&mut self, out: &mut Vec<Action>) {
        out.push(Action::SendKeepalive);
        if let Some(n) = self.negotiated
            && n.keepalive_time != 0
        {
            self.start_timer(out, Timer::Keepalive, n.keepalive_time);
        }
    }

    /// RFC 4271 §4.4: every KEEPALIVE or UPDATE received restarts the hold timer, unless the
    /// negotiated hold time is 0.
    fn restart_hold_timer(&mut self, out: &mut Vec<Action>) {
        if let Some(n) = self.negotiated
            && n.hold_time != 0
        {
            self.start_timer(out, Timer::Hold, n.hold_time);
        }
    }

    fn notify_and_idle(&mut self, out: &mut Vec<Action>, notification: Notification, down: Down) {
        out.push(Action::SendNotification(notification));
        self.fall_to_idle(out, down);
    }

    /// The sequence most rows of §8.2.2 end with: ConnectRetryTimer to zero, release all BGP
    /// resources (withdrawing the peer's routes if Established), drop the TCP connection, update
    /// the ConnectRetryCounter, optionally damp, go to Idle. All timers stop: Idle ignores
    /// them, so none is left running there but the IdleHoldTimer of an automatic restart.
    fn fall_to_idle(&mut self, out: &mut Vec<Action>, down: Down) {
        if self.state == State::Established {
            let routes = match self.negotiated.and_then(|n| n.graceful_restart) {
                Some(gr) if down.tcp_failed => RouteDisposition::KeepStale {
                    restart_time: gr.restart_time,
                },
                _ => RouteDisposition::Withdraw,
            };
            out.push(Action::SessionDown(routes));
        }
        for timer in [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive] {
            self.stop_timer(out, timer);
        }
        out.push(Action::ReleaseResources);
        out.push(Action::DropTcpConnection);
        match down.counter {
            Counter::Reset => self.connect_retry_counter = 0,
            Counter::Keep => {}
            Counter::Increment => {
                self.connect_retry_counter = self.connect_retry_counter.saturating_add(1)
            }
        }
        self.negotiated = None;
        self.state = State::Idle;
        if down.restart
            && let Some(damping) = self.config.auto_restart
        {
            let wait = self.next_idle_hold.clamp(damping.initial, damping.max);
            self.start_timer(out, Timer::IdleHold, wait);
            self.next_idle_hold = wait.saturating_mul(2).min(damping.max);
        }
    }

    fn reset_damping(&mut self, out: &mut Vec<Action>) {
        self.stop_timer(out, Timer::IdleHold);
        self.next_idle_hold = self.config.auto_restart.map_or(0, |h| h.initial);
    }

    fn start_timer(&mut self, out: &mut Vec<Action>, timer: Timer, seconds: u16) {
        self.running[timer.index()] = true;
        out.push(Action::StartTimer { timer, seconds });
    }

    fn stop_timer(&mut self, out: &mut Vec<Action>, timer: Timer) {
        if self.running[timer.index()] {
            self.running[timer.index()] = false;
            out.push(Action::StopTimer(timer));
        }
    }

    /// The timers running now, for tests and status output.
    pub fn running_timers(&self) -> impl Iterator<Item = Timer> + '_ {
        Timer::ALL.into_iter().filter(|t| self.timer_running(*t))
    }
}

/// The OPEN checks of RFC 4271 §6.2 that need our configuration, in the RFC's order, and the
/// negotiation of §4.2. `Err` is the NOTIFICATION to send.
pub fn check_open(config: &Config, open: &PeerOpen) -> Result<Negotiated, Notification> {
    let open_error = |subcode| Notification::new(NotificationError::OpenMessage(subcode));
    if open.version != BGP_VERSION {
        // §6.2: the Data field is the largest version we support below the peer's bid, or our
        // smallest if all are above it: 4 either way.
        return Err(Notification {
            error: NotificationError::OpenMessage(OpenErrorSubcode::UnsupportedVersionNumber),
            data: u16::from(BGP_VERSION).to_be_bytes().to_vec(),
        });
    }

    // RFC 6793 §4.2: a NEW speaker's AS is in its capability; My Autonomous System is only the
    // 2-octet stand-in. An OLD speaker's AS is My Autonomous System.
    let peer_as = open.four_octet_as.unwrap_or(Asn(u32::from(open.my_as)));
    let internal = peer_as == config.local_as;
    let acceptable = match config.peer_as {
        PeerAs::Exact(expected) => peer_as == expected,
        PeerAs::Internal => internal,
        PeerAs::External => !internal,
        PeerAs::Any => true,
    };
    // RFC 7607 §2: AS 0 in an OPEN is Bad Peer AS. AS_TRANS only stands in for a 4-octet AS
    // and is nobody's real AS (RFC 6793 §9): an OLD speaker that says AS_TRANS has a 4-octet AS
    // it cannot tell us, and a NEW one must not name it in its capability (FRR refuses it too).
    if peer_as == Asn(0) || peer_as == AS_TRANS || !acceptable {
        return Err(open_error(OpenErrorSubcode::BadPeerAs));
    }

    // §6.2: "An implementation MUST reject Hold Time values of one or two seconds."
    if matches!(open.hold_time, 1 | 2) {
        return Err(open_error(OpenErrorSubcode::UnacceptableHoldTime));
    }

    // RFC 6286 §2.2: zero, or our own identifier on an iBGP session, is Bad BGP Identifier.
    if open.bgp_id.to_u32() == 0 || (internal && open.bgp_id == config.local_id) {
        return Err(open_error(OpenErrorSubcode::BadBgpIdentifier));
    }

    // §4.2: the hold time is the smaller of the two proposals; 0 turns off KEEPALIVEs and the
    // hold timer.
    let hold_time = config.hold_time.min(open.hold_time);
    // §4.4: KEEPALIVEs at most every third of the hold time, at least every second.
    let keepalive_time = if hold_time == 0 {
        0
    } else {
        let third = (hold_time / 3).max(1);
        config.keepalive_time.map_or(third, |k| k.min(third))
    };
    Ok(Negotiated {
        peer_as,
        peer_id: open.bgp_id,
        internal,
        hold_time,
        keepalive_time,
        four_octet_as: open.four_octet_as.is_some(),
        graceful_restart: config.graceful_restart.and(open.graceful_restart),
    })
}

/// A BGP speaker's identity, for collision resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Speaker {
    pub id: RouterId,
    pub asn: Asn,
}

/// One of the two connections to a peer, as collision resolution sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Connection {
    pub state: State,
    /// We dialed it (as opposed to accepting it).
    pub initiated_locally: bool,
}

/// Which connection [`resolve_collision`] closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CollisionLoser {
    Existing,
    New,
}

/// RFC 4271 §6.8, called when `new` has just received a valid OPEN while `existing` connects
/// the same peer. `None`: no collision to resolve. Otherwise the shell delivers
/// [`Event::OpenCollisionDump`] to the loser, whose FSM sends Cease / Connection Collision
/// Resolution ([`collision_notification`]) and closes it.
///
/// The connection initiated by the speaker with the larger BGP identifier (compared as unsigned
/// 32-bit integers) survives; with equal identifiers, possible between eBGP peers, the one
/// initiated by the speaker with the larger AS (RFC 6286 §2.3).
pub fn resolve_collision(
    existing: Connection,
    new: Connection,
    local: Speaker,
    remote: Speaker,
) -> Option<CollisionLoser> {
    if !matches!(new.state, State::OpenSent | State::OpenConfirm) {
        return None;
    }
    match existing.state {
        // §6.8: without CollisionDetectEstablishedState, the newly created connection closes.
        State::Established => Some(CollisionLoser::New),
        // §6.8: only connections in OpenConfirm are examined; in Idle, Connect or Active no
        // collision can be detected, and in OpenSent the peer's identifier is not known yet.
        State::OpenConfirm => {
            if existing.initiated_locally == new.initiated_locally {
                // Two connections in the same direction are not a collision §6.8 can order;
                // keep the one that got further.
                return Some(CollisionLoser::New);
            }
            let keep_ours = match local.id.to_u32().cmp(&remote.id.to_u32()) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal if local.asn != remote.asn => local.asn > remote.asn,
                // Same identifier and AS: refused by check_open for iBGP; keep the existing.
                std::cmp::Ordering::Equal => return Some(CollisionLoser::New),
            };
            if existing.initiated_locally == keep_ours {
                Some(CollisionLoser::New)
            } else {
                Some(CollisionLoser::Existing)
            }
        }
        State::Idle | State::Connect | State::Active | State::OpenSent => None,
    }
}

/// The NOTIFICATION that closes a collision's loser (RFC 4271 §6.8, RFC 4486 subcode 7).
pub fn collision_notification() -> Notification {
    Notification::new(NotificationError::Cease(
        CeaseSubcode::ConnectionCollisionResolution,
    ))
}

/// Whether the local node opens the TCP connection of a Calico mesh session, or waits passively
/// for the peer to connect.
///
/// Calico makes mesh sessions one-way so that two nodes never race each other's connections
/// (which aborted graceful restarts). Its confd marks the local side `passive on` when the peer's
/// address sorts after its own as text: `{{if gt $onode_ip $node_ip}}passive on;` in
/// `bird.cfg.template`, `if peerIP > currentNodeIP { peer.Passive = true }` in its Go successor.
/// So the node whose address sorts *higher* dials, and the comparison is of strings, not numbers
/// ("10.0.0.9" dials "10.0.0.10"). We compare the same strings: Rust and Go both print IPv4 in
/// dotted decimal and IPv6 in RFC 5952 form, so a mixed cluster agrees on who dials.
pub fn dials_first(local_ip: IpAddr, peer_ip: IpAddr) -> bool {
    peer_ip.to_string() <= local_ip.to_string()
}

#[cfg(test)]
mod tests;
