//! RFC 4271 §8.2.2, row by row, plus the OPEN checks, negotiation, collisions and Calico's
//! dialing rule.

use std::net::{IpAddr, Ipv4Addr};

use super::*;

const LOCAL_AS: Asn = Asn(64512);
const PEER_AS: Asn = Asn(65000);

fn rid(s: &str) -> RouterId {
    RouterId(s.parse().expect("test router id"))
}

fn local_id() -> RouterId {
    rid("10.0.0.1")
}

fn peer_id() -> RouterId {
    rid("10.0.0.2")
}

fn ibgp() -> Config {
    Config::new(LOCAL_AS, PeerAs::Exact(LOCAL_AS), local_id())
}

fn ebgp() -> Config {
    Config::new(LOCAL_AS, PeerAs::Exact(PEER_AS), local_id())
}

/// An OPEN from a NEW (4-octet AS) speaker.
fn open_from(asn: Asn, hold_time: u16, bgp_id: RouterId) -> PeerOpen {
    PeerOpen {
        version: 4,
        my_as: u16::try_from(asn.0).unwrap_or(23456),
        hold_time,
        bgp_id,
        four_octet_as: Some(asn),
        graceful_restart: None,
    }
}

fn valid_open() -> PeerOpen {
    open_from(LOCAL_AS, 90, peer_id())
}

fn session(config: Config) -> Session {
    Session::new(config).expect("valid test config")
}

fn drive(s: &mut Session, events: &[Event]) {
    for e in events {
        s.step(e.clone());
    }
}

/// A session of `config` brought to `state` the usual way (dialing for Connect, passive for
/// Active, then TCP up, OPEN, KEEPALIVE).
fn at(config: Config, state: State) -> Session {
    let mut s = session(config);
    let path: &[Event] = match state {
        State::Idle => &[],
        State::Connect => &[Event::ManualStart],
        State::Active => &[Event::ManualStartWithPassiveTcpEstablishment],
        State::OpenSent => &[Event::ManualStart, Event::TcpCrAcked],
        State::OpenConfirm => &[
            Event::ManualStart,
            Event::TcpCrAcked,
            Event::BgpOpen(valid_open()),
        ],
        State::Established => &[
            Event::ManualStart,
            Event::TcpCrAcked,
            Event::BgpOpen(valid_open()),
            Event::KeepAliveMsg,
        ],
    };
    drive(&mut s, path);
    assert_eq!(s.state(), state);
    s
}

fn start_events() -> Vec<Event> {
    vec![
        Event::ManualStart,
        Event::AutomaticStart,
        Event::ManualStartWithPassiveTcpEstablishment,
        Event::AutomaticStartWithPassiveTcpEstablishment,
    ]
}

fn notif(error: NotificationError) -> Action {
    Action::SendNotification(Notification::new(error))
}

fn cease(subcode: CeaseSubcode) -> Action {
    notif(NotificationError::Cease(subcode))
}

fn fsm_error(subcode: FsmErrorSubcode) -> Action {
    notif(NotificationError::FiniteStateMachine(subcode))
}

fn header_error() -> Notification {
    Notification {
        error: NotificationError::MessageHeader(HeaderErrorSubcode::BadMessageLength),
        data: vec![0, 5],
    }
}

fn open_msg_error() -> Notification {
    Notification::new(NotificationError::OpenMessage(
        OpenErrorSubcode::UnsupportedOptionalParameter,
    ))
}

fn update_error() -> Notification {
    Notification::new(NotificationError::UpdateMessage(
        UpdateErrorSubcode::MalformedAsPath,
    ))
}

fn start_timer(timer: Timer, seconds: u16) -> Action {
    Action::StartTimer { timer, seconds }
}

fn sent_notification(actions: &[Action]) -> Option<&Notification> {
    actions.iter().find_map(|a| match a {
        Action::SendNotification(n) => Some(n),
        _ => None,
    })
}

/// The tail every fall from Connect/Active to Idle ends with.
fn idle_tail() -> Vec<Action> {
    vec![
        Action::StopTimer(Timer::ConnectRetry),
        Action::ReleaseResources,
        Action::DropTcpConnection,
    ]
}

/// The tail every fall from OpenConfirm or Established to Idle ends with (hold and keepalive
/// timers running, hold time 90).
fn idle_tail_after_open() -> Vec<Action> {
    vec![
        Action::StopTimer(Timer::Hold),
        Action::StopTimer(Timer::Keepalive),
        Action::ReleaseResources,
        Action::DropTcpConnection,
    ]
}

fn with_head(head: Vec<Action>, tail: Vec<Action>) -> Vec<Action> {
    head.into_iter().chain(tail).collect()
}

// ---------------------------------------------------------------- Idle

#[test]
fn idle_manual_and_automatic_start_dial_and_listen() {
    for event in [Event::ManualStart, Event::AutomaticStart] {
        let mut s = at(ibgp(), State::Idle);
        let actions = s.step(event);
        assert_eq!(
            actions,
            vec![
                start_timer(Timer::ConnectRetry, 120),
                Action::InitiateTcpConnection,
                Action::ListenForConnections,
            ]
        );
        assert_eq!(s.state(), State::Connect);
        assert_eq!(s.connect_retry_counter(), 0);
    }
}

#[test]
fn idle_passive_starts_only_listen() {
    for event in [
        Event::ManualStartWithPassiveTcpEstablishment,
        Event::AutomaticStartWithPassiveTcpEstablishment,
    ] {
        let mut s = at(ibgp(), State::Idle);
        let actions = s.step(event);
        assert_eq!(
            actions,
            vec![
                start_timer(Timer::ConnectRetry, 120),
                Action::ListenForConnections
            ]
        );
        assert_eq!(s.state(), State::Active);
    }
}

#[test]
fn passive_config_turns_plain_starts_passive() {
    let config = Config {
        passive: true,
        connect_retry_time: 5,
        ..ibgp()
    };
    for event in [Event::ManualStart, Event::AutomaticStart] {
        let mut s = session(config);
        let actions = s.step(event);
        assert!(!actions.contains(&Action::InitiateTcpConnection));
        assert_eq!(s.state(), State::Active);
        assert!(s.timer_running(Timer::ConnectRetry));
    }
}

#[test]
fn idle_ignores_every_other_event() {
    let others = vec![
        Event::ManualStop,
        Event::AutomaticStop(CeaseSubcode::MaximumPrefixesReached),
        Event::ConnectRetryTimerExpires,
        Event::HoldTimerExpires,
        Event::KeepaliveTimerExpires,
        Event::IdleHoldTimerExpires,
        Event::TcpCrAcked,
        Event::TcpConnectionConfirmed,
        Event::TcpConnectionFails,
        Event::BgpOpen(valid_open()),
        Event::BgpHeaderErr(header_error()),
        Event::BgpOpenMsgErr(open_msg_error()),
        Event::OpenCollisionDump,
        Event::NotifMsgVerErr,
        Event::NotifMsg,
        Event::KeepAliveMsg,
        Event::UpdateMsg,
        Event::UpdateMsgErr(update_error()),
    ];
    for event in others {
        let mut s = at(ibgp(), State::Idle);
        assert_eq!(s.step(event.clone()), vec![], "{event:?}");
        assert_eq!(s.state(), State::Idle, "{event:?}");
    }
}

// ---------------------------------------------------------------- Connect

#[test]
fn connect_ignores_start_events() {
    for event in start_events() {
        let mut s = at(ibgp(), State::Connect);
        assert_eq!(s.step(event), vec![]);
        assert_eq!(s.state(), State::Connect);
    }
}

