//! NOTIFICATION (RFC 4271 §4.5): an error code, a subcode and data, sent just before the
//! connection is closed.
//!
//! Codes and subcodes are enums named as in RFC 4271 §4.5/§6 and the IANA "BGP Error
//! (Notification) Codes" registry (RFC 4486 and RFC 8538 for Cease, RFC 6608 for FSM errors,
//! RFC 7313 for ROUTE-REFRESH). A value with no name is kept as `Unassigned(n)` so that any
//! NOTIFICATION received re-encodes to the same octets.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::DecodeError;

macro_rules! subcodes {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $val:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $var,)*
            /// A subcode with no name here. Holds only values not named above.
            Unassigned(u8),
        }

        impl From<u8> for $name {
            fn from(v: u8) -> Self {
                match v {
                    $($val => Self::$var,)*
                    other => Self::Unassigned(other),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                match v {
                    $($name::$var => $val,)*
                    $name::Unassigned(other) => other,
                }
            }
        }
    };
}

subcodes! {
    /// Message Header Error subcodes (RFC 4271 §4.5, §6.1).
    HeaderError {
        ConnectionNotSynchronized = 1,
        BadMessageLength = 2,
        BadMessageType = 3,
    }
}

subcodes! {
    /// OPEN Message Error subcodes (RFC 4271 §4.5, §6.2; RFC 5492 §5; RFC 9234).
    OpenError {
        Unspecific = 0,
        UnsupportedVersionNumber = 1,
        BadPeerAs = 2,
        BadBgpIdentifier = 3,
        UnsupportedOptionalParameter = 4,
        UnacceptableHoldTime = 6,
        UnsupportedCapability = 7,
        RoleMismatch = 11,
    }
}

subcodes! {
    /// UPDATE Message Error subcodes (RFC 4271 §4.5, §6.3).
    UpdateError {
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
}

subcodes! {
    /// Finite State Machine Error subcodes (RFC 6608 §3).
    FsmError {
        Unspecified = 0,
        UnexpectedMessageInOpenSent = 1,
        UnexpectedMessageInOpenConfirm = 2,
        UnexpectedMessageInEstablished = 3,
    }
}

subcodes! {
    /// Cease subcodes (RFC 4486 §4, RFC 8538 §5, RFC 9384).
    CeaseError {
        MaximumPrefixesReached = 1,
        AdministrativeShutdown = 2,
        PeerDeconfigured = 3,
        AdministrativeReset = 4,
        ConnectionRejected = 5,
        OtherConfigurationChange = 6,
        ConnectionCollisionResolution = 7,
        OutOfResources = 8,
        HardReset = 9,
        BfdDown = 10,
    }
}

subcodes! {
    /// ROUTE-REFRESH Message Error subcodes (RFC 7313 §5).
    RouteRefreshError {
        InvalidMessageLength = 1,
    }
}

/// The error code and subcode of a NOTIFICATION.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Code 1.
    MessageHeader(HeaderError),
    /// Code 2.
    Open(OpenError),
    /// Code 3.
    Update(UpdateError),
    /// Code 4, subcode 0.
    HoldTimerExpired,
    /// Code 5.
    Fsm(FsmError),
    /// Code 6.
    Cease(CeaseError),
    /// Code 7.
    RouteRefresh(RouteRefreshError),
    /// Any other code, or Hold Timer Expired with a nonzero subcode.
    Other { code: u8, subcode: u8 },
}

impl ErrorCode {
    pub fn from_octets(code: u8, subcode: u8) -> Self {
        match code {
            1 => ErrorCode::MessageHeader(subcode.into()),
            2 => ErrorCode::Open(subcode.into()),
            3 => ErrorCode::Update(subcode.into()),
            4 if subcode == 0 => ErrorCode::HoldTimerExpired,
            5 => ErrorCode::Fsm(subcode.into()),
            6 => ErrorCode::Cease(subcode.into()),
            7 => ErrorCode::RouteRefresh(subcode.into()),
            _ => ErrorCode::Other { code, subcode },
        }
    }

    pub fn octets(self) -> (u8, u8) {
        match self {
            ErrorCode::MessageHeader(s) => (1, s.into()),
            ErrorCode::Open(s) => (2, s.into()),
            ErrorCode::Update(s) => (3, s.into()),
            ErrorCode::HoldTimerExpired => (4, 0),
            ErrorCode::Fsm(s) => (5, s.into()),
            ErrorCode::Cease(s) => (6, s.into()),
            ErrorCode::RouteRefresh(s) => (7, s.into()),
            ErrorCode::Other { code, subcode } => (code, subcode),
        }
    }
}

