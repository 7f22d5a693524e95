//! Byte-vector tests of whole messages, above all the RFC 7606 outcomes of malformed UPDATEs,
//! and property tests: encode-then-decode is the identity, and no input makes a decoder panic.
//! The vectors are written by hand from the RFC figures cited in each test.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use proptest::prelude::*;

use api::asn::Asn;

use super::attribute::code;
use super::*;

const OPT: u8 = 0x80;
const TRANS: u8 = 0x40;
const PARTIAL: u8 = 0x20;
const EXT: u8 = 0x10;

fn attr(flags: u8, type_code: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, type_code];
    if flags & EXT != 0 {
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        v.push(value.len() as u8);
    }
    v.extend_from_slice(value);
    v
}

fn body(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut v = (withdrawn.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(withdrawn);
    v.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    v.extend_from_slice(attrs);
    v.extend_from_slice(nlri);
    v
}

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    v.push(kind);
    v.extend_from_slice(body);
    v
}

fn origin() -> Vec<u8> {
    attr(TRANS, code::ORIGIN, &[0])
}

/// AS_SEQUENCE [65001], 2-octet.
fn as_path() -> Vec<u8> {
    attr(TRANS, code::AS_PATH, &[2, 1, 0xfd, 0xe9])
}

fn next_hop() -> Vec<u8> {
    attr(TRANS, code::NEXT_HOP, &[10, 0, 0, 1])
}

fn mandatory() -> Vec<u8> {
    [origin(), as_path(), next_hop()].concat()
}

/// 10.1.2.0/24.
const NLRI: &[u8] = &[24, 10, 1, 2];

fn v4(s: &str) -> Ipv4Network {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Network {
    s.parse().unwrap()
}

fn two() -> Codec {
    Codec::new(false)
}

fn four() -> Codec {
    Codec::new(true)
}

fn accept(b: &[u8], codec: Codec) -> Update {
    match decode_update(b, &codec) {
        Ok(UpdateOutcome::Accept(u)) => u,
        other => panic!("expected Accept, got {other:?}"),
    }
}

fn withdraw(b: &[u8], codec: Codec) -> (Vec<IpNetwork>, Vec<AttributeError>) {
    match decode_update(b, &codec) {
        Ok(UpdateOutcome::TreatAsWithdraw { withdrawn, errors }) => (withdrawn, errors),
        other => panic!("expected TreatAsWithdraw, got {other:?}"),
    }
}

fn discard(b: &[u8], codec: Codec) -> (Update, Vec<AttributeError>) {
    match decode_update(b, &codec) {
        Ok(UpdateOutcome::AttributeDiscard { update, discarded }) => (update, discarded),
        other => panic!("expected AttributeDiscard, got {other:?}"),
    }
}

fn reset(b: &[u8], codec: Codec) -> Notification {
    match decode_update(b, &codec) {
        Err(e) => e.notification,
        other => panic!("expected session reset, got {other:?}"),
    }
}

fn encode_update(u: &Update, codec: Codec) -> Vec<u8> {
    codec
        .encode_to_bytes(&Message::Update(u.clone()))
        .unwrap()
        .to_vec()
}

// ---- Well-formed messages -------------------------------------------------------------------

#[test]
fn keepalive_frame() {
    let f = frame(4, &[]);
    assert_eq!(two().decode(&f).unwrap(), Inbound::Keepalive);
    assert_eq!(
        &two().encode_to_bytes(&Message::Keepalive).unwrap()[..],
        &f[..]
    );
}

#[test]
fn rfc4271_6_1_frame_shorter_than_its_length_field() {
    let mut f = frame(4, &[]);
    f.push(0);
    let e = two().decode(&f).unwrap_err();
    assert_eq!(
        e.notification.code,
        ErrorCode::MessageHeader(HeaderError::BadMessageLength)
    );
}

#[test]
fn notification_frame_round_trips() {
    let f = frame(3, &[6, 2, b'b', b'y', b'e']);
    let n = match two().decode(&f).unwrap() {
        Inbound::Notification(n) => n,
        other => panic!("{other:?}"),
    };
    assert_eq!(n.code, ErrorCode::Cease(CeaseError::AdministrativeShutdown));
    assert_eq!(
        &two().encode_to_bytes(&Message::Notification(n)).unwrap()[..],
        &f[..]
    );
}

#[test]
fn route_refresh_frame() {
    let f = frame(5, &[0, 1, 0, 1]);
    assert_eq!(
        two().decode(&f).unwrap(),
        Inbound::RouteRefresh(RouteRefresh::new(Family::IPV4_UNICAST))
    );
}

#[test]
fn open_frame_round_trips() {
    let open = Open::new(
        Asn(4_200_000_000),
        90,
        Ipv4Addr::new(192, 0, 2, 1),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::GracefulRestart(GracefulRestart {
                restart_state: false,
                notification: true,
                restart_time: 120,
                families: vec![GracefulRestartFamily {
                    family: Family::IPV6_UNICAST,
                    forwarding_state: true,
                }],
            }),
        ],
    );
    let bytes = two().encode_to_bytes(&Message::Open(open.clone())).unwrap();
    assert_eq!(&bytes[19..22], &[4, 0x5b, 0xa0]); // version 4, my AS = AS_TRANS
    assert_eq!(two().decode(&bytes).unwrap(), Inbound::Open(open));
}