#[test]
fn connect_manual_stop_goes_idle_and_resets_counter() {
    let mut s = at(ibgp(), State::Connect);
    assert_eq!(s.step(Event::ManualStop), idle_tail());
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.connect_retry_counter(), 0);
}

#[test]
fn connect_retry_timer_expiry_redials() {
    let mut s = at(ibgp(), State::Connect);
    assert_eq!(
        s.step(Event::ConnectRetryTimerExpires),
        vec![
            Action::DropTcpConnection,
            start_timer(Timer::ConnectRetry, 120),
            Action::InitiateTcpConnection,
        ]
    );
    assert_eq!(s.state(), State::Connect);
}

#[test]
fn connect_tcp_up_sends_open_with_large_hold_timer() {
    for event in [Event::TcpCrAcked, Event::TcpConnectionConfirmed] {
        let mut s = at(ibgp(), State::Connect);
        let actions = s.step(event);
        assert_eq!(
            actions,
            vec![
                Action::StopTimer(Timer::ConnectRetry),
                Action::SendOpen(LocalOpen {
                    version: 4,
                    my_as: 64512,
                    hold_time: 90,
                    bgp_id: local_id(),
                    four_octet_as: LOCAL_AS,
                    graceful_restart: None,
                }),
                start_timer(Timer::Hold, LARGE_HOLD_TIME),
            ]
        );
        assert_eq!(s.state(), State::OpenSent);
    }
}

#[test]
fn open_of_a_4_octet_local_as_carries_as_trans() {
    let config = Config::new(Asn(4_200_000_000), PeerAs::External, local_id());
    let mut s = at(config, State::Connect);
    let actions = s.step(Event::TcpCrAcked);
    let open = actions.iter().find_map(|a| match a {
        Action::SendOpen(o) => Some(*o),
        _ => None,
    });
    let open = open.expect("OPEN sent");
    assert_eq!(open.my_as, 23456);
    assert_eq!(open.four_octet_as, Asn(4_200_000_000));
}

#[test]
fn connect_tcp_failure_goes_idle_without_counting() {
    let mut s = at(ibgp(), State::Connect);
    assert_eq!(s.step(Event::TcpConnectionFails), idle_tail());
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.connect_retry_counter(), 0);
}

#[test]
fn connect_and_active_other_events_go_idle_counting_without_notification() {
    let others = vec![
        Event::AutomaticStop(CeaseSubcode::MaximumPrefixesReached),
        Event::BgpOpen(valid_open()),
        Event::BgpHeaderErr(header_error()),
        Event::BgpOpenMsgErr(open_msg_error()),
        Event::OpenCollisionDump,
        Event::NotifMsgVerErr,
        Event::NotifMsg,
        Event::KeepAliveMsg,
        Event::UpdateMsg,
        Event::UpdateMsgErr(update_error()),
    ];
    for state in [State::Connect, State::Active] {
        for event in others.clone() {
            let mut s = at(ibgp(), state);
            assert_eq!(s.step(event.clone()), idle_tail(), "{state:?} {event:?}");
            assert_eq!(s.state(), State::Idle);
            assert_eq!(s.connect_retry_counter(), 1, "{state:?} {event:?}");
        }
    }
}

#[test]
fn timer_events_for_stopped_timers_are_stale_and_ignored() {
    let cases = [
        (State::Connect, Event::HoldTimerExpires),
        (State::Connect, Event::KeepaliveTimerExpires),
        (State::Active, Event::HoldTimerExpires),
        (State::OpenSent, Event::ConnectRetryTimerExpires),
        (State::OpenSent, Event::KeepaliveTimerExpires),
        (State::OpenConfirm, Event::ConnectRetryTimerExpires),
        (State::Established, Event::ConnectRetryTimerExpires),
        (State::Established, Event::IdleHoldTimerExpires),
    ];
    for (state, event) in cases {
        let mut s = at(ibgp(), state);
        assert_eq!(s.step(event.clone()), vec![], "{state:?} {event:?}");
        assert_eq!(s.state(), state);
    }
}

// ---------------------------------------------------------------- Active

/// Active reached by dialing: OpenSent, then the TCP connection fails.
fn active_after_dialing() -> Session {
    let mut s = at(ibgp(), State::OpenSent);
    s.step(Event::TcpConnectionFails);
    assert_eq!(s.state(), State::Active);
    s
}

#[test]
fn active_ignores_start_events() {
    for event in start_events() {
        let mut s = at(ibgp(), State::Active);
        assert_eq!(s.step(event), vec![]);
        assert_eq!(s.state(), State::Active);
    }
}

#[test]
fn active_manual_stop_goes_idle_and_resets_counter() {
    let mut s = at(ibgp(), State::Active);
    assert_eq!(s.step(Event::ManualStop), idle_tail());
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.connect_retry_counter(), 0);
}

#[test]
fn active_retry_expiry_dials_unless_passive() {
    let mut s = active_after_dialing();
    assert_eq!(
        s.step(Event::ConnectRetryTimerExpires),
        vec![
            start_timer(Timer::ConnectRetry, 120),
            Action::InitiateTcpConnection
        ]
    );
    assert_eq!(s.state(), State::Connect);

    let mut s = at(ibgp(), State::Active);
    assert_eq!(
        s.step(Event::ConnectRetryTimerExpires),
        vec![start_timer(Timer::ConnectRetry, 120)]
    );
    assert_eq!(s.state(), State::Active);
}

#[test]
fn passive_session_never_dials() {
    let mut s = at(
        Config {
            passive: true,
            ..ibgp()
        },
        State::Idle,
    );
    let mut all = s.step(Event::ManualStart);
    for _ in 0..5 {
        all.extend(s.step(Event::ConnectRetryTimerExpires));
    }
    all.extend(s.step(Event::TcpConnectionConfirmed));
    all.extend(s.step(Event::TcpConnectionFails));
    all.extend(s.step(Event::ConnectRetryTimerExpires));
    assert!(!all.contains(&Action::InitiateTcpConnection));
    assert_eq!(s.state(), State::Active);
}

#[test]
fn active_tcp_up_sends_open() {
    for event in [Event::TcpCrAcked, Event::TcpConnectionConfirmed] {
        let mut s = at(ibgp(), State::Active);
        let actions = s.step(event);
        assert_eq!(actions.len(), 3);
        assert_eq!(actions[0], Action::StopTimer(Timer::ConnectRetry));
        assert!(matches!(actions[1], Action::SendOpen(_)));
        assert_eq!(actions[2], start_timer(Timer::Hold, LARGE_HOLD_TIME));
        assert_eq!(s.state(), State::OpenSent);
    }
}

#[test]
fn active_tcp_failure_goes_idle_counting() {
    let mut s = at(ibgp(), State::Active);
    assert_eq!(s.step(Event::TcpConnectionFails), idle_tail());
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.connect_retry_counter(), 1);
}

// ---------------------------------------------------------------- OpenSent

/// The tail of a fall from OpenSent (only the large hold timer runs).
fn open_sent_tail() -> Vec<Action> {
    vec![
        Action::StopTimer(Timer::Hold),
        Action::ReleaseResources,
        Action::DropTcpConnection,
    ]
}

#[test]
fn open_sent_ignores_starts_and_second_connections() {
    let mut events = start_events();
    events.extend([Event::TcpCrAcked, Event::TcpConnectionConfirmed]);
    for event in events {
        let mut s = at(ibgp(), State::OpenSent);
        assert_eq!(s.step(event), vec![]);
        assert_eq!(s.state(), State::OpenSent);
    }
}