/// A NOTIFICATION message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    pub code: ErrorCode,
    /// Diagnostic data whose meaning depends on the code (RFC 4271 §6).
    pub data: Bytes,
}

impl Notification {
    pub fn new(code: ErrorCode, data: impl Into<Bytes>) -> Self {
        Notification {
            code,
            data: data.into(),
        }
    }

    pub(crate) fn header(sub: HeaderError, data: impl Into<Bytes>) -> Self {
        Notification::new(ErrorCode::MessageHeader(sub), data)
    }

    pub(crate) fn open(sub: OpenError, data: impl Into<Bytes>) -> Self {
        Notification::new(ErrorCode::Open(sub), data)
    }

    pub(crate) fn update(sub: UpdateError, data: impl Into<Bytes>) -> Self {
        Notification::new(ErrorCode::Update(sub), data)
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, subcode) = self.code.octets();
        match self.code {
            ErrorCode::MessageHeader(s) => write!(f, "Message Header Error/{s:?}")?,
            ErrorCode::Open(s) => write!(f, "OPEN Message Error/{s:?}")?,
            ErrorCode::Update(s) => write!(f, "UPDATE Message Error/{s:?}")?,
            ErrorCode::HoldTimerExpired => f.write_str("Hold Timer Expired")?,
            ErrorCode::Fsm(s) => write!(f, "Finite State Machine Error/{s:?}")?,
            ErrorCode::Cease(s) => write!(f, "Cease/{s:?}")?,
            ErrorCode::RouteRefresh(s) => write!(f, "ROUTE-REFRESH Message Error/{s:?}")?,
            ErrorCode::Other { .. } => f.write_str("unknown error")?,
        }
        write!(f, " ({code}/{subcode}")?;
        if !self.data.is_empty() {
            write!(f, ", {} octets of data", self.data.len())?;
        }
        f.write_str(")")
    }
}

/// Decodes a NOTIFICATION body (after the 19-octet header). The header check already
/// guarantees 2 octets (RFC 4271 §4.5: minimum length 21).
pub fn decode_notification(body: &[u8]) -> Result<Notification, DecodeError> {
    match body {
        [code, subcode, data @ ..] => Ok(Notification::new(
            ErrorCode::from_octets(*code, *subcode),
            Bytes::copy_from_slice(data),
        )),
        _ => Err(DecodeError::new(
            Notification::header(
                HeaderError::BadMessageLength,
                super::header::length_data(body.len() + super::header::HEADER_LEN),
            ),
            "NOTIFICATION shorter than 21 octets",
        )),
    }
}

pub(crate) fn encode_notification(n: &Notification, out: &mut BytesMut) {
    let (code, subcode) = n.code.octets();
    out.put_u8(code);
    out.put_u8(subcode);
    out.put_slice(&n.data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_and_subcode_round_trips() {
        for code in 0..=255u8 {
            for subcode in 0..=255u8 {
                assert_eq!(
                    ErrorCode::from_octets(code, subcode).octets(),
                    (code, subcode)
                );
            }
        }
    }

    #[test]
    fn names_from_rfc_4271_section_4_5() {
        assert_eq!(
            ErrorCode::from_octets(3, 11),
            ErrorCode::Update(UpdateError::MalformedAsPath)
        );
        assert_eq!(
            ErrorCode::from_octets(6, 2),
            ErrorCode::Cease(CeaseError::AdministrativeShutdown)
        );
        assert_eq!(ErrorCode::from_octets(4, 0), ErrorCode::HoldTimerExpired);
        assert_eq!(
            ErrorCode::from_octets(4, 1),
            ErrorCode::Other {
                code: 4,
                subcode: 1
            }
        );
    }

    #[test]
    fn decodes_body_with_data() {
        let n = decode_notification(&[2, 2, 0xfe, 0x00]).unwrap();
        assert_eq!(n.code, ErrorCode::Open(OpenError::BadPeerAs));
        assert_eq!(&n.data[..], &[0xfe, 0]);
        assert!(decode_notification(&[1]).is_err());
    }
}