#[test]
fn rfc4271_4_3_update_with_every_attribute() {
    // Attributes in the order the encoder writes them, so the bytes round-trip exactly.
    let attrs = [
        origin(),
        as_path(),
        next_hop(),
        attr(OPT, code::MULTI_EXIT_DISC, &[0, 0, 0, 50]),
        attr(TRANS, code::LOCAL_PREF, &[0, 0, 0, 100]),
        attr(TRANS, code::ATOMIC_AGGREGATE, &[]),
        attr(OPT | TRANS, code::AGGREGATOR, &[0xfd, 0xe9, 10, 0, 0, 9]),
        attr(
            OPT | TRANS,
            code::COMMUNITIES,
            &[0xff, 0xff, 0xff, 0x01, 0xfd, 0xe9, 0, 7],
        ),
        attr(OPT, code::ORIGINATOR_ID, &[10, 0, 0, 2]),
        attr(OPT, code::CLUSTER_LIST, &[10, 0, 0, 3, 10, 0, 0, 4]),
        attr(
            OPT | TRANS,
            code::EXTENDED_COMMUNITIES,
            &[0, 2, 0xfd, 0xe9, 0, 0, 0, 1],
        ),
        attr(
            OPT | TRANS,
            code::LARGE_COMMUNITY,
            &[0, 0, 0xfd, 0xe9, 0, 0, 0, 1, 0, 0, 0, 2],
        ),
        attr(OPT | TRANS | PARTIAL, 99, &[1, 2, 3]),
    ]
    .concat();
    let b = body(&[16, 192, 168], &attrs, NLRI);
    let u = accept(&b, two());
    assert_eq!(u.withdrawn, vec![v4("192.168.0.0/16")]);
    assert_eq!(u.nlri, vec![v4("10.1.2.0/24")]);
    let a = &u.attributes;
    assert_eq!(a.origin, Some(Origin::Igp));
    assert_eq!(a.as_path, Some(AsPath::sequence([Asn(65001)])));
    assert_eq!(a.next_hop, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!((a.med, a.local_pref), (Some(50), Some(100)));
    assert!(a.atomic_aggregate);
    assert_eq!(
        a.aggregator,
        Some(Aggregator {
            asn: Asn(65001),
            address: Ipv4Addr::new(10, 0, 0, 9)
        })
    );
    assert_eq!(
        a.communities,
        vec![Community::NO_EXPORT, Community((65001 << 16) | 7)]
    );
    assert_eq!(a.originator_id, Some(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(a.cluster_list.len(), 2);
    assert_eq!(
        a.extended_communities,
        vec![ExtendedCommunity::route_target(65001, 1)]
    );
    assert_eq!(
        a.large_communities,
        vec![LargeCommunity {
            global_admin: 65001,
            local_data_1: 1,
            local_data_2: 2
        }]
    );
    assert_eq!(a.unknown.len(), 1);
    assert_eq!(encode_update(&u, two())[19..], b[..]);
}

#[test]
fn rfc6793_4_octet_as_path_and_aggregator() {
    let attrs = [
        origin(),
        attr(
            TRANS,
            code::AS_PATH,
            &[2, 2, 0xfa, 0x56, 0xea, 0, 0, 0, 0xfd, 0xe9],
        ),
        next_hop(),
        attr(
            OPT | TRANS,
            code::AGGREGATOR,
            &[0xfa, 0x56, 0xea, 0, 10, 0, 0, 9],
        ),
    ]
    .concat();
    let b = body(&[], &attrs, NLRI);
    let u = accept(&b, four());
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::sequence([Asn(4_200_000_000), Asn(65001)]))
    );
    assert_eq!(u.attributes.aggregator.unwrap().asn, Asn(4_200_000_000));
    assert_eq!(encode_update(&u, four())[19..], b[..]);
    // The same octets read with 2-octet AS: the AS_PATH segment overruns (RFC 7606 §7.2) and
    // the 8-octet AGGREGATOR is discarded (§7.7); treat-as-withdraw is the stronger.
    let (withdrawn, errors) = withdraw(&b, two());
    assert_eq!(withdrawn, vec![IpNetwork::V4(v4("10.1.2.0/24"))]);
    assert_eq!(errors.len(), 2);
}

#[test]
fn rfc6793_4_2_3_as4_path_from_a_2_octet_peer_merges() {
    let attrs = [
        origin(),
        attr(TRANS, code::AS_PATH, &[2, 2, 0xfd, 0xe9, 0x5b, 0xa0]),
        next_hop(),
        attr(OPT | TRANS, code::AS4_PATH, &[2, 1, 0xfa, 0x56, 0xea, 0]),
    ]
    .concat();
    let u = accept(&body(&[], &attrs, NLRI), two());
    let merged = u.attributes.merge_as4();
    assert_eq!(
        merged.as_path,
        Some(AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![Asn(65001)]
                },
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![Asn(4_200_000_000)]
                },
            ]
        })
    );
}

#[test]
fn rfc6793_6_as4_attributes_from_a_4_octet_peer_are_discarded() {
    let attrs = [
        origin(),
        attr(TRANS, code::AS_PATH, &[2, 1, 0, 0, 0xfd, 0xe9]),
        next_hop(),
        attr(OPT | TRANS, code::AS4_PATH, &[2, 1, 0xfa, 0x56, 0xea, 0]),
    ]
    .concat();
    let (u, discarded) = discard(&body(&[], &attrs, NLRI), four());
    assert!(u.attributes.as4_path.is_none());
    assert_eq!(discarded[0].type_code, code::AS4_PATH);
}

#[test]
fn rfc6793_6_malformed_as4_attributes_are_discarded() {
    let attrs = [
        mandatory(),
        attr(OPT | TRANS, code::AS4_PATH, &[3, 1, 0, 0, 0, 1]),
        attr(OPT | TRANS, code::AS4_AGGREGATOR, &[0, 1, 10, 0, 0, 1]),
    ]
    .concat();
    let (u, discarded) = discard(&body(&[], &attrs, NLRI), two());
    assert!(u.attributes.as4_path.is_none() && u.attributes.as4_aggregator.is_none());
    assert_eq!(discarded.len(), 2);
}

