//! The bodies of the fuzz targets in `bgp/fuzz`, public so that the same code also runs in a
//! plain `cargo test` (`bgp/tests/wire_fuzz.rs`) on stable.
//!
//! Each target feeds arbitrary octets to one decoder. Besides "never panic", whatever a
//! decoder accepts must re-encode, and decode again to the same value: decoding normalizes
//! (clears trailing prefix bits, sets Partial on unknown attributes, drops duplicates), so
//! this checks that normal forms are fixed points of encode-then-decode.

use bytes::BytesMut;

use super::{
    Codec, Inbound, Message, UpdateOutcome, decode_notification, decode_open, decode_route_refresh,
    decode_update, frame_length,
};

/// A fuzz target body; the names in [`TARGETS`] are those of `bgp/fuzz/fuzz_targets/*.rs` and
/// of the corpus directories.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("message", message),
    ("open", open),
    ("update", update),
    ("notification", notification),
    ("route_refresh", route_refresh),
];

fn round_trip(codec: &Codec, msg: Message) {
    let mut out = BytesMut::new();
    if let Err(e) = codec.encode(&msg, &mut out) {
        panic!("decoded {msg:?} does not re-encode: {e}");
    }
    match codec.decode(&out).map(Inbound::into_message) {
        Ok(Some(again)) => assert_eq!(again, msg, "re-decoded message differs"),
        other => panic!("re-encoded {msg:?} decodes to {other:?}"),
    }
}

/// The codec the first octet of a fuzz input picks (bit 0: 4-octet AS, bit 1: external), so
/// that the fuzzer can steer it.
fn codec_of(first: u8) -> Codec {
    Codec {
        four_octet_as: first & 1 == 1,
        external: first & 2 == 2,
    }
}

/// A whole message (header included); the first octet picks the codec.
pub fn message(data: &[u8]) {
    let Some((first, data)) = data.split_first() else {
        return;
    };
    let codec = codec_of(*first);
    let _ = frame_length(data);
    if let Ok(inbound) = codec.decode(data)
        && let Some(msg) = inbound.into_message()
    {
        round_trip(&codec, msg);
    }
}

/// An OPEN body.
pub fn open(data: &[u8]) {
    if let Ok(o) = decode_open(data) {
        round_trip(&Codec::default(), Message::Open(o));
    }
}

/// An UPDATE body; the first octet picks the codec setting.
pub fn update(data: &[u8]) {
    let Some((first, data)) = data.split_first() else {
        return;
    };
    let codec = codec_of(*first);
    match decode_update(data, &codec) {
        // A body can be longer than a message allows; only what fits can go back out.
        Ok(UpdateOutcome::Accept(u)) | Ok(UpdateOutcome::AttributeDiscard { update: u, .. })
            if data.len() + super::HEADER_LEN <= super::MAX_MESSAGE_LEN =>
        {
            round_trip(&codec, Message::Update(u));
        }
        _ => {}
    }
}

/// A NOTIFICATION body.
pub fn notification(data: &[u8]) {
    if let Ok(n) = decode_notification(data)
        && data.len() + super::HEADER_LEN <= super::MAX_MESSAGE_LEN
    {
        round_trip(&Codec::default(), Message::Notification(n));
    }
}

/// A ROUTE-REFRESH body.
pub fn route_refresh(data: &[u8]) {
    if let Ok(r) = decode_route_refresh(data) {
        round_trip(&Codec::default(), Message::RouteRefresh(r));
    }
}