#[test]
fn open_sent_stops_send_cease() {
    let mut s = at(ibgp(), State::OpenSent);
    assert_eq!(
        s.step(Event::ManualStop),
        with_head(
            vec![cease(CeaseSubcode::AdministrativeShutdown)],
            open_sent_tail()
        )
    );
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.connect_retry_counter(), 0);

    let mut s = at(ibgp(), State::OpenSent);
    assert_eq!(
        s.step(Event::AutomaticStop(CeaseSubcode::PeerDeconfigured)),
        with_head(
            vec![cease(CeaseSubcode::PeerDeconfigured)],
            open_sent_tail()
        )
    );
    assert_eq!(s.connect_retry_counter(), 1);
}

#[test]
fn open_sent_hold_timer_expiry_sends_hold_timer_expired() {
    let mut s = at(ibgp(), State::OpenSent);
    let actions = s.step(Event::HoldTimerExpires);
    // The hold timer fired, so it is not running and needs no StopTimer.
    assert_eq!(
        actions,
        vec![
            notif(NotificationError::HoldTimerExpired),
            Action::ReleaseResources,
            Action::DropTcpConnection,
        ]
    );
    assert_eq!(
        sent_notification(&actions).map(|n| (n.code(), n.subcode())),
        Some((4, 0))
    );
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.connect_retry_counter(), 1);
}

#[test]
fn open_sent_tcp_failure_goes_active_and_listens() {
    let mut s = at(ibgp(), State::OpenSent);
    assert_eq!(
        s.step(Event::TcpConnectionFails),
        vec![
            Action::DropTcpConnection,
            Action::StopTimer(Timer::Hold),
            start_timer(Timer::ConnectRetry, 120),
            Action::ListenForConnections,
        ]
    );
    assert_eq!(s.state(), State::Active);
}

#[test]
fn open_sent_valid_open_goes_open_confirm() {
    let mut s = at(ibgp(), State::OpenSent);
    assert_eq!(
        s.step(Event::BgpOpen(open_from(LOCAL_AS, 60, peer_id()))),
        vec![
            Action::SendKeepalive,
            start_timer(Timer::Keepalive, 20),
            start_timer(Timer::Hold, 60),
        ]
    );
    assert_eq!(s.state(), State::OpenConfirm);
    let n = s.negotiated().expect("negotiated");
    assert_eq!(n.hold_time, 60);
    assert_eq!(n.keepalive_time, 20);
    assert!(n.internal);
    assert_eq!(n.peer_id, peer_id());
}

#[test]
fn open_sent_bad_open_sends_open_message_error() {
    let cases = [
        (
            PeerOpen {
                version: 3,
                ..valid_open()
            },
            OpenErrorSubcode::UnsupportedVersionNumber,
        ),
        (
            open_from(PEER_AS, 90, peer_id()),
            OpenErrorSubcode::BadPeerAs,
        ),
        (
            open_from(LOCAL_AS, 2, peer_id()),
            OpenErrorSubcode::UnacceptableHoldTime,
        ),
        (
            open_from(LOCAL_AS, 90, local_id()),
            OpenErrorSubcode::BadBgpIdentifier,
        ),
    ];
    for (open, subcode) in cases {
        let mut s = at(ibgp(), State::OpenSent);
        let actions = s.step(Event::BgpOpen(open));
        let n = sent_notification(&actions).expect("NOTIFICATION");
        assert_eq!(n.error, NotificationError::OpenMessage(subcode));
        assert_eq!((n.code(), n.subcode()), (2, subcode as u8));
        assert_eq!(actions.last(), Some(&Action::DropTcpConnection));
        assert_eq!(s.state(), State::Idle);
        assert_eq!(s.connect_retry_counter(), 1);
        assert!(s.negotiated().is_none());
    }
}

#[test]
fn open_sent_codec_errors_send_the_codecs_notification() {
    for n in [header_error(), open_msg_error()] {
        let event = if n.code() == 1 {
            Event::BgpHeaderErr(n.clone())
        } else {
            Event::BgpOpenMsgErr(n.clone())
        };
        let mut s = at(ibgp(), State::OpenSent);
        assert_eq!(
            s.step(event),
            with_head(vec![Action::SendNotification(n)], open_sent_tail())
        );
        assert_eq!(s.state(), State::Idle);
        assert_eq!(s.connect_retry_counter(), 1);
    }
}

#[test]
fn open_sent_collision_dump_sends_cease_collision() {
    let mut s = at(ibgp(), State::OpenSent);
    let actions = s.step(Event::OpenCollisionDump);
    assert_eq!(
        actions,
        with_head(
            vec![cease(CeaseSubcode::ConnectionCollisionResolution)],
            open_sent_tail()
        )
    );
    assert_eq!(
        sent_notification(&actions).map(|n| (n.code(), n.subcode())),
        Some((6, 7))
    );
    assert_eq!(s.connect_retry_counter(), 1);
}

#[test]
fn open_sent_peer_notifications_go_idle_silently() {
    let mut s = at(ibgp(), State::OpenSent);
    assert_eq!(s.step(Event::NotifMsgVerErr), open_sent_tail());
    assert_eq!(s.connect_retry_counter(), 0);

    let mut s = at(ibgp(), State::OpenSent);
    assert_eq!(s.step(Event::NotifMsg), open_sent_tail());
    assert_eq!(s.connect_retry_counter(), 1);
}

#[test]
fn open_sent_unexpected_messages_are_fsm_errors() {
    for event in [
        Event::KeepAliveMsg,
        Event::UpdateMsg,
        Event::UpdateMsgErr(update_error()),
    ] {
        let mut s = at(ibgp(), State::OpenSent);
        let actions = s.step(event.clone());
        assert_eq!(
            actions,
            with_head(
                vec![fsm_error(FsmErrorSubcode::UnexpectedMessageInOpenSent)],
                open_sent_tail()
            ),
            "{event:?}"
        );
        assert_eq!(
            sent_notification(&actions).map(|n| (n.code(), n.subcode())),
            Some((5, 1))
        );
        assert_eq!(s.connect_retry_counter(), 1);
    }
}

// ---------------------------------------------------------------- OpenConfirm

#[test]
fn open_confirm_ignores_starts_and_second_connections() {
    let mut events = start_events();
    events.extend([Event::TcpCrAcked, Event::TcpConnectionConfirmed]);
    for event in events {
        let mut s = at(ibgp(), State::OpenConfirm);
        assert_eq!(s.step(event), vec![]);
        assert_eq!(s.state(), State::OpenConfirm);
    }
}

#[test]
fn open_confirm_stops_send_cease() {
    let mut s = at(ibgp(), State::OpenConfirm);
    assert_eq!(
        s.step(Event::ManualStop),
        with_head(
            vec![cease(CeaseSubcode::AdministrativeShutdown)],
            idle_tail_after_open()
        )
    );
    assert_eq!(s.connect_retry_counter(), 0);

    let mut s = at(ibgp(), State::OpenConfirm);
    assert_eq!(
        s.step(Event::AutomaticStop(CeaseSubcode::OutOfResources)),
        with_head(
            vec![cease(CeaseSubcode::OutOfResources)],
            idle_tail_after_open()
        )
    );
    assert_eq!(s.connect_retry_counter(), 1);
}

#[test]
fn open_confirm_hold_timer_expiry() {
    let mut s = at(ibgp(), State::OpenConfirm);
    assert_eq!(
        s.step(Event::HoldTimerExpires),
        vec![
            notif(NotificationError::HoldTimerExpired),
            Action::StopTimer(Timer::Keepalive),
            Action::ReleaseResources,
            Action::DropTcpConnection,
        ]
    );
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.connect_retry_counter(), 1);
}

#[test]
fn open_confirm_keepalive_timer_sends_keepalive() {
    let mut s = at(ibgp(), State::OpenConfirm);
    assert_eq!(
        s.step(Event::KeepaliveTimerExpires),
        vec![Action::SendKeepalive, start_timer(Timer::Keepalive, 30)]
    );
    assert_eq!(s.state(), State::OpenConfirm);
}