#[test]
fn rfc4760_rfc2545_ipv6_reach_with_link_local_and_unreach() {
    let mut reach = vec![0, 2, 1, 32];
    reach.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    reach.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
    reach.push(0);
    reach.extend_from_slice(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 1]);
    let unreach = [0, 2, 1, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0];
    let attrs = [
        attr(OPT, code::MP_REACH_NLRI, &reach),
        attr(OPT, code::MP_UNREACH_NLRI, &unreach),
        origin(),
        as_path(),
    ]
    .concat();
    let b = body(&[], &attrs, &[]);
    let u = accept(&b, two());
    assert_eq!(
        u.attributes.mp_reach,
        Some(MpReach::Ipv6Unicast {
            next_hop: "2001:db8::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
            nlri: vec![v6("2001:db8:1::/48")],
        })
    );
    assert_eq!(
        u.attributes.mp_unreach,
        Some(MpUnreach::Ipv6Unicast(vec![v6("2001:db8:2::/64")]))
    );
    assert_eq!(encode_update(&u, two())[19..], b[..]);
}

#[test]
fn rfc4724_2_end_of_rib() {
    let eor4 = Update::end_of_rib(Family::IPV4_UNICAST).unwrap();
    assert_eq!(encode_update(&eor4, two()), frame(2, &[0, 0, 0, 0]));
    let eor6 = Update::end_of_rib(Family::IPV6_UNICAST).unwrap();
    let b = encode_update(&eor6, two());
    assert_eq!(b[19..], body(&[], &attr(OPT, 15, &[0, 2, 1]), &[])[..]);
    assert_eq!(
        accept(&b[19..], two()).end_of_rib_family(),
        Some(Family::IPV6_UNICAST)
    );
}

#[test]
fn rfc4271_4_3_extended_length_both_ways() {
    // A short attribute sent with Extended Length is fine; we re-encode it without.
    let attrs = [attr(TRANS | EXT, code::ORIGIN, &[2]), as_path(), next_hop()].concat();
    let u = accept(&body(&[], &attrs, NLRI), two());
    assert_eq!(u.attributes.origin, Some(Origin::Incomplete));
    // 70 communities = 280 octets: the encoder must switch to Extended Length.
    let mut u = u;
    u.attributes.communities = (0..70).map(Community).collect();
    let b = encode_update(&u, two());
    let at = b
        .windows(2)
        .position(|w| w == [OPT | TRANS | EXT, code::COMMUNITIES])
        .expect("COMMUNITIES with Extended Length");
    assert_eq!(&b[at + 2..at + 4], &280u16.to_be_bytes());
    assert_eq!(accept(&b[19..], two()), u);
}

#[test]
fn rfc4271_5_unknown_optional_attributes() {
    let attrs = [
        mandatory(),
        attr(OPT | TRANS, 200, &[7; 3]),
        attr(OPT, 201, &[8; 3]),
    ]
    .concat();
    let u = accept(&body(&[], &attrs, NLRI), two());
    // The transitive one is kept, the non-transitive one quietly ignored.
    assert_eq!(
        u.attributes.unknown,
        vec![UnknownAttribute {
            type_code: 200,
            value: Bytes::from_static(&[7; 3])
        }]
    );
    // And it is passed on with the Partial bit (RFC 4271 §5).
    let b = encode_update(&u, two());
    assert!(b.windows(3).any(|w| w == [OPT | TRANS | PARTIAL, 200, 3]));
}

// ---- RFC 7606 ------------------------------------------------------------------------------

#[test]
fn rfc4271_6_3_lengths_past_the_message_reset() {
    let mut b = body(&[], &mandatory(), NLRI);
    b[3] = 200;
    let n = reset(&b, two());
    assert_eq!(
        n.code,
        ErrorCode::Update(UpdateError::MalformedAttributeList)
    );
    let b = [0, 9, 8, 10];
    assert_eq!(
        reset(&b, two()).code,
        ErrorCode::Update(UpdateError::MalformedAttributeList)
    );
}

#[test]
fn rfc7606_4_attribute_overrunning_total_length_is_treat_as_withdraw() {
    // The last attribute claims 4 octets but only 1 is inside Total Attribute Length; the
    // NLRI is still found by Total Attribute Length.
    let mut attrs = mandatory();
    attrs.extend_from_slice(&[OPT, code::MULTI_EXIT_DISC, 4, 0]);
    let (withdrawn, errors) = withdraw(&body(&[24, 10, 9, 9], &attrs, NLRI), two());
    assert_eq!(
        withdrawn,
        vec![
            IpNetwork::V4(v4("10.9.9.0/24")),
            IpNetwork::V4(v4("10.1.2.0/24"))
        ]
    );
    assert_eq!(errors[0].subcode, UpdateError::AttributeLengthError);
}

#[test]
fn rfc7606_4_too_few_octets_for_an_attribute_header() {
    let mut attrs = mandatory();
    attrs.extend_from_slice(&[OPT, code::MULTI_EXIT_DISC]);
    withdraw(&body(&[], &attrs, NLRI), two());
    // With Extended Length, 3 octets are still too few.
    let mut attrs = mandatory();
    attrs.extend_from_slice(&[OPT | EXT, code::MULTI_EXIT_DISC, 0]);
    withdraw(&body(&[], &attrs, NLRI), two());
}

#[test]
fn rfc7606_3_g_duplicate_attribute_keeps_the_first() {
    let attrs = [mandatory(), attr(TRANS, code::ORIGIN, &[2])].concat();
    let (u, discarded) = discard(&body(&[], &attrs, NLRI), two());
    assert_eq!(u.attributes.origin, Some(Origin::Igp));
    assert_eq!(discarded[0].type_code, code::ORIGIN);
}