/// Valid inputs for each target, as (target, input): the seed corpus of `bgp/fuzz/corpus`,
/// written there by `BGP_WIRE_WRITE_CORPUS=1 cargo test -p bgp --test wire_fuzz`.
pub fn seed_corpus() -> Vec<(&'static str, Vec<u8>)> {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use api::asn::Asn;
    use ipnetwork::{Ipv4Network, Ipv6Network};

    use super::{
        Aggregator, AsPath, AsSegment, Capability, Community, ErrorCode, ExtendedCommunity, Family,
        GracefulRestart, GracefulRestartFamily, HEADER_LEN, LargeCommunity, MpReach, MpUnreach,
        Notification, Open, Origin, PathAttributes, RouteRefresh, SegmentType, UnknownAttribute,
        Update,
    };

    let v4 = |a: [u8; 4], len| Ipv4Network::new(Ipv4Addr::from(a), len).ok();
    let v6 = |a: u128, len| Ipv6Network::new(Ipv6Addr::from(a), len).ok();
    let base = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence([Asn(65001), Asn(65002)])),
        next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
        ..Default::default()
    };
    let full = PathAttributes {
        med: Some(10),
        local_pref: Some(100),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: Asn(65001),
            address: Ipv4Addr::new(10, 0, 0, 9),
        }),
        communities: vec![Community::NO_EXPORT, Community(0xfde9_0007)],
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 2)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 3)],
        extended_communities: vec![ExtendedCommunity::route_target(65001, 1)],
        large_communities: vec![LargeCommunity {
            global_admin: 65001,
            local_data_1: 1,
            local_data_2: 2,
        }],
        unknown: vec![UnknownAttribute {
            type_code: 99,
            value: bytes::Bytes::from_static(&[1, 2, 3]),
        }],
        as_path: Some(AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentType::ConfedSequence,
                    asns: vec![Asn(64512)],
                },
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![Asn(65001)],
                },
                AsSegment {
                    kind: SegmentType::Set,
                    asns: vec![Asn(65003), Asn(65004)],
                },
            ],
        }),
        ..base.clone()
    };
    let nlri: Vec<Ipv4Network> = [
        v4([10, 1, 2, 0], 24),
        v4([192, 168, 0, 0], 16),
        v4([0; 4], 0),
    ]
    .into_iter()
    .flatten()
    .collect();
    let v6_reach = MpReach::Ipv6Unicast {
        next_hop: Ipv6Addr::from(0x2001_0db8_u128 << 96 | 1),
        link_local: Some(Ipv6Addr::from(0xfe80_u128 << 112 | 1)),
        nlri: [v6(0x2001_0db8_0001_u128 << 80, 48), v6(0, 0)]
            .into_iter()
            .flatten()
            .collect(),
    };
    let big_as = PathAttributes {
        as_path: Some(AsPath::sequence([Asn(4_200_000_000), Asn(65001)])),
        aggregator: Some(Aggregator {
            asn: Asn(4_200_000_000),
            address: Ipv4Addr::new(10, 0, 0, 9),
        }),
        ..base.clone()
    };
    let updates: Vec<(bool, Update)> = vec![
        (
            false,
            Update {
                attributes: base.clone(),
                nlri: nlri.clone(),
                ..Default::default()
            },
        ),
        (
            false,
            Update {
                withdrawn: nlri.clone(),
                attributes: full,
                nlri: nlri.clone(),
            },
        ),
        (
            true,
            Update {
                attributes: PathAttributes {
                    mp_reach: Some(v6_reach),
                    mp_unreach: Some(MpUnreach::Ipv4Unicast(nlri.clone())),
                    next_hop: None,
                    ..base.clone()
                },
                ..Default::default()
            },
        ),
        (
            true,
            Update {
                attributes: big_as.clone(),
                nlri: nlri.clone(),
                ..Default::default()
            },
        ),
        (
            false,
            Update {
                attributes: big_as.for_two_octet_peer(),
                nlri: nlri.clone(),
                ..Default::default()
            },
        ),
        (false, Update::default()),
        (
            false,
            Update::end_of_rib(Family::IPV6_UNICAST).unwrap_or_default(),
        ),
        (
            false,
            Update {
                withdrawn: nlri,
                ..Default::default()
            },
        ),
    ];
    let open = Open::new(
        Asn(4_200_000_000),
        90,
        Ipv4Addr::new(192, 0, 2, 1),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::GracefulRestart(GracefulRestart {
                restart_state: true,
                notification: true,
                restart_time: 120,
                families: vec![GracefulRestartFamily {
                    family: Family::IPV4_UNICAST,
                    forwarding_state: true,
                }],
            }),
            Capability::Unknown {
                code: 69,
                value: bytes::Bytes::from_static(&[0, 1, 1, 1]),
            },
        ],
    );
    let plain_open = Open::new(Asn(65001), 0, Ipv4Addr::new(10, 0, 0, 1), vec![]);
    let mut messages: Vec<(bool, Message)> = vec![
        (false, Message::Keepalive),
        (false, Message::Open(open)),
        (false, Message::Open(plain_open)),
        (
            false,
            Message::Notification(Notification::new(
                ErrorCode::from_octets(6, 2),
                &b"maintenance"[..],
            )),
        ),
        (
            false,
            Message::Notification(Notification::new(ErrorCode::from_octets(3, 1), Vec::new())),
        ),
        (
            false,
            Message::RouteRefresh(RouteRefresh::new(Family::IPV6_UNICAST)),
        ),
    ];
    messages.extend(updates.into_iter().map(|(f, u)| (f, Message::Update(u))));

    let target_of = |m: &Message| match m {
        Message::Open(_) => Some("open"),
        Message::Update(_) => Some("update"),
        Message::Notification(_) => Some("notification"),
        Message::RouteRefresh(_) => Some("route_refresh"),
        Message::Keepalive => None,
    };
    let mut out = Vec::new();
    for (four, msg) in messages {
        let Ok(bytes) = Codec::new(four).encode_to_bytes(&msg) else {
            continue;
        };
        let mut whole = vec![u8::from(four)];
        whole.extend_from_slice(&bytes);
        out.push(("message", whole));
        let body = &bytes[HEADER_LEN..];
        match target_of(&msg) {
            Some("update") => {
                let mut with_codec = vec![u8::from(four)];
                with_codec.extend_from_slice(body);
                out.push(("update", with_codec));
            }
            Some(t) => out.push((t, body.to_vec())),
            None => {}
        }
    }
    out
}