#[test]
fn open_confirm_tcp_failure_and_notifications_go_idle() {
    for (event, counter) in [
        (Event::TcpConnectionFails, 1),
        (Event::NotifMsg, 1),
        (Event::NotifMsgVerErr, 0),
    ] {
        let mut s = at(ibgp(), State::OpenConfirm);
        assert_eq!(s.step(event.clone()), idle_tail_after_open(), "{event:?}");
        assert_eq!(s.state(), State::Idle);
        assert_eq!(s.connect_retry_counter(), counter, "{event:?}");
    }
}

#[test]
fn open_confirm_codec_errors_and_collision_dump() {
    let cases = [
        (Event::BgpHeaderErr(header_error()), header_error()),
        (Event::BgpOpenMsgErr(open_msg_error()), open_msg_error()),
        (Event::OpenCollisionDump, collision_notification()),
    ];
    for (event, n) in cases {
        let mut s = at(ibgp(), State::OpenConfirm);
        assert_eq!(
            s.step(event),
            with_head(vec![Action::SendNotification(n)], idle_tail_after_open())
        );
        assert_eq!(s.connect_retry_counter(), 1);
    }
}

#[test]
fn open_confirm_keepalive_establishes() {
    let mut s = at(ibgp(), State::OpenConfirm);
    let n = *s.negotiated().expect("negotiated");
    assert_eq!(
        s.step(Event::KeepAliveMsg),
        vec![start_timer(Timer::Hold, 90), Action::SessionEstablished(n)]
    );
    assert_eq!(s.state(), State::Established);
    assert_eq!(
        n,
        Negotiated {
            peer_as: LOCAL_AS,
            peer_id: peer_id(),
            internal: true,
            hold_time: 90,
            keepalive_time: 30,
            four_octet_as: true,
            graceful_restart: None,
        }
    );
}

#[test]
fn open_confirm_unexpected_messages_are_fsm_errors() {
    for event in [
        Event::BgpOpen(valid_open()),
        Event::UpdateMsg,
        Event::UpdateMsgErr(update_error()),
    ] {
        let mut s = at(ibgp(), State::OpenConfirm);
        let actions = s.step(event.clone());
        assert_eq!(
            actions,
            with_head(
                vec![fsm_error(FsmErrorSubcode::UnexpectedMessageInOpenConfirm)],
                idle_tail_after_open()
            ),
            "{event:?}"
        );
        assert_eq!(
            sent_notification(&actions).map(|n| (n.code(), n.subcode())),
            Some((5, 2))
        );
    }
}

// ---------------------------------------------------------------- Established

fn down(routes: RouteDisposition) -> Vec<Action> {
    with_head(vec![Action::SessionDown(routes)], idle_tail_after_open())
}

#[test]
fn established_ignores_starts_and_second_connections() {
    let mut events = start_events();
    events.extend([Event::TcpCrAcked, Event::TcpConnectionConfirmed]);
    for event in events {
        let mut s = at(ibgp(), State::Established);
        assert_eq!(s.step(event), vec![]);
        assert_eq!(s.state(), State::Established);
    }
}

#[test]
fn established_stops_send_cease_and_withdraw() {
    let mut s = at(ibgp(), State::Established);
    assert_eq!(
        s.step(Event::ManualStop),
        with_head(
            vec![cease(CeaseSubcode::AdministrativeShutdown)],
            down(RouteDisposition::Withdraw)
        )
    );
    assert_eq!(s.connect_retry_counter(), 0);

    let mut s = at(ibgp(), State::Established);
    assert_eq!(
        s.step(Event::AutomaticStop(CeaseSubcode::MaximumPrefixesReached)),
        with_head(
            vec![cease(CeaseSubcode::MaximumPrefixesReached)],
            down(RouteDisposition::Withdraw)
        )
    );
    assert_eq!(s.connect_retry_counter(), 1);
}

#[test]
fn established_hold_timer_expiry() {
    let mut s = at(ibgp(), State::Established);
    assert_eq!(
        s.step(Event::HoldTimerExpires),
        vec![
            notif(NotificationError::HoldTimerExpired),
            Action::SessionDown(RouteDisposition::Withdraw),
            Action::StopTimer(Timer::Keepalive),
            Action::ReleaseResources,
            Action::DropTcpConnection,
        ]
    );
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.connect_retry_counter(), 1);
}

#[test]
fn established_keepalives_and_updates_keep_it_up() {
    let mut s = at(ibgp(), State::Established);
    assert_eq!(
        s.step(Event::KeepaliveTimerExpires),
        vec![Action::SendKeepalive, start_timer(Timer::Keepalive, 30)]
    );
    assert_eq!(
        s.step(Event::KeepAliveMsg),
        vec![start_timer(Timer::Hold, 90)]
    );
    assert_eq!(
        s.step(Event::UpdateMsg),
        vec![Action::ProcessUpdate, start_timer(Timer::Hold, 90)]
    );
    assert_eq!(s.update_sent(), vec![start_timer(Timer::Keepalive, 30)]);
    assert_eq!(s.state(), State::Established);
}

#[test]
fn established_update_error_sends_it_and_withdraws() {
    let mut s = at(ibgp(), State::Established);
    assert_eq!(
        s.step(Event::UpdateMsgErr(update_error())),
        with_head(
            vec![Action::SendNotification(update_error())],
            down(RouteDisposition::Withdraw)
        )
    );
    assert_eq!(s.connect_retry_counter(), 1);
}

#[test]
fn established_tcp_failure_and_notifications_withdraw() {
    for event in [
        Event::TcpConnectionFails,
        Event::NotifMsg,
        Event::NotifMsgVerErr,
    ] {
        let mut s = at(ibgp(), State::Established);
        assert_eq!(
            s.step(event.clone()),
            down(RouteDisposition::Withdraw),
            "{event:?}"
        );
        assert_eq!(s.connect_retry_counter(), 1);
    }
}

#[test]
fn established_graceful_restart_keeps_routes_stale_only_on_tcp_failure() {
    let config = Config {
        graceful_restart: Some(GracefulRestart { restart_time: 120 }),
        ..ibgp()
    };
    let gr_open = PeerOpen {
        graceful_restart: Some(GracefulRestart { restart_time: 75 }),
        ..valid_open()
    };
    let establish = |s: &mut Session| {
        drive(
            s,
            &[
                Event::ManualStart,
                Event::TcpCrAcked,
                Event::BgpOpen(gr_open),
                Event::KeepAliveMsg,
            ],
        )
    };

    let mut s = session(config);
    establish(&mut s);
    assert_eq!(
        s.step(Event::TcpConnectionFails),
        down(RouteDisposition::KeepStale { restart_time: 75 })
    );

    // RFC 4724: a NOTIFICATION ends the session for good.
    let mut s = session(config);
    establish(&mut s);
    assert_eq!(s.step(Event::NotifMsg), down(RouteDisposition::Withdraw));

    // We did not advertise Graceful Restart, so we do not keep the peer's routes.
    let mut s = session(ibgp());
    establish(&mut s);
    assert_eq!(
        s.step(Event::TcpConnectionFails),
        down(RouteDisposition::Withdraw)
    );
}

#[test]
fn established_codec_errors_and_collision_dump() {
    let cases = [
        (Event::BgpHeaderErr(header_error()), header_error()),
        (Event::OpenCollisionDump, collision_notification()),
    ];
    for (event, n) in cases {
        let mut s = at(ibgp(), State::Established);
        assert_eq!(
            s.step(event),
            with_head(
                vec![Action::SendNotification(n)],
                down(RouteDisposition::Withdraw)
            )
        );
        assert_eq!(s.connect_retry_counter(), 1);
    }
}