#[test]
fn rfc7606_3_g_duplicate_mp_reach_resets() {
    let reach = attr(OPT, code::MP_REACH_NLRI, &[0, 1, 1, 4, 10, 0, 0, 1, 0]);
    let attrs = [reach.clone(), reach, origin(), as_path()].concat();
    assert_eq!(
        reset(&body(&[], &attrs, &[]), two()).code,
        ErrorCode::Update(UpdateError::MalformedAttributeList)
    );
}

#[test]
fn rfc7606_3_c_wrong_flags_are_treat_as_withdraw() {
    let attrs = [attr(OPT | TRANS, code::ORIGIN, &[0]), as_path(), next_hop()].concat();
    let (_, errors) = withdraw(&body(&[], &attrs, NLRI), two());
    assert_eq!(errors[0].subcode, UpdateError::AttributeFlagsError);
    let attrs = [
        mandatory(),
        attr(TRANS, code::MULTI_EXIT_DISC, &[0, 0, 0, 1]),
    ]
    .concat();
    withdraw(&body(&[], &attrs, NLRI), two());
}

#[test]
fn rfc7606_3_c_mp_reach_with_wrong_flags_still_withdraws_its_routes() {
    let reach = attr(
        OPT | TRANS,
        code::MP_REACH_NLRI,
        &[0, 1, 1, 4, 10, 0, 0, 1, 0, 8, 11],
    );
    let attrs = [reach, origin(), as_path()].concat();
    let (withdrawn, _) = withdraw(&body(&[], &attrs, &[]), two());
    assert_eq!(withdrawn, vec![IpNetwork::V4(v4("11.0.0.0/8"))]);
}

#[test]
fn rfc7606_3_d_missing_well_known_attributes() {
    for attrs in [
        [as_path(), next_hop()].concat(),
        [origin(), next_hop()].concat(),
        [origin(), as_path()].concat(),
    ] {
        let (_, errors) = withdraw(&body(&[], &attrs, NLRI), two());
        assert_eq!(errors[0].subcode, UpdateError::MissingWellKnownAttribute);
    }
    // No NLRI: nothing is mandatory (a pure withdrawal).
    accept(&body(NLRI, &[], &[]), two());
    // MP_REACH_NLRI only: NEXT_HOP is not needed (RFC 4760 §3), ORIGIN is.
    let reach = attr(
        OPT,
        code::MP_REACH_NLRI,
        &[0, 1, 1, 4, 10, 0, 0, 1, 0, 8, 11],
    );
    accept(
        &body(&[], &[reach.clone(), origin(), as_path()].concat(), &[]),
        two(),
    );
    let (withdrawn, _) = withdraw(&body(&[], &[reach, as_path()].concat(), &[]), two());
    assert_eq!(withdrawn, vec![IpNetwork::V4(v4("11.0.0.0/8"))]);
}

/// A valid UPDATE body with `extra` after its mandatory attributes.
fn with_attr(extra: Vec<u8>) -> Vec<u8> {
    body(&[], &[mandatory(), extra].concat(), NLRI)
}

/// A valid UPDATE body with its ORIGIN, AS_PATH or NEXT_HOP replaced by `replacement`.
fn with_replaced(type_code: u8, replacement: Vec<u8>) -> Vec<u8> {
    let mut attrs = Vec::new();
    for (tc, a) in [
        (code::ORIGIN, origin()),
        (code::AS_PATH, as_path()),
        (code::NEXT_HOP, next_hop()),
    ] {
        attrs.extend(if tc == type_code {
            replacement.clone()
        } else {
            a
        });
    }
    body(&[], &attrs, NLRI)
}

#[test]
fn rfc7606_7_1_origin() {
    let (_, e) = withdraw(&with_replaced(code::ORIGIN, attr(TRANS, 1, &[3])), two());
    assert_eq!(e[0].subcode, UpdateError::InvalidOriginAttribute);
    withdraw(&with_replaced(code::ORIGIN, attr(TRANS, 1, &[0, 0])), two());
    withdraw(&with_replaced(code::ORIGIN, attr(TRANS, 1, &[])), two());
}

#[test]
fn rfc7606_7_2_as_path() {
    for v in [&[2, 2, 0, 1][..], &[2, 0], &[9, 1, 0, 1], &[2, 1, 0, 1, 2]] {
        let (_, e) = withdraw(&with_replaced(code::AS_PATH, attr(TRANS, 2, v)), two());
        assert_eq!(e[0].subcode, UpdateError::MalformedAsPath);
    }
}

#[test]
fn rfc7606_7_3_next_hop() {
    withdraw(
        &with_replaced(code::NEXT_HOP, attr(TRANS, 3, &[10, 0, 0])),
        two(),
    );
}

#[test]
fn rfc7606_7_4_and_7_5_med_and_local_pref() {
    withdraw(
        &with_attr(attr(OPT, code::MULTI_EXIT_DISC, &[0, 0, 1])),
        two(),
    );
    withdraw(
        &with_attr(attr(TRANS, code::LOCAL_PREF, &[0, 0, 0, 0, 1])),
        two(),
    );
}

#[test]
fn rfc7606_7_6_atomic_aggregate_with_a_value_is_discarded() {
    let (u, d) = discard(&with_attr(attr(TRANS, code::ATOMIC_AGGREGATE, &[1])), two());
    assert!(!u.attributes.atomic_aggregate);
    assert_eq!(d[0].type_code, code::ATOMIC_AGGREGATE);
}

