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

/// A whole message (header included), with both codec settings. The first octet picks the
/// setting so that the fuzzer can steer it.
pub fn message(data: &[u8]) {
    let Some((first, data)) = data.split_first() else {
        return;
    };
    let codec = Codec::new(first & 1 == 1);
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
    let codec = Codec::new(first & 1 == 1);
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