#[test]
fn established_open_is_an_fsm_error() {
    for event in [
        Event::BgpOpen(valid_open()),
        Event::BgpOpenMsgErr(open_msg_error()),
    ] {
        let mut s = at(ibgp(), State::Established);
        let actions = s.step(event);
        assert_eq!(
            actions,
            with_head(
                vec![fsm_error(FsmErrorSubcode::UnexpectedMessageInEstablished)],
                down(RouteDisposition::Withdraw)
            )
        );
        assert_eq!(
            sent_notification(&actions).map(|n| (n.code(), n.subcode())),
            Some((5, 3))
        );
    }
}

// ---------------------------------------------------------------- OPEN checks (§6.2)

fn open_check(config: Config, open: PeerOpen) -> Result<Negotiated, (u8, u8, Vec<u8>)> {
    check_open(&config, &open).map_err(|n| (n.code(), n.subcode(), n.data))
}

#[test]
fn unsupported_version_reports_version_4() {
    for version in [3, 5, 0, 255] {
        let open = PeerOpen {
            version,
            ..valid_open()
        };
        assert_eq!(open_check(ibgp(), open), Err((2, 1, vec![0, 4])));
    }
}

#[test]
fn bad_peer_as() {
    // Expected 65000, got 65001.
    assert_eq!(
        open_check(ebgp(), open_from(Asn(65001), 90, peer_id())).map(|_| ()),
        Err((2, 2, vec![]))
    );
    // RFC 7607: AS 0.
    let zero = PeerOpen {
        my_as: 0,
        four_octet_as: None,
        ..valid_open()
    };
    assert_eq!(
        open_check(
            Config {
                peer_as: PeerAs::Any,
                ..ebgp()
            },
            zero
        )
        .map(|_| ()),
        Err((2, 2, vec![]))
    );
    // AS_TRANS claimed as a real AS in the capability.
    let trans = open_from(AS_TRANS, 90, peer_id());
    assert_eq!(
        open_check(
            Config {
                peer_as: PeerAs::Any,
                ..ebgp()
            },
            trans
        )
        .map(|_| ()),
        Err((2, 2, vec![]))
    );
    // An OLD speaker saying AS_TRANS has a 4-octet AS it cannot tell us.
    let old_trans = PeerOpen {
        my_as: 23456,
        four_octet_as: None,
        ..valid_open()
    };
    assert_eq!(
        open_check(
            Config {
                peer_as: PeerAs::Any,
                ..ebgp()
            },
            old_trans
        )
        .map(|_| ()),
        Err((2, 2, vec![]))
    );
    // Internal/External classification.
    let internal = Config {
        peer_as: PeerAs::Internal,
        ..ebgp()
    };
    assert!(open_check(internal, open_from(LOCAL_AS, 90, peer_id())).is_ok());
    assert_eq!(
        open_check(internal, open_from(PEER_AS, 90, peer_id())).map(|_| ()),
        Err((2, 2, vec![]))
    );
    let external = Config {
        peer_as: PeerAs::External,
        ..ebgp()
    };
    assert!(open_check(external, open_from(Asn(65123), 90, peer_id())).is_ok());
    assert_eq!(
        open_check(external, open_from(LOCAL_AS, 90, peer_id())).map(|_| ()),
        Err((2, 2, vec![]))
    );
}

#[test]
fn four_octet_as_per_rfc_6793() {
    let big = Asn(4_200_000_001);
    let config = Config {
        peer_as: PeerAs::Exact(big),
        ..ebgp()
    };
    // A NEW speaker: AS_TRANS in My Autonomous System, the real AS in the capability.
    let n = open_check(config, open_from(big, 90, peer_id())).expect("accepted");
    assert_eq!(n.peer_as, big);
    assert!(n.four_octet_as);
    assert!(!n.internal);
    // An OLD speaker can only say AS_TRANS, which is not the AS we expect.
    let old = PeerOpen {
        my_as: 23456,
        four_octet_as: None,
        ..open_from(big, 90, peer_id())
    };
    assert_eq!(open_check(config, old).map(|_| ()), Err((2, 2, vec![])));
    // An OLD speaker with a 2-octet AS is fine, without 4-octet AS_PATHs.
    let old_small = PeerOpen {
        my_as: 65000,
        four_octet_as: None,
        ..valid_open()
    };
    let n = open_check(ebgp(), old_small).expect("accepted");
    assert_eq!(n.peer_as, PEER_AS);
    assert!(!n.four_octet_as);
}

#[test]
fn unacceptable_hold_time() {
    for hold in [1, 2] {
        assert_eq!(
            open_check(ibgp(), open_from(LOCAL_AS, hold, peer_id())).map(|_| ()),
            Err((2, 6, vec![]))
        );
    }
    for hold in [0, 3, 65535] {
        assert!(open_check(ibgp(), open_from(LOCAL_AS, hold, peer_id())).is_ok());
    }
}

#[test]
fn bad_bgp_identifier() {
    assert_eq!(
        open_check(ibgp(), open_from(LOCAL_AS, 90, rid("0.0.0.0"))).map(|_| ()),
        Err((2, 3, vec![]))
    );
    assert_eq!(
        open_check(ibgp(), open_from(LOCAL_AS, 90, local_id())).map(|_| ()),
        Err((2, 3, vec![]))
    );
    assert_eq!(
        open_check(ebgp(), open_from(PEER_AS, 90, rid("0.0.0.0"))).map(|_| ()),
        Err((2, 3, vec![]))
    );
    // RFC 6286: between different ASes an identifier equal to ours is allowed.
    assert!(open_check(ebgp(), open_from(PEER_AS, 90, local_id())).is_ok());
}

#[test]
fn checks_run_in_rfc_order() {
    // Everything wrong at once: the version is reported.
    let open = PeerOpen {
        version: 3,
        my_as: 1,
        hold_time: 1,
        bgp_id: rid("0.0.0.0"),
        four_octet_as: None,
        graceful_restart: None,
    };
    assert_eq!(
        open_check(ibgp(), open).map(|_| ()),
        Err((2, 1, vec![0, 4]))
    );
    let open = PeerOpen { version: 4, ..open };
    assert_eq!(open_check(ibgp(), open).map(|_| ()), Err((2, 2, vec![])));
    let open = PeerOpen {
        my_as: 64512,
        ..open
    };
    assert_eq!(open_check(ibgp(), open).map(|_| ()), Err((2, 6, vec![])));
}

// ---------------------------------------------------------------- Negotiation (§4.2, §4.4)

fn negotiate(config: Config, peer_hold: u16) -> (u16, u16) {
    let n = check_open(&config, &open_from(LOCAL_AS, peer_hold, peer_id())).expect("accepted");
    (n.hold_time, n.keepalive_time)
}

#[test]
fn hold_time_is_the_smaller_proposal() {
    assert_eq!(negotiate(ibgp(), 90), (90, 30));
    assert_eq!(negotiate(ibgp(), 30), (30, 10));
    assert_eq!(negotiate(ibgp(), 240), (90, 30));
    assert_eq!(negotiate(ibgp(), 3), (3, 1));
    assert_eq!(negotiate(ibgp(), 4), (4, 1));
    assert_eq!(
        negotiate(
            Config {
                hold_time: 9,
                ..ibgp()
            },
            90
        ),
        (9, 3)
    );
}

#[test]
fn hold_time_zero_from_either_side_means_no_keepalives() {
    assert_eq!(negotiate(ibgp(), 0), (0, 0));
    assert_eq!(
        negotiate(
            Config {
                hold_time: 0,
                ..ibgp()
            },
            90
        ),
        (0, 0)
    );
    assert_eq!(
        negotiate(
            Config {
                hold_time: 0,
                keepalive_time: Some(10),
                ..ibgp()
            },
            90
        ),
        (0, 0)
    );
}