#[test]
fn rfc7606_7_7_aggregator_of_wrong_length_is_discarded() {
    let (u, _) = discard(&with_attr(attr(OPT | TRANS, 7, &[0, 1, 10, 0, 0])), two());
    assert!(u.attributes.aggregator.is_none());
    let attrs = [
        origin(),
        attr(TRANS, code::AS_PATH, &[2, 1, 0, 0, 0xfd, 0xe9]),
        next_hop(),
        attr(OPT | TRANS, 7, &[0, 1, 10, 0, 0, 1]),
    ]
    .concat();
    discard(&body(&[], &attrs, NLRI), four());
}

#[test]
fn rfc7606_7_5_7_9_7_10_ibgp_attributes_from_an_external_peer_are_discarded() {
    let attrs = [
        mandatory(),
        attr(TRANS, code::LOCAL_PREF, &[0, 0, 0, 200]),
        attr(OPT, code::ORIGINATOR_ID, &[0; 3]),
        attr(OPT, code::CLUSTER_LIST, &[10, 0, 0, 1]),
    ]
    .concat();
    let b = body(&[], &attrs, NLRI);
    // Internal: the short ORIGINATOR_ID is treat-as-withdraw (§7.9).
    withdraw(&b, two());
    // External: all three are discarded, malformed or not.
    let (u, d) = discard(&b, Codec::external(false));
    assert_eq!(d.len(), 3);
    assert!(u.attributes.local_pref.is_none() && u.attributes.cluster_list.is_empty());
    // And we never send them to an external peer.
    let mut u = u;
    u.attributes.local_pref = Some(100);
    assert!(
        Codec::external(false)
            .encode_to_bytes(&Message::Update(u))
            .is_err()
    );
}

#[test]
fn rfc7606_7_8_communities() {
    withdraw(&with_attr(attr(OPT | TRANS, code::COMMUNITIES, &[])), two());
    withdraw(
        &with_attr(attr(OPT | TRANS, code::COMMUNITIES, &[0; 5])),
        two(),
    );
}

#[test]
fn rfc7606_7_9_and_7_10_route_reflection_attributes() {
    withdraw(&with_attr(attr(OPT, code::ORIGINATOR_ID, &[0; 3])), two());
    withdraw(&with_attr(attr(OPT, code::CLUSTER_LIST, &[0; 6])), two());
    withdraw(&with_attr(attr(OPT, code::CLUSTER_LIST, &[])), two());
}

#[test]
fn rfc7606_7_11_mp_reach_next_hop_length_resets() {
    let mut reach = vec![0, 2, 1, 8];
    reach.extend_from_slice(&[0; 8]);
    reach.push(0);
    let attrs = [attr(OPT, 14, &reach), origin(), as_path()].concat();
    assert_eq!(
        reset(&body(&[], &attrs, &[]), two()).code,
        ErrorCode::Update(UpdateError::OptionalAttributeError)
    );
    // IPv4 unicast with a 16-octet next hop (RFC 8950 is not negotiated).
    let mut reach = vec![0, 1, 1, 16];
    reach.extend_from_slice(&[0; 17]);
    let attrs = [attr(OPT, 14, &reach), origin(), as_path()].concat();
    reset(&body(&[], &attrs, &[]), two());
}

#[test]
fn rfc7606_5_3_mp_nlri_errors_reset() {
    // MP_REACH_NLRI whose NLRI has a /33.
    let attrs = [
        attr(OPT, 14, &[0, 1, 1, 4, 10, 0, 0, 1, 0, 33, 1, 2, 3, 4, 5]),
        origin(),
        as_path(),
    ]
    .concat();
    reset(&body(&[], &attrs, &[]), two());
    // MP_UNREACH_NLRI whose prefix runs past the attribute.
    let attrs = attr(OPT, 15, &[0, 2, 1, 64, 0x20, 0x01]);
    reset(&body(&[], &attrs, &[]), two());
    // MP_UNREACH_NLRI shorter than AFI + SAFI.
    reset(&body(&[], &attr(OPT, 15, &[0, 2]), &[]), two());
}

#[test]
fn rfc7606_3_h_truncated_mp_attribute_resets() {
    let mut attrs = [origin(), as_path()].concat();
    attrs.extend_from_slice(&[OPT, 14, 20, 0, 1, 1]);
    assert_eq!(
        reset(&body(&[], &attrs, &[]), two()).code,
        ErrorCode::Update(UpdateError::AttributeLengthError)
    );
}

#[test]
fn rfc4760_mp_attribute_of_another_family_is_discarded() {
    // AFI 1 SAFI 128 (L3VPN), which this speaker never advertises.
    let attrs = [mandatory(), attr(OPT, 15, &[0, 1, 128])].concat();
    let (u, d) = discard(&body(&[], &attrs, NLRI), two());
    assert!(u.attributes.mp_unreach.is_none());
    assert_eq!(d[0].type_code, 15);
}

#[test]
fn rfc7606_7_14_extended_communities() {
    withdraw(&with_attr(attr(OPT | TRANS, 16, &[0; 12])), two());
    withdraw(&with_attr(attr(OPT | TRANS, 16, &[])), two());
}

#[test]
fn rfc8092_5_large_communities() {
    withdraw(&with_attr(attr(OPT | TRANS, 32, &[0; 8])), two());
    withdraw(&with_attr(attr(OPT | TRANS, 32, &[])), two());
}

#[test]
fn rfc4271_6_3_unrecognized_well_known_attribute_resets_with_it_as_data() {
    let bad = attr(TRANS, 77, &[1, 2]);
    let n = reset(&with_attr(bad.clone()), two());
    assert_eq!(
        n.code,
        ErrorCode::Update(UpdateError::UnrecognizedWellKnownAttribute)
    );
    assert_eq!(&n.data[..], &bad[..]);
}

