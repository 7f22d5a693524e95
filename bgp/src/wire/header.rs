//! The 19-octet message header (RFC 4271 §4.1): a 16-octet all-ones marker, the total length
//! and the message type. Checking it is what RFC 4271 §6.1 calls "Message Header error
//! handling", and it is also how a byte stream is cut into messages.

use bytes::{BufMut, BytesMut};
use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u16};

use super::error::{DecodeError, EncodeError};
use super::notification::{HeaderError, Notification};

/// Length of the header, and so of the shortest message (KEEPALIVE).
pub const HEADER_LEN: usize = 19;
/// RFC 4271 §4.1: no message is longer than 4096 octets (RFC 8654 extended messages are not
/// negotiated by this speaker).
pub const MAX_MESSAGE_LEN: usize = 4096;

/// The message types this speaker knows (RFC 4271 §4.1, RFC 2918 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
}

impl MessageType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => MessageType::Open,
            2 => MessageType::Update,
            3 => MessageType::Notification,
            4 => MessageType::Keepalive,
            5 => MessageType::RouteRefresh,
            _ => return None,
        })
    }

    /// The smallest total length RFC 4271 §4.2-§4.5 and RFC 2918 §3 allow for the type.
    fn min_len(self) -> usize {
        match self {
            MessageType::Open => 29,
            MessageType::Update => 23,
            MessageType::Notification => 21,
            MessageType::Keepalive => 19,
            MessageType::RouteRefresh => 23,
        }
    }
}

/// A checked header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Total message length including the header, 19..=4096.
    pub length: u16,
    pub kind: MessageType,
}

/// RFC 4271 §6.1: the data of a Bad Message Length NOTIFICATION is the erroneous length field.
pub(crate) fn length_data(len: usize) -> Vec<u8> {
    u16::try_from(len)
        .unwrap_or(u16::MAX)
        .to_be_bytes()
        .to_vec()
}

/// Checks the first 19 octets of `buf` (RFC 4271 §6.1). `buf` must hold at least 19 octets.
pub fn decode_header(buf: &[u8]) -> Result<Header, DecodeError> {
    let parsed: nom::IResult<&[u8], (&[u8], u16, u8)> = (take(16usize), be_u16, be_u8).parse(buf);
    let Ok((_, (marker, length, kind))) = parsed else {
        return Err(DecodeError::new(
            Notification::header(HeaderError::BadMessageLength, length_data(buf.len())),
            format!("message of {} octets is shorter than its header", buf.len()),
        ));
    };
    // RFC 4271 §6.1: a marker that is not all ones means we lost synchronisation.
    if marker.iter().any(|&b| b != 0xff) {
        return Err(DecodeError::new(
            Notification::header(HeaderError::ConnectionNotSynchronized, Vec::new()),
            "header marker is not all ones",
        ));
    }
    // RFC 4271 §6.1: an unknown type is Bad Message Type, with the type as data.
    let Some(kind) = MessageType::from_u8(kind) else {
        return Err(DecodeError::new(
            Notification::header(HeaderError::BadMessageType, vec![kind]),
            format!("unknown message type {kind}"),
        ));
    };
    // RFC 4271 §6.1: a length out of 19..=4096, below the type's minimum, or a KEEPALIVE
    // longer than 19 is Bad Message Length, with the length field as data.
    let len = usize::from(length);
    let bad = len < kind.min_len()
        || len > MAX_MESSAGE_LEN
        || (kind == MessageType::Keepalive && len != HEADER_LEN);
    if bad {
        return Err(DecodeError::new(
            Notification::header(HeaderError::BadMessageLength, length.to_be_bytes().to_vec()),
            format!("{kind:?} message with length {length}"),
        ));
    }
    Ok(Header { length, kind })
}

/// How many octets the message at the start of `buf` takes, or `None` when fewer than 19
/// octets have arrived. The socket shell reads until it has that many, then calls
/// [`Codec::decode`](super::Codec::decode) on exactly those octets.
pub fn frame_length(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    decode_header(buf).map(|h| Some(usize::from(h.length)))
}

/// Writes a header with a placeholder length; [`finish`] fills it in.
pub(crate) fn start(out: &mut BytesMut, kind: MessageType) -> usize {
    let at = out.len();
    out.put_slice(&[0xff; 16]);
    out.put_u16(0);
    out.put_u8(kind as u8);
    at
}

/// Fills in the length of the message started at `at`, refusing (and removing) a message
/// longer than 4096 octets (RFC 4271 §4.1).
pub(crate) fn finish(out: &mut BytesMut, at: usize) -> Result<(), EncodeError> {
    let length = out.len() - at;
    if length > MAX_MESSAGE_LEN {
        out.truncate(at);
        return Err(EncodeError::TooLong { length });
    }
    let field = u16::try_from(length).map_err(|_| EncodeError::TooLong { length })?;
    out[at + 16..at + 18].copy_from_slice(&field.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::notification::ErrorCode;

    fn header(len: u16, kind: u8) -> Vec<u8> {
        let mut v = vec![0xff; 16];
        v.extend_from_slice(&len.to_be_bytes());
        v.push(kind);
        v
    }

    #[test]
    fn keepalive_header() {
        let h = decode_header(&header(19, 4)).unwrap();
        assert_eq!(h.kind, MessageType::Keepalive);
        assert_eq!(frame_length(&header(19, 4)).unwrap(), Some(19));
        assert_eq!(frame_length(&[0xff; 18]).unwrap(), None);
    }

    #[test]
    fn rfc4271_6_1_marker_not_all_ones() {
        let mut h = header(19, 4);
        h[3] = 0;
        let e = decode_header(&h).unwrap_err();
        assert_eq!(
            e.notification.code,
            ErrorCode::MessageHeader(HeaderError::ConnectionNotSynchronized)
        );
    }

    #[test]
    fn rfc4271_6_1_bad_length_carries_the_length_field() {
        for (len, kind) in [(18, 4), (4097, 2), (20, 4), (28, 1), (22, 2), (20, 3)] {
            let e = decode_header(&header(len, kind)).unwrap_err();
            assert_eq!(
                e.notification.code,
                ErrorCode::MessageHeader(HeaderError::BadMessageLength)
            );
            assert_eq!(&e.notification.data[..], &len.to_be_bytes());
        }
    }

    #[test]
    fn rfc4271_6_1_bad_type_carries_the_type() {
        let e = decode_header(&header(19, 9)).unwrap_err();
        assert_eq!(
            e.notification.code,
            ErrorCode::MessageHeader(HeaderError::BadMessageType)
        );
        assert_eq!(&e.notification.data[..], &[9]);
    }
}