#[test]
fn configured_keepalive_is_capped_at_a_third_of_the_hold_time() {
    let config = Config {
        keepalive_time: Some(20),
        ..ibgp()
    };
    assert_eq!(negotiate(config, 90), (90, 20));
    assert_eq!(negotiate(config, 30), (30, 10));
}

#[test]
fn hold_time_zero_session_runs_no_timers_when_established() {
    let mut s = at(ibgp(), State::OpenSent);
    assert_eq!(
        s.step(Event::BgpOpen(open_from(LOCAL_AS, 0, peer_id()))),
        vec![Action::SendKeepalive, Action::StopTimer(Timer::Hold)]
    );
    let actions = s.step(Event::KeepAliveMsg);
    assert_eq!(actions.len(), 1);
    assert!(matches!(actions[0], Action::SessionEstablished(n) if n.hold_time == 0));
    assert_eq!(s.running_timers().count(), 0);
    assert_eq!(s.step(Event::KeepAliveMsg), vec![]);
    assert_eq!(s.step(Event::UpdateMsg), vec![Action::ProcessUpdate]);
    assert_eq!(s.step(Event::HoldTimerExpires), vec![]);
    assert_eq!(s.step(Event::KeepaliveTimerExpires), vec![]);
    assert_eq!(s.update_sent(), vec![]);
    assert_eq!(s.state(), State::Established);
}

#[test]
fn hold_timer_runs_from_open_to_the_end() {
    let mut s = at(ibgp(), State::Connect);
    s.step(Event::TcpCrAcked);
    assert!(s.timer_running(Timer::Hold));
    s.step(Event::BgpOpen(valid_open()));
    assert!(s.timer_running(Timer::Hold) && s.timer_running(Timer::Keepalive));
    s.step(Event::KeepAliveMsg);
    assert!(s.timer_running(Timer::Hold) && s.timer_running(Timer::Keepalive));
    s.step(Event::HoldTimerExpires);
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.running_timers().count(), 0);
}

// ---------------------------------------------------------------- Config

#[test]
fn config_validation() {
    assert_eq!(
        Config {
            hold_time: 1,
            ..ibgp()
        }
        .validate(),
        Err(ConfigError::HoldTime(1))
    );
    assert_eq!(
        Config {
            hold_time: 2,
            ..ibgp()
        }
        .validate(),
        Err(ConfigError::HoldTime(2))
    );
    assert_eq!(
        Config {
            hold_time: 0,
            ..ibgp()
        }
        .validate(),
        Ok(())
    );
    assert_eq!(
        Config {
            hold_time: 3,
            ..ibgp()
        }
        .validate(),
        Ok(())
    );
    assert!(
        Config {
            keepalive_time: Some(0),
            ..ibgp()
        }
        .validate()
        .is_err()
    );
    assert!(
        Config {
            keepalive_time: Some(91),
            ..ibgp()
        }
        .validate()
        .is_err()
    );
    assert!(
        Config {
            local_as: Asn(0),
            ..ibgp()
        }
        .validate()
        .is_err()
    );
    assert!(
        Config {
            local_as: AS_TRANS,
            ..ibgp()
        }
        .validate()
        .is_err()
    );
    assert!(
        Config {
            peer_as: PeerAs::Exact(AS_TRANS),
            ..ibgp()
        }
        .validate()
        .is_err()
    );
    assert!(
        Config {
            local_id: rid("0.0.0.0"),
            ..ibgp()
        }
        .validate()
        .is_err()
    );
    assert!(
        Config {
            connect_retry_time: 0,
            ..ibgp()
        }
        .validate()
        .is_err()
    );
    assert!(
        Config {
            auto_restart: Some(IdleHold {
                initial: 10,
                max: 5
            }),
            ..ibgp()
        }
        .validate()
        .is_err()
    );
    let err = Session::new(Config {
        hold_time: 2,
        ..ibgp()
    })
    .expect_err("refused");
    assert!(err.to_string().contains("hold time 2s"), "{err}");
}

// ---------------------------------------------------------------- Damping / automatic restart

fn damped() -> Config {
    Config {
        auto_restart: Some(IdleHold {
            initial: 5,
            max: 20,
        }),
        ..ibgp()
    }
}

#[test]
fn automatic_restart_backs_off_and_resets_once_established() {
    let mut s = at(damped(), State::Connect);
    let mut waits = Vec::new();
    for _ in 0..4 {
        let actions = s.step(Event::TcpConnectionFails);
        assert_eq!(s.state(), State::Idle);
        waits.extend(actions.iter().filter_map(|a| match a {
            Action::StartTimer {
                timer: Timer::IdleHold,
                seconds,
            } => Some(*seconds),
            _ => None,
        }));
        // Automatic starts wait for the IdleHoldTimer.
        assert_eq!(s.step(Event::AutomaticStart), vec![]);
        let actions = s.step(Event::IdleHoldTimerExpires);
        assert!(actions.contains(&Action::InitiateTcpConnection));
        assert_eq!(s.state(), State::Connect);
    }
    assert_eq!(waits, vec![5, 10, 20, 20]);

    drive(
        &mut s,
        &[
            Event::TcpCrAcked,
            Event::BgpOpen(valid_open()),
            Event::KeepAliveMsg,
        ],
    );
    assert_eq!(s.state(), State::Established);
    let actions = s.step(Event::HoldTimerExpires);
    assert_eq!(actions.last(), Some(&start_timer(Timer::IdleHold, 5)));
}

#[test]
fn stops_do_not_restart_and_cancel_a_pending_restart() {
    let mut s = at(damped(), State::Established);
    let actions = s.step(Event::ManualStop);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::StartTimer { .. }))
    );

    let mut s = at(damped(), State::Established);
    let actions = s.step(Event::AutomaticStop(CeaseSubcode::MaximumPrefixesReached));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::StartTimer { .. }))
    );

    let mut s = at(damped(), State::Connect);
    s.step(Event::TcpConnectionFails);
    assert!(s.timer_running(Timer::IdleHold));
    assert_eq!(
        s.step(Event::ManualStop),
        vec![Action::StopTimer(Timer::IdleHold)]
    );
    assert_eq!(s.step(Event::IdleHoldTimerExpires), vec![]);
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn manual_start_overrides_a_pending_restart() {
    let mut s = at(damped(), State::Connect);
    s.step(Event::TcpConnectionFails);
    let actions = s.step(Event::ManualStart);
    assert_eq!(actions[0], Action::StopTimer(Timer::IdleHold));
    assert_eq!(s.state(), State::Connect);
}

#[test]
fn passive_session_restarts_passive() {
    let mut s = at(damped(), State::Active);
    s.step(Event::TcpConnectionFails);
    let actions = s.step(Event::IdleHoldTimerExpires);
    assert!(!actions.contains(&Action::InitiateTcpConnection));
    assert_eq!(s.state(), State::Active);
}

// ---------------------------------------------------------------- Collisions (§6.8)

fn conn(state: State, initiated_locally: bool) -> Connection {
    Connection {
        state,
        initiated_locally,
    }
}

fn speaker(id: &str, asn: Asn) -> Speaker {
    Speaker { id: rid(id), asn }
}

#[test]
fn higher_local_id_keeps_the_connection_we_dialed() {
    let local = speaker("10.0.0.9", LOCAL_AS);
    let remote = speaker("10.0.0.2", LOCAL_AS);
    assert_eq!(
        resolve_collision(
            conn(State::OpenConfirm, true),
            conn(State::OpenSent, false),
            local,
            remote
        ),
        Some(CollisionLoser::New)
    );
    assert_eq!(
        resolve_collision(
            conn(State::OpenConfirm, false),
            conn(State::OpenSent, true),
            local,
            remote
        ),
        Some(CollisionLoser::Existing)
    );
}