#[test]
fn rfc7606_5_3_nlri_and_withdrawn_errors_reset() {
    let n = reset(&body(&[], &mandatory(), &[33, 1, 2, 3, 4, 5]), two());
    assert_eq!(n.code, ErrorCode::Update(UpdateError::InvalidNetworkField));
    reset(&body(&[], &mandatory(), &[24, 10, 1]), two());
    reset(&body(&[24, 10], &[], &[]), two());
}

#[test]
fn rfc7606_3_strongest_action_wins() {
    let attrs = [
        mandatory(),
        attr(TRANS, code::ATOMIC_AGGREGATE, &[1]),
        attr(OPT | TRANS, code::COMMUNITIES, &[0; 3]),
    ]
    .concat();
    let (_, errors) = withdraw(&body(&[], &attrs, NLRI), two());
    assert_eq!(errors.len(), 2);
    // And a session reset beats both.
    let attrs = [attrs, attr(TRANS, 77, &[])].concat();
    reset(&body(&[], &attrs, NLRI), two());
}

// ---- Encoding limits and packing ------------------------------------------------------------

fn announce_attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence([Asn(65001)])),
        next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
        ..Default::default()
    }
}

#[test]
fn encode_refuses_what_decode_would_not_accept() {
    let mut u = Update {
        attributes: announce_attrs(),
        nlri: vec![v4("10.0.0.0/8")],
        ..Default::default()
    };
    u.attributes.as_path = Some(AsPath::sequence([Asn(4_200_000_000)]));
    let m = Message::Update(u.clone());
    assert_eq!(
        two().encode_to_bytes(&m),
        Err(EncodeError::AsnTooLarge(4_200_000_000))
    );
    assert!(four().encode_to_bytes(&m).is_ok());
    let fixed = u.attributes.for_two_octet_peer();
    let u2 = Update {
        attributes: fixed,
        ..u.clone()
    };
    let b = encode_update(&u2, two());
    assert_eq!(accept(&b[19..], two()).attributes.merge_as4(), u.attributes);
    let mut missing = u.clone();
    missing.attributes.origin = None;
    assert!(four().encode_to_bytes(&Message::Update(missing)).is_err());
    let mut host = u.clone();
    host.nlri = vec![v4("10.0.0.1/8")];
    assert!(matches!(
        four().encode_to_bytes(&Message::Update(host)),
        Err(EncodeError::HostBits(_))
    ));
    let mut as4 = u;
    as4.attributes.as4_path = Some(AsPath::sequence([Asn(1)]));
    assert!(four().encode_to_bytes(&Message::Update(as4)).is_err());
}

#[test]
fn rfc4271_4_1_encode_refuses_more_than_4096_octets() {
    let u = Update {
        attributes: announce_attrs(),
        nlri: (0..1100u32)
            .map(|i| Ipv4Network::new(Ipv4Addr::from((i << 8) | 0x0a00_0000), 24).unwrap())
            .collect(),
        ..Default::default()
    };
    let mut out = bytes::BytesMut::from(&b"x"[..]);
    assert!(matches!(
        two().encode(&Message::Update(u), &mut out),
        Err(EncodeError::TooLong { .. })
    ));
    assert_eq!(&out[..], b"x");
}

#[test]
fn packing_splits_routes_over_updates_that_fit() {
    let prefixes: Vec<Ipv4Network> = (0..3000u32)
        .map(|i| Ipv4Network::new(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap())
        .collect();
    let updates = two()
        .pack_announcements(&announce_attrs(), &prefixes)
        .unwrap();
    assert_eq!(updates.len(), 3);
    let mut seen = Vec::new();
    for u in &updates {
        let b = encode_update(u, two());
        assert!(b.len() <= 4096);
        seen.extend(accept(&b[19..], two()).nlri);
    }
    assert_eq!(seen, prefixes);
    // The first UPDATE is filled: one more /24 would not fit.
    assert!(encode_update(&updates[0], two()).len() + 4 > 4096);

    let v6: Vec<Ipv6Network> = (0..2000u128)
        .map(|i| Ipv6Network::new(Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 64)), 64).unwrap())
        .collect();
    let reach = MpReach::Ipv6Unicast {
        next_hop: "2001:db8::1".parse().unwrap(),
        link_local: None,
        nlri: v6.clone(),
    };
    let mut attrs = announce_attrs();
    attrs.next_hop = None;
    let updates = two().pack_mp_announcements(&attrs, &reach).unwrap();
    let got: Vec<IpNetwork> = updates
        .iter()
        .flat_map(|u| u.announced_prefixes())
        .collect();
    assert_eq!(got.len(), v6.len());
    assert!(updates.len() > 1);

    let mixed: Vec<IpNetwork> = prefixes
        .iter()
        .map(|p| IpNetwork::V4(*p))
        .chain(v6.iter().map(|p| IpNetwork::V6(*p)))
        .collect();
    let updates = two().pack_withdrawals(&mixed).unwrap();
    let got: Vec<IpNetwork> = updates
        .iter()
        .flat_map(|u| u.withdrawn_prefixes())
        .collect();
    assert_eq!(got, mixed);
    for u in &updates {
        assert!(encode_update(u, two()).len() <= 4096);
    }
}

// ---- Properties -----------------------------------------------------------------------------

fn arb_v4() -> impl Strategy<Value = Ipv4Network> {
    (any::<u32>(), 0..=32u8).prop_map(|(a, len)| {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        Ipv4Network::new(Ipv4Addr::from(a & mask), len).unwrap()
    })
}

fn arb_v6() -> impl Strategy<Value = Ipv6Network> {
    (any::<u128>(), 0..=128u8).prop_map(|(a, len)| {
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        Ipv6Network::new(Ipv6Addr::from(a & mask), len).unwrap()
    })
}

