//! The BGP-4 wire codec: bytes to typed messages and back, with no sockets.
//!
//! [`frame_length`] cuts a byte stream into messages (RFC 4271 §4.1); [`Codec::decode`] turns
//! one message into an [`Inbound`] and [`Codec::encode`] turns an outbound [`Message`] into
//! octets. The [`Codec`] holds what about the session changes the encoding (4-octet AS numbers
//! negotiated, RFC 6793; an external peer, RFC 7606 §7.5); the same value is used in both
//! directions so that what we encode is exactly what we decode.
//!
//! A received message that breaks the protocol yields a [`DecodeError`] carrying the
//! NOTIFICATION to send (RFC 4271 §6). UPDATEs follow RFC 7606 instead: most errors leave the
//! session up, and the [`UpdateOutcome`] says whether to accept the message, accept it minus
//! some attributes, or withdraw its routes.
//!
//! Nothing here may panic on any input: decoders are property-tested and fuzzed (see
//! [`fuzzing`]).

mod attribute;
mod capability;
mod error;
pub mod fuzzing;
mod header;
mod nlri;
mod notification;
mod open;
mod route_refresh;
mod update;

#[cfg(test)]
mod tests;

use bytes::{Bytes, BytesMut};

pub use attribute::{
    Action, Aggregator, AsPath, AsSegment, AttributeError, Community, ExtendedCommunity,
    LargeCommunity, MpReach, MpUnreach, Origin, PathAttributes, SegmentType, UnknownAttribute,
    code as attribute_code, flags as attribute_flags,
};
pub use capability::{Capability, GracefulRestart, GracefulRestartFamily};
pub use error::{DecodeError, EncodeError};
pub use header::{HEADER_LEN, Header, MAX_MESSAGE_LEN, MessageType, decode_header, frame_length};
pub use nlri::Family;
pub use notification::{
    CeaseError, ErrorCode, FsmError, HeaderError, Notification, OpenError, RouteRefreshError,
    UpdateError, decode_notification,
};
pub use open::{AS_TRANS, BGP_VERSION, Open, decode_open};
pub use route_refresh::{RouteRefresh, decode_route_refresh};
pub use update::{Update, UpdateOutcome, decode_update};

/// A message to send.
#[expect(
    clippy::large_enum_variant,
    reason = "UPDATE is nearly every message; boxing it would allocate per message for nothing"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// A message received and checked. Its UPDATE has been judged under RFC 7606.
#[expect(
    clippy::large_enum_variant,
    reason = "UPDATE is nearly every message; boxing it would allocate per message for nothing"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Open(Open),
    Update(UpdateOutcome),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Inbound {
    /// The message, when it was accepted as sent (not for an UPDATE judged malformed).
    pub fn into_message(self) -> Option<Message> {
        Some(match self {
            Inbound::Open(o) => Message::Open(o),
            Inbound::Update(UpdateOutcome::Accept(u)) => Message::Update(u),
            Inbound::Update(_) => return None,
            Inbound::Notification(n) => Message::Notification(n),
            Inbound::Keepalive => Message::Keepalive,
            Inbound::RouteRefresh(r) => Message::RouteRefresh(r),
        })
    }
}

/// What the session is and negotiated that changes the encoding. Before OPENs are exchanged
/// (and with a peer that lacks the capability) `four_octet_as` is false: 2-octet AS numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Codec {
    /// Both sides advertised the 4-octet AS capability (RFC 6793 §3), so AS_PATH and
    /// AGGREGATOR carry 4-octet AS numbers.
    pub four_octet_as: bool,
    /// The peer is external (eBGP, and not a member of our confederation): LOCAL_PREF,
    /// ORIGINATOR_ID and CLUSTER_LIST are discarded on receipt (RFC 7606 §7.5, §7.9, §7.10;
    /// RFC 4271 §5.1.5) and refused on encode.
    pub external: bool,
}

impl Codec {
    /// A codec for an internal peer.
    pub fn new(four_octet_as: bool) -> Self {
        Codec {
            four_octet_as,
            external: false,
        }
    }

    /// A codec for an external peer.
    pub fn external(four_octet_as: bool) -> Self {
        Codec {
            four_octet_as,
            external: true,
        }
    }

    /// Decodes exactly one message, header included (use [`frame_length`] to find its end).
    pub fn decode(&self, frame: &[u8]) -> Result<Inbound, DecodeError> {
        let header = decode_header(frame)?;
        // RFC 4271 §6.1: the length field must match what arrived.
        if usize::from(header.length) != frame.len() {
            return Err(DecodeError::new(
                Notification::header(
                    HeaderError::BadMessageLength,
                    header.length.to_be_bytes().to_vec(),
                ),
                format!(
                    "length field {} but the message has {} octets",
                    header.length,
                    frame.len()
                ),
            ));
        }
        let body = &frame[HEADER_LEN..];
        Ok(match header.kind {
            MessageType::Open => Inbound::Open(decode_open(body)?),
            MessageType::Update => Inbound::Update(decode_update(body, self)?),
            MessageType::Notification => Inbound::Notification(decode_notification(body)?),
            MessageType::Keepalive => Inbound::Keepalive,
            MessageType::RouteRefresh => Inbound::RouteRefresh(decode_route_refresh(body)?),
        })
    }

    /// Appends `msg` to `out`. On error nothing is appended.
    pub fn encode(&self, msg: &Message, out: &mut BytesMut) -> Result<(), EncodeError> {
        let kind = match msg {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        };
        let at = header::start(out, kind);
        let body = match msg {
            Message::Open(o) => open::encode_open(o, out),
            Message::Update(u) => update::encode_update(u, self, out),
            Message::Notification(n) => {
                notification::encode_notification(n, out);
                Ok(())
            }
            Message::Keepalive => Ok(()),
            Message::RouteRefresh(r) => {
                route_refresh::encode_route_refresh(r, out);
                Ok(())
            }
        };
        if let Err(e) = body {
            out.truncate(at);
            return Err(e);
        }
        header::finish(out, at)
    }

    /// Encodes `msg` on its own.
    pub fn encode_to_bytes(&self, msg: &Message) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::new();
        self.encode(msg, &mut out)?;
        Ok(out.freeze())
    }
}