#[test]
fn lower_local_id_keeps_the_connection_the_peer_dialed() {
    let local = speaker("10.0.0.2", LOCAL_AS);
    let remote = speaker("10.0.0.9", LOCAL_AS);
    assert_eq!(
        resolve_collision(
            conn(State::OpenConfirm, true),
            conn(State::OpenSent, false),
            local,
            remote
        ),
        Some(CollisionLoser::Existing)
    );
    assert_eq!(
        resolve_collision(
            conn(State::OpenConfirm, false),
            conn(State::OpenSent, true),
            local,
            remote
        ),
        Some(CollisionLoser::New)
    );
}

#[test]
fn identifiers_compare_as_unsigned_integers() {
    // 200.0.0.1 has the top bit set: a signed comparison would rank it below 10.0.0.1.
    let local = speaker("200.0.0.1", LOCAL_AS);
    let remote = speaker("10.0.0.1", LOCAL_AS);
    assert_eq!(
        resolve_collision(
            conn(State::OpenConfirm, true),
            conn(State::OpenConfirm, false),
            local,
            remote
        ),
        Some(CollisionLoser::New)
    );
}

#[test]
fn equal_identifiers_between_ases_prefer_the_larger_as() {
    let local = speaker("10.0.0.1", Asn(65001));
    let remote = speaker("10.0.0.1", Asn(65000));
    assert_eq!(
        resolve_collision(
            conn(State::OpenConfirm, false),
            conn(State::OpenSent, true),
            local,
            remote
        ),
        Some(CollisionLoser::Existing)
    );
    assert_eq!(
        resolve_collision(
            conn(State::OpenConfirm, false),
            conn(State::OpenSent, true),
            remote,
            local
        ),
        Some(CollisionLoser::New)
    );
}

#[test]
fn both_ends_close_the_same_connection() {
    // Both connections in OpenConfirm: whichever the shell calls "existing", the connection
    // dialed by the lower identifier goes.
    let local = speaker("10.0.0.2", LOCAL_AS);
    let remote = speaker("10.0.0.9", LOCAL_AS);
    let ours = conn(State::OpenConfirm, true);
    let theirs = conn(State::OpenConfirm, false);
    assert_eq!(
        resolve_collision(ours, theirs, local, remote),
        Some(CollisionLoser::Existing)
    );
    assert_eq!(
        resolve_collision(theirs, ours, local, remote),
        Some(CollisionLoser::New)
    );
    // And the peer, seeing the same two connections from its side, agrees.
    let their_view_ours = conn(State::OpenConfirm, false);
    let their_view_theirs = conn(State::OpenConfirm, true);
    assert_eq!(
        resolve_collision(their_view_theirs, their_view_ours, remote, local),
        Some(CollisionLoser::New)
    );
}

#[test]
fn established_existing_connection_wins() {
    let local = speaker("10.0.0.9", LOCAL_AS);
    let remote = speaker("10.0.0.2", LOCAL_AS);
    assert_eq!(
        resolve_collision(
            conn(State::Established, false),
            conn(State::OpenSent, true),
            local,
            remote
        ),
        Some(CollisionLoser::New)
    );
}

#[test]
fn no_collision_before_open_confirm() {
    let local = speaker("10.0.0.9", LOCAL_AS);
    let remote = speaker("10.0.0.2", LOCAL_AS);
    for state in [State::Idle, State::Connect, State::Active, State::OpenSent] {
        assert_eq!(
            resolve_collision(
                conn(state, false),
                conn(State::OpenSent, true),
                local,
                remote
            ),
            None
        );
    }
    assert_eq!(
        resolve_collision(
            conn(State::OpenConfirm, false),
            conn(State::Active, true),
            local,
            remote
        ),
        None
    );
}

#[test]
fn collision_loser_sends_cease_collision_resolution() {
    let mut s = at(ibgp(), State::OpenConfirm);
    let actions = s.step(Event::OpenCollisionDump);
    assert_eq!(sent_notification(&actions), Some(&collision_notification()));
    assert_eq!(
        (
            collision_notification().code(),
            collision_notification().subcode()
        ),
        (6, 7)
    );
    assert_eq!(s.state(), State::Idle);
}

// ---------------------------------------------------------------- Calico's dialing rule

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test ip")
}

#[test]
fn calico_mesh_higher_address_text_dials() {
    // As in a confd-generated bird.cfg on 192.168.30.126: passive towards .127 and .128,
    // dialing .124 and .125.
    let me = ip("192.168.30.126");
    assert!(dials_first(me, ip("192.168.30.124")));
    assert!(dials_first(me, ip("192.168.30.125")));
    assert!(!dials_first(me, ip("192.168.30.127")));
    assert!(!dials_first(me, ip("192.168.30.128")));
    // Text order, as Go's string comparison: "10.0.0.9" > "10.0.0.10".
    assert!(dials_first(ip("10.0.0.9"), ip("10.0.0.10")));
    assert!(!dials_first(ip("10.0.0.10"), ip("10.0.0.9")));
    assert!(dials_first(ip("fd00::b"), ip("fd00::a")));
}

#[test]
fn exactly_one_end_of_a_mesh_session_dials() {
    let addrs: Vec<IpAddr> = (0..=20u8)
        .flat_map(|i| {
            [
                IpAddr::V4(Ipv4Addr::new(10, 0, i, 9)),
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
            ]
        })
        .collect();
    for a in &addrs {
        for b in &addrs {
            if a != b {
                assert_ne!(dials_first(*a, *b), dials_first(*b, *a), "{a} {b}");
            }
        }
    }
}

// ---------------------------------------------------------------- Properties

mod properties {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn timer_key(t: Timer) -> u8 {
        match t {
            Timer::ConnectRetry => 0,
            Timer::Hold => 1,
            Timer::Keepalive => 2,
            Timer::IdleHold => 3,
        }
    }

    fn config_strategy() -> impl Strategy<Value = Config> {
        (
            prop::sample::select(vec![0u16, 3, 9, 90]),
            prop::option::of(1u16..=3),
            any::<bool>(),
            prop::option::of((1u16..5, 5u16..40)),
            prop::option::of(1u16..300),
            prop::sample::select(vec![
                PeerAs::Exact(LOCAL_AS),
                PeerAs::Internal,
                PeerAs::Any,
                PeerAs::Exact(PEER_AS),
                PeerAs::External,
            ]),
        )
            .prop_map(
                |(hold_time, keepalive, passive, damping, gr, peer_as)| Config {
                    hold_time,
                    keepalive_time: keepalive.filter(|_| hold_time != 0),
                    passive,
                    auto_restart: damping.map(|(initial, max)| IdleHold { initial, max }),
                    graceful_restart: gr.map(|restart_time| GracefulRestart { restart_time }),
                    peer_as,
                    ..ibgp()
                },
            )
    }

    fn open_strategy() -> impl Strategy<Value = PeerOpen> {
        (
            prop::sample::select(vec![4u8, 4, 4, 3]),
            prop::sample::select(vec![
                LOCAL_AS,
                LOCAL_AS,
                PEER_AS,
                Asn(0),
                AS_TRANS,
                Asn(4_200_000_000),
            ]),
            any::<bool>(),
            prop::sample::select(vec![0u16, 1, 2, 3, 30, 90, 65535]),
            prop::sample::select(vec![
                peer_id(),
                peer_id(),
                local_id(),
                rid("0.0.0.0"),
                rid("255.0.0.1"),
            ]),
            prop::option::of(0u16..200),
        )
            .prop_map(
                |(version, asn, new_speaker, hold_time, bgp_id, gr)| PeerOpen {
                    version,
                    my_as: u16::try_from(asn.0).unwrap_or(23456),
                    hold_time,
                    bgp_id,
                    four_octet_as: new_speaker.then_some(asn),
                    graceful_restart: gr.map(|restart_time| GracefulRestart { restart_time }),
                },
            )
    }