fn arb_asn(four: bool) -> BoxedStrategy<Asn> {
    if four {
        any::<u32>().prop_map(Asn).boxed()
    } else {
        any::<u16>().prop_map(|a| Asn(u32::from(a))).boxed()
    }
}

fn arb_path(four: bool, confed: bool) -> impl Strategy<Value = AsPath> {
    let kinds = if confed {
        prop_oneof![
            Just(SegmentType::Set),
            Just(SegmentType::Sequence),
            Just(SegmentType::ConfedSequence),
            Just(SegmentType::ConfedSet)
        ]
        .boxed()
    } else {
        prop_oneof![Just(SegmentType::Set), Just(SegmentType::Sequence)].boxed()
    };
    prop::collection::vec(
        (kinds, prop::collection::vec(arb_asn(four), 1..12))
            .prop_map(|(kind, asns)| AsSegment { kind, asns }),
        0..5,
    )
    .prop_map(|segments| AsPath { segments })
}

fn arb_aggregator(four: bool) -> impl Strategy<Value = Aggregator> {
    (arb_asn(four), any::<u32>()).prop_map(|(asn, a)| Aggregator {
        asn,
        address: Ipv4Addr::from(a),
    })
}

fn arb_reach() -> impl Strategy<Value = MpReach> {
    prop_oneof![
        (any::<u32>(), prop::collection::vec(arb_v4(), 0..8)).prop_map(|(nh, nlri)| {
            MpReach::Ipv4Unicast {
                next_hop: Ipv4Addr::from(nh),
                nlri,
            }
        }),
        (
            any::<u128>(),
            proptest::option::of(any::<u128>()),
            prop::collection::vec(arb_v6(), 0..8)
        )
            .prop_map(|(nh, ll, nlri)| MpReach::Ipv6Unicast {
                next_hop: Ipv6Addr::from(nh),
                link_local: ll.map(Ipv6Addr::from),
                nlri,
            }),
    ]
}

fn arb_unreach() -> impl Strategy<Value = MpUnreach> {
    prop_oneof![
        prop::collection::vec(arb_v4(), 0..8).prop_map(MpUnreach::Ipv4Unicast),
        prop::collection::vec(arb_v6(), 0..8).prop_map(MpUnreach::Ipv6Unicast),
    ]
}

fn arb_unknown() -> impl Strategy<Value = Vec<UnknownAttribute>> {
    let known = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32];
    prop::collection::btree_map(
        any::<u8>().prop_filter("unknown type code", move |c| !known.contains(c)),
        prop::collection::vec(any::<u8>(), 0..300),
        0..3,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(type_code, v)| UnknownAttribute {
                type_code,
                value: Bytes::from(v),
            })
            .collect()
    })
}

prop_compose! {
    fn arb_attrs(four: bool)(
        origin in proptest::option::of(prop_oneof![
            Just(Origin::Igp), Just(Origin::Egp), Just(Origin::Incomplete)
        ]),
        as_path in proptest::option::of(arb_path(four, true)),
        next_hop in proptest::option::of(any::<u32>().prop_map(Ipv4Addr::from)),
        med in proptest::option::of(any::<u32>()),
        local_pref in proptest::option::of(any::<u32>()),
        atomic_aggregate in any::<bool>(),
        aggregator in proptest::option::of(arb_aggregator(four)),
        communities in prop::collection::vec(any::<u32>().prop_map(Community), 0..6),
        rr in (
            proptest::option::of(any::<u32>().prop_map(Ipv4Addr::from)),
            prop::collection::vec(any::<u32>().prop_map(Ipv4Addr::from), 0..4),
        ),
        mp in (proptest::option::of(arb_reach()), proptest::option::of(arb_unreach())),
        ext in prop::collection::vec(any::<[u8; 8]>().prop_map(ExtendedCommunity), 0..4),
        as4 in (
            proptest::option::of(arb_path(true, false)),
            proptest::option::of(arb_aggregator(true)),
        ),
        large in prop::collection::vec(
            any::<(u32, u32, u32)>().prop_map(|(a, b, c)| LargeCommunity {
                global_admin: a, local_data_1: b, local_data_2: c,
            }),
            0..3,
        ),
        unknown in arb_unknown(),
    ) -> PathAttributes {
        let (as4_path, as4_aggregator) = if four { (None, None) } else { as4 };
        PathAttributes {
            origin, as_path, next_hop, med, local_pref, atomic_aggregate, aggregator,
            communities, originator_id: rr.0, cluster_list: rr.1, mp_reach: mp.0,
            mp_unreach: mp.1, extended_communities: ext, as4_path, as4_aggregator,
            large_communities: large, unknown,
        }
    }
}

fn arb_update(four: bool) -> impl Strategy<Value = Update> {
    (
        prop::collection::vec(arb_v4(), 0..10),
        arb_attrs(four),
        prop::collection::vec(arb_v4(), 0..10),
    )
        .prop_map(|(withdrawn, mut attributes, nlri)| {
            // Routes need their mandatory attributes (RFC 4271 §5), or decode withdraws them.
            if !nlri.is_empty() || attributes.mp_reach.is_some() {
                attributes.origin.get_or_insert(Origin::Igp);
                attributes.as_path.get_or_insert_with(AsPath::default);
            }
            if !nlri.is_empty() {
                attributes
                    .next_hop
                    .get_or_insert(Ipv4Addr::new(192, 0, 2, 1));
            }
            Update {
                withdrawn,
                attributes,
                nlri,
            }
        })
}

fn arb_family() -> impl Strategy<Value = Family> {
    (any::<u16>(), any::<u8>()).prop_map(|(afi, safi)| Family { afi, safi })
}