    fn event_strategy() -> impl Strategy<Value = Event> {
        prop_oneof![
            4 => Just(Event::ManualStart),
            1 => Just(Event::ManualStop),
            2 => Just(Event::AutomaticStart),
            1 => Just(Event::ManualStartWithPassiveTcpEstablishment),
            1 => Just(Event::AutomaticStartWithPassiveTcpEstablishment),
            1 => Just(Event::AutomaticStop(CeaseSubcode::MaximumPrefixesReached)),
            2 => Just(Event::ConnectRetryTimerExpires),
            2 => Just(Event::HoldTimerExpires),
            3 => Just(Event::KeepaliveTimerExpires),
            2 => Just(Event::IdleHoldTimerExpires),
            4 => Just(Event::TcpCrAcked),
            2 => Just(Event::TcpConnectionConfirmed),
            2 => Just(Event::TcpConnectionFails),
            6 => open_strategy().prop_map(Event::BgpOpen),
            1 => Just(Event::BgpHeaderErr(header_error())),
            1 => Just(Event::BgpOpenMsgErr(open_msg_error())),
            1 => Just(Event::OpenCollisionDump),
            1 => Just(Event::NotifMsgVerErr),
            1 => Just(Event::NotifMsg),
            6 => Just(Event::KeepAliveMsg),
            3 => Just(Event::UpdateMsg),
            1 => Just(Event::UpdateMsgErr(update_error())),
        ]
    }

    /// A random event, or a whole handshake with a plausible OPEN, so that sequences reach
    /// Established often enough to test it.
    fn chunk_strategy() -> impl Strategy<Value = Vec<Event>> {
        let handshake = (
            prop::sample::select(vec![LOCAL_AS, PEER_AS]),
            prop::sample::select(vec![0u16, 3, 5, 30, 90, 240]),
            any::<bool>(),
        )
            .prop_map(|(asn, hold, accept)| {
                vec![
                    Event::ManualStart,
                    if accept {
                        Event::TcpConnectionConfirmed
                    } else {
                        Event::TcpCrAcked
                    },
                    Event::BgpOpen(open_from(asn, hold, peer_id())),
                    Event::KeepAliveMsg,
                ]
            });
        prop_oneof![
            6 => event_strategy().prop_map(|e| vec![e]),
            1 => handshake,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_event_sequence_keeps_the_invariants(
            config in config_strategy(),
            chunks in prop::collection::vec(chunk_strategy(), 0..40),
        ) {
            let events: Vec<Event> = chunks.into_iter().flatten().collect();
            let mut s = Session::new(config).expect("strategy makes valid configs");
            // The shell's view of the timers, built only from actions and expiries.
            let mut shell_timers: BTreeSet<u8> = BTreeSet::new();
            // What the last accepted OPEN negotiated.
            let mut accepted: Option<Negotiated> = None;
            for event in events {
                let before = s.state();
                let expired = match event {
                    Event::ConnectRetryTimerExpires => Some(Timer::ConnectRetry),
                    Event::HoldTimerExpires => Some(Timer::Hold),
                    Event::KeepaliveTimerExpires => Some(Timer::Keepalive),
                    Event::IdleHoldTimerExpires => Some(Timer::IdleHold),
                    _ => None,
                };
                if let Some(t) = expired {
                    shell_timers.remove(&timer_key(t));
                }
                let actions = s.step(event.clone());
                let after = s.state();
                for a in &actions {
                    match a {
                        Action::StartTimer { timer, seconds } => {
                            prop_assert!(*seconds > 0);
                            shell_timers.insert(timer_key(*timer));
                        }
                        Action::StopTimer(timer) => {
                            prop_assert!(shell_timers.remove(&timer_key(*timer)), "stop of a stopped timer");
                        }
                        Action::SendOpen(_) => {
                            prop_assert!(matches!(before, State::Connect | State::Active));
                            prop_assert_eq!(after, State::OpenSent);
                        }
                        Action::SessionEstablished(n) => {
                            prop_assert_eq!(Some(*n), accepted);
                        }
                        Action::SessionDown(_) => prop_assert_eq!(before, State::Established),
                        _ => {}
                    }
                }
                let running: BTreeSet<u8> = s.running_timers().map(timer_key).collect();
                prop_assert_eq!(&running, &shell_timers);

                if after == State::OpenConfirm && before != State::OpenConfirm {
                    prop_assert_eq!(before, State::OpenSent);
                    let Event::BgpOpen(open) = &event else {
                        return Err(TestCaseError::fail("OpenConfirm without an OPEN"));
                    };
                    let n = check_open(&config, open);
                    prop_assert!(n.is_ok());
                    accepted = n.ok();
                    prop_assert_eq!(s.negotiated().copied(), accepted);
                }
                if after == State::Established && before != State::Established {
                    prop_assert_eq!(before, State::OpenConfirm);
                    prop_assert_eq!(&event, &Event::KeepAliveMsg);
                    prop_assert_eq!(actions.iter().filter(|a| matches!(a, Action::SessionEstablished(_))).count(), 1);
                }
                if after == State::Established {
                    let n = s.negotiated().copied();
                    prop_assert!(n.is_some());
                    let hold = n.map_or(0, |n| n.hold_time);
                    prop_assert_eq!(s.timer_running(Timer::Hold), hold != 0);
                    prop_assert_eq!(s.timer_running(Timer::Keepalive), hold != 0);
                    prop_assert!(!s.timer_running(Timer::ConnectRetry));
                }
                if after == State::Idle {
                    prop_assert!(s.running_timers().all(|t| t == Timer::IdleHold));
                    prop_assert!(s.negotiated().is_none());
                }
                if after != State::Idle {
                    prop_assert!(!s.timer_running(Timer::IdleHold));
                }
                if after != State::Idle && before == State::Idle {
                    prop_assert!(s.timer_running(Timer::ConnectRetry));
                }
            }
        }

        #[test]
        fn check_open_never_accepts_what_section_6_2_refuses(
            config in config_strategy(),
            open in open_strategy(),
        ) {
            match check_open(&config, &open) {
                Ok(n) => {
                    prop_assert_eq!(open.version, 4);
                    prop_assert!(!matches!(open.hold_time, 1 | 2));
                    prop_assert!(n.hold_time <= config.hold_time && n.hold_time <= open.hold_time);
                    prop_assert_eq!(n.hold_time == 0, n.keepalive_time == 0);
                    prop_assert!(n.hold_time == 0 || n.keepalive_time * 3 <= n.hold_time);
                    prop_assert!(n.peer_as != Asn(0) && n.peer_as != AS_TRANS);
                    prop_assert!(n.peer_id.to_u32() != 0);
                }
                Err(e) => prop_assert_eq!(e.code(), 2),
            }
        }
    }

    #[test]
    fn the_happy_path_reaches_established_for_every_valid_hold_time() {
        for hold in [0u16, 3, 4, 9, 90, 65535] {
            let mut s = session(ibgp());
            drive(
                &mut s,
                &[
                    Event::ManualStart,
                    Event::TcpCrAcked,
                    Event::BgpOpen(open_from(LOCAL_AS, hold, peer_id())),
                    Event::KeepAliveMsg,
                ],
            );
            assert_eq!(s.state(), State::Established, "hold {hold}");
        }
    }
}