fn arb_capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        arb_family().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        (1..=u32::MAX).prop_map(|a| Capability::FourOctetAs(Asn(a))),
        (
            any::<bool>(),
            any::<bool>(),
            0..=4095u16,
            prop::collection::vec(
                (arb_family(), any::<bool>()).prop_map(|(family, forwarding_state)| {
                    GracefulRestartFamily {
                        family,
                        forwarding_state,
                    }
                }),
                0..4
            )
        )
            .prop_map(|(r, n, t, families)| {
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: r,
                    notification: n,
                    restart_time: t,
                    families,
                })
            }),
        (
            any::<u8>().prop_filter("unknown code", |c| ![1, 2, 64, 65].contains(c)),
            prop::collection::vec(any::<u8>(), 0..16)
        )
            .prop_map(|(code, v)| Capability::Unknown {
                code,
                value: Bytes::from(v)
            }),
    ]
}

fn arb_message(four: bool) -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::Keepalive),
        (
            1..=u16::MAX,
            prop_oneof![Just(0u16), 3..=u16::MAX],
            1..=u32::MAX,
            prop::collection::vec(arb_capability(), 0..8)
        )
            .prop_map(|(my_as, hold_time, id, capabilities)| {
                Message::Open(Open {
                    my_as,
                    hold_time,
                    bgp_id: Ipv4Addr::from(id),
                    capabilities,
                })
            }),
        arb_update(four).prop_map(Message::Update),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(c, s, d)| Message::Notification(Notification::new(
                ErrorCode::from_octets(c, s),
                d
            ))),
        (arb_family(), any::<u8>())
            .prop_map(|(family, subtype)| Message::RouteRefresh(RouteRefresh { family, subtype })),
    ]
}

fn check_round_trip(codec: Codec, msg: Message) -> Result<(), TestCaseError> {
    let bytes = match codec.encode_to_bytes(&msg) {
        Err(EncodeError::TooLong { .. }) | Err(EncodeError::FieldTooLong { .. }) => {
            return Err(TestCaseError::reject("too long for one message"));
        }
        other => other.map_err(|e| TestCaseError::fail(format!("{e}")))?,
    };
    prop_assert_eq!(frame_length(&bytes).unwrap(), Some(bytes.len()));
    let back = codec.decode(&bytes).map(Inbound::into_message);
    prop_assert_eq!(back, Ok(Some(msg)));
    Ok(())
}

/// What may be sent to an external peer: no iBGP-only attributes (RFC 4271 §5.1.5).
fn for_external(msg: Message) -> Message {
    match msg {
        Message::Update(mut u) => {
            u.attributes.local_pref = None;
            u.attributes.originator_id = None;
            u.attributes.cluster_list.clear();
            Message::Update(u)
        }
        other => other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip_two_octet_as(msg in arb_message(false), external in any::<bool>()) {
        if external {
            check_round_trip(Codec::external(false), for_external(msg))?;
        } else {
            check_round_trip(two(), msg)?;
        }
    }

    #[test]
    fn round_trip_four_octet_as(msg in arb_message(true), external in any::<bool>()) {
        if external {
            check_round_trip(Codec::external(true), for_external(msg))?;
        } else {
            check_round_trip(four(), msg)?;
        }
    }

    #[test]
    fn split_for_two_octet_peer_then_merge_is_identity(attrs in arb_attrs(true)) {
        // RFC 6793 §4.2.2 then §4.2.3. A path whose only 4-octet ASes sit in confederation
        // segments cannot be carried to an OLD speaker (AS4_PATH has no confed segments).
        let confed_only = attrs.as_path.as_ref().is_some_and(|p| {
            p.segments.iter().any(|s| {
                matches!(s.kind, SegmentType::ConfedSequence | SegmentType::ConfedSet)
                    && s.asns.iter().any(|a| a.0 > 0xffff)
            })
        });
        prop_assume!(!confed_only);
        prop_assume!(attrs.aggregator.is_none_or(|a| a.asn.0 != u32::from(AS_TRANS)));
        prop_assume!(attrs.as_path.as_ref().is_none_or(|p| p.segments.iter().all(|s| {
            s.asns.iter().all(|a| a.0 != u32::from(AS_TRANS))
        })));
        let old = attrs.for_two_octet_peer();
        prop_assert_eq!(old.merge_as4(), attrs);
    }

    #[test]
    fn any_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        for codec in [two(), four(), Codec::external(false), Codec::external(true)] {
            let _ = codec.decode(&data);
            let _ = decode_update(&data, &codec);
        }
        let _ = frame_length(&data);
        let _ = decode_open(&data);
        let _ = decode_notification(&data);
        let _ = decode_route_refresh(&data);
        for (_, target) in fuzzing::TARGETS {
            target(&data);
        }
    }

    #[test]
    fn any_update_body_in_a_valid_header_never_panics(
        data in prop::collection::vec(any::<u8>(), 4..600),
        codec in 0..4u8,
    ) {
        // Random bodies rarely get past the header check: give them a valid one.
        let mut first = vec![codec];
        first.extend(frame(2, &data));
        fuzzing::message(&first);
        let mut first = vec![codec];
        first.extend(&data);
        fuzzing::update(&first);
    }

    #[test]
    fn mutated_valid_updates_never_panic(
        msg in arb_update(false),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        if let Ok(bytes) = two().encode_to_bytes(&Message::Update(msg)) {
            let mut b = bytes.to_vec();
            for (i, v) in flips {
                let at = 19 + i.index(b.len() - 19);
                if at < b.len() {
                    b[at] = v;
                }
            }
            let mut data = vec![0u8];
            data.extend(b);
            fuzzing::message(&data);
        }
    }
}
